//! Firewall profiles on the remote target: applied there by its agent
//! (`network::HostFirewall`), in the target's own ruleset, timed there.

use super::link::Link;
use super::protocol::{FirewallStarted, Request};
use crate::campaign::{TargetFirewall, TargetStart};
use crate::network::{Applied, HostCheck, SERVICE_PORTS};
use crate::store::NetworkRow;
use anyhow::Result;
use std::sync::Arc;

pub struct RemoteFirewall {
    pub(super) link: Arc<Link>,
}

impl TargetFirewall for RemoteFirewall {
    fn start(&self) -> Result<TargetStart> {
        let started: FirewallStarted = self.link.call(Request::FirewallStart)?;
        Ok(TargetStart {
            network: NetworkRow {
                // No namespace of ours: the target's own.
                netns: String::new(),
                host_if: started.interface,
                ns_if: String::new(),
                client_addr: started.client_ip.map(|ip| ip.to_string()).unwrap_or_default(),
                server_addr: started.listen_ip.to_string(),
                service_ports: format!("{}-{}", SERVICE_PORTS.0, SERVICE_PORTS.1),
                nft_version: started.nft_version,
            },
            before: started.before,
        })
    }

    fn apply(&self, profile: &str) -> Result<Applied> {
        self.link.call(Request::Firewall { profile: profile.into() })
    }

    fn finish(&self) -> Result<HostCheck> {
        self.link.call(Request::FirewallFinish)
    }
}
