//! LoRa modulation settings: what both ends of a link must agree on, and what they cost in
//! airtime.
//!
//! Airtime is the scarce resource of the whole mesh (duty cycle, dwell time, collisions), so
//! it is computed here exactly, in integer arithmetic, from the Semtech formula:
//!
//! * symbol time `T_sym = 2^SF / BW`;
//! * SF7..=SF12 (SX127x and SX126x): preamble `N_pre + 4.25` symbols, payload
//!   `8 + max(ceil((8·PL − 4·SF + 44) / (4·(SF − 2·DE))), 0) · CR` symbols
//!   (explicit header and CRC on: `28 + 16·CRC − 20·IH = 44`);
//! * SF5/SF6 (SX126x only; the SX126x datasheet, §6.1.4): preamble `N_pre + 6.25` symbols,
//!   payload `8 + max(ceil((8·PL − 4·SF + 36) / (4·SF)), 0) · CR` symbols;
//!
//! where CR is the coding-rate denominator (5..=8) and DE is low-data-rate optimisation,
//! switched on automatically when `T_sym ≥ 16.38 ms` as the chips require.
//!
//! The LoRa bandwidths are divisions of 500 kHz (the chips derive them from a 32 MHz
//! crystal): "7.8 kHz" is really 7812.5 Hz, "41.7 kHz" is 41666.67 Hz. Using the exact
//! values makes every symbol time a whole number of microseconds (`2^SF · 2 · divisor` µs)
//! and every time-on-air exact to the microsecond.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

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

/// The LoRa bandwidths as people write them (Hz), each with its divisor of 500 kHz.
///
/// Why a table: the nominal numbers are rounded ("41.7 kHz"), the chip's real bandwidth is
/// `500 kHz / divisor`, and only the latter gives exact airtime.
const BANDWIDTHS: [(u32, u32); 10] = [
    (7_800, 64),
    (10_400, 48),
    (15_600, 32),
    (20_800, 24),
    (31_250, 16),
    (41_700, 12),
    (62_500, 8),
    (125_000, 4),
    (250_000, 2),
    (500_000, 1),
];

/// Frequencies a LoRa transceiver can tune to at all (SX1276: 137–1020 MHz).
pub const FREQUENCY_RANGE_HZ: std::ops::RangeInclusive<u32> = 137_000_000..=1_020_000_000;
/// Spreading factors of current LoRa chips (SF5/SF6 only on SX126x).
pub const SPREADING_FACTOR_RANGE: std::ops::RangeInclusive<u8> = 5..=12;
/// Coding-rate denominators 4/5 … 4/8.
pub const CODING_RATE_RANGE: std::ops::RangeInclusive<u8> = 5..=8;
/// Shortest preamble accepted: 6 symbols is the SX127x's programmable minimum, and a
/// receiver needs several preamble symbols to detect a frame and lock onto it, so shorter
/// preambles lose frames even where a module would accept the setting.
pub const MIN_PREAMBLE_SYMBOLS: u16 = 6;
/// Plausible conducted output power of LoRa modules (SX1262 −9 dBm up to 1 W amplified
/// modules); the board and the region narrow this further.
pub const TX_POWER_RANGE_DBM: std::ops::RangeInclusive<i8> = -9..=30;
/// Largest LoRa PHY payload: the length field of the explicit header is one byte.
pub const MAX_PAYLOAD_BYTES: usize = 255;
/// Symbol time from which low-data-rate optimisation is switched on (16.38 ms, in µs).
const LDRO_THRESHOLD_US: u128 = 16_380;

