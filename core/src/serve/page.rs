//! `GET /`: the status page. One row per stream: its state, the age of its
//! last segment, its bit rate now and over the last hour as an SVG
//! sparkline drawn here, its newest picture (a one-frame MP4 in a
//! `<video>`, see `preview.mp4`), and links to its playlists; under it, a
//! strip of pictures across its last recorded hour, each linking to the
//! ten minutes it opens. Below the table, the timeline of a day
//! (`timeline.rs`), whose recorded stretches play on the page in hls.js
//! (served by hlsvault, `assets/hls.min.js`). Plain HTML; the only script
//! plays a clicked stretch and reloads the page after 10 s unless one is
//! playing.

use std::fmt::Write;
use std::time::{Duration, SystemTime};

use super::timeline::Window;
use crate::figures::{StreamState, HISTORY};
use hlsvault_hls::Hour;
use hlsvault_ts::clock::writable;

/// What the page shows of one stream.
pub struct Row<'a> {
    /// Stream name (config names are `[A-Za-z0-9._-]`, safe in HTML and URLs).
    pub name: &'a str,
    /// In a cluster, the node that records it (and its standbys).
    pub recorder: Option<String>,
    /// What its recording is doing.
    pub state: StreamState,
    /// When the newest segment ended, if there is one.
    pub last: Option<SystemTime>,
    /// Bit rate samples of the last hour (empty when this process does not
    /// archive: `hlsvault serve` alone).
    pub bitrate: Vec<(SystemTime, f64)>,
}

/// What the page shows of one playout.
pub struct PlayoutRow<'a> {
    pub config: &'a crate::config::PlayoutConfig,
    pub now: crate::replay::ReplaySnapshot,
}

/// The timeline under the table: a day and each stream's row.
pub struct Timeline {
    pub window: Window,
    /// Each stream's name and SVG row, in config order.
    pub rows: Vec<(String, String)>,
}

/// Plays a clicked stretch of the timeline in the page's `<video>` (by
/// hls.js, or natively where it cannot run); reloads the page after 10 s
/// unless one was.
const SCRIPT: &str = r#"<script src="assets/hls.min.js"></script>
<script>
var video = document.getElementById("player"), hls = null;
document.addEventListener("click", function (e) {
  var a = e.target.closest ? e.target.closest("a.play") : null;
  if (!a) return;
  e.preventDefault();
  var url = a.getAttribute("href");
  video.hidden = false;
  document.getElementById("playing").textContent = url;
  if (window.Hls && Hls.isSupported()) {
    if (hls) hls.destroy();
    hls = new Hls();
    hls.loadSource(url);
    hls.attachMedia(video);
  } else {
    video.src = url;
  }
  video.play().catch(function () {});
});
// Fresh figures every 10 s, until a stretch is played.
setTimeout(function () { if (video.hidden) location.reload(); }, 10000);
</script>
"#;

/// The timeline's section: the day picker, the rows, the player.
fn timeline_section(t: &Timeline) -> String {
    let (before, after) = t.window.neighbours();
    let day = t.window.label();
    let mut html = format!(
        r#"<h2>timeline</h2>
<form class="day" method="get"><a href="?day={before}">&larr; {before}</a> <input type="date" name="day" value="{day}"> <button>show</button> <a href="?day={after}">{after} &rarr;</a> · <a href="./">last 24 h</a></form>
<p class="legend"><span style="color:{}">&#9632;</span> recorded (click to play) <span style="color:{}">&#9632;</span> gap <span style="color:#7c4dff">&#9633;</span> held | SCTE-35 marker</p>
<table class="timeline">
"#,
        super::timeline::RECORDED,
        super::timeline::GAP,
    );
    for (name, svg) in &t.rows {
        let _ = writeln!(html, "<tr><td>{name}</td><td>{svg}</td></tr>");
    }
    html.push_str(
        "</table>
<p id=\"playing\"></p><video id=\"player\" controls width=\"640\" hidden></video>\n",
    );
    html
}

