//! One stream's plugins, called at the pipeline's hook points. Each hook
//! validates what the plugin returned and applies the plugin's failure
//! policy: fail-open keeps the built-in behaviour, fail-closed drops what
//! the hook would have produced.

use std::borrow::Cow;
use std::sync::Arc;

use super::host::{MarkerInfo, PlaylistKind, SegmentInfo, StreamInfo};
use super::runtime::{Failure, Instance, Slot};
use super::{validate, Hook};
use crate::settings::OnError;

/// The plugins of one stream, in config order.
pub struct StreamPlugins {
    instances: Vec<Instance>,
    info: StreamInfo,
}

/// Most datagrams a packet filter sees in one call: the call's cost is
/// shared by many datagrams, and what a plugin is handed stays small
/// (about 84 KB of 7-packet datagrams).
pub const FILTER_BATCH: usize = 64;

/// What the namer hook decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Named {
    /// No namer, or it failed open: the host's name.
    Default,
    /// The plugin's (validated) name.
    Plugin(String),
    /// It failed closed: the segment is not stored.
    Dropped,
}

/// What the packet filters made of a batch.
pub struct FilterOutcome<'a> {
    /// The TS to analyse, per datagram of the batch.
    pub packets: Vec<Cow<'a, [u8]>>,
    /// Packets the filters dropped (by verdict, or a fail-closed failure).
    pub dropped: u64,
}

impl StreamPlugins {
    /// Instantiates `plugins` (in order) for the stream `name`, received on
    /// `group`:`port`.
    pub fn new(plugins: &[Arc<Slot>], name: &str, group: String, port: u16) -> Self {
        StreamPlugins {
            instances: plugins
                .iter()
                .map(|p| Instance::new(p.clone(), name))
                .collect(),
            info: StreamInfo {
                name: name.to_string(),
                group,
                port,
            },
        }
    }

