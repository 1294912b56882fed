//! The connection loop: what a client may hold of the server. Slow or
//! idle clients (slowloris) are cut off after the header timeout, header
//! size and count are bounded, a handler that waits on the store too long
//! answers 503, and connections beyond the cap are closed at once, so a few
//! hundred misbehaving clients cannot stop a player from getting its
//! playlist.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::config::HttpLimits;

/// Bytes of a request's start line and headers.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Headers in one request.
pub const MAX_HEADERS: usize = 64;

/// The server's connections: the slots the cap leaves, and how many
/// connections it turned away.
pub struct Connections {
    slots: Arc<Semaphore>,
    max: usize,
    refused: AtomicU64,
}

impl Connections {
    /// Room for `max` connections.
    pub fn new(max: usize) -> Self {
        Connections {
            slots: Arc::new(Semaphore::new(max)),
            max,
            refused: AtomicU64::new(0),
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.max - self.slots.available_permits()
    }

    /// Connections closed at accept because the cap was reached.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// Serves `app` on `listener` within `limits`, until the process ends.
pub async fn run(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: HttpLimits,
    connections: Arc<Connections>,
) -> std::io::Result<()> {
    let app = app.layer(axum::middleware::from_fn_with_state(
        limits.request_timeout,
        within_request_timeout,
    ));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_headers(MAX_HEADERS)
        .max_header_size(MAX_HEADER_BYTES);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, usually: accepting again at once
                // would spin.
                tracing::warn!(error = %e, "cannot accept a connection; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let Ok(slot) = connections.slots.clone().try_acquire_owned() else {
            if connections.refused.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    "connection cap reached: new connections are closed (counted in hlsvault_http_connections_refused_total)"
                );
            }
            continue;
        };
        // Playlists are small answers: no Nagle delay behind them.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request)
        });
        let connection = http.serve_connection(TokioIo::new(tcp), service);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
}

async fn within_request_timeout(
    axum::extract::State(limit): axum::extract::State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the store did not answer in time\n",
        )
            .into_response(),
    }
}
