//! etcd as the cluster talks to it: a connection to each endpoint, and
//! every call made to the endpoint that answered last, moving on to the
//! next one when it does not answer (a member that is down, or cut off).
//! etcd-client's own balanced channel keeps handing calls to a member
//! that refuses them; with one connection per endpoint the calls go on
//! through the members that are left.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions};

use crate::{ClusterError, ClusterSettings};

/// The cluster's etcd: cheap to clone (clones share the connections).
#[derive(Clone)]
pub struct Etcd {
    clients: Arc<Vec<Client>>,
    /// The endpoint that answered last.
    current: Arc<AtomicUsize>,
}

/// Connects to etcd's `endpoints`, and asks them for their status until
/// one answers: a client connects lazily, and an endpoint that does not
/// answer is said here.
pub async fn connect(settings: &ClusterSettings) -> Result<Etcd, ClusterError> {
    let options = || {
        ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(Duration::from_secs(2))
    };
    let unreachable = |source| ClusterError::Connect {
        endpoints: settings.etcd.join(","),
        source,
    };
    let mut clients = Vec::new();
    for endpoint in &settings.etcd {
        let client = Client::connect([endpoint], Some(options()))
            .await
            .map_err(unreachable)?;
        clients.push(client);
    }
    let etcd = Etcd {
        clients: Arc::new(clients),
        current: Arc::default(),
    };
    etcd.call(|mut c| async move { c.status().await })
        .await
        .map_err(unreachable)?;
    Ok(etcd)
}

impl Etcd {
    /// Makes the call `op` with the endpoint that answered last, and with
    /// each other in turn while they cannot be reached. Calls that change
    /// something may be made twice (the first answer lost): the cluster's
    /// are written so that doing them again changes nothing more.
    pub async fn call<T, F, Fut>(&self, op: F) -> Result<T, etcd_client::Error>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let n = self.clients.len();
        let first = self.current.load(Ordering::Relaxed);
        let mut failed = None;
        for k in 0..n {
            let i = (first + k) % n;
            match op(self.clients[i].clone()).await {
                Ok(answer) => {
                    self.current.store(i, Ordering::Relaxed);
                    return Ok(answer);
                }
                Err(e) if unanswered(&e) => failed = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(failed.unwrap_or_else(|| etcd_client::Error::InvalidArgs("no endpoint".into())))
    }
}

/// Whether the endpoint did not answer (another one may).
fn unanswered(e: &etcd_client::Error) -> bool {
    use tonic::Code;
    match e {
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        etcd_client::Error::GRpcStatus(s) => matches!(
            s.code(),
            Code::Unavailable | Code::Cancelled | Code::DeadlineExceeded | Code::Unknown
        ),
        _ => false,
    }
}
