//! Where the cluster keeps its state in etcd: one prefix, one folder per
//! kind of key.
//!
//! ```
//! use hlsvault_cluster::Keys;
//! let keys = Keys::default();
//! assert_eq!(keys.member("rec-a"), "/hlsvault/members/rec-a");
//! assert_eq!(keys.node_of(&keys.member("rec-a"), "members"), Some("rec-a"));
//! ```

/// The cluster's keys.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Default for Keys {
    fn default() -> Self {
        Keys {
            prefix: "/hlsvault/".to_string(),
        }
    }
}

impl Keys {
    /// A live member: bound to its lease, so it goes when the node does.
    pub fn member(&self, node: &str) -> String {
        format!("{}members/{node}", self.prefix)
    }

    /// A stream's owner: bound to the owner's lease; its create revision
    /// is the fencing token.
    pub fn owner(&self, stream: &str) -> String {
        format!("{}owners/{stream}", self.prefix)
    }

    /// What a stream's owners committed last (kept across owners).
    pub fn progress(&self, stream: &str) -> String {
        format!("{}progress/{stream}", self.prefix)
    }

    /// A node that records `stream` and could take it over now: bound to
    /// its lease. An owner hands the stream on only to a node that is.
    pub fn ready(&self, stream: &str, node: &str) -> String {
        format!("{}ready/{stream}/{node}", self.prefix)
    }

    /// The stream and node a ready key is about, if it is one.
    ///
    /// ```
    /// use hlsvault_cluster::Keys;
    /// let keys = Keys::default();
    /// assert_eq!(keys.ready_of(&keys.ready("ch1", "rec-b")), Some(("ch1", "rec-b")));
    /// ```
    pub fn ready_of<'a>(&self, key: &'a str) -> Option<(&'a str, &'a str)> {
        self.node_of(key, "ready")?
            .split_once('/')
            .filter(|(s, n)| !s.is_empty() && !n.is_empty())
    }

    /// An operator's drain of a node (kept until undone).
    pub fn drain(&self, node: &str) -> String {
        format!("{}drain/{node}", self.prefix)
    }

    /// The folder of a kind of key (`members`, `drain`, `owners`, `ready`), with its slash:
    /// a prefix to read or watch.
    pub fn folder(&self, kind: &str) -> String {
        format!("{}{kind}/", self.prefix)
    }

    /// The name a key of the folder `kind` is about, if it is one.
    pub fn node_of<'a>(&self, key: &'a str, kind: &str) -> Option<&'a str> {
        key.strip_prefix(&self.prefix)?
            .strip_prefix(kind)?
            .strip_prefix('/')
            .filter(|n| !n.is_empty())
    }
}
