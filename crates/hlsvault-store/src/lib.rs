//! Object storage for hlsvault: one interface ([`ObjectStore`]), a local
//! directory ([`FsStore`]), memory ([`MemoryStore`], for tests) and S3 ([`S3Store`], with presigned URLs), and
//! the [`UploadQueue`] that keeps finished objects in order while a store
//! is down. Keys are `/`-separated relative paths, checked by
//! [`validate_key`].

mod fs;
mod memory;
mod presign;
mod queue;
mod s3;
mod secret;

use bytes::Bytes;

pub use fs::FsStore;

/// Objects one answer (a range, a status page) reads from a store at
/// once: enough to hide a bucket's latency per request, few enough not
/// to flood it.
pub const READS_AT_ONCE: usize = 16;

pub use memory::MemoryStore;
pub use queue::{PublishLatency, QueueCounters, QueueLimits, UploadQueue, LATENCY_BOUNDS};
pub use s3::{CheckFailure, S3Settings, S3Store};
pub use secret::Secret;

/// What an object is, which decides its content type and caching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// A TS segment: immutable.
    Segment,
    /// A playlist that still changes (open hour, live window).
    OpenPlaylist,
    /// A playlist that will not change again (closed hour).
    ClosedPlaylist,
    /// A plain text index such as `hours.log`.
    Index,
}

impl ObjectKind {
    /// The `Content-Type` to serve it with.
    pub fn content_type(self) -> &'static str {
        match self {
            ObjectKind::Segment => "video/mp2t",
            ObjectKind::OpenPlaylist | ObjectKind::ClosedPlaylist => {
                "application/vnd.apple.mpegurl"
            }
            ObjectKind::Index => "text/plain; charset=utf-8",
        }
    }

    /// The `Cache-Control` to serve it with: what changes must be fetched
    /// again, what is final may be kept.
    pub fn cache_control(self) -> &'static str {
        match self {
            ObjectKind::Segment | ObjectKind::ClosedPlaylist => {
                "public, max-age=31536000, immutable"
            }
            ObjectKind::OpenPlaylist | ObjectKind::Index => "no-cache",
        }
    }
}

