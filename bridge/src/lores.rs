//! LoRes Mesh facts the bridge must match exactly, so that it meets LoRes nodes on the same
//! network and topics and answers apps as a LoRes node does (`../shared/facts/lores.md`, checked against
//! lores-node 0.22.2).

use std::collections::BTreeMap;

/// The iroh relay a LoRes node uses when its steward sets none: n0's canary relay
/// (`DEFAULT_IROH_RELAY_URL` in lores-node's `backend/lores-p2panda/src/panda_node.rs`). A LoRes
/// node registers its bootstrap node ids through it, so a bridge on the same relay reaches the
/// same nodes the same way.
pub const DEFAULT_RELAY_URL: &str = "https://euc1-1.relay.n0.iroh-canary.iroh.link";

/// The p2panda network id of a LoRes network named `name`: BLAKE3 of the name's UTF-8 bytes,
/// as lores-node derives it from its configured network name (`Hash::digest(name)`).
pub fn network_id(name: &str) -> [u8; 32] {
    *blake3::hash(name.as_bytes()).as_bytes()
}

/// LoRes app topic: BLAKE3(region id bytes ‖ app_id UTF-8 bytes), exactly as LoRes nodes derive
/// it, so the bridge and the nodes meet on the same topic.
pub fn app_topic(region: &[u8; 32], app_id: &str) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(region);
    hasher.update(app_id.as_bytes());
    *hasher.finalize().as_bytes()
}

/// A topic the bridge carries: a region's admin topic or an app's topic in a region, and the
/// mesh transports it goes over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Carried {
    /// The p2panda topic id.
    pub topic: [u8; 32],
    /// The region it belongs to.
    pub region: [u8; 32],
    /// The app, or `None` for the region admin topic.
    pub app_id: Option<String>,
    /// Carried over LoRa (a radio must be configured too).
    pub lora: bool,
    /// Carried over Reticulum (a `[reticulum]` must be configured too).
    pub reticulum: bool,
}

impl Carried {
    /// An app's topic in a region, on iroh only; set `lora` and `reticulum` for the mesh.
    pub fn app(region: [u8; 32], app_id: &str) -> Self {
        Self {
            topic: app_topic(&region, app_id),
            region,
            app_id: Some(app_id.into()),
            lora: false,
            reticulum: false,
        }
    }
}

/// One instance of one LoRes app, as a gRPC request names it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AppInstance {
    pub app_id: String,
    pub instance_id: String,
}

/// Which region each app instance publishes to and subscribes from.
///
/// LoRes binds each (app_id, instance_id) to a region, so two instances of one app can sit in
/// different regions. Here an instance is bound either explicitly ([`AppBindings::bind_instance`])
/// or by its app's default region ([`AppBindings::bind_app`]): every instance of the app that is
/// not bound explicitly. An instance with neither has no region, which the gRPC API answers
/// with NOT_FOUND, as LoRes does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppBindings {
    apps: BTreeMap<String, AppBinding>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct AppBinding {
    /// The region of every instance not in `instances`.
    default: Option<[u8; 32]>,
    instances: BTreeMap<String, [u8; 32]>,
}

/// An instance was bound a second time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the instance is already bound to region {}", hex::encode(.region))]
pub struct AlreadyBound {
    /// The region of the first binding, which stays.
    pub region: [u8; 32],
}

impl AppBindings {
    /// Every instance of each app in `topics` bound to the app's first region there.
    pub fn of_apps(topics: &[Carried]) -> Self {
        let mut bindings = Self::default();
        for topic in topics {
            if let Some(app_id) = &topic.app_id {
                bindings.bind_app(app_id, topic.region);
            }
        }
        bindings
    }

    /// Makes `region` the default of `app_id` unless it has one: the first region that binds
    /// an app as a whole keeps it.
    pub fn bind_app(&mut self, app_id: &str, region: [u8; 32]) {
        let app = self.apps.entry(app_id.to_owned()).or_default();
        app.default.get_or_insert(region);
    }

