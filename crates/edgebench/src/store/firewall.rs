//! What a firewall campaign stores besides samples: the exact rules of every
//! profile with the hash of the ruleset in force, the topology, and the
//! host's ruleset hash before and after.

use super::{now_ns, Store};
use anyhow::Result;
use rusqlite::params;

pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS firewall_profiles (
    campaign          TEXT NOT NULL,
    profile           TEXT NOT NULL,
    placement         TEXT NOT NULL,      -- server-namespace | host-loopback
    definition        TEXT NOT NULL,      -- JSON: the nftables batch applied (`nft -j -f -`)
    definition_sha256 TEXT NOT NULL,
    ruleset_sha256    TEXT NOT NULL,      -- our table as listed back by `nft -j -s list ruleset`
    rules_before_accept INTEGER NOT NULL, -- non-matching rules before the service accept
    PRIMARY KEY (campaign, profile, placement)
);
CREATE TABLE IF NOT EXISTS network (
    campaign     TEXT NOT NULL,
    started_ns   INTEGER NOT NULL,       -- one row per run (a resumed campaign has several)
    netns        TEXT NOT NULL,
    host_if      TEXT NOT NULL,
    ns_if        TEXT NOT NULL,
    client_addr  TEXT NOT NULL,
    server_addr  TEXT NOT NULL,
    service_ports TEXT NOT NULL,
    nft_version  TEXT NOT NULL,
    PRIMARY KEY (campaign, started_ns)
);
CREATE TABLE IF NOT EXISTS host_ruleset (
    campaign  TEXT NOT NULL,
    ts_ns     INTEGER NOT NULL,
    moment    TEXT NOT NULL,             -- before | after
    sha256    TEXT NOT NULL,             -- the host's ruleset without our tables
    parts     TEXT NOT NULL,             -- JSON object: `family table [chain]` -> sha256
    changed   TEXT NOT NULL DEFAULT '',  -- after: parts that differ from before, unexplained (a failure)
    docker    TEXT NOT NULL DEFAULT '',  -- after: Docker's per-container chains that differ (explained)
    PRIMARY KEY (campaign, ts_ns, moment)
);
"#;

#[derive(Clone, Debug, serde::Serialize)]
pub struct FirewallProfileRow {
    pub profile: String,
    pub placement: String,
    pub definition: serde_json::Value,
    pub definition_sha256: String,
    pub ruleset_sha256: String,
    pub rules_before_accept: usize,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct NetworkRow {
    pub netns: String,
    pub host_if: String,
    pub ns_if: String,
    pub client_addr: String,
    pub server_addr: String,
    pub service_ports: String,
    pub nft_version: String,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct HostRulesetRow {
    pub ts_ns: i64,
    pub moment: String,
    pub sha256: String,
    pub parts: serde_json::Value,
    pub changed: String,
    pub docker: String,
}

impl Store {
    pub fn upsert_firewall_profile(&self, campaign: &str, r: &FirewallProfileRow) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO firewall_profiles (campaign, profile, placement, definition, definition_sha256, ruleset_sha256, rules_before_accept)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                campaign,
                r.profile,
                r.placement,
                r.definition.to_string(),
                r.definition_sha256,
                r.ruleset_sha256,
                r.rules_before_accept as i64
            ],
        )?;
        Ok(())
    }

    pub fn firewall_profiles(&self, campaign: &str) -> Result<Vec<FirewallProfileRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT profile, placement, definition, definition_sha256, ruleset_sha256, rules_before_accept
             FROM firewall_profiles WHERE campaign = ?1 ORDER BY rowid",
        )?;
        let rows = stmt.query_map([campaign], |r| {
            Ok(FirewallProfileRow {
                profile: r.get(0)?,
                placement: r.get(1)?,
                definition: serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or_default(),
                definition_sha256: r.get(3)?,
                ruleset_sha256: r.get(4)?,
                rules_before_accept: r.get::<_, i64>(5)? as usize,
            })
        })?;
        rows.collect::<Result<_, _>>().map_err(Into::into)
    }

    pub fn insert_network(&self, campaign: &str, n: &NetworkRow) -> Result<()> {
        self.conn.execute(
            "INSERT INTO network (campaign, started_ns, netns, host_if, ns_if, client_addr, server_addr, service_ports, nft_version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                campaign,
                now_ns(),
                n.netns,
                n.host_if,
                n.ns_if,
                n.client_addr,
                n.server_addr,
                n.service_ports,
                n.nft_version
            ],
        )?;
        Ok(())
    }

    pub fn networks(&self, campaign: &str) -> Result<Vec<NetworkRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT netns, host_if, ns_if, client_addr, server_addr, service_ports, nft_version
             FROM network WHERE campaign = ?1 ORDER BY started_ns",
        )?;
        let rows = stmt.query_map([campaign], |r| {
            Ok(NetworkRow {
                netns: r.get(0)?,
                host_if: r.get(1)?,
                ns_if: r.get(2)?,
                client_addr: r.get(3)?,
                server_addr: r.get(4)?,
                service_ports: r.get(5)?,
                nft_version: r.get(6)?,
            })
        })?;
        rows.collect::<Result<_, _>>().map_err(Into::into)
    }

    pub fn insert_host_ruleset(&self, campaign: &str, r: &HostRulesetRow) -> Result<()> {
        self.conn.execute(
            "INSERT INTO host_ruleset (campaign, ts_ns, moment, sha256, parts, changed, docker) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![campaign, r.ts_ns, r.moment, r.sha256, r.parts.to_string(), r.changed, r.docker],
        )?;
        Ok(())
    }

    pub fn host_rulesets(&self, campaign: &str) -> Result<Vec<HostRulesetRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT ts_ns, moment, sha256, parts, changed, docker FROM host_ruleset WHERE campaign = ?1 ORDER BY ts_ns, moment DESC",
        )?;
        let rows = stmt.query_map([campaign], |r| {
            Ok(HostRulesetRow {
                ts_ns: r.get(0)?,
                moment: r.get(1)?,
                sha256: r.get(2)?,
                parts: serde_json::from_str(&r.get::<_, String>(3)?).unwrap_or_default(),
                changed: r.get(4)?,
                docker: r.get(5)?,
            })
        })?;
        rows.collect::<Result<_, _>>().map_err(Into::into)
    }
}
