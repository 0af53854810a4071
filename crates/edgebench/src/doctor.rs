//! `edgebench doctor`: what can be measured here, and how to get the rest.

use crate::artifacts::Artifacts;
use crate::{environment, runtime};
use std::fmt::Write;

pub fn report(artifacts: &Artifacts) -> String {
    let mut out = String::new();
    let virt = environment::virtualization();
    let _ = writeln!(out, "virtualisation: {} (/dev/kvm: {})", virt["mode"].as_str().unwrap_or("?"), virt["dev_kvm"]);
    let missing = artifacts.missing();
    if missing.is_empty() {
        let _ = writeln!(out, "artifacts: built in {}", artifacts.target_dir.display());
    } else {
        let _ = writeln!(out, "artifacts: {} missing: run `edgebench build` (run does it too)", missing.len());
    }
    for w in environment::warnings() {
        let _ = writeln!(out, "warning: {w}");
    }
    out.push('\n');
    for r in runtime::all() {
        let d = r.detect(artifacts);
        let variants = r.variants().join(", ");
        if d.available {
            let path = d.path.map(|p| p.display().to_string()).unwrap_or_default();
            let _ = writeln!(out, "{:<20} found      {} ({path}); variants: {variants}", r.name(), d.version);
        } else {
            let _ = writeln!(out, "{:<20} not found  {}", r.name(), d.reason);
        }
    }
    out
}
