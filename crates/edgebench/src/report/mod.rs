//! Analysis and report, apart from measuring: everything here reads only the
//! campaign's SQLite file, so a report can be made again at any time.

mod checks;
pub mod compare;
mod csv;
mod findings;
pub mod firewall;
pub mod format;
mod html;
pub mod json;
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
    let store = Store::open_read_only(dir)?;
    let campaign = store.campaign()?.with_context(|| {
        format!(
            "{} holds no campaign: its results.sqlite is empty (was `edgebench run` stopped before it began?)",
            dir.display()
        )
    })?;
    let samples = store.samples(&campaign.id)?;
    let runtimes = store.runtimes(&campaign.id)?;
    let mut cells = summary::summarize_on_paths(&samples, &summary::paths(&campaign));
    let (kinds, scopes) = (summary::start_kinds(&campaign), summary::test_bed_field(&campaign, "cpu_scope"));
    for c in &mut cells {
        let key = (c.runtime.clone(), c.variant.clone());
        if let Some(kind) = kinds.get(&key) {
            c.start_kind = kind.clone();
        }
        c.cpu_scope = scopes.get(&key).cloned().unwrap_or_default();
    }
    Ok(Loaded { campaign, runtimes, samples, cells })
}

/// Writes `summary.csv`, `report.md` and `report.html` into the campaign
/// directory and returns the HTML report's path.
pub fn write(dir: &Path) -> Result<PathBuf> {
    write_to(dir, dir)
}

/// As [`write`], into `out` (created if needed); the campaign is only read.
pub fn write_to(dir: &Path, out: &Path) -> Result<PathBuf> {
    let l = load(dir)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join(SUMMARY_CSV), csv::render(&l.cells))?;
    let summary = findings::summarize(&l.campaign, &l.runtimes, &l.cells, &l.samples);
    let comparisons = l.cells.iter().filter(|c| c.vs_baseline.is_some()).count();
    let methods = methods::items(&l.campaign, comparisons);
    let mut md = markdown::render(&markdown::Inputs {
        campaign: &l.campaign,
        runtimes: &l.runtimes,
        cells: &l.cells,
        samples: &l.samples,
        summary: &summary,
        methods: &methods,
    });
    let store = Store::open_read_only(dir)?;
    write_firewall(out, &store, &l.campaign.id, &l.cells, &l.samples, &mut md)?;
    std::fs::write(out.join(REPORT_MD), md)?;
    let deltas = firewall::deltas(&l.cells, &l.samples);
    let model = json::render(&l, &summary, &methods, &deltas);
    std::fs::write(out.join(json::REPORT_JSON), serde_json::to_string_pretty(&model)?)?;
    let page = html::render(&html::Page {
        campaign: &l.campaign,
        runtimes: &l.runtimes,
        cells: &l.cells,
        samples: &l.samples,
        summary: &summary,
        methods: &methods,
    });
    let path = out.join(REPORT_HTML);
    std::fs::write(&path, page)?;
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
    let l = load(dir)?;
    let summary = findings::summarize(&l.campaign, &l.runtimes, &l.cells, &l.samples);
    Ok(format!("{}\n{}", markdown::headline_table(&l.cells), markdown::summary_section(&summary)))
}
