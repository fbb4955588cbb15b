//! `[reticulum]`: the rnsd instances to talk to, the identity file and the announce pace.

use std::path::Path;
use std::time::Duration;

use super::error::{ConfigError, Result};
use super::network::check_host_port;
use super::reader::{Section, range_i64};
use crate::reticulum::{ANNOUNCE_INTERVAL_SECS, ReticulumConfig};

/// Default file of the Reticulum identity.
pub const DEFAULT_RETICULUM_IDENTITY: &str = "reticulum.identity";
/// Default Reticulum announce interval in seconds (10 minutes).
pub const DEFAULT_ANNOUNCE_INTERVAL_SECS: u32 = 600;

/// The keys `[reticulum]` may hold.
pub(super) const KEYS: &[&str] = &["rnsd", "identity", "announce_interval_secs"];

pub(super) fn parse(s: &Section<'_>, base_dir: &Path) -> Result<ReticulumConfig> {
    let mut rnsd = Vec::new();
    for (key, addr) in s.strings("rnsd", "a \"host:port\" string")? {
        check_host_port(addr).map_err(|reason| ConfigError::invalid(&key, reason))?;
        rnsd.push(addr.to_owned());
    }
    if rnsd.is_empty() {
        return Err(s.missing(
            "rnsd",
            "list at least one rnsd TCPServerInterface address, e.g. rnsd = [\"127.0.0.1:4242\"]",
        ));
    }
    let identity_path = s.path("identity", DEFAULT_RETICULUM_IDENTITY, base_dir)?;
    let secs = s
        .int::<u32>("announce_interval_secs", range_i64(&ANNOUNCE_INTERVAL_SECS))?
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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn bad_values_name_their_key() {
        assert_refused(vec![
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
        ]);
    }
}
