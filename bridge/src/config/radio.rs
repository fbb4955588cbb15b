//! `[radio]`: the LoRa module, checked against its board, its driver, the region plan and
//! the LoRa rules, so that a setting the hardware or the law refuses stops start-up here.

use std::path::PathBuf;

use lorabridge_hardware::RegionPlan;
use lorabridge_hardware::modulation::{
    CODING_RATE_RANGE, FREQUENCY_RANGE_HZ, MIN_PREAMBLE_SYMBOLS, SPREADING_FACTOR_RANGE,
    TX_POWER_RANGE_DBM,
};
use lorabridge_hardware::{BoardError, BoardProfile, Modulation, ModulationError, RegionError};
use lorabridge_radio::e22::cdev::PinLines;
use lorabridge_radio::e22::registers::CONFIG_BAUD;
use lorabridge_radio::e22::{AirRate, Band, E22Settings, PowerClass, SubPacket};
use lorabridge_radio::sx126x::Sx126xSettings;
use lorabridge_radio::sx126x::linux::SpiLines;
use lorabridge_radio::sx127x::linux::Sx127xLines;
use lorabridge_radio::{DriverFacts, ModuleKind};

use super::error::{ConfigError, Result};
use super::reader::{Section, range_i64};

/// Default region plan: the project's first deployments are European.
pub const DEFAULT_RADIO_REGION: &str = "EU868";
/// The RNode firmware splits host frames above one packet's share into two LoRa packets (its
/// own header byte fills the packet); the bridge keeps one frame per packet, as the RNode
/// board profiles do.
const RNODE_SINGLE_PACKET_MTU: usize = lorabridge_radio::rnode::air::AIR_CHUNK;
/// The shortest preamble RNode firmware sends.
const RNODE_MIN_PREAMBLE: u16 = lorabridge_radio::rnode::cmd::MIN_PREAMBLE;

/// The LoRa module and its settings (table `[radio]`), checked against the board, the
/// region plan and the LoRa rules.
#[derive(Clone, Debug, PartialEq)]
pub struct RadioConfig {
    /// Which driver speaks to the module.
    pub driver: ModuleKind,
    /// Serial device, e.g. `/dev/ttyUSB0`; for an SX126x its spidev, e.g. `/dev/spidev0.0`.
    pub port: PathBuf,
    /// Serial speed.
    pub baud: u32,
    /// Largest frame handed to the module: the board's, else the driver's one-packet size
    /// (for an E22 the driver's: its sub-packet minus the driver's framing).
    pub mtu: usize,
    /// The regional rules transmissions are held to.
    pub plan: RegionPlan,
    /// Channel and modulation, legal in `plan` for frames of `mtu` bytes.
    pub modulation: Modulation,
    /// What the module needs beyond its port, of `driver`'s kind.
    pub wiring: Wiring,
    /// Frames carry the header byte RNode firmware puts before every packet, so that this
    /// module (not an RNode, not an E22) shares its channel with RNode bridges.
    pub rnode_framing: bool,
}

/// What a module needs beyond its port: one variant per kind of driver, so that a
/// configuration holds the wiring of one module and of the kind it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wiring {
    /// A module on a serial port with firmware of its own (RUI3, RAK811, RNode): the port is
    /// all it needs.
    Serial,
    E22(E22Wiring),
    Sx126x(Sx126xWiring),
    /// An SX127x's GPIO lines beyond its spidev.
    Sx127x(Sx127xLines),
}

/// An SX126x's GPIO lines and board settings, from its board profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sx126xWiring {
    /// RESET, BUSY, DIO1 and the board's other lines.
    pub lines: SpiLines,
    /// TCXO and RF switch as the board wires them.
    pub settings: Sx126xSettings,
}

/// An Ebyte E22's mode pins and register settings, from its board profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct E22Wiring {
    /// The GPIO lines of M0, M1 and (if wired) AUX.
    pub pins: PinLines,
    /// The module's settings that no modulation field carries.
    pub settings: E22Settings,
}

/// An E22 hears only E22s: whatever the settings, other radios cannot hear it, nor it them.
pub const E22_HEARS_ONLY_E22: &str = "an Ebyte E22 module hears only other Ebyte E22 modules \
    (on the same channel and air rate), never a RAK3172, an RNode or an SPI radio, whatever \
    their settings; bridges with other radios reach it only through a bridge that has both";

/// What a steward with an RNode must know.
pub const RNODE_NEEDS_FRAMING: &str = "an RNode bridge understands RAK3172, RAK811 and SPI HAT \
    bridges only when they set `rnode_framing = true` in [radio] (its firmware adds a header \
    byte to every packet)";

