//! A stream's ownership: one key per stream, created by its owner and bound
//! to the owner's lease. The key's create revision is the fencing token:
//! every commit is a transaction that checks the key still has it, so a
//! node whose lease is gone (it froze, or was cut off) can never commit
//! after another node took the stream, whatever it believes; and before
//! asking, a node whose lease may have expired by its own clock does not.

use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp};

use crate::{ClusterError, Etcd, Keys, Membership};

/// This node's hold on a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    stream: String,
    owner: String,
    progress: String,
    /// The owner key's create revision.
    token: i64,
}

impl Claim {
    /// The fence: the owner key still has this claim's create revision.
    fn still_held(&self) -> Compare {
        Compare::create_revision(self.owner.clone(), CompareOp::Equal, self.token)
    }

    /// The stream it is for.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The fencing token: the owner key's create revision at etcd.
    pub fn token(&self) -> i64 {
        self.token
    }
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// The stream is this node's.
    Held(Claim),
    /// Another node (or this one, under an older lease) holds it.
    Taken { by: String },
}

impl Membership {
    /// Claims `stream` for this node, unless a live owner holds it. A
    /// claim this node made under its current lease (and gave up locally,
    /// unable to renew for a while) is its own again.
    pub async fn claim(&self, keys: &Keys, stream: &str) -> Result<Claimed, ClusterError> {
        let owner = keys.owner(stream);
        let put = PutOptions::new().with_lease(self.lease());
        let txn = Txn::new()
            .when([Compare::create_revision(owner.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(owner.clone(), self.node(), Some(put))])
            .or_else([TxnOp::get(owner.clone(), None)]);
        let answer = self.etcd().call(|c| send(c, txn.clone())).await?;
        let claim = |token| {
            Claimed::Held(Claim {
                stream: stream.to_string(),
                owner: owner.clone(),
                progress: keys.progress(stream),
                token,
            })
        };
        if answer.succeeded() {
            return Ok(claim(answer.header().map_or(0, |h| h.revision())));
        }
        Ok(match held(&answer) {
            Some(kv) if kv.lease() == self.lease() => claim(kv.create_revision()),
            kv => Claimed::Taken {
                by: kv
                    .and_then(|kv| kv.value_str().ok().map(str::to_string))
                    .unwrap_or_default(),
            },
        })
    }

    /// Commits `progress` (what the owner published last) under `claim`:
    /// refused, and nothing written, unless this node's lease surely lives
    /// and the owner key still has the claim's token.
    pub async fn commit(&self, claim: &Claim, progress: &str) -> Result<(), ClusterError> {
        let fenced = |holder: Option<String>| ClusterError::Fenced {
            stream: claim.stream.clone(),
            holder,
        };
        if !self.alive() {
            return Err(fenced(None));
        }
        let txn = Txn::new()
            .when([claim.still_held()])
            .and_then([TxnOp::put(claim.progress.clone(), progress, None)])
            .or_else([TxnOp::get(claim.owner.clone(), None)]);
        let answer = self.etcd().call(|c| send(c, txn.clone())).await?;
        match answer.succeeded() {
            true => Ok(()),
            false => Err(fenced(holder(&answer))),
        }
    }

    /// Says that this node records `stream` and could take it over now
    /// (bound to its lease), or with `ready` false, no longer.
    pub async fn mark_ready(
        &self,
        keys: &Keys,
        stream: &str,
        ready: bool,
    ) -> Result<(), ClusterError> {
        let key = keys.ready(stream, self.node());
        let lease = self.lease();
        let etcd = self.etcd();
        match ready {
            true => drop(
                etcd.call(|mut c| {
                    let (key, put) = (key.clone(), PutOptions::new().with_lease(lease));
                    async move { c.put(key, "", Some(put)).await }
                })
                .await?,
            ),
            false => drop(
                etcd.call(|mut c| {
                    let key = key.clone();
                    async move { c.delete(key, None).await }
                })
                .await?,
            ),
        }
        Ok(())
    }

    /// What `stream`'s owners committed last, if anything.
    pub async fn progress(
        &self,
        keys: &Keys,
        stream: &str,
    ) -> Result<Option<String>, ClusterError> {
        progress(self.etcd(), keys, stream).await
    }

    /// Gives `claim`'s stream up (if it is still this node's).
    pub async fn release(&self, claim: Claim) -> Result<(), ClusterError> {
        let txn = Txn::new()
            .when([claim.still_held()])
            .and_then([TxnOp::delete(claim.owner, None)]);
        self.etcd().call(|c| send(c, txn.clone())).await?;
        Ok(())
    }
}

/// What the stream's owners committed last, if anything.
pub async fn progress(
    etcd: &Etcd,
    keys: &Keys,
    stream: &str,
) -> Result<Option<String>, ClusterError> {
    let key = keys.progress(stream);
    let answer = etcd
        .call(|mut c| {
            let key = key.clone();
            async move { c.get(key, None).await }
        })
        .await?;
    Ok(answer
        .kvs()
        .first()
        .and_then(|kv| kv.value_str().ok())
        .map(str::to_string))
}

/// Sends `txn` with `client`.
async fn send(
    mut client: etcd_client::Client,
    txn: Txn,
) -> Result<etcd_client::TxnResponse, etcd_client::Error> {
    client.txn(txn).await
}

/// The owner key a failed transaction's `get` found.
fn held(answer: &etcd_client::TxnResponse) -> Option<etcd_client::KeyValue> {
    answer.op_responses().into_iter().find_map(|r| match r {
        etcd_client::TxnOpResponse::Get(get) => get.kvs().first().cloned(),
        _ => None,
    })
}

/// The owner a failed transaction's `get` found.
fn holder(answer: &etcd_client::TxnResponse) -> Option<String> {
    held(answer).and_then(|kv| kv.value_str().ok().map(str::to_string))
}
