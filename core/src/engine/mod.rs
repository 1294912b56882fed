//! Wiring and supervision: readers feed per-stream analysis threads, which
//! feed per-stream archive writers.
//!
//! ```text
//! capture file / interface ──reader thread──┬─> stream thread (RTP, TS, cutter, growing files) ──> archive task ──> store
//!   (one pass, demux by dst)                └─> stream thread ...                ──> archive task ──> store
//! ```
//!
//! Each stream runs on its own thread and task: a stream that fails (a
//! panic, a store error) is logged and counted, and the others go on. The
//! supervisor starts and stops them, also while running, when the
//! config file changes (see `hlsvault run --help`).
//! `[[playouts]]` run beside them as tasks that read the store (see
//! [`crate::replay`]), started and stopped by reload too.
//! With `[cluster]`, the supervisor runs only the streams the cluster
//! places on this node ([`node`]), and each stream's archive task follows
//! its duty there ([`duty`]): a standby buffers, the owner publishes,
//! every segment committed in etcd under a fenced claim.
//! SIGINT or SIGTERM stops the readers; every stream then flushes its open
//! segment and playlists, and the open hours stay open.

mod analysis;
mod archive;
mod check;
mod duty;
mod fenced;
mod figures_log;
mod growing;
mod hours;
mod node;
mod playouts;
mod plugins;
mod publish;
mod reader;
mod run;
mod sign;
mod sizes;
mod state;
mod store;
mod supervisor;
mod watch;

pub use analysis::StreamAnalysis;
pub use archive::{ArchiveSettings, StreamArchive};
pub use check::{check, preflight};
pub use duty::Committed;
pub use growing::Finished;
pub use hours::HourPublisher;
pub use reader::{Batch, Input, SourceReport};
pub use run::{run, Report};
pub use sign::sign;
pub use store::open_store;