    /// No plugins at all.
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }

    /// A segment ended: plugins whose file changed are swapped in now, so
    /// that a segment never mixes two builds of a plugin. Says whether one
    /// was swapped.
    pub fn segment_boundary(&mut self) -> bool {
        self.instances
            .iter_mut()
            .fold(false, |swapped, i| i.refresh() | swapped)
    }

    /// Runs the packet filters over a batch of datagrams' TS (`payloads`,
    /// in arrival order): each filter sees up to `FILTER_BATCH` (64)
    /// datagrams in one call. A datagram that is not whole, synced packets
    /// is left to the analysis (which counts it) and not filtered.
    ///
    /// `buffer` is where the payloads lie: when they lie back to back in
    /// it (plain TS datagrams), the filter is handed them without a copy.
    pub fn filter<'a>(&mut self, buffer: &'a [u8], payloads: &[&'a [u8]]) -> FilterOutcome<'a> {
        if payloads.len() <= FILTER_BATCH {
            return self.filter_chunk(buffer, payloads);
        }
        let mut out = FilterOutcome {
            packets: Vec::with_capacity(payloads.len()),
            dropped: 0,
        };
        for chunk in payloads.chunks(FILTER_BATCH) {
            let part = self.filter_chunk(buffer, chunk);
            out.packets.extend(part.packets);
            out.dropped += part.dropped;
        }
        out
    }

    fn filter_chunk<'a>(&mut self, buffer: &'a [u8], payloads: &[&'a [u8]]) -> FilterOutcome<'a> {
        let mut out = FilterOutcome {
            packets: payloads.iter().map(|p| Cow::Borrowed(*p)).collect(),
            dropped: 0,
        };
        if !self
            .instances
            .iter()
            .any(|i| i.implements(Hook::PacketFilter))
        {
            return out;
        }
        // The datagrams that are whole, synced packets, and all their
        // packets back to back (one datagram is passed as it is).
        let given: Vec<usize> = (0..payloads.len())
            .filter(|&i| {
                let p = payloads[i];
                !p.is_empty()
                    && p.len().is_multiple_of(188)
                    && p.chunks_exact(188).all(|k| k[0] == 0x47)
            })
            .collect();
        let joined: Cow<[u8]> = match given.as_slice() {
            [] => return out,
            [one] => Cow::Borrowed(payloads[*one]),
            many => match adjacent(buffer, many.iter().map(|&i| payloads[i])) {
                Some((start, end)) => Cow::Borrowed(&buffer[start..end]),
                None => {
                    let mut all = Vec::with_capacity(many.iter().map(|&i| payloads[i].len()).sum());
                    for &i in many {
                        all.extend_from_slice(payloads[i]);
                    }
                    Cow::Owned(all)
                }
            },
        };
        // What the filters kept so far (None: everything, unchanged), as
        // packets and their indexes in `joined`.
        let mut kept: Option<Kept> = None;
        let info = &self.info;
        for inst in self
            .instances
            .iter_mut()
            .filter(|i| i.implements(Hook::PacketFilter))
        {
            let current: &[u8] = kept.as_ref().map_or(&joined, |k| &k.0);
            if current.is_empty() {
                break;
            }
            let on_error = inst.on_error();
            let result = inst.call(
                Hook::PacketFilter,
                |b, store| b.filter(store, info, current),
                |verdict| apply(verdict, current),
            );
            match result {
                Ok(Some((bytes, indexes))) => {
                    // Indexes into what this filter saw, made indexes into `joined`.
                    let indexes = match &kept {
                        Some((_, earlier)) => {
                            indexes.iter().map(|&i| earlier[i as usize]).collect()
                        }
                        None => indexes,
                    };
                    kept = Some((bytes, indexes));
                }
                Ok(None) => {}
                Err(Failure::Suspended | Failure::Failed) => {
                    if on_error == OnError::FailClosed {
                        kept = Some((Vec::new(), Vec::new()));
                    }
                }
            }
        }
        let Some((bytes, indexes)) = kept else {
            return out;
        };
        for &d in &given {
            out.packets[d] = Cow::Owned(Vec::with_capacity(payloads[d].len()));
        }
        // Kept indexes ascend: walk the datagrams along them.
        let (mut g, mut first) = (0, 0);
        for (k, &i) in indexes.iter().enumerate() {
            while i as usize >= first + payloads[given[g]].len() / 188 {
                first += payloads[given[g]].len() / 188;
                g += 1;
            }
            out.packets[given[g]]
                .to_mut()
                .extend_from_slice(&bytes[k * 188..(k + 1) * 188]);
        }
        out.dropped = (joined.len() / 188 - indexes.len()) as u64;
        out
    }

    /// The name of a finished segment. A name that is `taken` (by another
    /// segment of its hour) is an invalid result: storing it would
    /// overwrite that segment.
    pub fn segment_name(&mut self, segment: &SegmentInfo, taken: impl Fn(&str) -> bool) -> Named {
        let Some(inst) = self
            .instances
            .iter_mut()
            .find(|i| i.implements(Hook::SegmentNamer))
        else {
            return Named::Default;
        };
        let on_error = inst.on_error();
        let result = inst.call(
            Hook::SegmentNamer,
            |b, store| b.name(store, segment),
            |name| {
                validate::segment_name(&name)?;
                match taken(&name) {
                    true => Err(format!("{name:?} is already a segment of this hour")),
                    false => Ok(name),
                }
            },
        );
        match (result, on_error) {
            (Ok(name), _) => Named::Plugin(name),
            (Err(_), OnError::FailOpen) => Named::Default,
            (Err(_), OnError::FailClosed) => Named::Dropped,
        }
    }

    /// Header tags of a playlist, from every policy plugin in order. A
    /// failed plugin adds none (whatever its policy: there is nothing
    /// else to drop).
    pub fn header_tags(&mut self, kind: PlaylistKind) -> Vec<String> {
        let stream = self.info.name.clone();
        self.tags(|b, store| b.header_tags(store, &stream, kind))
    }

    /// Tags before a segment's entry, from every policy plugin in order;
    /// `markers` are the SCTE-35 markers in the segment (plugins built
    /// against 0.1.0 are not told them).
    pub fn entry_tags(
        &mut self,
        segment: &SegmentInfo,
        markers: &[MarkerInfo],
        kind: PlaylistKind,
    ) -> Vec<String> {
        self.tags(|b, store| b.entry_tags(store, segment, markers, kind))
    }

    fn tags(
        &mut self,
        call: impl Fn(
            &super::runtime::Bound,
            &mut wasmtime::Store<super::host::HostState>,
        ) -> wasmtime::Result<Vec<String>>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for inst in self
            .instances
            .iter_mut()
            .filter(|i| i.implements(Hook::PlaylistPolicy))
        {
            if let Ok(tags) = inst.call(Hook::PlaylistPolicy, &call, |t: Vec<String>| {
                validate::tags(&t).map(|()| t)
            }) {
                out.extend(tags);
            }
        }
        out
    }

    /// The playback URL of `key` (the host's would be `default_url`),
    /// valid until `expires_at` (Unix seconds). None: the signer failed
    /// closed, and no URL is handed out.
    pub fn sign(&mut self, key: &str, default_url: &str, expires_at: u64) -> Option<String> {
        let Some(inst) = self
            .instances
            .iter_mut()
            .find(|i| i.implements(Hook::UrlSigner))
        else {
            return Some(default_url.to_string());
        };
        let on_error = inst.on_error();
        let request = super::host::signer::exports::hlsvault::plugin::signer::SignRequest {
            stream_name: self.info.name.clone(),
            key: key.to_string(),
            default_url: default_url.to_string(),
            expires_at,
        };
        let result = inst.call(
            Hook::UrlSigner,
            |b, store| b.sign(store, &request),
            |u| validate::url(&u).map(|()| u),
        );
        match (result, on_error) {
            (Ok(u), _) => Some(u),
            (Err(_), OnError::FailOpen) => Some(default_url.to_string()),
            (Err(_), OnError::FailClosed) => None,
        }
    }
}

/// Where `parts` lie in `buffer`, if they lie there back to back, in order:
/// the range they cover together.
fn adjacent<'a>(
    buffer: &[u8],
    mut parts: impl Iterator<Item = &'a [u8]>,
) -> Option<(usize, usize)> {
    // Addresses are compared, never dereferenced.
    let base = buffer.as_ptr() as usize;
    let offset = |p: &[u8]| (p.as_ptr() as usize).checked_sub(base);
    let first = parts.next()?;
    let start = offset(first)?;
    let mut end = start + first.len();
    for p in parts {
        if offset(p)? != end {
            return None;
        }
        end += p.len();
    }
    (end <= buffer.len()).then_some((start, end))
}

