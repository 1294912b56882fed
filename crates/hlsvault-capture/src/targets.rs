//! What a live source receives, and how it follows changes while running.
//!
//! The reader owns the list of [`Target`]s and changes it when streams are
//! added or removed (a config reload). The source applies a change within a
//! tick, in place: the capture handle stays open and sockets of targets
//! that stay are never reopened, so the other streams see no gap.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use socket2::Socket;

use crate::{CaptureError, Endpoint};

/// One stream a live source receives, under the id its reader knows it by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The reader's id for it: [`super::Datagram::endpoint`] and
    /// [`super::Event::SocketDrops`] name it.
    pub id: usize,
    /// What to receive.
    pub endpoint: Endpoint,
    /// Kernel buffer asked for it, in bytes.
    pub buffer: usize,
}

/// The targets of a live source, shared by its reader (who changes them)
/// and the source (who applies the change).
#[derive(Debug, Default)]
pub struct Targets {
    version: AtomicU64,
    list: Mutex<Vec<Target>>,
}

impl Targets {
    /// Targets to start with.
    pub fn new(list: Vec<Target>) -> Arc<Self> {
        Arc::new(Targets {
            version: AtomicU64::new(0),
            list: Mutex::new(list),
        })
    }

    /// Replaces the targets; the source applies them at its next tick.
    pub fn set(&self, list: Vec<Target>) {
        *self.list.lock().expect("targets lock") = list;
        self.version.fetch_add(1, Ordering::Release);
    }

    /// The targets now.
    pub fn get(&self) -> Vec<Target> {
        self.list.lock().expect("targets lock").clone()
    }

    fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }
}

/// A socket per target, kept in step with [`Targets`]. A socket that
/// cannot be opened while running is logged and tried again at each
/// retry; the other targets carry on.
pub(super) struct TargetSockets {
    targets: Arc<Targets>,
    seen: u64,
    /// Every wanted target, in order.
    wanted: Vec<Target>,
    open: Vec<(Target, Socket)>,
    /// Targets whose socket failed, with the error last logged.
    failing: HashMap<usize, String>,
}

impl TargetSockets {
    /// Opens a socket for every target; the first failure ends the source
    /// (it is then retried whole, with backoff).
    pub(super) fn open_all(
        targets: Arc<Targets>,
        open: impl Fn(&Target) -> Result<Socket, CaptureError>,
    ) -> Result<Self, CaptureError> {
        let seen = targets.version();
        let wanted = targets.get();
        let open = wanted
            .iter()
            .map(|t| open(t).map(|s| (*t, s)))
            .collect::<Result<_, _>>()?;
        Ok(TargetSockets {
            targets,
            seen,
            wanted,
            open,
            failing: HashMap::new(),
        })
    }

    /// Every wanted target (with a socket or not).
    pub(super) fn wanted(&self) -> &[Target] {
        &self.wanted
    }

    /// The open sockets.
    pub(super) fn sockets(&self) -> &[(Target, Socket)] {
        &self.open
    }

    /// Follows a change of the targets, and with `retry` tries the failed
    /// ones again. Returns whether anything changed.
    pub(super) fn sync(
        &mut self,
        retry: bool,
        open: impl Fn(&Target) -> Result<Socket, CaptureError>,
    ) -> bool {
        let version = self.targets.version();
        let changed = version != self.seen;
        let retrying = retry && !self.failing.is_empty();
        if !changed && !retrying {
            return false;
        }
        if changed {
            self.seen = version;
            self.wanted = self.targets.get();
            let wanted = &self.wanted;
            self.open.retain(|(t, _)| wanted.contains(t));
            self.failing
                .retain(|id, _| wanted.iter().any(|t| t.id == *id));
        }
        let mut opened = false;
        for t in &self.wanted {
            if self.open.iter().any(|(o, _)| o == t) {
                continue;
            }
            match open(t) {
                Ok(s) => {
                    if self.failing.remove(&t.id).is_some() {
                        tracing::info!(endpoint = %t.endpoint.dst(), "receiving now");
                    }
                    self.open.push((*t, s));
                    opened = true;
                }
                Err(e) => {
                    let reason = e.to_string();
                    if self.failing.get(&t.id) != Some(&reason) {
                        tracing::error!(endpoint = %t.endpoint.dst(), error = %reason, "cannot receive a new stream; trying again every second");
                        self.failing.insert(t.id, reason);
                    }
                }
            }
        }
        changed || opened
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::{Event, Flow, Source};
    use std::net::UdpSocket;
    use std::time::Duration;

    const SENT: u32 = 400;

    fn free_port() -> u16 {
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    }

    /// Receives stream A while stream B is added: A loses nothing across
    /// the change, B arrives whole from when it was added.
    pub fn retarget_while_receiving(make: impl FnOnce(Arc<Targets>) -> Box<dyn Source>) {
        let target = |id, port| Target {
            id,
            endpoint: Endpoint {
                group: "127.0.0.1".parse().unwrap(),
                port,
                source: None,
            },
            buffer: 1 << 20,
        };
        let (a, b) = (target(0, free_port()), target(7, free_port()));
        let targets = Targets::new(vec![a]);
        let mut src = make(targets.clone());
        let ports = [a.endpoint.port, b.endpoint.port];
        let sender = std::thread::spawn(move || {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            std::thread::sleep(Duration::from_millis(200));
            for i in 0..SENT {
                let mut p = vec![0x47u8; 1316];
                p[1..5].copy_from_slice(&i.to_be_bytes());
                for port in ports {
                    s.send_to(&p, ("127.0.0.1", port)).unwrap();
                }
                std::thread::sleep(Duration::from_millis(3));
            }
        });
        // Datagram numbers received per port.
        let mut got: HashMap<u16, Vec<u32>> = HashMap::new();
        let mut ticks = 0;
        src.run(&mut |e| {
            match e {
                Event::Datagram(d) => {
                    if let Some(id) = d.endpoint {
                        let t = targets.get();
                        let t = t.iter().find(|t| t.id == id).expect("a known target");
                        assert_eq!(t.endpoint.dst(), d.dst);
                    }
                    let n = u32::from_be_bytes(d.payload[1..5].try_into().unwrap());
                    got.entry(d.dst.port()).or_default().push(n);
                }
                Event::Tick => {
                    ticks += 1;
                    if ticks == 8 {
                        targets.set(vec![a, b]);
                    }
                }
                _ => {}
            }
            let done = got.get(&a.endpoint.port).map_or(0, Vec::len) == SENT as usize
                && got.get(&b.endpoint.port).and_then(|v| v.last()) == Some(&(SENT - 1));
            match done || ticks > 200 {
                true => Flow::Stop,
                false => Flow::Continue,
            }
        })
        .unwrap();
        sender.join().unwrap();
        assert_eq!(got[&a.endpoint.port], (0..SENT).collect::<Vec<_>>());
        let later = &got[&b.endpoint.port];
        let first = later[0];
        assert!(first > 0, "B was added while A ran");
        assert_eq!(*later, (first..SENT).collect::<Vec<_>>(), "B arrives whole");
    }
}
