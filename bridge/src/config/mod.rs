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
//!
//! The parts: this module holds the whole [`Config`] and the top-level keys; `reader.rs` walks
//! the TOML; `regions.rs`, `iroh.rs`, `radio.rs` and `reticulum.rs` read their tables;
//! `network.rs` checks addresses written as text; `error.rs` holds [`ConfigError`].

mod error;
mod iroh;
mod network;
mod radio;
mod reader;
mod regions;
mod reticulum;
#[cfg(test)]
mod test_support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use lorabridge_proto::message::MAX_SUMMARY_TOPICS;

pub use self::error::ConfigError;
pub use self::iroh::{BootstrapPeer, IrohConfig};
pub use self::radio::{
    DEFAULT_RADIO_REGION, E22_HEARS_ONLY_E22, E22Wiring, RadioConfig, Sx126xWiring, Wiring,
};
pub use self::regions::RegionConfig;
pub use self::reticulum::{DEFAULT_ANNOUNCE_INTERVAL_SECS, DEFAULT_RETICULUM_IDENTITY};
/// Topic derivation is a LoRes fact and lives in [`crate::lores`]; re-exported for the callers
/// that still name it here.
pub use crate::lores::app_topic;
use crate::lores::{AppBindings, Carried};
use crate::reticulum::ReticulumConfig;
use error::Result;
pub(crate) use network::check_host_port;
use reader::{Section, check_exact_text};

/// Default file of the node's signing key (created by the daemon on first run).
pub const DEFAULT_NODE_KEY: &str = "lorabridge.key";
/// Default SQLite database of the p2panda node.
pub const DEFAULT_DATABASE: &str = "lorabridge.sqlite";
/// LoRes apps expect the node's gRPC API here (`PANDA_GRPC_ADDR=http://127.0.0.1:50051`).
pub const DEFAULT_GRPC_LISTEN: &str = "127.0.0.1:50051";
/// The status service sits next to the gRPC API, on loopback only by default.
pub const DEFAULT_STATUS_LISTEN: &str = "127.0.0.1:50052";

/// The whole, validated configuration of one bridge.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Where the node's signing key lives (key `node_key`); the daemon creates it on first run
    /// and keeps it, because the node id is the bridge's identity on the network.
    pub node_key_path: PathBuf,
    /// The p2panda SQLite database (key `database`).
    pub database_path: PathBuf,
    /// The p2panda network id (key `network_id`, or derived from the LoRes network name in
    /// key `network`); must equal the LoRes nodes' one, or the bridge will never meet them.
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
    /// Which region each app instance uses, from the regions' `apps` and `instances`.
    bindings: AppBindings,
}

