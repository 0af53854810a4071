//! `report.json`: the analysis model ([`super::model::Model`]), as every
//! other format renders it: the same cells (estimates, intervals, ratios,
//! tests, per-trial values), findings, caveats, methods, data quality,
//! throughput and search curves, scaling, density and firewall deltas;
//! other parts refer to cells by their index in `cells`. Documented in the README
//! ("Results: the contract for your scripts"); `version` grows when a field
//! changes meaning, fields are only ever added otherwise.

use super::Model;
use serde_json::Value;

pub const REPORT_JSON: &str = "report.json";
pub const FORMAT: &str = "edgebench-report";
pub const VERSION: u32 = 2;

/// The model, with the format's name and version.
pub fn render(m: &Model) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("format".into(), FORMAT.into());
    out.insert("version".into(), VERSION.into());
    if let Value::Object(model) = serde_json::to_value(m).expect("the model serializes") {
        out.extend(model);
    }
    Value::Object(out)
}
