//! hlsvault on several machines. Every node loads the same config and
//! computes the same answer to "who records this stream": the placement
//! is a pure function of the stream's name, the live members and the
//! operator's pins and drains, so nodes agree without asking each other.
//!
//! ```
//! use hlsvault_cluster::{place, Member};
//! let members = [Member::new("rec-a"), Member::new("rec-b"), Member::new("rec-c")];
//! let placed = place("ch1", &members, None, 2);
//! let (owner, standby) = (placed.owner.unwrap(), placed.standby.unwrap());
//! assert_ne!(owner, standby);
//! // Every node computes the same.
//! assert_eq!(place("ch1", &members, None, 2).owner.as_deref(), Some(owner.as_str()));
//! ```

mod error;
mod etcd;
mod keys;
mod membership;
mod ownership;
mod placement;
mod settings;
mod view;

pub use error::ClusterError;
pub use etcd::{connect, Etcd};
pub use keys::Keys;
pub use membership::Membership;
pub use ownership::{progress, Claim, Claimed};
pub use placement::{place, Member, Placement};
pub use settings::ClusterSettings;
pub use view::{drain, members, view, View};
