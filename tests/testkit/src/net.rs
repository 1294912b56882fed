//! A private network for live capture tests: a veth pair whose far end sits
//! in a network namespace the test creates and removes. Senders run inside
//! the namespace; hlsvault captures on the near end. Needs root.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering};

use anyhow::{bail, Context, Result};

use crate::run;

static NEXT: AtomicU8 = AtomicU8::new(0);

/// Names and addresses of one test network, chosen before it exists (so a
/// test can start hlsvault before its interface is there).
#[derive(Debug, Clone)]
pub struct NetPlan {
    /// The namespace.
    pub ns: String,
    /// The veth end on the host, where hlsvault captures.
    pub host_if: String,
    /// The veth end inside the namespace, where senders send.
    pub ns_if: String,
    /// The host end's address.
    pub host_addr: Ipv4Addr,
    /// The namespace end's address.
    pub ns_addr: Ipv4Addr,
}

impl NetPlan {
    /// A plan unique to this process and call.
    pub fn new() -> Self {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let tag = format!("{:x}{n:x}", pid % 0xFFFF);
        let subnet = [10, 99, (pid % 200) as u8 + n.wrapping_mul(7) % 50];
        NetPlan {
            ns: format!("hvns{tag}"),
            host_if: format!("hvh{tag}"),
            ns_if: format!("hvn{tag}"),
            host_addr: Ipv4Addr::new(subnet[0], subnet[1], subnet[2], 1),
            ns_addr: Ipv4Addr::new(subnet[0], subnet[1], subnet[2], 2),
        }
    }

    /// Creates the namespace and the veth pair, up, with multicast routed
    /// out of the namespace end and reverse-path filtering off on the host
    /// end (test senders use made-up source addresses).
    pub fn create(self) -> Result<Netns> {
        if unsafe { libc::geteuid() } != 0 {
            bail!("live capture tests need root (network namespaces, veth pairs, libpcap)");
        }
        let net = Netns { plan: self };
        let p = &net.plan;
        let host = format!("{}/24", p.host_addr);
        let inner = format!("{}/24", p.ns_addr);
        let steps: Vec<Vec<&str>> = vec![
            vec!["ip", "netns", "add", &p.ns],
            vec![
                "ip", "link", "add", &p.host_if, "type", "veth", "peer", "name", &p.ns_if, "netns",
                &p.ns,
            ],
            vec!["ip", "addr", "add", &host, "dev", &p.host_if],
            vec!["ip", "link", "set", &p.host_if, "up"],
            vec!["ip", "-n", &p.ns, "addr", "add", &inner, "dev", &p.ns_if],
            vec!["ip", "-n", &p.ns, "link", "set", &p.ns_if, "up"],
            vec!["ip", "-n", &p.ns, "link", "set", "lo", "up"],
            vec![
                "ip",
                "-n",
                &p.ns,
                "route",
                "add",
                "224.0.0.0/4",
                "dev",
                &p.ns_if,
            ],
        ];
        for step in steps {
            run(Command::new(step[0]).args(&step[1..]))?;
        }
        for iface in ["all", p.host_if.as_str()] {
            std::fs::write(format!("/proc/sys/net/ipv4/conf/{iface}/rp_filter"), "0")
                .with_context(|| format!("rp_filter off on {iface}"))?;
        }
        Ok(net)
    }
}

impl Default for NetPlan {
    fn default() -> Self {
        Self::new()
    }
}

/// A live test network; removed when dropped.
#[derive(Debug)]
pub struct Netns {
    /// Its names and addresses.
    pub plan: NetPlan,
}

impl Netns {
    /// A command run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.plan.ns, program]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes the veth pair with it.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.plan.ns])
            .status();
    }
}
