//! The store the config names: opened for a run or `sign`, and reached
//! before a run to say what is wrong with it.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, Problem, Store};
use hlsvault_store::{FsStore, ObjectStore, S3Store, StoreError};

/// The store the config names.
pub fn open_store(config: &Config) -> Result<Arc<dyn ObjectStore>, StoreError> {
    Ok(match &config.storage.store {
        Store::Fs { root } => Arc::new(FsStore::new(root)),
        Store::S3(settings) => Arc::new(S3Store::new(settings)?),
    })
}

/// Reaches the S3 store, if that is the backend; an unreachable endpoint
/// may come back (transient), refused credentials or a missing bucket
/// will not.
pub(super) fn store_finding(config: &Config) -> Option<(Problem, bool)> {
    let Store::S3(settings) = &config.storage.store else {
        return None;
    };
    let problem = |key: &str, reason: String| Problem {
        key: format!("storage.{key}"),
        reason,
    };
    let store = match S3Store::new(settings) {
        Ok(s) => s,
        Err(e) => return Some((problem("endpoint", e.to_string()), false)),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return Some((problem("endpoint", e.to_string()), false)),
    };
    let checked =
        runtime.block_on(async { tokio::time::timeout(STORE_CHECK_TIMEOUT, store.check()).await });
    match checked {
        Ok(Ok(())) => None,
        Ok(Err(f)) => Some((problem(f.key, f.reason), f.unreachable)),
        Err(_) => Some((
            problem(
                "endpoint",
                format!(
                    "no answer within {}",
                    humantime::format_duration(STORE_CHECK_TIMEOUT)
                ),
            ),
            true,
        )),
    }
}

/// How long `check` waits for the store to answer.
const STORE_CHECK_TIMEOUT: Duration = Duration::from_secs(10);
