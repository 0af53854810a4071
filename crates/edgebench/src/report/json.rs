//! `report.json`: the analysis model, as every other format renders it —
//! the same cells (estimates, intervals, ratios, tests, per-trial values),
//! findings, caveats, methods and firewall deltas. Documented in the README
//! ("Results: the contract for your scripts"); `version` grows when a field
//! changes meaning, fields are only ever added otherwise.

use super::findings::Summary;
use super::firewall::Delta;
use super::Loaded;
use serde_json::{json, Value};

pub const REPORT_JSON: &str = "report.json";
pub const FORMAT: &str = "edgebench-report";
pub const VERSION: u32 = 1;

pub fn render(l: &Loaded, summary: &Summary, methods: &[String], deltas: &[Delta]) -> Value {
    json!({
        "format": FORMAT,
        "version": VERSION,
        "campaign": l.campaign,
        "runtimes": l.runtimes,
        "cells": l.cells,
        "findings": summary.findings,
        "caveats": summary.caveats,
        "methods": methods,
        "firewall_deltas": deltas,
    })
}
