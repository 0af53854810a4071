//! Campaign files: a study's design in TOML, under version control.
//!
//! Every key is a `run` flag in snake_case (`--warm-starts` → `warm_starts`),
//! lists are TOML arrays, and `warmup = false` is `--no-warmup`; two keys have
//! no flag: `search_steps` (open-loop steps of the rate search) and
//! `scaling_reps`. Flags given on the command line override the file. The
//! campaign as it ran (file, flags and defaults resolved, the seed drawn) is
//! written to `campaign.toml` in its directory: `edgebench run --campaign
//! DIR/campaign.toml` runs it again.

use super::options::{LoadOptions, Metric, Options, ScalingOptions};
use crate::workload::UserWorkload;
use crate::Workload;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The name of the resolved campaign in a campaign directory.
pub const CAMPAIGN_FILE: &str = "campaign.toml";

/// Every setting of a campaign, each optional: a file gives some, the
/// command line others, defaults the rest.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `runtime` or `runtime:variant` (e.g. `docker:host`); absent: every runtime.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtimes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workloads: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reps: Option<u32>,
    /// `5%`, `0.05` or `off` (exactly `reps` trials).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_reps: Option<u32>,
    /// `10m`, `600s`, `1h` or `off`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warm_starts: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warmup: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_duration_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search_steps: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slo_p99_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scaling_reps: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scaling_max: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub density_max: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenants_max: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_budget_mib: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firewall: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edge_profile: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settle_max_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    /// The user's workloads: `[workload.NAME]` tables (README: "Your own workload").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<BTreeMap<String, UserWorkload>>,
}

/// The line (1-based) of what a workload error names (`workload.NAME.a.b: …`,
/// `[workload.NAME]: …`): the table, then each part of the key in it.
fn line_of(text: &str, name: &str, error: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().map(str::trim_start).collect();
    let table = format!("workload.{name}");
    let opens = |l: &str, table: &str| {
        l.starts_with('[')
            && l.trim_start_matches('[').strip_prefix(table).is_some_and(|r| r.starts_with(']') || r.starts_with('.'))
    };
    let mut at = lines.iter().position(|l| opens(l, &table))?;
    let Some(path) = error.strip_prefix(&format!("{table}.")) else { return Some(at + 1) };
    let path = path.split(':').next().unwrap_or("");
    let mut prefix = table;
    for part in path.split('.') {
        let (key, nth) = match part.split_once('[') {
            Some((k, i)) => (k, i.trim_end_matches(']').parse::<usize>().unwrap_or(0)),
            None => (part, 0),
        };
        prefix = format!("{prefix}.{key}");
        let header = |l: &&str| opens(l, &prefix);
        let assignment = |l: &&str| l.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with('='));
        let found = lines.iter().enumerate().skip(at).filter(|(_, l)| header(l)).nth(nth).map(|(i, _)| i);
        match found.or_else(|| lines.iter().enumerate().skip(at).find(|(_, l)| assignment(l)).map(|(i, _)| i)) {
            Some(i) => at = i,
            None => break,
        }
    }
    Some(at + 1)
}

