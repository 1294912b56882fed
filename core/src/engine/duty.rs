//! A stream's archive under a cluster. Every node the stream is placed on
//! records it. The owner publishes: each segment is stored, then committed
//! in etcd by a transaction fenced by its claim, then listed. A standby
//! keeps the newest segments in memory; when it becomes the owner it
//! continues exactly after the last commit: what it holds from before is
//! dropped, and its segments are placed on the timeline the commits carry
//! (the first owner's clock), not on its own.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hlsvault_cluster::{Claim, Claimed, ClusterError, Membership};
use hlsvault_hls::GapCause;
use hlsvault_ts::clock::pts_diff;
use serde::{Deserialize, Serialize};

use super::archive::{unix_ms, Stored, StreamArchive};
use super::fenced::FencedStore;
use super::growing::Finished;
use super::node::{tick, Node};
use super::plugins::plugins_of;
use super::publish::Publish;
use crate::figures::Role;

/// A PTS within this of where the last commit ended continues it.
const SAME_POINT: i64 = 90;
/// Farther than this from the last commit's end, a segment is not placed
/// on the commits' timeline (the stream's clock jumped).
const TIMELINE_REACH: i64 = 10 * 60 * 90_000;

/// What an owner commits for each segment: enough for the next owner to
/// list it (if the committer could not) and to continue after it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Committed {
    /// Its place in the media sequence.
    pub sequence: u64,
    /// Its name in its hour's folder.
    pub name: String,
    /// Its start, in ms since the Unix epoch.
    pub start_ms: u64,
    /// Its duration, in 90 kHz ticks.
    pub duration: u64,
    /// Its first PTS.
    pub pts: u64,
    /// Why the timeline broke before it, if it did.
    pub gap: Option<String>,
    /// The node that committed it.
    pub node: String,
}

impl Committed {
    fn of(stored: &Stored, pts: u64, node: &str) -> Self {
        Committed {
            sequence: stored.sequence,
            name: stored.name.clone(),
            start_ms: unix_ms(stored.start),
            duration: stored.duration,
            pts,
            gap: stored.gap.map(|g| g.as_str().to_string()),
            node: node.to_string(),
        }
    }

    fn stored(&self) -> Stored {
        Stored::committed(
            self.sequence,
            self.name.clone(),
            UNIX_EPOCH + Duration::from_millis(self.start_ms),
            self.duration,
            self.gap.as_deref().and_then(GapCause::parse),
        )
    }

    /// Where it ends: on the stream's clock, and on the archive's.
    fn end(&self) -> Mark {
        Mark {
            pts: (self.pts + self.duration) % (1 << 33),
            at: UNIX_EPOCH
                + Duration::from_millis(self.start_ms)
                + Duration::from_micros(self.duration * 100 / 9),
        }
    }
}

/// A point of the stream's clock and where the archive places it.
#[derive(Debug, Clone, Copy)]
struct Mark {
    pts: u64,
    at: SystemTime,
}

impl Mark {
    /// Where `pts` falls on the archive's timeline, if it is close enough
    /// to be on it.
    fn place(&self, pts: u64) -> Option<SystemTime> {
        let d = pts_diff(pts, self.pts);
        let shift = Duration::from_micros(d.unsigned_abs() * 100 / 9);
        match d.abs() < TIMELINE_REACH {
            true if d >= 0 => Some(self.at + shift),
            true => Some(self.at - shift),
            false => None,
        }
    }
}

/// The stream while this node owns it.
struct Owned {
    claim: Claim,
    membership: Arc<Membership>,
    archive: StreamArchive,
    /// Where the last commit ended.
    end: Option<Mark>,
    /// The next segment is the first since the takeover: it must start
    /// where the last commit ended.
    joining: bool,
    /// The archive's timeline minus this node's clock, from the last
    /// segment placed on it: a segment after a break is placed by the
    /// clock, shifted by it.
    offset: Option<(SystemTime, SystemTime)>,
}

/// One stream's duty on this node.
struct Duty<'a> {
    publish: &'a Publish,
    node: Arc<Node>,
    /// The newest segments not published, oldest first.
    buffer: VecDeque<Finished>,
    /// How many it keeps while standing by.
    bound: usize,
    owned: Option<Owned>,
    /// The lease under which this node said it is ready.
    ready: Option<i64>,
}

/// Runs the stream's duty until its segments end; then an owner publishes
/// what it holds (but a last, cut-short segment a ready standby holds
/// whole) and gives the stream up.
pub(super) async fn run(
    publish: &Publish,
    node: Arc<Node>,
    rx: &mut tokio::sync::mpsc::Receiver<Finished>,
) {
    let segment = publish.cfg.segment_duration.max(Duration::from_millis(100));
    // The gap a takeover can leave: the lease, a read of the placement,
    // and a claim, with room.
    let covered = node.settings.lease * 2 + Duration::from_secs(10);
    let mut duty = Duty {
        publish,
        bound: (covered.as_secs_f64() / segment.as_secs_f64()).ceil() as usize + 2,
        node,
        buffer: VecDeque::new(),
        owned: None,
        ready: None,
    };
    let mut tick = tokio::time::interval(tick(duty.node.settings.lease));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            seg = rx.recv() => match seg {
                Some(seg) => duty.buffer.push_back(seg),
                None => break,
            },
            _ = tick.tick() => {}
        }
        duty.step().await;
    }
    duty.finish().await;
}

