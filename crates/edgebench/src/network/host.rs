//! Firewall profiles on a host the client reaches over a real interface (a
//! remote target, applied by its agent): no namespace or veth of ours, only
//! our table in the host's own ruleset, whose chain is entered by packets in
//! on the interface that holds the listen address, to our service ports
//! ([`Scope::HostInterface`]). The host's ruleset is taken before and
//! compared after, as on the client's host; the table goes on every path out.

use super::nft::{self, Netns};
use super::profiles::{self, Profile, Scope, Target};
use super::{topology, Applied, HostCheck, HostSnapshot, SERVICE_PORTS};
use anyhow::{bail, Context as _, Result};
use nix::fcntl::Flock;
use std::fs::File;
use std::net::IpAddr;

pub struct HostFirewall {
    /// Our table's name (`inet NAME`), held by a lock as a topology's name is.
    name: String,
    lock: Option<Flock<File>>,
    /// The interface that holds `listen` (the packets our chain looks at).
    pub ifname: String,
    pub listen: IpAddr,
    pub host_before: HostSnapshot,
    pub nft_version: String,
}

impl HostFirewall {
    /// Removes leftovers of crashed campaigns, finds the interface of
    /// `listen` and takes the host's ruleset; nothing is applied yet.
    pub fn start(campaign_id: &str, listen: IpAddr) -> Result<HostFirewall> {
        let nft_version = super::available().map_err(|e| anyhow::anyhow!("cannot run firewall profiles: {e}"))?;
        let removed = topology::remove_leftovers().context("removing leftovers of crashed campaigns")?;
        if !removed.is_empty() {
            eprintln!("edgebench: removed leftovers of a crashed campaign: {}", removed.join(", "));
        }
        let ifname = interface_of(listen)?;
        let host_before = HostSnapshot::take().context("listing the host's ruleset")?;
        let (name, lock) = topology::claim_name(campaign_id)?;
        super::register_for_emergency_cleanup(&name);
        Ok(HostFirewall { name, lock: Some(lock), ifname, listen, host_before, nft_version })
    }

    pub fn table(&self) -> &str {
        &self.name
    }

    /// Replaces our table with `profile` in one transaction and lists it back.
    pub fn apply(&self, profile: Profile) -> Result<Applied> {
        let target = Target {
            table: self.name.clone(),
            scope: Scope::HostInterface { ifname: self.ifname.clone() },
            ports: SERVICE_PORTS,
        };
        let definition = profile.batch(&target);
        let took = nft::apply(Netns::Host, &definition)
            .with_context(|| format!("applying firewall profile {}", profile.name()))?;
        let ours = super::our_table(Netns::Host, &self.name)?;
        if ours.is_empty() != (profile == Profile::OFF) {
            bail!("after applying {}, our table is not as expected", profile.name());
        }
        Ok(Applied { took, definition, ruleset_sha256: nft::sha256(&ours) })
    }

    /// Removes our table, then compares the host's ruleset with the one taken at the start.
    pub fn finish(mut self) -> Result<HostCheck> {
        self.remove()?;
        let after = HostSnapshot::take().context("listing the host's ruleset")?;
        let changes = after.changed_since(&self.host_before);
        Ok(HostCheck { before: self.host_before.clone(), after, changes })
    }

    fn remove(&mut self) -> Result<()> {
        let Some(lock) = self.lock.take() else { return Ok(()) };
        let removed = nft::apply(Netns::Host, &profiles::removal(&self.name));
        super::unregister_emergency_cleanup(&self.name);
        topology::release_name(&self.name, lock);
        removed.map(|_| ()).with_context(|| format!("removing our table inet {}", self.name))
    }
}

impl Drop for HostFirewall {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("edgebench: {e:#}");
        }
    }
}

/// The interface that holds `addr` on this host (`lo` for loopback).
fn interface_of(addr: IpAddr) -> Result<String> {
    let out = crate::runtime::process::helper("ip")
        .args(["-j", "addr", "show"])
        .output()
        .context("running ip (Debian's iproute2)")?;
    let links: serde_json::Value = serde_json::from_slice(&out.stdout).context("reading `ip -j addr show`")?;
    let wanted = addr.to_string();
    links
        .as_array()
        .into_iter()
        .flatten()
        .find(|link| {
            link["addr_info"].as_array().is_some_and(|a| a.iter().any(|i| i["local"].as_str() == Some(wanted.as_str())))
        })
        .and_then(|link| link["ifname"].as_str().map(str::to_string))
        .with_context(|| format!("no interface of this host holds {addr}, the address instances listen on"))
}
