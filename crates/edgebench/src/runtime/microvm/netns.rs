//! One network namespace per VM, created by edgebench: a tap inside it, the
//! host end addressed, a static neighbour entry for the guest. Nothing is
//! routed out of it: the guest can reach only the tap's host end.

use anyhow::{bail, Context as _, Result};
use std::fs::File;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Every namespace edgebench creates starts with this (then its pid).
pub const PREFIX: &str = "eb-vm-";
pub const TAP: &str = "ebtap0";
pub const HOST_IP: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 1);
pub const GUEST_IP: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 2);
pub const NET_PREFIX: u8 = 30;
pub const GUEST_MAC: &str = "52:54:00:eb:00:02";
const TAP_MAC: &str = "02:eb:00:00:00:01";

static NEXT: AtomicU32 = AtomicU32::new(0);

pub struct Netns {
    name: String,
    /// Open handle on the namespace (for setns).
    handle: File,
    deleted: bool,
}

impl Netns {
    /// A new namespace named `eb-vm-<pid>-<n>` with its tap, ready for a guest.
    pub fn create() -> Result<Netns> {
        let name = format!("{PREFIX}{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
        ip(&["netns", "add", &name])?;
        let handle = match File::open(format!("/run/netns/{name}")) {
            Ok(f) => f,
            Err(e) => {
                let _ = ip(&["netns", "del", &name]);
                bail!("opening /run/netns/{name}: {e}");
            }
        };
        let ns = Netns { name, handle, deleted: false };
        ns.configure().with_context(|| format!("configuring network namespace {}", ns.name))?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn handle(&self) -> &File {
        &self.handle
    }

    fn configure(&self) -> Result<()> {
        let script = format!(
            "link set lo up\n\
             tuntap add dev {TAP} mode tap\n\
             link set {TAP} address {TAP_MAC}\n\
             addr add {HOST_IP}/{NET_PREFIX} dev {TAP}\n\
             link set {TAP} up\n\
             neigh replace {GUEST_IP} lladdr {GUEST_MAC} dev {TAP} nud permanent\n"
        );
        let mut child = Command::new("ip")
            .args(["-n", &self.name, "-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("running ip (iproute2)")?;
        child.stdin.take().unwrap().write_all(script.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!("ip -batch failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        self.verify_route()
    }

    /// Traffic to the guest must leave by our tap and nothing else.
    pub fn verify_route(&self) -> Result<()> {
        let out = Command::new("ip").args(["-n", &self.name, "route", "get", &GUEST_IP.to_string()]).output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !text.split_whitespace().collect::<Vec<_>>().windows(2).any(|w| w == ["dev", TAP]) {
            bail!("route to the guest {GUEST_IP} in {} is not via {TAP}: {}", self.name, text.trim());
        }
        Ok(())
    }

    /// Moves the calling thread into this namespace.
    pub fn enter(&self) -> nix::Result<()> {
        nix::sched::setns(self.handle.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
    }

    /// Removes the namespace (and the tap in it); safe to call twice.
    pub fn delete(&mut self) -> Result<()> {
        if self.deleted {
            return Ok(());
        }
        self.deleted = true;
        ip(&["netns", "del", &self.name])
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.delete();
    }
}

/// Namespaces named by edgebench, whoever created them.
pub fn existing() -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output();
    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(PREFIX))
        .map(String::from)
        .collect()
}

/// Removes namespaces left by an edgebench process that no longer runs.
pub fn remove_leftovers() {
    for name in existing() {
        let pid = name.trim_start_matches(PREFIX).split('-').next().unwrap_or("");
        let alive = !pid.is_empty() && std::path::Path::new("/proc").join(pid).exists();
        if !alive {
            let _ = ip(&["netns", "del", &name]);
        }
    }
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).output().context("running ip (iproute2)")?;
    if !out.status.success() {
        bail!("ip {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}
