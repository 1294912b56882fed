//! Writes one stream's segments and playlists to the store, in order: a
//! playlist is written only after every segment it lists is stored.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::growing::Finished;
use super::hours::{signed_by, HourPublisher};
use super::sizes::{Deletions, Sizes};
use crate::figures::StreamStats;
use crate::ranges::{hour_bytes, hour_sizes, DayIndexes};
use hlsvault_hls::Urls;
use hlsvault_hls::{Entry, GapCause, Hour, Kind, Layout, MarkerStyle, Markers, Playlist};
use hlsvault_plugin::host::{MarkerInfo, MarkerKind, PlaylistKind, SegmentInfo};
use hlsvault_plugin::{Named, StreamPlugins};
use hlsvault_store::{ObjectKind, ObjectStore, StoreError};

/// A grown segment's file while the archive stores it: removed if it is
/// not stored (it is taken over once it is).
struct GrownFile(Option<PathBuf>);

impl Drop for GrownFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            // Only when the segment is lost: one unlink, rare.
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The open hour: its number and playlist.
struct OpenHour {
    hour: Hour,
    playlist: Playlist,
    /// The store has been asked whether it already holds this hour's
    /// playlist (and any entries it held are in `playlist`). Until then
    /// the playlist is not written: it could overwrite entries of an
    /// earlier run.
    verified: bool,
    /// The bytes of its segments (with those of an earlier run it goes on
    /// from, listed as it went on).
    bytes: u64,
    /// It went on from entries an earlier run stored, whose bytes could
    /// not be listed then: listed as it closes instead.
    continued: bool,
}

/// How a stream's archive is kept.
#[derive(Debug, Clone)]
pub struct ArchiveSettings {
    /// The target duration, rounded, for `#EXT-X-TARGETDURATION`.
    pub target_secs: u64,
    /// Entries in `live.m3u8`.
    pub window: usize,
    /// How hours are handed out.
    pub urls: Urls,
    /// Hours older than this are deleted.
    pub retention: Option<Duration>,
    /// The oldest unheld hours are deleted while the stream holds more.
    pub retention_size: Option<u64>,
    /// The run's archive sizes (retention by size, across streams).
    pub sizes: Arc<Sizes>,
    /// How long handed-out URLs stay valid.
    pub url_expiry: Duration,
    /// The stream's plugins (it calls their segment namer, playlist policy
    /// and URL signer hooks).
    pub plugins: Vec<Arc<hlsvault_plugin::Slot>>,
    /// The tags SCTE-35 markers become.
    pub markers: MarkerStyle,
}

/// One stream's archive in the store.
pub struct StreamArchive {
    store: Arc<dyn ObjectStore>,
    layout: Layout,
    target_secs: u64,
    stats: Arc<StreamStats>,
    hour: Option<OpenHour>,
    /// Closed hours whose playlist could not be read back yet (the store
    /// was down): written once it can be.
    unwritten: Vec<OpenHour>,
    live: Playlist,
    hours: HourPublisher,
    retention: Option<Duration>,
    /// The hour of the last retention sweep.
    swept: Option<Hour>,
    /// The run's archive sizes; None when no size is capped.
    sizes: Option<Arc<Sizes>>,
    /// What retention by size asks this stream to delete (taken by the
    /// task that drives the archive).
    deletions: Option<Deletions>,
    next_sequence: u64,
    /// The next entry follows a restart or a lost segment: mark it, with
    /// the first such cause.
    gap: Option<GapCause>,
    /// The stream's segment namer, playlist policy and URL signer plugins
    /// (behind a lock only so that the archive is Sync; calls are quick and
    /// never span an await).
    plugins: std::sync::Mutex<StreamPlugins>,
    /// How long handed-out URLs stay valid (what a signer is told).
    url_expiry: Duration,
    /// SCTE-35 markers to tags (pairing each break's in with its out).
    markers: Markers,
    /// Closed hours' runs, by day (what the ranges read).
    days: DayIndexes,
    /// A segment the store refuses stays with the caller (a cluster's
    /// owner gives it back to its buffer): not counted lost.
    refused_kept: bool,
}

