//! A node's membership: a lease it keeps alive, and its member key bound
//! to it, so that the key goes when the node does.
//!
//! The node knows how long its lease surely lives from its own monotonic
//! clock: a renewal sent at `sent` is counted by etcd from when etcd
//! received it, later. So until `sent + ttl - margin` the lease is alive,
//! whatever the machines' wall clocks say; after it, the node must act as
//! if it were gone (its streams may already be someone else's).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp};
use tokio::sync::watch;

use crate::{connect, ClusterError, ClusterSettings, Etcd, Keys};

/// This node in the cluster; leaves it when dropped (its lease is then
/// left to expire) or at once by [`Membership::leave`].
pub struct Membership {
    etcd: Etcd,
    node: String,
    lease: i64,
    ttl: Duration,
    alive_until: watch::Receiver<Option<Instant>>,
    /// The last renewal's round trip, in µs (0: none yet).
    renew_micros: Arc<AtomicU64>,
    renewing: tokio::task::JoinHandle<()>,
}

/// Taken off the lease's TTL: the renewal's trip, and the rates at which
/// the two machines' monotonic clocks run.
fn margin(ttl: Duration) -> Duration {
    (ttl / 4).max(Duration::from_millis(200))
}

impl Membership {
    /// Joins the cluster as `settings.node`: refused while a live member
    /// has that name.
    pub async fn join(settings: &ClusterSettings, keys: &Keys) -> Result<Self, ClusterError> {
        let etcd = connect(settings).await?;
        let seconds = settings.lease_seconds();
        let ttl = Duration::from_secs(seconds as u64);
        let sent = Instant::now();
        let lease = etcd
            .call(|mut c| async move { c.lease_grant(seconds, None).await })
            .await?
            .id();
        let key = keys.member(&settings.node);
        let value = serde_json::json!({ "node": settings.node, "pid": std::process::id() });
        let put = PutOptions::new().with_lease(lease);
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value.to_string(), Some(put))])
            .or_else([TxnOp::get(keys.member(&settings.node), None)]);
        let answer = etcd
            .call(|mut c| {
                let txn = txn.clone();
                async move { c.txn(txn).await }
            })
            .await?;
        // Our own key (the first answer was lost) is ours.
        let ours = answer.op_responses().into_iter().any(|r| match r {
            etcd_client::TxnOpResponse::Get(get) => {
                get.kvs().first().is_some_and(|kv| kv.lease() == lease)
            }
            _ => false,
        });
        if !answer.succeeded() && !ours {
            let _ = etcd
                .call(|mut c| async move { c.lease_revoke(lease).await })
                .await;
            return Err(ClusterError::NameTaken {
                node: settings.node.clone(),
            });
        }
        let (tx, alive_until) = watch::channel(Some(sent + ttl - margin(ttl)));
        let renew_micros = Arc::new(AtomicU64::new(0));
        let renewing = tokio::spawn(renew(etcd.clone(), lease, ttl, tx, renew_micros.clone()));
        tracing::info!(node = %settings.node, lease = %humantime::format_duration(ttl), "joined the cluster");
        Ok(Membership {
            etcd,
            node: settings.node.clone(),
            lease,
            ttl,
            alive_until,
            renew_micros,
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

    /// The last lease renewal's round trip (None before the first).
    pub fn renew_latency(&self) -> Option<Duration> {
        match self.renew_micros.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    /// The lease's time to live.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The lease's id at etcd.
    pub fn lease(&self) -> i64 {
        self.lease
    }

    /// The cluster's etcd.
    pub fn etcd(&self) -> &Etcd {
        &self.etcd
    }

    /// Leaves now: the lease is revoked, and the member key with it (and
    /// every stream this node owned).
    pub async fn leave(&self) -> Result<(), ClusterError> {
        self.renewing.abort();
        let lease = self.lease;
        self.etcd
            .call(|mut c| async move { c.lease_revoke(lease).await })
            .await?;
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
    etcd: Etcd,
    lease: i64,
    ttl: Duration,
    alive_until: watch::Sender<Option<Instant>>,
    renew_micros: Arc<AtomicU64>,
) {
    let period = ttl / 3;
    let gone = || {
        tracing::error!(
            lease,
            "the cluster lease expired at etcd: this node is out of the cluster"
        );
        alive_until.send_replace(None);
    };
    loop {
        match etcd
            .call(|mut c| async move { c.lease_keep_alive(lease).await })
            .await
        {
            Ok((mut keeper, mut answers)) => loop {
                let sent = Instant::now();
                if keeper.keep_alive().await.is_err() {
                    break;
                }
                match tokio::time::timeout(period, answers.message()).await {
                    Ok(Ok(Some(answer))) if answer.ttl() > 0 => {
                        let took = sent.elapsed().as_micros() as u64;
                        renew_micros.store(took.max(1), Ordering::Relaxed);
                        let granted = Duration::from_secs(answer.ttl() as u64);
                        alive_until.send_replace(Some(sent + granted - margin(granted)));
                    }
                    Ok(Ok(Some(_))) => return gone(),
                    _ => break,
                }
                tokio::time::sleep_until((sent + period).into()).await;
            },
            // etcd-client's word when its first answer has no TTL.
            Err(etcd_client::Error::LeaseKeepAliveError(e)) if e.contains("not found") => {
                return gone()
            }
            Err(e) => tracing::warn!(error = %e, "cannot renew the cluster lease; retrying"),
        }
        tokio::time::sleep(period / 4).await;
    }
}