impl Settings {
    /// Reads a campaign file: a TOML syntax error, an unknown key or a value
    /// of the wrong type is named with the file, line and key.
    pub fn read(path: &Path) -> Result<Settings> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading the campaign file {}", path.display()))?;
        let mut settings: Settings = toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "campaign file {}: {}\n(keys are `run` flags in snake_case, and `[workload.NAME]` tables: see \
                 `edgebench run --help` and the README's \"Campaign files\")",
                path.display(),
                e.to_string().trim_end()
            )
        })?;
        // Artifact paths are relative to the file; they are checked now, before anything runs.
        let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if let Some(map) = &mut settings.workload {
            for (name, w) in map.iter_mut() {
                *w = w.clone().validated(name, base).map_err(|e| {
                    let line = line_of(&text, name, &e.to_string()).map_or(String::new(), |n| format!(", line {n}"));
                    e.context(format!("campaign file {}{line}", path.display()))
                })?;
            }
        }
        Ok(settings)
    }

    /// The keys this sets.
    pub fn keys(&self) -> Vec<String> {
        self.table().keys().cloned().collect()
    }

    fn table(&self) -> toml::Table {
        toml::Table::try_from(self).expect("settings serialise")
    }

    /// `self` with every key `over` sets replaced by `over`'s.
    pub fn overridden_by(&self, over: &Settings) -> Settings {
        let mut merged = self.table();
        merged.extend(over.table());
        merged.try_into().expect("a merge of settings is settings")
    }

    /// The settings of a campaign as it runs: every key set (`out` left out,
    /// so that running the file again makes a new campaign directory).
    pub fn of(o: &Options) -> Settings {
        Settings {
            runtimes: o.runtimes.clone(),
            workloads: Some(o.workloads.iter().map(|w| w.name().to_string()).collect()),
            metrics: Some(o.metrics.iter().map(|m| m.name().to_string()).collect()),
            reps: Some(o.reps),
            precision: Some(o.precision.map_or("off".into(), |p| format!("{}%", (p * 1e6).round() / 1e4))),
            max_reps: Some(o.max_reps),
            budget: Some(o.budget_s.map_or("off".into(), |s| format!("{s}s"))),
            requests: Some(o.requests),
            warm_starts: Some(o.warm_starts),
            seed: Some(o.seed),
            out: None,
            warmup: Some(o.warmup),
            connections: Some(o.load.connections),
            load_duration_ms: Some(o.load.duration_ms),
            search_steps: Some(o.load.search_steps),
            slo_p99_ms: Some(o.load.slo_p99_ms),
            scaling_reps: Some(o.scaling.reps),
            scaling_max: Some(o.scaling.max_concurrent),
            density_max: Some(o.scaling.max_instances),
            tenants_max: Some(o.scaling.max_tenants),
            memory_budget_mib: Some(o.scaling.memory_budget_mib),
            firewall: Some(o.firewall.clone()),
            edge_profile: Some(o.edge.clone()),
            cpus: Some(o.cpus.clone()),
            settle_max_ms: Some(o.settle_max_ms),
            ready_timeout_ms: o.ready_timeout_ms,
            baseline: Some(o.baseline.clone()),
            workload: (!o.user_workloads.is_empty()).then(|| o.user_workloads.clone()),
        }
    }

    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).expect("settings serialise");
        format!("# The campaign as it ran: `edgebench run --campaign THIS_FILE` runs it again.\n{body}")
    }

    /// Checks every value and fills what is missing with the defaults.
    /// `named(key)` is how an error names a key (a flag or the file's key);
    /// `known_runtimes` are the backends' names with their variants.
    pub fn resolve(
        &self,
        named: &dyn Fn(&str) -> String,
        known_runtimes: &[(&str, &[&str])],
        draw_seed: impl FnOnce() -> u64,
    ) -> Result<Options> {
        let d = Options::default();
        let mut o = Options::default();
        if let Some(list) = &self.runtimes {
            o.runtimes = Some(runtime_selection(list, &named("runtimes"), known_runtimes)?);
        }
        // User workloads are known by name from here on (to `workloads`, and to a resume).
        for (name, w) in self.workload.iter().flatten() {
            let mut w = w.clone();
            w.name = name.clone();
            Workload::register(w.clone())?;
            o.user_workloads.insert(name.clone(), w);
        }
        let user_names: Vec<&str> = o.user_workloads.keys().map(String::as_str).collect();
        if let Some(list) = &self.workloads {
            let known =
                ["hello", "cpu", "echo", "kv"].iter().chain(&user_names).copied().collect::<Vec<_>>().join(", ");
            let names = distinct(list, &named("workloads"), &known)?;
            o.workloads = super::parse_workloads(&names.join(","))?;
        } else {
            // Without a list: the built-in workloads and every one the file declares.
            o.workloads.extend(user_names.iter().filter_map(|n| Workload::from_name(n)));
        }
        if let Some(list) = &self.metrics {
            let names = distinct(
                list,
                &named("metrics"),
                "cold_start, warm_start, latency, memory, cpu, throughput, scaling, all",
            )?;
            o.metrics = Metric::parse_list(&names.join(","))?;
        }
        let at_least_1 = |key: &str, v: u64| -> Result<()> {
            if v == 0 {
                bail!("{} must be at least 1", named(key));
            }
            Ok(())
        };
        o.reps = self.reps.unwrap_or(d.reps);
        at_least_1("reps", o.reps.into())?;
        // On by default; `reps` alone asks for exactly that many trials.
        o.precision = match (&self.precision, self.reps) {
            (Some(p), _) => parse_precision(p).map_err(|e| anyhow::anyhow!("{} {p:?}: {e}", named("precision")))?,
            (None, None) => Some(super::options::DEFAULT_PRECISION),
            (None, Some(_)) => None,
        };
        o.max_reps = self.max_reps.unwrap_or(d.max_reps);
        if o.precision.is_some() && o.max_reps < o.reps {
            bail!(
                "{} {} is below {} {}: adaptive repetitions add trials after the planned ones; raise it, or give precision = \"off\"",
                named("max_reps"),
                o.max_reps,
                named("reps"),
                o.reps
            );
        }
        if let Some(b) = &self.budget {
            o.budget_s = parse_budget(b).map_err(|e| anyhow::anyhow!("{} {b:?}: {e}", named("budget")))?;
        }
        o.requests = self.requests.unwrap_or(d.requests);
        if o.requests == 0 {
            bail!("{} must be at least 1 (it is the number of measured requests per latency run)", named("requests"));
        }
        o.warm_starts = self.warm_starts.unwrap_or(d.warm_starts);
        o.seed = self.seed.unwrap_or_else(draw_seed);
        o.out = self.out.clone();
        o.warmup = self.warmup.unwrap_or(d.warmup);
        let load = LoadOptions::default();
        o.load.connections = self.connections.unwrap_or(load.connections);
        at_least_1("connections", o.load.connections as u64)?;
        o.load.duration_ms = self.load_duration_ms.unwrap_or(load.duration_ms);
        at_least_1("load_duration_ms", o.load.duration_ms)?;
        o.load.search_steps = self.search_steps.unwrap_or(load.search_steps);
        at_least_1("search_steps", o.load.search_steps as u64)?;
        let slo = self.slo_p99_ms.unwrap_or(load.slo_p99_ms);
        // NaN fails every comparison: test for what is valid, not for what is not.
        if !(slo.is_finite() && slo > 0.0) {
            bail!("{} {slo}: give a positive number of milliseconds, such as 10", named("slo_p99_ms"));
        }
        o.load.slo_p99_ms = slo;
        let scaling = ScalingOptions::default();
        o.scaling = ScalingOptions {
            reps: self.scaling_reps.unwrap_or(scaling.reps),
            max_concurrent: self.scaling_max.unwrap_or(scaling.max_concurrent),
            max_instances: self.density_max.unwrap_or(scaling.max_instances),
            max_tenants: self.tenants_max.unwrap_or(scaling.max_tenants),
            memory_budget_mib: self.memory_budget_mib.unwrap_or(scaling.memory_budget_mib),
            slo_p99_ms: slo,
        };
        at_least_1("scaling_reps", o.scaling.reps.into())?;
        at_least_1("scaling_max", o.scaling.max_concurrent as u64)?;
        at_least_1("density_max", o.scaling.max_instances as u64)?;
        at_least_1("tenants_max", o.scaling.max_tenants as u64)?;
        at_least_1("memory_budget_mib", o.scaling.memory_budget_mib)?;
        if let Some(list) = &self.firewall {
            let names = distinct(list, &named("firewall"), "off, host, rules-N, set-N")?;
            o.firewall = crate::network::Profile::parse_list(&names.join(","))
                .map_err(|e| anyhow::anyhow!("{}: {e:#}", named("firewall")))?;
        }
        if let Some(list) = &self.edge_profile {
            let names = distinct(list, &named("edge_profile"), "none, cpu-F, mem-Nm")?;
            o.edge = crate::edge::EdgeProfile::parse_list(&names.join(","))
                .map_err(|e| anyhow::anyhow!("{}: {e:#}", named("edge_profile")))?;
        }
        o.cpus = self.cpus.clone().unwrap_or(d.cpus);
        crate::cpus::CpuPlan::resolve(&o.cpus, &crate::cpus::host_cpus())
            .map_err(|e| anyhow::anyhow!("{}: {e:#}", named("cpus")))?;
        o.settle_max_ms = self.settle_max_ms.unwrap_or(d.settle_max_ms);
        if self.ready_timeout_ms == Some(0) {
            bail!("{} must be positive (omit it for each runtime's own limit)", named("ready_timeout_ms"));
        }
        o.ready_timeout_ms = self.ready_timeout_ms;
        if let Some(base) = &self.baseline {
            if !known_runtimes.iter().any(|(r, _)| r == base) {
                let names: Vec<&str> = known_runtimes.iter().map(|(r, _)| *r).collect();
                bail!("{} {base:?} is not a runtime: use one of {}", named("baseline"), names.join(", "));
            }
            if let Some(selected) = &o.runtimes {
                if !selected.iter().any(|s| s.split(':').next() == Some(base.as_str())) {
                    bail!(
                        "{} {base:?} is not among the runtimes measured ({}): add it, or ratios would have nothing \
                         to be taken against",
                        named("baseline"),
                        selected.join(", ")
                    );
                }
            }
            o.baseline = base.clone();
        }
        Ok(o)
    }
}

