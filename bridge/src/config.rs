//! The steward's configuration file: one TOML file, checked completely before the daemon
//! touches anything.
//!
//! Why a hand-written walk over a [`toml::Table`] instead of `#[derive(Deserialize)]`: a
//! steward who mistypes a value must be told *which key* is wrong and why, in one line, and a
//! misspelt key must be reported as misspelt (with its full path, e.g. `radio.sprading_factor`)
//! rather than as a missing neighbour. Serde's messages name neither the table path nor the
//! domain rule (ranges, board limits, region plans), so every key is read here by hand and
//! every error is a [`ConfigError`] that names its key.
//!
//! Nothing here writes to disk or opens devices: [`Config::load`] only reads the file, so a
//! config that fails leaves no key file, database or identity behind.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lorabridge_hardware::modulation::{
    CODING_RATE_RANGE, FREQUENCY_RANGE_HZ, MIN_PREAMBLE_SYMBOLS, SPREADING_FACTOR_RANGE,
    TX_POWER_RANGE_DBM,
};
use lorabridge_hardware::{BoardError, BoardProfile, Modulation, ModulationError, RegionError};
use lorabridge_hardware::{ModuleKind as BoardModule, RegionPlan};
use lorabridge_proto::message::MAX_SUMMARY_TOPICS;
use lorabridge_radio::ModuleKind;
use toml::Value;

use crate::reticulum::ReticulumConfig;

/// Default file of the node's signing key (created by the daemon on first run).
pub const DEFAULT_NODE_KEY: &str = "lorabridge.key";
/// Default SQLite database of the p2panda node.
pub const DEFAULT_DATABASE: &str = "lorabridge.sqlite";
/// LoRes apps expect the node's gRPC API here (`PANDA_GRPC_ADDR=http://127.0.0.1:50051`).
pub const DEFAULT_GRPC_LISTEN: &str = "127.0.0.1:50051";
/// The status service sits next to the gRPC API, on loopback only by default.
pub const DEFAULT_STATUS_LISTEN: &str = "127.0.0.1:50052";
/// Default region plan: the project's first deployments are European.
pub const DEFAULT_RADIO_REGION: &str = "EU868";
/// Default file of the Reticulum identity.
pub const DEFAULT_RETICULUM_IDENTITY: &str = "reticulum.identity";
/// Default Reticulum announce interval in seconds (10 minutes).
pub const DEFAULT_ANNOUNCE_INTERVAL_SECS: u32 = 600;
/// Announces more often than once a minute flood a shared LoRa Reticulum network; less often
/// than once a day and peers forget the bridge.
pub const ANNOUNCE_INTERVAL_RANGE_SECS: RangeInclusive<u32> = 60..=86_400;
/// The RNode firmware splits host frames above 254 bytes into two LoRa packets (its own header
/// byte makes 255 on air); the bridge keeps one frame per packet, as the RNode board profiles do.
const RNODE_SINGLE_PACKET_MTU: usize = 254;

/// The whole, validated configuration of one bridge.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Where the node's signing key lives (key `node_key`); the daemon creates it on first run
    /// and keeps it, because the node id is the bridge's identity on the network.
    pub node_key_path: PathBuf,
    /// The p2panda SQLite database (key `database`).
    pub database_path: PathBuf,
    /// The p2panda network id (key `network_id`); must equal the LoRes nodes' one, or the
    /// bridge will never meet them.
    pub network_id: [u8; 32],
    /// Where the LoRes-compatible gRPC API listens (key `grpc_listen`).
    pub grpc_listen: SocketAddr,
    /// Where the status service listens (key `status_listen`).
    pub status_listen: SocketAddr,
    /// Internet/LAN transport (table `[iroh]`).
    pub iroh: IrohConfig,
    /// The regions whose topics the bridge carries (`[[regions]]`, at least one).
    pub regions: Vec<RegionConfig>,
    /// The LoRa module (table `[radio]`); `None` = no LoRa.
    pub radio: Option<RadioConfig>,
    /// Key encrypting LoRa frames (key `region_key`); every bridge of the area needs the same.
    pub region_key: Option<[u8; 32]>,
    /// Reticulum transport (table `[reticulum]`); `None` = no Reticulum.
    pub reticulum: Option<ReticulumConfig>,
}

/// The iroh transport (table `[iroh]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IrohConfig {
    /// Whether to use iroh at all (default true); a radio-only bridge switches it off.
    pub enabled: bool,
    /// Find peers on the local network by mDNS (default true).
    pub mdns: bool,
    /// Fixed UDP port (for port forwarding); `None` = any free port.
    pub bind_port: Option<u16>,
    /// Relay server, an http(s) URL; `None` = iroh's default relays.
    pub relay_url: Option<String>,
    /// Node ids (public keys) to connect to at start.
    pub bootstrap: Vec<[u8; 32]>,
}

/// One region (`[[regions]]` entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionConfig {
    /// The region's 32-byte id.
    pub id: [u8; 32],
    /// LoRes app ids whose topics in this region the bridge carries.
    pub apps: Vec<String>,
    /// Whether to carry the region admin topic (default true).
    pub admin_topic: bool,
    /// Whether this region's topics go over LoRa when a radio is configured (default true).
    pub lora: bool,
    /// Whether this region's topics go over Reticulum when it is configured (default true).
    pub reticulum: bool,
}

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

/// One p2panda topic the bridge subscribes to, and where it carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CarriedTopic {
    /// The p2panda topic id.
    pub topic: [u8; 32],
    /// The region it belongs to.
    pub region: [u8; 32],
    /// The app, or `None` for the region admin topic.
    pub app_id: Option<String>,
    /// Carried over LoRa: the region allows it *and* a `[radio]` is configured.
    pub lora: bool,
    /// Carried over Reticulum: the region allows it *and* `[reticulum]` is configured.
    pub reticulum: bool,
}