impl RadioConfig {
    /// One line for `check-config`: the module, the port and what goes on air.
    pub fn summary(&self) -> String {
        let m = &self.modulation;
        let air = match AirRate::for_stand_in(m.spreading_factor, m.bandwidth_hz) {
            Some(rate) if matches!(self.wiring, Wiring::E22(_)) => format!(
                "air rate {} (airtime counted as SF{}/{} Hz)",
                rate.label(),
                m.spreading_factor,
                m.bandwidth_hz
            ),
            _ => format!(
                "SF{} at {} Hz, coding rate 4/{}",
                m.spreading_factor, m.bandwidth_hz, m.coding_rate
            ),
        };
        // The E22 rounds the power down to one of its four levels.
        let sent = match &self.wiring {
            Wiring::E22(e22) => e22
                .settings
                .power_class
                .level_at_most(m.tx_power_dbm)
                .filter(|(_, level)| *level != m.tx_power_dbm)
                .map(|(_, level)| format!(" (the module sends {level} dBm)")),
            _ => None,
        };
        format!(
            "{}{} on {} at {} baud; {}, {} Hz, {air}, {} dBm{}; frames up to {} bytes",
            self.driver,
            if self.rnode_framing {
                " in RNode framing"
            } else {
                ""
            },
            self.port.display(),
            self.baud,
            self.plan.name,
            m.frequency_hz,
            m.tx_power_dbm,
            sent.unwrap_or_default(),
            self.mtu
        )
    }

    /// What a steward must know about this module that no setting changes.
    pub fn caveat(&self) -> Option<&'static str> {
        match (&self.wiring, self.driver) {
            (Wiring::E22(_), _) => Some(E22_HEARS_ONLY_E22),
            (_, ModuleKind::Rnode) => Some(RNODE_NEEDS_FRAMING),
            _ => None,
        }
    }
}

/// The keys `[radio]` may hold.
pub(super) const KEYS: &[&str] = &[
    "board",
    "driver",
    "port",
    "baud",
    "region",
    "frequency_hz",
    "spreading_factor",
    "bandwidth_hz",
    "coding_rate",
    "preamble_symbols",
    "tx_power_dbm",
    "sync_word",
    "rnode_framing",
];

