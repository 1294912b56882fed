//! Playback over HTTP: the live window, any hour, and any time range as a
//! playlist, with segments served from the store (byte ranges for a local
//! directory). From S3, range playlists list freshly presigned segment
//! URLs and segment paths redirect to them, so a playlist fetched today
//! plays however old its hours are.

mod auth;
mod export;
mod listen;
mod metrics;
mod page;
mod query;
mod timeline;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use futures_util::StreamExt;

pub use listen::{MAX_HEADERS, MAX_HEADER_BYTES};
pub use query::{BoundsQuery, ByteRange, RangeQuery, MAX_RANGE};

use crate::config::{Config, Store, DEFAULT_EXPORT_MAX};
use crate::export::range_playlist;
use crate::export::ExportFigures;
use crate::figures::{Figures, Snapshot, StreamState, StreamStats};
use hlsvault_hls::Hour;
use hlsvault_hls::Layout;
use hlsvault_store::{ObjectKind, ObjectStore, StoreError};
use hlsvault_ts::clock::writable;

#[derive(Clone)]
struct Served {
    store: Arc<dyn ObjectStore>,
    streams: Catalog,
    /// Segments are redirects to presigned URLs valid this long (S3).
    presign: Option<Duration>,
    /// Longest clip an export may ask for.
    export_max: Duration,
    exports: Arc<ExportFigures>,
}

/// Serves `config`'s archive on `listener` until the process ends, with
/// the engine's live `figures` when this process also archives.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<dyn ObjectStore>,
    config: &Config,
    figures: Option<Arc<Figures>>,
) -> std::io::Result<()> {
    let catalog = match figures {
        Some(f) => Catalog::Engine(f),
        None => Catalog::Config(Arc::new(
            config
                .streams
                .iter()
                .map(|s| (s.name.clone(), s.stall_timeout))
                .collect(),
        )),
    };
    let state = Served {
        store,
        streams: catalog.clone(),
        presign: matches!(config.storage.store, Store::S3(_)).then_some(config.storage.url_expiry),
        export_max: config
            .serve
            .as_ref()
            .map_or(DEFAULT_EXPORT_MAX, |s| s.export_max),
        exports: Arc::default(),
    };
    let tokens = config
        .serve
        .as_ref()
        .map(|s| s.tokens.clone())
        .unwrap_or_default();
    let gate = Arc::new(auth::Gate::new(tokens));
    let limits = config.serve.as_ref().map(|s| s.limits).unwrap_or_default();
    let connections = Arc::new(listen::Connections::new(limits.max_connections));
    let status = Status {
        store: state.store.clone(),
        streams: catalog,
        gate: gate.clone(),
        connections: connections.clone(),
        exports: state.exports.clone(),
        process: Arc::new(prometheus::process_collector::ProcessCollector::for_self()),
        cluster: config.cluster.clone(),
    };
    let playback = Router::new()
        .route("/streams/{name}/live.m3u8", get(live))
        .route("/streams/{name}/archive.m3u8", get(archive))
        .route("/streams/{name}/export.ts", get(export::ts))
        .route("/streams/{name}/export.mp4", get(export::mp4))
        .route("/streams/{name}/preview.mp4", get(export::preview))
        .route("/streams/{name}/ranges", get(ranges))
        .route("/streams/{name}/{*path}", get(object))
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(gate, auth::require));
    let status = Router::new()
        .route("/", get(status_page))
        .route("/assets/hls.min.js", get(hls_js))
        .route("/metrics", get(metrics))
        .route("/streams", get(streams))
        .route("/readyz", get(readyz))
        .with_state(status);
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(status)
        .merge(playback)
        .layer(cors(
            config
                .serve
                .as_ref()
                .map(|s| s.cors_origins.as_slice())
                .unwrap_or_default(),
        ));
    tracing::info!(address = %listener.local_addr()?, "serving playback");
    listen::run(listener, app, limits, connections).await
}

/// Browsers may fetch from the configured origins (GET, with the
/// headers a player sends).
fn cors(origins: &[String]) -> tower_http::cors::CorsLayer {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([axum::http::Method::GET])
        .allow_headers([header::AUTHORIZATION, header::RANGE])
        .expose_headers([
            header::CONTENT_LENGTH,
            header::CONTENT_RANGE,
            header::CONTENT_DISPOSITION,
            axum::http::HeaderName::from_static(export::DROPPED_HEADER),
        ])
}

