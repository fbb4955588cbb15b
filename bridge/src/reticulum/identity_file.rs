//! The bridge's Reticulum identity on disk: 64 secret bytes (X25519 ‖ Ed25519 seed, the
//! layout `rnid` uses), created on first start with mode 0600.

use std::io::Write;
use std::path::{Path, PathBuf};

use lorabridge_proto::reticulum::Identity;
use lorabridge_proto::reticulum::identity::KEY_FILE_LEN;

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

/// Loads the identity at `path`, or creates one there if the file does not exist.
pub fn load_or_create(path: &Path) -> Result<Identity, IdentityFileError> {
    match std::fs::read(path) {
        Ok(bytes) => Identity::from_key_file(&bytes).map_err(|_| IdentityFileError::Invalid {
            path: path.to_owned(),
            len: bytes.len(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path),
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
    let write = |path: &Path| -> std::io::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path)?;
        file.write_all(&identity.to_key_file())?;
        file.sync_all()
    };
    write(path).map_err(|source| IdentityFileError::Write {
        path: path.to_owned(),
        source,
    })?;
    Ok(identity)
}
