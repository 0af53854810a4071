//! The store: every raw sample with its environment, in SQLite.
//!
//! This schema is the contract between measuring and reporting, and with
//! users' scripts (see README, "Results"): columns are added, never renamed.
//! Each measurement is written in its own transaction as soon as it is taken,
//! so an interrupted campaign keeps everything measured before the interrupt.

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

mod firewall;
pub mod histograms;
mod merge;
pub use firewall::{FirewallProfileRow, HostRulesetRow, NetworkRow};
pub use merge::{check_host_name, HostRow};

pub const RESULTS_FILE: &str = "results.sqlite";
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS campaigns (
    id            TEXT PRIMARY KEY,
    started_ns    INTEGER NOT NULL,
    finished_ns   INTEGER,
    status        TEXT NOT NULL,          -- running | finished | interrupted
    seed          INTEGER NOT NULL,
    config        TEXT NOT NULL,          -- JSON: the run options
    environment   TEXT NOT NULL           -- JSON: host, kernel, CPU, versions, commit, env vars
);
CREATE TABLE IF NOT EXISTS runtimes (
    campaign   TEXT NOT NULL,
    runtime    TEXT NOT NULL,
    variant    TEXT NOT NULL,
    measured   INTEGER NOT NULL,          -- 1 measured, 0 not measured (reason says why)
    version    TEXT NOT NULL,
    path       TEXT NOT NULL,
    reason     TEXT NOT NULL,
    notes      TEXT NOT NULL,             -- JSON object: workload -> note
    PRIMARY KEY (campaign, runtime, variant)
);
CREATE TABLE IF NOT EXISTS samples (
    id          INTEGER PRIMARY KEY,
    campaign    TEXT NOT NULL,
    runtime     TEXT NOT NULL,
    variant     TEXT NOT NULL,
    workload    TEXT NOT NULL,
    metric      TEXT NOT NULL,
    phase       TEXT NOT NULL DEFAULT '',
    firewall    TEXT NOT NULL DEFAULT 'off',
    edge        TEXT NOT NULL DEFAULT 'none', -- the trial's edge profile (CPU quota, memory cap)
    repetition  INTEGER NOT NULL,
    seq         INTEGER NOT NULL DEFAULT 0,   -- index within a repetition (latency runs)
    value       REAL,
    unit        TEXT NOT NULL,
    ts_ns       INTEGER NOT NULL,             -- UTC, when the sample was taken
    ok          INTEGER NOT NULL,
    error       TEXT NOT NULL DEFAULT '',     -- why the sample failed (ok = 0); empty when ok
    detail      TEXT NOT NULL DEFAULT ''      -- what an ok sample needs said (a density's stop cause, a placement)
);
CREATE TABLE IF NOT EXISTS runs (
    campaign    TEXT NOT NULL,
    started_ns  INTEGER NOT NULL,             -- one row per run: the first, and each --resume
    environment TEXT NOT NULL,                -- JSON, as campaigns.environment, for this run
    artifacts   TEXT NOT NULL,                -- JSON: what -> sha256 of the artifact this run used
    PRIMARY KEY (campaign, started_ns)
);
CREATE INDEX IF NOT EXISTS samples_cell ON samples (campaign, runtime, variant, workload, metric);
CREATE TABLE IF NOT EXISTS trials (
    campaign    TEXT NOT NULL,
    kind        TEXT NOT NULL DEFAULT 'trial', -- trial | scaling (an experiment after the trials)
    trial       INTEGER NOT NULL,             -- position in the seeded random order of its run
    runtime     TEXT NOT NULL,
    variant     TEXT NOT NULL,
    workload    TEXT NOT NULL,
    repetition  INTEGER NOT NULL,
    firewall    TEXT NOT NULL DEFAULT 'off',  -- the trial's firewall profile
    edge        TEXT NOT NULL DEFAULT 'none', -- the trial's edge profile
    status      TEXT NOT NULL,                -- done | failed | interrupted
    error       TEXT NOT NULL,
    finished_ns INTEGER NOT NULL,
    PRIMARY KEY (campaign, kind, runtime, variant, workload, repetition, firewall, edge)
);
"#;

/// A trial or scaling experiment of a campaign, as `trials` records it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TrialIdentity {
    pub kind: String,
    pub runtime: String,
    pub variant: String,
    pub workload: String,
    pub repetition: u32,
    pub firewall: String,
    pub edge: String,
}