/// LoRes app topic: BLAKE3(region id bytes ‖ app_id UTF-8 bytes), exactly as LoRes nodes derive
/// it, so the bridge and the nodes meet on the same topic.
pub fn app_topic(region: &[u8; 32], app_id: &str) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(region);
    hasher.update(app_id.as_bytes());
    *hasher.finalize().as_bytes()
}

/// Why the configuration was refused. The message names the key (as a dotted path such as
/// `radio.spreading_factor` or `regions[0].apps`, counting `[[regions]]` from 0) and the reason,
/// so it reads as its own fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    kind: ErrorKind,
    key: Option<String>,
    message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ErrorKind {
    /// The file could not be read.
    Read,
    /// Not TOML.
    Syntax,
    /// A key the loader does not know (a typo, usually).
    UnknownKey,
    /// A known key with a bad or missing value.
    Invalid,
}

impl ConfigError {
    /// The dotted path of the offending key, when the error is about one.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// Whether the key is not one the loader knows.
    pub fn is_unknown_key(&self) -> bool {
        self.kind == ErrorKind::UnknownKey
    }

    fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            kind: ErrorKind::Invalid,
            key: Some(key.into()),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.kind, &self.key) {
            (ErrorKind::UnknownKey, Some(key)) => write!(f, "unknown key `{key}`{}", self.message),
            (_, Some(key)) => write!(f, "config key `{key}`: {}", self.message),
            (_, None) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

type Result<T, E = ConfigError> = std::result::Result<T, E>;

impl Config {
    /// Parses and validates; relative paths are resolved against `base_dir` (the config file's
    /// folder), so the daemon finds its files whatever directory it was started from.
    pub fn from_toml_str(text: &str, base_dir: &Path) -> Result<Config> {
        let table: toml::Table = toml::from_str(text).map_err(|e| syntax_error(text, &e))?;
        parse_config(&table, base_dir)
    }

    /// Reads and validates the file at `path`; a missing file is an error naming the path.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            kind: ErrorKind::Read,
            key: None,
            message: format!("cannot read config file {}: {e}", path.display()),
        })?;
        // Absolute (from the current directory, without touching the disk), so the resolved
        // paths stay right even if the daemon later changes directory.
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let base_dir = path.parent().unwrap_or(Path::new("/"));
        Self::from_toml_str(&text, base_dir)
    }

    /// Every topic the bridge carries, in config order, without duplicates: per region its
    /// admin topic (if `admin_topic`) and one topic per app.
    pub fn topics(&self) -> Vec<CarriedTopic> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for region in &self.regions {
            let lora = region.lora && self.radio.is_some();
            let reticulum = region.reticulum && self.reticulum.is_some();
            let admin = region.admin_topic.then_some((region.id, None));
            let apps = region
                .apps
                .iter()
                .map(|app| (app_topic(&region.id, app), Some(app.clone())));
            for (topic, app_id) in admin.into_iter().chain(apps) {
                if seen.insert(topic) {
                    out.push(CarriedTopic {
                        topic,
                        region: region.id,
                        app_id,
                        lora,
                        reticulum,
                    });
                }
            }
        }
        out
    }
}

/// A TOML syntax error with the line and column a steward's editor shows.
fn syntax_error(text: &str, error: &toml::de::Error) -> ConfigError {
    let message = error.message().trim_end();
    let message = match error.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("config is not valid TOML at line {line}, column {column}: {message}")
        }
        None => format!("config is not valid TOML: {message}"),
    };
    ConfigError {
        kind: ErrorKind::Syntax,
        key: None,
        message,
    }
}

