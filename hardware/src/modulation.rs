//! LoRa modulation settings: what both ends of a link must agree on.

use serde::{Deserialize, Serialize};

/// One LoRa channel and modulation, as a module is configured with it.
///
/// Validation (`Modulation::validate`) names the bad field; nothing else in the project
/// accepts an unvalidated `Modulation` from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Modulation {
    /// Centre frequency in Hz, e.g. 869_525_000.
    pub frequency_hz: u32,
    /// Spreading factor, 5..=12 (SF5/SF6 only on SX126x).
    pub spreading_factor: u8,
    /// Bandwidth in Hz: one of the LoRa bandwidths (7_800 … 500_000).
    pub bandwidth_hz: u32,
    /// Coding rate denominator: 5..=8 for 4/5 … 4/8.
    pub coding_rate: u8,
    /// Preamble length in symbols.
    pub preamble_symbols: u16,
    /// Transmit power in dBm at the module's output.
    pub tx_power_dbm: i8,
    /// LoRa sync word (0x12 private networks, 0x34 LoRaWAN, 0x2B Meshtastic).
    pub sync_word: u8,
}
