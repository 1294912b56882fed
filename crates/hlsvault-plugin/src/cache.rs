//! The cache of compiled plugins. What it holds is native code the host
//! runs, so it is only used when nobody else could have written it: the
//! directory is ours and 0700, and every artifact carries an HMAC under a
//! key kept elsewhere, in the state directory (0600, its folder ours and
//! 0700). An artifact that does not
//! verify (tampered, torn, or from another key) is compiled again.

use std::fs::{DirBuilder, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};

use crate::CacheLocation;
use sha2::Sha256;
use wasmtime::component::Component;
use wasmtime::Engine;

/// A cache directory that passed its checks, with its key.
pub(crate) struct CompiledCache {
    dir: PathBuf,
    key: [u8; 32],
}

/// Why a private directory (the cache's, the state's) is not used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// It cannot be made, read or restricted.
    #[error("cannot use {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Another user owns it.
    #[error("{path} belongs to uid {owner}, not to this process (uid {us}): another user could plant code or data in it")]
    NotOurs { path: PathBuf, owner: u32, us: u32 },
}

fn uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError {
    let path = path.to_path_buf();
    move |source| CacheError::Io { path, source }
}

/// Creates `dir` 0700 if missing; refuses it if another user owns it, and
/// takes group and other permissions away if it has them. For any folder
/// whose content the process trusts (the cache, the state directory).
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let cache = dir.path().join("cache");
/// hlsvault_plugin::make_private(&cache).unwrap();
/// # use std::os::unix::fs::PermissionsExt;
/// assert_eq!(std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777, 0o700);
/// ```
pub fn make_private(dir: &Path) -> Result<(), CacheError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))?;
    let meta = std::fs::metadata(dir).map_err(io(dir))?;
    if meta.uid() != uid() {
        return Err(CacheError::NotOurs {
            path: dir.to_path_buf(),
            owner: meta.uid(),
            us: uid(),
        });
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
    }
    Ok(())
}

impl CompiledCache {
    /// Opens (creating) the cache at `location`: its folder and the key's
    /// must be ours; they are made 0700, and the key is made once.
    pub(crate) fn open(location: CacheLocation) -> Result<Self, CacheError> {
        let CacheLocation { dir, key: key_file } = location;
        make_private(&dir)?;
        make_private(key_file.parent().unwrap_or(Path::new(".")))?;
        let key = match read_key(&key_file) {
            Ok(key) => key,
            Err(_) => make_key(&key_file).map_err(io(&key_file))?,
        };
        Ok(CompiledCache { dir, key })
    }

    /// The component cached under `name`, if its artifact verifies.
    pub(crate) fn load(&self, engine: &Engine, name: &str) -> Option<Component> {
        let file = self.dir.join(format!("{name}.cwasm"));
        let bytes = std::fs::read(&file).ok()?;
        let mac = std::fs::read(file.with_extension("cwasm.mac")).unwrap_or_default();
        if self.mac(&bytes).verify_slice(&mac).is_err() {
            tracing::warn!(file = %file.display(), "a cached plugin does not verify (tampered or torn); compiling it again");
            return None;
        }
        // SAFETY: the bytes carry our HMAC: this host wrote them, from
        // `precompile_component` of an engine with the same compatibility
        // hash (it is in the name).
        match unsafe { Component::deserialize(engine, &bytes) } {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "a cached plugin cannot be used; compiling again");
                None
            }
        }
    }

    /// Caches `compiled` under `name`, with its HMAC.
    pub(crate) fn store(&self, name: &str, compiled: &[u8]) {
        let file = self.dir.join(format!("{name}.cwasm"));
        let mac = self.mac(compiled).finalize().into_bytes();
        let written = write_atomically(&file, compiled)
            .and_then(|()| write_atomically(&file.with_extension("cwasm.mac"), &mac));
        if let Err(e) = written {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot cache a compiled plugin");
        }
    }

    fn mac(&self, bytes: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(bytes);
        mac
    }
}

/// The key, if it is ours, 0600 and whole.
fn read_key(path: &Path) -> std::io::Result<[u8; 32]> {
    let meta = std::fs::metadata(path)?;
    if meta.uid() != uid() || meta.mode() & 0o077 != 0 {
        return Err(std::io::Error::other("not ours or not 0600"));
    }
    let mut key = [0u8; 32];
    std::fs::File::open(path)?.read_exact(&mut key)?;
    Ok(key)
}

/// A new random key, written 0600 (replacing an unusable one).
fn make_key(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut key)?;
    let _ = std::fs::remove_file(path);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?
        .write_all(&key)?;
    Ok(key)
}

fn write_atomically(file: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?
        .write_all(data)?;
    std::fs::rename(tmp, file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(base: &Path) -> CacheLocation {
        CacheLocation {
            dir: base.join("plugins"),
            key: base.join("state/plugin-cache.key"),
        }
    }

    #[test]
    fn the_cache_is_made_private_and_keeps_its_key() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("plugins");
        let key = base.path().join("state/plugin-cache.key");
        let open = || CompiledCache::open(location(base.path())).unwrap();
        let cache = open();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(key.parent().unwrap()), 0o700);
        assert_eq!(mode(&key), 0o600);
        // Opened again: the same key.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let again = open();
        assert_eq!(again.key, cache.key);
        assert_eq!(mode(&dir), 0o700, "made private again");
        // A key others could read is replaced.
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let replaced = open();
        assert_ne!(replaced.key, cache.key);
        assert_eq!(mode(&key), 0o600);
    }

    #[test]
    fn an_artifact_that_does_not_verify_is_not_loaded() {
        let base = tempfile::tempdir().unwrap();
        let cache = CompiledCache::open(location(base.path())).unwrap();
        let engine = crate::engine();
        // Not a component at all, but with a valid MAC: deserialize refuses.
        cache.store("x", b"not native code");
        assert!(cache.load(&engine, "x").is_none());
        // A planted file without our MAC is never handed to deserialize.
        std::fs::write(base.path().join("plugins/y.cwasm"), b"planted").unwrap();
        assert!(cache.load(&engine, "y").is_none());
        assert!(cache.load(&engine, "absent").is_none());
    }
}
