//! Regional frequency plans: where a bridge may transmit, how loud, and how often.
//!
//! Plans are data (TOML files in `hardware/regions/`, compiled into the binary) so that a
//! regulator's change or a country's variant is an edit of a text file, not of code, and so
//! that an operator can load a plan of their own with [`RegionPlan::from_toml_str`].

use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use crate::modulation::{Modulation, ModulationError};

/// Duty cycle is counted over one hour (ETSI EN 300 220): 1 % means 36 s per hour.
pub const DUTY_CYCLE_WINDOW: Duration = Duration::from_secs(3600);

/// The plans shipped with the binary: (name, TOML text).
const BUILTIN: [(&str, &str); 5] = [
    ("EU868", include_str!("../regions/eu868.toml")),
    ("US915", include_str!("../regions/us915.toml")),
    ("AU915", include_str!("../regions/au915.toml")),
    ("AS923", include_str!("../regions/as923.toml")),
    ("IN865", include_str!("../regions/in865.toml")),
];

/// A region's rules for unlicensed LoRa transmissions: a set of non-overlapping sub-bands,
/// each with its own power, duty-cycle and dwell limits.
#[derive(Clone, Debug, PartialEq)]
pub struct RegionPlan {
    /// Short name, e.g. "EU868"; how configuration files refer to the plan.
    pub name: String,
    /// One line for humans (status pages, `--help`).
    pub description: String,
    /// What `max_power_dbm` of the sub-bands measures.
    pub power_reference: PowerReference,
    /// The sub-bands, sorted by frequency, not overlapping.
    pub sub_bands: Vec<SubBand>,
}

/// How the regulator states a power limit. [`RegionPlan::check`] compares the module's
/// conducted power with the limit directly, which is right for a unity-gain antenna; an
/// operator with a gain antenna must lower the power by the gain (ERP is relative to a
/// dipole, 2.15 dB above isotropic).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PowerReference {
    /// Effective radiated power, relative to a half-wave dipole (Europe).
    Erp,
    /// Effective isotropic radiated power (most LoRaWAN regions).
    Eirp,
    /// Power at the antenna connector (FCC 15.247).
    Conducted,
}

/// A frequency range with uniform rules.
#[derive(Clone, Debug, PartialEq)]
pub struct SubBand {
    /// Name used in refusals and status, e.g. "869.4-869.65".
    pub name: String,
    /// Lowest frequency in Hz a channel may reach (its lower edge, not its centre).
    pub min_hz: u32,
    /// Highest frequency in Hz a channel may reach (its upper edge).
    pub max_hz: u32,
    /// Fraction of each hour the transmitter may be on air in this sub-band (0.01 = 1 %),
    /// or `None` where no duty cycle applies.
    pub duty_cycle: Option<f64>,
    /// Highest power in dBm, measured as the plan's [`PowerReference`] says.
    pub max_power_dbm: i8,
    /// Per-channel dwell-time limit, where one applies (US915 hopping rules).
    pub dwell: Option<Dwell>,
}

/// At most `max` of airtime on one channel within any `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dwell {
    /// Airtime allowed per channel in any window.
    pub max: Duration,
    /// Length of the sliding window.
    pub window: Duration,
}

