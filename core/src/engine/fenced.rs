//! The store as a cluster's owner uses it: no write starts once this
//! node's lease may have expired (by its own monotonic clock, with a
//! margin), and no call may still run then. Stores like Garage ignore
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

    /// Runs `call` (`op` on `key`), cut off at the lease's deadline (each
    /// renewal moves it on): a write must not land after it. A store that
    /// does not answer within twice the lease is failing: the owner gives
    /// the stream to a node whose store answers.
    async fn fenced<T, F>(&self, op: &'static str, key: &str, call: F) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = Result<T, StoreError>>,
    {
        let refused = || StoreError::NotAllowed {
            op,
            key: key.to_string(),
            reason:
                "not once this node's cluster lease may expire (another node may own the stream)",
        };
        let patience = Instant::now() + self.membership.ttl() * 2;
        tokio::pin!(call);
        loop {
            let deadline = match self.membership.alive_until() {
                Some(d) if Instant::now() < d => d,
                _ => return Err(refused()),
            };
            if Instant::now() >= patience {
                return Err(StoreError::Unreachable {
                    op,
                    key: key.to_string(),
                    reason: "no answer within twice the cluster lease".into(),
                    source: None,
                });
            }
            let wake = deadline.min(patience);
            if let Ok(answer) = tokio::time::timeout_at(wake.into(), &mut call).await {
                return answer;
            }
        }
    }
}

#[async_trait::async_trait]
impl ObjectStore for FencedStore {
    async fn put(&self, key: &str, body: Bytes, kind: ObjectKind) -> Result<(), StoreError> {
        self.fenced("put", key, self.inner.put(key, body, kind))
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
        self.fenced("put", key, write).await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        self.fenced("get", key, self.inner.get(key)).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        self.fenced("list", prefix, self.inner.list(prefix)).await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.fenced("delete", key, self.inner.delete(key)).await
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
