//! Load runs' whole latency distributions: one HDR histogram per run and
//! kind, next to the summary samples, so that any percentile can be
//! recomputed and runs merged across trials. Each is stored as
//! HdrHistogram's V2 compressed encoding in base64 (what HdrHistogram's
//! log tools and every HdrHistogram library read), values in ns.

use super::{Sample, Store};
use anyhow::{Context as _, Result};
use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use rusqlite::params;

pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS histograms (
    campaign    TEXT NOT NULL,
    runtime     TEXT NOT NULL,
    variant     TEXT NOT NULL,
    workload    TEXT NOT NULL,
    metric      TEXT NOT NULL,      -- open_loop_latency | open_loop_service | open_loop_send_error | throughput_latency
    phase       TEXT NOT NULL,      -- the load run, as in samples (closed-cC, search)
    firewall    TEXT NOT NULL,
    edge        TEXT NOT NULL DEFAULT 'none',
    repetition  INTEGER NOT NULL,
    seq         INTEGER NOT NULL,   -- as the run's samples
    unit        TEXT NOT NULL,      -- ns
    count       INTEGER NOT NULL,   -- values recorded
    encoding    TEXT NOT NULL,      -- hdr-v2-deflate-base64
    data        TEXT NOT NULL,
    ts_ns       INTEGER NOT NULL,
    ok          INTEGER NOT NULL DEFAULT 1  -- 0: its trial was interrupted and ran again
);
CREATE INDEX IF NOT EXISTS histograms_cell ON histograms (campaign, runtime, variant, workload, metric);
"#;

pub const ENCODING: &str = "hdr-v2-deflate-base64";

/// A histogram and the sample key it belongs to (its metric, phase, seq).
#[derive(Clone, Debug)]
pub struct StoredHistogram {
    pub key: Sample,
    pub histogram: Histogram<u64>,
}

pub fn encode(h: &Histogram<u64>) -> Result<String> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new().serialize(h, &mut bytes).map_err(|e| anyhow::anyhow!("encoding a histogram: {e:?}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

pub fn decode(text: &str) -> Result<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text.trim()).context("histogram: not base64")?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| anyhow::anyhow!("histogram: not an HDR V2 encoding: {e:?}"))
}

impl Store {
    pub fn insert_histograms(&mut self, campaign: &str, rows: &[StoredHistogram]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO histograms (campaign, runtime, variant, workload, metric, phase, firewall, repetition, seq, unit, count, encoding, data, ts_ns, edge)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'ns', ?10, ?11, ?12, ?13, ?14)",
            )?;
            for r in rows {
                let k = &r.key;
                stmt.execute(params![
                    campaign,
                    k.runtime,
                    k.variant,
                    k.workload,
                    k.metric,
                    k.phase,
                    k.firewall,
                    k.repetition,
                    k.seq,
                    r.histogram.len() as i64,
                    ENCODING,
                    encode(&r.histogram)?,
                    k.ts_ns,
                    k.edge
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every valid stored histogram of `campaign` with `metric`, decoded, with its key.
    pub fn histograms(&self, campaign: &str, metric: &str) -> Result<Vec<StoredHistogram>> {
        // A file from before edge profiles, opened read-only (so not migrated).
        let edge = if self.conn.prepare("SELECT edge FROM histograms LIMIT 0").is_ok() { "edge" } else { "'none'" };
        let mut stmt = self.conn.prepare(&format!(
            "SELECT runtime, variant, workload, phase, firewall, repetition, seq, ts_ns, data, {edge} FROM histograms
             WHERE campaign = ?1 AND metric = ?2 AND ok = 1 ORDER BY rowid"
        ))?;
        let rows = stmt.query_map(params![campaign, metric], |r| {
            Ok((
                Sample {
                    runtime: r.get(0)?,
                    variant: r.get(1)?,
                    workload: r.get(2)?,
                    metric: metric.to_string(),
                    phase: r.get(3)?,
                    firewall: r.get(4)?,
                    edge: r.get(9)?,
                    repetition: r.get(5)?,
                    seq: r.get(6)?,
                    value: None,
                    unit: "ns".into(),
                    ts_ns: r.get(7)?,
                    ok: true,
                    error: String::new(),
                    detail: String::new(),
                },
                r.get::<_, String>(8)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (key, data) = row?;
            out.push(StoredHistogram { histogram: decode(&data)?, key });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_round_trips_through_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("r.sqlite")).unwrap();
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for v in [1_000u64, 2_000, 50_000_000] {
            h.record(v).unwrap();
        }
        let key = Sample {
            runtime: "native".into(),
            variant: "v".into(),
            workload: "hello".into(),
            metric: "open_loop_latency".into(),
            phase: "rate=100".into(),
            firewall: "off".into(),
            edge: "none".into(),
            repetition: 2,
            seq: 1,
            value: None,
            unit: "ns".into(),
            ts_ns: 7,
            ok: true,
            error: String::new(),
            detail: String::new(),
        };
        store.insert_histograms("c1", &[StoredHistogram { key, histogram: h.clone() }]).unwrap();
        let back = store.histograms("c1", "open_loop_latency").unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].histogram, h);
        assert_eq!((back[0].key.phase.as_str(), back[0].key.repetition), ("rate=100", 2));
        assert!(decode("not base64!").is_err());
    }
}
