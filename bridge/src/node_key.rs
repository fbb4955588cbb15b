//! The bridge's node key: an Ed25519 secret kept in a file, created on first run.

use std::io::Write;
use std::path::Path;

use p2panda_core::SigningKey;

/// Reads the key at `path`, or creates it (mode 0600, hex) if the file does not exist.
pub fn load_or_create(path: &Path) -> Result<SigningKey, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
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
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SigningKey::generate();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options
                .open(path)
                .map_err(|e| format!("cannot create node key file {}: {e}", path.display()))?;
            writeln!(file, "{}", key.to_hex())
                .map_err(|e| format!("cannot write node key file {}: {e}", path.display()))?;
            Ok(key)
        }
        Err(e) => Err(format!("cannot read node key file {}: {e}", path.display())),
    }
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
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