/// Why a plan could not be found, loaded or satisfied; each variant names the key and the
/// value so that the message says what to fix.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum RegionError {
    /// No built-in plan has that name.
    #[error("unknown region {name:?}; known regions: {known}")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The built-in names, comma-separated.
        known: String,
    },
    /// The plan file is not valid TOML or has wrong or unknown keys.
    #[error("region plan: {0}")]
    Toml(String),
    /// A plan without sub-bands could never be used.
    #[error("region plan {plan:?}: sub_bands is empty")]
    NoSubBands {
        /// The plan's name.
        plan: String,
    },
    /// Two sub-bands with the same name would make refusals ambiguous.
    #[error("region plan {plan:?}: sub-band name {name:?} appears twice")]
    DuplicateName {
        /// The plan's name.
        plan: String,
        /// The repeated sub-band name.
        name: String,
    },
    /// A sub-band's range is empty or reversed.
    #[error("sub-band {band:?}: min_hz {min_hz} must be below max_hz {max_hz}")]
    EmptyRange {
        /// The sub-band's name.
        band: String,
        /// Its lower edge.
        min_hz: u32,
        /// Its upper edge.
        max_hz: u32,
    },
    /// A duty cycle outside (0, 1].
    #[error("sub-band {band:?}: duty_cycle {value} is out of range (0, 1]")]
    DutyCycle {
        /// The sub-band's name.
        band: String,
        /// The bad value.
        value: f64,
    },
    /// A dwell limit that is zero or longer than its window.
    #[error(
        "sub-band {band:?}: dwell max_ms {max_ms} must be above 0 and at most window_ms {window_ms}"
    )]
    Dwell {
        /// The sub-band's name.
        band: String,
        /// The allowed airtime in ms.
        max_ms: u64,
        /// The window in ms.
        window_ms: u64,
    },
    /// Two sub-bands share frequencies, so which rules apply would be ambiguous.
    #[error("sub-bands {first:?} and {second:?} overlap")]
    Overlap {
        /// The lower sub-band.
        first: String,
        /// The sub-band starting inside it.
        second: String,
    },
    /// The modulation itself is invalid.
    #[error(transparent)]
    Modulation(#[from] ModulationError),
    /// The channel does not lie wholly inside one sub-band.
    #[error(
        "frequency_hz {frequency_hz} with bandwidth_hz {bandwidth_hz} does not fit inside any \
         sub-band of {plan}"
    )]
    NotInPlan {
        /// The plan's name.
        plan: String,
        /// The channel's centre.
        frequency_hz: u32,
        /// The channel's width.
        bandwidth_hz: u32,
    },
    /// More power than the sub-band allows.
    #[error("tx_power_dbm {value} is above max_power_dbm {max} of sub-band {band:?}")]
    Power {
        /// The sub-band's name.
        band: String,
        /// The configured power.
        value: i8,
        /// The limit.
        max: i8,
    },
    /// A largest frame would stay on the channel longer than the dwell limit.
    #[error(
        "max_payload {max_payload} B takes {airtime:?} on air, above the dwell limit {limit:?} \
         of sub-band {band:?}"
    )]
    DwellExceeded {
        /// The sub-band's name.
        band: String,
        /// The frame size checked.
        max_payload: usize,
        /// Its airtime.
        airtime: Duration,
        /// The dwell limit.
        limit: Duration,
    },
    /// A largest frame would be longer than the whole hourly duty-cycle budget.
    #[error(
        "max_payload {max_payload} B takes {airtime:?} on air, above the hourly duty-cycle \
         budget {budget:?} of sub-band {band:?}"
    )]
    DutyBudgetExceeded {
        /// The sub-band's name.
        band: String,
        /// The frame size checked.
        max_payload: usize,
        /// Its airtime.
        airtime: Duration,
        /// The airtime allowed per hour.
        budget: Duration,
    },
}

impl RegionPlan {
    /// A plan shipped with the binary, by name, case-insensitively ("eu868" works), so a
    /// configuration needs only one word.
    pub fn builtin(name: &str) -> Result<RegionPlan, RegionError> {
        let (_, text) = BUILTIN
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .ok_or_else(|| RegionError::Unknown {
                name: name.to_owned(),
                known: Self::builtin_names().join(", "),
            })?;
        Self::from_toml_str(text)
    }

    /// Names of the plans shipped with the binary, for help texts and error messages.
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTIN.iter().map(|(name, _)| *name).collect()
    }

    /// Loads and validates a plan written in the same TOML format as `hardware/regions/`,
    /// for regions or national variants the binary does not ship.
    pub fn from_toml_str(text: &str) -> Result<RegionPlan, RegionError> {
        let file: PlanFile = toml::from_str(text).map_err(|e| RegionError::Toml(e.to_string()))?;
        file.into_plan()
    }

    /// The sub-band that holds the whole channel (centre ± half the bandwidth), if any; a
    /// channel straddling a band edge belongs to none, since part of it would break the
    /// neighbour's rules.
    pub fn sub_band(&self, frequency_hz: u32, bandwidth_hz: u32) -> Option<&SubBand> {
        self.sub_bands
            .iter()
            .find(|band| band.contains_channel(frequency_hz, bandwidth_hz))
    }

    /// Whether a configuration is legal here before the radio is ever keyed: the modulation
    /// is valid, its channel lies in a sub-band, its power is within that band's limit, and a
    /// frame of `max_payload` bytes neither exceeds the dwell limit nor the whole hourly
    /// duty-cycle budget (such a frame could never be sent).
    pub fn check(&self, m: &Modulation, max_payload: usize) -> Result<(), RegionError> {
        m.validate()?;
        let band = self
            .sub_band(m.frequency_hz, m.bandwidth_hz)
            .ok_or_else(|| RegionError::NotInPlan {
                plan: self.name.clone(),
                frequency_hz: m.frequency_hz,
                bandwidth_hz: m.bandwidth_hz,
            })?;
        if m.tx_power_dbm > band.max_power_dbm {
            return Err(RegionError::Power {
                band: band.name.clone(),
                value: m.tx_power_dbm,
                max: band.max_power_dbm,
            });
        }
        let airtime = m.try_time_on_air(max_payload)?;
        if let Some(dwell) = band.dwell.filter(|dwell| airtime > dwell.max) {
            return Err(RegionError::DwellExceeded {
                band: band.name.clone(),
                max_payload,
                airtime,
                limit: dwell.max,
            });
        }
        if let Some(budget) = band.duty_budget().filter(|budget| airtime > *budget) {
            return Err(RegionError::DutyBudgetExceeded {
                band: band.name.clone(),
                max_payload,
                airtime,
                budget,
            });
        }
        Ok(())
    }
}

