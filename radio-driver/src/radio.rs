//! The `Radio` trait: what the rest of lorabridge needs from a LoRa link.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use lorabridge_hardware::{Modulation, OnAir};
use serde::{Deserialize, Serialize};

use crate::RadioError;

/// A boxed, sendable future borrowed from the radio.
///
/// The trait returns boxed futures instead of using `async fn` so that it stays object-safe:
/// the daemon picks the driver from its configuration at run time (`Box<dyn Radio>`), and
/// wrappers such as [`crate::RnodeFraming`] compose over either. One allocation per call is
/// nothing next to a LoRa transmission (tens of milliseconds to seconds of airtime).
pub type RadioFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A LoRa link to one module.
///
/// Every method takes `&self`, so one task may wait for frames while another sends.
///
/// **Cancel safety.** Every returned future may be dropped at any await point without
/// corrupting the driver: the driver's own task performs the exchange with the module.
/// Dropping a [`Radio::send`] future after the frame was queued does not unsend it: the frame
/// still goes out (or fails) and only the outcome is lost. Dropping [`Radio::recv`] never
/// loses a frame: frames wait in a bounded queue until the next call.
pub trait Radio: Send + Sync {
    /// Which dialect this radio speaks.
    fn kind(&self) -> ModuleKind;

    /// Largest frame, in bytes, that [`Radio::send`] accepts.
    fn mtu(&self) -> usize;

    /// The driver's state right now.
    fn state(&self) -> RadioState;

    /// Configures the modulation; it is re-applied by the driver after every reconnect.
    fn configure<'a>(
        &'a self,
        modulation: &'a Modulation,
    ) -> RadioFuture<'a, Result<(), RadioError>>;

    /// Transmits one frame; resolves when the module reports it sent, or with the reason it was
    /// not. Frames above [`Radio::mtu`] are refused with [`RadioError::FrameTooLarge`].
    ///
    /// While the port is away the frame waits in the driver's queue and goes out after the
    /// reconnect, or fails with [`RadioError::Unavailable`] after the queue timeout: it is never
    /// dropped silently. If the port dies after the module took the frame but before it
    /// confirmed, the frame is sent again after the reconnect, so it may go out twice; the mesh
    /// layer de-duplicates. (RNode firmware confirms nothing over KISS: for an RNode this
    /// resolves once the frame is written to the port.)
    fn send<'a>(&'a self, frame: &'a [u8]) -> RadioFuture<'a, Result<(), RadioError>>;

    /// The next received frame, or `None` once the driver has shut down.
    fn recv(&self) -> RadioFuture<'_, Option<RxFrame>>;

    /// Switches the receiver off (where the module has one to switch) and stops the driver.
    /// Frames still queued are answered with [`RadioError::Closed`].
    fn shutdown(&self) -> RadioFuture<'_, Result<(), RadioError>>;
}

/// One received frame with what the module measured.
#[derive(Clone, Debug, PartialEq)]
pub struct RxFrame {
    /// The payload as the module delivered it.
    pub payload: Vec<u8>,
    /// Received signal strength in dBm, when the module reported one.
    pub rssi_dbm: Option<i16>,
    /// Signal-to-noise ratio in dB, when the module reported one.
    pub snr_db: Option<f32>,
}

/// What a driver is doing, for status pages and for callers that want to wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RadioState {
    /// Connected, configured (if asked to be) and idle or receiving.
    Ready,
    /// Transmitting or talking to the module.
    Busy,
    /// The port went away or stopped answering; the driver is reopening it with backoff.
    /// Sends wait in the queue until it is back or their queue timeout passes.
    Reconnecting,
    /// The driver gave up (see [`crate::DriverConfig::max_reconnect_attempts`]); sends fail.
    Failed,
    /// [`Radio::shutdown`] was called or the driver's handle was dropped.
    Closed,
}