    /// Binds one instance to `region`, whatever its app's default.
    pub fn bind_instance(
        &mut self,
        instance: &AppInstance,
        region: [u8; 32],
    ) -> Result<(), AlreadyBound> {
        let app = self.apps.entry(instance.app_id.clone()).or_default();
        match app.instances.get(&instance.instance_id) {
            Some(first) => Err(AlreadyBound { region: *first }),
            None => {
                app.instances.insert(instance.instance_id.clone(), region);
                Ok(())
            }
        }
    }

    /// The app topic this instance publishes to and subscribes from: its explicit binding,
    /// else its app's default region; `None` when neither exists.
    pub fn resolve(&self, app_id: &str, instance_id: &str) -> Option<[u8; 32]> {
        let app = self.apps.get(app_id)?;
        let region = app.instances.get(instance_id).or(app.default.as_ref())?;
        Some(app_topic(region, app_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NORTH: [u8; 32] = [1; 32];
    const SOUTH: [u8; 32] = [2; 32];

    fn instance(app_id: &str, instance_id: &str) -> AppInstance {
        AppInstance {
            app_id: app_id.into(),
            instance_id: instance_id.into(),
        }
    }

    #[test]
    fn network_id_is_plain_blake3_of_the_name() {
        // BLAKE3's published vector for empty input: no key, no context string, no prefix.
        assert_eq!(
            hex::encode(network_id("")),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
        // What lores-node computes for its default network name.
        assert_eq!(
            network_id("lores"),
            *p2panda_core::Hash::digest("lores".as_bytes()).as_bytes()
        );
        assert_ne!(network_id("lores"), network_id("lores "));
    }

    #[test]
    fn app_topic_hashes_region_then_app() {
        let expected = blake3::hash(&[&NORTH[..], b"chat"].concat());
        assert_eq!(app_topic(&NORTH, "chat"), *expected.as_bytes());
        assert_ne!(app_topic(&NORTH, "chat"), app_topic(&SOUTH, "chat"));
        assert_ne!(app_topic(&NORTH, "chat"), app_topic(&NORTH, "chat "));
    }

    #[test]
    fn an_instance_resolves_to_its_binding_else_its_apps_default() {
        let mut bindings = AppBindings::default();
        bindings.bind_app("chat", NORTH);
        bindings
            .bind_instance(&instance("chat", "south-side"), SOUTH)
            .expect("first binding");
        // Bound explicitly: its own region.
        assert_eq!(
            bindings.resolve("chat", "south-side"),
            Some(app_topic(&SOUTH, "chat"))
        );
        // Not bound explicitly: the app's default region.
        assert_eq!(
            bindings.resolve("chat", "anything-else"),
            Some(app_topic(&NORTH, "chat"))
        );
        assert_eq!(
            bindings.resolve("chat", ""),
            Some(app_topic(&NORTH, "chat"))
        );
        // No binding at all.
        assert_eq!(bindings.resolve("market", "south-side"), None);
        assert_eq!(bindings.resolve("Chat", "south-side"), None);
    }

    #[test]
    fn an_app_bound_only_by_instances_has_no_default() {
        let mut bindings = AppBindings::default();
        bindings
            .bind_instance(&instance("market", "north"), NORTH)
            .expect("first binding");
        assert_eq!(
            bindings.resolve("market", "north"),
            Some(app_topic(&NORTH, "market"))
        );
        assert_eq!(bindings.resolve("market", "south"), None);
    }

    #[test]
    fn the_first_binding_wins() {
        let mut bindings = AppBindings::default();
        bindings.bind_app("chat", NORTH);
        bindings.bind_app("chat", SOUTH);
        assert_eq!(
            bindings.resolve("chat", "x"),
            Some(app_topic(&NORTH, "chat"))
        );

        let north = instance("chat", "x");
        bindings
            .bind_instance(&north, SOUTH)
            .expect("first binding");
        assert_eq!(
            bindings.bind_instance(&north, NORTH),
            Err(AlreadyBound { region: SOUTH })
        );
        assert_eq!(
            bindings.resolve("chat", "x"),
            Some(app_topic(&SOUTH, "chat"))
        );
    }
}
