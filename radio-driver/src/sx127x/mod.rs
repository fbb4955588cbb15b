//! SX1276/77/78/79 (SX127x family) radios on SPI: the RFM95W of the Adafruit LoRa Radio
//! Bonnet, the SX1276 of the Dragino LoRa/GPS HAT.
//!
//! Like the SX126x ([`crate::sx126x`]) there is no firmware between the host and the radio,
//! but the SX127x is a register file, not a command set: the driver writes RegOpMode,
//! RegFrf, RegModemConfig1..3, RegPreamble, RegSyncWord, RegPaConfig/RegPaDac and the FIFO
//! pointers itself ([`registers`]), over SPI with DIO0 and NRESET on GPIO lines ([`chip`]).
//! Every LoRa setting is the host's, so an SX1276 bridge hears an SX1262 bridge and a RAK3172
//! (RUI3) bridge set to the same [`Modulation`]: RegSyncWord takes the one-byte sync word
//! as it is (0x12 private, 0x34 public), which the SX126x spreads over two bytes.
//!
//! **The driver** is the one shared with the SX126x ([`crate::spi_radio`]): request queue,
//! listen before talk, timeouts and recovery by reset. This module says how those steps are
//! done with the SX127x's registers.
//!
//! **Receiving.** DIO0 is mapped to RxDone while receiving. RxDone also rises for a packet
//! whose CRC failed (PayloadCrcError set with it): such packets are dropped and counted. RSSI
//! and SNR come from RegPktRssiValue/RegPktSnrValue with the HF (−157) or LF (−164) port's
//! offset.
//!
//! **Listen before talk** uses the SX127x's CAD mode (DIO0 mapped to CadDone, CadDetected in
//! RegIrqFlags).
//!
//! **Failures.** The chip acknowledges nothing, so the driver reads RegVersion (0x12) after
//! every reset and RegOpMode back after every mode change: a lost write, a garbled bus or a
//! missing chip is a [`RadioError::Protocol`], and the driver resets the chip.
//!
//! **Memory.** The bus layer holds one exchange buffer of 257 B.
//!
//! # Airtime and usable payload per frame
//!
//! As for every chip on SPI: see [`crate::spi_radio`].
//!
//! # What it cannot do
//!
//! SF6 (the SX127x needs implicit header mode for it, which lorabridge's frames do not use;
//! it is refused, [`check`]) and SF5 (the SX126x's only); FSK/OOK; frames over 255 B; more
//! than +20 dBm, or the RFO pin (only PA_BOOST is wired on the boards we know); the
//! datasheet's 500 kHz sensitivity errata registers are not applied; tell an unplugged HAT
//! from a dead one; frequency hopping.

pub mod chip;
pub mod linux;
pub mod registers;

use std::time::Duration;

use embedded_hal::digital::OutputPin;
use embedded_hal_async::digital::Wait;
use embedded_hal_async::spi::SpiDevice;
use lorabridge_hardware::Modulation;
use serde::{Deserialize, Serialize};

pub use chip::{Bus, Chip};
pub use registers::MAX_PAYLOAD;
use registers::{self as reg, Dio0, Mode, irq};

use crate::spi_radio::{Irqs, SpiRadio, Transceiver};
use crate::{DriverConfig, DriverFacts, ModuleKind, RadioError, RxFrame};

/// An SX127x CAD lasts about two symbols (datasheet §4.1.6); the wait allows four.
const CAD_SYMBOLS: u32 = 4;

/// Settings of the board around the chip that no [`Modulation`] field carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sx127xSettings {
    /// Channel activity detection before each transmission ([`crate::spi_radio`]).
    pub listen_before_talk: bool,
}

impl Default for Sx127xSettings {
    fn default() -> Self {
        Self {
            listen_before_talk: true,
        }
    }
}

/// Resets and initialises the chip on `bus` (RegVersion must read 0x12 and the chip take
/// LoRa mode), then starts the driver; a missing or miswired radio fails here, at once.
pub async fn open<S, D, O>(
    bus: Bus<S, D, O>,
    settings: Sx127xSettings,
    cfg: DriverConfig,
) -> Result<SpiRadio, RadioError>
where
    S: SpiDevice + Send + 'static,
    D: Wait + Send + 'static,
    O: OutputPin + Send + 'static,
{
    let chip = Sx127x {
        chip: Chip::new(bus),
        settings,
    };
    SpiRadio::open(ModuleKind::Sx127x, chip, Box::new(check), cfg).await
}