/// The error beneath a store failure (the S3 client's, the system's).
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The key is not a safe relative path.
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey {
        /// The key.
        key: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A remote backend could not be reached: it may come back.
    #[error("{op} {key}: {reason}")]
    Unreachable {
        /// The operation.
        op: &'static str,
        /// The key (or bucket).
        key: String,
        /// What went wrong, for an operator (never secrets): the cause
        /// explained.
        reason: String,
        /// The cause: the client's error.
        #[source]
        source: Option<Cause>,
    },
    /// A remote backend refused.
    #[error("{op} {key}: {reason}")]
    Backend {
        /// The operation.
        op: &'static str,
        /// The key (or bucket).
        key: String,
        /// What went wrong, for an operator (never secrets): the cause
        /// explained.
        reason: String,
        /// The cause, when a client or the system gave one.
        #[source]
        source: Option<Cause>,
    },
    /// The caller may not use the store now (a cluster node whose lease
    /// may have expired): nothing was asked of the store.
    #[error("{op} {key}: {reason}")]
    NotAllowed {
        /// The operation.
        op: &'static str,
        /// The key.
        key: String,
        /// Why not.
        reason: &'static str,
    },
    /// The backend failed.
    #[error("{op} {key}: {source}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The key.
        key: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl StoreError {
    /// Whether trying again cannot help (the key itself is refused), as
    /// opposed to a store that is down or failing for now.
    pub fn is_permanent(&self) -> bool {
        matches!(self, StoreError::InvalidKey { .. })
    }

    /// Whether the store failed (as opposed to the caller holding back).
    pub fn is_store_failure(&self) -> bool {
        !matches!(self, StoreError::NotAllowed { .. })
    }
}

/// Where the archive is written.
#[async_trait::async_trait]
pub trait ObjectStore: Send + Sync {
    /// Stores `body` under `key`, replacing any object there. Readers see
    /// either the old object or the whole new one, never a part.
    async fn put(&self, key: &str, body: Bytes, kind: ObjectKind) -> Result<(), StoreError>;

    /// Stores the first `len` bytes of the file at `path` under `key`, as
    /// [`ObjectStore::put`] does; the file stays the caller's. Stores that
    /// can copy file to file (the local directory) never hold the body in
    /// memory; the default reads it in.
    async fn put_from_file(
        &self,
        key: &str,
        path: &std::path::Path,
        len: u64,
        kind: ObjectKind,
    ) -> Result<(), StoreError> {
        let body = read_prefix(path.to_path_buf(), len)
            .await
            .map_err(|source| StoreError::Io {
                op: "read spool",
                key: key.to_string(),
                source,
            })?;
        self.put(key, body, kind).await
    }

    /// Stores the file at `path` under `key`, taking it over: once this
    /// returns `Ok` the file is gone from `path`. The upload queue moves it
    /// into its spool, without a copy; the default reads it in, puts it and
    /// removes it.
    async fn adopt_file(
        &self,
        key: &str,
        path: std::path::PathBuf,
        kind: ObjectKind,
    ) -> Result<(), StoreError> {
        let io = |source| StoreError::Io {
            op: "adopt",
            key: key.to_string(),
            source,
        };
        let len = tokio::fs::metadata(&path).await.map_err(io)?.len();
        self.put_from_file(key, &path, len, kind).await?;
        tokio::fs::remove_file(&path).await.map_err(io)
    }

    /// Reads the object under `key`, or `None` if there is none.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError>;

    /// [`ObjectStore::get`], into `buffer` (its bytes dropped, its memory
    /// reused) where the store reads into memory itself (the local
    /// directory), so that a reader of one large object after another (a
    /// playout) does not fault fresh pages in for each. The default
    /// ignores it.
    async fn get_reusing(&self, key: &str, buffer: Vec<u8>) -> Result<Option<Bytes>, StoreError> {
        drop(buffer);
        self.get(key).await
    }

    /// The objects under `prefix` (a folder: it ends with `/`), in any
    /// order.
    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError>;

    /// Deletes the object at `key` (no error if there is none).
    async fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// A URL that lets anyone GET the object at `key` for `expiry`.
    async fn presign_get(
        &self,
        key: &str,
        _expiry: std::time::Duration,
    ) -> Result<String, StoreError> {
        Err(StoreError::Backend {
            op: "presign",
            key: key.to_string(),
            reason: "this store cannot presign URLs (use backend = \"s3\")".into(),
            source: None,
        })
    }

    /// A short description for logs (never secrets).
    fn describe(&self) -> String;
}

/// An object found by [`ObjectStore::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

/// The first `len` bytes of the file at `path`, read on a blocking thread.
pub(crate) async fn read_prefix(path: std::path::PathBuf, len: u64) -> std::io::Result<Bytes> {
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut body = Vec::with_capacity(len as usize);
        std::fs::File::open(&path)?
            .take(len)
            .read_to_end(&mut body)?;
        if (body.len() as u64) < len {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(Bytes::from(body))
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Checks that a key is a relative path without `..`, empty or hidden
/// parts, or control characters.
pub fn validate_key(key: &str) -> Result<(), StoreError> {
    let bad = |reason| {
        Err(StoreError::InvalidKey {
            key: key.to_string(),
            reason,
        })
    };
    if key.is_empty() || key.len() > 1024 {
        return bad("empty or longer than 1024 bytes");
    }
    if key.starts_with('/') {
        return bad("absolute path");
    }
    if key.chars().any(|c| c.is_control() || c == '\\') {
        return bad("control character or backslash");
    }
    if key
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == ".." || part.starts_with('.'))
    {
        return bad("empty, '.', '..' or hidden path component");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_safe_relative_paths() {
        assert!(validate_key("ch1/2026/11/21/09/0001.ts").is_ok());
        for key in [
            "",
            "/etc/passwd",
            "a/../b",
            "a//b",
            "a/./b",
            "a/.hidden",
            "a\nb",
            "a\\b",
        ] {
            assert!(validate_key(key).is_err(), "{key:?}");
        }
    }
}