impl TrialIdentity {
    pub fn of(kind: &str, key: TrialRow<'_>) -> TrialIdentity {
        TrialIdentity {
            kind: kind.into(),
            runtime: key.runtime.into(),
            variant: key.variant.into(),
            workload: key.workload.into(),
            repetition: key.repetition,
            firewall: key.firewall.into(),
            edge: key.edge.into(),
        }
    }
}

/// Files from before trials were keyed by identity (`trials` keyed by
/// position): rebuilt with the new key. A scaling experiment then shares its
/// identity with a trial and was recorded after every trial, so of two rows
/// with one identity the later position is the scaling one.
fn key_trials_by_identity(conn: &Connection) -> Result<()> {
    conn.execute_batch(
        "BEGIN;
         ALTER TABLE trials RENAME TO trials_by_position;
         CREATE TABLE trials (
            campaign    TEXT NOT NULL,
            kind        TEXT NOT NULL DEFAULT 'trial',
            trial       INTEGER NOT NULL,
            runtime     TEXT NOT NULL,
            variant     TEXT NOT NULL,
            workload    TEXT NOT NULL,
            repetition  INTEGER NOT NULL,
            firewall    TEXT NOT NULL DEFAULT 'off',
            status      TEXT NOT NULL,
            error       TEXT NOT NULL,
            finished_ns INTEGER NOT NULL,
            PRIMARY KEY (campaign, kind, runtime, variant, workload, repetition, firewall)
         );
         INSERT OR REPLACE INTO trials
         SELECT t.campaign,
                CASE WHEN EXISTS (SELECT 1 FROM trials_by_position e WHERE e.campaign = t.campaign
                     AND e.runtime = t.runtime AND e.variant = t.variant AND e.workload = t.workload
                     AND e.repetition = t.repetition AND e.firewall = t.firewall AND e.trial < t.trial)
                     THEN 'scaling' ELSE 'trial' END,
                t.trial, t.runtime, t.variant, t.workload, t.repetition, t.firewall, t.status, t.error, t.finished_ns
         FROM trials_by_position t ORDER BY t.trial;
         DROP TABLE trials_by_position;
         COMMIT;",
    )?;
    Ok(())
}

/// Files from before edge profiles: `trials` rebuilt with `edge` in its key.
fn key_trials_by_edge(conn: &Connection) -> Result<()> {
    conn.execute_batch(
        "BEGIN;
         ALTER TABLE trials RENAME TO trials_without_edge;
         CREATE TABLE trials (
            campaign    TEXT NOT NULL,
            kind        TEXT NOT NULL DEFAULT 'trial',
            trial       INTEGER NOT NULL,
            runtime     TEXT NOT NULL,
            variant     TEXT NOT NULL,
            workload    TEXT NOT NULL,
            repetition  INTEGER NOT NULL,
            firewall    TEXT NOT NULL DEFAULT 'off',
            edge        TEXT NOT NULL DEFAULT 'none',
            status      TEXT NOT NULL,
            error       TEXT NOT NULL,
            finished_ns INTEGER NOT NULL,
            PRIMARY KEY (campaign, kind, runtime, variant, workload, repetition, firewall, edge)
         );
         INSERT INTO trials (campaign, kind, trial, runtime, variant, workload, repetition, firewall, status, error,
                             finished_ns)
         SELECT campaign, kind, trial, runtime, variant, workload, repetition, firewall, status, error, finished_ns
         FROM trials_without_edge;
         DROP TABLE trials_without_edge;
         COMMIT;",
    )?;
    Ok(())
}

