//! Behind a host firewall (issue 7): the topology a campaign creates for
//! itself, firewall profiles applied with nftables, and the guarantees around
//! them: traffic only to loopback or into our namespace, rules only in our
//! own tables, the host's ruleset identical before and after, nothing left
//! behind on any path out.

pub mod host;
pub mod nft;
pub mod profiles;
pub mod topology;

pub use host::HostFirewall;
pub use nft::{HostChanges, HostSnapshot};
pub use profiles::{Profile, Scope, Target};
pub use topology::Topology;

use anyhow::{bail, Context as _, Result};
use nft::Netns;
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Where a runtime's instances listen when a campaign runs firewall profiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Started inside the server namespace (`LaunchSpec::netns`), listening
    /// on the server's address; the profile is applied in that namespace.
    ServerNamespace,
    /// Listening on 127.0.0.1 in the host namespace through the runtime's own
    /// path (e.g. Docker: a port published through its NAT); the profile is
    /// applied in the host namespace, in our own table, entered only by
    /// packets on `lo` to our service ports.
    HostLoopback,
    /// A namespace of the runtime's own, reached over a veth of its own (the
    /// micro-VMs): the runtime applies the profile there itself, at launch
    /// and before t0 ([`Network::apply_own`]), in front of its guest.
    OwnNamespace,
    /// On a remote target, listening on the address the client reached it
    /// at: its agent applies the profile in the target's own ruleset
    /// ([`HostFirewall`]), for packets in on that address's interface.
    TargetHost,
}

impl Placement {
    pub fn name(self) -> &'static str {
        match self {
            Placement::ServerNamespace => "server-namespace",
            Placement::HostLoopback => "host-loopback",
            Placement::OwnNamespace => "own-namespace",
            Placement::TargetHost => "target-host",
        }
    }
}

/// The ports instances listen on under a firewall profile (the profiles
/// accept exactly these; below Linux's ephemeral range, so client ports
/// never fall in it).
pub const SERVICE_PORTS: (u16, u16) = (20000, 21023);

/// Whether firewall campaigns can run here; `Err` says why not and how to fix it.
pub fn available() -> Result<String, String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("firewall profiles need root (network namespaces, veth, nftables)".into());
    }
    if crate::runtime::process::helper("ip").arg("-V").output().is_err() {
        return Err("`ip` not found: install Debian's `iproute2`".into());
    }
    nft::version()
}

/// Everything a firewall campaign set up, owned for its duration.
pub struct Network {
    topology: Topology,
    next_port: AtomicU32,
    pub host_before: HostSnapshot,
    pub nft_version: String,
    /// Where our rules are now (the other place holds no table of ours).
    placed: Mutex<Option<Placement>>,
}

/// One application of a profile.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Applied {
    /// Just before starting `nft -j -f -` → its exit (transaction committed).
    pub took: Duration,
    /// The exact batch applied.
    pub definition: Value,
    /// SHA-256 of our table as listed back by `nft -j -s list ruleset`
    /// (canonical form: no handles, set elements sorted).
    pub ruleset_sha256: String,
}

/// The host's ruleset before and after a campaign.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct HostCheck {
    pub before: HostSnapshot,
    pub after: HostSnapshot,
    pub changes: HostChanges,
}

impl Network {
    /// Removes leftovers of crashed campaigns, takes the host's ruleset, then
    /// creates this campaign's namespace and veth and checks the route.
    pub fn start(campaign_id: &str) -> Result<Network> {
        Network::start_in(campaign_id, None)
    }

    /// As [`Network::start`]; with `holder`, the server namespace is that
    /// process's network namespace (e.g. Docker's pause container, which
    /// containers can join) instead of a new one.
    pub fn start_in(campaign_id: &str, holder: Option<u32>) -> Result<Network> {
        Network::start_linked(campaign_id, holder, None)
    }

