//! `[iroh]`: the internet and local-network transport of the p2panda node: mDNS, the relay and
//! the bootstrap nodes, each doing what the example file says.

use std::net::SocketAddr;

use p2panda::{NodeId, RelayUrl};

use super::error::{ConfigError, Result};
use super::network::check_http_url;
use super::reader::{Section, hex32_text};
use crate::lores::DEFAULT_RELAY_URL;

/// The iroh transport (table `[iroh]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IrohConfig {
    /// Whether to use iroh at all (default true); a radio-only bridge switches it off, and then
    /// mDNS, the relay and the bootstrap nodes are not used either.
    pub enabled: bool,
    /// Find peers on the local network by mDNS (default true).
    pub mdns: bool,
    /// Fixed UDP port (for port forwarding); `None` = any free port.
    pub bind_port: Option<u16>,
    /// The relay that lets peers behind firewalls reach the node, and through which bootstrap
    /// ids are reached: [`DEFAULT_RELAY_URL`], the one LoRes nodes use, unless `relay_url`
    /// names another; `None` (`relay_url = ""`) = no relay.
    pub relay_url: Option<RelayUrl>,
    /// Nodes to connect to at start (`bootstrap`).
    pub bootstrap: Vec<BootstrapPeer>,
}

/// One `bootstrap` entry: `"<node id>"` or `"<node id>@<ip>:<port>"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootstrapPeer {
    /// The node's id (its public key).
    pub id: NodeId,
    /// Where it listens, when given: reached directly, with or without a relay. Without an
    /// address the node is reached through the relay, or, without a relay, once mDNS or
    /// another peer tells where it is.
    pub addr: Option<SocketAddr>,
}

impl Default for IrohConfig {
    /// What a file without `[iroh]` gets.
    fn default() -> Self {
        IrohConfig {
            enabled: true,
            mdns: true,
            bind_port: None,
            relay_url: Some(default_relay()),
            bootstrap: Vec::new(),
        }
    }
}

impl IrohConfig {
    /// One line for `check-config`: what the node will do to find peers.
    pub fn summary(&self) -> String {
        if !self.enabled {
            return "off (enabled = false)".into();
        }
        let relay = match &self.relay_url {
            Some(url) => format!("relay {url}"),
            None => "no relay".into(),
        };
        let mdns = if self.mdns { "mDNS on" } else { "mDNS off" };
        let direct = self.bootstrap.iter().filter(|p| p.addr.is_some()).count();
        let by_id = self.bootstrap.len() - direct;
        let by_id = match (by_id, &self.relay_url) {
            (0, _) => String::new(),
            (n, Some(_)) => format!(", {n} bootstrap id(s) through the relay"),
            (n, None) => format!(
                ", {n} bootstrap id(s) without an address, reached once mDNS or a peer tells \
                 where they are"
            ),
        };
        let direct = match direct {
            0 => String::new(),
            n => format!(", {n} bootstrap node(s) at a direct address"),
        };
        format!("{relay}, {mdns}{by_id}{direct}")
    }
}

/// The keys `[iroh]` may hold.
pub(super) const KEYS: &[&str] = &["enabled", "mdns", "bind_port", "relay_url", "bootstrap"];

fn default_relay() -> RelayUrl {
    DEFAULT_RELAY_URL
        .parse()
        .expect("the default relay URL is valid")
}

pub(super) fn parse(s: &Section<'_>) -> Result<IrohConfig> {
    let enabled = s.bool("enabled")?.unwrap_or(true);
    let mdns = s.bool("mdns")?.unwrap_or(true);
    let bind_port = s.int("bind_port", 0..=i64::from(u16::MAX))?;
    let relay_url = match s.string("relay_url")? {
        None => Some(default_relay()),
        Some("") => None,
        Some(url) => {
            let invalid = |reason| ConfigError::invalid(s.key("relay_url"), reason);
            check_http_url(url).map_err(invalid)?;
            Some(
                url.parse()
                    .map_err(|e| invalid(format!("{url:?} is not a relay URL: {e}")))?,
            )
        }
    };
    let mut bootstrap: Vec<BootstrapPeer> = Vec::new();
    for (key, text) in s.strings("bootstrap", "a string of 64 hex characters")? {
        let peer = parse_bootstrap(&key, text)?;
        if bootstrap.iter().any(|p| p.id == peer.id) {
            return Err(ConfigError::invalid(key, "this node id is listed twice"));
        }
        bootstrap.push(peer);
    }
    Ok(IrohConfig {
        enabled,
        mdns,
        bind_port,
        relay_url,
        bootstrap,
    })
}