impl Duty<'_> {
    fn stream(&self) -> &str {
        &self.publish.cfg.name
    }

    async fn step(&mut self) {
        if self.owned.as_ref().is_some_and(|o| !o.membership.alive()) {
            tracing::warn!("this node's cluster lease may have expired: it stops publishing the stream (another node takes it over)");
            self.publish.stats.cluster.fenced();
            self.owned = None;
        }
        if self.owned.is_some() {
            self.publish_buffered().await;
        }
        let placed = self.node.placed();
        let me = self.node.name().to_string();
        if self.owned.is_some() && self.buffer.is_empty() {
            // At a segment boundary: hand over to the node the placement
            // prefers, once it records the stream too.
            if let Some(next) = placed.owner(self.stream()) {
                if next != me && placed.ready(self.stream(), next) {
                    self.give_up("handed over", Some(next.to_string())).await;
                }
            }
        }
        if self.owned.is_none() {
            self.stand_by().await;
            let owner = placed.owner(self.stream());
            let standby = placed
                .placements
                .get(self.stream())
                .and_then(|p| p.standby.as_deref());
            let ready = |n: Option<&str>| n.is_some_and(|n| placed.ready(self.stream(), n));
            // Whoever is ready takes an unowned stream: the preferred
            // owner, else the standby (the owner gets it at a boundary
            // once it is ready).
            let mine = match (owner == Some(&me), standby == Some(&me)) {
                (true, _) => ready(Some(&me)) || !ready(standby),
                (false, true) => ready(Some(&me)) && !ready(owner),
                _ => false,
            };
            if mine && placed.current_owner(self.stream()).is_none() {
                self.take_over().await;
                if self.owned.is_some() {
                    self.publish_buffered().await;
                }
            }
        }
        let figures = &self.publish.stats.cluster;
        figures.set_role(match self.owned {
            Some(_) => Role::Owner,
            None => Role::Standby,
        });
        figures.set_buffered(self.buffer.len());
    }

    /// Standing by: keeps the newest segments only, and says it is ready
    /// once it holds one.
    async fn stand_by(&mut self) {
        while self.buffer.len() > self.bound {
            self.buffer.pop_front();
        }
        let Some(m) = self.node.membership() else {
            return;
        };
        if self.buffer.is_empty() || self.ready == Some(m.lease()) || !m.alive() {
            return;
        }
        match m.mark_ready(&self.node.keys, self.stream(), true).await {
            Ok(()) => self.ready = Some(m.lease()),
            Err(e) => tracing::warn!(error = %e, "cannot tell the cluster this node is ready"),
        }
    }

    /// Claims the stream, reads what its owners committed, and opens its
    /// archive from the store, to go on after the last commit.
    async fn take_over(&mut self) {
        let Some(m) = self.node.membership().filter(|m| m.alive()) else {
            return;
        };
        let keys = &self.node.keys;
        let claim = match m.claim(keys, self.stream()).await {
            Ok(Claimed::Held(claim)) => claim,
            Ok(Claimed::Taken { .. }) => return,
            Err(e) => return tracing::warn!(error = %e, "cannot claim the stream"),
        };
        let owned = async {
            let last = match m.progress(keys, self.stream()).await? {
                Some(text) => Some(serde_json::from_str::<Committed>(&text)?),
                None => None,
            };
            let publish = self.publish;
            let store = Arc::new(FencedStore::new(publish.store.clone(), m.clone()));
            let plugins = plugins_of(&publish.settings.plugins, &publish.cfg);
            let mut archive = StreamArchive::open(
                store,
                self.stream(),
                publish.settings.clone(),
                publish.stats.clone(),
                plugins,
            )
            .await?;
            if let Some(last) = &last {
                archive.continue_after(last.stored()).await?;
            }
            anyhow::Ok((archive, last))
        };
        match owned.await {
            Ok((archive, last)) => {
                match &last {
                    Some(c) => {
                        tracing::info!(after = c.sequence, by = %c.node, buffered = self.buffer.len(), "took the stream over: publishing after the last commit")
                    }
                    None => tracing::info!("took the stream over: nothing was committed before"),
                }
                self.publish.stats.cluster.took_over();
                self.owned = Some(Owned {
                    claim,
                    membership: m,
                    archive,
                    end: last.as_ref().map(Committed::end),
                    joining: last.is_some(),
                    offset: None,
                });
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot take the stream over; giving the claim back");
                if let Err(e) = m.release(claim).await {
                    tracing::warn!(error = %e, "cannot give the claim back; it goes with the lease");
                }
            }
        }
    }

    /// Publishes the buffered segments in order: stored, committed, listed.
    /// A failure gives the stream up (the fence: to nobody; the store: to
    /// the standby, which holds what was not committed).
    async fn publish_buffered(&mut self) {
        while let Some(mut seg) = self.buffer.pop_front() {
            let Some(owned) = self.owned.as_mut() else {
                self.buffer.push_front(seg);
                return;
            };
            if !owned.place(&mut seg) {
                continue;
            }
            let pts = seg.segment.pts;
            let stored = match owned.archive.store_segment(seg).await {
                Ok(Some(stored)) => stored,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "the store refused a segment: giving the stream up to a node that can store it");
                    return self.give_up("the store failed", None).await;
                }
            };
            let committed = Committed::of(&stored, pts, self.node.name());
            let text = serde_json::to_string(&committed).expect("a commit serialises");
            match owned.membership.commit(&owned.claim, &text).await {
                Ok(()) => {}
                Err(e @ ClusterError::Fenced { .. }) => {
                    tracing::warn!(error = %e, "the commit was fenced off: another node owns the stream now");
                    self.publish.stats.cluster.fenced();
                    self.owned = None;
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot commit a segment: giving the stream up");
                    return self.give_up("etcd failed", None).await;
                }
            }
            owned.end = Some(committed.end());
            if let Err(e) = owned.archive.list(stored).await {
                tracing::error!(error = %e, "cannot list a committed segment: giving the stream up (the next owner lists it)");
                return self.give_up("the store failed", None).await;
            }
        }
    }

    /// Stops owning the stream: the playlists flushed (when handing over),
    /// the claim given back for another node to take.
    async fn give_up(&mut self, why: &str, to: Option<String>) {
        let Some(mut owned) = self.owned.take() else {
            return;
        };
        if to.is_some() {
            if let Err(e) = owned.archive.finish(false).await {
                tracing::warn!(error = %e, "cannot flush the playlists before handing over");
            }
        }
        tracing::info!(why, to = ?to, "giving the stream up");
        if let Err(e) = owned.membership.release(owned.claim).await {
            tracing::warn!(error = %e, "cannot give the claim back; it goes with the lease");
        }
    }

    /// The stream's segments have ended here (a stop, or it moved away).
    async fn finish(mut self) {
        if self.owned.is_some() {
            let placed = self.node.placed();
            let standby = placed
                .placements
                .get(self.stream())
                .and_then(|p| p.standby.clone())
                .filter(|s| s != self.node.name() && placed.ready(self.stream(), s));
            if standby.is_some() && self.publish.stop.load(Ordering::Relaxed) {
                // The last segment was cut short by the stop; the standby
                // holds it whole.
                self.buffer.pop_back();
            }
            self.publish_buffered().await;
            self.give_up("the stream stopped here", standby).await;
        }
        if let (Some(m), Some(_)) = (self.node.membership(), self.ready) {
            if let Err(e) = m.mark_ready(&self.node.keys, self.stream(), false).await {
                tracing::warn!(error = %e, "cannot tell the cluster this node no longer records the stream");
            }
        }
    }
}

