//! The last check: the module answers its driver's first questions, over its serial port,
//! through an E22's mode pins, or on SPI.
//!
//! Kept apart from the other checks because it is the only one that talks to the module, and
//! the longest: one way of asking per kind of module.

use lorabridge_radio::{DriverConfig, SerialConnector, probe, probe_e22};

use super::{Ask, Doctor, Finding, Hardware};

impl Doctor<'_> {
    /// The module answers its driver's first questions; nothing on it is changed.
    pub(super) async fn module(&self, hw: &Hardware) -> Finding {
        let path = self.rooted(&hw.device);
        let cfg = DriverConfig {
            command_timeout: self.answer_timeout,
            ..DriverConfig::default()
        };
        let (answer, baud) = match &hw.ask {
            Ask::NoDriver(reason) => return Finding::skip("module", reason.clone()),
            Ask::Serial { driver, baud } => {
                let connector = SerialConnector::new(&path, *baud);
                (probe(*driver, &connector, &cfg).await, *baud)
            }
            Ask::E22 { baud, pins } => {
                let Some(gpio) = self.gpio else {
                    return Finding::skip(
                        "module",
                        "an E22 is asked through its mode pins, which are not this machine's",
                    );
                };
                let pins = match gpio.mode_pins(pins) {
                    Ok(pins) => pins,
                    Err(e) => {
                        return Finding::fail("module", e.to_string(), "see the GPIO lines check");
                    }
                };
                let connector = SerialConnector::new(&path, *baud);
                (probe_e22(&connector, pins, &cfg).await, *baud)
            }
            Ask::Sx127x { lines } => {
                let Some(gpio) = self.gpio else {
                    return Finding::skip(
                        "module",
                        "an SX127x is asked through its GPIO lines, which are not this machine's",
                    );
                };
                return match gpio.ask_sx127x(&path, lines, cfg).await {
                    Ok(()) => Finding::ok(
                        "module",
                        format!(
                            "an SX127x answers on {}: reset, RegVersion 0x12, LoRa mode and \
                             asleep again; frames up to {} bytes",
                            path.display(),
                            lorabridge_radio::sx127x::MAX_PAYLOAD
                        ),
                    ),
                    Err(e) => Finding::fail(
                        "module",
                        format!("no SX127x answers on {}: {e}", path.display()),
                        "check that the HAT is seated and powered and that the board profile \
                         matches it; stop any other program using the radio (sudo systemctl \
                         stop lorabridge meshtasticd)",
                    ),
                };
            }
            Ask::Sx126x { lines, settings } => {
                let Some(gpio) = self.gpio else {
                    return Finding::skip(
                        "module",
                        "an SX126x is asked through its GPIO lines, which are not this machine's",
                    );
                };
                return match gpio.ask_sx126x(&path, lines, *settings, cfg).await {
                    Ok(()) => Finding::ok(
                        "module",
                        format!(
                            "an SX126x answers on {}: reset, initialised and asleep again; \
                             frames up to {} bytes",
                            path.display(),
                            lorabridge_radio::sx126x::MAX_PAYLOAD
                        ),
                    ),
                    Err(e) => Finding::fail(
                        "module",
                        format!("no SX126x answers on {}: {e}", path.display()),
                        "check that the HAT is seated and powered and that the board profile \
                         matches it; stop any other program using the radio (sudo systemctl \
                         stop lorabridge meshtasticd)",
                    ),
                };
            }
        };
        match answer {
            Ok(info) => Finding::ok(
                "module",
                format!(
                    "answers: firmware {}, frames up to {} bytes",
                    info.firmware.as_deref().unwrap_or("(not reported)"),
                    info.mtu
                ),
            ),
            Err(e) => Finding::fail(
                "module",
                format!("no answer on {} at {baud} baud: {e}", path.display()),
                "check the wiring and the baud rate; stop any program that has the port open \
                 (sudo systemctl stop lorabridge); lorabridge radio probe asks it by hand",
            ),
        }
    }
}