/// What identifies a trial (and its samples) besides its campaign.
#[derive(Clone, Copy, Debug)]
pub struct TrialRow<'a> {
    pub runtime: &'a str,
    pub variant: &'a str,
    pub workload: &'a str,
    pub repetition: u32,
    pub firewall: &'a str,
    pub edge: &'a str,
}

/// The runtime every ratio in the report is taken against, unless the
/// campaign names another (`baseline`).
pub const BASELINE: &str = "native";

/// A runtime row's note `"<workload>: not measured"` says why that measured
/// runtime variant did not run that workload (e.g. it has no artifact for it).
pub const NOT_MEASURED: &str = "not measured";

/// The phase of every open-loop search step's samples: the steps are the
/// points of a curve (the offered rate is the step's `open_loop_offered`
/// sample), not a distribution. Files from before it used `rate=R`.
pub const SEARCH_PHASE: &str = "search";

/// Whether a phase holds open-loop search steps.
pub fn is_search_step(phase: &str) -> bool {
    phase == SEARCH_PHASE || phase.starts_with("rate=")
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub runtime: String,
    pub variant: String,
    pub workload: String,
    pub metric: String,
    pub phase: String,
    pub firewall: String,
    /// The trial's edge profile (`none`: unconstrained).
    pub edge: String,
    pub repetition: u32,
    pub seq: u32,
    pub value: Option<f64>,
    pub unit: String,
    pub ts_ns: i64,
    pub ok: bool,
    /// Why the sample failed; empty when `ok`.
    pub error: String,
    /// What an ok sample needs said besides its value (a density's stop
    /// cause, a firewall placement); never an error.
    pub detail: String,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct CampaignRow {
    pub id: String,
    pub started_ns: i64,
    pub finished_ns: Option<i64>,
    pub status: String,
    pub seed: u64,
    pub config: serde_json::Value,
    pub environment: serde_json::Value,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct RuntimeRow {
    pub runtime: String,
    pub variant: String,
    pub measured: bool,
    pub version: String,
    pub path: String,
    pub reason: String,
    pub notes: serde_json::Value,
}

impl RuntimeRow {
    /// The workloads this variant, though measured, did not run, with why
    /// (its notes `"<workload>: not measured"`).
    pub fn workloads_not_run(&self) -> Vec<(String, String)> {
        let suffix = format!(": {NOT_MEASURED}");
        let Some(map) = self.notes.as_object().filter(|_| self.measured) else { return Vec::new() };
        map.iter()
            .filter_map(|(key, why)| Some((key.strip_suffix(&suffix)?.to_string(), why.as_str()?.to_string())))
            .collect()
    }
}

impl CampaignRow {
    /// The runtime this campaign's ratios and tests are against (campaigns
    /// from before it was a setting: `native`).
    pub fn baseline(&self) -> &str {
        self.config["baseline"].as_str().unwrap_or(BASELINE)
    }
}

/// A `campaigns` row selected as id, started_ns, finished_ns, status, seed, config, environment.
fn campaign_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CampaignRow> {
    Ok(CampaignRow {
        id: r.get(0)?,
        started_ns: r.get(1)?,
        finished_ns: r.get(2)?,
        status: r.get(3)?,
        seed: r.get::<_, i64>(4)? as u64,
        config: serde_json::from_str(&r.get::<_, String>(5)?).unwrap_or_default(),
        environment: serde_json::from_str(&r.get::<_, String>(6)?).unwrap_or_default(),
    })
}

pub struct Store {
    conn: Connection,
}

pub fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
}

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        // Files written before firewall profiles: add the trials' column.
        if conn.prepare("SELECT firewall FROM trials LIMIT 0").is_err() {
            conn.execute_batch("ALTER TABLE trials ADD COLUMN firewall TEXT NOT NULL DEFAULT 'off'")?;
        }
        if conn.prepare("SELECT kind FROM trials LIMIT 0").is_err() {
            key_trials_by_identity(&conn)?;
        }
        // Files from before `detail`: ok rows kept their detail text in `error`.
        if conn.prepare("SELECT detail FROM samples LIMIT 0").is_err() {
            conn.execute_batch(
                "BEGIN;
                 ALTER TABLE samples ADD COLUMN detail TEXT NOT NULL DEFAULT '';
                 UPDATE samples SET detail = error, error = '' WHERE ok = 1 AND error != '';
                 COMMIT;",
            )?;
        }
        // Files written before edge profiles: the column, and trials keyed by it.
        if conn.prepare("SELECT edge FROM samples LIMIT 0").is_err() {
            conn.execute_batch("ALTER TABLE samples ADD COLUMN edge TEXT NOT NULL DEFAULT 'none'")?;
        }
        if conn.prepare("SELECT edge FROM trials LIMIT 0").is_err() {
            key_trials_by_edge(&conn)?;
        }
        conn.execute_batch(firewall::SCHEMA)?;
        conn.execute_batch(histograms::SCHEMA)?;
        if conn.prepare("SELECT edge FROM histograms LIMIT 0").is_err() {
            conn.execute_batch("ALTER TABLE histograms ADD COLUMN edge TEXT NOT NULL DEFAULT 'none'")?;
        }
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok(Store { conn })
    }

    /// Opens an existing results file; an error names what is wrong.
    pub fn open_existing(dir: &Path) -> Result<Store> {
        let path = dir.join(RESULTS_FILE);
        if !path.exists() {
            anyhow::bail!(
                "{} has no {RESULTS_FILE}: is it a campaign directory written by `edgebench run`?",
                dir.display()
            );
        }
        Store::open(&path)
    }

    /// Opens a campaign's results for reading only (`report`, `compare`):
    /// nothing is written to the file, so a read-only copy or an archived
    /// campaign can be reported; an error names the file and what is wrong.
    pub fn open_read_only(dir: &Path) -> Result<Store> {
        use rusqlite::OpenFlags;
        let path = dir.join(RESULTS_FILE);
        if !path.exists() {
            anyhow::bail!(
                "{} has no {RESULTS_FILE}: is it a campaign directory written by `edgebench run`?",
                dir.display()
            );
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let not_ours = |e: rusqlite::Error| {
            anyhow::anyhow!(
                "{} is not an edgebench results file ({e}): give a directory written by `edgebench run`",
                path.display()
            )
        };
        let readable = |uri: String| -> Result<Connection> {
            let conn = Connection::open_with_flags(uri, flags).map_err(not_ours)?;
            conn.query_row("SELECT count(*) FROM campaigns", [], |r| r.get::<_, i64>(0)).map_err(not_ours)?;
            Ok(conn)
        };
        let uri = |query: &str| format!("file:{}?{query}", path.display());
        // With no WAL beside it, the file holds everything and is read as
        // immutable (no -wal/-shm is created). A WAL (a campaign running, or
        // one that crashed) is read through its shared-memory index; where
        // none can be made (a read-only directory), as immutable.
        let wal = path.with_file_name(format!("{RESULTS_FILE}-wal"));
        let conn = if wal.exists() {
            readable(uri("mode=ro")).or_else(|_| readable(uri("immutable=1")))?
        } else {
            readable(uri("immutable=1"))?
        };
        Ok(Store { conn })
    }

    pub fn insert_campaign(&self, c: &CampaignRow) -> Result<()> {
        self.conn.execute(
            "INSERT INTO campaigns (id, started_ns, finished_ns, status, seed, config, environment) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![c.id, c.started_ns, c.finished_ns, c.status, c.seed as i64, c.config.to_string(), c.environment.to_string()],
        )?;
        Ok(())
    }

    /// Records one run of a campaign (its first, or a resume) with its environment and artifacts.
    pub fn insert_run(
        &self,
        campaign: &str,
        environment: &serde_json::Value,
        artifacts: &serde_json::Value,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT INTO runs (campaign, started_ns, environment, artifacts) VALUES (?1, ?2, ?3, ?4)",
            params![campaign, now_ns(), environment.to_string(), artifacts.to_string()],
        )?;
        Ok(())
    }

    pub fn set_campaign_status(&self, id: &str, status: &str, finished_ns: Option<i64>) -> Result<()> {
        self.conn.execute(
            "UPDATE campaigns SET status = ?2, finished_ns = ?3 WHERE id = ?1",
            params![id, status, finished_ns],
        )?;
        Ok(())
    }

    /// The campaign in this file (a results file holds one campaign).
    pub fn campaign(&self) -> Result<Option<CampaignRow>> {
        self.conn
            .query_row(
                "SELECT id, started_ns, finished_ns, status, seed, config, environment FROM campaigns ORDER BY started_ns LIMIT 1",
                [],
                campaign_row,
            )
            .optional()
            .map_err(Into::into)
    }

    pub fn upsert_runtime(&self, campaign: &str, r: &RuntimeRow) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO runtimes (campaign, runtime, variant, measured, version, path, reason, notes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![campaign, r.runtime, r.variant, r.measured, r.version, r.path, r.reason, r.notes.to_string()],
        )?;
        Ok(())
    }

    pub fn runtimes(&self, campaign: &str) -> Result<Vec<RuntimeRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT runtime, variant, measured, version, path, reason, notes FROM runtimes WHERE campaign = ?1 ORDER BY rowid",
        )?;
        let rows = stmt.query_map([campaign], |r| {
            Ok(RuntimeRow {
                runtime: r.get(0)?,
                variant: r.get(1)?,
                measured: r.get(2)?,
                version: r.get(3)?,
                path: r.get(4)?,
                reason: r.get(5)?,
                notes: serde_json::from_str(&r.get::<_, String>(6)?).unwrap_or_default(),
            })
        })?;
        rows.collect::<Result<_, _>>().map_err(Into::into)
    }

    /// Writes one measurement's samples in one transaction.
    pub fn insert_samples(&mut self, campaign: &str, samples: &[Sample]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO samples (campaign, runtime, variant, workload, metric, phase, firewall, repetition, seq, value, unit, ts_ns, ok, error, detail, edge)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            )?;
            for s in samples {
                stmt.execute(params![
                    campaign,
                    s.runtime,
                    s.variant,
                    s.workload,
                    s.metric,
                    s.phase,
                    s.firewall,
                    s.repetition,
                    s.seq,
                    s.value,
                    s.unit,
                    s.ts_ns,
                    s.ok,
                    s.error,
                    s.detail,
                    s.edge
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn samples(&self, campaign: &str) -> Result<Vec<Sample>> {
        // A file from before `detail`, opened read-only (so not migrated).
        let detail = if self.conn.prepare("SELECT detail FROM samples LIMIT 0").is_ok() { "detail" } else { "''" };
        let edge = if self.conn.prepare("SELECT edge FROM samples LIMIT 0").is_ok() { "edge" } else { "'none'" };
        let mut stmt = self.conn.prepare(&format!(
            "SELECT runtime, variant, workload, metric, phase, firewall, repetition, seq, value, unit, ts_ns, ok, error, {detail}, {edge}
             FROM samples WHERE campaign = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map([campaign], |r| {
            Ok(Sample {
                runtime: r.get(0)?,
                variant: r.get(1)?,
                workload: r.get(2)?,
                metric: r.get(3)?,
                phase: r.get(4)?,
                firewall: r.get(5)?,
                repetition: r.get(6)?,
                seq: r.get(7)?,
                value: r.get(8)?,
                unit: r.get(9)?,
                ts_ns: r.get(10)?,
                ok: r.get(11)?,
                error: r.get(12)?,
                detail: r.get(13)?,
                edge: r.get(14)?,
            })
            .map(|mut s: Sample| {
                if s.ok && !s.error.is_empty() {
                    s.detail = std::mem::take(&mut s.error);
                }
                s
            })
        })?;
        rows.collect::<Result<_, _>>().map_err(Into::into)
    }

    /// Records how a trial (`kind` "trial") or scaling experiment ("scaling")
    /// ended; one row per identity, the last outcome wins.
    pub fn record_trial(
        &self,
        campaign: &str,
        kind: &str,
        trial: usize,
        key: TrialRow<'_>,
        status: &str,
        error: &str,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO trials (campaign, kind, trial, runtime, variant, workload, repetition, firewall, status, error, finished_ns, edge)
             VALUES (?1, ?11, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?12)",
            params![
                campaign,
                trial as i64,
                key.runtime,
                key.variant,
                key.workload,
                key.repetition,
                key.firewall,
                status,
                error,
                now_ns(),
                kind,
                key.edge
            ],
        )?;
        Ok(())
    }

    /// Trials that need not run again on resume (done or failed for good).
    /// by identity, not by position: a resumed campaign whose plan changed
    /// (a runtime found or lost) still skips exactly what ran.
    pub fn finished_trials(&self, campaign: &str) -> Result<std::collections::HashSet<TrialIdentity>> {
        let mut stmt = self.conn.prepare(
            "SELECT kind, runtime, variant, workload, repetition, firewall, edge FROM trials
             WHERE campaign = ?1 AND status IN ('done', 'failed')",
        )?;
        let rows = stmt.query_map([campaign], |r| {
            Ok(TrialIdentity {
                kind: r.get(0)?,
                runtime: r.get(1)?,
                variant: r.get(2)?,
                workload: r.get(3)?,
                repetition: r.get(4)?,
                firewall: r.get(5)?,
                edge: r.get(6)?,
            })
        })?;
        rows.collect::<Result<_, _>>().map_err(Into::into)
    }

    /// Before a trial that did not finish runs again on resume: its samples
    /// (or, with `scaling`, those of a scaling experiment) stay in the file
    /// but are marked failed with "superseded", so that statistics count the
    /// re-run only and nothing measured is lost.
    pub fn supersede_partial_trial(&self, campaign: &str, key: TrialRow<'_>, scaling: bool) -> Result<()> {
        let scaling_metrics = "metric IN ('scaling_start', 'scaling_rate', 'density', 'density_pss_per_instance')";
        let filter = if scaling { scaling_metrics.to_string() } else { format!("NOT ({scaling_metrics})") };
        self.conn.execute(
            &format!(
                "UPDATE samples SET ok = 0, error = 'superseded: the trial was interrupted and ran again' || \
                 CASE WHEN error = '' THEN '' ELSE '; ' || error END
                 WHERE campaign = ?1 AND runtime = ?2 AND variant = ?3 AND workload = ?4 AND repetition = ?5
                 AND firewall = ?6 AND edge = ?7 AND {filter} AND error NOT LIKE 'superseded:%'"
            ),
            params![campaign, key.runtime, key.variant, key.workload, key.repetition, key.firewall, key.edge],
        )?;
        if !scaling {
            self.conn.execute(
                "UPDATE histograms SET ok = 0 WHERE campaign = ?1 AND runtime = ?2 AND variant = ?3 AND workload = ?4
                 AND repetition = ?5 AND firewall = ?6 AND edge = ?7",
                params![campaign, key.runtime, key.variant, key.workload, key.repetition, key.firewall, key.edge],
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_with_trials_keyed_by_position_is_rekeyed_by_identity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RESULTS_FILE);
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE trials (campaign TEXT NOT NULL, trial INTEGER NOT NULL, runtime TEXT NOT NULL,
                   variant TEXT NOT NULL, workload TEXT NOT NULL, repetition INTEGER NOT NULL,
                   firewall TEXT NOT NULL DEFAULT 'off', status TEXT NOT NULL, error TEXT NOT NULL,
                   finished_ns INTEGER NOT NULL, PRIMARY KEY (campaign, trial));
                 INSERT INTO trials VALUES ('c', 0, 'native', 'v', 'hello', 2, 'off', 'done', '', 1);
                 INSERT INTO trials VALUES ('c', 1, 'native', 'v', 'hello', 1, 'off', 'done', '', 2);
                 INSERT INTO trials VALUES ('c', 2, 'native', 'v', 'hello', 1, 'off', 'failed', 'x', 3);",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let finished = store.finished_trials("c").unwrap();
        let id = |kind: &str, repetition| TrialIdentity {
            kind: kind.into(),
            runtime: "native".into(),
            variant: "v".into(),
            workload: "hello".into(),
            repetition,
            firewall: "off".into(),
            edge: "none".into(),
        };
        assert_eq!(finished, [id("trial", 1), id("trial", 2), id("scaling", 1)].into_iter().collect());
    }

    #[test]
    fn round_trips_campaigns_runtimes_and_samples() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join(RESULTS_FILE)).unwrap();
        let c = CampaignRow {
            id: "c1".into(),
            started_ns: 1,
            finished_ns: None,
            status: "running".into(),
            seed: u64::MAX,
            config: serde_json::json!({"reps": 3}),
            environment: serde_json::json!({"kernel": "x"}),
        };
        store.insert_campaign(&c).unwrap();
        let s = Sample {
            runtime: "native".into(),
            variant: "v".into(),
            workload: "hello".into(),
            metric: "cold_start".into(),
            phase: String::new(),
            firewall: "off".into(),
            edge: "none".into(),
            repetition: 2,
            seq: 0,
            value: Some(1.5),
            unit: "ms".into(),
            ts_ns: 42,
            ok: true,
            error: String::new(),
            detail: String::new(),
        };
        let failed = Sample { value: None, ok: false, error: "boom".into(), ..s.clone() };
        store.insert_samples("c1", &[s.clone(), failed.clone()]).unwrap();
        store
            .upsert_runtime(
                "c1",
                &RuntimeRow {
                    runtime: "x".into(),
                    variant: "y".into(),
                    measured: false,
                    version: String::new(),
                    path: String::new(),
                    reason: "not found".into(),
                    notes: serde_json::json!({}),
                },
            )
            .unwrap();
        drop(store);

        let store = Store::open_existing(dir.path()).unwrap();
        let back = store.campaign().unwrap().unwrap();
        assert_eq!((back.id.as_str(), back.seed, back.config["reps"].as_i64()), ("c1", u64::MAX, Some(3)));
        assert_eq!(store.samples("c1").unwrap(), vec![s, failed]);
        assert_eq!(store.runtimes("c1").unwrap()[0].reason, "not found");
    }

    #[test]
    fn detail_text_of_ok_rows_moves_out_of_error_in_older_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RESULTS_FILE);
        let mut store = Store::open(&path).unwrap();
        let ok = Sample {
            runtime: "native".into(),
            variant: "v".into(),
            workload: "hello".into(),
            metric: "density".into(),
            phase: String::new(),
            firewall: "off".into(),
            edge: "none".into(),
            repetition: 1,
            seq: 0,
            value: Some(6.0),
            unit: "instances".into(),
            ts_ns: 1,
            ok: true,
            error: String::new(),
            detail: String::new(),
        };
        let failed = Sample { value: None, ok: false, error: "boom".into(), ..ok.clone() };
        store.insert_samples("c1", &[ok.clone(), failed.clone()]).unwrap();
        // As a file from before `detail` stored them: the ok row's text in `error`.
        store
            .conn
            .execute_batch(
                "ALTER TABLE samples DROP COLUMN detail; UPDATE samples SET error = 'instance bound' WHERE ok = 1",
            )
            .unwrap();
        drop(store);
        let moved = Sample { detail: "instance bound".into(), ..ok };
        assert_eq!(
            Store::open_read_only(dir.path()).unwrap().samples("c1").unwrap(),
            vec![moved.clone(), failed.clone()]
        );
        assert_eq!(Store::open(&path).unwrap().samples("c1").unwrap(), vec![moved, failed], "migrated in the file");
    }

    #[test]
    fn a_directory_without_results_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = Store::open_existing(dir.path()).err().unwrap().to_string();
        assert!(err.contains("is it a campaign directory"), "{err}");
    }
}
