//! Scenario files: what a run simulates (radio, places, traffic, faults, protocols), in TOML.
//!
//! Every value is checked before a run starts and a bad one is an error naming its key
//! (`radio.spreading_factor`, `faults.crash[1].node`), so a planner fixes the file, not the code.
//! The format is documented once, in [`FORMAT`], which `lorabridge-sim scenario-help` prints.

use std::time::Duration;

use lorabridge_hardware::{Modulation, RegionPlan};
use serde::Deserialize;

mod validate;

/// The scenario format, as `lorabridge-sim scenario-help` prints it.
pub const FORMAT: &str = include_str!("scenario_format.txt");

/// Largest number of nodes a scenario may have: the medium keeps an n×n link table.
pub const MAX_NODES: usize = 1000;
/// Largest number of operations a run may publish (all are signed up front and held in
/// memory by every node of every protocol).
pub const MAX_OPS: usize = 100_000;
/// Longest run: ledgers and reports hold per-transmission data.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
}

/// A duration written as `"90s"`, `"15m"`, `"2h"`, `"250ms"`, `"1h30m"` or a number of seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Float(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(s) => Ok(Dur(Duration::from_secs(s))),
            Raw::Float(s) if s.is_finite() && s >= 0.0 => Ok(Dur(Duration::from_secs_f64(s))),
            Raw::Float(s) => Err(serde::de::Error::custom(format!("bad duration {s}"))),
            Raw::Text(t) => parse_duration(&t)
                .map(Dur)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// Parses `"1h30m"`, `"90s"`, `"250ms"`, `"2.5s"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad =
        || format!("bad duration {text:?}: write e.g. \"90s\", \"15m\", \"1h30m\", \"250ms\"");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0.0f64;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..number_end].parse().map_err(|_| bad())?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = rest[..unit_end].trim();
        let scale = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = &rest[unit_end..];
    }
    if !total.is_finite() || total > 1e9 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(total))
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_seed")]
    pub seed: u64,
    pub duration: Dur,
    #[serde(default)]
    pub radio: Radio,
    #[serde(default)]
    pub path_loss: PathLoss,
    pub topology: Topology,
    #[serde(default)]
    pub links: Vec<LinkOverride>,
    #[serde(default)]
    pub traffic: Traffic,
    #[serde(default)]
    pub faults: Faults,
    /// A hostile node, run in place of the protocol under test on that node.
    pub attacker: Option<Attacker>,
    #[serde(default)]
    pub protocols: Protocols,
}

/// `node` is hostile (see `protocol::attacker`): every `interval` it replays a recorded
/// frame or forges a control frame, within the duty cycle. It publishes nothing, relays
/// nothing, and delivery leaves it out.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attacker {
    pub node: usize,
    #[serde(default = "attack_interval")]
    pub interval: Dur,
}

fn attack_interval() -> Dur {
    Dur(Duration::from_secs(10))
}

impl Scenario {
    /// Whether node `i` is honest (not the attacker).
    pub fn honest(&self, i: usize) -> bool {
        self.attacker.as_ref().is_none_or(|a| a.node != i)
    }
}