/// A setting that no LoRa radio (or no LoRa frame) can have; each variant names the field,
/// the bad value and what is allowed, so a configuration error reads as its own fix.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ModulationError {
    /// The frequency is outside what any LoRa transceiver tunes to.
    #[error("frequency_hz {0} is out of range 137000000..=1020000000")]
    Frequency(u32),
    /// The spreading factor does not exist.
    #[error("spreading_factor {0} is out of range 5..=12")]
    SpreadingFactor(u8),
    /// The bandwidth is not one of the LoRa bandwidths.
    #[error(
        "bandwidth_hz {0} is not a LoRa bandwidth; allowed: 7800, 10400, 15600, 20800, \
         31250, 41700, 62500, 125000, 250000, 500000"
    )]
    Bandwidth(u32),
    /// The coding rate denominator is not 5..=8.
    #[error("coding_rate {0} is out of range 5..=8 (4/5..4/8)")]
    CodingRate(u8),
    /// The preamble is too short to be detected reliably.
    #[error("preamble_symbols {0} is out of range 6..=65535")]
    Preamble(u16),
    /// The power is outside what LoRa modules emit.
    #[error("tx_power_dbm {0} is out of range -9..=30")]
    TxPower(i8),
    /// The payload does not fit in one LoRa frame.
    #[error("payload_len {0} is out of range 0..=255 (one LoRa frame)")]
    PayloadTooLong(usize),
}

impl Modulation {
    /// The project's EU868 default: 869.525 MHz is the centre of the 869.4–869.65 MHz
    /// sub-band, the only EU868 band allowing 10 % duty cycle; SF9/BW125 carries a 255 B
    /// frame in 1.25 s with −129 dBm sensitivity, a middle ground between range and
    /// capacity; CR 4/5 and an 8-symbol preamble are the LoRa norm; 14 dBm is legal in every
    /// EU868 sub-band and within every supported board; sync word 0x12 keeps us off
    /// LoRaWAN (0x34) and Meshtastic (0x2B) receivers.
    pub const fn eu868_default() -> Self {
        Modulation {
            frequency_hz: 869_525_000,
            spreading_factor: 9,
            bandwidth_hz: 125_000,
            coding_rate: 5,
            preamble_symbols: 8,
            tx_power_dbm: 14,
            sync_word: 0x12,
        }
    }

    /// The project's US915 default: SF7/BW125 is the only 125 kHz setting whose 255 B frame
    /// (399.6 ms) stays within the FCC's 400 ms dwell limit; 915 MHz is mid-band; 17 dBm is
    /// below the 30 dBm limit and within every supported board (SX1276 RNodes stop at 17).
    pub const fn us915_default() -> Self {
        Modulation {
            frequency_hz: 915_000_000,
            spreading_factor: 7,
            bandwidth_hz: 125_000,
            coding_rate: 5,
            preamble_symbols: 8,
            tx_power_dbm: 17,
            sync_word: 0x12,
        }
    }

    /// Checks every field against what LoRa radios can do, so a bad configuration fails at
    /// start with the field's name instead of as a silent radio.
    pub fn validate(&self) -> Result<(), ModulationError> {
        if !FREQUENCY_RANGE_HZ.contains(&self.frequency_hz) {
            return Err(ModulationError::Frequency(self.frequency_hz));
        }
        if !SPREADING_FACTOR_RANGE.contains(&self.spreading_factor) {
            return Err(ModulationError::SpreadingFactor(self.spreading_factor));
        }
        if bandwidth_divisor(self.bandwidth_hz).is_none() {
            return Err(ModulationError::Bandwidth(self.bandwidth_hz));
        }
        if !CODING_RATE_RANGE.contains(&self.coding_rate) {
            return Err(ModulationError::CodingRate(self.coding_rate));
        }
        if self.preamble_symbols < MIN_PREAMBLE_SYMBOLS {
            return Err(ModulationError::Preamble(self.preamble_symbols));
        }
        if !TX_POWER_RANGE_DBM.contains(&self.tx_power_dbm) {
            return Err(ModulationError::TxPower(self.tx_power_dbm));
        }
        Ok(())
    }

