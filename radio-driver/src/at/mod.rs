//! Pieces shared by the two AT dialects (RUI3 and RAK811): line splitting and hex payloads.

pub mod hex;
pub mod line;

pub use line::{LineSplitter, Lines};
