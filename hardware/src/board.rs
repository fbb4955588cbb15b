//! Board and HAT profiles: which module sits where, on which pins, and what it can do.
//!
//! Profiles are data (TOML files in `hardware/boards/`, compiled into the binary) so that a
//! configuration can say `board = "rak3172-usb"` and get port, baud, driver and limits, and
//! so that a board we do not ship is one text file away ([`BoardProfile::from_toml_str`]).

use serde::Deserialize;
use thiserror::Error;

use crate::ModuleKind;
use crate::modulation::{MAX_PAYLOAD_BYTES, Modulation, ModulationError};

/// The profiles shipped with the binary: (id, TOML text).
const BUILTIN: [(&str, &str); 11] = [
    ("rak3172-usb", include_str!("../boards/rak3172-usb.toml")),
    ("rak811-phat", include_str!("../boards/rak811-phat.toml")),
    ("rnode-tbeam", include_str!("../boards/rnode-tbeam.toml")),
    ("rnode-lora32", include_str!("../boards/rnode-lora32.toml")),
    (
        "rnode-rak4631",
        include_str!("../boards/rnode-rak4631.toml"),
    ),
    (
        "waveshare-sx1262-hat",
        include_str!("../boards/waveshare-sx1262-hat.toml"),
    ),
    (
        "rak6421-rak13300",
        include_str!("../boards/rak6421-rak13300.toml"),
    ),
    ("meshadv-pi", include_str!("../boards/meshadv-pi.toml")),
    ("meshadv-mini", include_str!("../boards/meshadv-mini.toml")),
    (
        "adafruit-rfm9x-bonnet",
        include_str!("../boards/adafruit-rfm9x-bonnet.toml"),
    ),
    (
        "dragino-lora-gps-hat",
        include_str!("../boards/dragino-lora-gps-hat.toml"),
    ),
];

/// A LoRa board or HAT as the bridge drives it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardProfile {
    /// Short id used in configuration files, e.g. "rak3172-usb".
    pub id: String,
    /// One line for humans.
    pub description: String,
    /// Which firmware protocol, hence which driver, talks to it.
    pub module: ModuleKind,
    /// The LoRa transceiver, which decides e.g. whether SF5/SF6 exist.
    pub chip: Chip,
    /// The device node the module usually appears at: a serial port, or for SPI radios the
    /// spidev node (`/dev/spidevB.C`); the configuration may override it.
    pub serial_path: String,
    /// Serial speed the firmware uses (for the E22: its configuration mode). Absent (0) for
    /// SPI radios, which have no serial line.
    #[serde(default)]
    pub baud: u32,
    /// Lowest centre frequency in Hz the board is built for.
    pub freq_min_hz: u32,
    /// Highest centre frequency in Hz the board is built for.
    pub freq_max_hz: u32,
    /// Lowest output power in dBm the firmware accepts.
    pub tx_power_min_dbm: i8,
    /// Highest output power in dBm the firmware accepts.
    pub tx_power_max_dbm: i8,
    /// Largest frame in bytes the host may hand over for one LoRa frame (RUI3 250, RAK811
    /// 118, RNode 254 + its 1-byte header, E22 240 sub-packet, SPI radios 255): what the
    /// fragmenter splits to.
    pub mtu: usize,
    /// The GPIO lines the host drives or reads (E22 mode pins, SPI radio control lines);
    /// absent for modules with nothing but a serial line.
    #[serde(default)]
    pub pins: Option<Pins>,
}

/// GPIO lines by Broadcom (BCM) number, i.e. the Raspberry Pi kernel's line names `GPIO<n>`.
///
/// Which lines a module needs depends on its kind (checked on load): an E22 needs M0 and M1;
/// an SX126x reset, busy and IRQ (DIO1); an SX127x reset and IRQ (DIO0).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pins {
    /// E22: mode pin M0.
    pub m0: Option<u32>,
    /// E22: mode pin M1.
    pub m1: Option<u32>,
    /// E22: the busy output AUX, if wired to the host.
    pub aux: Option<u32>,
    /// SPI: chip select driven as a GPIO; absent when the spidev's own CE line is used.
    pub cs: Option<u32>,
    /// SPI: the radio's reset line (NRESET).
    pub reset: Option<u32>,
    /// SX126x: the BUSY line.
    pub busy: Option<u32>,
    /// SPI: the interrupt line (DIO1 on SX126x, DIO0 on SX127x).
    pub irq: Option<u32>,
    /// SPI: antenna switch, receive side, driven by the host.
    pub rx_enable: Option<u32>,
    /// SPI: antenna switch, transmit side, driven by the host.
    pub tx_enable: Option<u32>,
    /// SPI: lines held high while the radio is used (module power, antenna switch supply).
    #[serde(default)]
    pub power_enable: Vec<u32>,
    /// SX126x: DIO2 drives the antenna switch's transmit side.
    #[serde(default)]
    pub dio2_rf_switch: bool,
    /// SX126x: DIO3 powers the TCXO (the voltage is not in our sources; the driver picks it).
    #[serde(default)]
    pub dio3_tcxo: bool,
}