impl StreamArchive {
    /// Opens the stream's archive, continuing from what the store holds: the
    /// live window and the media sequence carry on after a restart.
    pub async fn open(
        store: Arc<dyn ObjectStore>,
        stream: &str,
        settings: ArchiveSettings,
        stats: Arc<StreamStats>,
        plugins: StreamPlugins,
    ) -> Result<Self, StoreError> {
        let mut plugins = plugins;
        let ArchiveSettings {
            target_secs,
            window,
            urls,
            retention,
            retention_size,
            sizes,
            url_expiry,
            plugins: _,
            markers,
        } = settings;
        let layout = Layout::new(stream);
        let mut live = Playlist::new(Kind::Window(window), target_secs);
        if let Some(text) = store.get(&layout.live_key()).await? {
            match Playlist::parse(Kind::Window(window), &String::from_utf8_lossy(&text)) {
                Ok(p) => live = p,
                Err(e) => {
                    tracing::warn!(key = layout.live_key(), error = %e, "cannot read the live playlist back; starting a new window")
                }
            }
        }
        let hours = HourPublisher::open(store.clone(), layout.clone(), urls).await?;
        let next_sequence = live.last().map_or(0, |e| e.sequence + 1);
        live.set_header_tags(plugins.header_tags(PlaylistKind::Live));
        let days = DayIndexes::new(store.clone(), layout.clone());
        // Sizes only when a size is capped: reading them costs a read a
        // day of archive (and a listing for each hour not sized yet).
        let (sizes, deletions) = match sizes.wanted(retention_size) {
            true => {
                let closed = hour_sizes(store.as_ref(), &layout, &hours.hours()).await?;
                let deletions = sizes.open(stream, retention_size, closed);
                (Some(sizes), Some(deletions))
            }
            false => (None, None),
        };
        Ok(StreamArchive {
            store,
            layout,
            target_secs,
            stats,
            hour: None,
            unwritten: Vec::new(),
            gap: live.last().map(|_| GapCause::Restart),
            live,
            hours,
            retention,
            swept: None,
            sizes,
            deletions,
            next_sequence,
            plugins: std::sync::Mutex::new(plugins),
            url_expiry,
            markers: Markers::new(markers),
            days,
            refused_kept: false,
        })
    }

    /// From now on a segment the store refuses is the caller's to keep
    /// (it is not counted lost).
    pub fn keep_refused_segments(&mut self) {
        self.refused_kept = true;
    }

    /// What retention by size will ask this stream to delete, for the
    /// task that drives the archive to hand to [`Self::delete_by_size`].
    pub fn deletions(&mut self) -> Option<Deletions> {
        self.deletions.take()
    }

    /// Asks the ledger what the size caps want gone now (each stream's
    /// share comes by its mailbox).
    pub fn enforce_sizes(&self) {
        if let Some(sizes) = &self.sizes {
            sizes.enforce();
        }
    }