impl Owned {
    /// Places a segment on the archive's timeline; false if it was
    /// published by the previous owner already (it is dropped).
    fn place(&mut self, seg: &mut Finished) -> bool {
        let s = &mut seg.segment;
        let local = s.start;
        if let Some(end) = self.end {
            let d = pts_diff(s.pts, end.pts);
            if std::mem::take(&mut self.joining) {
                if d < -SAME_POINT {
                    tracing::debug!(
                        pts = s.pts,
                        "dropping a segment the previous owner published"
                    );
                    self.joining = true;
                    return false;
                }
                if d <= SAME_POINT {
                    // It goes on from the last commit: whatever broke
                    // before it on this node (its start) is not a break in
                    // the archive.
                    s.discontinuity = None;
                } else {
                    tracing::warn!(
                        missing = %humantime::format_duration(Duration::from_millis(d as u64 / 90)),
                        "this node had not buffered all the previous owner left unpublished"
                    );
                    self.archive.mark_gap(GapCause::Takeover);
                }
            }
            match (s.discontinuity, end.place(s.pts)) {
                (None, Some(at)) => s.start = at,
                // After a break, by this node's clock, shifted as the
                // timeline was.
                _ => {
                    if let Some((timeline, clock)) = self.offset {
                        s.start = match timeline >= clock {
                            true => local + timeline.duration_since(clock).unwrap_or_default(),
                            false => local - clock.duration_since(timeline).unwrap_or_default(),
                        };
                    }
                }
            }
        }
        self.offset = Some((s.start, local));
        true
    }
}
