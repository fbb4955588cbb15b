//! LoRes Mesh facts the bridge must match exactly, so that it meets LoRes nodes on the same
//! topics (`../shared/facts/lores.md`).

/// LoRes app topic: BLAKE3(region id bytes ‖ app_id UTF-8 bytes), exactly as LoRes nodes derive
/// it, so the bridge and the nodes meet on the same topic.
pub fn app_topic(region: &[u8; 32], app_id: &str) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(region);
    hasher.update(app_id.as_bytes());
    *hasher.finalize().as_bytes()
}
