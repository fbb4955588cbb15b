//! Secret key files (the node key, the Reticulum identity): created whole or not at all.
//!
//! A new key is written to `<file>.partial`, synced, and renamed into place, so a power cut
//! during a bridge's first start leaves either no key file or a whole one. An empty file is
//! what such a cut left before keys were written this way: it never held a key, so nothing was
//! ever signed with it, and a new key takes its place instead of the bridge refusing to start
//! at every boot.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The file's bytes, or `None` when there is no key yet: no file, or an empty one.
pub fn read(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => {
            tracing::warn!(
                file = %path.display(),
                "the key file is empty (a first start was cut short before its key was \
                 written): creating a new key"
            );
            Ok(None)
        }
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes `bytes` as the key file at `path`, readable by its owner only (mode 0600).
pub fn create(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    // A partial file left by a cut is only ever a key that was never used.
    match std::fs::remove_file(&partial) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&partial)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&partial, path)?;
    // The rename itself is durable only once the folder is.
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_files_hold_no_key_and_a_created_one_is_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/node.key");
        assert_eq!(read(&path).unwrap(), None);
        create(&path, b"secret\n").unwrap();
        assert_eq!(read(&path).unwrap().as_deref(), Some(&b"secret\n"[..]));
        std::fs::write(&path, "").unwrap();
        assert_eq!(read(&path).unwrap(), None);
        std::fs::write(dir.path().join("keys/node.key.partial"), "cut").unwrap();
        create(&path, b"again").unwrap();
        assert_eq!(read(&path).unwrap().as_deref(), Some(&b"again"[..]));
        let names: Vec<_> = std::fs::read_dir(dir.path().join("keys"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["node.key"], "no partial file stays");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
