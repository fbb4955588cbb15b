//! The `Radio` trait and serial drivers for LoRa modules.
//!
//! Four module dialects are driven over a serial line:
//!
//! - [`ModuleKind::Rui3`]: RAK3172 and other RUI3 modules, AT commands in P2P mode;
//! - [`ModuleKind::Rak811`]: RAK811 with AT firmware v3;
//! - [`ModuleKind::Rnode`]: boards running the RNode firmware, spoken to in KISS frames;
//! - [`ModuleKind::E22`]: Ebyte E22 UART modules (the Waveshare SX1262 LoRa HAT), registers in
//!   configuration mode and our own framing in transparent mode, with M0/M1/AUX on GPIO
//!   lines. An E22 hears only other E22s.
//!
//! and two radio chips over SPI, with no firmware in between, each a [`SpiRadio`] (the
//! driver they share is [`spi_radio`]):
//!
//! - [`ModuleKind::Sx126x`]: an SX1262 on spidev with BUSY/DIO1/NRESET on GPIO lines
//!   ([`sx126x`]); it hears the serial modules set to the same modulation.
//! - [`ModuleKind::Sx127x`]: an SX1276/77/78/79 on spidev with DIO0/NRESET on GPIO lines
//!   ([`sx127x`]); it hears the SX126x and the serial modules set to the same modulation.
//!
//! Each dialect is split in two: a pure parser (bytes in, events out; never panics, bounded
//! memory, unit- and property-tested apart from any I/O) and a small async "dialect" that turns
//! radio operations into command exchanges. One generic driver task ([`SerialRadio`]) owns the
//! port, runs the exchanges with a timeout on every command, forwards received frames, and
//! reconnects with backoff when the port disappears, re-applying the last modulation.
//!
//! [`RnodeFraming`] lets an AT module share a channel with RNodes (their firmware adds a
//! header byte on air).
//!
//! [`DriverFacts::on_air`] says what each module really sends for a frame, which the engine's
//! duty-cycle ledger charges.

pub mod at;
mod at_command;
pub mod backoff;
pub mod driver;
pub mod e22;
pub mod error;
pub mod limits;
pub mod probe;
pub mod radio;
pub mod rak811;
mod requests;
pub mod rnode;
pub mod rnode_framing;
pub mod rui3;
pub mod spi_radio;
pub mod sx126x;
pub mod sx127x;

pub use driver::{
    Connector, DriverConfig, DriverStats, Port, PortIo, SerialConnector, SerialRadio,
};
pub use error::RadioError;
pub use limits::{DriverFacts, LimitError, ModuleLimits};
pub use lorabridge_hardware::ModuleKind;
pub use probe::{ModuleInfo, probe, probe_e22};
pub use radio::{Radio, RadioFuture, RadioState, RxFrame};
pub use rnode_framing::{RnodeFraming, framed_mtu, framed_on_air, shared};
pub use spi_radio::{SpiRadio, SpiRadioStats};
pub use sx126x::Sx126xSettings;
pub use sx127x::Sx127xSettings;
