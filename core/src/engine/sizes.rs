//! Retention by size: what each stream's hours hold, as the archive wrote
//! them, and which hours go when a stream (`retention_size`) or the
//! whole archive (`[storage] retention_size`) is over its cap.
//!
//! Each stream's archive tells the ledger the size of every hour it
//! closes (and of those its day indexes list, as it opens) and how its
//! open hour grows; nothing lists the bucket to find out. After each
//! segment the ledger is asked what is over; the hours to delete go to
//! their own stream's archive (its mailbox), which deletes them unless a
//! hold keeps them, so that only a stream's archive ever rewrites its
//! `hours.log` and an idle stream still deletes what the total asks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use hlsvault_hls::Hour;
use tokio::sync::mpsc;

/// The hours a stream is asked to delete, oldest first.
pub type Deletions = mpsc::UnboundedReceiver<Vec<Hour>>;

/// The archive's sizes, for every stream of a run.
#[derive(Debug, Default)]
pub struct Sizes {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// `[storage] retention_size`.
    total_cap: Option<u64>,
    streams: BTreeMap<String, StreamHours>,
}

/// One stream's hours as the ledger knows them.
#[derive(Debug, Default, Clone)]
pub struct StreamHours {
    /// The stream's own `retention_size`.
    pub cap: Option<u64>,
    /// Closed hours and their bytes.
    pub closed: BTreeMap<Hour, u64>,
    /// What the open hour holds so far.
    pub open: u64,
    /// Hours a hold kept from deletion (until the stream next closes an
    /// hour, when the holds are asked again).
    pub held: BTreeSet<Hour>,
    /// Hours asked to be deleted and not yet done.
    pub pending: BTreeSet<Hour>,
    mailbox: Option<mpsc::UnboundedSender<Vec<Hour>>>,
}

impl StreamHours {
    /// What the stream holds, its pending deletions not counted.
    fn bytes(&self) -> u64 {
        let closed: u64 = self
            .closed
            .iter()
            .filter(|(h, _)| !self.pending.contains(h))
            .map(|(_, b)| b)
            .sum();
        closed + self.open
    }

    /// Its closed hours that may be deleted, oldest first.
    fn deletable(&self) -> impl Iterator<Item = (Hour, u64)> + '_ {
        self.closed
            .iter()
            .filter(|(h, _)| !self.held.contains(h) && !self.pending.contains(h))
            .map(|(h, b)| (*h, *b))
    }
}