pub(super) fn parse(s: &Section<'_>) -> Result<RadioConfig> {
    let board = match s.string("board")? {
        Some(id) => Some(
            BoardProfile::builtin(id)
                .map_err(|e| ConfigError::invalid(s.key("board"), e.to_string()))?,
        ),
        None => None,
    };
    let driver_key = s.string("driver")?;
    let driver = match driver_key {
        Some(name) => Some(
            name.parse::<ModuleKind>()
                .map_err(|e| ConfigError::invalid(s.key("driver"), e.to_string()))?,
        ),
        None => None,
    };
    let board_driver = board.as_ref().map(|b| b.module);
    let driver = match (board_driver, driver) {
        (Some(from_board), Some(given)) if from_board != given => {
            return Err(ConfigError::invalid(
                s.key("driver"),
                format!(
                    "board {:?} runs {from_board} firmware, not {given}; remove `driver`, or \
                     remove `board` and give `driver` and `port` for other hardware",
                    board.as_ref().map_or("", |b| b.id.as_str())
                ),
            ));
        }
        (Some(kind), _) | (None, Some(kind)) => kind,
        (None, None) => {
            return Err(s.missing(
                "board",
                "give `board` (a supported board) or both `driver` and `port`",
            ));
        }
    };
    let port = match (s.string("port")?, &board) {
        (Some(port), _) => port.to_owned(),
        (None, Some(b)) => b.serial_path.clone(),
        (None, None) => {
            return Err(s.missing(
                "port",
                "the module's serial device, e.g. \"/dev/ttyUSB0\" (or give `board`)",
            ));
        }
    };
    if port.is_empty() || (cfg!(unix) && !port.starts_with('/')) {
        let example = match driver {
            ModuleKind::Sx126x | ModuleKind::Sx127x => "an spidev path such as \"/dev/spidev0.0\"",
            _ => "a serial device path such as \"/dev/ttyUSB0\"",
        };
        return Err(ConfigError::invalid(
            s.key("port"),
            format!("{port:?} is not {example}"),
        ));
    }
    let baud = match s.int::<u32>("baud", 1..=i64::from(u32::MAX))? {
        Some(baud) => baud,
        None => board.as_ref().map_or(115_200, |b| b.baud),
    };
    let (wiring, mtu) = match (driver, &board) {
        (ModuleKind::E22, Some(b)) => {
            let e22 = e22_wiring(s, b, baud)?;
            let mtu = e22.settings.mtu();
            (Wiring::E22(e22), mtu)
        }
        (ModuleKind::Sx126x, Some(b)) => (Wiring::Sx126x(sx126x_wiring(s, b)?), b.mtu),
        (ModuleKind::Sx127x, Some(b)) => (Wiring::Sx127x(sx127x_lines(s, b)?), b.mtu),
        (ModuleKind::E22 | ModuleKind::Sx126x | ModuleKind::Sx127x, None) => {
            return Err(ConfigError::invalid(s.key("driver"), needs_board(driver)));
        }
        (_, Some(b)) => (Wiring::Serial, b.mtu),
        (ModuleKind::Rui3, None) => (Wiring::Serial, lorabridge_radio::rui3::MTU),
        (ModuleKind::Rak811, None) => (Wiring::Serial, lorabridge_radio::rak811::MTU),
        (ModuleKind::Rnode, None) => (Wiring::Serial, RNODE_SINGLE_PACKET_MTU),
    };

    let region_name = s.string("region")?.unwrap_or(DEFAULT_RADIO_REGION);
    let plan = RegionPlan::builtin(region_name)
        .map_err(|e| ConfigError::invalid(s.key("region"), e.to_string()))?;
    let frequency = s.int::<u32>("frequency_hz", range_i64(&FREQUENCY_RANGE_HZ))?;
    let region_default = match plan.name.as_str() {
        "EU868" => Some(Modulation::eu868_default()),
        "US915" => Some(Modulation::us915_default()),
        _ => None,
    };
    let base = match (region_default, frequency) {
        (Some(base), _) => base,
        // Every field but the frequency, which the steward gives.
        (None, Some(_)) => Modulation::eu868_default(),
        (None, None) => {
            return Err(s.missing(
                "frequency_hz",
                format!(
                    "region {} has no default channel; set frequency_hz (and check \
                     spreading_factor and tx_power_dbm against its rules)",
                    plan.name
                ),
            ));
        }
    };
    let rnode_framing = s.bool("rnode_framing")?.unwrap_or(false);
    if rnode_framing && matches!(driver, ModuleKind::Rnode | ModuleKind::E22) {
        let why = match driver {
            ModuleKind::Rnode => "an RNode's firmware adds its header byte itself",
            _ => E22_HEARS_ONLY_E22,
        };
        return Err(ConfigError::invalid(s.key("rnode_framing"), why));
    }
    let base = if matches!(wiring, Wiring::E22(_)) {
        e22_default(base, &plan.name)
    } else if rnode_framing {
        // RNodes send at least this preamble: the same length on both sides of the channel.
        Modulation {
            preamble_symbols: base.preamble_symbols.max(RNODE_MIN_PREAMBLE),
            ..base
        }
    } else {
        base
    };
    let mtu = match rnode_framing {
        true => lorabridge_radio::framed_mtu(mtu),
        false => mtu,
    };
    let modulation = Modulation {
        frequency_hz: frequency.unwrap_or(base.frequency_hz),
        spreading_factor: s
            .int("spreading_factor", range_i64(&SPREADING_FACTOR_RANGE))?
            .unwrap_or(base.spreading_factor),
        // Validated against the list of LoRa bandwidths below.
        bandwidth_hz: s
            .int("bandwidth_hz", 0..=i64::from(u32::MAX))?
            .unwrap_or(base.bandwidth_hz),
        coding_rate: s
            .int("coding_rate", range_i64(&CODING_RATE_RANGE))?
            .unwrap_or(base.coding_rate),
        preamble_symbols: s
            .int(
                "preamble_symbols",
                i64::from(MIN_PREAMBLE_SYMBOLS)..=i64::from(u16::MAX),
            )?
            .unwrap_or(base.preamble_symbols),
        tx_power_dbm: s
            .int("tx_power_dbm", range_i64(&TX_POWER_RANGE_DBM))?
            .unwrap_or(base.tx_power_dbm),
        sync_word: s
            .int("sync_word", 0..=i64::from(u8::MAX))?
            .unwrap_or(base.sync_word),
    };
    modulation.validate().map_err(|e| modulation_error(s, &e))?;
    if let Some(b) = &board {
        b.check(&modulation).map_err(|e| board_error(s, &e))?;
    }
    // A setting the driver would refuse when it first configures the radio stops start-up here.
    driver
        .check(&modulation)
        .map_err(|e| ConfigError::invalid(s.key(e.field), e.reason))?;
    // A full frame as it goes on air, as the ledger will charge it: the module's model (an
    // RNode's header byte and longer preamble), and the header of RNode framing.
    let on_air = match rnode_framing {
        true => lorabridge_radio::framed_on_air(driver.on_air(&modulation)),
        false => driver.on_air(&modulation),
    };
    let on_air_bytes = mtu.min(on_air.chunk) + on_air.added_bytes;
    plan.check(&on_air.modulation, on_air_bytes)
        .map_err(|e| region_error(s, &plan, on_air_bytes, &e))?;
    Ok(RadioConfig {
        driver,
        port: PathBuf::from(port),
        baud,
        mtu,
        plan,
        modulation,
        wiring,
        rnode_framing,
    })
}

/// Why a module on SPI or an E22 cannot go without its board profile.
fn needs_board(driver: ModuleKind) -> &'static str {
    match driver {
        ModuleKind::Sx126x => {
            "an SX126x on SPI needs its GPIO lines (RESET, BUSY, DIO1) and board wiring \
             (TCXO, RF switch) from a board profile: give the `board` it sits on, e.g. \
             \"rak6421-rak13300\""
        }
        ModuleKind::Sx127x => {
            "an SX127x on SPI needs its GPIO lines (RESET, DIO0) from a board profile: \
             give the `board` it sits on, e.g. \"adafruit-rfm9x-bonnet\""
        }
        _ => {
            "an Ebyte E22 needs its mode pins and output stage from a board profile: \
             give the `board` it sits on, e.g. \"waveshare-sx1262-hat\""
        }
    }
}