fn default_seed() -> u64 {
    1
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Radio {
    pub region: String,
    pub frequency_hz: u32,
    pub spreading_factor: u8,
    pub bandwidth_hz: u32,
    pub coding_rate: u8,
    pub preamble_symbols: u16,
    pub tx_power_dbm: i8,
    /// Antenna gains of sender plus receiver, dBi.
    pub antenna_gain_db: f64,
    /// Largest frame: 255 for LoRa modules.
    pub mtu: usize,
    /// Probability that a reception that survived physics is lost anyway (interference the
    /// model does not see, CRC errors).
    pub extra_loss: f64,
    /// A frame survives an overlapping one only if it is this much stronger (and locked first).
    pub capture_db: f64,
    /// Receiver noise figure, for SNR.
    pub noise_figure_db: f64,
    /// Listen before talk for every protocol: a node that is receiving a frame defers its own.
    pub carrier_sense: bool,
}

impl Default for Radio {
    fn default() -> Self {
        let m = Modulation::eu868_default();
        Self {
            region: "EU868".into(),
            frequency_hz: m.frequency_hz,
            spreading_factor: m.spreading_factor,
            bandwidth_hz: m.bandwidth_hz,
            coding_rate: m.coding_rate,
            preamble_symbols: m.preamble_symbols,
            tx_power_dbm: m.tx_power_dbm,
            antenna_gain_db: 0.0,
            mtu: 255,
            extra_loss: 0.0,
            capture_db: 6.0,
            noise_figure_db: 6.0,
            carrier_sense: true,
        }
    }
}

impl Radio {
    pub fn modulation(&self) -> Modulation {
        Modulation {
            frequency_hz: self.frequency_hz,
            spreading_factor: self.spreading_factor,
            bandwidth_hz: self.bandwidth_hz,
            coding_rate: self.coding_rate,
            preamble_symbols: self.preamble_symbols,
            tx_power_dbm: self.tx_power_dbm,
            sync_word: 0x12,
        }
    }
}

/// Log-distance path loss with log-normal shadowing; defaults are LoRaSim's urban fit (Bor 2016).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PathLoss {
    pub d0_m: f64,
    pub pl_d0_db: f64,
    pub exponent: f64,
    pub sigma_db: f64,
}

impl Default for PathLoss {
    fn default() -> Self {
        Self {
            d0_m: 40.0,
            pl_d0_db: 127.41,
            exponent: 2.08,
            sigma_db: 3.57,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
pub enum Topology {
    /// `n` nodes on a line, `spacing_m` apart.
    Line { n: usize, spacing_m: f64 },
    /// `rows × cols` nodes on a square grid.
    Grid {
        rows: usize,
        cols: usize,
        spacing_m: f64,
    },
    /// `n` nodes placed uniformly at random (from the seed) in a rectangle.
    Random {
        n: usize,
        width_m: f64,
        height_m: f64,
    },
    /// Explicit positions in metres.
    Positions { nodes: Vec<[f64; 2]> },
    /// No geometry: only the `[[links]]` table says who hears whom.
    Table { n: usize },
}

/// A link's path loss (or RSSI) set by hand, overriding the model for both directions.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkOverride {
    pub a: usize,
    pub b: usize,
    pub loss_db: Option<f64>,
    pub rssi_dbm: Option<f64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Traffic {
    /// Chat-like payload bytes per operation (LoRes: 40).
    pub payload_bytes: Option<usize>,
    /// Operations every node already holds at time zero (a converged history), per node as
    /// author: measures that idle cost does not grow with what is stored.
    pub preload_ops_per_node: usize,
    pub publish: Vec<Publish>,
    pub rate: Vec<Rate>,
}

/// `count` operations at `node`, the first at `at`, then every `interval`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publish {
    pub node: usize,
    pub at: Dur,
    #[serde(default = "one")]
    pub count: usize,
    #[serde(default)]
    pub interval: Dur,
}

fn one() -> usize {
    1
}

/// Poisson arrivals at `per_hour` per node at each listed node (all if absent) in `[from, until)`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    #[serde(default)]
    pub nodes: Option<Vec<usize>>,
    pub per_hour: f64,
    #[serde(default)]
    pub from: Dur,
    pub until: Dur,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    pub partition: Vec<Partition>,
    pub crash: Vec<Crash>,
    pub loss_burst: Vec<LossBurst>,
}

/// Between `from` and `until`, nodes in different `groups` do not hear each other (nodes in no
/// group keep hearing everyone), and the listed `links` are cut.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    pub from: Dur,
    pub until: Dur,
    #[serde(default)]
    pub groups: Vec<Vec<usize>>,
    #[serde(default)]
    pub links: Vec<[usize; 2]>,
}