impl Config {
    /// Parses and validates; relative paths are resolved against `base_dir` (the config file's
    /// folder), so the daemon finds its files whatever directory it was started from.
    pub fn from_toml_str(text: &str, base_dir: &Path) -> Result<Config> {
        let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::syntax(text, &e))?;
        parse_config(&table, base_dir)
    }

    /// Reads and validates the file at `path`; a missing file is an error naming the path.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::read(format!("cannot read config file {}: {e}", path.display()))
        })?;
        // Absolute (from the current directory, without touching the disk), so the resolved
        // paths stay right even if the daemon later changes directory.
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let base_dir = path.parent().unwrap_or(Path::new("/"));
        Self::from_toml_str(&text, base_dir)
    }

    /// Which app topic each (app_id, instance_id) of a gRPC request publishes to and
    /// subscribes from; every topic it resolves to is one of [`Config::topics`].
    pub fn bindings(&self) -> &AppBindings {
        &self.bindings
    }

    /// Every topic the bridge carries, in config order, without duplicates: per region its
    /// admin topic (if `admin_topic`) and one topic per app in its `apps` or `instances`.
    pub fn topics(&self) -> Vec<Carried> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for region in &self.regions {
            let lora = region.lora && self.radio.is_some();
            let reticulum = region.reticulum && self.reticulum.is_some();
            let admin = region.admin_topic.then_some((region.id, None));
            let apps = region
                .apps
                .iter()
                .chain(region.instances.iter().map(|i| &i.app_id))
                .map(|app| (app_topic(&region.id, app), Some(app.clone())));
            for (topic, app_id) in admin.into_iter().chain(apps) {
                if seen.insert(topic) {
                    out.push(Carried {
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

/// The keys the top level may hold; anything else is a typo and refused.
const TOP_KEYS: &[&str] = &[
    "node_key",
    "database",
    "network",
    "network_id",
    "grpc_listen",
    "status_listen",
    "region_key",
    "iroh",
    "regions",
    "radio",
    "reticulum",
];

/// The network id: given in hex (`network_id`), or derived from the LoRes network name
/// (`network`) as LoRes nodes derive it. Exactly one of the two.
fn parse_network(top: &Section<'_>) -> Result<[u8; 32]> {
    match (top.string("network")?, top.hex32("network_id")?) {
        (Some(_), Some(_)) => Err(ConfigError::invalid(
            "network",
            "give either `network` (the LoRes network name) or `network_id` (its 64-hex id), \
             not both",
        )),
        (Some(name), None) => {
            check_exact_text(
                "network name",
                name,
                "which would make a different network id",
            )
            .map_err(|reason| ConfigError::invalid("network", reason))?;
            Ok(crate::lores::network_id(name))
        }
        (None, Some(id)) => Ok(id),
        (None, None) => Err(top.missing(
            "network_id",
            "the 64-hex network id the LoRes nodes use, or their network name as \
             network = \"name\"",
        )),
    }
}

fn parse_config(table: &toml::Table, base_dir: &Path) -> Result<Config> {
    let top = Section::new("", table, TOP_KEYS)?;
    let network_id = parse_network(&top)?;
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
    let iroh = match top.table("iroh", iroh::KEYS)? {
        Some(section) => iroh::parse(&section)?,
        None => IrohConfig::default(),
    };
    let (regions, bindings) = regions::parse(&top)?;
    let radio = top
        .table("radio", radio::KEYS)?
        .map(|s| radio::parse(&s))
        .transpose()?;
    let reticulum = top
        .table("reticulum", reticulum::KEYS)?
        .map(|s| reticulum::parse(&s, base_dir))
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
        bindings,
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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use lorabridge_hardware::Modulation;
    use lorabridge_radio::ModuleKind;

    use super::test_support::*;
    use super::*;

    #[test]
    fn example_file_parses() {
        let text = include_str!("../../bridge.example.toml");
        let config = Config::from_toml_str(text, Path::new("/etc/lorabridge")).expect("example");
        assert_eq!(config.network_id, crate::lores::network_id("lores"));
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

    /// The example's commented-out alternatives are valid once uncommented, and do what the
    /// comments next to them say.
    #[test]
    fn example_alternatives_hold() {
        let text = include_str!("../../bridge.example.toml");
        let with = |from: &str, to: &str| {
            assert!(text.contains(from), "the example lost {from:?}");
            let text = text.replace(from, to);
            Config::from_toml_str(&text, Path::new("/etc/lorabridge"))
                .unwrap_or_else(|e| panic!("{e} after replacing {from:?}"))
        };
        let example = with("", "");
        // The relay written out is the default one.
        let relay = with("# relay_url = ", "relay_url = ");
        assert_eq!(relay.iroh, example.iroh);
        let no_relay = with(
            "# relay_url = \"https://euc1-1.relay.n0.iroh-canary.iroh.link\"",
            "relay_url = \"\"",
        );
        assert_eq!(no_relay.iroh.relay_url, None);
        let bootstrap = with("    # \"", "    \"");
        assert_eq!(bootstrap.iroh.bootstrap.len(), 2);
        assert_eq!(bootstrap.iroh.bootstrap[0].addr, None);
        assert_eq!(
            bootstrap.iroh.bootstrap[1].addr,
            Some("192.168.1.20:41641".parse().unwrap())
        );
        // A network id in hex instead of the name.
        let by_id = with("network = \"lores\"\n# network_id = ", "network_id = ");
        assert_ne!(by_id.network_id, example.network_id);
        // The radio settings written out are the defaults.
        let mut settings = text.to_owned();
        for key in [
            "frequency_hz",
            "spreading_factor",
            "bandwidth_hz",
            "coding_rate",
            "preamble_symbols",
            "tx_power_dbm",
            "sync_word",
        ] {
            let commented = format!("\n# {key} = ");
            assert!(settings.contains(&commented), "the example lost {key}");
            settings = settings.replace(&commented, &format!("\n{key} = "));
        }
        let settings = Config::from_toml_str(&settings, Path::new("/etc/lorabridge"))
            .expect("with the radio settings");
        assert_eq!(settings.radio, example.radio);
        // The E22 HAT takes the example as it is, with its own defaults.
        let e22 = with(
            "board = \"rak3172-usb\"",
            "board = \"waveshare-sx1262-hat\"",
        );
        let radio = e22.radio.expect("radio");
        assert_eq!(radio.driver, ModuleKind::E22);
        assert_eq!(radio.modulation.frequency_hz, 868_125_000);
        let instances = with("# instances = ", "instances = ");
        let region = example.regions[0].id;
        assert_eq!(
            instances.bindings().resolve("chat", "north-street"),
            Some(app_topic(&region, "chat"))
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
                relay_url: Some(crate::lores::DEFAULT_RELAY_URL.parse().unwrap()),
                bootstrap: vec![],
            }
        );
        assert_eq!(
            c.regions,
            vec![RegionConfig {
                id: bytes(R1),
                apps: vec!["chat".into()],
                instances: vec![],
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
                relay_url: Some("https://relay.example.org:8443/".parse().unwrap()),
                bootstrap: [R1, R2]
                    .map(|id| BootstrapPeer {
                        id: p2panda::NodeId::from_bytes(&bytes(id)).unwrap(),
                        addr: None,
                    })
                    .to_vec(),
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

    #[test]
    fn network_by_name_derives_the_id_as_lores_does() {
        let by_name =
            file("", "").replace(&format!("network_id = \"{NET}\""), "network = \"lores\"");
        assert_eq!(ok(&by_name).network_id, crate::lores::network_id("lores"));
        assert_ne!(ok(&by_name).network_id, bytes(NET));
        let without = file("", "").replace(&format!("network_id = \"{NET}\"\n"), "");
        assert_refused(vec![
            (
                file("network = \"lores\"", ""),
                "network",
                "either `network` (the LoRes network name) or `network_id`",
            ),
            (
                without.clone(),
                "network_id",
                "or their network name as network = \"name\"",
            ),
            (
                format!("network = \"\"\n{without}"),
                "network",
                "network name is empty",
            ),
            (
                format!("network = \"lores \"\n{without}"),
                "network",
                "starts or ends with white space, which would make a different network id",
            ),
            (
                format!("network = 7\n{without}"),
                "network",
                "expected a string",
            ),
        ]);
    }

    /// Each bad value is refused with its key named; `reason` is a fragment of the message.
    #[test]
    fn bad_values_name_their_key() {
        assert_refused(vec![
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
        ]);
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
                Carried {
                    topic: bytes(R1),
                    region: bytes(R1),
                    app_id: None,
                    lora: true,
                    reticulum: false,
                },
                Carried {
                    topic: expected(R1, "chat"),
                    region: bytes(R1),
                    app_id: Some("chat".into()),
                    lora: true,
                    reticulum: false,
                },
                Carried {
                    topic: expected(R2, "chat"),
                    region: bytes(R2),
                    app_id: Some("chat".into()),
                    lora: false,
                    reticulum: false,
                },
                Carried {
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