/// An SX126x's lines and settings from the profile of the board it sits on.
fn sx126x_wiring(s: &Section<'_>, board: &BoardProfile) -> Result<Sx126xWiring> {
    let pins = board.pins.as_ref();
    let lines = pins.and_then(SpiLines::from_profile).ok_or_else(|| {
        ConfigError::invalid(
            s.key("board"),
            format!(
                "board {:?} names no RESET, BUSY and IRQ (DIO1) lines, which the SX126x driver \
                 needs",
                board.id
            ),
        )
    })?;
    let settings = Sx126xSettings::from_board(board);
    Ok(Sx126xWiring { lines, settings })
}

/// An SX127x's lines from the profile of the board it sits on.
fn sx127x_lines(s: &Section<'_>, board: &BoardProfile) -> Result<Sx127xLines> {
    board
        .pins
        .as_ref()
        .and_then(Sx127xLines::from_profile)
        .ok_or_else(|| {
            ConfigError::invalid(
                s.key("board"),
                format!(
                    "board {:?} names no RESET and IRQ (DIO0) lines, which the SX127x driver \
                     needs",
                    board.id
                ),
            )
        })
}

/// An E22's pins and settings from the profile of the board it sits on: M0, M1 and AUX from
/// its `[pins]`, the sub-packet from its `mtu`, the output stage from its highest power. Its
/// UART speed is fixed.
fn e22_wiring(s: &Section<'_>, board: &BoardProfile, baud: u32) -> Result<E22Wiring> {
    let unusable = |what: String| {
        ConfigError::invalid(
            s.key("board"),
            format!("board {:?} {what}, which the E22 driver needs", board.id),
        )
    };
    if baud != CONFIG_BAUD {
        return Err(ConfigError::invalid(
            s.key("baud"),
            format!(
                "{baud}: the E22 driver keeps the module's UART at {CONFIG_BAUD} baud, the only \
                 speed of its configuration mode; remove `baud`"
            ),
        ));
    }
    let pins = board
        .pins
        .as_ref()
        .and_then(PinLines::from_profile)
        .ok_or_else(|| unusable("names no M0 and M1 pins".into()))?;
    let sub_packet = (0..4)
        .map(SubPacket::from_bits)
        .find(|p| p.bytes() == board.mtu)
        .ok_or_else(|| unusable(format!("has mtu {}, not an E22 sub-packet size", board.mtu)))?;
    let power_class = [PowerClass::Dbm22, PowerClass::Dbm30]
        .into_iter()
        .find(|c| c.levels()[0] == board.tx_power_max_dbm)
        .ok_or_else(|| {
            unusable(format!(
                "tops out at {} dBm, not an E22 output stage (22 or 30 dBm)",
                board.tx_power_max_dbm
            ))
        })?;
    Ok(E22Wiring {
        pins,
        settings: E22Settings {
            sub_packet,
            power_class,
            ..E22Settings::default()
        },
    })
}

/// The E22's default in a region: the region's default power, coding rate and preamble; air
/// rate 9.6k; and in EU868 and US915 an E22 channel (the regions' default channels are none:
/// the E22 has one every MHz from 850.125 MHz).
///
/// Why 9.6k: the region plan holds each air rate to the bandwidth of its airtime stand-in
/// ([`AirRate::stand_in`]). At 868.125 MHz, 125 kHz above the edge of EU868's 868.0-868.6 MHz
/// sub-band, only the 125 and 250 kHz stand-ins fit (0.3k, 9.6k, 19.2k), not the factory
/// 2.4k's 500 kHz. 0.3k spends 8.5 s per full frame, four frames an hour at 1 %; 9.6k is the
/// slowest, so longest-reaching, of the others, with 164 full frames an hour at 1 %. In US915
/// the same rate keeps a full frame (219 ms) within the 400 ms dwell limit, where 2.4k and
/// 4.8k would not.
fn e22_default(base: Modulation, region: &str) -> Modulation {
    let (spreading_factor, bandwidth_hz) = AirRate::K9_6.stand_in();
    let frequency_hz = match region {
        // Channel 18, the factory channel: 868.125 MHz.
        "EU868" => Band::Mhz900.frequency_hz(18),
        // Channel 65: 915.125 MHz, mid-band.
        "US915" => Band::Mhz900.frequency_hz(65),
        // The steward gives the frequency.
        _ => base.frequency_hz,
    };
    Modulation {
        frequency_hz,
        spreading_factor,
        bandwidth_hz,
        ..base
    }
}

/// The radio key a modulation error is about, with the hardware crate's message minus the
/// leading field name (the key already names it).
fn modulation_error(s: &Section<'_>, e: &ModulationError) -> ConfigError {
    let field = match e {
        ModulationError::Frequency(_) => "frequency_hz",
        ModulationError::SpreadingFactor(_) => "spreading_factor",
        ModulationError::Bandwidth(_) => "bandwidth_hz",
        ModulationError::CodingRate(_) => "coding_rate",
        ModulationError::Preamble(_) => "preamble_symbols",
        ModulationError::TxPower(_) => "tx_power_dbm",
        // Frames are sized by the MTU, which is at most 255 for every board and driver.
        ModulationError::PayloadTooLong(_) => "board",
    };
    field_error(s, field, e.to_string())
}

fn field_error(s: &Section<'_>, field: &str, message: String) -> ConfigError {
    let reason = message
        .strip_prefix(field)
        .map(str::trim_start)
        .unwrap_or(&message);
    ConfigError::invalid(s.key(field), reason)
}