impl Pins {
    /// Every line named, as (its role, its BCM number), e.g. ("M0", 22): what must be free for
    /// the module (`lorabridge doctor` checks them).
    pub fn lines(&self) -> Vec<(&'static str, u32)> {
        let roles = [
            ("M0", self.m0),
            ("M1", self.m1),
            ("AUX", self.aux),
            ("CS", self.cs),
            ("RESET", self.reset),
            ("BUSY", self.busy),
            ("IRQ", self.irq),
            ("RX enable", self.rx_enable),
            ("TX enable", self.tx_enable),
        ];
        let power = self.power_enable.iter().map(|n| ("power enable", Some(*n)));
        roles
            .into_iter()
            .chain(power)
            .filter_map(|(role, line)| Some((role, line?)))
            .collect()
    }
}

/// LoRa transceiver chips of the supported boards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum Chip {
    /// Semtech SX1262 (SX126x family).
    #[serde(rename = "SX1262")]
    Sx1262,
    /// Semtech SX1276 (SX127x family).
    #[serde(rename = "SX1276")]
    Sx1276,
    /// ST STM32WLE5, a microcontroller with an SX126x-class radio inside.
    #[serde(rename = "STM32WLE5")]
    Stm32wle5,
}

impl Chip {
    /// SF5 and SF6 with an explicit header exist only on SX126x-class radios.
    pub fn supports_sf5_sf6(self) -> bool {
        matches!(self, Chip::Sx1262 | Chip::Stm32wle5)
    }
}