/// The streams a server knows: those of its config (`hlsvault serve`), or
/// those of the engine's (`run` with `[serve]`: it follows reloads; in a
/// cluster, with figures for those that run on this node).
#[derive(Clone)]
enum Catalog {
    Config(Arc<Vec<(String, Duration)>>),
    Engine(Arc<Figures>),
}

impl Catalog {
    /// Every stream and its stall timeout, with its live counters when
    /// this process archives it.
    fn streams(&self) -> Vec<(String, Duration, Option<Arc<StreamStats>>)> {
        match self {
            Catalog::Config(list) => list.iter().map(|(n, t)| (n.clone(), *t, None)).collect(),
            Catalog::Engine(f) => f.configured(),
        }
    }

    /// Whether this process archives (its figures are live).
    fn figures(&self) -> Option<&Figures> {
        match self {
            Catalog::Config(_) => None,
            Catalog::Engine(f) => Some(f),
        }
    }

    fn knows(&self, name: &str) -> bool {
        match self {
            Catalog::Config(list) => list.iter().any(|(n, _)| n == name),
            Catalog::Engine(f) => f.knows(name),
        }
    }
}

#[derive(Clone)]
struct Status {
    store: Arc<dyn ObjectStore>,
    streams: Catalog,
    gate: Arc<auth::Gate>,
    connections: Arc<listen::Connections>,
    exports: Arc<ExportFigures>,
    /// Kept across scrapes: its CPU counter only moves forward.
    process: Arc<prometheus::process_collector::ProcessCollector>,
    /// The cluster the streams are recorded by, if any.
    cluster: Option<hlsvault_cluster::ClusterSettings>,
}

/// What the store says of a stream's recording.
#[derive(serde::Serialize)]
struct StreamReport {
    name: String,
    /// receiving, stalled or stopped.
    state: StreamState,
    /// Program date time of the newest segment's end, RFC 3339.
    last_segment_end: Option<String>,
    /// Seconds since then.
    age_seconds: Option<f64>,
    #[serde(skip)]
    last: Option<SystemTime>,
    /// Hours the archive lists (from the store).
    recorded_hours: usize,
    /// The newest gap between recorded ranges of the last 24 h, with its
    /// cause (from the store).
    last_gap: Option<crate::ranges::Stretch>,
    #[serde(skip)]
    glance: crate::ranges::Glance,
    /// Received TS bit rate over the last sample (while archiving).
    bitrate_bps: Option<f64>,
    /// The engine's counters (while archiving).
    figures: Option<Snapshot>,
    /// What each PID is and whether it is kept (while archiving).
    #[serde(skip_serializing_if = "Option::is_none")]
    pids: Option<Vec<hlsvault_ts::PidInfo>>,
    #[serde(skip)]
    stats: Option<Arc<StreamStats>>,
}

/// How far back `/streams` and `/metrics` look for a stream's last gap.
const GLANCE_WINDOW: Duration = Duration::from_secs(24 * 3600);

