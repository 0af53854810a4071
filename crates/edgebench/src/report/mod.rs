//! Analysis and report, apart from measuring: everything here reads only the
//! campaign's SQLite file, so a report can be made again at any time.

mod csv;
pub mod firewall;
mod markdown;
pub mod stats;
mod summary;

pub use summary::{summarize, Cell};

use crate::store::Store;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

pub const SUMMARY_CSV: &str = "summary.csv";
pub const REPORT_MD: &str = "report.md";

/// Writes `summary.csv` and `report.md` into the campaign directory and
/// returns the report's path.
pub fn write(dir: &Path) -> Result<PathBuf> {
    let store = Store::open_existing(dir)?;
    let campaign = store.campaign()?.with_context(|| format!("{} holds no campaign", dir.display()))?;
    let samples = store.samples(&campaign.id)?;
    let runtimes = store.runtimes(&campaign.id)?;
    let cells = summarize(&samples);
    std::fs::write(dir.join(SUMMARY_CSV), csv::render(&cells))?;
    let mut report = markdown::render(&campaign, &runtimes, &cells, &samples);
    write_firewall(dir, &store, &campaign.id, &cells, &samples, &mut report)?;
    let path = dir.join(REPORT_MD);
    std::fs::write(&path, report)?;
    Ok(path)
}

/// The firewall section (before Methods) and its data and chart files, when
/// the campaign ran firewall profiles.
fn write_firewall(
    dir: &Path,
    store: &Store,
    campaign: &str,
    cells: &[Cell],
    samples: &[crate::store::Sample],
    report: &mut String,
) -> Result<()> {
    let section = firewall::section(
        cells,
        samples,
        &store.firewall_profiles(campaign)?,
        &store.networks(campaign)?,
        &store.host_rulesets(campaign)?,
    );
    if section.is_empty() {
        return Ok(());
    }
    let at = report.find("\n## Methods\n").unwrap_or(report.len());
    report.insert_str(at, &section);
    let deltas = firewall::deltas(cells, samples);
    std::fs::write(dir.join(firewall::DELTAS_CSV), firewall::deltas_csv(&deltas))?;
    std::fs::write(dir.join(firewall::DELTAS_SVG), firewall::chart_svg(&deltas))?;
    Ok(())
}

/// The key figures, as printed at the end of `edgebench run`.
pub fn headline(dir: &Path) -> Result<String> {
    let store = Store::open_existing(dir)?;
    let campaign = store.campaign()?.context("no campaign")?;
    let cells = summarize(&store.samples(&campaign.id)?);
    Ok(markdown::headline_table(&cells))
}
