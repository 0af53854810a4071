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
    let mut command = Command::new("nft");
    if let Netns::Ours(path) = netns {
        enter_netns(&mut command, path)?;
    }
    Ok(command)
}

/// `nft --version`, or why nft cannot be used here.
pub fn version() -> Result<String, String> {
    let out = Command::new("nft")
        .arg("--version")
        .output()
        .map_err(|e| format!("nft not found ({e}): install Debian's `nftables` (apt-get install -y nftables)"))?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        return Err(format!("`nft --version` failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    // JSON support is a build option of nft: check that it answers JSON.
    let listed = Command::new("nft").args(["-j", "list", "tables"]).output().map_err(|e| e.to_string())?;
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

/// The host's ruleset apart from ours: a hash per table and of the whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSnapshot {
    pub sha256: String,
    pub tables: BTreeMap<String, String>,
}

impl HostSnapshot {
    pub fn take() -> Result<HostSnapshot> {
        let ruleset = list_ruleset(Netns::Host)?;
        let mut by_table: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for item in canonical(&ruleset) {
            let Some(table) = table_of(&item) else { continue };
            if table.split_once(' ').is_some_and(|(_, name)| name.starts_with(PREFIX)) {
                continue;
            }
            by_table.entry(table).or_default().push(item);
        }
        Ok(HostSnapshot {
            sha256: sha256(&by_table),
            tables: by_table.iter().map(|(t, items)| (t.clone(), sha256(items))).collect(),
        })
    }

    /// Tables added, removed or changed since `before`.
    pub fn changed_since(&self, before: &HostSnapshot) -> Vec<String> {
        let mut names: Vec<&String> = before.tables.keys().chain(self.tables.keys()).collect();
        names.sort();
        names.dedup();
        names.into_iter().filter(|t| before.tables.get(*t) != self.tables.get(*t)).cloned().collect()
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
}
