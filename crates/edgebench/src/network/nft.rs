//! Drives `nft` through its JSON interface (`nft -j -f -`), in the host
//! namespace or inside one of ours, and hashes rulesets.

use super::topology::enter_netns;
use anyhow::{bail, Context as _, Result};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Our tables and namespaces are named with this prefix (never anything else).
pub const PREFIX: &str = "eb-";

/// Which network namespace an `nft` command acts on.
#[derive(Clone, Copy, Debug)]
pub enum Netns<'a> {
    Host,
    /// A namespace of ours, by its /run/netns path.
    Ours(&'a Path),
}

fn nft(netns: Netns<'_>) -> Result<Command> {
    let mut command = crate::runtime::process::helper("nft");
    if let Netns::Ours(path) = netns {
        enter_netns(&mut command, path)?;
    }
    Ok(command)
}

/// `nft --version`, or why nft cannot be used here.
pub fn version() -> Result<String, String> {
    let out = crate::runtime::process::helper("nft")
        .arg("--version")
        .output()
        .map_err(|e| format!("nft not found ({e}): install Debian's `nftables` (apt-get install -y nftables)"))?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        return Err(format!("`nft --version` failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    // JSON support is a build option of nft: check that it answers JSON.
    let listed =
        crate::runtime::process::helper("nft").args(["-j", "list", "tables"]).output().map_err(|e| e.to_string())?;
    if !listed.status.success() || serde_json::from_slice::<Value>(&listed.stdout).is_err() {
        return Err(format!(
            "`nft -j list tables` does not answer JSON (need CAP_NET_ADMIN and nft built with JSON): {}",
            String::from_utf8_lossy(&listed.stderr).trim()
        ));
    }
    Ok(text)
}

/// Applies a batch in one transaction. Returns the time from just before
/// starting `nft` to its successful exit (the transaction committed).
pub fn apply(netns: Netns<'_>, batch: &Value) -> Result<Duration> {
    let input = serde_json::to_vec(batch)?;
    let mut command = nft(netns)?;
    command.args(["-j", "-f", "-"]).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = command.spawn().context("starting nft")?;
    child.stdin.take().context("nft stdin")?.write_all(&input).context("writing the ruleset to nft")?;
    let out = child.wait_with_output().context("waiting for nft")?;
    let took = start.elapsed();
    if !out.status.success() {
        bail!("nft rejected the ruleset ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(took)
}

/// `nft -j -s list ruleset` (stateless: no counter values).
pub fn list_ruleset(netns: Netns<'_>) -> Result<Value> {
    let out = nft(netns)?.args(["-j", "-s", "list", "ruleset"]).output().context("running nft")?;
    if !out.status.success() {
        bail!("nft list ruleset failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    serde_json::from_slice(&out.stdout).context("nft printed invalid JSON")
}

/// The ruleset without what changes when nothing changed: the metainfo
/// object, handles (renumbered when a rule is re-added) and the order of
/// set elements (hash order in the kernel).
pub fn canonical(ruleset: &Value) -> Vec<Value> {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.remove("handle");
                if let Some(Value::Array(elems)) = map.get_mut("elem") {
                    elems.sort_by_key(|e| e.to_string());
                }
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut items: Vec<Value> = ruleset["nftables"]
        .as_array()
        .map(|a| a.iter().filter(|i| i.get("metainfo").is_none()).cloned().collect())
        .unwrap_or_default();
    items.iter_mut().for_each(strip);
    items
}

pub fn sha256(value: &impl serde::Serialize) -> String {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `family name` of the table an item of a listing belongs to.
pub fn table_of(item: &Value) -> Option<String> {
    let (kind, body) = item.as_object()?.iter().next()?;
    let name = if kind == "table" { body.get("name")? } else { body.get("table")? };
    Some(format!("{} {}", body.get("family")?.as_str()?, name.as_str()?))
}

/// Table names (`family name`) of a listing.
pub fn tables(ruleset: &Value) -> Vec<String> {
    ruleset["nftables"]
        .as_array()
        .map(|a| a.iter().filter(|i| i.get("table").is_some()).filter_map(table_of).collect())
        .unwrap_or_default()
}

/// The host's ruleset apart from ours: a hash of the whole and one per
/// part, a part being a table's declarations (`family table`) or the rules
/// of one chain (`family table chain`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostSnapshot {
    pub sha256: String,
    pub parts: BTreeMap<String, String>,
}

/// How the host's ruleset differs from an earlier snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostChanges {
    /// Parts that changed and that no known agent explains: a failure.
    pub unexplained: Vec<String>,
    /// Rules of Docker's per-container chains (`DOCKER`, nat `POSTROUTING`),
    /// which Docker rewrites whenever any container with a published port
    /// starts or stops, ours or not: reported, not a failure.
    pub docker: Vec<String>,
}

/// Chains whose rules Docker's daemon adds and removes per container.
fn docker_managed(part: &str) -> bool {
    let fields: Vec<&str> = part.split(' ').collect();
    matches!(fields.as_slice(), [family, _, "DOCKER"] | [family, "nat", "POSTROUTING"] if *family == "ip" || *family == "ip6")
}

impl HostSnapshot {
    pub fn take() -> Result<HostSnapshot> {
        let ruleset = list_ruleset(Netns::Host)?;
        let mut parts: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for item in canonical(&ruleset) {
            let Some(table) = table_of(&item) else { continue };
            if table.split_once(' ').is_some_and(|(_, name)| name.starts_with(PREFIX)) {
                continue;
            }
            let part = match item.get("rule").and_then(|r| r.get("chain")).and_then(Value::as_str) {
                Some(chain) => format!("{table} {chain}"),
                None => table,
            };
            parts.entry(part).or_default().push(item);
        }
        Ok(HostSnapshot {
            sha256: sha256(&parts),
            parts: parts.iter().map(|(p, items)| (p.clone(), sha256(items))).collect(),
        })
    }

    /// Parts added, removed or changed since `before`.
    pub fn changed_since(&self, before: &HostSnapshot) -> HostChanges {
        let mut names: Vec<&String> = before.parts.keys().chain(self.parts.keys()).collect();
        names.sort();
        names.dedup();
        let mut changes = HostChanges::default();
        for part in names.into_iter().filter(|p| before.parts.get(*p) != self.parts.get(*p)) {
            if docker_managed(part) {
                changes.docker.push(part.clone());
            } else {
                changes.unexplained.push(part.clone());
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_form_ignores_handles_metainfo_and_element_order() {
        let a = json!({"nftables": [
            {"metainfo": {"version": "1.0.6"}},
            {"table": {"family": "inet", "name": "t", "handle": 3}},
            {"set": {"family": "inet", "table": "t", "name": "s", "handle": 1, "elem": ["10.0.0.2", "10.0.0.1"]}}
        ]});
        let b = json!({"nftables": [
            {"metainfo": {"version": "1.0.7"}},
            {"table": {"family": "inet", "name": "t", "handle": 9}},
            {"set": {"family": "inet", "table": "t", "name": "s", "handle": 4, "elem": ["10.0.0.1", "10.0.0.2"]}}
        ]});
        assert_eq!(sha256(&canonical(&a)), sha256(&canonical(&b)));
        assert_eq!(tables(&a), vec!["inet t"]);
        let c =
            json!({"nftables": [{"table": {"family": "inet", "name": "t"}}, {"table": {"family": "ip", "name": "u"}}]});
        assert_ne!(sha256(&canonical(&a)), sha256(&canonical(&c)));
    }

    #[test]
    fn only_dockers_per_container_chains_are_explained() {
        let snapshot = |parts: &[(&str, &str)]| HostSnapshot {
            sha256: String::new(),
            parts: parts.iter().map(|(p, h)| (p.to_string(), h.to_string())).collect(),
        };
        let before = snapshot(&[("ip nat", "1"), ("ip nat DOCKER", "2"), ("ip filter INPUT", "3")]);
        let after =
            snapshot(&[("ip nat", "1"), ("ip nat DOCKER", "9"), ("ip nat POSTROUTING", "4"), ("ip filter INPUT", "5")]);
        let changes = after.changed_since(&before);
        assert_eq!(changes.docker, vec!["ip nat DOCKER", "ip nat POSTROUTING"]);
        assert_eq!(changes.unexplained, vec!["ip filter INPUT"]);
        assert_eq!(before.changed_since(&before), HostChanges::default());
    }
}
