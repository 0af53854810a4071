//! The topology a firewall campaign runs on, created and removed by the
//! project itself with Debian's `ip` (iproute2):
//!
//! ```text
//!   host namespace (client: probe, load generator)      eb-XXXXXX (server)
//!   eb-XXXXXX-h 10.213.a.b/30  <──── veth pair ────>  eb-XXXXXX-n 10.213.a.b+1/30
//! ```
//!
//! Each name is owned by a live campaign through an exclusive `flock` on
//! /run/edgebench/NAME.lock (released by the kernel when the process dies),
//! so a new campaign removes the leftovers of a crashed one and never those
//! of a campaign still running.

use super::nft::{self, Netns, PREFIX};
use anyhow::{bail, Context as _, Result};
use nix::fcntl::{Flock, FlockArg};
use serde_json::Value;
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const LOCK_DIR: &str = "/run/edgebench";
const NETNS_DIR: &str = "/run/netns";
/// The /30 blocks of our links are taken from this /16.
const SUBNET_BASE: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 0);
const BLOCKS: u32 = 1 << 14;

/// Makes a helper `command` (`nft`, `wash oci push`) start inside the
/// namespace at `netns` (a /run/netns path): `setns` between fork and exec.
/// Instances are placed by `runtime::process::Launch` instead, without a fork.
pub fn enter_netns(command: &mut Command, netns: &Path) -> Result<()> {
    let fd: OwnedFd = File::open(netns).with_context(|| format!("opening {}", netns.display()))?.into();
    // SAFETY: setns is a plain system call (async-signal-safe); the fd is
    // close-on-exec, so the child does not keep it.
    unsafe {
        command.pre_exec(move || {
            nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
        });
    }
    Ok(())
}

/// Runs `f` on this thread inside the namespace at `netns` (a /run/netns
/// path), then puts the thread back: sockets it makes belong to that
/// namespace, and stay there after. Processes are placed between clone (or
/// fork) and exec instead: instances are made by the spawner thread.
pub fn in_netns<T>(netns: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    use nix::sched::{setns, CloneFlags};
    // Started here, in this thread's own namespace, if not yet: it must never inherit `netns`.
    crate::runtime::process::start_spawner();
    let home = File::open("/proc/thread-self/ns/net").context("opening this thread's network namespace")?;
    let target = File::open(netns).with_context(|| format!("opening {}", netns.display()))?;
    setns(&target, CloneFlags::CLONE_NEWNET).with_context(|| format!("entering {}", netns.display()))?;
    struct Back(File);
    impl Drop for Back {
        fn drop(&mut self) {
            // The thread must not stay in the namespace, even on a panic.
            if let Err(e) = nix::sched::setns(&self.0, nix::sched::CloneFlags::CLONE_NEWNET) {
                eprintln!("edgebench: cannot return a thread to its network namespace ({e}): aborting");
                std::process::abort();
            }
        }
    }
    let _back = Back(home);
    f()
}