fn board_error(s: &Section<'_>, e: &BoardError) -> ConfigError {
    let field = match e {
        BoardError::Modulation(m) => return modulation_error(s, m),
        BoardError::Frequency { .. } => "frequency_hz",
        BoardError::Power { .. } => "tx_power_dbm",
        BoardError::SpreadingFactor { .. } => "spreading_factor",
        _ => "board",
    };
    field_error(s, field, e.to_string())
}

fn region_error(s: &Section<'_>, plan: &RegionPlan, mtu: usize, e: &RegionError) -> ConfigError {
    match e {
        RegionError::Modulation(m) => modulation_error(s, m),
        RegionError::NotInPlan { .. } => field_error(s, "frequency_hz", e.to_string()),
        RegionError::Power { .. } => field_error(s, "tx_power_dbm", e.to_string()),
        RegionError::DwellExceeded {
            band,
            airtime,
            limit,
            ..
        } => airtime_error(
            s,
            format!(
                "a full {mtu}-byte frame takes {airtime:?} on air, above the {limit:?} dwell \
                 limit of {} sub-band {band:?}",
                plan.name
            ),
        ),
        RegionError::DutyBudgetExceeded {
            band,
            airtime,
            budget,
            ..
        } => airtime_error(
            s,
            format!(
                "a full {mtu}-byte frame takes {airtime:?} on air, above the whole hourly \
                 duty-cycle budget {budget:?} of {} sub-band {band:?}",
                plan.name
            ),
        ),
        _ => ConfigError::invalid(s.key("region"), e.to_string()),
    }
}