async fn stream_states(s: &Status) -> Result<Vec<StreamReport>, StoreError> {
    // The streams are read at once: a store's latency is paid about once.
    futures_util::stream::iter(s.streams.streams())
        .map(|(name, stall, stats)| stream_state(s, name, stall, stats))
        .buffered(hlsvault_store::READS_AT_ONCE)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// What the store (and, while archiving, the engine) says of one stream.
async fn stream_state(
    s: &Status,
    name: String,
    stall: Duration,
    stats: Option<Arc<StreamStats>>,
) -> Result<StreamReport, StoreError> {
    let layout = Layout::new(&name);
    let now = SystemTime::now();
    let live_key = layout.live_key();
    let (live, glance) = futures_util::try_join!(
        s.store.get(&live_key),
        crate::ranges::glance(s.store.as_ref(), &layout, now, GLANCE_WINDOW)
    )?;
    let parsed = live.and_then(|t| {
        hlsvault_hls::Playlist::parse(
            hlsvault_hls::Kind::Window(usize::MAX),
            &String::from_utf8_lossy(&t),
        )
        .ok()
    });
    let last = parsed.as_ref().and_then(|p| p.last().map(|e| e.end()));
    let age = last.map(|t| now.duration_since(t).unwrap_or_default());
    let state = StreamState::of(parsed.as_ref(), age, stall);
    Ok(StreamReport {
        name,
        state,
        last_segment_end: last.map(|t| humantime::format_rfc3339_millis(writable(t)).to_string()),
        age_seconds: age.map(|a| a.as_secs_f64()),
        last,
        recorded_hours: glance.hours,
        last_gap: glance.last_gap.as_ref().map(crate::ranges::Stretch::of_gap),
        glance,
        bitrate_bps: stats
            .as_ref()
            .and_then(|f| f.bitrate_history().last().map(|b| b.1)),
        figures: stats.as_ref().map(|f| f.snapshot()),
        pids: stats.as_ref().map(|f| f.pids()),
        stats,
    })
}

/// `GET /streams`: every stream and its state, as JSON.
async fn streams(State(s): State<Status>) -> Response {
    match stream_states(&s).await {
        Ok(states) => axum::Json(states).into_response(),
        Err(e) => store_failed(e),
    }
}

/// `GET /metrics`: Prometheus text.
async fn metrics(State(s): State<Status>) -> Response {
    let states = stream_states(&s)
        .await
        .inspect_err(|e| tracing::warn!(error = %e, "metrics: the store cannot be read"))
        .ok();
    let archives: Option<Vec<metrics::ArchiveGlance>> = states.as_ref().map(|states| {
        states
            .iter()
            .map(|st| metrics::ArchiveGlance {
                stream: &st.name,
                newest_end: st.last,
                glance: st.glance.clone(),
            })
            .collect()
    });
    let text = metrics::render(
        &s.process,
        s.streams.figures(),
        archives.as_deref(),
        metrics::ServerFigures {
            auth_failures: s.gate.failures(),
            open_connections: s.connections.open(),
            refused_connections: s.connections.refused(),
            exports: s.exports.snapshot(),
        },
    );
    ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], text).into_response()
}

