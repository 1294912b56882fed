//! The store as a cluster's owner writes to it: no write starts once this
//! node's lease may have expired (by its own monotonic clock, with a
//! margin), and none may still run then. Stores like Garage ignore
//! conditional writes, so the store cannot fence a frozen owner that
//! wakes up: the owner fences itself.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use hlsvault_cluster::Membership;
use hlsvault_store::{Listed, ObjectKind, ObjectStore, StoreError};

/// A store whose writes end before the membership's lease may.
pub struct FencedStore {
    inner: Arc<dyn ObjectStore>,
    membership: Arc<Membership>,
}

impl FencedStore {
    /// Writes to `inner` while `membership` surely lives.
    pub fn new(inner: Arc<dyn ObjectStore>, membership: Arc<Membership>) -> Self {
        FencedStore { inner, membership }
    }

    /// Runs the write `op` on `key`, cut off at the lease's deadline.
    async fn write<F>(&self, op: &'static str, key: &str, write: F) -> Result<(), StoreError>
    where
        F: std::future::Future<Output = Result<(), StoreError>>,
    {
        let refused = || {
            StoreError::Backend {
            op,
            key: key.to_string(),
            reason: "this node's cluster lease may have expired: it writes no more (another node may own the stream)".into(),
            source: None,
        }
        };
        let Some(deadline) = self.membership.alive_until() else {
            return Err(refused());
        };
        if Instant::now() >= deadline {
            return Err(refused());
        }
        tokio::time::timeout_at(deadline.into(), write)
            .await
            .unwrap_or_else(|_| Err(refused()))
    }
}

#[async_trait::async_trait]
impl ObjectStore for FencedStore {
    async fn put(&self, key: &str, body: Bytes, kind: ObjectKind) -> Result<(), StoreError> {
        self.write("put", key, self.inner.put(key, body, kind))
            .await
    }

    async fn put_from_file(
        &self,
        key: &str,
        path: &std::path::Path,
        len: u64,
        kind: ObjectKind,
    ) -> Result<(), StoreError> {
        let write = self.inner.put_from_file(key, path, len, kind);
        self.write("put", key, write).await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        self.inner.get(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        self.inner.list(prefix).await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.write("delete", key, self.inner.delete(key)).await
    }

    async fn presign_get(
        &self,
        key: &str,
        expiry: std::time::Duration,
    ) -> Result<String, StoreError> {
        self.inner.presign_get(key, expiry).await
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}