/// `"<64-hex node id>"` or `"<64-hex node id>@<ip>:<port>"`.
fn parse_bootstrap(key: &str, text: &str) -> Result<BootstrapPeer> {
    let (id, addr) = match text.split_once('@') {
        Some((id, addr)) => (id, Some(addr)),
        None => (text, None),
    };
    let bytes = hex32_text(key, id)?;
    let id = NodeId::from_bytes(&bytes).map_err(|_| {
        ConfigError::invalid(
            key,
            format!("{id} is not a node id: it is not an Ed25519 public key"),
        )
    })?;
    let addr = match addr {
        None => None,
        Some(addr) => match addr.parse::<SocketAddr>() {
            Ok(parsed) if parsed.port() != 0 => Some(parsed),
            _ => {
                return Err(ConfigError::invalid(
                    key,
                    format!(
                        "{addr:?} after the @ is not an IP address and port such as \
                         \"192.0.2.7:41641\" or \"[2001:db8::7]:41641\" (host names are not \
                         looked up)"
                    ),
                ));
            }
        },
    };
    Ok(BootstrapPeer { id, addr })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    /// Node ids that are Ed25519 public keys.
    fn node_id(seed: u8) -> NodeId {
        p2panda::SigningKey::from_bytes(&[seed; 32]).verifying_key()
    }

    fn iroh(table: &str) -> IrohConfig {
        ok(&file("", &format!("[iroh]\n{table}"))).iroh
    }

    #[test]
    fn the_default_relay_is_the_one_lores_nodes_use() {
        assert_eq!(
            ok(&file("", "")).iroh.relay_url.map(|u| u.to_string()),
            Some("https://euc1-1.relay.n0.iroh-canary.iroh.link/".into())
        );
        assert_eq!(iroh("mdns = true").relay_url, Some(default_relay()));
        assert_eq!(iroh("relay_url = \"\"").relay_url, None);
        assert_eq!(
            iroh("relay_url = \"https://relay.example.org\"").relay_url,
            Some("https://relay.example.org".parse().unwrap())
        );
    }

    #[test]
    fn bootstrap_takes_ids_and_direct_addresses() {
        let (a, b, c) = (node_id(1), node_id(2), node_id(3));
        let config = iroh(&format!(
            "bootstrap = [\"{a}\", \"{}@192.0.2.7:41641\", \"{c}@[2001:db8::7]:1\"]",
            b.to_hex()
        ));
        assert_eq!(
            config.bootstrap,
            vec![
                BootstrapPeer { id: a, addr: None },
                BootstrapPeer {
                    id: b,
                    addr: Some("192.0.2.7:41641".parse().unwrap())
                },
                BootstrapPeer {
                    id: c,
                    addr: Some("[2001:db8::7]:1".parse().unwrap())
                },
            ]
        );
    }

    #[test]
    fn the_summary_says_how_peers_are_found() {
        let id = node_id(1);
        assert_eq!(
            iroh(&format!(
                "bootstrap = [\"{id}\", \"{}@10.0.0.2:4000\"]",
                node_id(2)
            ))
            .summary(),
            "relay https://euc1-1.relay.n0.iroh-canary.iroh.link/, mDNS on, 1 bootstrap id(s) \
             through the relay, 1 bootstrap node(s) at a direct address"
        );
        let alone = iroh(&format!(
            "relay_url = \"\"\nmdns = false\nbootstrap = [\"{id}\"]"
        ));
        assert!(
            alone
                .summary()
                .starts_with("no relay, mDNS off, 1 bootstrap id(s) without an address"),
            "{}",
            alone.summary()
        );
        assert_eq!(iroh("enabled = false").summary(), "off (enabled = false)");
    }

    #[test]
    fn bad_values_name_their_key() {
        assert_refused(vec![
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
        ]);
    }

    #[test]
    fn bad_bootstrap_entries_name_their_key() {
        let id = node_id(1);
        let entry = |text: &str| file("", &format!("[iroh]\nbootstrap = [\"{text}\"]"));
        assert_refused(vec![
            (
                entry(&format!("{id}@relay.example.org:4000")),
                "iroh.bootstrap[0]",
                "host names are not looked up",
            ),
            (
                entry(&format!("{id}@10.0.0.2")),
                "iroh.bootstrap[0]",
                "\"10.0.0.2\" after the @ is not an IP address and port",
            ),
            (
                entry(&format!("{id}@10.0.0.2:0")),
                "iroh.bootstrap[0]",
                "not an IP address and port",
            ),
            (
                entry(&format!("{id}@::1:4000")),
                "iroh.bootstrap[0]",
                "[2001:db8::7]:41641",
            ),
            (entry("@10.0.0.2:4000"), "iroh.bootstrap[0]", "got 0"),
            // 64 hex characters, but not a point on the curve.
            (
                entry("9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d"),
                "iroh.bootstrap[0]",
                "is not a node id: it is not an Ed25519 public key",
            ),
            (
                file("", "[iroh]\nbootstrap = [7]"),
                "iroh.bootstrap[0]",
                "expected a string of 64 hex characters, got the integer 7",
            ),
            // The same node with and without an address is still one node listed twice.
            (
                file(
                    "",
                    &format!("[iroh]\nbootstrap = [\"{id}\", \"{id}@10.0.0.2:4000\"]"),
                ),
                "iroh.bootstrap[1]",
                "twice",
            ),
        ]);
    }
}
