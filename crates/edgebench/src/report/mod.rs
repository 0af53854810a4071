//! Analysis and report, apart from measuring: everything here reads only the
//! campaign's SQLite file, so a report can be made again at any time.

mod checks;
pub mod compare;
mod csv;
mod findings;
mod format;
mod html;
mod markdown;
mod methods;
mod plots;
pub mod significance;
pub mod stats;
mod summary;

pub use summary::{summarize, Cell};

use crate::store::{CampaignRow, RuntimeRow, Sample, Store};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

pub const SUMMARY_CSV: &str = "summary.csv";
pub const REPORT_MD: &str = "report.md";
pub const REPORT_HTML: &str = "report.html";

/// Everything a report is made from, read from a campaign directory.
pub struct Loaded {
    pub campaign: CampaignRow,
    pub runtimes: Vec<RuntimeRow>,
    pub samples: Vec<Sample>,
    pub cells: Vec<Cell>,
}

pub fn load(dir: &Path) -> Result<Loaded> {
    let store = Store::open_existing(dir)?;
    let campaign = store.campaign()?.with_context(|| {
        format!(
            "{} holds no campaign: its results.sqlite is empty (was `edgebench run` stopped before it began?)",
            dir.display()
        )
    })?;
    let samples = store.samples(&campaign.id)?;
    let runtimes = store.runtimes(&campaign.id)?;
    let cells = summarize(&samples);
    Ok(Loaded { campaign, runtimes, samples, cells })
}

/// Writes `summary.csv`, `report.md` and `report.html` into the campaign
/// directory and returns the HTML report's path.
pub fn write(dir: &Path) -> Result<PathBuf> {
    let l = load(dir)?;
    std::fs::write(dir.join(SUMMARY_CSV), csv::render(&l.cells))?;
    let summary = findings::summarize(&l.campaign, &l.runtimes, &l.cells, &l.samples);
    let comparisons = l.cells.iter().filter(|c| c.vs_baseline.is_some()).count();
    let methods = methods::items(&l.campaign, comparisons);
    let md = markdown::render(&markdown::Inputs {
        campaign: &l.campaign,
        runtimes: &l.runtimes,
        cells: &l.cells,
        samples: &l.samples,
        summary: &summary,
        methods: &methods,
    });
    std::fs::write(dir.join(REPORT_MD), md)?;
    let page = html::render(&html::Page {
        campaign: &l.campaign,
        runtimes: &l.runtimes,
        cells: &l.cells,
        samples: &l.samples,
        summary: &summary,
        methods: &methods,
    });
    let path = dir.join(REPORT_HTML);
    std::fs::write(&path, page)?;
    Ok(path)
}

/// The key figures, as printed at the end of `edgebench run`.
pub fn headline(dir: &Path) -> Result<String> {
    let l = load(dir)?;
    let summary = findings::summarize(&l.campaign, &l.runtimes, &l.cells, &l.samples);
    Ok(format!("{}\n{}", markdown::headline_table(&l.cells), markdown::summary_section(&summary)))
}