/// Refuses what the chip cannot be set to, before anything is sent to it; SF6 with a reason
/// of its own, since the chip has it but not for lorabridge's explicit-header frames.
pub fn check(m: &Modulation) -> Result<(), RadioError> {
    let unsupported = |reason: String| RadioError::Unsupported {
        module: ModuleKind::Sx127x.module_name(),
        reason,
    };
    if m.spreading_factor == 6 {
        return Err(unsupported(
            "spreading_factor 6 needs implicit header mode on the SX127x, and lorabridge \
             sends explicit headers; use SF7..=12 (or an SX126x for SF5/6)"
                .into(),
        ));
    }
    ModuleKind::Sx127x
        .check(m)
        .map_err(|e| unsupported(e.to_string()))?;
    m.validate().map_err(|e| unsupported(e.to_string()))?;
    reg::pa_settings(m.tx_power_dbm).ok_or_else(|| {
        unsupported(format!(
            "tx_power_dbm {} is outside PA_BOOST's {}..={} dBm",
            m.tx_power_dbm,
            reg::POWER_DBM.start(),
            reg::POWER_DBM.end()
        ))
    })?;
    reg::modem_config(m)
        .map(drop)
        .ok_or_else(|| unsupported("no SX127x code for this SF, bandwidth or coding rate".into()))
}

/// The driver's steps in the SX127x's registers.
struct Sx127x<S, D, O> {
    chip: Chip<S, D, O>,
    settings: Sx127xSettings,
}

impl<S, D, O> Transceiver for Sx127x<S, D, O>
where
    S: SpiDevice,
    D: Wait,
    O: OutputPin,
{
    const NAME: &'static str = "SX127x";
    const IRQ_LINE: &'static str = "DIO0";

    fn listens_before_talk(&self) -> bool {
        self.settings.listen_before_talk
    }

    /// Reset, then LoRa mode (set in sleep, the only mode where the bit is writable).
    async fn init(&mut self) -> Result<(), RadioError> {
        let c = &mut self.chip;
        c.reset().await?;
        // After a reset the chip is in FSK standby: sleep first, then LoRa sleep, then
        // standby.
        c.write(reg::REG_OP_MODE, 0x00).await?;
        c.set_mode(Mode::Sleep, None).await?;
        c.set_mode(Mode::Standby, None).await?;
        c.write(reg::REG_FIFO_TX_BASE, 0x00).await?;
        c.write(reg::REG_FIFO_RX_BASE, 0x00).await?;
        c.write(reg::REG_IRQ_FLAGS_MASK, !irq::DRIVER).await?;
        c.write(reg::REG_IRQ_FLAGS, 0xFF).await
    }

    /// Reads the modem configuration and sync word back, so that a modulation that did not
    /// reach the chip is an error, not a deaf radio.
    async fn apply(&mut self, m: &Modulation) -> Result<(), RadioError> {
        check(m)?;
        let [pa, dac, ocp] = reg::pa_settings(m.tx_power_dbm).expect("checked");
        let config = reg::modem_config(m).expect("checked");
        let c = &mut self.chip;
        c.set_frequency(m.frequency_hz);
        // The port bit of RegOpMode follows the frequency.
        c.set_mode(Mode::Standby, None).await?;
        let frf = reg::frequency_steps(m.frequency_hz).to_be_bytes();
        c.write_burst(reg::REG_FRF_MSB, &frf[1..]).await?;
        c.write(reg::REG_PA_CONFIG, pa).await?;
        c.write(reg::REG_PA_DAC, dac).await?;
        c.write(reg::REG_OCP, ocp).await?;
        c.write(reg::REG_LNA, reg::LNA_MAX_GAIN_BOOST).await?;
        c.write(reg::REG_MODEM_CONFIG1, config[0]).await?;
        c.write(reg::REG_MODEM_CONFIG2, config[1]).await?;
        c.write(reg::REG_MODEM_CONFIG3, config[2]).await?;
        c.write_burst(reg::REG_PREAMBLE_MSB, &m.preamble_symbols.to_be_bytes())
            .await?;
        c.write(reg::REG_MAX_PAYLOAD_LENGTH, MAX_PAYLOAD as u8)
            .await?;
        c.write(reg::REG_DETECT_OPTIMIZE, reg::DETECT_OPTIMIZE_SF7_12)
            .await?;
        c.write(
            reg::REG_DETECTION_THRESHOLD,
            reg::DETECTION_THRESHOLD_SF7_12,
        )
        .await?;
        c.write(reg::REG_SYNC_WORD, m.sync_word).await?;
        let back = c.read_burst(reg::REG_MODEM_CONFIG1, 2).await?.to_vec();
        let sync = c.read(reg::REG_SYNC_WORD).await?;
        if back != config[..2] || sync != m.sync_word {
            return Err(RadioError::Protocol(format!(
                "SX127x reads modem config {back:02X?} and sync word {sync:#04x} after writing \
                 {:02X?} and {:#04x}",
                &config[..2],
                m.sync_word
            )));
        }
        self.receive(m).await
    }

    async fn standby(&mut self) -> Result<(), RadioError> {
        self.chip.set_mode(Mode::Standby, None).await
    }

    async fn receive(&mut self, _: &Modulation) -> Result<(), RadioError> {
        self.chip.write(reg::REG_FIFO_ADDR_PTR, 0x00).await?;
        self.chip
            .set_mode(Mode::RxContinuous, Some(Dio0::RxDone))
            .await
    }

    async fn wait_irq(&mut self) -> Result<(), RadioError> {
        self.chip.wait_irq().await
    }

    async fn take_irqs(&mut self) -> Result<Irqs, RadioError> {
        let flags = self.chip.take_irq().await?;
        let mut irqs = Irqs {
            packet_ended: flags & irq::RX_DONE != 0,
            cad: (flags & irq::CAD_DONE != 0).then_some(flags & irq::CAD_DETECTED != 0),
            tx_done: flags & irq::TX_DONE != 0,
            ..Irqs::default()
        };
        if irqs.packet_ended && flags & irq::PAYLOAD_CRC_ERROR == 0 {
            irqs.received = Some(self.read_packet().await?);
        }
        Ok(irqs)
    }

    async fn start_cad(&mut self, m: &Modulation) -> Result<Duration, RadioError> {
        self.chip.set_mode(Mode::Cad, Some(Dio0::CadDone)).await?;
        Ok(m.symbol_time() * CAD_SYMBOLS)
    }

    async fn start_tx(&mut self, _: &Modulation, frame: &[u8]) -> Result<(), RadioError> {
        let c = &mut self.chip;
        c.write(reg::REG_FIFO_ADDR_PTR, 0x00).await?;
        c.write_burst(reg::REG_FIFO, frame).await?;
        c.write(reg::REG_PAYLOAD_LENGTH, frame.len() as u8).await?;
        c.set_mode(Mode::Tx, Some(Dio0::TxDone)).await
    }

    async fn sleep(&mut self) -> Result<(), RadioError> {
        self.chip.set_mode(Mode::Sleep, None).await
    }
}