    fn plugins(&self) -> std::sync::MutexGuard<'_, StreamPlugins> {
        self.plugins.lock().expect("plugins lock")
    }

    /// The next entry follows a gap (what came before it is not the
    /// stream that went on to it): it is marked as a discontinuity, with
    /// the gap's cause unless one is noted already.
    pub fn mark_gap(&mut self, cause: GapCause) {
        self.gap.get_or_insert(cause);
    }

    /// Stores a segment and updates the hour's playlist and the live window.
    /// A segment that grew on disk is handed to the store as its file (the
    /// file is removed if it cannot be stored).
    pub async fn add(&mut self, finished: Finished) -> Result<(), StoreError> {
        match self.store_segment(finished).await? {
            Some(stored) => self.list(stored).await,
            None => Ok(()),
        }
    }

    /// Names and stores a segment, without listing it (see [`Self::list`]):
    /// None if a namer plugin dropped it. A cluster's owner commits it in
    /// between.
    pub async fn store_segment(
        &mut self,
        finished: Finished,
    ) -> Result<Option<Stored>, StoreError> {
        let Finished {
            segment: seg,
            file,
            size: bytes,
        } = finished;
        let mut file = GrownFile(file);
        self.plugins().segment_boundary();
        let hour = seg.hour();
        if let Err(e) = self.enter_hour(hour).await {
            if !self.refused_kept {
                self.stats.lost_segment();
            }
            self.mark_gap(GapCause::StoreOutage);
            return Err(e);
        }
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let default_name = Layout::segment_name(sequence, seg.start);
        let info = SegmentInfo {
            stream_name: self.layout.stream().to_string(),
            sequence,
            start_ms: unix_ms(seg.start),
            duration_ms: (seg.duration / 90) as u32,
            discontinuity: seg.discontinuity.is_some() || self.gap.is_some(),
            default_name,
        };
        let open = self.hour.as_ref().map(|h| &h.playlist);
        let taken = |name: &str| open.is_some_and(|p| p.entries().any(|e| e.uri == name));
        let named = self
            .plugins
            .lock()
            .expect("plugins lock")
            .segment_name(&info, taken);
        let name = match named {
            Named::Default => info.default_name.clone(),
            Named::Plugin(name) => name,
            Named::Dropped => {
                // Fail-closed namer: the segment is not stored (counted).
                self.stats.plugin_dropped_segment();
                self.mark_gap(GapCause::PluginDropped);
                return Ok(None);
            }
        };
        let key = self.layout.segment_key(hour, &name);
        let (duration, start, discontinuity) = (seg.duration, seg.start, seg.discontinuity);
        self.stats.markers(seg.markers.len() as u64);
        let marker_tags: Vec<String> = seg
            .markers
            .iter()
            .filter_map(|p| self.markers.tag(p.marker.cue, p.at, &p.marker.section))
            .collect();
        let markers = marker_tags.len();
        let marker_infos: Vec<MarkerInfo> = seg.markers.iter().map(marker_info).collect();
        let stored = match &file.0 {
            Some(path) => {
                let adopted = self
                    .store
                    .adopt_file(&key, path.clone(), ObjectKind::Segment);
                let result = adopted.await;
                match &result {
                    Ok(()) => file.0 = None,
                    Err(e) => self.store_failed(e, true),
                }
                result
            }
            None => {
                self.put(&key, Bytes::from(seg.data), ObjectKind::Segment)
                    .await
            }
        };
        if let Err(e) = stored {
            // The playlists never list a segment that is not stored.
            self.mark_gap(GapCause::StoreOutage);
            return Err(e);
        }
        self.stats.segment(bytes, duration);
        if let Some(open) = self.hour.as_mut() {
            open.bytes += bytes as u64;
        }
        if let Some(sizes) = &self.sizes {
            sizes.grew(self.layout.stream(), bytes as u64);
        }
        self.enforce_sizes();
        // Markers before the plugins' tags, in the hour and the window.
        let mut tags = marker_tags;
        tags.extend(
            self.plugins()
                .entry_tags(&info, &marker_infos, PlaylistKind::Hour),
        );
        let mut live_tags: Vec<String> = tags[..markers].to_vec();
        live_tags.extend(
            self.plugins()
                .entry_tags(&info, &marker_infos, PlaylistKind::Live),
        );
        Ok(Some(Stored {
            sequence,
            name,
            start,
            duration,
            gap: self.gap.take().or(discontinuity.map(GapCause::from)),
            tags,
            live_tags,
        }))
    }

    /// Lists a stored segment in its hour's playlist and the live window,
    /// and writes them. A playlist whose last entry is it, or a later one,
    /// already lists it (a cluster's new owner lists what the old one
    /// committed, in case it could not).
    pub async fn list(&mut self, stored: Stored) -> Result<(), StoreError> {
        let hour = Hour::of(stored.start);
        self.enter_hour(hour).await?;
        self.write_unwritten(false).await?;
        self.verify_hour().await?;
        let entry = Entry {
            sequence: stored.sequence,
            uri: stored.name.clone(),
            duration: stored.duration,
            start: stored.start,
            discontinuity: stored.gap.is_some(),
            gap: stored.gap,
            tags: stored.tags,
        };
        let listed = |p: &Playlist| p.last().is_some_and(|e| e.sequence >= stored.sequence);
        let open = self.hour.as_mut().expect("an hour is open");
        if !listed(&open.playlist) {
            open.playlist.push(entry.clone());
        }
        if !listed(&self.live) {
            self.live.push(Entry {
                uri: Layout::live_uri(hour, &stored.name),
                tags: stored.live_tags,
                ..entry
            });
        }
        self.write_hour(false).await?;
        self.write_live().await
    }

    /// Goes on after `last`, the segment a cluster's previous owner of the
    /// stream committed last: the media sequence follows it, no gap is
    /// marked for the change of owner, and it is listed if the previous
    /// owner could not list it before it went.
    pub async fn continue_after(&mut self, last: Stored) -> Result<(), StoreError> {
        self.next_sequence = last.sequence + 1;
        let listed = self.list(last).await;
        // Read back, the hour goes on from the commit: no restart.
        self.gap = None;
        listed
    }

    /// Makes `hour` the open hour (closing the one before).
    async fn enter_hour(&mut self, hour: Hour) -> Result<(), StoreError> {
        if self.hour.as_ref().is_some_and(|h| h.hour == hour) {
            return Ok(());
        }
        self.close_hour().await?;
        self.open_hour(hour).await
    }

    /// Flushes the playlists. With `end`, the hour and the live window get
    /// `#EXT-X-ENDLIST` (the source has ended); without it they stay open
    /// for a restart to continue.
    pub async fn finish(&mut self, end: bool) -> Result<(), StoreError> {
        self.verify_hour().await?;
        if end {
            if let Some(open) = self.hour.take() {
                self.unwritten.push(open);
            }
            self.live.end();
        } else {
            self.write_hour(true).await?;
        }
        self.write_unwritten(true).await?;
        self.write_live().await
    }

    /// Stores an object; a failure is counted (as a lost segment for segments).
    async fn put(&self, key: &str, body: Bytes, kind: ObjectKind) -> Result<(), StoreError> {
        let result = self.store.put(key, body, kind).await;
        if let Err(e) = &result {
            self.store_failed(e, kind == ObjectKind::Segment);
        }
        result
    }

    /// Counts a failure of the store (a `segment` lost, unless the caller
    /// keeps what the store refuses); not the caller's own holding back.
    fn store_failed(&self, e: &StoreError, segment: bool) {
        if e.is_store_failure() {
            self.stats.store_error(segment && !self.refused_kept);
        }
    }

    /// Deletes the hours `retention` has done with, whole, by their folder
    /// (at most once an hour, as hours open). `now` is the hour opening.
    async fn sweep(&mut self, now: Hour) -> Result<(), StoreError> {
        let Some(keep) = self.retention else {
            return Ok(());
        };
        if self.swept.replace(now) == Some(now) {
            return Ok(());
        }
        let oldest_kept = now.before(keep.as_secs().div_ceil(3600) - 1);
        let expired: Vec<Hour> = self
            .hours
            .hours()
            .into_iter()
            .filter(|h| *h < oldest_kept)
            .collect();
        let (deleted, _) = self.delete_hours(&expired, "age").await?;
        if let Some(sizes) = &self.sizes {
            sizes.settled(self.layout.stream(), &deleted, &[]);
        }
        Ok(())
    }

    /// Deletes the hours retention by size asks for (oldest first), but
    /// those a hold keeps, and tells the ledger which went.
    pub async fn delete_by_size(&mut self, hours: Vec<Hour>) {
        let (deleted, held) = match self.delete_hours(&hours, "size").await {
            Ok(settled) => settled,
            Err(e) => {
                tracing::warn!(error = %e, "retention by size failed; trying again after the next segment");
                (Vec::new(), Vec::new())
            }
        };
        if let Some(sizes) = &self.sizes {
            // Not deleted nor held (the store failed): asked for again.
            let failed: Vec<Hour> = hours
                .iter()
                .filter(|h| !deleted.contains(h) && !held.contains(h))
                .copied()
                .collect();
            sizes.settled(self.layout.stream(), &deleted, &held);
            sizes.retry(self.layout.stream(), &failed);
            if !held.is_empty() {
                // The next oldest instead, now that these are known held.
                sizes.enforce();
            }
        }
    }

    /// Deletes `hours` whole, by their folder, but those a hold keeps (holds
    /// that cannot be read delete nothing); logs each with the bytes it
    /// freed. Returns the hours deleted and those held.
    async fn delete_hours(
        &mut self,
        hours: &[Hour],
        why: &str,
    ) -> Result<(Vec<Hour>, Vec<Hour>), StoreError> {
        if hours.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        // Read at every sweep: another process may have added a hold.
        let holds = match crate::holds::load(self.store.as_ref(), &self.layout).await {
            Ok(holds) => holds,
            Err(e) => {
                tracing::warn!(error = %e, "retention: the holds cannot be read; nothing deleted");
                return Ok((Vec::new(), Vec::new()));
            }
        };
        let (mut old, mut held) = (Vec::new(), Vec::new());
        for &hour in hours {
            match holds.keeping(hour) {
                Some(hold) => {
                    tracing::info!(hour = %hour, hold = hold.id, reason = %hold.reason, "retention: the hour is held; kept");
                    held.push(hour);
                }
                None => old.push(hour),
            }
        }
        if old.is_empty() {
            return Ok((old, held));
        }
        for &hour in &old {
            let keys = self
                .store
                .list(&format!("{}/", self.layout.hour_folder(hour)))
                .await?;
            for key in &keys {
                self.store.delete(&key.key).await?;
            }
            tracing::info!(
                hour = %hour,
                objects = keys.len(),
                bytes = keys.iter().map(|k| k.size).sum::<u64>(),
                by = why,
                "retention: deleted the hour"
            );
        }
        self.hours
            .forget(&old)
            .await
            .inspect_err(|e| self.store_failed(e, false))?;
        self.days.forget(&old, &self.hours.hours()).await?;
        Ok((old, held))
    }

    async fn open_hour(&mut self, hour: Hour) -> Result<(), StoreError> {
        if let Err(e) = self.sweep(hour).await {
            // Retention can wait for the next hour; the archive cannot.
            tracing::warn!(error = %e, "retention sweep failed; trying again next hour");
        }
        self.hour = Some(OpenHour {
            hour,
            playlist: Playlist::new(Kind::Event, self.target_secs),
            verified: false,
            bytes: 0,
            continued: false,
        });
        if let Some(sizes) = &self.sizes {
            sizes.opened(self.layout.stream(), hour);
        }
        self.verify_hour().await?;
        let tags = self.plugins().header_tags(PlaylistKind::Hour);
        if let Some(open) = self.hour.as_mut() {
            open.playlist.set_header_tags(tags);
        }
        Ok(())
    }

    /// Reads the open hour's playlist back from the store, once. While the
    /// store cannot be read, the hour's entries are kept here and the
    /// reading is tried again at the next segment: an outage of the store
    /// costs no segment, and nothing is overwritten.
    async fn verify_hour(&mut self) -> Result<(), StoreError> {
        let Some(mut open) = self.hour.take() else {
            return Ok(());
        };
        let result = self.verify(&mut open).await;
        self.hour = Some(open);
        result
    }

    /// Reads `open`'s playlist back from the store (see [`Self::verify_hour`]).
    async fn verify(&mut self, open: &mut OpenHour) -> Result<(), StoreError> {
        if open.verified {
            return Ok(());
        }
        let key = self.layout.hour_playlist_key(open.hour);
        let stored = match self.store.get(&key).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(%key, error = %e, "cannot read the hour's playlist back yet; its entries wait until it can be read");
                return Ok(());
            }
        };
        let ours = std::mem::replace(
            &mut open.playlist,
            Playlist::new(Kind::Event, self.target_secs),
        );
        let mut playlist = match stored {
            Some(text) => match Playlist::parse(Kind::Event, &String::from_utf8_lossy(&text)) {
                Ok(mut p) => {
                    tracing::info!(%key, entries = p.entries().count(), "continuing the hour's playlist from the store");
                    p.reopen();
                    if p.last().is_some() {
                        self.size_earlier_run(open, ours.entries().count() == 0)
                            .await;
                    }
                    self.mark_gap(GapCause::Restart);
                    if let Some(last) = p.last() {
                        self.next_sequence = self.next_sequence.max(last.sequence + 1);
                    }
                    p
                }
                Err(e) => {
                    // Never overwrite what we cannot read: keep it aside.
                    let aside = format!(
                        "{key}.unreadable-{}",
                        humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                    );
                    tracing::error!(%key, error = %e, %aside, "hour playlist in the store is unreadable; moving it aside");
                    self.put(&aside, text, ObjectKind::Index).await?;
                    Playlist::new(Kind::Event, self.target_secs)
                }
            },
            None => Playlist::new(Kind::Event, self.target_secs),
        };
        // Entries made while the store could not be read follow the stored
        // ones, after a discontinuity when there were stored ones.
        let mut first = playlist.last().is_some();
        for e in ours.entries() {
            let after_stored = std::mem::take(&mut first);
            playlist.push(Entry {
                discontinuity: e.discontinuity || after_stored,
                gap: e.gap.or(after_stored.then_some(GapCause::Restart)),
                ..e.clone()
            });
        }
        open.playlist = playlist;
        open.verified = true;
        Ok(())
    }

    async fn close_hour(&mut self) -> Result<(), StoreError> {
        if let Some(open) = self.hour.take() {
            self.unwritten.push(open);
        }
        self.write_unwritten(false).await
    }

    /// Writes the closed hours that can be: read back from the store, or
    /// all of them with `force` (at the end of the run: an hour the store
    /// never answered for is written as this run knows it).
    async fn write_unwritten(&mut self, force: bool) -> Result<(), StoreError> {
        for mut open in std::mem::take(&mut self.unwritten) {
            self.verify(&mut open).await?;
            if open.verified || force {
                if !open.verified {
                    tracing::warn!(hour = %open.hour, "the store never let the hour's playlist be read back; writing it as this run knows it");
                }
                open.playlist.end();
                let written = self
                    .write_playlist(&open, ObjectKind::ClosedPlaylist)
                    .await?;
                let bytes = self.closed_bytes(&open, written).await;
                if let Some(sizes) = &self.sizes {
                    let known = bytes.unwrap_or(open.bytes + written);
                    sizes.closed(self.layout.stream(), open.hour, known);
                }
                if let Err(e) = self.days.note(open.hour, &open.playlist, bytes).await {
                    // Derived data, not a loss (the run's status stays
                    // clean): the ranges read the hour's playlist instead.
                    tracing::warn!(hour = %open.hour, error = %e, "cannot note the hour in its day's index (hlsvault reindex writes it again)");
                }
            } else {
                self.unwritten.push(open);
            }
        }
        Ok(())
    }

    /// Counts what an earlier run stored in the hour `open` goes on
    /// with, by listing its folder: only while this run has stored
    /// nothing in it (else the listing could count that twice, and the
    /// hour is listed again as it closes).
    async fn size_earlier_run(&self, open: &mut OpenHour, nothing_stored_yet: bool) {
        let earlier = match nothing_stored_yet {
            // Its segments: the playlist is counted as this run writes it.
            true => hour_bytes(self.store.as_ref(), &self.layout, open.hour)
                .await
                .map(|b| b.segments)
                .ok(),
            false => None,
        };
        match earlier {
            Some(bytes) => open.bytes += bytes,
            None => open.continued = true,
        }
    }

    /// What a closed hour holds: its segments and its playlist
    /// (`written`), or, for an hour an earlier run began that could not
    /// be sized then, what a listing of its folder says (None if the store
    /// cannot list it).
    async fn closed_bytes(&self, open: &OpenHour, written: u64) -> Option<u64> {
        if !open.continued {
            return Some(open.bytes + written);
        }
        hour_bytes(self.store.as_ref(), &self.layout, open.hour)
            .await
            .inspect_err(|e| tracing::warn!(hour = %open.hour, error = %e, "cannot list the hour to size it"))
            .ok()
            .map(|b| b.total())
    }

    /// Writes the open hour's playlist once it has been read back (or with
    /// `force`).
    async fn write_hour(&mut self, force: bool) -> Result<(), StoreError> {
        let Some(open) = self.hour.take() else {
            return Ok(());
        };
        let result = match open.verified || force {
            true => self
                .write_playlist(&open, ObjectKind::OpenPlaylist)
                .await
                .map(|_| ()),
            false => Ok(()),
        };
        self.hour = Some(open);
        result
    }

    /// Writes an hour's playlist, what its URLs need beside it, and its
    /// line in `hours.log` when that changed; returns the playlist's size.
    async fn write_playlist(
        &mut self,
        open: &OpenHour,
        kind: ObjectKind,
    ) -> Result<u64, StoreError> {
        let key = self.layout.hour_playlist_key(open.hour);
        let text = Bytes::from(open.playlist.render());
        let written = text.len() as u64;
        self.put(&key, text, kind).await?;
        let sign = signed_by(&self.plugins, &key, self.url_expiry);
        self.hours
            .publish(open.hour, &open.playlist, kind, sign)
            .await
            .inspect_err(|e| self.store_failed(e, false))?;
        Ok(written)
    }

    async fn write_live(&mut self) -> Result<(), StoreError> {
        let text = Bytes::from(self.live.render());
        self.put(&self.layout.live_key(), text, ObjectKind::OpenPlaylist)
            .await
    }
}