/// The serial dialects this crate drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModuleKind {
    /// RAK3172 and other modules with RUI3 AT firmware, in LoRa P2P mode.
    Rui3,
    /// RAK811 with AT firmware v3.0.x, in LoRa P2P mode.
    Rak811,
    /// Boards flashed with the RNode firmware, spoken to over KISS.
    Rnode,
    /// Ebyte E22 UART modules (registers, transparent mode, M0/M1/AUX pins); they hear only
    /// other E22s.
    E22,
    /// An SX1262 (SX126x family) on SPI, driven through its command set
    /// ([`crate::sx126x`]).
    Sx126x,
    /// An SX1276/77/78/79 (SX127x family) on SPI, driven through its registers
    /// ([`crate::sx127x`]).
    Sx127x,
}

impl ModuleKind {
    /// What this module puts on air for a host frame sent with `m`: the airtime the duty-cycle
    /// ledger must charge. An RNode adds its header byte to each packet, sends a preamble of
    /// at least 18 symbols and splits frames over 254 bytes; the E22 driver adds its framing;
    /// the AT modules send the frame as configured.
    pub fn on_air(self, m: &Modulation) -> OnAir {
        match self {
            ModuleKind::Rnode => OnAir::plain(*m)
                .with_min_preamble(crate::rnode::cmd::MIN_PREAMBLE)
                .with_added_bytes(1)
                .split_every(crate::rnode::air::AIR_CHUNK),
            ModuleKind::Rui3 | ModuleKind::Rak811 | ModuleKind::Sx126x | ModuleKind::Sx127x => {
                OnAir::plain(*m)
            }
            // `m` is the air rate's stand-in, so this is the E22's airtime estimate (see
            // `crate::e22`).
            ModuleKind::E22 => OnAir::plain(*m).with_added_bytes(crate::e22::wire::OVERHEAD),
        }
    }

    /// The name used on the command line and in configuration files.
    /// How the module family is called in messages to stewards.
    pub fn module_name(self) -> &'static str {
        match self {
            ModuleKind::Rui3 => "RUI3",
            ModuleKind::Rak811 => "RAK811",
            ModuleKind::Rnode => "RNode",
            ModuleKind::E22 => "Ebyte E22",
            ModuleKind::Sx126x => "SX126x (SPI)",
            ModuleKind::Sx127x => "SX127x (SPI)",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ModuleKind::Rui3 => "rui3",
            ModuleKind::Rak811 => "rak811",
            ModuleKind::Rnode => "rnode",
            ModuleKind::E22 => "e22",
            ModuleKind::Sx126x => "sx126x",
            ModuleKind::Sx127x => "sx127x",
        }
    }
}

impl fmt::Display for ModuleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ModuleKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "rui3" => Ok(ModuleKind::Rui3),
            "rak811" => Ok(ModuleKind::Rak811),
            "rnode" => Ok(ModuleKind::Rnode),
            "e22" => Ok(ModuleKind::E22),
            "sx126x" => Ok(ModuleKind::Sx126x),
            "sx127x" => Ok(ModuleKind::Sx127x),
            other => Err(format!(
                "unknown driver {other:?}: expected rui3, rak811, rnode, e22, sx126x or sx127x"
            )),
        }
    }
}

impl TryFrom<lorabridge_hardware::ModuleKind> for ModuleKind {
    type Error = RadioError;

