//! One network namespace per VM, created by edgebench: a tap inside it for
//! the guest, and a veth pair that joins it to the host namespace, so that
//! the client (probe, latency client, load generator) reaches the guest
//! directly at its address, with the same probe as every other runtime and
//! no relay in edgebench. The namespace routes between its veth end and the
//! tap; nothing is routed anywhere else: the guest can reach only its
//! gateway (the tap's host end) and, through it, the client's address.
//!
//! ```text
//!   host namespace                         eb-vm-PID-N                          guest
//!   ebvmB  10.214.x.1/30 <── veth ──> ebclient 10.214.x.2/30
//!                                          ebtap0 10.214.x.5/30 <── tap ──> eth0 10.214.x.6/30
//! ```
//!
//! Each VM takes one /29 block of 10.214.0.0/16, held by an exclusive `flock`
//! (released when the VM's namespace goes, or when edgebench dies), so that
//! VMs launched at once (scaling) and concurrent campaigns never share one.

use anyhow::{bail, Context as _, Result};
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

/// Every namespace edgebench creates starts with this (then its pid).
pub const PREFIX: &str = "eb-vm-";
pub const TAP: &str = "ebtap0";
/// The namespace's end of the veth pair (its name is local to the namespace).
const CLIENT_LINK: &str = "ebclient";
/// Host-side veth names start with this (then the block number).
const HOST_LINK_PREFIX: &str = "ebvm";
pub const NET_PREFIX: u8 = 30;
pub const GUEST_MAC: &str = "52:54:00:eb:00:02";
const TAP_MAC: &str = "02:eb:00:00:00:01";
const HOST_LINK_MAC: &str = "02:eb:00:00:01:01";
const CLIENT_LINK_MAC: &str = "02:eb:00:00:01:02";
const SUBNET_BASE: Ipv4Addr = Ipv4Addr::new(10, 214, 0, 0);
/// /29 blocks in the /16.
const BLOCKS: u32 = 1 << 13;
const LOCK_DIR: &str = "/run/edgebench";

static NEXT: AtomicU32 = AtomicU32::new(0);
/// One block chosen at a time within this process.
static ALLOCATING: Mutex<()> = Mutex::new(());

/// The addresses of one VM's two links.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmAddrs {
    /// The host's end of the veth: the client's source address.
    pub client: Ipv4Addr,
    /// The namespace's end of the veth.
    pub router: Ipv4Addr,
    /// The tap's host end: the guest's gateway.
    pub gateway: Ipv4Addr,
    pub guest: Ipv4Addr,
}

impl VmAddrs {
    fn of_block(block: u32) -> VmAddrs {
        let base = u32::from(SUBNET_BASE) + block * 8;
        VmAddrs {
            client: Ipv4Addr::from(base + 1),
            router: Ipv4Addr::from(base + 2),
            gateway: Ipv4Addr::from(base + 5),
            guest: Ipv4Addr::from(base + 6),
        }
    }

    /// The guest's kernel command-line words for its network.
    pub fn kernel_args(&self) -> String {
        format!("eb.ip={}/{NET_PREFIX} eb.gw={}", self.guest, self.gateway)
    }
}

pub struct Netns {
    name: String,
    /// Open handle on the namespace (for setns).
    handle: File,
    addrs: VmAddrs,
    host_link: String,
    /// Holds the address block while the namespace lives.
    _block: Flock<File>,
    deleted: bool,
}

