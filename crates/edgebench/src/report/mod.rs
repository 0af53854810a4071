//! Analysis and report, apart from measuring: everything here reads only the
//! campaign's SQLite file, so a report can be made again at any time.

mod checks;
mod csv;
mod markdown;
pub mod significance;
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
    let report = markdown::render(&campaign, &runtimes, &cells, &samples);
    let path = dir.join(REPORT_MD);
    std::fs::write(&path, report)?;
    Ok(path)
}

/// The key figures, as printed at the end of `edgebench run`.
pub fn headline(dir: &Path) -> Result<String> {
    let store = Store::open_existing(dir)?;
    let campaign = store.campaign()?.context("no campaign")?;
    let cells = summarize(&store.samples(&campaign.id)?);
    Ok(markdown::headline_table(&cells))
}
