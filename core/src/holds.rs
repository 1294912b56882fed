//! Holds in the store: read by retention before it deletes anything, and
//! changed by `hlsvault hold add | list | remove`.
//!
//! A change reads the stream's holds object, edits it and writes it back.
//! Two commands changing the same stream's holds at the same instant can
//! lose one of the changes (stores like Garage honour no conditional
//! write); retention itself only reads.

use std::time::SystemTime;

use anyhow::Context;
use bytes::Bytes;
use hlsvault_hls::{Hold, Holds, Layout};
use hlsvault_store::{ObjectKind, ObjectStore, StoreError};

/// Why a stream's holds cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum HoldsUnreadable {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{key}: {source}")]
    Corrupt {
        key: String,
        source: hlsvault_hls::HoldsError,
    },
}

/// The stream's holds (none if it has no holds object).
pub async fn load(store: &dyn ObjectStore, layout: &Layout) -> Result<Holds, HoldsUnreadable> {
    let key = layout.holds_key();
    match store.get(&key).await? {
        None => Ok(Holds::default()),
        Some(text) => Holds::parse(&String::from_utf8_lossy(&text))
            .map_err(|source| HoldsUnreadable::Corrupt { key, source }),
    }
}

async fn save(store: &dyn ObjectStore, layout: &Layout, holds: &Holds) -> Result<(), StoreError> {
    let text = Bytes::from(holds.render());
    store
        .put(&layout.holds_key(), text, ObjectKind::Index)
        .await
}

/// Holds `[start, end)` of `stream` for `reason`; returns the hold.
pub async fn add(
    store: &dyn ObjectStore,
    stream: &str,
    [start, end]: [SystemTime; 2],
    reason: &str,
) -> anyhow::Result<Hold> {
    anyhow::ensure!(start < end, "--start must come before --end");
    anyhow::ensure!(!reason.trim().is_empty(), "--reason must say why");
    let layout = Layout::new(stream);
    let mut holds = load(store, &layout).await?;
    let id = holds.add(start, end, reason);
    save(store, &layout, &holds).await?;
    Ok(holds
        .list()
        .iter()
        .find(|h| h.id == id)
        .cloned()
        .expect("just added"))
}

/// Takes the hold `id` of `stream` off; the hold removed.
pub async fn remove(store: &dyn ObjectStore, stream: &str, id: u32) -> anyhow::Result<Hold> {
    let layout = Layout::new(stream);
    let mut holds = load(store, &layout).await?;
    let hold = holds
        .remove(id)
        .with_context(|| format!("{stream} has no hold {id} (hlsvault hold list shows them)"))?;
    save(store, &layout, &holds).await?;
    Ok(hold)
}

/// A hold as a table row: `STREAM ID START END REASON`.
pub fn row(stream: &str, hold: &Hold) -> String {
    format!(
        "{stream:<12} {:>4}  {}  {}  {}",
        hold.id,
        humantime::format_rfc3339(hold.start),
        humantime::format_rfc3339(hold.end),
        hold.reason
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use hlsvault_store::MemoryStore;
    use std::time::Duration;

    #[tokio::test]
    async fn holds_are_kept_in_the_store_added_and_removed_by_id() {
        let store = MemoryStore::default();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_251_600);
        let a = add(&store, "ch1", [t, t + Duration::from_secs(3600)], "case 42")
            .await
            .unwrap();
        add(&store, "ch1", [t, t + Duration::from_secs(60)], "audit")
            .await
            .unwrap();
        let text = store.get("ch1/holds.txt").await.unwrap().unwrap();
        assert_eq!(
            Holds::parse(&String::from_utf8_lossy(&text))
                .unwrap()
                .list()
                .len(),
            2
        );
        assert_eq!(remove(&store, "ch1", a.id).await.unwrap().reason, "case 42");
        let left = load(&store, &Layout::new("ch1")).await.unwrap();
        assert_eq!(left.list().iter().map(|h| h.id).collect::<Vec<_>>(), [2]);
        let missing = remove(&store, "ch1", 7).await.unwrap_err().to_string();
        assert!(missing.contains("ch1 has no hold 7"), "{missing}");
        let backwards = add(&store, "ch1", [t, t], "x").await.unwrap_err();
        assert!(backwards.to_string().contains("--start"));
    }
}