    /// Duration of one LoRa symbol, `2^SF / BW`: the unit of every LoRa timing (preamble,
    /// CAD, receive windows).
    ///
    /// Exact for a valid modulation. On an invalid one it never panics: the raw numbers are
    /// used and the result saturates (a zero bandwidth gives the maximum duration).
    pub fn symbol_time(&self) -> Duration {
        nanos_to_duration(self.quarter_symbols_to_nanos(4))
    }

    /// Time on air of one frame carrying `payload_len` bytes (explicit header, CRC on,
    /// low-data-rate optimisation automatic), exact to the microsecond: what the duty-cycle
    /// ledger charges and the simulator keeps the channel busy for.
    ///
    /// The formula is evaluated for any length, also above the 255 B PHY limit, and saturates
    /// instead of overflowing; use [`Modulation::try_time_on_air`] to have an oversized frame
    /// or an invalid modulation refused.
    pub fn time_on_air(&self, payload_len: usize) -> Duration {
        let quarter_symbols = self
            .preamble_quarter_symbols()
            .saturating_add(self.payload_symbols(payload_len).saturating_mul(4));
        nanos_to_duration(self.quarter_symbols_to_nanos(quarter_symbols))
    }

    /// [`Modulation::time_on_air`] for a frame that can actually be sent: refuses an invalid
    /// modulation and a payload above 255 bytes.
    pub fn try_time_on_air(&self, payload_len: usize) -> Result<Duration, ModulationError> {
        self.validate()?;
        if payload_len > MAX_PAYLOAD_BYTES {
            return Err(ModulationError::PayloadTooLong(payload_len));
        }
        Ok(self.time_on_air(payload_len))
    }

    /// Whether the radio uses low-data-rate optimisation (symbol time ≥ 16.38 ms); both ends
    /// must agree, and it changes the airtime.
    pub fn low_data_rate_optimisation(&self) -> bool {
        let (num, den) = self.bandwidth_fraction();
        // T_sym[µs] = 2^SF · 10^6 · den / num ≥ 16380  ⇔  2^SF · 10^6 · den ≥ 16380 · num
        pow2(self.spreading_factor)
            .saturating_mul(1_000_000)
            .saturating_mul(den)
            >= LDRO_THRESHOLD_US.saturating_mul(num)
    }

    /// Typical receiver sensitivity in dBm, for link budgets and the simulator's "can it be
    /// heard" rule.
    ///
    /// SF7..=SF12 at 125 kHz come from the fact sheet (−123 … −137 dBm); SF5/SF6 are derived
    /// from SF7 by the difference of their SNR floors (−118, −120.5 dBm). Every doubling of
    /// bandwidth doubles the noise, so the value moves by `10·log10(BW / 125 kHz)`. Values
    /// outside the valid ranges are clamped to them.
    pub fn sensitivity_dbm(&self) -> f64 {
        let at_125k = match self.spreading_factor {
            0..=5 => -118.0,
            6 => -120.5,
            7 => -123.0,
            8 => -126.0,
            9 => -129.0,
            10 => -132.0,
            11 => -134.5,
            _ => -137.0,
        };
        let (num, den) = self.bandwidth_fraction();
        let bandwidth_hz = (num as f64 / den as f64).max(1.0);
        at_125k + 10.0 * (bandwidth_hz / 125_000.0).log10()
    }

    /// Lowest SNR in dB at which the spreading factor still demodulates: the simulator's
    /// capture and reception rule. Independent of bandwidth; clamped to SF5..=SF12.
    pub fn snr_floor_db(&self) -> f64 {
        let sf = self.spreading_factor.clamp(5, 12);
        -2.5 * f64::from(sf - 4)
    }

    /// Preamble plus the fixed part of the header, in quarter symbols (4.25 symbols for
    /// SF7..=SF12, 6.25 symbols for the SX126x's SF5/SF6).
    fn preamble_quarter_symbols(&self) -> u128 {
        let fixed = if self.spreading_factor <= 6 { 25 } else { 17 };
        4 * u128::from(self.preamble_symbols) + fixed
    }

