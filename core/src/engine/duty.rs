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
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

    /// When it ends, on the archive's timeline.
    pub fn ends_at(&self) -> SystemTime {
        self.end().at
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
    /// How many it keeps while it does not publish.
    bound: usize,
    owned: Option<Owned>,
    /// The owner's lease is past its deadline by this node's clock, but
    /// etcd has not said it is gone: nothing is published until a renewal
    /// comes (or the lease is known gone).
    paused: bool,
    /// The lease under which this node said it is ready.
    ready: Option<i64>,
    /// When the last segment came (None before the first).
    last_segment: Option<Instant>,
    /// The first PTS of the first segment that came.
    first_pts: Option<u64>,
    /// Silence longer than this: the source is lost here.
    stall: Duration,
    /// After resigning, this node does not say it is ready before then.
    cool_down: Option<Instant>,
    /// The next cool-down's length (doubling while resignations repeat).
    backoff: Duration,
}

/// Runs the stream's duty until its segments end; then an owner publishes
/// what it holds (unless it stops and a ready standby holds it whole) and
/// gives the stream up.
pub(super) async fn run(
    publish: &Publish,
    node: Arc<Node>,
    rx: &mut tokio::sync::mpsc::Receiver<Finished>,
) {
    let segment = publish.cfg.segment_duration.max(Duration::from_millis(100));
    let lease = node.settings.lease;
    // The gap a takeover can leave: the lease, a read of the placement,
    // and a claim, with room.
    let covered = lease * 2 + Duration::from_secs(10);
    let mut duty = Duty {
        publish,
        bound: (covered.as_secs_f64() / segment.as_secs_f64()).ceil() as usize + 2,
        node,
        buffer: VecDeque::new(),
        owned: None,
        paused: false,
        ready: None,
        last_segment: None,
        first_pts: None,
        stall: (segment * 3).max(lease * 2),
        cool_down: None,
        backoff: lease * 3,
    };
    let mut tick = tokio::time::interval(tick(lease));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            seg = rx.recv() => match seg {
                Some(seg) => {
                    duty.first_pts.get_or_insert(seg.segment.pts);
                    duty.buffer.push_back(seg);
                    duty.last_segment = Some(Instant::now());
                }
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
        self.check_lease();
        if self.owned.is_some() && !self.paused {
            if !self.receiving() {
                tracing::warn!(silent = %humantime::format_duration(self.stall), "the source is lost on this node: giving the stream up to a node that receives it");
                self.resign("the source stalled here").await;
            } else {
                self.publish_buffered().await;
            }
        }
        let placed = self.node.placed();
        let me = self.node.name().to_string();
        if self.owned.is_some() && !self.paused && self.buffer.is_empty() {
            // At a segment boundary: hand over to the node the placement
            // prefers, once it records the stream too.
            if let Some(next) = placed.owner(self.stream()) {
                if next != me && placed.ready(self.stream(), next) {
                    self.give_up("handed over", Some(next.to_string())).await;
                }
            }
        }
        if self.owned.is_none() || self.paused {
            // Another node publishes what falls out; with no owner at all
            // it is lost (counted).
            let orphaned = placed.current_owner(self.stream()).is_none();
            let excess = self.buffer.len().saturating_sub(self.bound);
            self.buffer.drain(..excess);
            if orphaned && excess > 0 {
                tracing::warn!(
                    segments = excess,
                    "no node publishes the stream and this one holds no more: segments lost"
                );
                (0..excess).for_each(|_| self.publish.stats.lost_segment());
            }
        }
        if self.owned.is_none() {
            self.say_ready().await;
            let owner = placed.owner(self.stream());
            let standby = placed
                .placements
                .get(self.stream())
                .and_then(|p| p.standby.as_deref());
            let lease = self.node.membership().map(|m| m.lease());
            let ready = |n: Option<&str>| match n {
                Some(n) if n == me => self.ready.is_some() && self.ready == lease,
                Some(n) => placed.ready(self.stream(), n),
                None => false,
            };
            // Whoever is ready takes an unowned stream: the preferred
            // owner, else the standby (the owner gets it at a boundary
            // once it is ready).
            let mine = match (owner == Some(&me), standby == Some(&me)) {
                (true, _) => self.receiving() && (ready(Some(&me)) || !ready(standby)),
                (false, true) => ready(Some(&me)) && !ready(owner),
                _ => false,
            };
            // (A claim of this node's own, left from before a pause, is
            // taken up again.)
            let unowned = placed.current_owner(self.stream()).is_none_or(|o| o == me);
            if mine && unowned {
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

    /// An owner whose lease is past its deadline by its own clock pauses;
    /// once etcd says the lease is gone, the stream is no longer its own.
    fn check_lease(&mut self) {
        let Some(owned) = &self.owned else {
            self.paused = false;
            return;
        };
        match owned.membership.alive_until() {
            None => {
                tracing::warn!(
                    "this node's cluster lease expired: another node takes the stream over"
                );
                self.publish.stats.cluster.fenced();
                self.owned = None;
                self.paused = false;
            }
            Some(until) if Instant::now() >= until => {
                if !self.paused {
                    tracing::warn!("this node cannot renew its cluster lease: it publishes nothing until it can (another node takes the stream over if the lease expires)");
                    self.publish.stats.cluster.fenced();
                    self.paused = true;
                }
            }
            Some(_) => {
                if std::mem::take(&mut self.paused) {
                    tracing::info!("the cluster lease was renewed: publishing again");
                }
            }
        }
    }

    /// Whether segments come here now (one came within the stall time).
    fn receiving(&self) -> bool {
        self.last_segment.is_some_and(|t| t.elapsed() <= self.stall)
    }

    /// Says this node could take the stream over: it receives it now (a
    /// segment came lately), outside a cool-down.
    async fn say_ready(&mut self) {
        let Some(m) = self.node.membership() else {
            return;
        };
        let cooling = self.cool_down.is_some_and(|t| Instant::now() < t);
        let want = self.receiving() && !self.buffer.is_empty() && !cooling && m.alive();
        if want == (self.ready == Some(m.lease())) {
            return;
        }
        match m.mark_ready(&self.node.keys, self.stream(), want).await {
            Ok(()) => self.ready = want.then_some(m.lease()),
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell the cluster whether this node is ready")
            }
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
            archive.keep_refused_segments();
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
                self.start_cool_down().await;
            }
        }
    }

    /// Publishes the buffered segments in order: stored, committed, listed.
    /// A store that fails gives the stream up to a node that can store it
    /// (the segment stays here meanwhile); a fenced commit means another
    /// node owns the stream.
    async fn publish_buffered(&mut self) {
        while let Some(mut seg) = self.buffer.pop_front() {
            let Some(owned) = self.owned.as_mut() else {
                self.buffer.push_front(seg);
                return;
            };
            let first_here = self.first_pts == Some(seg.segment.pts);
            if !owned.place(&mut seg, first_here) {
                continue;
            }
            let pts = seg.segment.pts;
            // Kept until stored: a store that fails must not lose it.
            let copy = Finished::in_memory(seg.segment.clone());
            let stored = match owned.archive.store_segment(seg).await {
                Ok(Some(stored)) => stored,
                Ok(None) => continue,
                Err(e) => {
                    // Kept, for this node or the next owner to store.
                    self.buffer.push_front(copy);
                    if !e.is_store_failure() {
                        // The fence, not the store: the lease decides.
                        return self.give_up("the cluster lease may expire", None).await;
                    }
                    tracing::error!(error = %e, "the store refused a segment: giving the stream up to a node that can store it");
                    return self.resign("the store failed").await;
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
                    self.buffer.push_front(copy);
                    return self.resign("etcd failed").await;
                }
            }
            owned.end = Some(committed.end());
            if let Err(e) = owned.archive.list(stored).await {
                if !e.is_store_failure() {
                    // Its lease may expire: the listing waits for a
                    // renewal here, or for the next owner.
                    return self.check_lease();
                }
                tracing::error!(error = %e, "cannot list a committed segment: giving the stream up (the next owner lists it)");
                return self.resign("the store failed").await;
            }
            self.backoff = self.node.settings.lease * 3;
        }
    }

    /// Gives the stream up and says this node is not ready for a while
    /// (longer each time in a row), so that another node takes it.
    async fn resign(&mut self, why: &str) {
        self.give_up(why, None).await;
        self.start_cool_down().await;
    }

    async fn start_cool_down(&mut self) {
        self.cool_down = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(Duration::from_secs(120));
        self.say_ready().await;
    }

    /// Stops owning the stream: the playlists flushed (when handing over),
    /// the claim given back for another node to take.
    async fn give_up(&mut self, why: &str, to: Option<String>) {
        let Some(mut owned) = self.owned.take() else {
            return;
        };
        self.paused = false;
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
        if self.owned.is_some() && !self.paused {
            let placed = self.node.placed();
            let standby = placed
                .placements
                .get(self.stream())
                .and_then(|p| p.standby.clone())
                .filter(|s| s != self.node.name() && placed.ready(self.stream(), s));
            if standby.is_some() && self.publish.stop.load(Ordering::Relaxed) {
                // What the stop flushed may be cut short (the newest
                // frames dropped); the standby holds it whole.
                self.buffer.clear();
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
    /// `first_here`: it is the first this node received.
    fn place(&mut self, seg: &mut Finished, first_here: bool) -> bool {
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
                    let missing = humantime::format_duration(Duration::from_millis(d as u64 / 90));
                    let cause = match first_here {
                        // Nobody recorded the gap: not this node either.
                        true => GapCause::Restart,
                        false => GapCause::Takeover,
                    };
                    tracing::warn!(%missing, cause = cause.as_str(), "the stream goes on after a gap since the last commit");
                    self.archive.mark_gap(cause);
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
