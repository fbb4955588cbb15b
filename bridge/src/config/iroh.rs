//! `[iroh]`: the internet and local-network transport of the p2panda node.

use super::error::{ConfigError, Result};
use super::network::check_http_url;
use super::reader::{Section, hex32};

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

impl Default for IrohConfig {
    /// What a file without `[iroh]` gets.
    fn default() -> Self {
        IrohConfig {
            enabled: true,
            mdns: true,
            bind_port: None,
            relay_url: None,
            bootstrap: Vec::new(),
        }
    }
}

/// The keys `[iroh]` may hold.
pub(super) const KEYS: &[&str] = &["enabled", "mdns", "bind_port", "relay_url", "bootstrap"];

pub(super) fn parse(s: &Section<'_>) -> Result<IrohConfig> {
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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

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
}