    /// As [`Network::start_in`]; with `emulated` (a seed), client and server
    /// are joined by the emulated link of `net-*` edge profiles.
    pub fn start_linked(campaign_id: &str, holder: Option<u32>, emulated: Option<u64>) -> Result<Network> {
        let nft_version = available().map_err(|e| anyhow::anyhow!("cannot run firewall profiles: {e}"))?;
        let removed = topology::remove_leftovers().context("removing leftovers of crashed campaigns")?;
        if !removed.is_empty() {
            eprintln!("edgebench: removed leftovers of a crashed campaign: {}", removed.join(", "));
        }
        let host_before = HostSnapshot::take().context("listing the host's ruleset")?;
        let topology = Topology::create_linked(campaign_id, holder, emulated)?;
        Ok(Network { topology, next_port: AtomicU32::new(0), host_before, nft_version, placed: Mutex::new(None) })
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Our table's name (`inet NAME`, in the namespace or on the host).
    pub fn table(&self) -> &str {
        &self.topology.name
    }

    fn next_service_port(&self) -> u16 {
        next_service_port(&self.next_port)
    }

    /// Where the next instance listens, and the namespace it starts in.
    /// Ports rotate over the service range, so consecutive instances never
    /// reuse a port still in TIME_WAIT.
    pub fn instance_addr(&self, placement: Placement) -> Result<(SocketAddr, Option<&Path>)> {
        match placement {
            Placement::ServerNamespace => Ok((
                SocketAddr::from((self.topology.server, self.next_service_port())),
                Some(self.topology.netns_path()),
            )),
            Placement::HostLoopback | Placement::OwnNamespace => {
                Ok((free_service_addr(IpAddr::V4(Ipv4Addr::LOCALHOST), &self.next_port)?, None))
            }
            Placement::TargetHost => bail!("an instance on a remote target gets its address from the target's agent"),
        }
    }

    fn place(placement: Placement, topology: &Topology) -> Result<(Netns<'_>, Netns<'_>, Scope)> {
        match placement {
            Placement::ServerNamespace => Ok((topology.netns(), Netns::Host, Scope::Namespace)),
            Placement::HostLoopback => Ok((Netns::Host, topology.netns(), Scope::HostLoopback)),
            Placement::OwnNamespace => bail!("a runtime in a namespace of its own applies its profile at launch"),
            Placement::TargetHost => bail!("a remote target's agent applies its profile there"),
        }
    }

    /// Replaces our table with `profile` where `placement` needs it, in one
    /// transaction, and lists the ruleset back to hash what is in force.
    pub fn apply(&self, profile: Profile, placement: Placement) -> Result<Applied> {
        let table = self.table();
        let (netns, other, scope) = Network::place(placement, &self.topology)?;
        {
            let mut placed = self.placed.lock().unwrap_or_else(|e| e.into_inner());
            if *placed != Some(placement) {
                // Rules live in one place at a time.
                nft::apply(other, &profiles::removal(table)).context("removing our table from the other namespace")?;
                *placed = Some(placement);
            }
        }
        let definition = profile.batch(&Target { table: table.into(), scope, ports: SERVICE_PORTS });
        let took =
            nft::apply(netns, &definition).with_context(|| format!("applying firewall profile {}", profile.name()))?;
        let ours = self.our_table(netns)?;
        if ours.is_empty() != (profile == Profile::OFF) {
            bail!(
                "after applying {}, our table is {} (expected the opposite)",
                profile.name(),
                if ours.is_empty() { "absent" } else { "present" }
            );
        }
        Ok(Applied { took, definition, ruleset_sha256: nft::sha256(&ours) })
    }

    /// Applies `profile` in a runtime's own namespace at `netns` (a
    /// micro-VM's, which routes to its guest): the same rules as on the
    /// campaign's path, in the forward chain in front of the guest, for the
    /// guest's `port`. The namespace and the table go together.
    pub fn apply_own(&self, profile: Profile, netns: &Path, guest_if: &'static str, port: u16) -> Result<Applied> {
        let target = Target { table: self.table().into(), scope: Scope::Forward { guest_if }, ports: (port, port) };
        let definition = profile.batch(&target);
        let ns = Netns::Ours(netns);
        let took =
            nft::apply(ns, &definition).with_context(|| format!("applying firewall profile {}", profile.name()))?;
        let ours = self.our_table(ns)?;
        if ours.is_empty() != (profile == Profile::OFF) {
            bail!("after applying {} in {}, our table is not as expected", profile.name(), netns.display());
        }
        Ok(Applied { took, definition, ruleset_sha256: nft::sha256(&ours) })
    }

    /// Our table's items as listed by nft (canonical form), in `netns`.
    pub fn our_table(&self, netns: Netns<'_>) -> Result<Vec<Value>> {
        our_table(netns, self.table())
    }

    /// Removes everything this campaign created, then compares the host's
    /// ruleset with the one taken at the start.
    pub fn finish(mut self) -> Result<HostCheck> {
        self.topology.remove()?;
        let after = HostSnapshot::take().context("listing the host's ruleset")?;
        let changes = after.changed_since(&self.host_before);
        Ok(HostCheck { before: self.host_before.clone(), after, changes })
    }
}

/// The items of table `inet TABLE` as listed by nft (canonical form), in `netns`.
fn our_table(netns: Netns<'_>, table: &str) -> Result<Vec<Value>> {
    let listing = nft::list_ruleset(netns)?;
    let wanted = format!("inet {table}");
    Ok(nft::canonical(&listing).into_iter().filter(|item| nft::table_of(item).as_ref() == Some(&wanted)).collect())
}

/// The next port of the service range (rotating, so consecutive instances
/// never reuse a port still in TIME_WAIT).
fn next_service_port(next: &AtomicU32) -> u16 {
    let span = u32::from(SERVICE_PORTS.1 - SERVICE_PORTS.0) + 1;
    SERVICE_PORTS.0 + (next.fetch_add(1, Ordering::Relaxed) % span) as u16
}

/// A service port on `ip` that is free now (bound and let go).
pub fn free_service_addr(ip: IpAddr, next: &AtomicU32) -> Result<SocketAddr> {
    for _ in SERVICE_PORTS.0..=SERVICE_PORTS.1 {
        let addr = SocketAddr::from((ip, next_service_port(next)));
        if TcpListener::bind(addr).is_ok() {
            return Ok(addr);
        }
    }
    bail!("every service port {}-{} on {ip} is in use", SERVICE_PORTS.0, SERVICE_PORTS.1)
}

/// Names to remove if edgebench must exit at once (a second Ctrl-C), where
/// no destructor runs.
static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn register_for_emergency_cleanup(name: &str) {
    LIVE.lock().unwrap_or_else(|e| e.into_inner()).push(name.to_string());
}

fn unregister_emergency_cleanup(name: &str) {
    LIVE.lock().unwrap_or_else(|e| e.into_inner()).retain(|n| n != name);
}

/// Removes every namespace, veth and table this process created; for exit
/// paths that skip destructors.
pub fn emergency_cleanup() {
    let names: Vec<String> = std::mem::take(&mut *LIVE.lock().unwrap_or_else(|e| e.into_inner()));
    for name in names {
        topology::remove_by_name(&name);
    }
}