/// A segment stored but not listed yet: what its playlists' entries say
/// of it.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Its place in the media sequence.
    pub sequence: u64,
    /// Its name in its hour's folder.
    pub name: String,
    /// When it starts (UTC): its hour is this one's.
    pub start: std::time::SystemTime,
    /// Its media duration, in 90 kHz ticks.
    pub duration: u64,
    /// Why the timeline broke before it, if it did.
    pub gap: Option<GapCause>,
    /// Its tags in the hour's playlist (markers first), and in the live
    /// window.
    tags: Vec<String>,
    live_tags: Vec<String>,
}

impl Stored {
    /// A segment as a cluster's commit recorded it (its tags are not
    /// recorded there).
    pub fn committed(
        sequence: u64,
        name: String,
        start: std::time::SystemTime,
        duration: u64,
        gap: Option<GapCause>,
    ) -> Self {
        Stored {
            sequence,
            name,
            start,
            duration,
            gap,
            tags: Vec::new(),
            live_tags: Vec::new(),
        }
    }
}

/// Milliseconds since the Unix epoch (0 before it).
pub(super) fn unix_ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What a playlist policy plugin is told of a marker.
fn marker_info(placed: &hlsvault_ts::segment::Placed) -> MarkerInfo {
    use hlsvault_ts::scte35::Cue;
    let marker = &placed.marker;
    let (kind, event_id, planned) = match marker.cue {
        Cue::Out { event_id, planned } => (MarkerKind::CueOut, event_id, planned),
        Cue::In { event_id } => (MarkerKind::CueIn, event_id, None),
        Cue::Signal { event_id } => (MarkerKind::Signal, event_id, None),
    };
    let segmentation_type = marker.info.segmentation().map(|s| s.type_id);
    MarkerInfo {
        kind,
        event_id,
        at_ms: placed
            .at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        planned_duration_ms: planned.map(|ticks| ticks / 90),
        segmentation_type,
        section: marker.section.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hlsvault_store::MemoryStore;
    use hlsvault_ts::segment::Segment;

    /// 09:00:00 on 2026-11-21, UTC.
    fn nine() -> Hour {
        Hour::parse("2026-11-21T09").unwrap()
    }

    fn settings() -> ArchiveSettings {
        ArchiveSettings {
            target_secs: 6,
            window: 3,
            urls: Urls::Relative,
            retention: None,
            retention_size: None,
            sizes: Arc::default(),
            url_expiry: Duration::from_secs(3600),
            plugins: Vec::new(),
            markers: MarkerStyle::DateRange,
        }
    }

    async fn open(store: &Arc<MemoryStore>) -> StreamArchive {
        let store: Arc<dyn ObjectStore> = store.clone();
        let plugins = StreamPlugins::new(&[], "ch1", "239.1.1.1".into(), 5000);
        StreamArchive::open(store, "ch1", settings(), Arc::default(), plugins)
            .await
            .unwrap()
    }

    /// A 6 s segment starting `secs` into `hour`.
    fn segment(hour: Hour, secs: u64) -> Finished {
        Finished::in_memory(Segment {
            id: secs,
            data: vec![0x47; 188],
            data_offset: 0,
            start: hour.start() + Duration::from_secs(secs),
            pts: secs * 90_000,
            duration: 6 * 90_000,
            discontinuity: None,
            keyframe: true,
            markers: Vec::new(),
        })
    }

    async fn playlist(store: &MemoryStore, key: &str, kind: Kind) -> Playlist {
        let text = store.get(key).await.unwrap().expect(key);
        Playlist::parse(kind, &String::from_utf8_lossy(&text)).unwrap()
    }

    #[tokio::test]
    async fn a_restart_continues_the_open_hour_after_a_discontinuity() {
        let store = Arc::new(MemoryStore::default());
        let layout = Layout::new("ch1");
        let mut first = open(&store).await;
        for secs in [0, 6] {
            first.add(segment(nine(), secs)).await.unwrap();
        }
        // Stopped by a signal: the hour stays open.
        first.finish(false).await.unwrap();
        let mut second = open(&store).await;
        second.add(segment(nine(), 60)).await.unwrap();
        second.finish(false).await.unwrap();

        let hour = playlist(&store, &layout.hour_playlist_key(nine()), Kind::Event).await;
        let got: Vec<(u64, bool)> = hour
            .entries()
            .map(|e| (e.sequence, e.discontinuity))
            .collect();
        assert_eq!(got, [(0, false), (1, false), (2, true)]);
        assert!(!hour.is_ended());
        for e in hour.entries() {
            let key = layout.segment_key(nine(), &e.uri);
            assert_eq!(store.kind(&key), Some(ObjectKind::Segment), "{key}");
        }
        let live = playlist(&store, &layout.live_key(), Kind::Window(3)).await;
        assert_eq!(live.last().map(|e| e.sequence), Some(2));
        assert_eq!(
            store.get(&layout.hours_log_key()).await.unwrap().unwrap(),
            "2026-11-21T09 2026/11/21/09/index.m3u8\n"
        );
    }

    #[tokio::test]
    async fn a_scte35_marker_is_a_daterange_before_its_segment_in_the_hour_and_the_window() {
        let store = Arc::new(MemoryStore::default());
        let layout = Layout::new("ch1");
        let mut archive = open(&store).await;
        // SCTE 35 (2019) 14.2: splice_insert out, a 60.293567 s break.
        let hex = "fc302f000000000000fffff014054800008f7feffe7369c02efe0052ccf5\
            00000000000a0008435545490000013562dba30a";
        let section: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let marker = hlsvault_ts::scte35::Marker::read(section).unwrap().unwrap();
        let mut spliced = segment(nine(), 6);
        spliced.segment.markers.push(hlsvault_ts::segment::Placed {
            marker,
            at: nine().start() + Duration::from_millis(6_500),
        });
        archive.add(segment(nine(), 0)).await.unwrap();
        archive.add(spliced).await.unwrap();
        let expected = "#EXT-X-DATERANGE:ID=\"1207959695-1795251606500\",\
            START-DATE=\"2026-11-21T09:00:06.500Z\",PLANNED-DURATION=60.293,\
            SCTE35-OUT=0xFC302F000000000000FFFFF014054800008F7FEFFE7369C02EFE0052CCF5\
            00000000000A0008435545490000013562DBA30A";
        let hour = playlist(&store, &layout.hour_playlist_key(nine()), Kind::Event).await;
        let tags: Vec<&[String]> = hour.entries().map(|e| &e.tags[..]).collect();
        assert_eq!(tags, [&[][..], &[expected.to_string()][..]]);
        let live = playlist(&store, &layout.live_key(), Kind::Window(3)).await;
        assert_eq!(live.last().unwrap().tags, [expected]);
    }

    #[tokio::test]
    async fn the_next_hour_closes_the_last_and_both_are_listed() {
        let store = Arc::new(MemoryStore::default());
        let layout = Layout::new("ch1");
        let mut archive = open(&store).await;
        archive.add(segment(nine(), 3594)).await.unwrap();
        archive.add(segment(nine().next(), 0)).await.unwrap();
        archive.finish(true).await.unwrap();

        let closed = playlist(&store, &layout.hour_playlist_key(nine()), Kind::Event).await;
        assert!(closed.is_ended());
        assert_eq!(
            store.kind(&layout.hour_playlist_key(nine())),
            Some(ObjectKind::ClosedPlaylist)
        );
        let next = playlist(
            &store,
            &layout.hour_playlist_key(nine().next()),
            Kind::Event,
        )
        .await;
        assert_eq!(next.last().map(|e| e.sequence), Some(1));
        assert_eq!(
            store.get(&layout.hours_log_key()).await.unwrap().unwrap(),
            "2026-11-21T09 2026/11/21/09/index.m3u8\n2026-11-21T10 2026/11/21/10/index.m3u8\n"
        );
        let live = playlist(&store, &layout.live_key(), Kind::Window(3)).await;
        assert!(live.is_ended());
    }

    /// Archives 09:00 to 12:00 (a segment an hour) with `settings`, the
    /// store holding `holds` as the stream's holds, each deletion that
    /// retention by size asks for done as the driving task would; the
    /// hour playlists left.
    async fn retained(
        store: &Arc<MemoryStore>,
        holds: Option<&str>,
        settings: ArchiveSettings,
    ) -> Vec<String> {
        if let Some(text) = holds {
            let text = Bytes::from(text.to_string());
            store
                .put("ch1/holds.txt", text, ObjectKind::Index)
                .await
                .unwrap();
        }
        let mut archive = {
            let store: Arc<dyn ObjectStore> = store.clone();
            let plugins = StreamPlugins::new(&[], "ch1", "239.1.1.1".into(), 5000);
            StreamArchive::open(store, "ch1", settings, Arc::default(), plugins)
                .await
                .unwrap()
        };
        let mut asked = archive.deletions();
        for h in 0..4 {
            let hour = Hour::from_index(nine().index() + h);
            archive.add(segment(hour, 0)).await.unwrap();
            while let Some(hours) = asked.as_mut().and_then(|a| a.try_recv().ok()) {
                archive.delete_by_size(hours).await;
            }
        }
        archive.finish(true).await.unwrap();
        store
            .list("ch1/")
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .filter(|k| k.ends_with("index.m3u8"))
            .collect()
    }

    /// Two hours of retention by age.
    fn two_hours() -> ArchiveSettings {
        ArchiveSettings {
            retention: Some(Duration::from_secs(2 * 3600)),
            ..settings()
        }
    }

    /// At most 900 bytes.
    fn nine_hundred_bytes() -> ArchiveSettings {
        ArchiveSettings {
            retention_size: Some(900),
            ..settings()
        }
    }

    #[tokio::test]
    async fn over_its_size_a_stream_loses_its_oldest_unheld_hours_first() {
        let store = Arc::new(MemoryStore::default());
        // A closed hour is a 188-byte segment and its playlist (385
        // bytes): two closed hours and the open one's segment are over
        // 900; one and the segment are not.
        assert_eq!(
            retained(&store, None, nine_hundred_bytes()).await,
            [
                "ch1/2026/11/21/11/index.m3u8",
                "ch1/2026/11/21/12/index.m3u8"
            ]
        );
        let index = store
            .get("ch1/2026/11/21/ranges.txt")
            .await
            .unwrap()
            .unwrap();
        let index = hlsvault_hls::DayIndex::parse(&String::from_utf8_lossy(&index));
        let eleven = index.hour(Hour::from_index(nine().index() + 2)).unwrap();
        let listed: u64 = store
            .list("ch1/2026/11/21/11/")
            .await
            .unwrap()
            .iter()
            .map(|l| l.size)
            .sum();
        assert_eq!(
            eleven.bytes,
            Some(listed),
            "the size noted is what the hour holds"
        );
        // 09:00 held: 10:00 and 11:00 go instead.
        let held = "1 2026-11-21T09:30:00Z 2026-11-21T09:40:00Z case 42\n";
        let store = Arc::new(MemoryStore::default());
        assert_eq!(
            retained(&store, Some(held), nine_hundred_bytes()).await,
            [
                "ch1/2026/11/21/09/index.m3u8",
                "ch1/2026/11/21/12/index.m3u8"
            ]
        );
    }

    #[tokio::test]
    async fn retention_deletes_whole_hours_and_their_lines() {
        let store = Arc::new(MemoryStore::default());
        // Opening 12:00 keeps 11:00 and 12:00 (two hours).
        assert_eq!(
            retained(&store, None, two_hours()).await,
            [
                "ch1/2026/11/21/11/index.m3u8",
                "ch1/2026/11/21/12/index.m3u8"
            ]
        );
        let log = store
            .get(&Layout::new("ch1").hours_log_key())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            log,
            "2026-11-21T11 2026/11/21/11/index.m3u8\n2026-11-21T12 2026/11/21/12/index.m3u8\n"
        );
    }

    #[tokio::test]
    async fn retention_keeps_a_held_hour_and_deletes_nothing_when_the_holds_are_corrupt() {
        let held = "1 2026-11-21T09:30:00Z 2026-11-21T09:40:00Z case 42\n";
        let store = Arc::new(MemoryStore::default());
        assert_eq!(
            retained(&store, Some(held), two_hours()).await,
            [
                "ch1/2026/11/21/09/index.m3u8",
                "ch1/2026/11/21/11/index.m3u8",
                "ch1/2026/11/21/12/index.m3u8"
            ]
        );
        let store = Arc::new(MemoryStore::default());
        assert_eq!(
            retained(&store, Some("1 never\n"), two_hours()).await.len(),
            4
        );
    }
}
