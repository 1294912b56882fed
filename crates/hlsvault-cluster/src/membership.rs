//! A node's membership: a lease it keeps alive, and its member key bound
//! to it, so that the key goes when the node does.
//!
//! The node knows how long its lease surely lives from its own monotonic
//! clock: a renewal sent at `sent` is counted by etcd from when etcd
//! received it, later. So until `sent + ttl - margin` the lease is alive,
//! whatever the machines' wall clocks say; after it, the node must act as
//! if it were gone (its streams may already be someone else's).

use std::time::{Duration, Instant};

use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp};
use tokio::sync::watch;

use crate::{ClusterError, ClusterSettings, Keys};

/// This node in the cluster; leaves it when dropped (its lease is then
/// left to expire) or at once by [`Membership::leave`].
pub struct Membership {
    client: Client,
    node: String,
    lease: i64,
    alive_until: watch::Receiver<Option<Instant>>,
    renewing: tokio::task::JoinHandle<()>,
}

/// Taken off the lease's TTL: the renewal's trip, and the rates at which
/// the two machines' monotonic clocks run.
fn margin(ttl: Duration) -> Duration {
    (ttl / 4).max(Duration::from_millis(200))
}

/// Connects to etcd's `endpoints`, and asks one for its status: a client
/// connects lazily, and an endpoint that does not answer is said here.
pub async fn connect(settings: &ClusterSettings) -> Result<Client, ClusterError> {
    let options = etcd_client::ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_timeout(Duration::from_secs(2));
    let unreachable = |source| ClusterError::Connect {
        endpoints: settings.etcd.join(","),
        source,
    };
    let mut client = Client::connect(&settings.etcd, Some(options))
        .await
        .map_err(unreachable)?;
    client.status().await.map_err(unreachable)?;
    Ok(client)
}

impl Membership {
    /// Joins the cluster as `settings.node`: refused while a live member
    /// has that name.
    pub async fn join(settings: &ClusterSettings, keys: &Keys) -> Result<Self, ClusterError> {
        let mut client = connect(settings).await?;
        let seconds = settings.lease_seconds();
        let ttl = Duration::from_secs(seconds as u64);
        let sent = Instant::now();
        let lease = client.lease_grant(seconds, None).await?.id();
        let key = keys.member(&settings.node);
        let value = serde_json::json!({ "node": settings.node, "pid": std::process::id() });
        let put = PutOptions::new().with_lease(lease);
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value.to_string(), Some(put))]);
        if !client.txn(txn).await?.succeeded() {
            let _ = client.lease_revoke(lease).await;
            return Err(ClusterError::NameTaken {
                node: settings.node.clone(),
            });
        }
        let (tx, alive_until) = watch::channel(Some(sent + ttl - margin(ttl)));
        let renewing = tokio::spawn(renew(client.clone(), lease, ttl, tx));
        tracing::info!(node = %settings.node, lease = %humantime::format_duration(ttl), "joined the cluster");
        Ok(Membership {
            client,
            node: settings.node.clone(),
            lease,
            alive_until,
            renewing,
        })
    }

    /// Whether the lease surely still lives: false from its deadline on
    /// (by this node's monotonic clock), and once etcd said it is gone.
    pub fn alive(&self) -> bool {
        matches!(*self.alive_until.borrow(), Some(until) if Instant::now() < until)
    }

    /// Until when the lease surely lives; None once it is gone.
    pub fn alive_until(&self) -> Option<Instant> {
        *self.alive_until.borrow()
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The lease's id at etcd.
    pub fn lease(&self) -> i64 {
        self.lease
    }

    /// A client of the cluster's etcd.
    pub(crate) fn client(&self) -> Client {
        self.client.clone()
    }

    /// Leaves now: the lease is revoked, and the member key with it (and
    /// every stream this node owned).
    pub async fn leave(&self) -> Result<(), ClusterError> {
        self.renewing.abort();
        self.client.clone().lease_revoke(self.lease).await?;
        Ok(())
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.renewing.abort();
    }
}

/// Keeps the lease alive: a renewal every third of its TTL; each answer
/// moves the deadline. Errors are retried (a new stream, perhaps to
/// another endpoint) until the lease is gone.
async fn renew(
    mut client: Client,
    lease: i64,
    ttl: Duration,
    alive_until: watch::Sender<Option<Instant>>,
) {
    let period = ttl / 3;
    loop {
        match client.lease_keep_alive(lease).await {
            Ok((mut keeper, mut answers)) => {
                loop {
                    let sent = Instant::now();
                    if keeper.keep_alive().await.is_err() {
                        break;
                    }
                    match tokio::time::timeout(period, answers.message()).await {
                        Ok(Ok(Some(answer))) if answer.ttl() > 0 => {
                            let granted = Duration::from_secs(answer.ttl() as u64);
                            alive_until.send_replace(Some(sent + granted - margin(granted)));
                        }
                        Ok(Ok(Some(_))) => {
                            tracing::error!(lease, "the cluster lease expired at etcd: this node is out of the cluster");
                            alive_until.send_replace(None);
                            return;
                        }
                        _ => break,
                    }
                    tokio::time::sleep_until((sent + period).into()).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot renew the cluster lease; retrying"),
        }
        tokio::time::sleep(period / 4).await;
    }
}
