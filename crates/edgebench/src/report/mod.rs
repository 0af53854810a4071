//! Analysis and report, apart from measuring: everything here reads only the
//! campaign's SQLite file, so a report can be made again at any time.

mod checks;
pub mod compare;
mod csv;
pub mod edge;
mod findings;
pub mod firewall;
pub mod fleet;
mod fleet_html;
pub mod format;
mod html;
mod html_sections;
pub mod json;
mod markdown;
mod markdown_sections;
mod methods;
pub mod model;
mod plots;
pub mod significance;
pub mod stats;
mod summary;

pub use model::Model;
pub use summary::{summarize, Cell};

/// Whether cells of `metric` and `phase` are key cells: those the findings
/// rank, whose precision the report states and adaptive repetitions pursue.
pub fn is_key(metric: &str, phase: &str) -> bool {
    findings::NEEDS.iter().any(|n| n.metric == metric && n.phase == phase)
}

use crate::store::{Store, RESULTS_FILE};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

pub const SUMMARY_CSV: &str = "summary.csv";
pub const REPORT_MD: &str = "report.md";
pub const REPORT_HTML: &str = "report.html";

/// The analysis model of the campaign in `dir`.
pub fn load(dir: &Path) -> Result<Model> {
    let store = Store::open_read_only(dir)?;
    if store.is_fleet()? {
        anyhow::bail!(
            "{} is a merged fleet (written by `edgebench merge`), not one campaign: give one of its hosts' \
             directories, {}",
            dir.display(),
            dir.join(fleet::HOSTS_DIR).join("NAME").display()
        );
    }
    let campaign = store.campaign()?.with_context(|| {
        format!(
            "{} holds no campaign: its results.sqlite is empty (was `edgebench run` stopped before it began?)",
            dir.display()
        )
    })?;
    Ok(Model::build(model::Inputs::read(&store, campaign)?))
}

/// The analysis model of campaign `id` of the results file in `dir` (a
/// fleet's file holds several).
pub fn load_campaign(dir: &Path, id: &str) -> Result<Model> {
    let store = Store::open_read_only(dir)?;
    let campaign = store
        .campaign_by_id(id)?
        .with_context(|| format!("{} holds no campaign {id}", dir.join(RESULTS_FILE).display()))?;
    Ok(Model::build(model::Inputs::read(&store, campaign)?))
}

/// Writes `summary.csv`, `report.md`, `report.json` and `report.html` into
/// the campaign directory and returns the HTML report's path.
pub fn write(dir: &Path) -> Result<PathBuf> {
    write_to(dir, dir)
}

/// As [`write`], into `out` (created if needed); the campaign is only read.
/// A fleet (`edgebench merge`) writes its fleet report and every host's.
pub fn write_to(dir: &Path, out: &Path) -> Result<PathBuf> {
    if Store::open_read_only(dir)?.is_fleet()? {
        return fleet::write_to(dir, out);
    }
    write_model(&load(dir)?, out)
}

/// Writes the report files of one model into `out`. Every format renders the one model.
pub fn write_model(m: &Model, out: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join(SUMMARY_CSV), csv::render(&m.cells))?;
    std::fs::write(out.join(REPORT_MD), markdown::render(m))?;
    std::fs::write(out.join(json::REPORT_JSON), serde_json::to_string_pretty(&json::render(m))?)?;
    if m.firewall.measured {
        std::fs::write(out.join(firewall::DELTAS_CSV), firewall::deltas_csv(&m.firewall.deltas))?;
        std::fs::write(out.join(firewall::DELTAS_SVG), firewall::chart_svg(&m.firewall.deltas))?;
    }
    let path = out.join(REPORT_HTML);
    std::fs::write(&path, html::render(m))?;
    Ok(path)
}

/// The key figures, as printed at the end of `edgebench run`.
pub fn headline(dir: &Path) -> Result<String> {
    let m = load(dir)?;
    Ok(format!("{}\n{}", markdown::headline_table(&m.cells), markdown::summary_section(&m.summary)))
}