/// Pictures in a stream's strip across its last hour, one per
/// [`STRIP_STEP`].
const STRIP: u64 = 6;
const STRIP_STEP: Duration = Duration::from_secs(600);

const WIDTH: f64 = 360.0;
const HEIGHT: f64 = 36.0;

/// A sparkline of `samples` over the hour before `now`, scaled to its peak.
fn sparkline(samples: &[(SystemTime, f64)], now: SystemTime) -> String {
    let peak = samples.iter().map(|s| s.1).fold(0.0, f64::max);
    let span = HISTORY.as_secs_f64();
    let mut points = String::new();
    for (t, bps) in samples {
        let ago = now.duration_since(*t).unwrap_or_default().as_secs_f64();
        let x = WIDTH * (1.0 - (ago / span).min(1.0));
        let y = match peak > 0.0 {
            true => HEIGHT - 2.0 - (HEIGHT - 4.0) * bps / peak,
            false => HEIGHT - 2.0,
        };
        let _ = write!(points, "{x:.1},{y:.1} ");
    }
    format!(
        r##"<svg class="spark" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img"><title>bit rate, last hour; peak {:.2} Mbit/s</title><rect width="{WIDTH}" height="{HEIGHT}" fill="#f4f6f8"/><polyline fill="none" stroke="#2266cc" stroke-width="1.5" points="{}"/></svg>"##,
        peak / 1e6,
        points.trim_end()
    )
}