impl Netns {
    /// A new namespace named `eb-vm-<pid>-<n>` with its tap and its link to
    /// the host, ready for a guest.
    pub fn create() -> Result<Netns> {
        let name = format!("{PREFIX}{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
        let _one_at_a_time = ALLOCATING.lock().unwrap_or_else(|p| p.into_inner());
        let (block, lock) = take_block(std::process::id().wrapping_mul(2654435761))?;
        // A host link of a dead process with this block goes first.
        let host_link = format!("{HOST_LINK_PREFIX}{block}");
        let _ = ip(&["link", "del", &host_link]);
        ip(&["netns", "add", &name])?;
        let handle = match File::open(format!("/run/netns/{name}")) {
            Ok(f) => f,
            Err(e) => {
                let _ = ip(&["netns", "del", &name]);
                bail!("opening /run/netns/{name}: {e}");
            }
        };
        let ns = Netns { name, handle, addrs: VmAddrs::of_block(block), host_link, _block: lock, deleted: false };
        ns.configure().with_context(|| format!("configuring network namespace {}", ns.name))?;
        Ok(ns)
    }

    pub fn addrs(&self) -> VmAddrs {
        self.addrs
    }

    /// Its /run/netns path.
    pub fn path(&self) -> std::path::PathBuf {
        std::path::Path::new("/run/netns").join(&self.name)
    }

    /// Applies the trial's firewall profile (if any) in this namespace, in
    /// front of the guest's workload server.
    pub fn apply_firewall(
        &self,
        firewall: Option<crate::runtime::OwnFirewall<'_>>,
    ) -> Result<Option<crate::network::Applied>> {
        let Some(f) = firewall else { return Ok(None) };
        let applied = f.network.apply_own(f.profile, &self.path(), TAP, super::GUEST_PORT)?;
        Ok(Some(applied))
    }

    fn configure(&self) -> Result<()> {
        let VmAddrs { client, router, gateway, guest } = self.addrs;
        let (name, host_link) = (&self.name, &self.host_link);
        batch(
            None,
            &format!(
                "link add {host_link} address {HOST_LINK_MAC} type veth peer name {CLIENT_LINK} address {CLIENT_LINK_MAC} netns {name}\n\
                 addr add {client}/{NET_PREFIX} dev {host_link}\n\
                 link set {host_link} up\n\
                 neigh replace {router} lladdr {CLIENT_LINK_MAC} dev {host_link} nud permanent\n\
                 route replace {guest}/32 via {router} dev {host_link}\n"
            ),
        )?;
        batch(
            Some(name),
            &format!(
                "link set lo up\n\
                 addr add {router}/{NET_PREFIX} dev {CLIENT_LINK}\n\
                 link set {CLIENT_LINK} up\n\
                 neigh replace {client} lladdr {HOST_LINK_MAC} dev {CLIENT_LINK} nud permanent\n\
                 tuntap add dev {TAP} mode tap\n\
                 link set {TAP} address {TAP_MAC}\n\
                 addr add {gateway}/{NET_PREFIX} dev {TAP}\n\
                 link set {TAP} up\n\
                 neigh replace {guest} lladdr {GUEST_MAC} dev {TAP} nud permanent\n"
            ),
        )?;
        self.enable_forwarding()?;
        self.verify_route()
    }

    /// The namespace routes between its veth end and the tap (its own
    /// setting: the host's forwarding is not touched).
    fn enable_forwarding(&self) -> Result<()> {
        let handle = self.handle.try_clone()?;
        // A thread of its own enters the namespace: /proc/sys/net is the opener's namespace.
        std::thread::spawn(move || -> std::io::Result<()> {
            nix::sched::setns(handle.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)?;
            std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the forwarding thread panicked"))?
        .context("enabling IPv4 forwarding in the VM's namespace")
    }

    /// Traffic to the guest must leave by our links and nothing else: from the
    /// host by our veth, inside the namespace by our tap.
    pub fn verify_route(&self) -> Result<()> {
        let guest = self.addrs.guest.to_string();
        for (netns, dev) in [(None, self.host_link.as_str()), (Some(self.name.as_str()), TAP)] {
            let mut args = Vec::new();
            if let Some(n) = netns {
                args.extend(["-n", n]);
            }
            args.extend(["route", "get", guest.as_str()]);
            let out = crate::runtime::process::helper("ip").args(&args).output()?;
            let text = String::from_utf8_lossy(&out.stdout);
            let words: Vec<&str> = text.split_whitespace().collect();
            if !out.status.success() || !words.windows(2).any(|w| w == ["dev", dev]) {
                bail!("route to the guest {guest} ({}) is not via {dev}: {}", netns.unwrap_or("host"), text.trim());
            }
        }
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn handle(&self) -> &File {
        &self.handle
    }

    /// Makes `command` start inside this namespace (the VMM opens its tap there).
    pub fn enter_on_spawn(&self, command: &mut crate::runtime::process::Launch) -> std::io::Result<()> {
        command.enter_netns_of(&self.handle)
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
        // The host end first: the kernel destroys a deleted namespace's links
        // later, in the background, and the block must be free when its lock goes.
        let _ = ip(&["link", "del", &self.host_link]);
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
    let out = crate::runtime::process::helper("ip").args(["netns", "list"]).output();
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

/// Takes the first free /29 block from `start` on: free when its lock is not
/// held by a live process.
fn take_block(start: u32) -> Result<(u32, Flock<File>)> {
    std::fs::create_dir_all(LOCK_DIR).with_context(|| format!("creating {LOCK_DIR}"))?;
    for i in 0..BLOCKS {
        let block = (start.wrapping_add(i)) % BLOCKS;
        let path = format!("{LOCK_DIR}/{HOST_LINK_PREFIX}-{block}.lock");
        let file = File::options().create(true).truncate(false).write(true).open(&path)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok((block, lock)),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => continue,
            Err((_, e)) => return Err(e).with_context(|| format!("locking {path}")),
        }
    }
    bail!("every VM address block of {SUBNET_BASE}/16 is in use")
}

/// Runs `ip [-n NETNS] -batch -` with `script`.
fn batch(netns: Option<&str>, script: &str) -> Result<()> {
    let mut command = crate::runtime::process::helper("ip");
    if let Some(n) = netns {
        command.args(["-n", n]);
    }
    let mut child = command
        .args(["-batch", "-"])
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
    Ok(())
}

fn ip(args: &[&str]) -> Result<()> {
    let out = crate::runtime::process::helper("ip").args(args).output().context("running ip (iproute2)")?;
    if !out.status.success() {
        bail!("ip {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}
