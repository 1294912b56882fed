//! Bearer tokens for the playback endpoints: `Authorization: Bearer T` or
//! `?token=T` (then the playlists served carry it on to their relative
//! segment URIs, so that players without custom headers play). Tokens are
//! compared in constant time; failures are counted and, past a few a
//! minute from one client, answered 429.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::Secret;

/// Failures one client may have in [`WINDOW`] before it is refused.
const FAILURES: u32 = 10;
const WINDOW: Duration = Duration::from_secs(60);

/// What the gate knows.
pub struct Gate {
    tokens: Vec<Secret>,
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    refused: AtomicU64,
}

impl Gate {
    /// A gate for `tokens` (none: open).
    pub fn new(tokens: Vec<Secret>) -> Self {
        Gate {
            tokens,
            failures: Mutex::new(HashMap::new()),
            refused: AtomicU64::new(0),
        }
    }

    /// Requests refused so far for a missing or wrong token.
    pub fn failures(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    fn accepts(&self, given: &str) -> bool {
        // Every token is compared, in constant time for its length.
        self.tokens.iter().fold(false, |ok, t| {
            ok | constant_time_eq(t.expose().as_bytes(), given.as_bytes())
        })
    }

    /// Counts a failure; says whether the client is over its limit.
    fn fail(&self, client: IpAddr) -> bool {
        let n = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        let mut f = self.failures.lock().expect("gate lock");
        let entry = f.entry(client).or_insert((Instant::now(), 0));
        if entry.0.elapsed() > WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
        if entry.1 == 1 || n.is_power_of_two() {
            tracing::warn!(%client, total = n, "playback request refused: missing or wrong token");
        }
        entry.1 > FAILURES
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn query_token(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .map(|t| {
            urlencoding::decode(&t.replace('+', " "))
                .map_or_else(|_| t.to_string(), |d| d.into_owned())
        })
}

/// The middleware.
pub async fn require(
    State(gate): State<Arc<Gate>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    if gate.tokens.is_empty() {
        return next.run(req).await;
    }
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let in_query = query_token(req.uri().query());
    let ok = bearer
        .as_deref()
        .or(in_query.as_deref())
        .is_some_and(|t| gate.accepts(t));
    if !ok {
        let status = match gate.fail(client.ip()) {
            true => StatusCode::TOO_MANY_REQUESTS,
            false => StatusCode::UNAUTHORIZED,
        };
        return (
            status,
            "a valid token is required: Authorization: Bearer TOKEN, or ?token=TOKEN\n",
        )
            .into_response();
    }
    let response = next.run(req).await;
    match (bearer, in_query) {
        (None, Some(token)) => carry_token(response, &token).await,
        _ => response,
    }
}

/// Appends `?token=` to the relative URIs of a playlist response.
async fn carry_token(response: Response, token: &str) -> Response {
    let is_playlist = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/vnd.apple.mpegurl"));
    if !is_playlist {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 << 20).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "playlist too large\n").into_response();
    };
    let encoded: String = token
        .bytes()
        .map(|c| match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (c as char).to_string()
            }
            _ => format!("%{c:02X}"),
        })
        .collect();
    let text: String = String::from_utf8_lossy(&bytes)
        .lines()
        .map(
            |l| match l.starts_with('#') || l.is_empty() || l.contains("://") {
                true => format!("{l}\n"),
                false => format!("{l}?token={encoded}\n"),
            },
        )
        .collect();
    let mut response = Response::from_parts(parts, Body::from(text));
    response.headers_mut().remove(header::CONTENT_LENGTH);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole_and_decode_from_the_query() {
        let gate = Gate::new(vec![Secret::new("s3cret+1")]);
        assert!(gate.accepts("s3cret+1"));
        assert!(!gate.accepts("s3cret 1"));
        assert!(!gate.accepts("s3cret+"));
        assert!(!gate.accepts("s3cret+2"));
        assert_eq!(
            query_token(Some("start=x&token=s3cret%2B1")),
            Some("s3cret+1".into())
        );
        assert_eq!(query_token(Some("start=x")), None);
    }
}
