//! `[[regions]]`: the regions whose topics the bridge carries, over which transports, and
//! which app instances publish to each.

use toml::Value;

use super::error::{ConfigError, Result};
use super::reader::{Section, check_exact_text, describe};
use crate::lores::{AppBindings, AppInstance};

/// One region (`[[regions]]` entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionConfig {
    /// The region's 32-byte id.
    pub id: [u8; 32],
    /// LoRes app ids whose topics in this region the bridge carries; every instance of such an
    /// app not bound in `instances` (of any region) publishes here, if this is the first
    /// region listing the app.
    pub apps: Vec<String>,
    /// App instances bound to this region (`instances = ["chat:north"]`); the bridge carries
    /// their apps' topics here too.
    pub instances: Vec<AppInstance>,
    /// Whether to carry the region admin topic (default true).
    pub admin_topic: bool,
    /// Whether this region's topics go over LoRa when a radio is configured (default true).
    pub lora: bool,
    /// Whether this region's topics go over Reticulum when it is configured (default true).
    pub reticulum: bool,
}

/// The keys a `[[regions]]` table may hold.
const KEYS: &[&str] = &[
    "id",
    "apps",
    "instances",
    "admin_topic",
    "lora",
    "reticulum",
];

/// The regions, and the app bindings they make.
pub(super) fn parse(top: &Section<'_>) -> Result<(Vec<RegionConfig>, AppBindings)> {
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
    let mut bindings = AppBindings::default();
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
            bindings.bind_app(app, id);
            apps.push(app.to_owned());
        }
        let mut instances: Vec<AppInstance> = Vec::new();
        for (key, text) in s.strings("instances", "an \"app:instance\" string")? {
            let instance =
                parse_instance(text).map_err(|reason| ConfigError::invalid(&key, reason))?;
            if let Err(first) = bindings.bind_instance(&instance, id) {
                return Err(ConfigError::invalid(
                    key,
                    format!(
                        "instance {:?} of app {:?} is already bound to region {}…; bind each \
                         instance to one region",
                        instance.instance_id,
                        instance.app_id,
                        &hex::encode(first.region)[..8]
                    ),
                ));
            }
            instances.push(instance);
        }
        let admin_topic = s.bool("admin_topic")?.unwrap_or(true);
        if apps.is_empty() && instances.is_empty() && !admin_topic {
            return Err(ConfigError::invalid(
                s.key("apps"),
                "the region carries no topic: list its apps or instances, or set admin_topic = true",
            ));
        }
        regions.push(RegionConfig {
            id,
            apps,
            instances,
            admin_topic,
            lora: s.bool("lora")?.unwrap_or(true),
            reticulum: s.bool("reticulum")?.unwrap_or(true),
        });
    }
    Ok((regions, bindings))
}

/// App ids end up hashed into topic ids, so a stray space silently makes a different topic that
/// no LoRes node uses; such ids are refused rather than carried.
fn check_app_id(app: &str) -> Result<(), String> {
    check_exact_text("app id", app, "which would make a different topic")
}