/// The keys each table may hold; anything else is a typo and refused.
const TOP_KEYS: &[&str] = &[
    "node_key",
    "database",
    "network_id",
    "grpc_listen",
    "status_listen",
    "region_key",
    "iroh",
    "regions",
    "radio",
    "reticulum",
];
const IROH_KEYS: &[&str] = &["enabled", "mdns", "bind_port", "relay_url", "bootstrap"];
const REGION_KEYS: &[&str] = &["id", "apps", "admin_topic", "lora", "reticulum"];
const RADIO_KEYS: &[&str] = &[
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
const RETICULUM_KEYS: &[&str] = &["rnsd", "identity", "announce_interval_secs"];

fn parse_config(table: &toml::Table, base_dir: &Path) -> Result<Config> {
    let top = Section::new("", table, TOP_KEYS)?;
    let network_id = top
        .hex32("network_id")?
        .ok_or_else(|| top.missing("network_id", "the 64-hex network id the LoRes nodes use"))?;
    let node_key_path = top.path("node_key", DEFAULT_NODE_KEY, base_dir)?;
    let database_path = top.path("database", DEFAULT_DATABASE, base_dir)?;
    let grpc_listen = top.socket_addr("grpc_listen", DEFAULT_GRPC_LISTEN)?;
    let status_listen = top.socket_addr("status_listen", DEFAULT_STATUS_LISTEN)?;
    // Same port on the same or a wildcard address: the second bind would fail after start-up.
    let overlap = status_listen.ip() == grpc_listen.ip()
        || status_listen.ip().is_unspecified()
        || grpc_listen.ip().is_unspecified();
    if status_listen.port() == grpc_listen.port() && grpc_listen.port() != 0 && overlap {
        return Err(ConfigError::invalid(
            "status_listen",
            format!(
                "{status_listen} clashes with grpc_listen {grpc_listen}; give the status \
                 service its own port"
            ),
        ));
    }
    let region_key = top.hex32("region_key")?;
    let iroh = match top.table("iroh", IROH_KEYS)? {
        Some(section) => parse_iroh(&section)?,
        None => IrohConfig {
            enabled: true,
            mdns: true,
            bind_port: None,
            relay_url: None,
            bootstrap: Vec::new(),
        },
    };
    let regions = parse_regions(&top)?;
    let radio = top
        .table("radio", RADIO_KEYS)?
        .map(|s| parse_radio(&s))
        .transpose()?;
    let reticulum = top
        .table("reticulum", RETICULUM_KEYS)?
        .map(|s| parse_reticulum(&s, base_dir))
        .transpose()?;

    // Two features writing the same file would corrupt each other.
    let mut files = vec![("node_key", &node_key_path), ("database", &database_path)];
    if let Some(r) = &reticulum {
        files.push(("reticulum.identity", &r.identity_path));
    }
    for (i, (key, path)) in files.iter().enumerate() {
        if let Some((other, _)) = files[..i].iter().find(|(_, p)| p == path) {
            return Err(ConfigError::invalid(
                *key,
                format!(
                    "{} is also the file of `{other}`; each needs its own",
                    path.display()
                ),
            ));
        }
    }

    let config = Config {
        node_key_path,
        database_path,
        network_id,
        grpc_listen,
        status_listen,
        iroh,
        regions,
        radio,
        region_key,
        reticulum,
    };
    let over_lora = config.topics().iter().filter(|t| t.lora).count();
    if over_lora > MAX_SUMMARY_TOPICS {
        return Err(ConfigError::invalid(
            "regions",
            format!(
                "{over_lora} topics would be carried over LoRa, at most {MAX_SUMMARY_TOPICS} fit \
                 in one radio summary frame; set `lora = false` on some regions or carry fewer apps"
            ),
        ));
    }
    Ok(config)
}

fn parse_iroh(s: &Section<'_>) -> Result<IrohConfig> {
    let enabled = s.bool("enabled")?.unwrap_or(true);
    let mdns = s.bool("mdns")?.unwrap_or(true);
    let bind_port = s.int("bind_port", 0..=i64::from(u16::MAX))?;
    let relay_url = match s.string("relay_url")? {
        Some(url) => {
            check_http_url(url)
                .map_err(|reason| ConfigError::invalid(s.key("relay_url"), reason))?;
            Some(url.to_owned())
        }
        None => None,
    };
    let mut bootstrap = Vec::new();
    for (i, item) in s.array("bootstrap")?.iter().enumerate() {
        let key = format!("{}[{i}]", s.key("bootstrap"));
        let id = hex32(&key, item)?;
        if bootstrap.contains(&id) {
            return Err(ConfigError::invalid(key, "this node id is listed twice"));
        }
        bootstrap.push(id);
    }
    Ok(IrohConfig {
        enabled,
        mdns,
        bind_port,
        relay_url,
        bootstrap,
    })
}

fn parse_regions(top: &Section<'_>) -> Result<Vec<RegionConfig>> {
    let Some(value) = top.get("regions") else {
        return Err(top.missing(
            "regions",
            "add at least one [[regions]] table with the region's `id`",
        ));
    };
    let Value::Array(items) = value else {
        return Err(ConfigError::invalid(
            "regions",
            format!("expected [[regions]] tables, got {}", describe(value)),
        ));
    };
    if items.is_empty() {
        return Err(top.missing(
            "regions",
            "add at least one [[regions]] table with the region's `id`",
        ));
    }
    let mut regions: Vec<RegionConfig> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("regions[{i}]");
        let Value::Table(table) = item else {
            return Err(ConfigError::invalid(
                path,
                format!("expected a [[regions]] table, got {}", describe(item)),
            ));
        };
        let s = Section::new(&path, table, REGION_KEYS)?;
        let id = s
            .hex32("id")?
            .ok_or_else(|| s.missing("id", "the region's 64-hex id, as the LoRes nodes have it"))?;
        if let Some(j) = regions.iter().position(|r| r.id == id) {
            return Err(ConfigError::invalid(
                s.key("id"),
                format!("region is also regions[{j}]; list each region once"),
            ));
        }
        let mut apps: Vec<String> = Vec::new();
        for (k, app) in s.array("apps")?.iter().enumerate() {
            let key = format!("{}[{k}]", s.key("apps"));
            let Value::String(app) = app else {
                return Err(ConfigError::invalid(
                    key,
                    format!("expected an app id string, got {}", describe(app)),
                ));
            };
            check_app_id(app).map_err(|reason| ConfigError::invalid(&key, reason))?;
            if apps.contains(app) {
                return Err(ConfigError::invalid(
                    key,
                    format!("app {app:?} is listed twice"),
                ));
            }
            apps.push(app.clone());
        }
        let admin_topic = s.bool("admin_topic")?.unwrap_or(true);
        if apps.is_empty() && !admin_topic {
            return Err(ConfigError::invalid(
                s.key("apps"),
                "the region carries no topic: list its apps or set admin_topic = true",
            ));
        }
        regions.push(RegionConfig {
            id,
            apps,
            admin_topic,
            lora: s.bool("lora")?.unwrap_or(true),
            reticulum: s.bool("reticulum")?.unwrap_or(true),
        });
    }
    Ok(regions)
}

/// App ids end up hashed into topic ids, so a stray space silently makes a different topic that
/// no LoRes node uses; such ids are refused rather than carried.
fn check_app_id(app: &str) -> Result<(), String> {
    if app.is_empty() {
        return Err("app id is empty".into());
    }
    if app.trim() != app {
        return Err(format!(
            "app id {app:?} starts or ends with white space, which would make a different topic"
        ));
    }
    if app.chars().any(char::is_control) {
        return Err(format!("app id {app:?} contains control characters"));
    }
    Ok(())
}