    /// Number of symbols after the preamble (header, payload, CRC).
    fn payload_symbols(&self, payload_len: usize) -> u128 {
        let sf = i128::from(self.spreading_factor);
        let de = i128::from(self.low_data_rate_optimisation());
        let constant = if sf <= 6 { 36 } else { 44 };
        let bits = i128::try_from(payload_len)
            .unwrap_or(i128::MAX)
            .saturating_mul(8)
            .saturating_sub(4 * sf)
            .saturating_add(constant);
        let per_block = (4 * (sf - 2 * de)).max(1);
        let blocks = if bits > 0 {
            // ceil for positive numbers without overflow
            bits / per_block + i128::from(bits % per_block != 0)
        } else {
            0
        };
        let blocks = u128::try_from(blocks).unwrap_or(0);
        blocks
            .saturating_mul(u128::from(self.coding_rate))
            .saturating_add(8)
    }

    /// Bandwidth as the exact fraction `num / den` Hz: `500 kHz / divisor` for a LoRa
    /// bandwidth, the raw number otherwise.
    fn bandwidth_fraction(&self) -> (u128, u128) {
        match bandwidth_divisor(self.bandwidth_hz) {
            Some(divisor) => (500_000, u128::from(divisor)),
            None => (u128::from(self.bandwidth_hz), 1),
        }
    }

    /// `quarter_symbols / 4 · T_sym` in nanoseconds, rounded down, saturating.
    fn quarter_symbols_to_nanos(&self, quarter_symbols: u128) -> u128 {
        let (num, den) = self.bandwidth_fraction();
        let numerator = quarter_symbols
            .saturating_mul(pow2(self.spreading_factor))
            .saturating_mul(1_000_000_000)
            .saturating_mul(den);
        numerator
            .checked_div(num.saturating_mul(4))
            .unwrap_or(u128::MAX)
    }
}

/// The divisor of 500 kHz for a nominal LoRa bandwidth, `None` if it is not one.
fn bandwidth_divisor(bandwidth_hz: u32) -> Option<u32> {
    BANDWIDTHS
        .iter()
        .find(|(nominal, _)| *nominal == bandwidth_hz)
        .map(|(_, divisor)| *divisor)
}

/// `2^exponent`, saturating for exponents no spreading factor has.
fn pow2(exponent: u8) -> u128 {
    1u128.checked_shl(u32::from(exponent)).unwrap_or(u128::MAX)
}

