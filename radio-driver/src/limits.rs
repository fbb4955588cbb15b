//! What the drivers know of each module kind: the settings its firmware or chip can be told
//! (one table, used by the drivers before they touch a port and by the daemon's config check
//! before anything starts), and what it then puts on air for a frame (which the engine's
//! duty-cycle ledger charges).
//!
//! The kind itself is a board fact and lives in `lorabridge_hardware`; these facts are the
//! drivers', so they come as the [`DriverFacts`] trait on it.

use std::fmt;
use std::ops::RangeInclusive;

use lorabridge_hardware::{Modulation, ModuleKind, OnAir};

/// The bandwidths a module accepts.
#[derive(Clone, Debug)]
pub enum Bandwidths {
    /// Only these values (the AT firmwares take an index or kHz from a short list).
    Only(&'static [u32]),
    /// Any value in this range (RNode takes a number of Hz).
    Range(RangeInclusive<u32>),
}

/// One module family's limits.
#[derive(Clone, Debug)]
pub struct ModuleLimits {
    pub frequency_hz: RangeInclusive<u32>,
    pub spreading_factor: RangeInclusive<u8>,
    pub bandwidths: Bandwidths,
    pub min_preamble_symbols: u16,
    pub tx_power_dbm: RangeInclusive<i8>,
    /// The sync word the firmware keeps (the serial modules' drivers cannot change it);
    /// `None` when the driver sets any (an SX126x on SPI).
    pub sync_word: Option<u8>,
}

/// A setting the module cannot take: which `Modulation` field, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitError {
    pub field: &'static str,
    pub reason: String,
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.reason)
    }
}

const AT_BANDWIDTHS: &[u32] = &[125_000, 250_000, 500_000];
/// The LoRa bandwidths of the SX126x and the SX127x alike (their register codes differ).
const SX126X_BANDWIDTHS: &[u32] = &[
    7_800, 10_400, 15_600, 20_800, 31_250, 41_700, 62_500, 125_000, 250_000, 500_000,
];

/// What this crate's drivers know of a module kind.
pub trait DriverFacts {
    /// The settings the module accepts.
    fn limits(self) -> ModuleLimits;
    /// Refuses a modulation this module's firmware cannot be set to.
    fn check(self, m: &Modulation) -> Result<(), LimitError>;
    /// What this module puts on air for a host frame sent with `m`: the airtime the
    /// duty-cycle ledger must charge.
    fn on_air(self, m: &Modulation) -> OnAir;
}

impl DriverFacts for ModuleKind {
    fn limits(self) -> ModuleLimits {
        match self {
            ModuleKind::Rui3 => ModuleLimits {
                frequency_hz: 150_000_000..=960_000_000,
                spreading_factor: 5..=12,
                bandwidths: Bandwidths::Only(AT_BANDWIDTHS),
                min_preamble_symbols: 5,
                tx_power_dbm: 5..=22,
                sync_word: Some(crate::rui3::SYNC_WORD),
            },
            ModuleKind::Rak811 => ModuleLimits {
                frequency_hz: 0..=u32::MAX,
                spreading_factor: 7..=12,
                bandwidths: Bandwidths::Only(AT_BANDWIDTHS),
                min_preamble_symbols: 5,
                tx_power_dbm: 5..=20,
                sync_word: Some(crate::rak811::SYNC_WORD),
            },
            ModuleKind::Rnode => ModuleLimits {
                frequency_hz: 0..=u32::MAX,
                spreading_factor: 5..=12,
                bandwidths: Bandwidths::Range(7_800..=1_625_000),
                min_preamble_symbols: 0,
                tx_power_dbm: 0..=22,
                sync_word: Some(crate::rnode::SYNC_WORD),
            },
            // The envelope; the E22's channel grid and air rates are checked by
            // `e22::check_modulation`.
            ModuleKind::E22 => ModuleLimits {
                frequency_hz: 410_125_000..=930_125_000,
                spreading_factor: 5..=12,
                bandwidths: Bandwidths::Only(AT_BANDWIDTHS),
                min_preamble_symbols: crate::e22::PREAMBLE_SYMBOLS,
                tx_power_dbm: 10..=30,
                sync_word: Some(crate::e22::SYNC_WORD),
            },
            // The chip's own ranges (datasheet §3). The power is at the antenna socket: the
            // chip's -9..=22 dBm plus up to 8 dB of a board's amplifier (the 1 W MeshAdv-Pi);
            // the driver checks the chip's side against the board's gain
            // (`Sx126xSettings::chip_power`), the board profile the socket's.
            ModuleKind::Sx126x => ModuleLimits {
                frequency_hz: 150_000_000..=960_000_000,
                spreading_factor: 5..=12,
                bandwidths: Bandwidths::Only(SX126X_BANDWIDTHS),
                min_preamble_symbols: 1,
                tx_power_dbm: -9..=30,
                sync_word: None,
            },
            // The SX1276's ranges (datasheet §2.5; the SX1277/78/79 cover less, which their
            // board profiles bound). SF6 is refused by the driver for its implicit header
            // (`sx127x::check`); the power is PA_BOOST's, the only pin the boards wire.
            ModuleKind::Sx127x => ModuleLimits {
                frequency_hz: 137_000_000..=1_020_000_000,
                spreading_factor: 7..=12,
                bandwidths: Bandwidths::Only(SX126X_BANDWIDTHS),
                min_preamble_symbols: 6,
                tx_power_dbm: 2..=20,
                sync_word: None,
            },
        }
    }

