//! `[[regions]]`: the regions whose topics the bridge carries, and over which transports.

use toml::Value;

use super::error::{ConfigError, Result};
use super::reader::{Section, describe};

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

/// The keys a `[[regions]]` table may hold.
const KEYS: &[&str] = &["id", "apps", "admin_topic", "lora", "reticulum"];

pub(super) fn parse(top: &Section<'_>) -> Result<Vec<RegionConfig>> {
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
        let s = Section::new(&path, table, KEYS)?;
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
        for (key, app) in s.strings("apps", "an app id string")? {
            check_app_id(app).map_err(|reason| ConfigError::invalid(&key, reason))?;
            if apps.iter().any(|a| a == app) {
                return Err(ConfigError::invalid(
                    key,
                    format!("app {app:?} is listed twice"),
                ));
            }
            apps.push(app.to_owned());
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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn bad_values_name_their_key() {
        assert_refused(vec![
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
        ]);
    }
}
