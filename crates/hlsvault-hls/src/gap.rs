//! Why the archive has no media for a stretch of time. The recorder knows
//! why when it cuts: it notes the cause in the hour playlist beside the
//! `#EXT-X-DISCONTINUITY` of the entry after the gap, as a comment line
//! (`#HLSVAULT-GAP:stall`) that players skip, and the ranges read it back.

use hlsvault_ts::segment::Cause;

/// The comment line that carries an entry's [`GapCause`].
pub(crate) const GAP_COMMENT: &str = "#HLSVAULT-GAP:";

/// Why media is missing before an entry (or between two recorded ranges).
///
/// ```
/// use hlsvault_hls::GapCause;
///
/// assert_eq!(GapCause::parse("store_outage"), Some(GapCause::StoreOutage));
/// assert_eq!(GapCause::Stall.as_str(), "stall");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GapCause {
    /// The stream's timeline broke: lost datagrams, a continuity error or
    /// a PCR jump; what followed waited for the next keyframe.
    Discontinuity,
    /// No datagram came for longer than the stall timeout.
    Stall,
    /// The store could not take segments: they were lost.
    StoreOutage,
    /// The recorder was not running (stopped, restarted or killed).
    Restart,
    /// A segment namer plugin refused segments (fail-closed).
    PluginDropped,
    /// The stream changed owner in a cluster, and the new owner had not
    /// buffered all that the old one left unpublished.
    Takeover,
    /// The archive says nothing of why: no entry marks the gap.
    NothingRecorded,
}

impl GapCause {
    const ALL: [GapCause; 7] = [
        GapCause::Discontinuity,
        GapCause::Stall,
        GapCause::StoreOutage,
        GapCause::Restart,
        GapCause::PluginDropped,
        GapCause::Takeover,
        GapCause::NothingRecorded,
    ];

    /// Its name in playlists, the index and the ranges API.
    pub fn as_str(self) -> &'static str {
        match self {
            GapCause::Discontinuity => "discontinuity",
            GapCause::Stall => "stall",
            GapCause::StoreOutage => "store_outage",
            GapCause::Restart => "restart",
            GapCause::PluginDropped => "plugin_dropped",
            GapCause::Takeover => "takeover",
            GapCause::NothingRecorded => "nothing_recorded",
        }
    }

    /// Reads a name back.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl From<Cause> for GapCause {
    /// What the cutter's reason for a break means for the archive.
    fn from(cause: Cause) -> Self {
        match cause {
            Cause::CaptureGap(_) => GapCause::Stall,
            Cause::BeforeRestart => GapCause::Restart,
            Cause::Stream(_)
            | Cause::LostDatagrams
            | Cause::Oversized
            | Cause::HardCap
            | Cause::VideoJump => GapCause::Discontinuity,
        }
    }
}

impl std::fmt::Display for GapCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cause_reads_back_from_its_name() {
        for cause in GapCause::ALL {
            assert_eq!(GapCause::parse(cause.as_str()), Some(cause));
        }
        assert_eq!(GapCause::parse("Stall"), None);
    }
}