/// Too much airtime per frame: the frame size is fixed by the hardware, so what the steward
/// can change is how long a symbol lasts.
fn airtime_error(s: &Section<'_>, what: String) -> ConfigError {
    ConfigError::invalid(
        s.key("spreading_factor"),
        format!("{what}; use a lower spreading_factor or a wider bandwidth_hz"),
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use lorabridge_hardware::{BoardProfile, Modulation};
    use lorabridge_radio::ModuleKind;

    use super::Wiring;

    use super::super::test_support::*;

    /// Each bad value is refused with its key named; `reason` is a fragment of the message.
    #[test]
    fn bad_values_name_their_key() {
        let radio = |extra: &str| file("", &format!("{RADIO}{extra}"));
        assert_refused(vec![
            (
                file("", "[radio]\nport = \"/dev/ttyUSB0\""),
                "radio.board",
                "or both `driver` and `port`",
            ),
            (
                file("", "[radio]\ndriver = \"rui3\""),
                "radio.port",
                "missing: ",
            ),
            (
                file("", "[radio]\nboard = \"tbeam\""),
                "radio.board",
                "unknown board \"tbeam\"; known boards: rak3172-usb",
            ),
            // The SPI chips need their board's lines.
            (
                file(
                    "",
                    "[radio]\ndriver = \"sx126x\"\nport = \"/dev/spidev0.0\"",
                ),
                "radio.driver",
                "an SX126x on SPI needs its GPIO lines",
            ),
            (
                file("", "[radio]\nboard = \"meshadv-pi\"\nport = \"spidev0.0\""),
                "radio.port",
                "is not an spidev path",
            ),
            (
                file(
                    "",
                    "[radio]\ndriver = \"sx127x\"\nport = \"/dev/spidev0.1\"",
                ),
                "radio.driver",
                "an SX127x on SPI needs its GPIO lines",
            ),
            (
                file("", "[radio]\ndriver = \"e22\"\nport = \"/dev/ttyS0\""),
                "radio.driver",
                "an Ebyte E22 needs its mode pins",
            ),
            (
                radio("driver = \"rnode\""),
                "radio.driver",
                "runs rui3 firmware",
            ),
            (
                radio("port = \"ttyUSB0\""),
                "radio.port",
                "not a serial device path",
            ),
            (radio("baud = 0"), "radio.baud", "0 is out of range 1..="),
            (
                radio("region = \"EU433\""),
                "radio.region",
                "unknown region",
            ),
            (
                radio("region = \"AU915\""),
                "radio.frequency_hz",
                "AU915 has no default channel",
            ),
            (
                radio("frequency_hz = 100_000_000"),
                "radio.frequency_hz",
                "100000000 is out of range 137000000..=1020000000",
            ),
            (
                radio("frequency_hz = 433_175_000"),
                "radio.frequency_hz",
                "does not fit inside any sub-band of EU868",
            ),
            (
                radio("spreading_factor = 13"),
                "radio.spreading_factor",
                "13 is out of range 5..=12",
            ),
            (
                radio("spreading_factor = 300"),
                "radio.spreading_factor",
                "300 is out of range 5..=12",
            ),
            (
                radio("spreading_factor = \"9\""),
                "radio.spreading_factor",
                "expected a whole number, got the string \"9\"",
            ),
            (
                radio("bandwidth_hz = 100_000"),
                "radio.bandwidth_hz",
                "100000 is not a LoRa bandwidth",
            ),
            (
                radio("coding_rate = 4"),
                "radio.coding_rate",
                "4 is out of range 5..=8",
            ),
            (
                radio("preamble_symbols = 5"),
                "radio.preamble_symbols",
                "5 is out of range 6..=65535",
            ),
            (
                radio("tx_power_dbm = 31"),
                "radio.tx_power_dbm",
                "31 is out of range -9..=30",
            ),
            // within LoRa limits, above the board's 22 dBm
            (
                radio("tx_power_dbm = 25"),
                "radio.tx_power_dbm",
                "of board \"rak3172-usb\"",
            ),
            // within the board, above EU868's 14 dBm at 868.1 MHz
            (
                radio("frequency_hz = 868_100_000\ntx_power_dbm = 20"),
                "radio.tx_power_dbm",
                "above max_power_dbm 14",
            ),
            // SF5 needs an SX126x; the RNode T-Beam has an SX1276
            (
                file("", "[radio]\nboard = \"rnode-tbeam\"\nspreading_factor = 5"),
                "radio.spreading_factor",
                "needs an SX126x",
            ),
            // US915 dwell: a 250-byte frame at SF10 is far above 400 ms
            (
                radio("region = \"US915\"\nspreading_factor = 10"),
                "radio.spreading_factor",
                "dwell",
            ),
            (
                radio("sync_word = 256"),
                "radio.sync_word",
                "256 is out of range 0..=255",
            ),
            (
                radio("sync_word = 0x34"),
                "radio.sync_word",
                "0x34: the rui3 firmware cannot change it from 0x12",
            ),
            (
                radio("bandwidth_hz = 62_500"),
                "radio.bandwidth_hz",
                "only 125000, 250000 and 500000",
            ),
            (
                file(
                    "",
                    "[radio]\ndriver = \"rak811\"\nport = \"/dev/serial0\"\nspreading_factor = 6",
                ),
                "radio.spreading_factor",
                "6 is out of range 7..=12 of the rak811 driver",
            ),
            (
                file(
                    "",
                    "[radio]\ndriver = \"rnode\"\nport = \"/dev/ttyACM0\"\ntx_power_dbm = -1",
                ),
                "radio.tx_power_dbm",
                "-1 is out of range 0..=22 of the rnode driver",
            ),
            (file("radio = \"rak\"", ""), "radio", "table"),
        ]);
    }

    /// The plan is checked with what a full frame costs on air, as the ledger charges it: an
    /// RNode's header byte and 18-symbol preamble push a 254-byte frame at US915's SF7 past
    /// the 400 ms dwell limit, which the plain frame (399.6 ms) would not show.
    #[test]
    fn the_region_is_checked_with_the_modules_own_airtime() {
        let us915 = |board: &str| {
            file(
                "",
                &format!("[radio]\nboard = \"{board}\"\nregion = \"US915\""),
            )
        };
        assert!(parse(&us915("rak3172-usb")).is_ok());
        let error = parse(&us915("rnode-tbeam")).expect_err("over the dwell limit");
        assert_eq!(error.key(), Some("radio.spreading_factor"), "{error}");
        assert!(error.to_string().contains("255-byte frame"), "{error}");
    }

    /// A RAK3172 or an SX1262 in RNode framing gives the header byte one byte of each packet
    /// and sends an RNode's preamble unless told otherwise; an RNode or an E22 refuses it.
    #[test]
    fn rnode_framing_shrinks_the_frame_and_matches_the_rnode_preamble() {
        let plain = ok(&file("", RADIO)).radio.expect("radio");
        assert!(!plain.rnode_framing);
        let framed = ok(&file("", &format!("{RADIO}rnode_framing = true")))
            .radio
            .expect("radio");
        assert!(framed.rnode_framing);
        assert_eq!((plain.mtu, framed.mtu), (250, 249));
        assert_eq!(
            (
                plain.modulation.preamble_symbols,
                framed.modulation.preamble_symbols
            ),
            (8, 18)
        );
        assert!(
            framed.summary().starts_with("rui3 in RNode framing on"),
            "{}",
            framed.summary()
        );
        let chosen = ok(&file(
            "",
            &format!("{RADIO}rnode_framing = true\npreamble_symbols = 12"),
        ))
        .radio
        .expect("radio");
        assert_eq!(chosen.modulation.preamble_symbols, 12, "the steward's wins");
        let spi = ok(&file(
            "",
            "[radio]\nboard = \"meshadv-pi\"\nrnode_framing = true",
        ))
        .radio
        .expect("radio");
        assert_eq!(spi.mtu, 254, "at most one RNode packet's share");
        let rnode = ok(&file("", "[radio]\nboard = \"rnode-tbeam\""))
            .radio
            .expect("radio");
        assert_eq!(rnode.caveat(), Some(super::RNODE_NEEDS_FRAMING));
        assert_refused(vec![
            (
                file("", "[radio]\nboard = \"rnode-tbeam\"\nrnode_framing = true"),
                "radio.rnode_framing",
                "adds its header byte itself",
            ),
            (
                file(
                    "",
                    "[radio]\nboard = \"waveshare-sx1262-hat\"\nrnode_framing = true",
                ),
                "radio.rnode_framing",
                "hears only other Ebyte E22 modules",
            ),
            (
                file("", &format!("{RADIO}rnode_framing = 1")),
                "radio.rnode_framing",
                "",
            ),
        ]);
    }

    #[test]
    fn board_fills_the_radio_and_overrides_win() {
        let radio = ok(&file("", RADIO)).radio.expect("radio");
        assert_eq!(
            (radio.driver, radio.port.as_path(), radio.baud, radio.mtu),
            (ModuleKind::Rui3, Path::new("/dev/ttyUSB0"), 115_200, 250)
        );
        let board = BoardProfile::builtin("rnode-rak4631").expect("board");
        let radio = ok(&file("", "[radio]\nboard = \"rnode-rak4631\""))
            .radio
            .expect("radio");
        assert_eq!(radio.driver, ModuleKind::Rnode);
        assert_eq!(radio.port, Path::new(&board.serial_path));
        assert_eq!((radio.baud, radio.mtu), (board.baud, board.mtu));

        let radio = ok(&file(
            "",
            "[radio]\nboard = \"rak811-phat\"\ndriver = \"rak811\"\nport = \"/dev/ttyAMA0\"\nbaud = 9600",
        ))
        .radio
        .expect("radio");
        assert_eq!(
            (radio.driver, radio.port.as_path(), radio.baud, radio.mtu),
            (ModuleKind::Rak811, Path::new("/dev/ttyAMA0"), 9600, 118)
        );

        // Without a board, the driver decides the frame size: one LoRa packet.
        for (driver, mtu) in [("rui3", 250), ("rak811", 118), ("rnode", 254)] {
            let radio = ok(&file(
                "",
                &format!("[radio]\ndriver = \"{driver}\"\nport = \"/dev/ttyUSB1\""),
            ))
            .radio
            .expect("radio");
            assert_eq!((radio.mtu, radio.baud), (mtu, 115_200), "{driver}");
            assert_eq!(radio.port, Path::new("/dev/ttyUSB1"));
        }
    }

    #[test]
    fn an_sx126x_board_opens_the_spi_driver_with_its_lines_and_wiring() {
        use lorabridge_radio::e22::cdev::GpioLine;
        use lorabridge_radio::sx126x::TcxoVoltage;

        let radio = ok(&file("", "[radio]\nboard = \"rak6421-rak13300\""))
            .radio
            .expect("radio");
        assert_eq!(radio.driver, ModuleKind::Sx126x);
        assert_eq!(
            (radio.port.as_path(), radio.mtu),
            (Path::new("/dev/spidev0.0"), 255)
        );
        let Wiring::Sx126x(spi) = radio.wiring else {
            panic!("not the SX126x's wiring: {:?}", radio.wiring)
        };
        assert_eq!(
            (
                spi.lines.reset.clone(),
                spi.lines.busy.clone(),
                spi.lines.dio1.clone()
            ),
            (GpioLine::bcm(16), GpioLine::bcm(24), GpioLine::bcm(22))
        );
        assert_eq!(
            spi.lines.power_enable,
            vec![GpioLine::bcm(12), GpioLine::bcm(13)]
        );
        assert_eq!(spi.settings.tcxo, Some(TcxoVoltage::V1_8));
        assert!(spi.settings.dio2_rf_switch);
        assert_eq!(spi.settings.amplifier_gain_db, 0);

        // Another spidev and the public sync word, which an SX126x can be set to.
        let radio = ok(&file(
            "",
            "[radio]\nboard = \"meshadv-pi\"\nport = \"/dev/spidev0.1\"\nsync_word = 0x34",
        ))
        .radio
        .expect("radio");
        assert_eq!(radio.port, Path::new("/dev/spidev0.1"));
        assert_eq!(radio.modulation.sync_word, 0x34);
        let Wiring::Sx126x(spi) = radio.wiring else {
            panic!("not the SX126x's wiring: {:?}", radio.wiring)
        };
        assert_eq!(spi.lines.cs, Some(GpioLine::bcm(21)));
        assert_eq!(
            (spi.lines.rx_enable.clone(), spi.lines.tx_enable.clone()),
            (Some(GpioLine::bcm(12)), Some(GpioLine::bcm(13)))
        );
        assert!(!spi.settings.dio2_rf_switch);
        assert_eq!(
            spi.settings.amplifier_gain_db, 8,
            "the E22-900M30S's amplifier"
        );
    }

    #[test]
    fn an_sx127x_board_opens_the_spi_driver_with_its_lines() {
        use lorabridge_radio::e22::cdev::GpioLine;

        let radio = ok(&file("", "[radio]\nboard = \"dragino-lora-gps-hat\""))
            .radio
            .expect("radio");
        assert_eq!(radio.driver, ModuleKind::Sx127x);
        assert_eq!(
            (radio.port.as_path(), radio.mtu),
            (Path::new("/dev/spidev0.0"), 255)
        );
        let Wiring::Sx127x(lines) = radio.wiring else {
            panic!("not the SX127x's wiring: {:?}", radio.wiring)
        };
        assert_eq!(
            (lines.reset, lines.dio0, lines.cs),
            (GpioLine::bcm(17), GpioLine::bcm(4), Some(GpioLine::bcm(25)))
        );
        // SF6 is refused before start-up, with the reason.
        let err = parse(&file(
            "",
            "[radio]\nboard = \"adafruit-rfm9x-bonnet\"\nspreading_factor = 6",
        ))
        .expect_err("SF6");
        assert!(err.to_string().contains("spreading_factor"), "{err}");
    }

    const E22: &str = "[radio]\nboard = \"waveshare-sx1262-hat\"\n";

    #[test]
    fn an_e22_board_opens_the_e22_with_its_pins_and_a_legal_default() {
        use lorabridge_radio::e22::cdev::PinLines;
        use lorabridge_radio::e22::{E22Settings, PowerClass, SubPacket};

        let radio = ok(&file("", E22)).radio.expect("radio");
        assert_eq!(radio.driver, ModuleKind::E22);
        assert_eq!(
            (radio.port.as_path(), radio.baud, radio.mtu),
            (Path::new("/dev/ttyS0"), 9600, 235)
        );
        let Wiring::E22(e22) = &radio.wiring else {
            panic!("not the E22's wiring: {:?}", radio.wiring)
        };
        assert_eq!(e22.pins, PinLines::waveshare_hat());
        assert_eq!(
            e22.settings,
            E22Settings {
                sub_packet: SubPacket::B240,
                power_class: PowerClass::Dbm22,
                ..E22Settings::default()
            }
        );
        // EU868: 868.125 MHz (channel 18), air rate 9.6k; 869.525 MHz is no E22 channel.
        assert_eq!(
            radio.modulation,
            Modulation {
                frequency_hz: 868_125_000,
                spreading_factor: 6,
                bandwidth_hz: 125_000,
                ..Modulation::eu868_default()
            }
        );
        assert_eq!(radio.caveat(), Some(super::E22_HEARS_ONLY_E22));
        assert!(
            radio.summary().contains("air rate 9.6k"),
            "{}",
            radio.summary()
        );

        // US915: 915.125 MHz, the same air rate, US915's power.
        let us = ok(&file("", &format!("{E22}region = \"US915\"")))
            .radio
            .expect("radio");
        assert_eq!(
            us.modulation,
            Modulation {
                frequency_hz: 915_125_000,
                spreading_factor: 6,
                bandwidth_hz: 125_000,
                ..Modulation::us915_default()
            }
        );

        // The factory air rate 2.4k fits EU868 one channel down, and the port may move.
        let slow = ok(&file(
            "",
            &format!(
                "{E22}port = \"/dev/ttyAMA0\"\nfrequency_hz = 867_125_000\n\
                 spreading_factor = 11\nbandwidth_hz = 500_000"
            ),
        ))
        .radio
        .expect("radio");
        assert_eq!(slow.port, Path::new("/dev/ttyAMA0"));
        assert_eq!(
            (
                slow.modulation.frequency_hz,
                slow.modulation.spreading_factor
            ),
            (867_125_000, 11)
        );
        assert!(
            slow.summary().contains("air rate 2.4k"),
            "{}",
            slow.summary()
        );

        // Other modules have no E22 part and no caveat.
        let rak = ok(&file("", RADIO)).radio.expect("radio");
        assert_eq!(
            rak.summary(),
            "rui3 on /dev/ttyUSB0 at 115200 baud; EU868, 869525000 Hz, SF9 at 125000 Hz, \
             coding rate 4/5, 14 dBm; frames up to 250 bytes"
        );
        assert_eq!((&rak.wiring, rak.caveat()), (&Wiring::Serial, None));
    }

    #[test]
    fn e22_settings_it_cannot_take_name_their_key() {
        let e22 = |extra: &str| file("", &format!("{E22}{extra}"));
        assert_refused(vec![
            (
                e22("frequency_hz = 869_525_000"),
                "radio.frequency_hz",
                "869525000 is no E22 channel",
            ),
            (
                e22("spreading_factor = 9"),
                "radio.spreading_factor",
                "hears only other E22 modules",
            ),
            // The 2.4k stand-in's 500 kHz does not fit the sub-band at 868.125 MHz.
            (
                e22("spreading_factor = 11\nbandwidth_hz = 500_000"),
                "radio.frequency_hz",
                "does not fit inside any sub-band of EU868",
            ),
            (
                e22("coding_rate = 6"),
                "radio.coding_rate",
                "the E22 picks its own coding rate",
            ),
            (
                e22("preamble_symbols = 12"),
                "radio.preamble_symbols",
                "the E22 picks its own preamble",
            ),
            (e22("tx_power_dbm = 9"), "radio.tx_power_dbm", "9"),
            (
                e22("baud = 115200"),
                "radio.baud",
                "115200: the E22 driver keeps",
            ),
            (
                e22("region = \"AU915\""),
                "radio.frequency_hz",
                "AU915 has no default channel",
            ),
            (
                e22("driver = \"rnode\""),
                "radio.driver",
                "runs e22 firmware, not rnode",
            ),
        ]);
        // With a frequency on an E22 channel, other regions work too.
        let au = ok(&file(
            "",
            &format!("{E22}region = \"AU915\"\nfrequency_hz = 916_125_000"),
        ))
        .radio
        .expect("radio");
        assert_eq!(
            (au.modulation.spreading_factor, au.modulation.bandwidth_hz),
            (6, 125_000)
        );
    }
}