impl SubBand {
    /// Whether the whole channel, centre ± half the bandwidth, lies inside this sub-band.
    pub fn contains_channel(&self, frequency_hz: u32, bandwidth_hz: u32) -> bool {
        let half = u64::from(bandwidth_hz) / 2;
        let centre = u64::from(frequency_hz);
        centre >= u64::from(self.min_hz) + half && centre + half <= u64::from(self.max_hz)
    }

    /// Airtime allowed per [`DUTY_CYCLE_WINDOW`], rounded to the nanosecond (36 s at 1 %),
    /// or `None` without a duty cycle.
    pub fn duty_budget(&self) -> Option<Duration> {
        let window_ns = DUTY_CYCLE_WINDOW.as_nanos() as f64;
        // duty_cycle is validated to (0, 1], so the product fits in u64 nanoseconds.
        self.duty_cycle
            .map(|duty| Duration::from_nanos((window_ns * duty).round() as u64))
    }
}

/// The TOML shape of a plan file; converted to [`RegionPlan`] after validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    name: String,
    description: String,
    power_reference: PowerReference,
    sub_bands: Vec<SubBandFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubBandFile {
    name: String,
    min_hz: u32,
    max_hz: u32,
    duty_cycle: Option<f64>,
    max_power_dbm: i8,
    dwell: Option<DwellFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DwellFile {
    max_ms: u64,
    window_ms: u64,
}

impl PlanFile {
    fn into_plan(self) -> Result<RegionPlan, RegionError> {
        if self.sub_bands.is_empty() {
            return Err(RegionError::NoSubBands { plan: self.name });
        }
        let mut sub_bands = self
            .sub_bands
            .into_iter()
            .map(SubBandFile::into_sub_band)
            .collect::<Result<Vec<_>, _>>()?;
        sub_bands.sort_by_key(|band| band.min_hz);
        for (i, band) in sub_bands.iter().enumerate() {
            if sub_bands[..i].iter().any(|other| other.name == band.name) {
                return Err(RegionError::DuplicateName {
                    plan: self.name,
                    name: band.name.clone(),
                });
            }
        }
        // Sorted by lower edge, bands overlap iff one starts before its predecessor ends;
        // touching edges (868.0 MHz ending one band and starting the next) are fine.
        if let Some(pair) = sub_bands
            .windows(2)
            .find(|pair| pair[1].min_hz < pair[0].max_hz)
        {
            return Err(RegionError::Overlap {
                first: pair[0].name.clone(),
                second: pair[1].name.clone(),
            });
        }
        Ok(RegionPlan {
            name: self.name,
            description: self.description,
            power_reference: self.power_reference,
            sub_bands,
        })
    }
}

impl SubBandFile {
    fn into_sub_band(self) -> Result<SubBand, RegionError> {
        if self.min_hz >= self.max_hz {
            return Err(RegionError::EmptyRange {
                band: self.name,
                min_hz: self.min_hz,
                max_hz: self.max_hz,
            });
        }
        if let Some(value) = self.duty_cycle.filter(|d| !(*d > 0.0 && *d <= 1.0)) {
            return Err(RegionError::DutyCycle {
                band: self.name,
                value,
            });
        }
        let dwell = match self.dwell {
            None => None,
            Some(DwellFile { max_ms, window_ms }) if max_ms > 0 && max_ms <= window_ms => {
                Some(Dwell {
                    max: Duration::from_millis(max_ms),
                    window: Duration::from_millis(window_ms),
                })
            }
            Some(DwellFile { max_ms, window_ms }) => {
                return Err(RegionError::Dwell {
                    band: self.name,
                    max_ms,
                    window_ms,
                });
            }
        };
        Ok(SubBand {
            name: self.name,
            min_hz: self.min_hz,
            max_hz: self.max_hz,
            duty_cycle: self.duty_cycle,
            max_power_dbm: self.max_power_dbm,
            dwell,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eu868() -> RegionPlan {
        RegionPlan::builtin("EU868").expect("builtin EU868")
    }

    #[test]
    fn every_builtin_plan_loads() {
        for name in RegionPlan::builtin_names() {
            let plan = RegionPlan::builtin(name).expect(name);
            assert_eq!(plan.name, name);
            assert!(!plan.sub_bands.is_empty());
        }
    }

    #[test]
    fn lookup_is_case_insensitive_and_unknown_names_list_the_known() {
        assert_eq!(RegionPlan::builtin("eu868").expect("eu868").name, "EU868");
        let error = RegionPlan::builtin("XX1").expect_err("unknown").to_string();
        assert_eq!(
            error,
            "unknown region \"XX1\"; known regions: EU868, US915, AU915, AS923, IN865"
        );
    }

    #[test]
    fn eu868_has_the_fact_sheet_sub_bands() {
        let plan = eu868();
        let bands: Vec<_> = plan
            .sub_bands
            .iter()
            .map(|b| (b.min_hz, b.max_hz, b.duty_cycle, b.max_power_dbm))
            .collect();
        assert_eq!(
            bands,
            [
                (863_000_000, 865_000_000, Some(0.001), 14),
                (865_000_000, 868_000_000, Some(0.01), 14),
                (868_000_000, 868_600_000, Some(0.01), 14),
                (868_700_000, 869_200_000, Some(0.001), 14),
                (869_400_000, 869_650_000, Some(0.1), 27),
                (869_700_000, 870_000_000, Some(0.01), 14),
            ]
        );
        assert_eq!(plan.power_reference, PowerReference::Erp);
        let ten_percent = plan.sub_band(869_525_000, 125_000).expect("g2");
        assert_eq!(ten_percent.duty_budget(), Some(Duration::from_secs(360)));
        let one_percent = plan.sub_band(868_100_000, 125_000).expect("g");
        assert_eq!(one_percent.duty_budget(), Some(Duration::from_secs(36)));
        let tenth = plan.sub_band(864_000_000, 125_000).expect("h1.3");
        assert_eq!(tenth.duty_budget(), Some(Duration::from_millis(3_600)));
    }

    #[test]
    fn us915_dwell_and_power() {
        let plan = RegionPlan::builtin("US915").expect("US915");
        let band = plan.sub_band(915_000_000, 125_000).expect("band");
        assert_eq!(
            band.dwell,
            Some(Dwell {
                max: Duration::from_millis(400),
                window: Duration::from_secs(20),
            })
        );
        assert_eq!(band.max_power_dbm, 30);
        assert_eq!(band.duty_cycle, None);
        assert_eq!(plan.power_reference, PowerReference::Conducted);
    }

    #[test]
    fn channel_must_fit_wholly_inside_a_sub_band() {
        let plan = eu868();
        // 869.4625–869.5875 MHz: inside 869.4–869.65.
        assert!(plan.sub_band(869_525_000, 125_000).is_some());
        // 869.5875–869.7125 MHz sticks out of the top.
        assert!(plan.sub_band(869_650_000, 125_000).is_none());
        // Exactly touching both edges fits.
        assert!(plan.sub_band(869_525_000, 250_000).is_some());
        assert!(plan.sub_band(869_525_000, 500_000).is_none());
        // Between two sub-bands (868.6–868.7 MHz gap).
        assert!(plan.sub_band(868_650_000, 31_250).is_none());
        // Near zero the lower edge would underflow.
        assert!(plan.sub_band(100, 500_000).is_none());
    }

    #[test]
    fn check_accepts_the_defaults() {
        let plan = eu868();
        assert_eq!(plan.check(&Modulation::eu868_default(), 255), Ok(()));
        let us = RegionPlan::builtin("US915").expect("US915");
        assert_eq!(us.check(&Modulation::us915_default(), 255), Ok(()));
    }

    #[test]
    fn check_refuses_with_key_and_value() {
        let plan = eu868();
        let base = Modulation::eu868_default();
        let outside = Modulation {
            frequency_hz: 869_300_000,
            ..base
        };
        assert_eq!(
            plan.check(&outside, 10).expect_err("gap").to_string(),
            "frequency_hz 869300000 with bandwidth_hz 125000 does not fit inside any sub-band \
             of EU868"
        );
        let loud = Modulation {
            frequency_hz: 868_100_000,
            tx_power_dbm: 20,
            ..base
        };
        assert_eq!(
            plan.check(&loud, 10).expect_err("power").to_string(),
            "tx_power_dbm 20 is above max_power_dbm 14 of sub-band \"868.0-868.6\""
        );
        let at_27 = Modulation {
            tx_power_dbm: 27,
            ..base
        };
        assert_eq!(plan.check(&at_27, 255), Ok(()));
        let invalid = Modulation {
            coding_rate: 9,
            ..base
        };
        assert_eq!(
            plan.check(&invalid, 10),
            Err(RegionError::Modulation(ModulationError::CodingRate(9)))
        );
        assert_eq!(
            plan.check(&base, 300),
            Err(RegionError::Modulation(ModulationError::PayloadTooLong(
                300
            )))
        );
    }

    #[test]
    fn check_refuses_frames_longer_than_dwell_or_budget() {
        let us = RegionPlan::builtin("US915").expect("US915");
        let sf8 = Modulation {
            spreading_factor: 8,
            ..Modulation::us915_default()
        };
        // SF8/BW125: 138 B is the largest payload within 400 ms (fact sheet).
        assert_eq!(us.check(&sf8, 138), Ok(()));
        let error = us.check(&sf8, 139).expect_err("dwell");
        assert!(matches!(
            error,
            RegionError::DwellExceeded {
                max_payload: 139,
                ..
            }
        ));
        assert!(
            error.to_string().starts_with("max_payload 139 B takes"),
            "{error}"
        );

        // SF12 255 B = 9.02 s exceeds the 3.6 s per hour of a 0.1 % band.
        let plan = eu868();
        let sf12 = Modulation {
            frequency_hz: 864_000_000,
            spreading_factor: 12,
            ..Modulation::eu868_default()
        };
        let error = plan.check(&sf12, 255).expect_err("budget");
        assert!(
            matches!(error, RegionError::DutyBudgetExceeded { .. }),
            "{error}"
        );
    }

    #[test]
    fn user_plans_are_validated_on_load() {
        let band = |name: &str, min: u32, max: u32, extra: &str| {
            format!(
                "[[sub_bands]]\nname = \"{name}\"\nmin_hz = {min}\nmax_hz = {max}\n\
                 max_power_dbm = 14\n{extra}\n"
            )
        };
        let plan = |bands: &str| {
            format!("name = \"X\"\ndescription = \"test\"\npower_reference = \"eirp\"\n{bands}")
        };
        let good = plan(&band("a", 1, 2, "duty_cycle = 1.0"));
        assert!(RegionPlan::from_toml_str(&good).is_ok());

        let cases = [
            (
                plan(&band("a", 2, 2, "")),
                "sub-band \"a\": min_hz 2 must be below max_hz 2",
            ),
            (
                plan(&band("a", 1, 2, "duty_cycle = 0.0")),
                "sub-band \"a\": duty_cycle 0 is out of range (0, 1]",
            ),
            (
                plan(&band("a", 1, 2, "duty_cycle = 1.5")),
                "sub-band \"a\": duty_cycle 1.5 is out of range (0, 1]",
            ),
            (
                plan(&band(
                    "a",
                    1,
                    2,
                    "dwell = { max_ms = 500, window_ms = 400 }",
                )),
                "sub-band \"a\": dwell max_ms 500 must be above 0 and at most window_ms 400",
            ),
            (
                plan(&format!(
                    "{}{}",
                    band("a", 10, 20, ""),
                    band("b", 5, 11, "")
                )),
                "sub-bands \"b\" and \"a\" overlap",
            ),
            (
                plan(&format!(
                    "{}{}",
                    band("a", 10, 20, ""),
                    band("a", 20, 30, "")
                )),
                "region plan \"X\": sub-band name \"a\" appears twice",
            ),
            (plan(""), "missing field `sub_bands`"),
            (
                plan("sub_bands = []"),
                "region plan \"X\": sub_bands is empty",
            ),
        ];
        for (text, message) in cases {
            let error = RegionPlan::from_toml_str(&text)
                .expect_err(message)
                .to_string();
            assert!(error.contains(message), "{error}\n---\n{text}");
        }
        let typo = plan(&band("a", 1, 2, "dutycycle = 0.01"));
        let error = RegionPlan::from_toml_str(&typo).expect_err("unknown key");
        assert!(error.to_string().contains("dutycycle"), "{error}");
    }
}