    fn check(self, m: &Modulation) -> Result<(), LimitError> {
        check_limits(self, m)?;
        if self == ModuleKind::E22 {
            crate::e22::check_modulation(m)?;
        }
        Ok(())
    }

    /// An RNode adds its header byte to each packet, sends a preamble of
    /// at least 18 symbols and splits frames over 254 bytes; the E22 driver adds its framing;
    /// the AT modules send the frame as configured.
    fn on_air(self, m: &Modulation) -> OnAir {
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
}

/// Refuses a modulation outside `kind`'s table.
fn check_limits(kind: ModuleKind, m: &Modulation) -> Result<(), LimitError> {
    let limits = kind.limits();
    let error = |field, reason| Err(LimitError { field, reason });
    let out_of_range = |value: String, start: String, end: String| {
        format!("{value} is out of range {start}..={end} of the {kind} driver")
    };
    let range = &limits.frequency_hz;
    if !range.contains(&m.frequency_hz) {
        let reason = out_of_range(
            m.frequency_hz.to_string(),
            range.start().to_string(),
            range.end().to_string(),
        );
        return error("frequency_hz", reason);
    }
    let range = &limits.spreading_factor;
    if !range.contains(&m.spreading_factor) {
        let reason = out_of_range(
            m.spreading_factor.to_string(),
            range.start().to_string(),
            range.end().to_string(),
        );
        return error("spreading_factor", reason);
    }
    match &limits.bandwidths {
        Bandwidths::Only(allowed) if !allowed.contains(&m.bandwidth_hz) => {
            let list: Vec<String> = allowed.iter().map(u32::to_string).collect();
            let (last, rest) = list.split_last().expect("a non-empty list");
            let reason = format!(
                "{}: the {kind} driver offers only {} and {last}",
                m.bandwidth_hz,
                rest.join(", ")
            );
            return error("bandwidth_hz", reason);
        }
        Bandwidths::Range(range) if !range.contains(&m.bandwidth_hz) => {
            let reason = out_of_range(
                m.bandwidth_hz.to_string(),
                range.start().to_string(),
                range.end().to_string(),
            );
            return error("bandwidth_hz", reason);
        }
        _ => {}
    }
    if m.preamble_symbols < limits.min_preamble_symbols {
        let reason = format!(
            "{} is below the {kind} driver's minimum of {}",
            m.preamble_symbols, limits.min_preamble_symbols
        );
        return error("preamble_symbols", reason);
    }
    let range = &limits.tx_power_dbm;
    if !range.contains(&m.tx_power_dbm) {
        let reason = out_of_range(
            m.tx_power_dbm.to_string(),
            range.start().to_string(),
            range.end().to_string(),
        );
        return error("tx_power_dbm", reason);
    }
    if let Some(kept) = limits.sync_word.filter(|kept| *kept != m.sync_word) {
        let reason = format!(
            "{:#04x}: the {kind} firmware cannot change it from {kept:#04x}",
            m.sync_word
        );
        return error("sync_word", reason);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m() -> Modulation {
        Modulation {
            spreading_factor: 7,
            ..Modulation::eu868_default()
        }
    }

    #[test]
    fn each_module_refuses_what_its_firmware_cannot_do() {
        for kind in [ModuleKind::Rui3, ModuleKind::Rak811, ModuleKind::Rnode] {
            assert_eq!(kind.check(&m()), Ok(()), "{kind}");
        }
        let sf6 = Modulation {
            spreading_factor: 6,
            ..m()
        };
        assert_eq!(
            ModuleKind::Rak811.check(&sf6).unwrap_err().field,
            "spreading_factor"
        );
        assert_eq!(ModuleKind::Rui3.check(&sf6), Ok(()));
        let narrow = Modulation {
            bandwidth_hz: 62_500,
            ..m()
        };
        let e = ModuleKind::Rui3.check(&narrow).unwrap_err();
        assert_eq!(
            e.reason,
            "62500: the rui3 driver offers only 125000, 250000 and 500000"
        );
        assert_eq!(ModuleKind::Rnode.check(&narrow), Ok(()));
        let loud = Modulation {
            tx_power_dbm: 21,
            ..m()
        };
        assert_eq!(
            ModuleKind::Rak811.check(&loud).unwrap_err().field,
            "tx_power_dbm"
        );
        let sync = Modulation {
            sync_word: 0x34,
            ..m()
        };
        assert_eq!(
            ModuleKind::Rnode.check(&sync).unwrap_err().field,
            "sync_word"
        );
    }

    #[test]
    fn the_e22_takes_only_its_channels_and_air_rates() {
        let e22 = Modulation {
            frequency_hz: 868_125_000,
            spreading_factor: 11,
            bandwidth_hz: 500_000,
            ..m()
        };
        assert_eq!(ModuleKind::E22.check(&e22), Ok(()));
        assert_eq!(
            ModuleKind::E22.check(&m()).unwrap_err().field,
            "frequency_hz"
        );
        let quiet = Modulation {
            tx_power_dbm: 5,
            ..e22
        };
        assert_eq!(
            ModuleKind::E22.check(&quiet).unwrap_err().field,
            "tx_power_dbm"
        );
        let sf9 = Modulation {
            spreading_factor: 9,
            ..e22
        };
        assert_eq!(
            ModuleKind::E22.check(&sf9).unwrap_err().field,
            "spreading_factor"
        );
    }

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
}
