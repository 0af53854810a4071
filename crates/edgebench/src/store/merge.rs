//! A fleet: the campaigns of several hosts in one results file. Every row
//! of every source file is kept as stored (campaign ids tell them apart);
//! table `hosts` is the host dimension: which host each campaign ran on.

use super::{CampaignRow, Store, RESULTS_FILE};
use anyhow::{bail, Context as _, Result};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS hosts (
    campaign TEXT PRIMARY KEY,
    host     TEXT NOT NULL,               -- a safe directory name: the fleet's hosts/<host>/
    source   TEXT NOT NULL                -- the campaign directory it was merged from
);
"#;

/// A row of `hosts`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct HostRow {
    pub campaign: String,
    pub host: String,
    pub source: String,
}

/// Host names become directory names (`hosts/<host>/`): letters, digits,
/// `.`, `_`, `-`, at most 64, not starting with `.` (no `..`) or `-` (not
/// read as an option).
pub fn check_host_name(name: &str) -> Result<()> {
    let ok = (1..=64).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !name.starts_with(['.', '-']);
    if !ok {
        bail!(
            "host name {name:?} is not a safe directory name (1 to 64 letters, digits, '.', '_' or '-', not starting \
             with '.' or '-')"
        );
    }
    Ok(())
}

fn quoted(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// (name, declared type, primary-key position) of each column of `schema.table`.
fn columns(conn: &Connection, schema: &str, table: &str) -> Result<Vec<(String, String, i64)>> {
    let mut stmt = conn.prepare("SELECT name, type, pk FROM pragma_table_info(?1, ?2) ORDER BY cid")?;
    let rows = stmt.query_map(params![table, schema], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect::<Result<_, _>>().map_err(Into::into)
}

impl Store {
    /// A new fleet results file: the campaign schema and `hosts`.
    pub fn create_fleet(path: &Path) -> Result<Store> {
        let store = Store::open(path)?;
        store.conn.execute_batch(SCHEMA)?;
        Ok(store)
    }

    /// Whether this file is a merged fleet (it has table `hosts`).
    pub fn is_fleet(&self) -> Result<bool> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'hosts'",
            [],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    /// The hosts of a fleet, in the order they were merged (the first is the
    /// reference of the fleet report's cross-host ratios).
    pub fn hosts(&self) -> Result<Vec<HostRow>> {
        let mut stmt = self.conn.prepare("SELECT campaign, host, source FROM hosts ORDER BY rowid")?;
        let rows = stmt.query_map([], |r| Ok(HostRow { campaign: r.get(0)?, host: r.get(1)?, source: r.get(2)? }))?;
        rows.collect::<Result<_, _>>().map_err(Into::into)
    }

    /// How many campaigns the file holds (a campaign directory's: one).
    pub fn campaign_count(&self) -> Result<usize> {
        Ok(self.conn.query_row("SELECT count(*) FROM campaigns", [], |r| r.get::<_, i64>(0))? as usize)
    }

    /// The campaign `id` of this file, if it holds it.
    pub fn campaign_by_id(&self, id: &str) -> Result<Option<CampaignRow>> {
        self.conn
            .query_row(
                "SELECT id, started_ns, finished_ns, status, seed, config, environment FROM campaigns WHERE id = ?1",
                [id],
                super::campaign_row,
            )
            .optional()
            .map_err(Into::into)
    }

    /// A consistent copy of this results file in one file (what a WAL
    /// beside it holds included), at `to`, which must not exist.
    pub fn copy_to(&self, to: &Path) -> Result<()> {
        let target = to.to_str().with_context(|| format!("{}: not a UTF-8 path", to.display()))?;
        self.conn
            .execute("VACUUM INTO ?1", [target])
            .with_context(|| format!("copying the results to {}", to.display()))?;
        Ok(())
    }

    /// Adds every row of every table of the campaign file `file` to this
    /// fleet file and records the campaign's `host`; returns the campaign
    /// id. Integer primary keys (sample ids) are numbered anew, in the
    /// source's order, so that ids of different hosts never collide; a
    /// table this file lacks (from a newer edgebench) is created as the
    /// source declares it.
    pub fn absorb(&mut self, file: &Path, host: &str, source: &str) -> Result<String> {
        check_host_name(host)?;
        let path = file.to_str().with_context(|| format!("{}: not a UTF-8 path", file.display()))?;
        self.conn.execute("ATTACH DATABASE ?1 AS src", [path])?;
        let result = self.absorb_attached(host, source);
        self.conn.execute_batch("DETACH DATABASE src")?;
        result.with_context(|| format!("merging {} into the fleet's {RESULTS_FILE}", file.display()))
    }

    fn absorb_attached(&mut self, host: &str, source: &str) -> Result<String> {
        let tx = self.conn.transaction()?;
        let ids: Vec<String> = {
            let mut stmt = tx.prepare("SELECT id FROM src.campaigns")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let [id] = ids.as_slice() else {
            bail!("the file holds {} campaigns where a campaign directory holds one", ids.len());
        };
        let tables: Vec<(String, String)> = {
            let mut stmt = tx.prepare(
                "SELECT name, sql FROM src.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        for (table, sql) in &tables {
            if table == "hosts" {
                bail!("it is itself a merged fleet (it has table `hosts`)");
            }
            if columns(&tx, "main", table)?.is_empty() {
                tx.execute_batch(sql)?;
            }
            let ours = columns(&tx, "main", table)?;
            let theirs = columns(&tx, "src", table)?;
            // An INTEGER PRIMARY KEY is the rowid: left out, SQLite numbers it anew.
            let rowid_alias = |c: &(String, String, i64)| {
                c.2 == 1 && c.1.eq_ignore_ascii_case("INTEGER") && ours.iter().filter(|o| o.2 > 0).count() == 1
            };
            let shared: Vec<String> = ours
                .iter()
                .filter(|c| !rowid_alias(c) && theirs.iter().any(|t| t.0 == c.0))
                .map(|c| quoted(&c.0))
                .collect();
            let list = shared.join(", ");
            tx.execute(
                &format!("INSERT INTO main.{t} ({list}) SELECT {list} FROM src.{t} ORDER BY rowid", t = quoted(table)),
                [],
            )?;
        }
        tx.execute("INSERT INTO hosts (campaign, host, source) VALUES (?1, ?2, ?3)", params![id, host, source])?;
        tx.commit()?;
        Ok(id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_must_be_safe_directory_names() {
        for good in ["host-a", "edge_1.example.org", "A9"] {
            assert!(check_host_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", ".hidden", "-rf", "a/b", "a b", "ä", &"x".repeat(65)] {
            let err = check_host_name(bad).unwrap_err().to_string();
            assert!(err.contains("not a safe directory name"), "{bad}: {err}");
        }
    }
}