/// `5%`, `0.05` or `off`.
fn parse_precision(text: &str) -> std::result::Result<Option<f64>, String> {
    let t = text.trim();
    if t == "off" {
        return Ok(None);
    }
    let value = match t.strip_suffix('%') {
        Some(pct) => pct.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| "give a percentage such as 5% (or 0.05), or off".to_string())?;
    if !(value > 0.0 && value < 1.0) {
        return Err("give a percentage between 0% and 100%, such as 5%".into());
    }
    Ok(Some(value))
}

/// `10m`, `600s`, `1h`, a number of seconds, or `off`.
fn parse_budget(text: &str) -> std::result::Result<Option<u64>, String> {
    let t = text.trim();
    if t == "off" {
        return Ok(None);
    }
    let (number, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, "s"),
    };
    let scale = match unit.trim() {
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        _ => return Err("give a time such as 10m, 600s or 1h, or off".into()),
    };
    match number.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Some(n * scale)),
        _ => Err("give a positive time such as 10m, 600s or 1h, or off".into()),
    }
}

/// The names of a list setting: none empty, none twice.
pub fn distinct(list: &[String], option: &str, valid: &str) -> Result<Vec<String>> {
    let names: Vec<String> = list.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    if names.is_empty() {
        bail!("{option} names nothing: give one or more of {valid}, separated by commas");
    }
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            bail!("{option} names {name:?} twice: give each once");
        }
    }
    Ok(names)
}