/// The page for `rows`, `playouts` and `timeline`, drawn at `now`.
pub fn render(
    rows: &[Row],
    playouts: &[PlayoutRow],
    timeline: &Timeline,
    now: SystemTime,
) -> String {
    let mut html = String::from(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>hlsvault</title>
<style>
body{font:14px system-ui,sans-serif;margin:24px;color:#1d2530}
table{border-collapse:collapse}td,th{padding:6px 12px;text-align:left;border-bottom:1px solid #e3e7ec}
.receiving{color:#137333}.stalled{color:#b3261e;font-weight:600}.stopped{color:#6b7785}
.num{text-align:right;font-variant-numeric:tabular-nums}a{color:#2266cc}
.strip a{display:inline-block;margin-right:8px;text-align:center;font-size:12px}.strip video{display:block}
</style></head><body>
<h1>hlsvault</h1>
"#,
    );
    let cluster = rows.iter().any(|r| r.recorder.is_some());
    let recorded_by = if cluster { "<th>recorded by</th>" } else { "" };
    let _ = writeln!(
        html,
        r#"<table><tr><th>stream</th>{recorded_by}<th>state</th><th>last segment</th><th class="num">bit rate</th><th>last hour</th><th>picture</th><th>play</th></tr>"#
    );
    for r in rows {
        // The links go to the newest recording, however old it is.
        let newest = r.last.unwrap_or(now);
        let hour = Hour::of(newest);
        let hour_ago = humantime::format_rfc3339_seconds(writable(
            newest
                .checked_sub(Duration::from_secs(3600))
                .unwrap_or(newest),
        ));
        let age = r.last.map_or("none".to_string(), |t| {
            let secs = now.duration_since(t).unwrap_or_default().as_secs();
            format!(
                "{} ago",
                humantime::format_duration(Duration::from_secs(secs))
            )
        });
        let (rate, spark) = match r.bitrate.last() {
            Some((_, bps)) => (
                format!("{:.2} Mbit/s", bps / 1e6),
                sparkline(&r.bitrate, now),
            ),
            None => (
                "-".to_string(),
                "<span class=\"stopped\">figures come from the archiving process</span>"
                    .to_string(),
            ),
        };
        let name = r.name;
        let picture = if r.last.is_some() {
            format!(
                r#"<video src="streams/{name}/preview.mp4" muted preload="auto" width="160"></video>"#
            )
        } else {
            String::new()
        };
        let recorder = match &r.recorder {
            Some(node) => format!("<td>{}</td>", html_escape(node)),
            None => String::new(),
        };
        let _ = writeln!(
            html,
            r#"<tr><td>{name}</td>{recorder}<td class="{state}">{state}</td><td>{age}</td><td class="num">{rate}</td><td>{spark}</td><td>{picture}</td><td><a href="streams/{name}/live.m3u8">live</a> · <a href="streams/{name}/{path}/index.m3u8">hour {label}</a> · <a href="streams/{name}/archive.m3u8?start={hour_ago}&amp;duration=1h">last recorded hour</a></td></tr>"#,
            state = r.state.as_str(),
            path = hour.path(),
            label = hour.label(),
        );
        if r.last.is_some() {
            let _ = writeln!(
                html,
                r#"<tr class="strip"><td></td><td colspan="{}">{}</td></tr>"#,
                6 + usize::from(cluster),
                strip(name, newest)
            );
        }
    }
    html.push_str("</table>\n");
    if !timeline.rows.is_empty() {
        html.push_str(&timeline_section(timeline));
    }
    if !playouts.is_empty() {
        html.push_str("<h2>playouts</h2>\n<table><tr><th>playout</th><th>stream</th><th>to</th><th>delay</th><th>state</th><th class=\"num\">datagrams</th><th class=\"num\">jitter p50 / p99 / max</th><th class=\"num\">late</th><th class=\"num\">splices</th><th class=\"num\">skipped</th></tr>\n");
        for p in playouts {
            let (class, state) = match p.now.stalled {
                true => ("stalled", "waiting for the archive"),
                false => ("receiving", "sending"),
            };
            let ms = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1000.0);
            let _ = writeln!(
                html,
                r#"<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class="{class}">{state}</td><td class="num">{}</td><td class="num">{} / {} / {} ms</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
                p.config.name,
                p.config.stream,
                html_escape(&p.config.to.to_string()),
                humantime::format_duration(p.config.delay),
                p.now.send.datagrams,
                ms(p.now.send.jitter(0.5)),
                ms(p.now.send.jitter(0.99)),
                ms(p.now.send.jitter_max),
                p.now.send.late,
                p.now.splices,
                p.now.skipped,
            );
        }
        html.push_str("</table>\n");
    }
    html.push_str(SCRIPT);
    html.push_str("</body></html>\n");
    html
}

/// `&`, `<`, `>` and `"` as HTML entities: a playout's URL has `&`.
pub(super) fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Pictures across the hour before `newest`, each a link to the ten
/// minutes it opens.
fn strip(name: &str, newest: SystemTime) -> String {
    (1..=STRIP)
        .rev()
        .filter_map(|k| newest.checked_sub(STRIP_STEP * k as u32))
        .map(|at| {
            let at = humantime::format_rfc3339_seconds(writable(at));
            let label = at.to_string()[11..16].to_string();
            format!(
                r#"<a href="streams/{name}/archive.m3u8?start={at}&amp;duration=10m"><video src="streams/{name}/preview.mp4?at={at}" muted preload="metadata" width="96"></video>{label}</a>"#
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sparkline_spans_the_hour_and_peaks_at_the_top() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let samples = [
            (now - Duration::from_secs(3600), 1e6),
            (now - Duration::from_secs(1800), 4e6),
            (now, 2e6),
        ];
        let svg = sparkline(&samples, now);
        assert!(
            svg.contains(r#"points="0.0,26.0 180.0,2.0 360.0,18.0""#),
            "{svg}"
        );
        assert!(svg.contains("peak 4.00 Mbit/s"), "{svg}");
    }

    fn no_timeline() -> Timeline {
        Timeline {
            window: Window::last_day(SystemTime::UNIX_EPOCH),
            rows: Vec::new(),
        }
    }

    #[test]
    fn a_timeline_has_a_day_picker_its_rows_and_the_player() {
        let timeline = Timeline {
            window: Window::day("2026-11-21").unwrap(),
            rows: vec![("ch1".into(), "<svg class=\"timeline\"></svg>".into())],
        };
        let html = render(&[], &[], &timeline, SystemTime::UNIX_EPOCH);
        assert!(
            html.contains(r#"<input type="date" name="day" value="2026-11-21">"#),
            "{html}"
        );
        assert!(html.contains(r#"<a href="?day=2026-11-20">"#), "{html}");
        assert!(html.contains(r#"<tr><td>ch1</td><td><svg class="timeline"></svg></td></tr>"#));
        assert!(html.contains(r#"<script src="assets/hls.min.js"></script>"#));
        assert!(html.contains(r#"<video id="player""#));
    }

    #[test]
    fn a_row_shows_the_newest_picture_and_links_to_the_live_window_and_the_hour() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let html = render(
            &[Row {
                name: "ch1",
                recorder: None,
                state: StreamState::Stalled,
                last: Some(now - Duration::from_secs(3 * 3600 + 42)),
                bitrate: vec![],
            }],
            &[],
            &no_timeline(),
            now,
        );
        assert!(html.contains(r#"href="streams/ch1/live.m3u8""#));
        assert!(html.contains(r#"<video src="streams/ch1/preview.mp4" muted"#));
        // The strip: six pictures across the hour before the newest
        // segment, each linking to its ten minutes.
        assert_eq!(html.matches("preview.mp4?at=").count(), 6, "{html}");
        assert!(html.contains(r#"<a href="streams/ch1/archive.m3u8?start=2027-01-15T03:59:18Z&amp;duration=10m"><video src="streams/ch1/preview.mp4?at=2027-01-15T03:59:18Z""#), "{html}");
        // The newest recording's hour, not the clock's.
        assert!(
            html.contains(r#"href="streams/ch1/2027/01/15/04/index.m3u8""#),
            "{html}"
        );
        assert!(html.contains("start=2027-01-15T03:59:18Z&amp;duration=1h"));
        assert!(html.contains(r#"<td class="stalled">stalled</td><td>3h 42s ago</td>"#));
        assert!(!html.contains("<h2>timeline"), "no row, no timeline");
        assert!(!html.contains("playouts"), "no playout, no table");
    }

    #[test]
    fn in_a_cluster_a_row_says_which_node_records_the_stream() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let row = |recorder: Option<&str>| Row {
            name: "ch1",
            recorder: recorder.map(str::to_string),
            state: StreamState::Receiving,
            last: Some(now),
            bitrate: vec![],
        };
        let html = render(
            &[row(Some("rec-a (standby rec-b)"))],
            &[],
            &no_timeline(),
            now,
        );
        assert!(html.contains("<th>stream</th><th>recorded by</th><th>state</th>"));
        assert!(
            html.contains(
                r#"<tr><td>ch1</td><td>rec-a (standby rec-b)</td><td class="receiving">"#
            ),
            "{html}"
        );
        assert!(
            html.contains(r#"<td colspan="7">"#),
            "the strip spans the column too"
        );
        let alone = render(&[row(None)], &[], &no_timeline(), now);
        assert!(!alone.contains("recorded by"), "one process: no column");
    }

    #[test]
    fn a_playout_row_shows_where_it_sends_and_how_late() {
        let config = crate::config::PlayoutConfig {
            name: "tv1".into(),
            stream: "ch1".into(),
            to: "udp://239.1.1.1:5000?ttl=4&interface=eth1".parse().unwrap(),
            delay: Duration::from_secs(3 * 3600),
            cbr: false,
        };
        let figures = crate::replay::ReplayFigures::default();
        let html = render(
            &[],
            &[PlayoutRow {
                config: &config,
                now: figures.snapshot(),
            }],
            &no_timeline(),
            SystemTime::UNIX_EPOCH,
        );
        assert!(
            html.contains("<td>tv1</td><td>ch1</td><td>udp://239.1.1.1:5000?ttl=4&amp;interface=eth1</td><td>3h</td><td class=\"receiving\">sending</td>"),
            "{html}"
        );
        assert!(html.contains("0.00 / 0.00 / 0.00 ms"), "{html}");
    }
}
