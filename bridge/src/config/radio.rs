//! `[radio]`: the LoRa module, checked against its board, its driver, the region plan and
//! the LoRa rules, so that a setting the hardware or the law refuses stops start-up here.

use std::path::PathBuf;

use lorabridge_hardware::modulation::{
    CODING_RATE_RANGE, FREQUENCY_RANGE_HZ, MIN_PREAMBLE_SYMBOLS, SPREADING_FACTOR_RANGE,
    TX_POWER_RANGE_DBM,
};
use lorabridge_hardware::{BoardError, BoardProfile, Modulation, ModulationError, RegionError};
use lorabridge_hardware::{ModuleKind as BoardModule, RegionPlan};
use lorabridge_radio::ModuleKind;

use super::error::{ConfigError, Result};
use super::reader::{Section, range_i64};

/// Default region plan: the project's first deployments are European.
pub const DEFAULT_RADIO_REGION: &str = "EU868";
/// The RNode firmware splits host frames above 254 bytes into two LoRa packets (its own header
/// byte makes 255 on air); the bridge keeps one frame per packet, as the RNode board profiles do.
const RNODE_SINGLE_PACKET_MTU: usize = 254;

/// The LoRa module and its settings (table `[radio]`), checked against the board, the
/// region plan and the LoRa rules.
#[derive(Clone, Debug, PartialEq)]
pub struct RadioConfig {
    /// Which driver speaks to the module.
    pub driver: ModuleKind,
    /// Serial device, e.g. `/dev/ttyUSB0`.
    pub port: PathBuf,
    /// Serial speed.
    pub baud: u32,
    /// Largest frame handed to the module: the board's, else the driver's one-packet size.
    pub mtu: usize,
    /// The regional rules transmissions are held to.
    pub plan: RegionPlan,
    /// Channel and modulation, legal in `plan` for frames of `mtu` bytes.
    pub modulation: Modulation,
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
                .map_err(|e| ConfigError::invalid(s.key("driver"), e))?,
        ),
        None => None,
    };
    let board_driver = match &board {
        Some(b) => Some(board_driver(b).map_err(|e| ConfigError::invalid(s.key("board"), e))?),
        None => None,
    };
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
        return Err(ConfigError::invalid(
            s.key("port"),
            format!("{port:?} is not a serial device path such as \"/dev/ttyUSB0\""),
        ));
    }
    let baud = match s.int::<u32>("baud", 1..=i64::from(u32::MAX))? {
        Some(baud) => baud,
        None => board.as_ref().map_or(115_200, |b| b.baud),
    };
    let mtu = match &board {
        Some(b) => b.mtu,
        None => match driver {
            ModuleKind::Rui3 => lorabridge_radio::rui3::MTU,
            ModuleKind::Rak811 => lorabridge_radio::rak811::MTU,
            ModuleKind::Rnode => RNODE_SINGLE_PACKET_MTU,
            ModuleKind::E22 => {
                return Err(ConfigError::invalid(
                    s.key("driver"),
                    "an Ebyte E22 needs its mode pins: give the `board` it sits on",
                ));
            }
        },
    };

    let region_name = s.string("region")?.unwrap_or(DEFAULT_RADIO_REGION);
    let plan = RegionPlan::builtin(region_name)
        .map_err(|e| ConfigError::invalid(s.key("region"), e.to_string()))?;
    let frequency = s.int::<u32>("frequency_hz", range_i64(&FREQUENCY_RANGE_HZ))?;
    let base = match plan.name.as_str() {
        "EU868" => Modulation::eu868_default(),
        "US915" => Modulation::us915_default(),
        other => {
            if frequency.is_none() {
                return Err(s.missing(
                    "frequency_hz",
                    format!(
                        "region {other} has no default channel; set frequency_hz (and check \
                         spreading_factor and tx_power_dbm against its rules)"
                    ),
                ));
            }
            Modulation::eu868_default()
        }
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
    plan.check(&modulation, mtu)
        .map_err(|e| region_error(s, &plan, mtu, &e))?;
    Ok(RadioConfig {
        driver,
        port: PathBuf::from(port),
        baud,
        mtu,
        plan,
        modulation,
    })
}

/// The driver for a board's firmware; boards whose modules have no driver are refused here,
/// at start-up, rather than when the daemon first opens the port.
fn board_driver(board: &BoardProfile) -> Result<ModuleKind, String> {
    match board.module {
        BoardModule::Rui3 => Ok(ModuleKind::Rui3),
        BoardModule::Rak811 => Ok(ModuleKind::Rak811),
        BoardModule::RnodeKiss => Ok(ModuleKind::Rnode),
        BoardModule::EbyteE22 => Err(format!(
            "board {:?} is an Ebyte E22 module: the daemon does not run the E22 driver yet",
            board.id
        )),
        BoardModule::Sx126xSpi | BoardModule::Sx127xSpi => Err(format!(
            "board {:?} is an SPI HAT: lorabridge has no SPI driver yet",
            board.id
        )),
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

    use lorabridge_hardware::BoardProfile;
    use lorabridge_radio::ModuleKind;

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
            (
                file("", "[radio]\nboard = \"waveshare-sx1262-hat\""),
                "radio.board",
                "the daemon does not run the E22 driver yet",
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
}
