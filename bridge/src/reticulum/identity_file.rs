//! The bridge's Reticulum identity on disk: 64 secret bytes (X25519 ‖ Ed25519 seed, the
//! layout `rnid` uses), created on first start with mode 0600.

use std::path::{Path, PathBuf};

use lorabridge_reticulum::Identity;
use lorabridge_reticulum::identity::KEY_FILE_LEN;

use crate::secret_file;

#[derive(Debug, thiserror::Error)]
pub enum IdentityFileError {
    #[error("reading the Reticulum identity {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing a new Reticulum identity to {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a Reticulum identity ({len} bytes; expected {KEY_FILE_LEN})")]
    Invalid { path: PathBuf, len: usize },
    #[error("no OS randomness for a new identity: {0}")]
    Random(getrandom::Error),
}

/// Loads the identity at `path`, or creates one there if there is none yet.
pub fn load_or_create(path: &Path) -> Result<Identity, IdentityFileError> {
    match secret_file::read(path) {
        Ok(Some(bytes)) => {
            Identity::from_key_file(&bytes).map_err(|_| IdentityFileError::Invalid {
                path: path.to_owned(),
                len: bytes.len(),
            })
        }
        Ok(None) => create(path),
        Err(source) => Err(IdentityFileError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

fn create(path: &Path) -> Result<Identity, IdentityFileError> {
    let mut secret = [0u8; KEY_FILE_LEN];
    getrandom::fill(&mut secret).map_err(IdentityFileError::Random)?;
    let identity = Identity::from_key_file(&secret).expect("64 bytes make an identity");
    secret_file::create(path, &identity.to_key_file()).map_err(|source| {
        IdentityFileError::Write {
            path: path.to_owned(),
            source,
        }
    })?;
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_kept_and_an_empty_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reticulum.identity");
        let first = load_or_create(&path).unwrap();
        assert_eq!(
            load_or_create(&path).unwrap().to_key_file(),
            first.to_key_file()
        );
        std::fs::write(&path, [1u8; 10]).unwrap();
        assert!(matches!(
            load_or_create(&path),
            Err(IdentityFileError::Invalid { len: 10, .. })
        ));
        std::fs::write(&path, "").unwrap();
        let fresh = load_or_create(&path).unwrap();
        assert_eq!(
            load_or_create(&path).unwrap().to_key_file(),
            fresh.to_key_file()
        );
    }
}