    /// Maps a board profile's module to the driver that speaks to it.
    fn try_from(kind: lorabridge_hardware::ModuleKind) -> Result<Self, RadioError> {
        use lorabridge_hardware::ModuleKind as Hw;
        Ok(match kind {
            Hw::Rui3 => ModuleKind::Rui3,
            Hw::Rak811 => ModuleKind::Rak811,
            Hw::RnodeKiss => ModuleKind::Rnode,
            Hw::EbyteE22 => ModuleKind::E22,
            Hw::Sx126xSpi => ModuleKind::Sx126x,
            Hw::Sx127xSpi => ModuleKind::Sx127x,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_module_is_charged_what_it_puts_on_air() {
        let m = Modulation::eu868_default();
        let frame = 200;
        let rui3 = ModuleKind::Rui3.on_air(&m).time_on_air(frame);
        assert_eq!(rui3, m.time_on_air(frame));
        assert_eq!(ModuleKind::Rak811.on_air(&m).time_on_air(frame), rui3);
        // The RNode's header byte and 18-symbol preamble: a frame costs more than on an AT
        // module, and a frame over 254 bytes two packets, each with its own preamble.
        let rnode = ModuleKind::Rnode.on_air(&m);
        let sent = Modulation {
            preamble_symbols: 18,
            ..m
        };
        assert_eq!(rnode.time_on_air(frame), sent.time_on_air(frame + 1));
        assert!(rnode.time_on_air(frame) > rui3);
        assert_eq!(
            rnode.time_on_air(400),
            sent.time_on_air(255) + sent.time_on_air(147)
        );
        assert_eq!(
            ModuleKind::E22.on_air(&m).time_on_air(frame),
            m.time_on_air(frame + crate::e22::wire::OVERHEAD)
        );
        // The SPI drivers send the frame as it is, with the configured preamble.
        assert_eq!(ModuleKind::Sx126x.on_air(&m).time_on_air(frame), rui3);
        assert_eq!(ModuleKind::Sx127x.on_air(&m).time_on_air(frame), rui3);
    }

    #[test]
    fn board_profile_modules_map_to_drivers() {
        use lorabridge_hardware::ModuleKind as Hw;
        assert_eq!(ModuleKind::try_from(Hw::Rui3), Ok(ModuleKind::Rui3));
        assert_eq!(ModuleKind::try_from(Hw::Rak811), Ok(ModuleKind::Rak811));
        assert_eq!(ModuleKind::try_from(Hw::RnodeKiss), Ok(ModuleKind::Rnode));
        assert_eq!(ModuleKind::try_from(Hw::EbyteE22), Ok(ModuleKind::E22));
        assert_eq!(ModuleKind::try_from(Hw::Sx126xSpi), Ok(ModuleKind::Sx126x));
        assert_eq!(ModuleKind::try_from(Hw::Sx127xSpi), Ok(ModuleKind::Sx127x));
        assert_eq!("SX127x".parse::<ModuleKind>(), Ok(ModuleKind::Sx127x));
        assert_eq!(ModuleKind::Sx127x.to_string(), "sx127x");
        assert_eq!(ModuleKind::Sx127x.module_name(), "SX127x (SPI)");
        assert_eq!("SX126x".parse::<ModuleKind>(), Ok(ModuleKind::Sx126x));
        assert_eq!(ModuleKind::Sx126x.to_string(), "sx126x");
        assert_eq!(ModuleKind::Sx126x.module_name(), "SX126x (SPI)");
        assert_eq!("RNode".parse::<ModuleKind>(), Ok(ModuleKind::Rnode));
        assert_eq!("e22".parse::<ModuleKind>(), Ok(ModuleKind::E22));
        assert_eq!(ModuleKind::E22.to_string(), "e22");
        assert!("e32".parse::<ModuleKind>().is_err());
    }

    #[test]
    fn every_builtin_board_is_driven() {
        use lorabridge_hardware::{BoardProfile, ModuleKind as Hw};
        let (mut sx126x, mut sx127x) = (0, 0);
        for board in BoardProfile::all() {
            match ModuleKind::try_from(board.module) {
                Ok(ModuleKind::Sx126x) => {
                    assert_eq!(board.module, Hw::Sx126xSpi, "{}", board.id);
                    sx126x += 1;
                }
                Ok(ModuleKind::Sx127x) => {
                    assert_eq!(board.module, Hw::Sx127xSpi, "{}", board.id);
                    sx127x += 1;
                }
                Ok(_) => assert!(!board.module.is_spi(), "{}", board.id),
                Err(e) => panic!("{}: {e}", board.id),
            }
        }
        // rak6421-rak13300, meshadv-pi and meshadv-mini; the RFM9x bonnet and the Dragino HAT.
        assert!(sx126x >= 3, "{sx126x} SX126x boards");
        assert!(sx127x >= 2, "{sx127x} SX127x boards");
    }
}
