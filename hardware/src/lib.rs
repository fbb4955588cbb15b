//! What the radio hardware and the law allow: the facts every other lorabridge crate needs
//! before it may key a LoRa transmitter.
//!
//! * [`Modulation`]: the settings both ends of a link share, validated, with exact
//!   time-on-air, because airtime is the budget the whole mesh protocol is designed around.
//! * [`RegionPlan`]: where, how loud and how often a region allows transmitting (EU868 duty
//!   cycle, US915 dwell time), as data files, so regulation changes are edits, not code.
//! * [`OnAir`]: what a module really sends for one host frame (header bytes, longer
//!   preamble, split packets), so that the ledger charges the air, not the frame.
//! * [`AirtimeLedger`]: the sliding-window duty-cycle and dwell accounting that answers "may
//!   I send now, and if not, exactly when", so no queue ever breaks the rules.
//! * [`BoardProfile`]: the supported boards and HATs (port, baud, firmware, limits), as data,
//!   and [`ModuleKind`], the one name of each module family they carry.
//!
//! Everything here is pure: no I/O, no clock. Time is an input (`now` is a
//! [`std::time::Duration`] since an epoch the caller picks), so the daemon and the simulator
//! share the same logic and every decision is reproducible.

#![warn(missing_docs)]

pub mod board;
pub mod ledger;
pub mod modulation;
pub mod module;
pub mod on_air;
pub mod region;

pub use board::{BoardError, BoardProfile, Chip};
pub use ledger::{AirtimeLedger, Refusal, RefusalReason, SubBandUsage};
pub use modulation::{Modulation, ModulationError};
pub use module::{ModuleKind, UnknownModule};
pub use on_air::OnAir;
pub use region::{Dwell, PowerReference, RegionError, RegionPlan, SubBand};