fn parse_radio(s: &Section<'_>) -> Result<RadioConfig> {
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

fn range_i64<T: Copy + Into<i64>>(range: &RangeInclusive<T>) -> RangeInclusive<i64> {
    (*range.start()).into()..=(*range.end()).into()
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

fn parse_reticulum(s: &Section<'_>, base_dir: &Path) -> Result<ReticulumConfig> {
    let mut rnsd = Vec::new();
    for (i, item) in s.array("rnsd")?.iter().enumerate() {
        let key = format!("{}[{i}]", s.key("rnsd"));
        let Value::String(addr) = item else {
            return Err(ConfigError::invalid(
                key,
                format!("expected a \"host:port\" string, got {}", describe(item)),
            ));
        };
        check_host_port(addr).map_err(|reason| ConfigError::invalid(&key, reason))?;
        rnsd.push(addr.clone());
    }
    if rnsd.is_empty() {
        return Err(s.missing(
            "rnsd",
            "list at least one rnsd TCPServerInterface address, e.g. rnsd = [\"127.0.0.1:4242\"]",
        ));
    }
    let identity_path = s.path("identity", DEFAULT_RETICULUM_IDENTITY, base_dir)?;
    let secs = s
        .int::<u32>(
            "announce_interval_secs",
            range_i64(&ANNOUNCE_INTERVAL_RANGE_SECS),
        )?
        .unwrap_or(DEFAULT_ANNOUNCE_INTERVAL_SECS);
    Ok(ReticulumConfig {
        servers: rnsd,
        identity_path,
        announce_interval: Duration::from_secs(u64::from(secs)),
        // Proofs cost 83 bytes per packet per hop; the engine's summaries already repair what
        // is lost, so the daemon does not ask for them.
        prove: false,
    })
}

/// "host:port" with a non-empty host (IPv6 in brackets) and a port 1..=65535.
pub(crate) fn check_host_port(addr: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{addr:?} is not \"host:port\": {why}"));
    let Some((host, port)) = addr.rsplit_once(':') else {
        return bad("no port");
    };
    if host.is_empty() {
        return bad("no host");
    }
    if host.contains(char::is_whitespace) {
        return bad("white space in the host");
    }
    let ipv6 = host.starts_with('[') && host.ends_with(']') && host.len() > 2;
    if host.contains(':') && !ipv6 {
        return bad("write IPv6 addresses in brackets, e.g. [::1]:4242");
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => bad("the port must be a number 1..=65535"),
        Ok(_) => Ok(()),
    }
}

/// An `http://` or `https://` URL with a host and an optional valid port: enough to catch
/// typos without a URL crate; iroh parses it properly later.
fn check_http_url(url: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{url:?} is not an http(s) URL: {why}"));
    let lower = url.to_ascii_lowercase();
    let Some(rest) = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
    else {
        return bad("it must start with https:// or http://");
    };
    if url.contains(char::is_whitespace) {
        return bad("it contains white space");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, tail)) => (h, tail.strip_prefix(':')),
            None => return bad("unclosed [ in the host"),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return bad("no host");
    }
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return bad("the port must be a number 0..=65535");
    }
    Ok(())
}

/// 32 bytes written as 64 hex characters.
fn hex32(key: &str, value: &Value) -> Result<[u8; 32]> {
    let Value::String(text) = value else {
        return Err(ConfigError::invalid(
            key,
            format!(
                "expected a string of 64 hex characters, got {}",
                describe(value)
            ),
        ));
    };
    let count = text.chars().count();
    if count != 64 {
        return Err(ConfigError::invalid(
            key,
            format!("expected 64 hex characters, got {count}"),
        ));
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).map_err(|e| {
        let reason = match e {
            hex::FromHexError::InvalidHexCharacter { c, index } => {
                format!("{c:?} at position {} is not a hex character", index + 1)
            }
            other => other.to_string(),
        };
        ConfigError::invalid(key, format!("expected 64 hex characters: {reason}"))
    })?;
    Ok(out)
}

/// What a TOML value is, for "expected X, got Y" messages.
fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("the string {s:?}"),
        Value::Integer(i) => format!("the integer {i}"),
        Value::Float(f) => format!("the number {f}"),
        Value::Boolean(b) => format!("{b}"),
        Value::Datetime(d) => format!("the date {d}"),
        Value::Array(_) => "a list".into(),
        Value::Table(_) => "a table".into(),
    }
}

/// One TOML table being read, with its dotted path for error messages.
struct Section<'a> {
    path: String,
    table: &'a toml::Table,
}

impl<'a> Section<'a> {
    /// Opens a table and refuses keys not in `known` before reading any value: a misspelt key
    /// is then reported as such, not as its correct spelling being missing.
    fn new(path: &str, table: &'a toml::Table, known: &[&str]) -> Result<Self> {
        let section = Section {
            path: path.to_owned(),
            table,
        };
        section.check_unknown(known)?;
        Ok(section)
    }

    fn check_unknown(&self, known: &[&str]) -> Result<()> {
        let Some(unknown) = self.table.keys().find(|k| !known.contains(&k.as_str())) else {
            return Ok(());
        };
        let hint = match known.iter().min_by_key(|k| edit_distance(k, unknown)) {
            Some(close) if edit_distance(close, unknown) <= 2 => {
                format!("; did you mean `{}`?", self.key(close))
            }
            _ => {
                let here = if self.path.is_empty() {
                    "at the top level".to_owned()
                } else {
                    format!("in `{}`", self.path)
                };
                format!("; known keys {here}: {}", known.join(", "))
            }
        };
        Err(ConfigError {
            kind: ErrorKind::UnknownKey,
            key: Some(self.key(unknown)),
            message: hint,
        })
    }

