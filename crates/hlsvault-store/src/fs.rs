//! The local directory backend: keys are paths under a root.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::{validate_key, Listed, ObjectKind, ObjectStore, StoreError};

/// A store in a local directory.
///
/// ```
/// use hlsvault_store::{FsStore, ObjectKind, ObjectStore};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let store = FsStore::new(dir.path());
/// store.put("ch1/hours.log", "2026-11-21T09 2026/11/21/09/index.m3u8\n".into(), ObjectKind::Index).await.unwrap();
/// assert!(dir.path().join("ch1/hours.log").is_file());
/// assert!(store.put("../escape", "".into(), ObjectKind::Index).await.is_err());
/// # });
/// ```
pub struct FsStore {
    root: PathBuf,
    temp_counter: AtomicU64,
}

impl FsStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FsStore {
            root: root.into(),
            temp_counter: AtomicU64::new(0),
        }
    }

    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }

    /// Where `key` goes, and the hidden name it is written under first.
    fn target(&self, key: &str) -> Result<(PathBuf, String), StoreError> {
        let n = self.temp_counter.fetch_add(1, Ordering::Relaxed);
        Ok((self.path(key)?, format!(".tmp-{}-{n}", std::process::id())))
    }
}

fn io<'k>(op: &'static str, key: &'k str) -> impl FnOnce(std::io::Error) -> StoreError + 'k {
    move |source| StoreError::Io {
        op,
        key: key.to_string(),
        source,
    }
}

/// Writes to a hidden temporary file beside `path`, syncs it, then renames
/// it over `path` and syncs the folder: a reader sees the old file or the
/// new one, never half of one, and after a crash (of the process or the
/// machine) an object that was reported stored is there whole.
fn write_atomic(
    path: &Path,
    temp_name: &str,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = path.parent().expect("keys have a parent under the root");
    std::fs::create_dir_all(dir)?;
    let temp = dir.join(temp_name);
    let result = std::fs::File::create(&temp)
        .and_then(|mut f| {
            write(&mut f)?;
            f.sync_data()
        })
        .and_then(|()| std::fs::rename(&temp, path))
        .and_then(|()| std::fs::File::open(dir)?.sync_all());
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

#[async_trait::async_trait]
impl ObjectStore for FsStore {
    async fn put(&self, key: &str, body: Bytes, _kind: ObjectKind) -> Result<(), StoreError> {
        use std::io::Write;
        let (path, temp_name) = self.target(key)?;
        tokio::task::spawn_blocking(move || write_atomic(&path, &temp_name, |f| f.write_all(&body)))
            .await
            .expect("blocking write task panicked")
            .map_err(io("put", key))
    }

    /// Copies file to file in the kernel (`copy_file_range`): the body
    /// never passes through this process's memory.
    async fn put_from_file(
        &self,
        key: &str,
        from: &Path,
        len: u64,
        _kind: ObjectKind,
    ) -> Result<(), StoreError> {
        use std::io::Read;
        let (path, temp_name) = self.target(key)?;
        let from = from.to_path_buf();
        tokio::task::spawn_blocking(move || {
            write_atomic(&path, &temp_name, |f| {
                let copied = std::io::copy(&mut std::fs::File::open(&from)?.take(len), f)?;
                match copied == len {
                    true => Ok(()),
                    false => Err(std::io::ErrorKind::UnexpectedEof.into()),
                }
            })
        })
        .await
        .expect("blocking write task panicked")
        .map_err(io("put", key))
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        self.get_reusing(key, Vec::new()).await
    }

    async fn get_reusing(
        &self,
        key: &str,
        mut buffer: Vec<u8>,
    ) -> Result<Option<Bytes>, StoreError> {
        let path = self.path(key)?;
        let read = tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut file = std::fs::File::open(&path)?;
            buffer.clear();
            buffer.reserve(file.metadata()?.len() as usize);
            file.read_to_end(&mut buffer)?;
            Ok(buffer)
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        match read {
            Ok(data) => Ok(Some(Bytes::from(data))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("get", key)(e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        let dir = self.path(prefix.trim_end_matches('/'))?;
        let root = self.root.clone();
        let walk = move || {
            let mut keys = Vec::new();
            let mut stack = vec![dir];
            while let Some(d) = stack.pop() {
                let entries = match std::fs::read_dir(&d) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                for entry in entries {
                    let entry = entry?;
                    let path = entry.path();
                    let hidden = path
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'));
                    let meta = entry.metadata()?;
                    if meta.is_dir() {
                        stack.push(path);
                    } else if !hidden {
                        if let Ok(rel) = path.strip_prefix(&root) {
                            keys.push(Listed {
                                key: rel.to_string_lossy().into_owned(),
                                size: meta.len(),
                            });
                        }
                    }
                }
            }
            Ok(keys)
        };
        tokio::task::spawn_blocking(walk)
            .await
            .expect("blocking list task panicked")
            .map_err(io("list", prefix))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("delete", key)(e)),
        }
        // Folders left empty go too (an hour, then its day...), up to the root.
        let mut dir = path.parent();
        while let Some(d) = dir.filter(|d| *d != self.root) {
            if std::fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("directory {}", self.root.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_and_replace_atomically() {
        let dir = std::env::temp_dir().join(format!("hlsvault-fs-{}", std::process::id()));
        let store = FsStore::new(&dir);
        assert!(store.get("a/b.m3u8").await.unwrap().is_none());
        store
            .put(
                "a/b.m3u8",
                Bytes::from_static(b"one"),
                ObjectKind::OpenPlaylist,
            )
            .await
            .unwrap();
        store
            .put(
                "a/b.m3u8",
                Bytes::from_static(b"two"),
                ObjectKind::OpenPlaylist,
            )
            .await
            .unwrap();
        assert_eq!(store.get("a/b.m3u8").await.unwrap().unwrap(), "two");
        let names: Vec<_> = std::fs::read_dir(dir.join("a"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["b.m3u8"], "no temporary file left behind");
        assert!(store
            .put("../x", Bytes::new(), ObjectKind::Segment)
            .await
            .is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn put_from_file_stores_the_prefix_of_the_file_and_leaves_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::new(dir.path().join("store"));
        let spooled = dir.path().join("spooled");
        std::fs::write(&spooled, b"segment bytes|trailer").unwrap();
        store
            .put_from_file("ch1/a.ts", &spooled, 13, ObjectKind::Segment)
            .await
            .unwrap();
        assert_eq!(
            store.get("ch1/a.ts").await.unwrap().unwrap(),
            "segment bytes"
        );
        assert!(spooled.exists());
        // A file shorter than it should be is an error, and stores nothing.
        let short = store.put_from_file("ch1/b.ts", &spooled, 99, ObjectKind::Segment);
        assert!(short.await.is_err());
        assert!(store.get("ch1/b.ts").await.unwrap().is_none());
        let listed = store.list("ch1/").await.unwrap();
        assert_eq!(
            listed,
            [Listed {
                key: "ch1/a.ts".into(),
                size: 13
            }]
        );
    }
}