/// The packets a filter kept, and their indexes in what it was given.
type Kept = (Vec<u8>, Vec<u32>);

/// Applies a filter's verdict to `given`: None keeps it unchanged.
fn apply(
    verdict: super::host::filter::exports::hlsvault::plugin::filter::Verdict,
    given: &[u8],
) -> Result<Option<Kept>, String> {
    use super::host::filter::exports::hlsvault::plugin::filter::Verdict;
    let n = given.len() / 188;
    let pick = |from: &[u8], keep: Vec<u32>| -> Result<Kept, String> {
        let mut out = Vec::with_capacity(keep.len() * 188);
        let mut last: Option<u32> = None;
        for &i in &keep {
            if i as usize >= n || last.is_some_and(|l| l >= i) {
                return Err(format!(
                    "keep index {i} (indexes must ascend and stay below {n})"
                ));
            }
            last = Some(i);
            let p = &from[i as usize * 188..(i as usize + 1) * 188];
            if p[0] != 0x47 {
                return Err(format!("packet {i} lost its sync byte"));
            }
            out.extend_from_slice(p);
        }
        Ok((out, keep))
    };
    match verdict {
        Verdict::KeepAll => Ok(None),
        Verdict::DropAll => Ok(Some((Vec::new(), Vec::new()))),
        Verdict::Keep(keep) => pick(given, keep).map(Some),
        Verdict::Rewrite(r) => {
            if r.packets.len() != given.len() {
                return Err(format!(
                    "rewrote {} bytes of {} (packets are rewritten in place)",
                    r.packets.len(),
                    given.len()
                ));
            }
            pick(&r.packets, r.keep).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjacent_parts_are_found_in_their_buffer() {
        let buffer = [0u8; 100];
        let (a, b, c) = (&buffer[10..20], &buffer[20..50], &buffer[60..70]);
        assert_eq!(adjacent(&buffer, [a, b].into_iter()), Some((10, 50)));
        assert_eq!(adjacent(&buffer, [a, c].into_iter()), None, "a gap");
        assert_eq!(adjacent(&buffer, [b, a].into_iter()), None, "out of order");
        let elsewhere = [0u8; 10];
        assert_eq!(adjacent(&buffer, [&elsewhere[..]].into_iter()), None);
        assert_eq!(adjacent(&buffer, std::iter::empty()), None);
    }
}
