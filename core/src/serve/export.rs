//! Clips over HTTP: any time range as one TS or MP4 file. The length is
//! known before the first byte (an MP4 costs a first pass over the
//! segments for it), the file streams a few segments at a time, and a
//! client that goes away stops the work.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use super::{fail, store_failed, unknown, RangeQuery, Served, NO_CACHE};
use crate::export::{self, Clip, ClipFormat, ExportError};
use hlsvault_mp4::Mp4Error;

/// Names the streams an MP4 leaves out (teletext, subtitles, SCTE-35).
pub(super) const DROPPED_HEADER: &str = "x-hlsvault-dropped";

/// `GET /streams/{name}/export.ts`: the segments spliced (see
/// [`export::ts`]).
pub(super) async fn ts(
    State(s): State<Served>,
    method: Method,
    Path(name): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Response {
    clip_file(&s, &method, &name, &q, ClipFormat::Ts).await
}

/// `GET /streams/{name}/export.mp4`: the segments remuxed (see
/// [`export::mp4`]).
pub(super) async fn mp4(
    State(s): State<Served>,
    method: Method,
    Path(name): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Response {
    clip_file(&s, &method, &name, &q, ClipFormat::Mp4).await
}

async fn clip_file(
    s: &Served,
    method: &Method,
    name: &str,
    q: &RangeQuery,
    format: ClipFormat,
) -> Response {
    let clip = match planned(s, name, q).await {
        Ok(clip) => clip,
        Err(response) => return response,
    };
    let file = match clip.file(s.store.clone(), format).await {
        Ok(file) => file,
        Err(e) => return failed(e),
    };
    let h = headers(&clip, format, file.len, &file.left);
    if method == Method::HEAD {
        return h.into_response();
    }
    let body = file.body.inspect(|r| {
        if let Err(e) = r {
            tracing::warn!(error = %e, "a clip failed while it was sent");
        }
    });
    let body = axum::body::Body::from_stream(s.exports.counted(body, file.len));
    (h, body).into_response()
}

/// The query of a still: `at`, RFC 3339 (the newest segment without).
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct PreviewQuery {
    at: Option<String>,
}

/// `GET /streams/{name}/preview.mp4`: the keyframe nearest `at`, or the
/// newest segment's, as a one-picture MP4 (see [`export::preview`]).
pub(super) async fn preview(
    State(s): State<Served>,
    Path(name): Path<String>,
    Query(q): Query<PreviewQuery>,
) -> Response {
    if s.known(&name).is_none() {
        return unknown(&name);
    }
    let at = match q
        .at
        .as_deref()
        .map(humantime::parse_rfc3339_weak)
        .transpose()
    {
        Ok(at) => at,
        Err(e) => return fail(StatusCode::BAD_REQUEST, format!("at: {e} (RFC 3339)")),
    };
    match export::preview(s.store.as_ref(), &name, at).await {
        Ok(mp4) => {
            // A moment's still never changes; the newest does.
            let cache = if at.is_some() {
                "public, max-age=86400"
            } else {
                NO_CACHE
            };
            (
                [
                    (header::CONTENT_TYPE, "video/mp4"),
                    (header::CACHE_CONTROL, cache),
                ],
                mp4,
            )
                .into_response()
        }
        Err(e) => failed(e),
    }
}

/// The clip the query asks for, or the response that says why not.
async fn planned(s: &Served, name: &str, q: &RangeQuery) -> Result<Clip, Response> {
    if s.known(name).is_none() {
        return Err(unknown(name));
    }
    let (start, end) = q
        .time_range()
        .map_err(|message| fail(StatusCode::BAD_REQUEST, message))?;
    export::plan(s.store.as_ref(), name, start, end, s.export_max)
        .await
        .map_err(failed)
}

/// The response to a clip that cannot be made: MP4 that cannot carry the
/// stream's video is 422 (the same range exports as TS).
fn failed(e: ExportError) -> Response {
    let status = match e {
        ExportError::Store(e) => return store_failed(e),
        ExportError::TooLong { .. } => StatusCode::BAD_REQUEST,
        ExportError::Nothing { .. } => StatusCode::NOT_FOUND,
        ExportError::Mp4(Mp4Error::Box(_)) => StatusCode::INTERNAL_SERVER_ERROR,
        ExportError::Mp4(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ExportError::Gone(_) => StatusCode::NOT_FOUND,
    };
    fail(status, e.to_string())
}

fn headers(clip: &Clip, format: ClipFormat, len: Option<u64>, left: &[String]) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Some(len) = len {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE));
    let name = clip.file_name(format.extension());
    let disposition = format!("attachment; filename=\"{name}\"");
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&left.join(", ")) {
        if !left.is_empty() {
            h.insert(DROPPED_HEADER, v);
        }
    }
    h
}