    fn key(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    fn missing(&self, name: &str, what: impl fmt::Display) -> ConfigError {
        ConfigError::invalid(self.key(name), format!("missing: {what}"))
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        self.table.get(name)
    }

    fn wrong_type(&self, name: &str, expected: &str, got: &Value) -> ConfigError {
        ConfigError::invalid(
            self.key(name),
            format!("expected {expected}, got {}", describe(got)),
        )
    }

    fn string(&self, name: &str) -> Result<Option<&'a str>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong_type(name, "a string", other)),
        }
    }

    fn bool(&self, name: &str) -> Result<Option<bool>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(*b)),
            Some(other) => Err(self.wrong_type(name, "true or false", other)),
        }
    }

    /// An integer within `range`, converted to the field's type.
    fn int<T: TryFrom<i64>>(&self, name: &str, range: RangeInclusive<i64>) -> Result<Option<T>> {
        let value = match self.get(name) {
            None => return Ok(None),
            Some(Value::Integer(i)) => *i,
            Some(other) => return Err(self.wrong_type(name, "a whole number", other)),
        };
        let out_of_range = || {
            ConfigError::invalid(
                self.key(name),
                format!(
                    "{value} is out of range {}..={}",
                    range.start(),
                    range.end()
                ),
            )
        };
        if !range.contains(&value) {
            return Err(out_of_range());
        }
        T::try_from(value).map(Some).map_err(|_| out_of_range())
    }

    fn array(&self, name: &str) -> Result<&'a [Value]> {
        match self.get(name) {
            None => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(other) => Err(self.wrong_type(name, "a list [ ... ]", other)),
        }
    }

    /// A sub-table, its keys checked against `known`.
    fn table(&self, name: &str, known: &[&str]) -> Result<Option<Section<'a>>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Table(table)) => Section::new(&self.key(name), table, known).map(Some),
            Some(other) => Err(self.wrong_type(name, &format!("a [{name}] table"), other)),
        }
    }

    fn hex32(&self, name: &str) -> Result<Option<[u8; 32]>> {
        self.get(name)
            .map(|v| hex32(&self.key(name), v))
            .transpose()
    }

    fn socket_addr(&self, name: &str, default: &str) -> Result<SocketAddr> {
        let text = self.string(name)?.unwrap_or(default);
        text.parse().map_err(|_| {
            ConfigError::invalid(
                self.key(name),
                format!(
                    "{text:?} is not an address with port such as \"127.0.0.1:50051\" or \
                     \"[::1]:50051\""
                ),
            )
        })
    }

    /// A file path; relative ones are taken from `base_dir`, the config file's folder.
    fn path(&self, name: &str, default: &str, base_dir: &Path) -> Result<PathBuf> {
        let text = self.string(name)?.unwrap_or(default);
        if text.trim().is_empty() {
            return Err(ConfigError::invalid(self.key(name), "the path is empty"));
        }
        Ok(base_dir.join(text))
    }
}

