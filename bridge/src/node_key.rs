//! The bridge's node key: an Ed25519 secret kept in a file (hex), created on first run.

use std::path::Path;

use p2panda_core::SigningKey;

use crate::secret_file;

/// Reads the key at `path`, or creates it (mode 0600) if there is none yet.
pub fn load_or_create(path: &Path) -> Result<SigningKey, String> {
    let text = secret_file::read(path)
        .map_err(|e| format!("cannot read node key file {}: {e}", path.display()))?;
    let Some(text) = text else {
        let key = SigningKey::generate();
        secret_file::create(path, format!("{}\n", key.to_hex()).as_bytes())
            .map_err(|e| format!("cannot write node key file {}: {e}", path.display()))?;
        return Ok(key);
    };
    let text = String::from_utf8_lossy(&text);
    let bytes = hex::decode(text.trim())
        .map_err(|e| format!("node key file {}: not hex: {e}", path.display()))?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
        format!(
            "node key file {}: expected 32 bytes, found {}",
            path.display(),
            b.len()
        )
    })?;
    Ok(SigningKey::from_bytes(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_kept() {
        let dir = std::env::temp_dir().join(format!("lorabridge-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("node.key");
        let _ = std::fs::remove_file(&path);
        let first = load_or_create(&path).unwrap();
        let again = load_or_create(&path).unwrap();
        assert_eq!(first.as_bytes(), again.as_bytes());
        std::fs::write(&path, "zz").unwrap();
        assert!(load_or_create(&path).unwrap_err().contains("not hex"));
        // What a power cut during a first start used to leave.
        std::fs::write(&path, "").unwrap();
        let fresh = load_or_create(&path).unwrap();
        assert_eq!(load_or_create(&path).unwrap().as_bytes(), fresh.as_bytes());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
