//! A store in memory: for unit tests of what writes an archive, and tools
//! that build one before writing it out. Nothing survives the process.

use std::collections::BTreeMap;
use std::sync::Mutex;

use bytes::Bytes;

use crate::{validate_key, Listed, ObjectKind, ObjectStore, StoreError};

/// Objects in a map, with the kind each was stored as.
///
/// ```
/// use hlsvault_store::{MemoryStore, ObjectKind, ObjectStore};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::default();
/// store.put("ch1/live.m3u8", "#EXTM3U\n".into(), ObjectKind::OpenPlaylist).await.unwrap();
/// assert_eq!(store.list("ch1/").await.unwrap()[0].key, "ch1/live.m3u8");
/// assert_eq!(store.kind("ch1/live.m3u8"), Some(ObjectKind::OpenPlaylist));
/// # });
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, (Bytes, ObjectKind)>>,
}

impl MemoryStore {
    /// The kind the object at `key` was stored as, if there is one.
    pub fn kind(&self, key: &str) -> Option<ObjectKind> {
        self.objects().get(key).map(|(_, kind)| *kind)
    }

    fn objects(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (Bytes, ObjectKind)>> {
        self.objects.lock().expect("memory store lock")
    }
}

#[async_trait::async_trait]
impl ObjectStore for MemoryStore {
    async fn put(&self, key: &str, body: Bytes, kind: ObjectKind) -> Result<(), StoreError> {
        validate_key(key)?;
        self.objects().insert(key.to_string(), (body, kind));
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        validate_key(key)?;
        Ok(self.objects().get(key).map(|(body, _)| body.clone()))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        let objects = self.objects();
        Ok(objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, (body, _))| Listed {
                key: k.clone(),
                size: body.len() as u64,
            })
            .collect())
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        validate_key(key)?;
        self.objects().remove(key);
        Ok(())
    }

    fn describe(&self) -> String {
        "memory".into()
    }
}