/// Levenshtein distance, for "did you mean" hints on misspelt keys.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(current + 1);
            prev = current;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const R1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const R2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    /// A minimal valid file: `top` goes before the first table, `tail` after the region.
    fn file(top: &str, tail: &str) -> String {
        format!(
            "network_id = \"{NET}\"\n{top}\n[[regions]]\nid = \"{R1}\"\napps = [\"chat\"]\n{tail}\n"
        )
    }

    fn parse(text: &str) -> Result<Config> {
        Config::from_toml_str(text, Path::new("/srv/bridge"))
    }

    fn ok(text: &str) -> Config {
        parse(text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
    }

    fn bytes(hex_text: &str) -> [u8; 32] {
        let mut out = [0; 32];
        hex::decode_to_slice(hex_text, &mut out).expect("test hex");
        out
    }

    const RADIO: &str = "[radio]\nboard = \"rak3172-usb\"\n";

    #[test]
    fn example_file_parses() {
        let text = include_str!("../bridge.example.toml");
        let config = Config::from_toml_str(text, Path::new("/etc/lorabridge")).expect("example");
        assert_eq!(config.grpc_listen, "127.0.0.1:50051".parse().unwrap());
        assert_eq!(
            config.node_key_path,
            Path::new("/etc/lorabridge/lorabridge.key")
        );
        let radio = config.radio.as_ref().expect("example has a radio");
        assert_eq!(radio.driver, ModuleKind::Rui3);
        assert_eq!(radio.modulation, Modulation::eu868_default());
        assert!(
            config.reticulum.is_none(),
            "Reticulum is opt-in: a bridge without rnsd must not retry it forever"
        );
        assert_eq!(config.topics().len(), 2);
        // The commented-out [reticulum] table is valid once uncommented.
        let uncommented = text
            .replace("# [reticulum]", "[reticulum]")
            .replace("# rnsd = ", "rnsd = ");
        let config = Config::from_toml_str(&uncommented, Path::new("/etc/lorabridge"))
            .expect("with reticulum");
        assert_eq!(
            config.reticulum.as_ref().expect("reticulum").servers.len(),
            1
        );
    }

    #[test]
    fn defaults() {
        let c = ok(&file("", ""));
        assert_eq!(c.node_key_path, Path::new("/srv/bridge/lorabridge.key"));
        assert_eq!(c.database_path, Path::new("/srv/bridge/lorabridge.sqlite"));
        assert_eq!(c.network_id, bytes(NET));
        assert_eq!(c.grpc_listen, "127.0.0.1:50051".parse().unwrap());
        assert_eq!(c.status_listen, "127.0.0.1:50052".parse().unwrap());
        assert_eq!(
            c.iroh,
            IrohConfig {
                enabled: true,
                mdns: true,
                bind_port: None,
                relay_url: None,
                bootstrap: vec![],
            }
        );
        assert_eq!(
            c.regions,
            vec![RegionConfig {
                id: bytes(R1),
                apps: vec!["chat".into()],
                admin_topic: true,
                lora: true,
                reticulum: true,
            }]
        );
        assert_eq!(c.radio, None);
        assert_eq!(c.region_key, None);
        assert_eq!(c.reticulum, None);

        // [radio] with a board only: EU868 and its default modulation.
        let radio = ok(&file("", RADIO)).radio.expect("radio");
        assert_eq!(radio.plan.name, "EU868");
        assert_eq!(radio.modulation, Modulation::eu868_default());

        // US915 has its own default.
        let us = ok(&file("", &format!("{RADIO}region = \"us915\"\n")))
            .radio
            .expect("radio");
        assert_eq!(us.plan.name, "US915");
        assert_eq!(us.modulation, Modulation::us915_default());

        // [reticulum] with only rnsd.
        let r = ok(&file("", "[reticulum]\nrnsd = [\"localhost:4242\"]"))
            .reticulum
            .expect("reticulum");
        assert_eq!(r.identity_path, Path::new("/srv/bridge/reticulum.identity"));
        assert_eq!(r.announce_interval, Duration::from_secs(600));
    }

    #[test]
    fn every_key_is_read() {
        let text = format!(
            r#"
network_id = "{NET}"
node_key = "keys/node.key"
database = "/var/lib/lorabridge/db.sqlite"
grpc_listen = "0.0.0.0:6000"
status_listen = "[::1]:6001"
region_key = "{R2}"

[iroh]
enabled = false
mdns = false
bind_port = 41641
relay_url = "https://relay.example.org:8443/"
bootstrap = ["{R1}", "{R2}"]

[[regions]]
id = "{R1}"
apps = ["chat", "market"]
admin_topic = false
lora = false
reticulum = false

[[regions]]
id = "{R2}"

[radio]
driver = "rnode"
port = "/dev/ttyACM0"
baud = 57600
region = "EU868"
frequency_hz = 868_300_000
spreading_factor = 7
bandwidth_hz = 250_000
coding_rate = 8
preamble_symbols = 16
tx_power_dbm = 10
sync_word = 0x12

[reticulum]
rnsd = ["rns.local:4242", "[::1]:37428"]
identity = "/var/lib/lorabridge/rns.id"
announce_interval_secs = 3600
"#
        );
        let c = ok(&text);
        assert_eq!(c.node_key_path, Path::new("/srv/bridge/keys/node.key"));
        assert_eq!(c.database_path, Path::new("/var/lib/lorabridge/db.sqlite"));
        assert_eq!(c.grpc_listen, "0.0.0.0:6000".parse().unwrap());
        assert_eq!(c.status_listen, "[::1]:6001".parse().unwrap());
        assert_eq!(c.region_key, Some(bytes(R2)));
        assert_eq!(
            c.iroh,
            IrohConfig {
                enabled: false,
                mdns: false,
                bind_port: Some(41641),
                relay_url: Some("https://relay.example.org:8443/".into()),
                bootstrap: vec![bytes(R1), bytes(R2)],
            }
        );
        assert_eq!(c.regions[0].apps, vec!["chat", "market"]);
        assert!(!c.regions[0].admin_topic && !c.regions[0].lora && !c.regions[0].reticulum);
        assert!(c.regions[1].apps.is_empty() && c.regions[1].admin_topic);
        let radio = c.radio.expect("radio");
        assert_eq!(radio.driver, ModuleKind::Rnode);
        assert_eq!(radio.port, Path::new("/dev/ttyACM0"));
        assert_eq!(radio.baud, 57600);
        assert_eq!(radio.mtu, 254);
        assert_eq!(
            radio.modulation,
            Modulation {
                frequency_hz: 868_300_000,
                spreading_factor: 7,
                bandwidth_hz: 250_000,
                coding_rate: 8,
                preamble_symbols: 16,
                tx_power_dbm: 10,
                sync_word: 0x12,
            }
        );
        let r = c.reticulum.expect("reticulum");
        assert_eq!(r.servers, vec!["rns.local:4242", "[::1]:37428"]);
        assert_eq!(r.identity_path, Path::new("/var/lib/lorabridge/rns.id"));
        assert_eq!(r.announce_interval, Duration::from_secs(3600));
    }

    /// Each bad value is refused with its key named; `reason` is a fragment of the message.
    #[test]
    fn bad_values_name_their_key() {
        let radio = |extra: &str| file("", &format!("{RADIO}{extra}"));
        let cases: Vec<(String, &str, &str)> = vec![
            // top level
            (
                format!("[[regions]]\nid = \"{R1}\""),
                "network_id",
                "missing: ",
            ),
            (
                file("", "").replace(NET, "00112233aabb"),
                "network_id",
                "expected 64 hex characters, got 12",
            ),
            (
                file("", "").replace(NET, &format!("zz{}", &NET[2..])),
                "network_id",
                "'z' at position 1 is not a hex character",
            ),
            (
                format!("network_id = 7\n[[regions]]\nid = \"{R1}\""),
                "network_id",
                "got the integer 7",
            ),
            (file("node_key = \"\"", ""), "node_key", "empty"),
            (file("database = 3", ""), "database", "expected a string"),
            (
                file("database = \"lorabridge.key\"", ""),
                "database",
                "also the file of `node_key`",
            ),
            (
                file("grpc_listen = \"localhost\"", ""),
                "grpc_listen",
                "not an address",
            ),
            (
                file("status_listen = \"127.0.0.1:50051\"", ""),
                "status_listen",
                "clashes with grpc_listen",
            ),
            (
                file(
                    "grpc_listen = \"0.0.0.0:7000\"\nstatus_listen = \"127.0.0.1:7000\"",
                    "",
                ),
                "status_listen",
                "clashes with grpc_listen 0.0.0.0:7000",
            ),
            (
                file("region_key = \"abc\"", ""),
                "region_key",
                "expected 64 hex characters, got 3",
            ),
            // [iroh]
            (
                file("", "[iroh]\nenabled = \"yes\""),
                "iroh.enabled",
                "true or false",
            ),
            (file("", "[iroh]\nmdns = 1"), "iroh.mdns", "true or false"),
            (
                file("", "[iroh]\nbind_port = 70000"),
                "iroh.bind_port",
                "70000 is out of range 0..=65535",
            ),
            (
                file("", "[iroh]\nrelay_url = \"relay.example.org\""),
                "iroh.relay_url",
                "https://",
            ),
            (
                file("", "[iroh]\nrelay_url = \"https://:443\""),
                "iroh.relay_url",
                "no host",
            ),
            (
                file(
                    "",
                    "[iroh]\nrelay_url = \"https://relay.example.org:99999\"",
                ),
                "iroh.relay_url",
                "port",
            ),
            (
                file("", "[iroh]\nbootstrap = [\"abcd\"]"),
                "iroh.bootstrap[0]",
                "expected 64 hex characters, got 4",
            ),
            (
                file("", &format!("[iroh]\nbootstrap = [\"{R1}\", \"{R1}\"]")),
                "iroh.bootstrap[1]",
                "twice",
            ),
            (file("iroh = 1", ""), "iroh", "table"),
            // regions
            (format!("network_id = \"{NET}\""), "regions", "missing: "),
            (
                format!("network_id = \"{NET}\"\nregions = []"),
                "regions",
                "missing: ",
            ),
            (
                format!("network_id = \"{NET}\"\n[regions]\nid = \"{R1}\""),
                "regions",
                "[[regions]]",
            ),
            (
                file("", "[[regions]]\napps = [\"chat\"]"),
                "regions[1].id",
                "missing: ",
            ),
            (
                file("", &format!("[[regions]]\nid = \"{}\"", &R2[..63])),
                "regions[1].id",
                "got 63",
            ),
            (
                file("", &format!("[[regions]]\nid = \"{R1}\"")),
                "regions[1].id",
                "also regions[0]",
            ),
            (
                file("", &format!("[[regions]]\nid = \"{R2}\"\napps = [\"\"]")),
                "regions[1].apps[0]",
                "empty",
            ),
            (
                file(
                    "",
                    &format!("[[regions]]\nid = \"{R2}\"\napps = [\"a\", \"a\"]"),
                ),
                "regions[1].apps[1]",
                "twice",
            ),
            (
                file(
                    "",
                    &format!("[[regions]]\nid = \"{R2}\"\napps = [\"chat \"]"),
                ),
                "regions[1].apps[0]",
                "white space",
            ),
            (
                file("", &format!("[[regions]]\nid = \"{R2}\"\napps = [1]")),
                "regions[1].apps[0]",
                "expected an app id string",
            ),
            (
                file("", &format!("[[regions]]\nid = \"{R2}\"\napps = \"chat\"")),
                "regions[1].apps",
                "expected a list",
            ),
            (
                file(
                    "",
                    &format!("[[regions]]\nid = \"{R2}\"\nadmin_topic = false"),
                ),
                "regions[1].apps",
                "carries no topic",
            ),
            (
                file("", &format!("[[regions]]\nid = \"{R2}\"\nlora = \"no\"")),
                "regions[1].lora",
                "true or false",
            ),
            (
                file("", &format!("[[regions]]\nid = \"{R2}\"\nreticulum = 0")),
                "regions[1].reticulum",
                "true or false",
            ),
            // [radio]
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
            // [reticulum]
            (file("", "[reticulum]"), "reticulum.rnsd", "missing: "),
            (
                file("", "[reticulum]\nrnsd = []"),
                "reticulum.rnsd",
                "at least one",
            ),
            (
                file("", "[reticulum]\nrnsd = [\"localhost\"]"),
                "reticulum.rnsd[0]",
                "no port",
            ),
            (
                file("", "[reticulum]\nrnsd = [\"localhost:70000\"]"),
                "reticulum.rnsd[0]",
                "1..=65535",
            ),
            (
                file("", "[reticulum]\nrnsd = [\":4242\"]"),
                "reticulum.rnsd[0]",
                "no host",
            ),
            (
                file("", "[reticulum]\nrnsd = [\"::1:4242\"]"),
                "reticulum.rnsd[0]",
                "brackets",
            ),
            (
                file("", "[reticulum]\nrnsd = [4242]"),
                "reticulum.rnsd[0]",
                "host:port",
            ),
            (
                file(
                    "",
                    "[reticulum]\nrnsd = [\"a:1\"]\nidentity = \"lorabridge.sqlite\"",
                ),
                "reticulum.identity",
                "also the file of `database`",
            ),
            (
                file(
                    "",
                    "[reticulum]\nrnsd = [\"a:1\"]\nannounce_interval_secs = 59",
                ),
                "reticulum.announce_interval_secs",
                "59 is out of range 60..=86400",
            ),
            (
                file(
                    "",
                    "[reticulum]\nrnsd = [\"a:1\"]\nannounce_interval_secs = 86401",
                ),
                "reticulum.announce_interval_secs",
                "86401 is out of range 60..=86400",
            ),
        ];
        for (text, key, reason) in cases {
            let error = parse(&text).expect_err(&format!("{key} should fail:\n{text}"));
            assert_eq!(error.key(), Some(key), "{error}\n---\n{text}");
            let shown = error.to_string();
            assert!(
                shown.starts_with(&format!("config key `{key}`: ")),
                "{shown}"
            );
            assert!(shown.contains(reason), "{shown:?} lacks {reason:?}");
        }
    }

    #[test]
    fn messages_read_as_specified() {
        let error = parse(&file("", &format!("{RADIO}spreading_factor = 13"))).unwrap_err();
        assert_eq!(
            error.to_string(),
            "config key `radio.spreading_factor`: 13 is out of range 5..=12"
        );
        let error = parse(&file("", "").replace(NET, "00112233aabb")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "config key `network_id`: expected 64 hex characters, got 12"
        );
    }

    #[test]
    fn unknown_keys_are_refused_everywhere() {
        let cases = [
            (
                file("netwrk_id = \"x\"", ""),
                "netwrk_id",
                Some("network_id"),
            ),
            (file("colour = \"blue\"", ""), "colour", None),
            (
                file("", "[iroh]\nmdsn = true"),
                "iroh.mdsn",
                Some("iroh.mdns"),
            ),
            (
                file("", "[[regions]]\nid = \"x\"\napp = [\"chat\"]"),
                "regions[1].app",
                Some("regions[1].apps"),
            ),
            (
                file("", &format!("{RADIO}sprading_factor = 7")),
                "radio.sprading_factor",
                Some("radio.spreading_factor"),
            ),
            (file("", &format!("{RADIO}mtu = 100")), "radio.mtu", None),
            (
                file("", "[reticulum]\nrnsd = [\"a:1\"]\nannounce_interval = 60"),
                "reticulum.announce_interval",
                None,
            ),
        ];
        for (text, key, hint) in cases {
            let error = parse(&text).expect_err(key);
            assert!(error.is_unknown_key(), "{error}");
            assert_eq!(error.key(), Some(key));
            let shown = error.to_string();
            assert!(
                shown.starts_with(&format!("unknown key `{key}`")),
                "{shown}"
            );
            match hint {
                Some(hint) => assert!(
                    shown.contains(&format!("did you mean `{hint}`?")),
                    "{shown}"
                ),
                None => assert!(shown.contains("known keys"), "{shown}"),
            }
        }
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let error = parse("network_id = \"abc\"\n\ngrpc_listen = 127.0.0.1:1\n").unwrap_err();
        let shown = error.to_string();
        assert_eq!(error.key(), None);
        assert!(shown.contains("line 3, column"), "{shown}");
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
    fn topics_follow_lores_derivation() {
        let text = file(
            "",
            &format!(
                "[[regions]]\nid = \"{R2}\"\napps = [\"chat\", \"market\"]\nadmin_topic = false\nlora = false\n{RADIO}"
            ),
        );
        let c = ok(&text);
        let topics = c.topics();
        // Independently: BLAKE3 over the concatenated bytes.
        let expected = |region: &str, app: &str| {
            let mut data = bytes(region).to_vec();
            data.extend_from_slice(app.as_bytes());
            *blake3::hash(&data).as_bytes()
        };
        assert_eq!(
            topics,
            vec![
                CarriedTopic {
                    topic: bytes(R1),
                    region: bytes(R1),
                    app_id: None,
                    lora: true,
                    reticulum: false,
                },
                CarriedTopic {
                    topic: expected(R1, "chat"),
                    region: bytes(R1),
                    app_id: Some("chat".into()),
                    lora: true,
                    reticulum: false,
                },
                CarriedTopic {
                    topic: expected(R2, "chat"),
                    region: bytes(R2),
                    app_id: Some("chat".into()),
                    lora: false,
                    reticulum: false,
                },
                CarriedTopic {
                    topic: expected(R2, "market"),
                    region: bytes(R2),
                    app_id: Some("market".into()),
                    lora: false,
                    reticulum: false,
                },
            ]
        );
        assert_eq!(app_topic(&bytes(R1), "chat"), expected(R1, "chat"));
        // A known vector, so a change of hash input order cannot go unnoticed.
        assert_eq!(
            hex::encode(app_topic(&[0; 32], "chat")),
            hex::encode(blake3::hash(&[&[0u8; 32][..], b"chat"].concat()).as_bytes())
        );

        // Reticulum flags follow the [reticulum] table.
        let c = ok(&file("", "[reticulum]\nrnsd = [\"a:1\"]"));
        assert!(c.topics().iter().all(|t| t.reticulum && !t.lora));
    }

    #[test]
    fn at_most_twenty_topics_over_lora() {
        let apps = |n: usize| {
            (0..n)
                .map(|i| format!("\"app{i}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let text = |n: usize| {
            format!(
                "network_id = \"{NET}\"\n[[regions]]\nid = \"{R1}\"\napps = [{}]\n{RADIO}",
                apps(n)
            )
        };
        // admin topic + 19 apps = 20: fits.
        assert_eq!(ok(&text(19)).topics().len(), 20);
        let error = parse(&text(20)).unwrap_err();
        assert_eq!(error.key(), Some("regions"), "{error}");
        assert!(error.to_string().contains("21 topics"), "{error}");
        // Without a radio, or with LoRa off for the region, the limit does not apply.
        let no_radio = text(40).replace(RADIO, "");
        assert_eq!(ok(&no_radio).topics().len(), 41);
        let lora_off = text(40).replace("[radio]", "lora = false\n[radio]");
        assert!(ok(&lora_off).topics().iter().all(|t| !t.lora));
    }

    #[test]
    fn relative_paths_resolve_against_the_config_folder() {
        let text = file(
            "node_key = \"state/node.key\"\ndatabase = \"/abs/db.sqlite\"",
            "[reticulum]\nrnsd = [\"a:1\"]\nidentity = \"../rns.id\"",
        );
        let c = Config::from_toml_str(&text, Path::new("/home/steward/bridge")).expect("valid");
        assert_eq!(
            c.node_key_path,
            Path::new("/home/steward/bridge/state/node.key")
        );
        assert_eq!(c.database_path, Path::new("/abs/db.sqlite"));
        assert_eq!(
            c.reticulum.expect("reticulum").identity_path,
            Path::new("/home/steward/bridge/../rns.id")
        );
    }

    #[test]
    fn load_reads_the_file_and_names_a_missing_one() {
        let dir = std::env::temp_dir().join(format!("lorabridge-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("bridge.toml");
        std::fs::write(&path, file("", "")).expect("write");
        let c = Config::load(&path).expect("loads");
        assert_eq!(c.node_key_path, dir.join("lorabridge.key"));
        // Loading wrote nothing next to the config.
        let entries: Vec<_> = std::fs::read_dir(&dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(entries, vec![std::ffi::OsString::from("bridge.toml")]);
        std::fs::remove_dir_all(&dir).expect("cleanup");

        let missing = dir.join("nope.toml");
        let error = Config::load(&missing).unwrap_err();
        assert!(
            error.to_string().contains(&missing.display().to_string()),
            "{error}"
        );
    }
}