impl Sizes {
    /// A ledger for a run whose whole archive is capped at `total_cap`.
    pub fn new(total_cap: Option<u64>) -> Self {
        let sizes = Sizes::default();
        sizes.state().total_cap = total_cap;
        sizes
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `stream`'s sizes are needed: it or the whole archive has a
    /// cap.
    pub fn wanted(&self, cap: Option<u64>) -> bool {
        cap.is_some() || self.state().total_cap.is_some()
    }

    /// A stream's archive opens: its closed hours and their sizes, its
    /// cap; returns the mailbox its deletions come by.
    pub fn open(&self, stream: &str, cap: Option<u64>, closed: BTreeMap<Hour, u64>) -> Deletions {
        let (tx, rx) = mpsc::unbounded_channel();
        self.state().streams.insert(
            stream.to_string(),
            StreamHours {
                cap,
                closed,
                mailbox: Some(tx),
                ..StreamHours::default()
            },
        );
        rx
    }

    /// The open hour of `stream` holds `bytes` more.
    pub fn grew(&self, stream: &str, bytes: u64) {
        if let Some(s) = self.state().streams.get_mut(stream) {
            s.open += bytes;
        }
    }

    /// `stream` opens `hour`: empty, or as much as the ledger knew of it
    /// (an hour an earlier run began).
    pub fn opened(&self, stream: &str, hour: Hour) {
        if let Some(s) = self.state().streams.get_mut(stream) {
            s.open = s.closed.remove(&hour).unwrap_or(0);
        }
    }

    /// `stream` closed `hour`, which holds `bytes`; holds are asked again.
    pub fn closed(&self, stream: &str, hour: Hour, bytes: u64) {
        if let Some(s) = self.state().streams.get_mut(stream) {
            s.closed.insert(hour, bytes);
            s.open = 0;
            s.held.clear();
        }
    }

    /// `stream` deleted `deleted`, and a hold kept `held`.
    pub fn settled(&self, stream: &str, deleted: &[Hour], held: &[Hour]) {
        if let Some(s) = self.state().streams.get_mut(stream) {
            for h in deleted {
                s.closed.remove(h);
                s.pending.remove(h);
            }
            for h in held {
                s.pending.remove(h);
                s.held.insert(*h);
            }
        }
    }

    /// `stream` could not delete `hours` (the store failed): they may be
    /// asked for again.
    pub fn retry(&self, stream: &str, hours: &[Hour]) {
        if let Some(s) = self.state().streams.get_mut(stream) {
            for h in hours {
                s.pending.remove(h);
            }
        }
    }

    /// Asks each stream to delete what the caps want gone (see
    /// [`plan`]); returns how many hours were asked for.
    pub fn enforce(&self) -> usize {
        let mut state = self.state();
        // A stream no longer archived (removed by a reload) keeps its
        // hours in the count, but nothing can delete them now.
        for s in state.streams.values_mut() {
            if s.mailbox.as_ref().is_none_or(|m| m.is_closed()) {
                let hours: Vec<Hour> = s.closed.keys().copied().collect();
                s.held.extend(hours);
            }
        }
        let total_cap = state.total_cap;
        let planned = plan(&state.streams, total_cap);
        let mut asked = 0;
        for (stream, hours) in planned {
            let Some(s) = state.streams.get_mut(&stream) else {
                continue;
            };
            let sent = s
                .mailbox
                .as_ref()
                .is_some_and(|m| m.send(hours.clone()).is_ok());
            if sent {
                asked += hours.len();
                s.pending.extend(hours);
            }
        }
        asked
    }
}

/// What goes: for each stream over its own cap, its oldest deletable
/// hours until it fits; then, while the whole archive is over
/// `total_cap`, the oldest deletable hour of any stream (by the hour,
/// then the stream's name). An open hour is never deleted, nor a held
/// one; hours already asked for count as gone.
pub fn plan(
    streams: &BTreeMap<String, StreamHours>,
    total_cap: Option<u64>,
) -> BTreeMap<String, Vec<Hour>> {
    let mut going: BTreeMap<String, Vec<Hour>> = BTreeMap::new();
    let mut left: BTreeMap<&str, u64> = BTreeMap::new();
    for (name, s) in streams {
        let mut bytes = s.bytes();
        if let Some(cap) = s.cap {
            for (hour, size) in s.deletable() {
                if bytes <= cap {
                    break;
                }
                bytes -= size;
                going.entry(name.clone()).or_default().push(hour);
            }
        }
        left.insert(name, bytes);
    }
    let Some(cap) = total_cap else {
        return going;
    };
    let mut total: u64 = left.values().sum();
    let mut candidates: Vec<(Hour, &str, u64)> = streams
        .iter()
        .flat_map(|(name, s)| {
            let taken = going.get(name);
            s.deletable()
                .filter(move |(h, _)| !taken.is_some_and(|t| t.contains(h)))
                .map(move |(h, b)| (h, name.as_str(), b))
        })
        .collect();
    candidates.sort();
    for (hour, name, size) in candidates {
        if total <= cap {
            break;
        }
        total -= size;
        going.entry(name.to_string()).or_default().push(hour);
    }
    going
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hour(label: &str) -> Hour {
        Hour::parse(label).unwrap()
    }

    fn stream(cap: Option<u64>, hours: &[(&str, u64)], open: u64) -> StreamHours {
        StreamHours {
            cap,
            closed: hours.iter().map(|(h, b)| (hour(h), *b)).collect(),
            open,
            ..StreamHours::default()
        }
    }

    #[test]
    fn a_stream_over_its_cap_loses_its_oldest_hours_until_it_fits() {
        let streams = BTreeMap::from([(
            "ch1".to_string(),
            stream(
                Some(250),
                &[
                    ("2026-11-21T09", 100),
                    ("2026-11-21T10", 100),
                    ("2026-11-21T11", 100),
                ],
                60,
            ),
        )]);
        // 360 bytes against 250: 09 goes (260), then 10 (160).
        assert_eq!(
            plan(&streams, None)["ch1"],
            [hour("2026-11-21T09"), hour("2026-11-21T10")]
        );
    }

    #[test]
    fn held_and_pending_hours_are_not_asked_for_and_pending_ones_count_as_gone() {
        let mut s = stream(
            Some(150),
            &[
                ("2026-11-21T09", 100),
                ("2026-11-21T10", 100),
                ("2026-11-21T11", 100),
            ],
            0,
        );
        s.held.insert(hour("2026-11-21T09"));
        s.pending.insert(hour("2026-11-21T10"));
        let streams = BTreeMap::from([("ch1".to_string(), s)]);
        // 200 counted (10 is as good as gone); 09 is held: 11 goes.
        assert_eq!(plan(&streams, None)["ch1"], [hour("2026-11-21T11")]);
    }

    #[test]
    fn over_the_total_the_oldest_hour_of_any_stream_goes_first() {
        let streams = BTreeMap::from([
            (
                "ch1".to_string(),
                stream(None, &[("2026-11-21T10", 100), ("2026-11-21T11", 100)], 50),
            ),
            (
                "ch2".to_string(),
                stream(None, &[("2026-11-21T09", 100), ("2026-11-21T11", 100)], 50),
            ),
        ]);
        // 500 against 300: ch2's 09, then ch1's 10.
        let going = plan(&streams, Some(300));
        assert_eq!(going["ch2"], [hour("2026-11-21T09")]);
        assert_eq!(going["ch1"], [hour("2026-11-21T10")]);
        assert!(plan(&streams, Some(500)).is_empty(), "fits");
    }

    #[test]
    fn a_stream_cap_and_the_total_together_never_ask_for_an_hour_twice() {
        let streams = BTreeMap::from([
            (
                "ch1".to_string(),
                stream(
                    Some(100),
                    &[("2026-11-21T09", 100), ("2026-11-21T10", 100)],
                    0,
                ),
            ),
            (
                "ch2".to_string(),
                stream(None, &[("2026-11-21T10", 100)], 0),
            ),
        ]);
        // ch1's own cap takes its 09; the total (100) then takes the
        // oldest left: ch1's 10 before ch2's 10 (by name).
        let going = plan(&streams, Some(100));
        assert_eq!(going["ch1"], [hour("2026-11-21T09"), hour("2026-11-21T10")]);
        assert!(!going.contains_key("ch2"));
    }

    #[test]
    fn a_stream_no_longer_archived_counts_but_the_others_give_way() {
        let sizes = Sizes::new(Some(150));
        let gone = sizes.open("ch1", None, BTreeMap::from([(hour("2026-11-21T09"), 100)]));
        drop(gone);
        let mut ch2 = sizes.open("ch2", None, BTreeMap::from([(hour("2026-11-21T10"), 100)]));
        assert_eq!(sizes.enforce(), 1);
        assert_eq!(ch2.try_recv().unwrap(), [hour("2026-11-21T10")]);
    }

    #[test]
    fn enforce_asks_each_stream_by_its_mailbox_once() {
        let sizes = Sizes::new(Some(100));
        let closed = BTreeMap::from([(hour("2026-11-21T09"), 100)]);
        let mut ch1 = sizes.open("ch1", None, closed);
        sizes.grew("ch1", 50);
        assert_eq!(sizes.enforce(), 1);
        assert_eq!(ch1.try_recv().unwrap(), [hour("2026-11-21T09")]);
        assert_eq!(sizes.enforce(), 0, "pending: not asked again");
        sizes.settled("ch1", &[], &[hour("2026-11-21T09")]);
        assert_eq!(sizes.enforce(), 0, "held");
        sizes.closed("ch1", hour("2026-11-21T10"), 50);
        assert_eq!(sizes.enforce(), 1, "holds are asked again as hours close");
    }
}
