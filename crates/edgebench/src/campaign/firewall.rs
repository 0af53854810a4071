//! The firewall as a campaign factor: the profile of every trial is applied
//! just before it (timed: metric `firewall_apply`), its rules and the hash
//! of the ruleset in force are stored, and the host's ruleset is compared
//! before and after.

use super::plan::TrialKey;
use super::trial::{self, Failure};
use crate::network::{nft, Network, Placement, Profile, SERVICE_PORTS};
use crate::runtime::Runtime;
use crate::store::{now_ns, FirewallProfileRow, HostRulesetRow, NetworkRow, Store};
use anyhow::Result;
use std::collections::HashMap;

/// The ruleset hash seen at each profile's first application in this run:
/// every later application must give the same (nothing else edits our table).
#[derive(Default)]
pub struct Profiles {
    seen: HashMap<(String, &'static str), String>,
}

impl Profiles {
    /// Applies the trial's profile where its runtime's instances listen and
    /// stores the time it took; nothing to do without a network.
    pub fn apply(
        &mut self,
        store: &mut Store,
        campaign: &str,
        network: Option<&Network>,
        runtime: &dyn Runtime,
        key: &TrialKey,
    ) -> Result<(), Failure> {
        let Some(network) = network else { return Ok(()) };
        let placement = runtime.network_placement(&key.variant);
        if placement == Placement::OwnNamespace {
            // Applied by the runtime in its own namespace at launch (stored by the trial).
            return Ok(());
        }
        let sample = match self.apply_and_record(store, campaign, network, placement, key) {
            Ok(ms) => {
                let mut s = trial::sample(key, "firewall_apply", "", 0, ms, "ms");
                s.detail = format!("placement {}", placement.name());
                s
            }
            Err(e) => {
                let _ = store.insert_samples(campaign, &[trial::failed(key, "firewall_apply", "", &e)]);
                return Err(Failure::Failed(format!("firewall profile {}: {e}", key.firewall)));
            }
        };
        store.insert_samples(campaign, &[sample]).map_err(Failure::store)
    }

    /// Applies, checks the ruleset in force against its first application,
    /// stores the profile's rules once; returns the time to apply (ms).
    fn apply_and_record(
        &mut self,
        store: &Store,
        campaign: &str,
        network: &Network,
        placement: Placement,
        key: &TrialKey,
    ) -> Result<f64, String> {
        let profile = Profile::parse(&key.firewall).map_err(|e| format!("{e:#}"))?;
        let applied = network.apply(profile, placement).map_err(|e| format!("{e:#}"))?;
        let seen_key = (key.firewall.clone(), placement.name());
        match self.seen.get(&seen_key) {
            Some(hash) if *hash != applied.ruleset_sha256 => {
                return Err(format!(
                    "the ruleset in force hashes to {} but to {hash} when this profile was first applied",
                    applied.ruleset_sha256
                ))
            }
            Some(_) => {}
            None => {
                let row = FirewallProfileRow {
                    profile: key.firewall.clone(),
                    placement: placement.name().into(),
                    definition_sha256: nft::sha256(&applied.definition),
                    definition: applied.definition,
                    ruleset_sha256: applied.ruleset_sha256.clone(),
                    rules_before_accept: profile.rule_count(),
                };
                store.upsert_firewall_profile(campaign, &row).map_err(|e| format!("store: {e:#}"))?;
                self.seen.insert(seen_key, applied.ruleset_sha256);
            }
        }
        Ok(applied.took.as_nanos() as f64 / 1e6)
    }
}

/// Stores the topology and the host's ruleset as found at the start.
pub fn record_start(store: &Store, campaign: &str, network: &Network) -> Result<()> {
    let t = network.topology();
    store.insert_network(
        campaign,
        &NetworkRow {
            netns: t.name.clone(),
            host_if: t.host_if.clone(),
            ns_if: t.ns_if.clone(),
            client_addr: t.client.to_string(),
            server_addr: t.server.to_string(),
            service_ports: format!("{}-{}", SERVICE_PORTS.0, SERVICE_PORTS.1),
            nft_version: network.nft_version.clone(),
        },
    )?;
    let before = &network.host_before;
    store.insert_host_ruleset(
        campaign,
        &HostRulesetRow {
            ts_ns: now_ns(),
            moment: "before".into(),
            sha256: before.sha256.clone(),
            parts: serde_json::to_value(&before.parts)?,
            changed: String::new(),
            docker: String::new(),
        },
    )
}

/// Removes namespace, veth and tables, stores the host's ruleset after, and
/// returns the parts of the host's ruleset that changed unexplained (none
/// when all is well).
pub fn finish(store: &Store, campaign: &str, network: Network) -> Result<Vec<String>> {
    let check = network.finish()?;
    store.insert_host_ruleset(
        campaign,
        &HostRulesetRow {
            ts_ns: now_ns(),
            moment: "after".into(),
            sha256: check.after.sha256.clone(),
            parts: serde_json::to_value(&check.after.parts)?,
            changed: check.changes.unexplained.join(", "),
            docker: check.changes.docker.join(", "),
        },
    )?;
    if !check.changes.docker.is_empty() {
        eprintln!(
            "edgebench: warning: Docker changed its per-container rules during the campaign ({}): containers were \
             started or stopped meanwhile (by this campaign or by someone else)",
            check.changes.docker.join(", ")
        );
    }
    Ok(check.changes.unexplained)
}