/// Runs `ip ARGS`; an error carries its stderr.
fn ip(args: &[&str]) -> Result<String> {
    let out = crate::runtime::process::helper("ip").args(args).output().context("running ip (Debian's iproute2)")?;
    if !out.status.success() {
        bail!("`ip {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ip_json(args: &[&str]) -> Result<Value> {
    let text = ip(args)?;
    serde_json::from_str(if text.trim().is_empty() { "[]" } else { &text })
        .with_context(|| format!("`ip {}` printed invalid JSON", args.join(" ")))
}

/// An exclusive hold on a name (released when dropped or when the process
/// dies): `None` when a live process holds it.
fn try_lock(name: &str) -> Result<Option<Flock<File>>> {
    std::fs::create_dir_all(LOCK_DIR).with_context(|| format!("creating {LOCK_DIR}"))?;
    let path = Path::new(LOCK_DIR).join(format!("{name}.lock"));
    let file = File::options().create(true).truncate(false).write(true).open(&path)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(e.into()),
    }
}

/// A name of ours derived from `seed` (a campaign id) that no live process
/// holds, with its lock; a same-named leftover of a dead process is removed.
pub(super) fn claim_name(seed: &str) -> Result<(String, Flock<File>)> {
    for attempt in 0..=32u32 {
        let hash = nft::sha256(&format!("{seed}/{}/{attempt}", std::process::id()));
        let name = format!("{PREFIX}{}", &hash[..6]);
        if let Some(lock) = try_lock(&name)? {
            remove_by_name(&name);
            return Ok((name, lock));
        }
    }
    bail!("no free {PREFIX}* name after 32 attempts")
}

/// Gives a claimed name up: the lock file goes, then the lock.
pub(super) fn release_name(name: &str, lock: Flock<File>) {
    let _ = std::fs::remove_file(Path::new(LOCK_DIR).join(format!("{name}.lock")));
    drop(lock);
}

#[derive(Debug)]
pub struct Topology {
    /// The namespace's name, also the prefix of its links and our tables.
    pub name: String,
    pub host_if: String,
    pub ns_if: String,
    /// Our address on the client (host) side.
    pub client: Ipv4Addr,
    /// The server's address inside the namespace.
    pub server: Ipv4Addr,
    netns_path: PathBuf,
    /// The emulated link that replaces the veth (`net-*` edge profiles).
    link: Option<crate::edge::link::LinkEmulator>,
    lock: Option<Flock<File>>,
    removed: bool,
}

impl Topology {
    /// Creates namespace and veth pair for a campaign, with a name derived
    /// from `seed` (the campaign id) that no live campaign holds. With
    /// `holder`, the namespace is that process's (named with `ip netns
    /// attach`; it lives on as long as the process or the name), not a new one.
    pub fn create(seed: &str, holder: Option<u32>) -> Result<Topology> {
        Topology::create_linked(seed, holder, None)
    }

    /// As [`Topology::create`]; with `emulated` (a seed), the two ends are
    /// TUN devices joined by edgebench's link emulator instead of a veth pair.
    pub fn create_linked(seed: &str, holder: Option<u32>, emulated: Option<u64>) -> Result<Topology> {
        let (name, lock) = claim_name(seed)?;
        let block = free_block(u32::from_str_radix(&name[PREFIX.len()..], 16).unwrap_or(0) % BLOCKS)?;
        let base = u32::from(SUBNET_BASE) + block * 4;
        let mut t = Topology {
            host_if: format!("{name}-h"),
            ns_if: format!("{name}-n"),
            client: Ipv4Addr::from(base + 1),
            server: Ipv4Addr::from(base + 2),
            netns_path: Path::new(NETNS_DIR).join(&name),
            name,
            link: None,
            lock: Some(lock),
            removed: false,
        };
        super::register_for_emergency_cleanup(&t.name);
        if let Err(e) = t.build(holder, emulated) {
            let _ = t.remove();
            return Err(e);
        }
        Ok(t)
    }

    /// The emulated link's control, when the ends are TUN devices.
    pub fn link(&self) -> Option<crate::edge::link::LinkControl> {
        self.link.as_ref().map(|l| l.control())
    }

    fn build(&mut self, holder: Option<u32>, emulated: Option<u64>) -> Result<()> {
        let (n, h, s) = (self.name.as_str(), self.host_if.as_str(), self.ns_if.as_str());
        let client = format!("{}/30", self.client);
        let server = format!("{}/30", self.server);
        match holder {
            None => ip(&["netns", "add", n])?,
            Some(pid) => {
                // Never the host's namespace (our table's input policy is drop).
                let ns_of = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/net")).ok();
                let theirs = ns_of(&pid.to_string()).with_context(|| format!("no process {pid}"))?;
                if Some(&theirs) == ns_of("self").as_ref() || Some(&theirs) == ns_of("1").as_ref() {
                    bail!("pid {pid} is in the host's network namespace, not one of its own");
                }
                ip(&["netns", "attach", n, &pid.to_string()])?;
                let links = ip_json(&["-n", n, "-j", "link", "show"])?;
                let names: Vec<&str> =
                    links.as_array().into_iter().flatten().filter_map(|l| l["ifname"].as_str()).collect();
                if names != ["lo"] {
                    bail!("the network namespace of pid {pid} has links {names:?}, not only loopback");
                }
                String::new()
            }
        };
        if let Some(seed) = emulated {
            // Both made here, the server's end then moved: its descriptor stays ours.
            let (host_end, server_end) = (crate::edge::link::open_tun(h)?, crate::edge::link::open_tun(s)?);
            ip(&["link", "set", s, "netns", n])?;
            self.link = Some(crate::edge::link::LinkEmulator::start(host_end, server_end, seed)?);
        } else {
            ip(&["link", "add", h, "type", "veth", "peer", "name", s, "netns", n])?;
        }
        // No IPv6 link-local addresses: nothing but our traffic on the link.
        ip(&["link", "set", h, "addrgenmode", "none"])?;
        ip(&["-n", n, "link", "set", s, "addrgenmode", "none"])?;
        ip(&["addr", "add", &client, "dev", h])?;
        ip(&["-n", n, "addr", "add", &server, "dev", s])?;
        ip(&["link", "set", h, "up"])?;
        ip(&["-n", n, "link", "set", s, "up"])?;
        ip(&["-n", n, "link", "set", "lo", "up"])?;
        if self.link.is_some() {
            // A TUN device carries IP packets: no neighbours to resolve.
            return self.verify_route();
        }
        // Static neighbours: no ARP resolution inside a timed interval.
        let mac = |args: &[&str]| -> Result<String> {
            let v = ip_json(args)?;
            v[0]["address"].as_str().map(str::to_string).context("no MAC address in `ip -j link show`")
        };
        let host_mac = mac(&["-j", "link", "show", h])?;
        let ns_mac = mac(&["-n", n, "-j", "link", "show", s])?;
        ip(&["neigh", "replace", &self.server.to_string(), "lladdr", &ns_mac, "dev", h, "nud", "permanent"])?;
        ip(&[
            "-n",
            n,
            "neigh",
            "replace",
            &self.client.to_string(),
            "lladdr",
            &host_mac,
            "dev",
            s,
            "nud",
            "permanent",
        ])?;
        self.verify_route()
    }

    /// Refuses to run unless traffic to the server goes straight through our
    /// veth (and the replies straight back): never anywhere else.
    pub fn verify_route(&self) -> Result<()> {
        let check = |route: Value, dev: &str, dst: Ipv4Addr| -> Result<()> {
            let r = &route[0];
            if r["dev"].as_str() != Some(dev) || r.get("gateway").is_some() {
                bail!(
                    "refusing to run: the route to {dst} is not directly through {dev} but {r}; \
                     another interface or rule claims 10.213.0.0/16"
                );
            }
            Ok(())
        };
        check(ip_json(&["-j", "route", "get", &self.server.to_string()])?, &self.host_if, self.server)?;
        check(ip_json(&["-n", &self.name, "-j", "route", "get", &self.client.to_string()])?, &self.ns_if, self.client)
    }

    /// /run/netns/NAME, for `enter_netns`.
    pub fn netns_path(&self) -> &Path {
        &self.netns_path
    }

    pub fn netns(&self) -> Netns<'_> {
        Netns::Ours(&self.netns_path)
    }

    /// Removes namespace, links, host table and lock; safe to call twice.
    pub fn remove(&mut self) -> Result<()> {
        if self.removed {
            return Ok(());
        }
        self.removed = true;
        // Its devices go with its descriptors.
        self.link.take();
        remove_by_name(&self.name);
        let left = leftovers_named(&self.name);
        super::unregister_emergency_cleanup(&self.name);
        let _ = std::fs::remove_file(Path::new(LOCK_DIR).join(format!("{}.lock", self.name)));
        self.lock.take();
        if !left.is_empty() {
            bail!("could not remove {}", left.join(", "));
        }
        Ok(())
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("edgebench: {e:#}");
        }
    }
}