fn nanos_to_duration(nanos: u128) -> Duration {
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lora_modulation::{Bandwidth, BaseBandModulationParams, CodingRate, SpreadingFactor};
    use proptest::prelude::*;

    fn modulation(sf: u8, bandwidth_hz: u32, coding_rate: u8, preamble: u16) -> Modulation {
        Modulation {
            spreading_factor: sf,
            bandwidth_hz,
            coding_rate,
            preamble_symbols: preamble,
            ..Modulation::eu868_default()
        }
    }

    /// The oracle: `lora-modulation` (SX127x formula, SF7..=SF12 here).
    ///
    /// Its integer ceiling gives 1 instead of 0 for a numerator ≤ 0 (an empty frame at
    /// SF11/SF12), so those cases are checked by `empty_frames_at_sf11_sf12` instead.
    fn oracle(m: &Modulation, len: u8) -> Option<u32> {
        if 8 * u32::from(len) + 44 <= 4 * u32::from(m.spreading_factor) {
            return None;
        }
        let sf = match m.spreading_factor {
            7 => SpreadingFactor::_7,
            8 => SpreadingFactor::_8,
            9 => SpreadingFactor::_9,
            10 => SpreadingFactor::_10,
            11 => SpreadingFactor::_11,
            _ => SpreadingFactor::_12,
        };
        let bw = match m.bandwidth_hz {
            7_800 => Bandwidth::_7KHz,
            10_400 => Bandwidth::_10KHz,
            15_600 => Bandwidth::_15KHz,
            20_800 => Bandwidth::_20KHz,
            31_250 => Bandwidth::_31KHz,
            41_700 => Bandwidth::_41KHz,
            62_500 => Bandwidth::_62KHz,
            125_000 => Bandwidth::_125KHz,
            250_000 => Bandwidth::_250KHz,
            _ => Bandwidth::_500KHz,
        };
        let cr = match m.coding_rate {
            5 => CodingRate::_4_5,
            6 => CodingRate::_4_6,
            7 => CodingRate::_4_7,
            _ => CodingRate::_4_8,
        };
        let mut params = BaseBandModulationParams::new(sf, bw, cr);
        // The oracle rounds the narrow bandwidths (7810 Hz for 7812.5 Hz), which can flip
        // its LDRO decision at exactly 16.384 ms; align it so only the rounding differs.
        params.ldro = m.low_data_rate_optimisation();
        let preamble = u8::try_from(m.preamble_symbols).expect("test preamble fits u8");
        Some(params.time_on_air_us(Some(preamble), true, len))
    }

    fn micros(d: Duration) -> u128 {
        d.as_micros()
    }

    #[test]
    fn fact_sheet_table_to_the_microsecond() {
        // SF, 64 B, 255 B at BW125, CR4/5, preamble 8 (fact sheet §2).
        let expected_us: [(u8, u128, u128); 6] = [
            (7, 118_016, 399_616),
            (8, 215_552, 707_072),
            (9, 390_144, 1_250_304),
            (10, 698_368, 2_295_808),
            (11, 1_560_576, 5_001_216),
            (12, 2_793_472, 9_019_392),
        ];
        for (sf, short, long) in expected_us {
            let m = modulation(sf, 125_000, 5, 8);
            assert_eq!(micros(m.time_on_air(64)), short, "SF{sf} 64 B");
            assert_eq!(micros(m.time_on_air(255)), long, "SF{sf} 255 B");
            assert_eq!(
                oracle(&m, 64).map(u128::from),
                Some(short),
                "oracle SF{sf} 64 B"
            );
            assert_eq!(
                oracle(&m, 255).map(u128::from),
                Some(long),
                "oracle SF{sf} 255 B"
            );
            // and the sheet's rounded milliseconds
            let ms = |us: u128| (us as f64 / 100.0).round() / 10.0;
            let sheet = match sf {
                7 => (118.0, 399.6),
                8 => (215.6, 707.1),
                9 => (390.1, 1250.3),
                10 => (698.4, 2295.8),
                11 => (1560.6, 5001.2),
                _ => (2793.5, 9019.4),
            };
            assert_eq!((ms(short), ms(long)), sheet, "SF{sf}");
        }
    }

    #[test]
    fn matches_oracle_exactly_on_exact_bandwidths() {
        for sf in 7..=12 {
            for bw in [31_250, 62_500, 125_000, 250_000, 500_000] {
                for cr in 5..=8 {
                    for preamble in [6u16, 8, 12, 16, 18, 255] {
                        for len in [0usize, 1, 2, 13, 51, 64, 100, 118, 200, 222, 250, 255] {
                            let m = modulation(sf, bw, cr, preamble);
                            if let Some(theirs) = oracle(&m, len as u8) {
                                assert_eq!(
                                    micros(m.time_on_air(len)),
                                    u128::from(theirs),
                                    "SF{sf} BW{bw} CR4/{cr} pre {preamble} len {len}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn narrow_bandwidths_differ_from_oracle_only_by_its_rounding() {
        for sf in 7..=12 {
            for bw in [7_800, 10_400, 15_600, 20_800, 41_700] {
                for len in [1usize, 64, 255] {
                    let m = modulation(sf, bw, 5, 8);
                    let ours = micros(m.time_on_air(len)) as f64;
                    let theirs = f64::from(oracle(&m, len as u8).expect("oracle applies"));
                    // 7810 vs 7812.5 Hz etc.: well under 0.1 %.
                    assert!(
                        ((ours - theirs) / ours).abs() < 1e-3,
                        "SF{sf} BW{bw} len {len}: {ours} vs {theirs}"
                    );
                }
            }
        }
    }

    #[test]
    fn empty_frames_at_sf11_sf12() {
        // 8·0 − 4·SF + 44 ≤ 0: no payload blocks, 8 payload symbols + 12.25 preamble.
        for sf in [11u8, 12] {
            let m = modulation(sf, 125_000, 5, 8);
            assert_eq!(m.time_on_air(0), m.symbol_time() * 81 / 4, "SF{sf}");
        }
    }

    #[test]
    fn symbol_times_are_exact() {
        assert_eq!(
            modulation(7, 125_000, 5, 8).symbol_time(),
            Duration::from_micros(1_024)
        );
        assert_eq!(
            modulation(12, 125_000, 5, 8).symbol_time(),
            Duration::from_micros(32_768)
        );
        // 7.8 kHz is 500 kHz / 64 = 7812.5 Hz: 2^7 / 7812.5 = 16.384 ms.
        assert_eq!(
            modulation(7, 7_800, 5, 8).symbol_time(),
            Duration::from_micros(16_384)
        );
        // 41.7 kHz is 500 kHz / 12: 2^9 · 24 µs.
        assert_eq!(
            modulation(9, 41_700, 5, 8).symbol_time(),
            Duration::from_micros(12_288)
        );
    }

    #[test]
    fn low_data_rate_optimisation_follows_symbol_time() {
        assert!(!modulation(10, 125_000, 5, 8).low_data_rate_optimisation());
        assert!(modulation(11, 125_000, 5, 8).low_data_rate_optimisation());
        assert!(!modulation(11, 250_000, 5, 8).low_data_rate_optimisation());
        assert!(modulation(12, 250_000, 5, 8).low_data_rate_optimisation());
        assert!(modulation(8, 15_600, 5, 8).low_data_rate_optimisation());
    }

    #[test]
    fn sx126x_sf5_sf6_use_their_own_formula() {
        // SF5, BW500, CR4/5, preamble 8, 10 B: T_sym = 64 µs; preamble 8 + 6.25 symbols;
        // payload 8 + ceil((80 − 20 + 36) / 20) · 5 = 8 + 5 · 5 = 33 symbols.
        let m = modulation(5, 500_000, 5, 8);
        assert_eq!(m.time_on_air(10), Duration::from_micros(64 * 4725 / 100));
        // SF6, BW125, CR4/8, preamble 12, 0 B: T_sym = 512 µs; 18.25 + 8 + ceil(12/24)·8.
        let m = modulation(6, 125_000, 8, 12);
        assert_eq!(m.time_on_air(0), Duration::from_micros(512 * 3425 / 100));
    }

    #[test]
    fn long_preambles_beyond_a_byte_are_counted() {
        let short = modulation(7, 125_000, 5, 8).time_on_air(10);
        let long = modulation(7, 125_000, 5, 1008).time_on_air(10);
        assert_eq!(long - short, Duration::from_micros(1_000 * 1_024));
    }

    #[test]
    fn validation_names_field_value_and_range() {
        let base = Modulation::eu868_default();
        assert_eq!(base.validate(), Ok(()));
        assert_eq!(Modulation::us915_default().validate(), Ok(()));
        let cases: [(Modulation, &str); 7] = [
            (
                Modulation {
                    spreading_factor: 13,
                    ..base
                },
                "spreading_factor 13 is out of range 5..=12",
            ),
            (
                Modulation {
                    bandwidth_hz: 100_000,
                    ..base
                },
                "bandwidth_hz 100000 is not a LoRa bandwidth",
            ),
            (
                Modulation {
                    coding_rate: 4,
                    ..base
                },
                "coding_rate 4 is out of range 5..=8",
            ),
            (
                Modulation {
                    preamble_symbols: 5,
                    ..base
                },
                "preamble_symbols 5 is out of range 6..=65535",
            ),
            (
                Modulation {
                    tx_power_dbm: 31,
                    ..base
                },
                "tx_power_dbm 31 is out of range -9..=30",
            ),
            (
                Modulation {
                    frequency_hz: 136_999_999,
                    ..base
                },
                "frequency_hz 136999999 is out of range 137000000..=1020000000",
            ),
            (
                Modulation {
                    frequency_hz: 1_020_000_001,
                    ..base
                },
                "frequency_hz 1020000001 is out of range",
            ),
        ];
        for (m, message) in cases {
            let error = m.validate().expect_err(message).to_string();
            assert!(error.starts_with(message), "{error}");
        }
    }

    #[test]
    fn try_time_on_air_refuses_oversized_frames_and_bad_settings() {
        let m = Modulation::eu868_default();
        assert_eq!(m.try_time_on_air(255), Ok(m.time_on_air(255)));
        assert_eq!(
            m.try_time_on_air(256),
            Err(ModulationError::PayloadTooLong(256))
        );
        let bad = Modulation {
            spreading_factor: 4,
            ..m
        };
        assert_eq!(
            bad.try_time_on_air(10),
            Err(ModulationError::SpreadingFactor(4))
        );
    }

    #[test]
    fn sensitivity_and_snr_floor_follow_the_fact_sheet() {
        let m = modulation(12, 125_000, 5, 8);
        assert_eq!(m.sensitivity_dbm(), -137.0);
        assert_eq!(m.snr_floor_db(), -20.0);
        assert_eq!(modulation(7, 125_000, 5, 8).snr_floor_db(), -7.5);
        assert_eq!(modulation(9, 125_000, 5, 8).sensitivity_dbm(), -129.0);
        let wide = modulation(9, 250_000, 5, 8).sensitivity_dbm();
        assert!((wide - (-129.0 + 3.0103)).abs() < 1e-3, "{wide}");
    }

    #[test]
    fn serde_round_trip_and_unknown_fields_refused() {
        let m = Modulation::eu868_default();
        let text = toml::to_string(&m).expect("serialise");
        assert_eq!(toml::from_str::<Modulation>(&text).expect("parse"), m);
        let extra = format!("{text}bogus = 1\n");
        let error = toml::from_str::<Modulation>(&extra).expect_err("unknown field");
        assert!(error.to_string().contains("bogus"), "{error}");
    }

    proptest! {
        #[test]
        fn agrees_with_oracle(
            sf in 7u8..=12,
            bw in prop::sample::select(vec![31_250u32, 62_500, 125_000, 250_000, 500_000]),
            cr in 5u8..=8,
            preamble in 6u16..=255,
            len in 0u8..=255,
        ) {
            let m = modulation(sf, bw, cr, preamble);
            if let Some(theirs) = oracle(&m, len) {
                prop_assert_eq!(micros(m.time_on_air(usize::from(len))), u128::from(theirs));
            }
        }

        #[test]
        fn never_panics_and_grows_with_length(
            frequency_hz in any::<u32>(),
            spreading_factor in any::<u8>(),
            bandwidth_hz in any::<u32>(),
            coding_rate in any::<u8>(),
            preamble_symbols in any::<u16>(),
            len in any::<usize>(),
        ) {
            let m = Modulation {
                frequency_hz, spreading_factor, bandwidth_hz, coding_rate, preamble_symbols,
                tx_power_dbm: 0, sync_word: 0,
            };
            let _ = m.validate();
            let _ = m.symbol_time();
            let _ = m.sensitivity_dbm();
            let _ = m.snr_floor_db();
            let _ = m.try_time_on_air(len);
            prop_assert!(m.time_on_air(len) >= m.time_on_air(len / 2));
        }
    }
}