/// Why a profile could not be found, loaded or used; each variant names the key and value.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum BoardError {
    /// No built-in profile has that id.
    #[error("unknown board {id:?}; known boards: {known}")]
    Unknown {
        /// The id asked for.
        id: String,
        /// The built-in ids, comma-separated.
        known: String,
    },
    /// The profile is not valid TOML or has wrong or unknown keys.
    #[error("board profile: {0}")]
    Toml(String),
    /// A min/max pair is reversed.
    #[error("board {board:?}: {key} range {min}..={max} is empty")]
    EmptyRange {
        /// The board's id.
        board: String,
        /// "freq" or "tx_power".
        key: &'static str,
        /// The lower bound.
        min: i64,
        /// The upper bound.
        max: i64,
    },
    /// An MTU of zero or more than one LoRa frame.
    #[error("board {board:?}: mtu {value} is out of range 1..=255")]
    Mtu {
        /// The board's id.
        board: String,
        /// The bad value.
        value: usize,
    },
    /// A serial module without a baud rate, or an SPI radio with one.
    #[error("board {board:?}: {reason}")]
    Baud {
        /// The board's id.
        board: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A pin the module needs is missing, or pins are given for a module without any.
    #[error("board {board:?}: pins: {reason}")]
    Pins {
        /// The board's id.
        board: String,
        /// What is wrong.
        reason: String,
    },
    /// The modulation itself is invalid.
    #[error(transparent)]
    Modulation(#[from] ModulationError),
    /// The board is not built for this frequency.
    #[error("frequency_hz {value} is out of range {min}..={max} of board {board:?}")]
    Frequency {
        /// The board's id.
        board: String,
        /// The configured frequency.
        value: u32,
        /// The board's lowest frequency.
        min: u32,
        /// The board's highest frequency.
        max: u32,
    },
    /// The firmware does not accept this power.
    #[error("tx_power_dbm {value} is out of range {min}..={max} of board {board:?}")]
    Power {
        /// The board's id.
        board: String,
        /// The configured power.
        value: i8,
        /// The board's lowest power.
        min: i8,
        /// The board's highest power.
        max: i8,
    },
    /// SF5/SF6 on a chip without them.
    #[error("spreading_factor {value} needs an SX126x radio; board {board:?} has {chip:?}")]
    SpreadingFactor {
        /// The board's id.
        board: String,
        /// The configured spreading factor.
        value: u8,
        /// The board's chip.
        chip: Chip,
    },
}

impl BoardProfile {
    /// A profile shipped with the binary, by id, case-insensitively.
    pub fn builtin(id: &str) -> Result<BoardProfile, BoardError> {
        let (_, text) = BUILTIN
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(id))
            .ok_or_else(|| BoardError::Unknown {
                id: id.to_owned(),
                known: BUILTIN.map(|(known, _)| known).join(", "),
            })?;
        Self::from_toml_str(text)
    }

    /// Every profile shipped with the binary, for `--list-boards` and the simulator.
    pub fn all() -> Vec<BoardProfile> {
        BUILTIN
            .iter()
            .filter_map(|(_, text)| Self::from_toml_str(text).ok())
            .collect()
    }

    /// Loads and validates a profile in the format of `hardware/boards/`, for boards the
    /// binary does not ship.
    pub fn from_toml_str(text: &str) -> Result<BoardProfile, BoardError> {
        let profile: BoardProfile =
            toml::from_str(text).map_err(|e| BoardError::Toml(e.to_string()))?;
        profile.validate()?;
        Ok(profile)
    }

    /// Whether the board can run this modulation: valid settings, a frequency it is built
    /// for, a power its firmware accepts, and SF5/SF6 only on SX126x radios.
    pub fn check(&self, m: &Modulation) -> Result<(), BoardError> {
        m.validate()?;
        if !(self.freq_min_hz..=self.freq_max_hz).contains(&m.frequency_hz) {
            return Err(BoardError::Frequency {
                board: self.id.clone(),
                value: m.frequency_hz,
                min: self.freq_min_hz,
                max: self.freq_max_hz,
            });
        }
        if !(self.tx_power_min_dbm..=self.tx_power_max_dbm).contains(&m.tx_power_dbm) {
            return Err(BoardError::Power {
                board: self.id.clone(),
                value: m.tx_power_dbm,
                min: self.tx_power_min_dbm,
                max: self.tx_power_max_dbm,
            });
        }
        if m.spreading_factor < 7 && !self.chip.supports_sf5_sf6() {
            return Err(BoardError::SpreadingFactor {
                board: self.id.clone(),
                value: m.spreading_factor,
                chip: self.chip,
            });
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), BoardError> {
        let empty = |key, min: i64, max: i64| BoardError::EmptyRange {
            board: self.id.clone(),
            key,
            min,
            max,
        };
        if self.freq_min_hz > self.freq_max_hz {
            return Err(empty(
                "freq",
                self.freq_min_hz.into(),
                self.freq_max_hz.into(),
            ));
        }
        if self.tx_power_min_dbm > self.tx_power_max_dbm {
            return Err(empty(
                "tx_power",
                self.tx_power_min_dbm.into(),
                self.tx_power_max_dbm.into(),
            ));
        }
        if !(1..=MAX_PAYLOAD_BYTES).contains(&self.mtu) {
            return Err(BoardError::Mtu {
                board: self.id.clone(),
                value: self.mtu,
            });
        }
        let baud = |reason| BoardError::Baud {
            board: self.id.clone(),
            reason,
        };
        match (self.module.is_spi(), self.baud) {
            (false, 0) => return Err(baud("baud 0 is not a serial speed")),
            (true, b) if b != 0 => {
                return Err(baud("baud is for serial modules; this is an SPI radio"));
            }
            _ => {}
        }
        self.validate_pins()
    }

    fn validate_pins(&self) -> Result<(), BoardError> {
        let error = |reason: String| BoardError::Pins {
            board: self.id.clone(),
            reason,
        };
        let pins = self.pins.clone().unwrap_or_default();
        let needed: &[(&str, Option<u32>)] = match self.module {
            ModuleKind::E22 => &[("m0", pins.m0), ("m1", pins.m1)],
            ModuleKind::Sx126x => &[
                ("reset", pins.reset),
                ("busy", pins.busy),
                ("irq", pins.irq),
            ],
            ModuleKind::Sx127x => &[("reset", pins.reset), ("irq", pins.irq)],
            ModuleKind::Rui3 | ModuleKind::Rak811 | ModuleKind::Rnode => {
                if self.pins.is_some() {
                    return Err(error(format!(
                        "a {} module has only its serial line",
                        self.module
                    )));
                }
                &[]
            }
        };
        let missing: Vec<&str> = needed
            .iter()
            .filter(|(_, line)| line.is_none())
            .map(|(name, _)| *name)
            .collect();
        if !missing.is_empty() {
            return Err(error(format!(
                "a {} module needs {}",
                self.module,
                missing.join(", ")
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_profile_loads_under_its_id() {
        for (id, text) in BUILTIN {
            let profile = BoardProfile::from_toml_str(text).expect(id);
            assert_eq!(profile.id, id);
        }
        assert_eq!(BoardProfile::all().len(), BUILTIN.len());
    }

    #[test]
    fn hats_carry_their_pins() {
        let pins = |id: &str| BoardProfile::builtin(id).expect(id).pins.expect("pins");
        let e22 = pins("waveshare-sx1262-hat");
        assert_eq!((e22.m0, e22.m1, e22.aux), (Some(22), Some(27), None));
        let mesh_adv = pins("meshadv-pi");
        assert_eq!(
            (mesh_adv.cs, mesh_adv.irq, mesh_adv.busy, mesh_adv.reset),
            (Some(21), Some(16), Some(20), Some(18))
        );
        assert_eq!(
            (mesh_adv.tx_enable, mesh_adv.rx_enable),
            (Some(13), Some(12))
        );
        assert!(mesh_adv.dio3_tcxo && !mesh_adv.dio2_rf_switch);
        assert_eq!(pins("rak6421-rak13300").power_enable, vec![12, 13]);
        let rfm = pins("adafruit-rfm9x-bonnet");
        assert_eq!(
            (rfm.cs, rfm.reset, rfm.irq, rfm.busy),
            (Some(7), Some(25), Some(22), None)
        );
        for board in BoardProfile::all() {
            assert_eq!(board.module.is_spi(), board.baud == 0, "{}", board.id);
        }
    }

    #[test]
    fn pins_are_checked_against_the_module() {
        let text = include_str!("../boards/meshadv-mini.toml");
        let error = BoardProfile::from_toml_str(&text.replace("busy = 20\n", ""))
            .expect_err("no busy line")
            .to_string();
        assert_eq!(
            error,
            "board \"meshadv-mini\": pins: a sx126x module needs busy"
        );
        let error =
            BoardProfile::from_toml_str(&text.replace("mtu = 255", "mtu = 255\nbaud = 9600"))
                .expect_err("baud on SPI")
                .to_string();
        assert!(error.contains("baud is for serial modules"), "{error}");
        let rak = include_str!("../boards/rak3172-usb.toml");
        let error = BoardProfile::from_toml_str(&format!("{rak}\n[pins]\nreset = 4\n"))
            .expect_err("pins on a serial module")
            .to_string();
        assert!(error.contains("has only its serial line"), "{error}");
    }

    #[test]
    fn profiles_carry_the_fact_sheet_numbers() {
        let rows: Vec<_> = BoardProfile::all()
            .into_iter()
            .map(|p| (p.id, p.module, p.serial_path, p.baud, p.mtu))
            .collect();
        let expected = [
            (
                "rak3172-usb",
                ModuleKind::Rui3,
                "/dev/ttyUSB0",
                115_200,
                250,
            ),
            (
                "rak811-phat",
                ModuleKind::Rak811,
                "/dev/serial0",
                115_200,
                118,
            ),
            (
                "rnode-tbeam",
                ModuleKind::Rnode,
                "/dev/ttyUSB0",
                115_200,
                254,
            ),
            (
                "rnode-lora32",
                ModuleKind::Rnode,
                "/dev/ttyUSB0",
                115_200,
                254,
            ),
            (
                "rnode-rak4631",
                ModuleKind::Rnode,
                "/dev/ttyACM0",
                115_200,
                254,
            ),
            (
                "waveshare-sx1262-hat",
                ModuleKind::E22,
                "/dev/ttyS0",
                9_600,
                240,
            ),
            (
                "rak6421-rak13300",
                ModuleKind::Sx126x,
                "/dev/spidev0.0",
                0,
                255,
            ),
            ("meshadv-pi", ModuleKind::Sx126x, "/dev/spidev0.0", 0, 255),
            ("meshadv-mini", ModuleKind::Sx126x, "/dev/spidev0.0", 0, 255),
            (
                "adafruit-rfm9x-bonnet",
                ModuleKind::Sx127x,
                "/dev/spidev0.1",
                0,
                255,
            ),
            (
                "dragino-lora-gps-hat",
                ModuleKind::Sx127x,
                "/dev/spidev0.0",
                0,
                255,
            ),
        ]
        .map(|(id, module, path, baud, mtu)| (id.to_owned(), module, path.to_owned(), baud, mtu));
        assert_eq!(rows, expected);
    }

    #[test]
    fn lookup_is_case_insensitive_and_unknown_ids_list_the_known() {
        assert_eq!(
            BoardProfile::builtin("RAK3172-USB").expect("rak3172").chip,
            Chip::Stm32wle5
        );
        let error = BoardProfile::builtin("heltec")
            .expect_err("unknown")
            .to_string();
        assert_eq!(
            error,
            "unknown board \"heltec\"; known boards: rak3172-usb, rak811-phat, rnode-tbeam, \
             rnode-lora32, rnode-rak4631, waveshare-sx1262-hat, rak6421-rak13300, meshadv-pi, \
             meshadv-mini, adafruit-rfm9x-bonnet, dragino-lora-gps-hat"
        );
    }

    #[test]
    fn check_accepts_the_defaults_on_every_board() {
        for board in BoardProfile::all() {
            assert_eq!(
                board.check(&Modulation::eu868_default()),
                Ok(()),
                "{}",
                board.id
            );
            assert_eq!(
                board.check(&Modulation::us915_default()),
                Ok(()),
                "{}",
                board.id
            );
        }
    }

    #[test]
    fn check_refuses_with_key_and_value() {
        let rak811 = BoardProfile::builtin("rak811-phat").expect("rak811");
        let base = Modulation::eu868_default();
        let low = Modulation {
            frequency_hz: 433_000_000,
            ..base
        };
        assert_eq!(
            rak811.check(&low).expect_err("433 MHz").to_string(),
            "frequency_hz 433000000 is out of range 862000000..=1020000000 of board \"rak811-phat\""
        );
        let loud = Modulation {
            tx_power_dbm: 22,
            ..base
        };
        assert_eq!(
            rak811.check(&loud).expect_err("22 dBm").to_string(),
            "tx_power_dbm 22 is out of range 5..=20 of board \"rak811-phat\""
        );
        let sf6 = Modulation {
            spreading_factor: 6,
            ..base
        };
        assert_eq!(
            rak811.check(&sf6).expect_err("SF6").to_string(),
            "spreading_factor 6 needs an SX126x radio; board \"rak811-phat\" has Sx1276"
        );
        let rak3172 = BoardProfile::builtin("rak3172-usb").expect("rak3172");
        assert_eq!(
            rak3172.check(&Modulation {
                spreading_factor: 5,
                ..base
            }),
            Ok(())
        );
        assert_eq!(
            rak3172.check(&Modulation {
                coding_rate: 0,
                ..base
            }),
            Err(BoardError::Modulation(ModulationError::CodingRate(0)))
        );
    }

    #[test]
    fn user_profiles_are_validated_on_load() {
        let good = BoardProfile::builtin("rak3172-usb").expect("rak3172");
        let text = include_str!("../boards/rak3172-usb.toml");
        assert_eq!(BoardProfile::from_toml_str(text), Ok(good));
        let cases = [
            (
                "mtu = 250",
                "mtu = 300",
                "board \"rak3172-usb\": mtu 300 is out of range 1..=255",
            ),
            (
                "mtu = 250",
                "mtu = 0",
                "board \"rak3172-usb\": mtu 0 is out of range 1..=255",
            ),
            (
                "tx_power_min_dbm = 5",
                "tx_power_min_dbm = 25",
                "board \"rak3172-usb\": tx_power range 25..=22 is empty",
            ),
            (
                "freq_min_hz = 150_000_000",
                "freq_min_hz = 990_000_000",
                "board \"rak3172-usb\": freq range 990000000..=960000000 is empty",
            ),
            (
                "baud = 115200",
                "baud = 0",
                "board \"rak3172-usb\": baud 0 is not a serial speed",
            ),
            (
                "module = \"rui3\"",
                "module = \"lorawan\"",
                "unknown variant `lorawan`",
            ),
            (
                "chip = \"STM32WLE5\"",
                "chip = \"SX1280\"",
                "unknown variant `SX1280`",
            ),
            (
                "baud = 115200",
                "baud = 115200\nparity = \"none\"",
                "unknown field `parity`",
            ),
        ];
        for (from, to, message) in cases {
            assert!(text.contains(from), "{from}");
            let error = BoardProfile::from_toml_str(&text.replace(from, to))
                .expect_err(message)
                .to_string();
            assert!(error.contains(message), "{error}");
        }
    }
}