/// `runtime` or `runtime:variant` entries, each checked against the backends.
fn runtime_selection(list: &[String], option: &str, known: &[(&str, &[&str])]) -> Result<Vec<String>> {
    let names: Vec<&str> = known.iter().map(|(n, _)| *n).collect();
    let entries = distinct(list, option, &names.join(", "))?;
    for entry in &entries {
        let (runtime, variant) = match entry.split_once(':') {
            Some((r, v)) => (r, Some(v)),
            None => (entry.as_str(), None),
        };
        let Some((_, variants)) = known.iter().find(|(n, _)| *n == runtime) else {
            bail!("unknown runtime {runtime:?} in {option}: known runtimes are {}", names.join(", "));
        };
        if let Some(v) = variant {
            if !variants.contains(&v) {
                bail!("{option}: {runtime} has no variant {v:?}: its variants are {}", variants.join(", "));
            }
            if entries.iter().any(|e| e == runtime) {
                bail!("{option} names both {runtime} (every variant) and {entry}: give one");
            }
        }
    }
    Ok(entries)
}

/// Whether a campaign's runtime selection includes `runtime`'s `variant`.
pub fn selects(selection: &Option<Vec<String>>, runtime: &str, variant: &str) -> bool {
    let Some(entries) = selection else { return true };
    entries.iter().any(|e| match e.split_once(':') {
        Some((r, v)) => r == runtime && v == variant,
        None => e == runtime,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn workload_errors_name_their_line() {
        let text = "reps = 2\n[workload.mine2]\n[workload.mine]\ncomponent = \"x.wasm\"\n[workload.mine.probe]\npath = \"/\"\n\
                    expect_body_regex = \"(\"\n[[workload.mine.conformance]]\npath = \"/a\"\n[[workload.mine.conformance]]\n\
                    path = \"nope\"\n";
        assert_eq!(super::line_of(text, "mine", "workload.mine.probe.expect_body_regex: bad"), Some(7));
        assert_eq!(super::line_of(text, "mine", "workload.mine.component: cannot read"), Some(4));
        assert_eq!(super::line_of(text, "mine", "workload.mine.conformance[1].path: bad"), Some(11));
        assert_eq!(super::line_of(text, "mine", "[workload.mine]: no artifact"), Some(3));
        assert_eq!(super::line_of(text, "other", "[workload.other]: no artifact"), None);
    }

    use super::*;

    const KNOWN: &[(&str, &[&str])] = &[("native", &["static-musl"]), ("docker", &["bridge", "host"])];

    fn resolve(s: &Settings) -> Result<Options> {
        s.resolve(&|k| format!("--{k}"), KNOWN, || 7)
    }

    #[test]
    fn the_default_settings_are_the_default_campaign() {
        let o = resolve(&Settings::default()).unwrap();
        let d = Options::default();
        let precise = Some(super::super::options::DEFAULT_PRECISION);
        assert_eq!(Settings::of(&o), Settings::of(&Options { seed: 7, precision: precise, ..d }));
    }

    #[test]
    fn the_readmes_default_campaign_file_is_the_default_campaign() {
        let file: Settings = toml::from_str(include_str!("../../../../campaigns/default.toml")).unwrap();
        let o = resolve(&file).unwrap();
        let precise = Some(super::super::options::DEFAULT_PRECISION);
        assert_eq!(Settings::of(&o), Settings::of(&Options { seed: 7, precision: precise, ..Options::default() }));
    }

    #[test]
    fn precision_is_on_by_default_and_reps_alone_asks_for_exactly_that_many() {
        let on = resolve(&Settings::default()).unwrap();
        assert_eq!((on.precision, on.reps, on.max_reps, on.budget_s), (Some(0.05), 10, 40, Some(600)));
        let exact = resolve(&Settings { reps: Some(3), ..Settings::default() }).unwrap();
        assert_eq!(exact.precision, None);
        let both =
            Settings { reps: Some(6), precision: Some("2%".into()), budget: Some("1h".into()), ..Settings::default() };
        let o = resolve(&both).unwrap();
        assert_eq!((o.precision, o.reps, o.budget_s), (Some(0.02), 6, Some(3600)));
        // What ran is written back as it ran, and reads back the same.
        assert_eq!(Settings::of(&resolve(&Settings::of(&o)).unwrap()), Settings::of(&o));
        for (key, bad) in [("precision", "five"), ("precision", "150%"), ("budget", "10 parsecs"), ("budget", "0m")] {
            let s = match key {
                "precision" => Settings { precision: Some(bad.into()), ..Settings::default() },
                _ => Settings { budget: Some(bad.into()), ..Settings::default() },
            };
            let e = resolve(&s).unwrap_err().to_string();
            assert!(e.contains(&format!("--{key}")) && e.contains(bad), "{e}");
        }
        let e = resolve(&Settings { reps: Some(50), precision: Some("5%".into()), ..Settings::default() }).unwrap_err();
        assert!(e.to_string().contains("--max_reps 40 is below --reps 50"), "{e}");
    }

    #[test]
    fn a_resolved_campaign_reads_back_the_same() {
        let file = r#"
            runtimes = ["native", "docker:host"]
            workloads = ["hello", "kv"]
            metrics = ["cold_start", "latency"]
            reps = 3
            firewall = ["off", "host"]
            cpus = "shared"
        "#;
        let settings: Settings = toml::from_str(file).unwrap();
        let o = resolve(&settings).unwrap();
        assert!(selects(&o.runtimes, "docker", "host") && !selects(&o.runtimes, "docker", "bridge"));
        let written = Settings::of(&o).to_toml();
        let back: Settings = toml::from_str(&written).unwrap();
        assert_eq!(Settings::of(&resolve(&back).unwrap()), Settings::of(&o));
    }

    #[test]
    fn bad_files_name_the_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("study.toml");
        for (text, says) in [
            ("reps = 3\nrepz = 4\n", vec!["study.toml", "line 2", "repz", "reps"]),
            ("reps = \"ten\"\n", vec!["line 1", "reps", "expected u32"]),
            ("workloads = hello\n", vec!["line 1"]),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = format!("{:#}", Settings::read(&path).unwrap_err());
            for s in says {
                assert!(err.contains(s), "{s:?} not in {err}");
            }
        }
        let s = Settings { runtimes: Some(vec!["docker:hots".into()]), ..Settings::default() };
        let err = resolve(&s).unwrap_err().to_string();
        assert!(err.contains("no variant \"hots\"") && err.contains("bridge, host"), "{err}");
        let s = Settings { reps: Some(0), ..Settings::default() };
        let err = s.resolve(&|k| format!("`{k}` in study.toml"), KNOWN, || 1).unwrap_err().to_string();
        assert_eq!(err, "`reps` in study.toml must be at least 1");
    }
}