/// `node` loses power at `at` and comes back at `restart` (never, if absent), with its store
/// kept (a reboot) or lost (a new SD card).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crash {
    pub node: usize,
    pub at: Dur,
    pub restart: Option<Dur>,
    #[serde(default = "yes")]
    pub keep_state: bool,
}

fn yes() -> bool {
    true
}

/// Whether `link` joins `a` and `b`, either way round.
fn joins(link: &[usize; 2], a: usize, b: usize) -> bool {
    (link[0] == a && link[1] == b) || (link[0] == b && link[1] == a)
}

impl Partition {
    /// Whether the partition keeps `a` and `b` from hearing each other at `now`.
    pub fn separates(&self, now: Duration, a: usize, b: usize) -> bool {
        if now < self.from.0 || now >= self.until.0 {
            return false;
        }
        let group = |x: usize| self.groups.iter().position(|g| g.contains(&x));
        let split = matches!((group(a), group(b)), (Some(x), Some(y)) if x != y);
        split || self.links.iter().any(|l| joins(l, a, b))
    }
}

impl Crash {
    /// Whether this crash keeps its node down at `now`.
    pub fn holds_down(&self, now: Duration) -> bool {
        now >= self.at.0 && self.restart.is_none_or(|r| now < r.0)
    }
}

impl LossBurst {
    /// Whether the burst is in force at `now` on the link between `a` and `b`.
    pub fn applies(&self, now: Duration, a: usize, b: usize) -> bool {
        now >= self.from.0
            && now < self.until.0
            && self
                .links
                .as_ref()
                .is_none_or(|links| links.iter().any(|l| joins(l, a, b)))
    }
}

/// Between `from` and `until`, receptions on the listed links (all if absent) are lost with
/// probability `loss`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossBurst {
    pub from: Dur,
    pub until: Dur,
    #[serde(default)]
    pub links: Option<Vec<[usize; 2]>>,
    #[serde(default = "full_loss")]
    pub loss: f64,
}

fn full_loss() -> f64 {
    1.0
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Protocols {
    /// Which protocols run, in report order.
    pub run: Vec<String>,
    pub managed_flood: FloodConfig,
    pub announce_repeat: AnnounceConfig,
}

impl Default for Protocols {
    fn default() -> Self {
        Self {
            run: PROTOCOLS.iter().map(|p| p.to_string()).collect(),
            managed_flood: FloodConfig::default(),
            announce_repeat: AnnounceConfig::default(),
        }
    }
}

/// The protocols the simulator knows.
pub const PROTOCOLS: [&str; 3] = ["lorabridge", "managed-flood", "announce-repeat"];

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FloodConfig {
    pub hop_limit: u8,
    /// Retransmissions by the originator when no relay is overheard (implicit ACK).
    pub retries: u8,
}

impl Default for FloodConfig {
    fn default() -> Self {
        Self {
            hop_limit: 3,
            retries: 3,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnnounceConfig {
    pub interval: Dur,
    /// Operations sent in answer to one announcement that shows a neighbour lacking them.
    pub max_ops_per_answer: usize,
}

impl Default for AnnounceConfig {
    fn default() -> Self {
        Self {
            interval: Dur(Duration::from_secs(300)),
            max_ops_per_answer: 8,
        }
    }
}

impl Scenario {
    pub fn load(path: &str) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|error| ScenarioError::Read {
            path: path.to_string(),
            error,
        })?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, ScenarioError> {
        let scenario: Scenario = toml::from_str(text)?;
        scenario.validate()?;
        Ok(scenario)
    }

    pub fn node_count(&self) -> usize {
        match &self.topology {
            Topology::Line { n, .. } | Topology::Random { n, .. } | Topology::Table { n } => *n,
            Topology::Grid { rows, cols, .. } => rows * cols,
            Topology::Positions { nodes } => nodes.len(),
        }
    }

    pub fn plan(&self) -> RegionPlan {
        RegionPlan::builtin(&self.radio.region).expect("validated")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }
}