/// hls.js (Apache-2.0, `core/assets/hls.js-LICENSE`), for the status
/// page's player: served from the binary, nothing fetched elsewhere.
async fn hls_js() -> Response {
    const HLS_JS: &[u8] = include_bytes!("../../assets/hls.min.js");
    (
        [
            (header::CONTENT_TYPE, "text/javascript"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        HLS_JS,
    )
        .into_response()
}

/// The timeline's rows: each stream's catalogue of `window`, read a few
/// streams at once.
async fn timeline_rows(
    s: &Status,
    names: Vec<String>,
    window: timeline::Window,
) -> Result<Vec<(String, String)>, StoreError> {
    futures_util::stream::iter(names)
        .map(|name| async move {
            let c =
                crate::ranges::Catalogue::read(s.store.as_ref(), &name, window.start, window.end)
                    .await?;
            let row = timeline::row(&name, &c, &window);
            Ok((name, row))
        })
        .buffered(hlsvault_store::READS_AT_ONCE)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// In a cluster, which node records each stream: its owner, and the nodes
/// ready to take it over ("rec-a (standby rec-b)"); `None` without a
/// cluster, and "etcd unreachable" rows when it cannot be read.
async fn recorders(s: &Status) -> Option<std::collections::BTreeMap<String, String>> {
    let settings = s.cluster.as_ref()?;
    let read = async {
        let client = hlsvault_cluster::connect(settings).await?;
        hlsvault_cluster::view(&client, &hlsvault_cluster::Keys::default()).await
    };
    let names = s.streams.streams().into_iter().map(|(n, _, _)| n);
    let view = match tokio::time::timeout(Duration::from_secs(2), read).await {
        Ok(Ok(view)) => view,
        _ => return Some(names.map(|n| (n, "etcd unreachable".to_string())).collect()),
    };
    Some(
        names
            .map(|name| {
                let owner = view.owners.get(&name).cloned();
                let standbys: Vec<&str> = view
                    .ready
                    .iter()
                    .filter(|(st, n)| *st == name && Some(n) != owner.as_ref())
                    .map(|(_, n)| n.as_str())
                    .collect();
                let mut text = owner.unwrap_or_else(|| "nobody".to_string());
                if !standbys.is_empty() {
                    text.push_str(&format!(" (standby {})", standbys.join(", ")));
                }
                (name, text)
            })
            .collect(),
    )
}

/// `GET /?day=`: the status page.
async fn status_page(State(s): State<Status>, Query(q): Query<query::PageQuery>) -> Response {
    let window = match q.window(SystemTime::now()) {
        Ok(w) => w,
        Err(message) => return fail(StatusCode::BAD_REQUEST, message),
    };
    match stream_states(&s).await {
        Ok(states) => {
            let names = states.iter().map(|st| st.name.clone()).collect();
            let timeline = match timeline_rows(&s, names, window).await {
                Ok(rows) => page::Timeline { window, rows },
                Err(e) => return store_failed(e),
            };
            let recorders = recorders(&s).await;
            let rows: Vec<page::Row> = states
                .iter()
                .map(|st| page::Row {
                    name: &st.name,
                    recorder: recorders.as_ref().map(|r| {
                        r.get(&st.name)
                            .cloned()
                            .unwrap_or_else(|| "nobody".to_string())
                    }),
                    state: st.state,
                    last: st.last,
                    bitrate: st
                        .stats
                        .as_ref()
                        .map(|f| f.bitrate_history())
                        .unwrap_or_default(),
                })
                .collect();
            let playouts = s
                .streams
                .figures()
                .map(Figures::playouts)
                .unwrap_or_default();
            let playout_rows: Vec<page::PlayoutRow> = playouts
                .iter()
                .map(|p| page::PlayoutRow {
                    config: &p.config,
                    now: p.figures.snapshot(),
                })
                .collect();
            let html = page::render(&rows, &playout_rows, &timeline, SystemTime::now());
            let mut r = axum::response::Html(html).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE));
            r
        }
        Err(e) => store_failed(e),
    }
}

/// `GET /readyz`: the store answers and no stream is stalled.
async fn readyz(State(s): State<Status>) -> Response {
    match stream_states(&s).await {
        Ok(states) => {
            let stalled: Vec<&str> = states
                .iter()
                .filter(|s| s.state == StreamState::Stalled)
                .map(|s| s.name.as_str())
                .collect();
            match stalled.is_empty() {
                true => "ready\n".into_response(),
                false => fail(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("stalled: {}", stalled.join(", ")),
                ),
            }
        }
        Err(e) => fail(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the store does not answer: {e}"),
        ),
    }
}

/// A plain-text error response.
fn fail(status: StatusCode, message: impl Into<String>) -> Response {
    (status, format!("{}\n", message.into())).into_response()
}

fn unknown(name: &str) -> Response {
    fail(StatusCode::NOT_FOUND, format!("no stream named \"{name}\""))
}

fn store_failed(e: StoreError) -> Response {
    tracing::warn!(error = %e, "store read failed while serving");
    fail(StatusCode::BAD_GATEWAY, format!("the store failed: {e}"))
}

const NO_CACHE: &str = "no-cache";

fn body(content: Bytes, kind: ObjectKind, cache: &'static str) -> Response {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(kind.content_type()),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    (h, content).into_response()
}

impl Served {
    fn known(&self, name: &str) -> Option<Layout> {
        self.streams.knows(name).then(|| Layout::new(name))
    }
}

async fn live(State(s): State<Served>, Path(name): Path<String>) -> Response {
    let Some(layout) = s.known(&name) else {
        return unknown(&name);
    };
    match s.store.get(&layout.live_key()).await {
        Ok(Some(text)) => body(text, ObjectKind::OpenPlaylist, NO_CACHE),
        Ok(None) => fail(
            StatusCode::NOT_FOUND,
            format!("{name} has no live playlist yet"),
        ),
        Err(e) => store_failed(e),
    }
}

async fn archive(
    State(s): State<Served>,
    Path(name): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Response {
    let Some(layout) = s.known(&name) else {
        return unknown(&name);
    };
    let (start, end) = match q.time_range() {
        Ok(r) => r,
        Err(message) => return fail(StatusCode::BAD_REQUEST, message),
    };
    match range_playlist(s.store.as_ref(), &layout, start, end).await {
        Ok(Some(mut p)) => {
            // From S3, the segments are freshly presigned URLs: a player
            // goes straight to the bucket.
            if let Some(expiry) = s.presign {
                for e in p.entries_mut() {
                    match s
                        .store
                        .presign_get(&format!("{name}/{}", e.uri), expiry)
                        .await
                    {
                        Ok(url) => e.uri = url,
                        Err(e) => return store_failed(e),
                    }
                }
            }
            // Ranges inside closed hours do not change any more.
            let closed = Hour::of(end) < Hour::of(SystemTime::now());
            let cache = if closed {
                "public, max-age=86400"
            } else {
                NO_CACHE
            };
            body(Bytes::from(p.render()), ObjectKind::OpenPlaylist, cache)
        }
        Ok(None) => fail(
            StatusCode::NOT_FOUND,
            format!(
                "nothing of {name} is archived between {} and {}",
                humantime::format_rfc3339(start),
                humantime::format_rfc3339(end)
            ),
        ),
        Err(e) => store_failed(e),
    }
}

/// `GET /streams/{name}/ranges?start=&end=`: what is recorded, the gaps
/// and their causes, and the holds, as JSON.
async fn ranges(
    State(s): State<Served>,
    Path(name): Path<String>,
    Query(q): Query<BoundsQuery>,
) -> Response {
    if s.known(&name).is_none() {
        return unknown(&name);
    }
    let (start, end) = match q.bounds(SystemTime::now()) {
        Ok(r) => r,
        Err(message) => return fail(StatusCode::BAD_REQUEST, message),
    };
    match crate::ranges::Report::read(s.store.as_ref(), &name, start, end).await {
        Ok(report) => axum::Json(report).into_response(),
        Err(e) => store_failed(e),
    }
}

async fn object(
    State(s): State<Served>,
    Path((name, path)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if s.known(&name).is_none() {
        return unknown(&name);
    }
    let key = format!("{name}/{path}");
    if path.ends_with(".ts") {
        if let Some(expiry) = s.presign {
            return match s.store.presign_get(&key, expiry).await {
                Ok(url) => match HeaderValue::from_str(&url) {
                    Ok(v) => {
                        (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, v)]).into_response()
                    }
                    Err(_) => fail(
                        StatusCode::BAD_GATEWAY,
                        "the presigned URL is not a header value",
                    ),
                },
                Err(e) => store_failed(e),
            };
        }
    } else if !path.ends_with(".m3u8") {
        return fail(
            StatusCode::NOT_FOUND,
            "only playlists and segments are served",
        );
    }
    let content = match s.store.get(&key).await {
        Ok(Some(c)) => c,
        Ok(None) => return fail(StatusCode::NOT_FOUND, format!("no {path} in {name}")),
        Err(StoreError::InvalidKey { .. }) => {
            return fail(StatusCode::BAD_REQUEST, "not an archive path")
        }
        Err(e) => return store_failed(e),
    };
    if path.ends_with(".m3u8") {
        let closed = content.windows(14).any(|w| w == b"#EXT-X-ENDLIST");
        let (kind, cache) = match closed {
            true => (
                ObjectKind::ClosedPlaylist,
                ObjectKind::ClosedPlaylist.cache_control(),
            ),
            false => (ObjectKind::OpenPlaylist, NO_CACHE),
        };
        return body(content, kind, cache);
    }
    segment(content, headers.get(header::RANGE))
}

/// A segment, whole or the byte range asked for (one range, RFC 9110).
fn segment(content: Bytes, range: Option<&HeaderValue>) -> Response {
    let len = content.len() as u64;
    let whole = || {
        let mut r = body(
            content.clone(),
            ObjectKind::Segment,
            ObjectKind::Segment.cache_control(),
        );
        r.headers_mut()
            .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        r
    };
    let asked = range
        .and_then(|v| v.to_str().ok())
        .map(|v| ByteRange::parse(v, len));
    let (first, last) = match asked {
        None | Some(ByteRange::Whole) => return whole(),
        Some(ByteRange::Part { first, last }) => (first, last),
        Some(ByteRange::Unsatisfiable) => {
            let mut r = fail(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable");
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    let mut r = body(
        content.slice(first as usize..=last as usize),
        ObjectKind::Segment,
        ObjectKind::Segment.cache_control(),
    );
    *r.status_mut() = StatusCode::PARTIAL_CONTENT;
    if let Ok(v) = HeaderValue::from_str(&format!("bytes {first}-{last}/{len}")) {
        r.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    r
}