/// `app:instance`, split at the first colon: an app id with a colon cannot be bound by
/// instance, an instance id with one can.
fn parse_instance(text: &str) -> Result<AppInstance, String> {
    let Some((app_id, instance_id)) = text.split_once(':') else {
        return Err(format!(
            "{text:?} is not \"app:instance\", e.g. \"chat:north\"; to bind every instance \
             of an app, list the app in `apps`"
        ));
    };
    check_app_id(app_id)?;
    // Matched byte for byte against what apps send.
    check_exact_text("instance id", instance_id, "which no app would send")?;
    Ok(AppInstance {
        app_id: app_id.to_owned(),
        instance_id: instance_id.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::lores::{AppInstance, app_topic};

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

    /// Two regions, as a steward would bind a chat's instances: `chat` everywhere defaults to
    /// R1, its instance "south" sits in R2, and `market` is bound by one instance only.
    fn two_regions(extra: &str) -> String {
        format!(
            "network_id = \"{NET}\"\n\
             [[regions]]\nid = \"{R1}\"\napps = [\"chat\"]\ninstances = [\"market:north\"]\n\
             [[regions]]\nid = \"{R2}\"\napps = [\"chat\"]\ninstances = [\"chat:south\"]\n{extra}\n"
        )
    }

    #[test]
    fn instances_bind_one_instance_of_an_app() {
        let c = ok(&two_regions(""));
        assert_eq!(
            c.regions[1].instances,
            vec![AppInstance {
                app_id: "chat".into(),
                instance_id: "south".into()
            }]
        );
        let b = c.bindings();
        // Bound explicitly.
        assert_eq!(
            b.resolve("chat", "south"),
            Some(app_topic(&bytes(R2), "chat"))
        );
        // Unbound instances of an app in `apps`: the first region listing it.
        assert_eq!(
            b.resolve("chat", "north"),
            Some(app_topic(&bytes(R1), "chat"))
        );
        assert_eq!(
            b.resolve("chat", "other"),
            Some(app_topic(&bytes(R1), "chat"))
        );
        // An app bound by instance only has no default; unknown apps have no binding.
        assert_eq!(
            b.resolve("market", "north"),
            Some(app_topic(&bytes(R1), "market"))
        );
        assert_eq!(b.resolve("market", "south"), None);
        assert_eq!(b.resolve("forum", "north"), None);
        // The topics carried: admin topics and one per (region, app) in apps or instances.
        let topics = c.topics();
        let carried: Vec<([u8; 32], Option<&str>)> = topics
            .iter()
            .map(|t| (t.topic, t.app_id.as_deref()))
            .collect();
        assert_eq!(
            carried,
            vec![
                (bytes(R1), None),
                (app_topic(&bytes(R1), "chat"), Some("chat")),
                (app_topic(&bytes(R1), "market"), Some("market")),
                (bytes(R2), None),
                (app_topic(&bytes(R2), "chat"), Some("chat")),
            ]
        );
        // Every binding resolves to a carried topic.
        for (app, instance) in [("chat", "south"), ("chat", "x"), ("market", "north")] {
            let topic = b.resolve(app, instance).expect("bound");
            assert!(carried.iter().any(|(t, _)| *t == topic), "{app}:{instance}");
        }
    }

    #[test]
    fn a_region_with_only_instances_carries_their_apps() {
        let text = file(
            "",
            &format!(
                "[[regions]]\nid = \"{R2}\"\nadmin_topic = false\ninstances = [\"forum:a:b\"]"
            ),
        );
        let c = ok(&text);
        // Split at the first colon: the instance id keeps the rest.
        assert_eq!(
            c.bindings().resolve("forum", "a:b"),
            Some(app_topic(&bytes(R2), "forum"))
        );
        assert_eq!(c.bindings().resolve("forum", "a"), None);
        assert_eq!(c.topics().last().map(|t| t.region), Some(bytes(R2)));
    }

    #[test]
    fn bad_instances_name_their_key() {
        let region2 = |instances: &str| {
            file(
                "",
                &format!("[[regions]]\nid = \"{R2}\"\ninstances = {instances}"),
            )
        };
        assert_refused(vec![
            (
                region2("[\"chat\"]"),
                "regions[1].instances[0]",
                "not \"app:instance\"",
            ),
            (
                region2("[\"chat\"]"),
                "regions[1].instances[0]",
                "list the app in `apps`",
            ),
            (
                region2("[\":north\"]"),
                "regions[1].instances[0]",
                "app id is empty",
            ),
            (
                region2("[\"chat:\"]"),
                "regions[1].instances[0]",
                "instance id is empty",
            ),
            (
                region2("[\"chat :north\"]"),
                "regions[1].instances[0]",
                "app id \"chat \" starts or ends with white space",
            ),
            (
                region2("[\"chat: north\"]"),
                "regions[1].instances[0]",
                "instance id \" north\" starts or ends with white space",
            ),
            (
                region2("[\"chat:no\\trth\"]"),
                "regions[1].instances[0]",
                "control characters",
            ),
            (
                region2("[7]"),
                "regions[1].instances[0]",
                "expected an \"app:instance\" string",
            ),
            (
                region2("\"chat:north\""),
                "regions[1].instances",
                "expected a list",
            ),
            // Bound twice: in one region, and in two.
            (
                region2("[\"chat:north\", \"chat:north\"]"),
                "regions[1].instances[1]",
                "instance \"north\" of app \"chat\" is already bound to region 22222222…",
            ),
            (
                two_regions(&format!(
                    "[[regions]]\nid = \"{NET}\"\ninstances = [\"market:north\"]"
                )),
                "regions[2].instances[0]",
                "already bound to region 11111111…",
            ),
            // A region needs at least one topic.
            (
                format!("network_id = \"{NET}\"\n[[regions]]\nid = \"{R1}\"\nadmin_topic = false"),
                "regions[0].apps",
                "list its apps or instances, or set admin_topic = true",
            ),
        ]);
        // One instance id of two apps is two bindings, not one bound twice.
        let c = ok(&region2("[\"chat:north\", \"market:north\"]"));
        assert_eq!(c.regions[1].instances.len(), 2);
    }
}
