//! The state directory: what the archiver keeps between runs. Nobody else
//! may write in it (what the spool holds is uploaded into the archive with
//! our credentials), and each store has its own spool in it, so that two
//! archives, or two configs on one machine, never mix their objects.

use std::path::PathBuf;

use anyhow::Context;

use crate::config::{Config, Store};

/// Creates `config.state_dir` (0700) if needed and checks that it is ours
/// and private; returns the spool folder of the config's store, unless the
/// spool is off.
pub fn prepare(config: &Config) -> anyhow::Result<Option<PathBuf>> {
    let dir = &config.state_dir;
    hlsvault_plugin::make_private(dir).with_context(|| format!("cannot use {}", dir.display()))?;
    if !config.storage.spool {
        return Ok(None);
    }
    let identity = store_identity(&config.storage.store);
    let spool = dir.join("spool").join(format!("{:016x}", fnv1a(&identity)));
    std::fs::create_dir_all(&spool).with_context(|| format!("cannot make {}", spool.display()))?;
    // Says which store the folder is for, to whoever looks.
    let label = spool.join("store");
    if !label.exists() {
        std::fs::write(&label, format!("{identity}\n"))
            .with_context(|| format!("cannot write in {}", spool.display()))?;
    }
    Ok(Some(spool))
}

/// Which archive a store is: the same for every config that names it.
fn store_identity(store: &Store) -> String {
    match store {
        Store::Fs { root } => format!(
            "directory {}",
            std::path::absolute(root)
                .unwrap_or_else(|_| root.clone())
                .display()
        ),
        Store::S3(s) => format!(
            "s3 {}/{}/{}",
            s.endpoint.trim_end_matches('/'),
            s.bucket,
            s.prefix.as_deref().unwrap_or("")
        ),
    }
}

/// FNV-1a: a name that stays the same across builds and versions (unlike
/// std's hasher), for a folder a later run must find again.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn each_store_has_its_own_spool_and_the_state_dir_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let pcap = dir.path().join("c.pcap");
        std::fs::write(&pcap, b"").unwrap();
        let file = dir.path().join("c.toml");
        let config = |root: &str| {
            std::fs::write(
                &file,
                format!(
                    "state_dir = \"{}\"\n[storage]\nroot = \"{root}\"\n[[streams]]\nname = \"ch1\"\n[streams.source]\nkind = \"pcap-file\"\npath = \"{}\"\ngroup = \"239.1.1.1\"\nport = 5000\n",
                    state.display(),
                    pcap.display()
                ),
            )
            .unwrap();
            crate::config::load(&file).unwrap()
        };
        let a = prepare(&config("/srv/a")).unwrap().unwrap();
        let again = prepare(&config("/srv/a")).unwrap().unwrap();
        let b = prepare(&config("/srv/b")).unwrap().unwrap();
        assert_eq!(a, again);
        assert_ne!(a, b);
        assert_eq!(
            std::fs::read_to_string(a.join("store")).unwrap(),
            "directory /srv/a\n"
        );
        let mode = std::fs::metadata(&state).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);

        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
        prepare(&config("/srv/a")).unwrap();
        let mode = std::fs::metadata(&state).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700, "made private again");

        let mut off = config("/srv/a");
        off.storage.spool = false;
        assert_eq!(prepare(&off).unwrap(), None);

        // Another user's directory is refused (chown needs root, as the
        // test suite runs).
        if std::os::unix::fs::chown(&state, Some(65534), None).is_ok() {
            let e = format!("{:#}", prepare(&config("/srv/a")).unwrap_err());
            assert!(e.contains("belongs to uid 65534"), "{e}");
            assert!(
                e.starts_with(&format!("cannot use {}", state.display())),
                "{e}"
            );
        }
    }
}