/// The first /30 block at or after `start` whose addresses no interface has.
fn free_block(start: u32) -> Result<u32> {
    let addrs = ip_json(&["-j", "-4", "addr", "show"])?;
    let used: Vec<u32> = addrs
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|link| link["addr_info"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a["local"].as_str()?.parse::<Ipv4Addr>().ok())
        .map(u32::from)
        .collect();
    let base = u32::from(SUBNET_BASE);
    (0..BLOCKS)
        .map(|i| (start + i) % BLOCKS)
        .find(|b| !used.iter().any(|a| (a & !3) == base + b * 4))
        .context("no free /30 block in 10.213.0.0/16")
}

/// Everything of ours that has this name: namespace, links, host table.
pub fn leftovers_named(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    if Path::new(NETNS_DIR).join(name).exists() {
        out.push(format!("namespace {name}"));
    }
    for link in links() {
        if link == format!("{name}-h") || link == format!("{name}-n") {
            out.push(format!("link {link}"));
        }
    }
    for table in host_tables() {
        if table.ends_with(&format!(" {name}")) {
            out.push(format!("table {table}"));
        }
    }
    out
}

fn links() -> Vec<String> {
    let v = ip_json(&["-j", "link", "show"]).unwrap_or_default();
    v.as_array().into_iter().flatten().filter_map(|l| l["ifname"].as_str().map(str::to_string)).collect()
}

fn host_tables() -> Vec<String> {
    nft::list_ruleset(Netns::Host).map(|r| nft::tables(&r)).unwrap_or_default()
}

/// Best-effort removal of everything named `name` (namespace, both veth
/// ends, host table); used on every path out and for leftovers.
pub fn remove_by_name(name: &str) {
    if Path::new(NETNS_DIR).join(name).exists() {
        let _ = ip(&["netns", "del", name]);
    }
    for suffix in ["-h", "-n"] {
        let link = format!("{name}{suffix}");
        if links().contains(&link) {
            let _ = ip(&["link", "del", &link]);
        }
    }
    for table in host_tables() {
        if let Some((family, table_name)) = table.split_once(' ') {
            if table_name == name {
                let batch = serde_json::json!({"nftables": [{"delete": {"table": {"family": family, "name": name}}}]});
                let _ = nft::apply(Netns::Host, &batch);
            }
        }
    }
}

/// Removes what crashed campaigns left (names with our prefix whose lock no
/// live process holds). Returns what was removed.
pub fn remove_leftovers() -> Result<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    if let Ok(dir) = std::fs::read_dir(NETNS_DIR) {
        names.extend(dir.flatten().filter_map(|e| e.file_name().into_string().ok()));
    }
    names.extend(links().into_iter().map(|l| l.trim_end_matches("-h").trim_end_matches("-n").to_string()));
    names.extend(host_tables().into_iter().filter_map(|t| t.split_once(' ').map(|(_, n)| n.to_string())));
    names.retain(|n| n.starts_with(PREFIX) && n.len() == PREFIX.len() + 6);
    names.sort();
    names.dedup();
    let mut removed = Vec::new();
    for name in names {
        let Some(lock) = try_lock(&name)? else { continue };
        let what = leftovers_named(&name);
        remove_by_name(&name);
        let _ = std::fs::remove_file(Path::new(LOCK_DIR).join(format!("{name}.lock")));
        drop(lock);
        removed.extend(what);
    }
    Ok(removed)
}
