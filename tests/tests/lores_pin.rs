//! The bridge must run exactly the p2panda and iroh of the LoRes Node release that
//! neighbourhoods run: p2panda 0.7.0 and 0.7.1 do not interoperate (`facts/lores.md`).
//! This test fails when Cargo.lock drifts from them, e.g. after a `cargo update`.
//! README.md, "Moving to a new LoRes release", says how to move the pin.

use std::collections::BTreeMap;

/// The LoRes Node release this bridge is pinned to.
const LORES_RELEASE: &str = "lores-node 0.22.2";

/// Its `backend/Cargo.lock`: the crates that make p2panda's and iroh's wire protocols.
const PINNED: &[(&str, &str)] = &[
    ("p2panda", "0.7.0"),
    ("p2panda-core", "0.7.0"),
    ("p2panda-net", "0.7.0"),
    ("p2panda-store", "0.7.0"),
    ("p2panda-sync", "0.7.0"),
    ("p2panda-stream", "0.7.0"),
    ("p2panda-discovery", "0.7.0"),
    ("p2panda-auth", "0.7.0"),
    ("p2panda-encryption", "0.7.0"),
    ("p2panda-spaces", "0.7.0"),
    ("iroh", "1.0.2"),
    ("iroh-base", "1.0.2"),
    ("iroh-relay", "1.0.2"),
    ("iroh-dns", "1.0.2"),
    ("iroh-gossip", "0.101.0"),
    ("iroh-mdns-address-lookup", "0.4.0"),
    ("iroh-metrics", "1.0.1"),
    ("noq", "1.0.1"),
    ("noq-proto", "1.0.1"),
    ("noq-udp", "1.0.1"),
];

#[test]
fn cargo_lock_holds_the_p2panda_and_iroh_of_the_lores_release() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock");
    let text = std::fs::read_to_string(path).expect("Cargo.lock at the workspace root");
    let lock: toml::Table = toml::from_str(&text).expect("Cargo.lock is TOML");
    let mut versions: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for package in lock["package"].as_array().expect("[[package]] entries") {
        let name = package["name"].as_str().expect("a name");
        let version = package["version"].as_str().expect("a version");
        versions.entry(name).or_default().push(version);
    }
    let drifted: Vec<String> = PINNED
        .iter()
        .filter(|(name, want)| versions.get(name).map(Vec::as_slice) != Some(&[*want][..]))
        .map(|(name, want)| format!("{name}: {want} wanted, {:?} locked", versions.get(name)))
        .collect();
    assert!(
        drifted.is_empty(),
        "Cargo.lock drifted from {LORES_RELEASE}'s p2panda/iroh, so the bridge would not \
         sync with its nodes:\n  {}",
        drifted.join("\n  ")
    );
}
