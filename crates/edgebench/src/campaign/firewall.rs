//! The firewall as a campaign factor: the profile of every trial is applied
//! just before it (timed: metric `firewall_apply`), its rules and the hash
//! of the ruleset in force are stored, and the host's ruleset is compared
//! before and after.

use super::plan::TrialKey;
use super::trial::{self, Failure};
use crate::network::{nft, Applied, HostCheck, HostSnapshot, Network, Placement, Profile, SERVICE_PORTS};
use crate::runtime::Runtime;
use crate::store::{now_ns, FirewallProfileRow, HostRulesetRow, NetworkRow, Store};
use anyhow::Result;
use std::collections::HashMap;

/// The firewall of the host the runtimes run on when that is not this one
/// (a remote target's, driven through its agent): the same profiles, applied
/// there ([`Placement::TargetHost`]).
pub trait TargetFirewall {
    /// Takes the target's ruleset and claims our table there.
    fn start(&self) -> Result<TargetStart>;
    /// Replaces our table there with `profile`, timed there.
    fn apply(&self, profile: &str) -> Result<Applied>;
    /// Removes our table and compares the target's ruleset with the start's.
    fn finish(&self) -> Result<HostCheck>;
}

/// What a target's firewall says at the start.
pub struct TargetStart {
    pub network: NetworkRow,
    pub before: HostSnapshot,
}

/// The ruleset hash seen at each profile's first application in this run:
/// every later application must give the same (nothing else edits our table).
#[derive(Default)]
pub struct Profiles {
    seen: HashMap<(String, &'static str), String>,
    /// A remote target's firewall (profiles of [`Placement::TargetHost`]).
    pub target: Option<Box<dyn TargetFirewall>>,
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
        let placement = runtime.network_placement(&key.variant);
        let target = self.target.take();
        let where_ = match (placement, network, target.as_deref()) {
            // Applied by the runtime in its own namespace at launch (stored by the trial).
            (Placement::OwnNamespace, ..) => None,
            (Placement::TargetHost, _, Some(t)) => Some(Where::Target(t)),
            (Placement::TargetHost, ..) => None,
            (_, Some(net), _) => Some(Where::Here(net)),
            (_, None, _) => None,
        };
        let result = match where_ {
            Some(w) => self.apply_at(store, campaign, w, placement, key),
            None => Ok(()),
        };
        self.target = target;
        result
    }

    fn apply_at(
        &mut self,
        store: &mut Store,
        campaign: &str,
        where_: Where<'_>,
        placement: Placement,
        key: &TrialKey,
    ) -> Result<(), Failure> {
        let sample = match self.apply_and_record(store, campaign, where_, placement, key) {
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
        where_: Where<'_>,
        placement: Placement,
        key: &TrialKey,
    ) -> Result<f64, String> {
        let profile = Profile::parse(&key.firewall).map_err(|e| format!("{e:#}"))?;
        let applied = match where_ {
            Where::Here(network) => network.apply(profile, placement),
            Where::Target(target) => target.apply(&key.firewall),
        }
        .map_err(|e| format!("{e:#}"))?;
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

/// Where a profile is applied: this host's network, or a remote target.
enum Where<'a> {
    Here(&'a Network),
    Target(&'a dyn TargetFirewall),
}

/// Stores a remote target's network and ruleset as found at the start.
pub fn record_target_start(store: &Store, campaign: &str, start: &TargetStart) -> Result<()> {
    store.insert_network(campaign, &start.network)?;
    store_ruleset(store, campaign, "before", &start.before, None)
}

/// Stores the target's ruleset after the campaign; returns the parts that
/// changed unexplained. The target is compared only if its agent still
/// answers (it removes our table by itself when the session ends).
pub fn finish_target(store: &Store, campaign: &str, target: &dyn TargetFirewall) -> Result<Vec<String>> {
    match target.finish() {
        Ok(check) => store_check(store, campaign, &check),
        Err(e) => {
            eprintln!(
                "edgebench: warning: the target's ruleset after the campaign was not compared with the one before                  ({e:#}); its agent removes our table when the session ends"
            );
            Ok(Vec::new())
        }
    }
}

fn store_ruleset(
    store: &Store,
    campaign: &str,
    moment: &str,
    snapshot: &HostSnapshot,
    check: Option<&HostCheck>,
) -> Result<()> {
    store.insert_host_ruleset(
        campaign,
        &HostRulesetRow {
            ts_ns: now_ns(),
            moment: moment.into(),
            sha256: snapshot.sha256.clone(),
            parts: serde_json::to_value(&snapshot.parts)?,
            changed: check.map(|c| c.changes.unexplained.join(", ")).unwrap_or_default(),
            docker: check.map(|c| c.changes.docker.join(", ")).unwrap_or_default(),
        },
    )
}

fn store_check(store: &Store, campaign: &str, check: &HostCheck) -> Result<Vec<String>> {
    store_ruleset(store, campaign, "after", &check.after, Some(check))?;
    if !check.changes.docker.is_empty() {
        eprintln!(
            "edgebench: warning: Docker changed its per-container rules during the campaign ({}): containers were \
             started or stopped meanwhile (by this campaign or by someone else)",
            check.changes.docker.join(", ")
        );
    }
    Ok(check.changes.unexplained.clone())
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
    store_ruleset(store, campaign, "before", &network.host_before, None)
}

/// Removes namespace, veth and tables, stores the host's ruleset after, and
/// returns the parts of the host's ruleset that changed unexplained (none
/// when all is well).
pub fn finish(store: &Store, campaign: &str, network: Network) -> Result<Vec<String>> {
    let check = network.finish()?;
    store_check(store, campaign, &check)
}