impl<S, D, O> Sx127x<S, D, O>
where
    S: SpiDevice,
    D: Wait,
    O: OutputPin,
{
    /// The packet that RxDone announced, from the FIFO, with its signal.
    async fn read_packet(&mut self) -> Result<RxFrame, RadioError> {
        let c = &mut self.chip;
        let len = usize::from(c.read(reg::REG_RX_NB_BYTES).await?);
        let start = c.read(reg::REG_FIFO_RX_CURRENT).await?;
        let status = c.read_burst(reg::REG_PKT_SNR, 2).await?;
        let (raw_snr, raw_rssi) = (status[0], status[1]);
        let frequency = c.frequency_hz();
        c.write(reg::REG_FIFO_ADDR_PTR, start).await?;
        let payload = c.read_burst(reg::REG_FIFO, len).await?.to_vec();
        Ok(RxFrame {
            payload,
            rssi_dbm: Some(reg::packet_rssi(raw_rssi, raw_snr, frequency)),
            snr_db: Some(reg::packet_snr(raw_snr)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_refuses_what_the_chip_cannot_do() {
        let m = Modulation::eu868_default();
        assert_eq!(check(&m), Ok(()));
        let public = Modulation {
            sync_word: 0x34,
            tx_power_dbm: 20,
            ..m
        };
        assert_eq!(check(&public), Ok(()));
        let sf6 = Modulation {
            spreading_factor: 6,
            ..m
        };
        match check(&sf6) {
            Err(RadioError::Unsupported { reason, .. }) => {
                assert!(reason.contains("implicit header"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        for bad in [
            Modulation {
                tx_power_dbm: 21,
                ..m
            },
            Modulation {
                tx_power_dbm: 1,
                ..m
            },
            Modulation {
                bandwidth_hz: 100_000,
                ..m
            },
            Modulation {
                spreading_factor: 5,
                ..m
            },
            Modulation {
                frequency_hz: 1_100_000_000,
                ..m
            },
        ] {
            assert!(
                matches!(check(&bad), Err(RadioError::Unsupported { .. })),
                "{bad:?}"
            );
        }
    }
}
