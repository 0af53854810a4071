//! A campaign: every selected runtime × variant × workload × repetition, run
//! as one trial each, in seeded rounds (plan.rs), every sample stored as soon as
//! it is measured.

mod file;
mod firewall;
mod options;
mod plan;
pub mod precision;
mod scaling;
mod trial;

pub use file::{selects, Settings, CAMPAIGN_FILE};
pub use firewall::{TargetFirewall, TargetStart};
pub use options::{parse_workloads, LoadOptions, Metric, Options};
pub use plan::{plan, plan_with_conditions, plan_with_firewall, TrialKey};
pub use trial::{free_loopback_addr, launch_until_ready, launch_until_ready_in, Failure};

use crate::artifacts::Artifacts;
use crate::network::{self, Network};
use crate::runtime::{self, Context, Detection, Runtime};
use crate::store::NOT_MEASURED;
use crate::store::{now_ns, CampaignRow, RuntimeRow, Store, TrialIdentity, RESULTS_FILE};
use crate::{environment, Workload};
use anyhow::{bail, Context as _, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How a campaign ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    Interrupted,
}

/// Set by Ctrl-C: trials stop at the next check and clean up.
pub fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    // A second handler cannot be installed; tests run campaigns in one process.
    let _ = ctrlc::set_handler(move || {
        if f.swap(true, Ordering::SeqCst) {
            eprintln!("edgebench: interrupted twice, exiting now (instances die with edgebench)");
            network::emergency_cleanup();
            std::process::exit(130);
        }
        eprintln!("edgebench: interrupted: stopping after cleaning up; resume with `edgebench run --resume DIR`");
    });
    flag
}

/// A trial could not write its samples (see [`trial::Failure::Store`]).
#[derive(Debug)]
struct StoreFailed(String);

impl std::fmt::Display for StoreFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "storing samples: {}", self.0)
    }
}

impl std::error::Error for StoreFailed {}

pub struct Campaign {
    pub id: String,
    pub dir: PathBuf,
    options: Options,
    store: Store,
    artifacts: Artifacts,
    /// The backends to choose from (default: `runtime::all()`).
    backends: Option<Vec<Box<dyn Runtime>>>,
    /// The firewall profiles applied in this run.
    profiles: firewall::Profiles,
    /// With a remote target: its environment and the link's figures.
    target: Option<(serde_json::Value, serde_json::Value)>,
}

impl Campaign {
    /// Creates a new campaign directory (`--out`, or `results/<id>`).
    pub fn create(options: Options, artifacts: Artifacts) -> Result<Campaign> {
        // Time, seed, and 16 random bits: one campaign file started on every
        // host of a fleet in the same second (same seed) still gives each its
        // own id, which merging them needs.
        let id = format!(
            "{}-{:04x}-{:04x}",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
            options.seed & 0xffff,
            rand::random::<u16>()
        );
        let dir = options.out.clone().unwrap_or_else(|| PathBuf::from("results").join(&id));
        Campaign::check_out(&dir)?;
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(RESULTS_FILE);
        let store = Store::open(&path).with_context(|| format!("creating {}", path.display()))?;
        // The campaign as it will run, in the format of a campaign file: `--campaign` runs it again.
        let settings = dir.join(CAMPAIGN_FILE);
        std::fs::write(&settings, Settings::of(&options).to_toml())
            .with_context(|| format!("writing {}", settings.display()))?;
        Ok(Campaign { id, dir, options, store, artifacts, backends: None, profiles: Default::default(), target: None })
    }

    /// Whether a new campaign may be written in `dir` (refused: a file, a
    /// campaign, a directory holding files of the user's).
    pub fn check_out(dir: &Path) -> Result<()> {
        if dir.exists() && !dir.is_dir() {
            bail!("--out {}: not a directory: give a new or empty directory", dir.display());
        }
        // A campaign stopped before it began (killed between creating its
        // file and storing its first row) left only files of ours: start again.
        let never_began = Store::open_read_only(dir).is_ok_and(|s| s.campaign().is_ok_and(|c| c.is_none()));
        if dir.join(RESULTS_FILE).exists() && !never_began {
            bail!("{} already holds a campaign: choose another --out, or continue it with --resume", dir.display());
        }
        let ours = |name: &std::ffi::OsStr| {
            never_began
                && [RESULTS_FILE, "results.sqlite-wal", "results.sqlite-shm", CAMPAIGN_FILE, "work"]
                    .iter()
                    .any(|n| name == *n)
        };
        // edgebench writes and later removes scratch files under DIR/work: never in a directory of the user's.
        if std::fs::read_dir(dir).is_ok_and(|mut entries| entries.any(|e| e.is_ok_and(|e| !ours(&e.file_name())))) {
            bail!(
                "{} holds files but no campaign: give --out a new or empty directory (edgebench writes and removes \
                 its own files there)",
                dir.display()
            );
        }
        Ok(())
    }

    /// Reopens an interrupted campaign with its stored options and seed.
    /// Continues the campaign in `dir` with its stored options. Refuses when
    /// the artifacts differ from those its first run used (one campaign would
    /// mix binaries), unless `allow_changed_artifacts`.
    pub fn resume(dir: &Path, artifacts: Artifacts) -> Result<Campaign> {
        Campaign::resume_with(dir, artifacts, false)
    }

    pub fn resume_with(dir: &Path, artifacts: Artifacts, allow_changed_artifacts: bool) -> Result<Campaign> {
        let store = Store::open_existing(dir)?;
        let row = store.campaign()?.with_context(|| {
            format!(
                "{} holds no campaign: it was stopped before it began; run the same command again, without --resume",
                dir.display()
            )
        })?;
        Options::register_user_workloads(&row.config)
            .context("the stored campaign's user workloads are unreadable or clash with others")?;
        let options: Options = serde_json::from_value(row.config.clone())
            .context("the stored campaign options are unreadable (written by another edgebench version?)")?;
        if let Some(first) = row.environment["artifacts"].as_object() {
            let now = artifacts.fingerprint();
            let changed: Vec<&String> =
                first.iter().filter(|(what, hash)| now.get(*what) != Some(*hash)).map(|(w, _)| w).collect();
            if !changed.is_empty() && !allow_changed_artifacts {
                bail!(
                    "the artifacts differ from those this campaign began with ({}): resuming would mix binaries in one \
                     campaign. Build the commit it began with ({}), or pass --allow-changed-artifacts to go on (every \
                     run's artifacts are stored in the `runs` table)",
                    changed.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                    row.environment["edgebench_commit"].as_str().unwrap_or("not recorded")
                );
            }
        }
        Ok(Campaign {
            id: row.id,
            dir: dir.to_path_buf(),
            options,
            store,
            artifacts,
            backends: None,
            profiles: Default::default(),
            target: None,
        })
    }

    /// Uses these backends instead of every built-in one (for embedders and
    /// tests that bring a runtime of their own).
    pub fn with_backends(mut self, backends: Vec<Box<dyn Runtime>>) -> Campaign {
        self.backends = Some(backends);
        self
    }

    /// The runtimes run on a remote target (remote.rs): `environment` is the
    /// target host's, `link` the link's figures; both are stored with this
    /// host's environment, and this host only runs the client.
    pub fn with_target(mut self, (environment, link): (serde_json::Value, serde_json::Value)) -> Campaign {
        self.target = Some((environment, link));
        self
    }

    /// Firewall profiles are applied on the remote target, through `firewall`.
    pub fn with_target_firewall(mut self, firewall: Box<dyn TargetFirewall>) -> Campaign {
        self.profiles.target = Some(firewall);
        self
    }

    /// Removes what `create` wrote for a campaign that never began (its
    /// remote target could not be reached): the directory is as before.
    pub fn remove_unbegun(self) {
        let Campaign { dir, store, .. } = self;
        drop(store);
        for name in [RESULTS_FILE, "results.sqlite-wal", "results.sqlite-shm", CAMPAIGN_FILE] {
            let _ = std::fs::remove_file(dir.join(name));
        }
        let _ = std::fs::remove_dir(&dir); // only when empty: a given --out that held nothing else
    }

    /// The target a stored campaign ran its runtimes on (None: this host, or nothing stored yet).
    pub fn stored_target(&self) -> Result<Option<String>> {
        let row = self.store.campaign()?;
        Ok(row.and_then(|r| r.environment["link"]["target"].as_str().map(str::to_string)))
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Runs every pending trial. An error writing the results file names it
    /// and says how to go on (see [`Campaign::unwritable`]).
    pub fn run(&mut self, interrupted: &AtomicBool) -> Result<Outcome> {
        self.run_all(interrupted).map_err(|e| self.unwritable(e))
    }

    fn run_all(&mut self, interrupted: &AtomicBool) -> Result<Outcome> {
        let started = std::time::Instant::now();
        let work_dir = self.dir.join("work");
        let artifacts = self.artifacts.clone();
        let mut ctx = Context::new(self.id.clone(), &artifacts, &work_dir)?;
        ctx.ready_timeout = self.options.ready_timeout_ms.map(std::time::Duration::from_millis);
        ctx.concurrency = self.options.load.connections;
        let resuming = self.store.campaign()?.is_some();
        let runtimes = self.select_runtimes()?;
        // Before anything is started: every process, container and daemon of
        // a runtime inherits or is given the SUT's CPUs, edgebench keeps the client's.
        let cpus = match &self.target {
            // The runtimes' CPUs are the target's (its agent applies --cpus there).
            Some(_) => crate::cpus::CpuPlan::client_only(),
            None => crate::cpus::CpuPlan::resolve(&self.options.cpus, &crate::cpus::host_cpus())?,
        };
        cpus.install()?;
        let detections = self.detect(&runtimes)?;
        // Before anything is stored: a campaign that cannot have its firewall does not start.
        if !self.options.uses_firewall() {
            // Without profiles, nothing is applied on the target either.
            self.profiles.target = None;
        }
        let on_target = self.profiles.target.is_some();
        let network = if self.options.uses_network() && !on_target {
            let link = crate::edge::uses_link(&self.options.edge).then_some(self.options.seed);
            Some(Self::start_network(&self.id, &ctx, &runtimes, &detections, link)?)
        } else {
            None
        };
        let mut edge =
            if self.options.uses_edge() { Some(crate::edge::Edge::start(&self.options.edge)?) } else { None };
        if let (Some(edge), Some(net)) = (&mut edge, &network) {
            edge.attach_link(net.topology().link());
        }
        let target_firewall = match &self.profiles.target {
            Some(t) if self.options.uses_firewall() => {
                Some(t.start().context("starting firewall profiles on the remote target")?)
            }
            _ => None,
        };
        ctx.server_netns = network.as_ref().map(|n| n.topology().netns_path().to_path_buf());
        let fingerprint = serde_json::Value::Object(self.artifacts.fingerprint());
        let mut env = environment::capture(&self.artifacts.source, &ctx.env);
        env["test_bed"] = test_bed(&cpus, &runtimes, &detections);
        env["artifacts"] = fingerprint.clone();
        if let Some(edge) = &edge {
            // What every CPU and memory profile's cgroup holds, as read back after writing it.
            env["test_bed"]["edge"] = serde_json::json!({
                "hierarchy": edge.hierarchy(),
                "profiles": edge.readbacks().into_iter().collect::<std::collections::BTreeMap<_, _>>(),
            });
        }
        if let Some((target, link)) = &self.target {
            env["target"] = target.clone();
            env["link"] = link.clone();
        }
        if !resuming {
            self.store.insert_campaign(&CampaignRow {
                id: self.id.clone(),
                started_ns: now_ns(),
                finished_ns: None,
                status: "running".into(),
                seed: self.options.seed,
                config: serde_json::to_value(&self.options)?,
                environment: env.clone(),
            })?;
        } else {
            self.store.set_campaign_status(&self.id, "running", None)?;
        }
        self.store.insert_run(&self.id, &env, &fingerprint)?;
        self.record_runtimes(&runtimes, &detections)?;
        if let Some(net) = &network {
            firewall::record_start(&self.store, &self.id, net)?;
        }
        if let Some(start) = &target_firewall {
            firewall::record_target_start(&self.store, &self.id, start)?;
        }

        let available: Vec<(&dyn Runtime, &'static str)> = runtimes
            .iter()
            .flat_map(|r| r.variants().iter().map(move |v| (r.as_ref(), *v)))
            .filter(|(r, _)| detections[r.name()].available)
            .filter(|(r, v)| selects(&self.options.runtimes, r.name(), v))
            .collect();
        let o = &self.options;
        let trials = plan_with_conditions(&available, &o.workloads, &o.firewall, &o.edge, o.reps, o.seed);

        let conditions = (network.as_ref(), edge.as_ref());
        let result = self.run_trials(&ctx, &available, &trials, interrupted, conditions, started);
        // Its cgroups go once the instances are gone.
        drop(edge);
        for r in &runtimes {
            if detections[r.name()].available {
                r.teardown(&ctx);
            }
        }
        let _ = std::fs::remove_dir_all(work_dir.join("state"));
        let _ = std::fs::remove_dir_all(work_dir.join("home"));
        // Namespace, veth and tables go on every path; then the host's ruleset is compared.
        let host_changed = match (network, &self.profiles.target, &target_firewall) {
            (Some(net), ..) => firewall::finish(&self.store, &self.id, net)?,
            (None, Some(t), Some(_)) => firewall::finish_target(&self.store, &self.id, t.as_ref())?,
            _ => Vec::new(),
        };
        let failures = result?;

        let outcome = if interrupted.load(Ordering::SeqCst) { Outcome::Interrupted } else { Outcome::Finished };
        let status = if outcome == Outcome::Finished { "finished" } else { "interrupted" };
        self.store.set_campaign_status(&self.id, status, Some(now_ns()))?;
        if failures > 0 {
            eprintln!("edgebench: {failures} trial(s) failed; their samples are stored with ok=0 and the error");
        }
        if !host_changed.is_empty() {
            bail!(
                "{} nftables ruleset changed during the campaign in {}: edgebench only creates and removes \
                 its own `{}*` tables, so something else changed that host's firewall while measuring; the samples \
                 are kept (see the host_ruleset table), but check what ran",
                if on_target { "the remote target's" } else { "the host's" },
                host_changed.join(", "),
                network::nft::PREFIX
            );
        }
        Ok(outcome)
    }

    /// An error writing the results file (e.g. a full disk) says which file,
    /// that nothing stored is lost, and how to go on.
    fn unwritable(&self, e: anyhow::Error) -> anyhow::Error {
        let from_store = e.chain().any(|c| c.is::<StoreFailed>() || c.is::<rusqlite::Error>());
        if !from_store {
            return e;
        }
        e.context(format!(
            "cannot write {}: every sample stored so far is kept, and a trial under way will run again; free space \
             (or make the file writable), then resume with `edgebench run --resume {}`",
            self.dir.join(RESULTS_FILE).display(),
            self.dir.display()
        ))
    }

    /// The campaign's network: its server namespace is a new one, or the one a
    /// runtime placed there can join (see [`Runtime::hold_server_namespace`]).
    /// A runtime that fails to hold it is said, and its trials then fail with the
    /// reason; the campaign goes on in a namespace of its own.
    fn start_network(
        id: &str,
        ctx: &Context<'_>,
        runtimes: &[Box<dyn Runtime>],
        detections: &HashMap<&'static str, Detection>,
        link: Option<u64>,
    ) -> Result<Network> {
        let placed_there = runtimes.iter().filter(|r| {
            detections[r.name()].available
                && r.variants().iter().any(|v| r.network_placement(v) == network::Placement::ServerNamespace)
        });
        let mut holder = None;
        for r in placed_there {
            match r.hold_server_namespace(ctx) {
                Ok(Some(pid)) => {
                    holder = Some((r, pid));
                    break;
                }
                Ok(None) => {}
                Err(e) => eprintln!("edgebench: {}: cannot hold the server namespace: {e:#}", r.name()),
            }
        }
        Network::start_linked(id, holder.map(|(_, pid)| pid), link).inspect_err(|_| {
            if let Some((r, _)) = holder {
                r.teardown(ctx);
            }
        })
    }

    /// Sets up runtimes, warms up, then runs every pending trial; returns the
    /// number of failed trials.
    fn run_trials(
        &mut self,
        ctx: &Context<'_>,
        available: &[(&dyn Runtime, &'static str)],
        trials: &[TrialKey],
        interrupted: &AtomicBool,
        (network, edge): (Option<&Network>, Option<&crate::edge::Edge>),
        started: std::time::Instant,
    ) -> Result<usize> {
        // A runtime whose setup, or a configuration whose prepare, fails does
        // not stop the campaign: its trials fail with the reason, the others run.
        let mut set_up: HashMap<&str, Result<(), String>> = HashMap::new();
        let mut unprepared: Unprepared = HashMap::new();
        for (runtime, variant) in available {
            let name = runtime.name();
            let setup = set_up.entry(name).or_insert_with(|| {
                runtime.setup(ctx).map_err(|e| {
                    eprintln!("edgebench: {name}: setup failed, its trials fail: {e:#}");
                    format!("setup of {name} failed: {e:#}")
                })
            });
            for workload in self.options.workloads.clone() {
                if workload.lacks(runtime.artifact(variant)).is_some() {
                    continue;
                }
                let why = match setup {
                    Err(e) => e.clone(),
                    Ok(()) => match runtime.prepare(ctx, workload, variant) {
                        Ok(()) => {
                            self.record_prepared(*runtime, workload, variant)?;
                            continue;
                        }
                        Err(e) => {
                            eprintln!("edgebench: {name} {variant} {workload}: prepare failed, its trials fail: {e:#}");
                            format!("prepare of {name} {variant} for {workload} failed: {e:#}")
                        }
                    },
                };
                unprepared.insert((name.to_string(), variant.to_string(), workload), why);
            }
        }
        self.check_user_workloads(ctx, available, &mut unprepared, network);
        let finished = self.store.finished_trials(&self.id)?;
        let pending: Vec<(usize, &TrialKey)> = trials
            .iter()
            .enumerate()
            .filter(|(_, k)| !finished.contains(&TrialIdentity::of("trial", k.db_key())))
            .collect();
        if self.options.warmup {
            self.warm_up(ctx, available, &unprepared, interrupted, network);
        }

        let bar = ProgressBar::new(pending.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} trials, {elapsed} ({eta} left) {msg}").unwrap(),
        );
        let mut run = TrialRun {
            ctx,
            by_name: available.iter().map(|(r, _)| (r.name(), *r)).collect(),
            unprepared: &unprepared,
            interrupted,
            network,
            edge,
            bar: &bar,
            started,
            durations: HashMap::new(),
            failures: 0,
        };
        // With adaptive repetitions the budget bounds the planned trials too:
        // planned in rounds, they stop with every cell at about the same count.
        let budget = self.options.precision.and(self.options.budget_s).map(budget_for_trials);
        let planned = pending.len();
        let mut budget_spent = false;
        for (done, (index, key)) in pending.into_iter().enumerate() {
            if interrupted.load(Ordering::SeqCst) {
                break;
            }
            // After the first round (every cell measured once), a trial that
            // would end past the budget, at its configuration's mean duration, does not start.
            let over = |b: Duration| started.elapsed() + run.mean_duration(&precision::config_of(key)) > b;
            if key.repetition > 1 && budget.is_some_and(over) {
                budget_spent = true;
                let (left, round, rounds, dir) =
                    (planned - done, key.repetition, self.options.reps, self.dir.display());
                say(
                    &bar,
                    format!(
                        "edgebench: the time budget is spent: {left} of {planned} planned trial(s) not run (round \
                         {round} of {rounds}); `edgebench run --resume {dir}` runs them"
                    ),
                );
                break;
            }
            self.run_trial(&mut run, index, key)?;
        }
        if let (Some(target), false) = (self.options.precision, budget_spent) {
            self.run_adaptive(&mut run, trials.len(), target)?;
        }
        let mut failures = run.failures;
        bar.finish_and_clear();
        if self.options.wants(Metric::Scaling) && !interrupted.load(Ordering::SeqCst) {
            failures +=
                self.run_scaling(ctx, available, trials.len(), (&finished, &unprepared), interrupted, network)?;
        }
        Ok(failures)
    }

    /// Runs one trial and records it; its samples are stored as it goes.
    fn run_trial(&mut self, run: &mut TrialRun<'_, '_>, index: usize, key: &TrialKey) -> Result<()> {
        let began = std::time::Instant::now();
        run.bar.set_message(key.label());
        let db_key = key.db_key();
        self.store.supersede_partial_trial(&self.id, db_key, false)?;
        let runtime = run.by_name[key.runtime.as_str()];
        let result = if let Some(why) = run.unprepared.get(&(key.runtime.clone(), key.variant.clone(), key.workload)) {
            self.store.insert_samples(&self.id, &[trial::failed(key, "cold_start", "", why)])?;
            Err(trial::Failure::Failed(why.clone()))
        } else {
            match self.profiles.apply(&mut self.store, &self.id, run.network, runtime, key) {
                Ok(()) => trial::Trial {
                    runtime,
                    key,
                    options: &self.options,
                    ctx: run.ctx,
                    interrupted: run.interrupted,
                    network: run.network,
                    edge: run.edge,
                }
                .run_under(&mut self.store, &self.id),
                Err(e) => Err(e),
            }
        };
        let (status, error) = match result {
            Ok(()) => ("done", String::new()),
            Err(trial::Failure::Interrupted) => ("interrupted", "interrupted".to_string()),
            Err(trial::Failure::Store(e)) => bail!(StoreFailed(e)),
            // Failed while the campaign was being stopped (Ctrl-C, a remote
            // target's session lost): the stop is the likelier cause, so the
            // trial runs again on resume instead of counting as the runtime's failure.
            Err(trial::Failure::Failed(e)) if run.interrupted.load(Ordering::SeqCst) => {
                ("interrupted", format!("interrupted: {e}"))
            }
            Err(trial::Failure::Failed(e)) => {
                run.failures += 1;
                say(run.bar, format!("{}: failed: {e}", key.label()));
                ("failed", e)
            }
        };
        if status != "interrupted" {
            self.store.insert_samples(&self.id, &trial::settle(key, &self.options, runtime))?;
        }
        self.store.record_trial(&self.id, "trial", index, db_key, status, &error)?;
        run.durations.entry(precision::config_of(key)).or_default().push(began.elapsed());
        run.bar.inc(1);
        Ok(())
    }

    /// Adaptive repetitions (campaign/precision.rs): rounds of more trials
    /// for the configurations whose key cells are short of `target`, until
    /// none is, each is at `max_reps`, or the budget is spent.
    fn run_adaptive(&mut self, run: &mut TrialRun<'_, '_>, planned: usize, target: f64) -> Result<()> {
        let mut index = planned;
        for round in 0.. {
            if run.interrupted.load(Ordering::SeqCst) {
                return Ok(());
            }
            let short = precision::shortfalls(&self.store, &self.id, target)?;
            let time_left = self.options.budget_s.map(|b| budget_for_trials(b).saturating_sub(run.started.elapsed()));
            let allowance = precision::Allowance { max_reps: self.options.max_reps, time_left };
            let cost = |config: &precision::ConfigKey| run.mean_duration(config);
            let keys = precision::next_round(&short, &allowance, &cost, self.options.seed, round);
            if keys.is_empty() {
                return Ok(());
            }
            say(
                run.bar,
                format!(
                    "edgebench: precision round {}: {} configuration(s) short of ±{}%, {} more trial(s)",
                    round + 1,
                    short.len(),
                    target * 100.0,
                    keys.len()
                ),
            );
            run.bar.inc_length(keys.len() as u64);
            for key in &keys {
                if run.interrupted.load(Ordering::SeqCst) {
                    return Ok(());
                }
                self.run_trial(run, index, key)?;
                index += 1;
            }
        }
        Ok(())
    }

    /// The scaling experiments, after the trials, in their own seeded order;
    /// recorded in `trials` after the trial indices so that resume skips them.
    fn run_scaling(
        &mut self,
        ctx: &Context<'_>,
        available: &[(&dyn Runtime, &'static str)],
        first_index: usize,
        (finished, unprepared): (&std::collections::HashSet<TrialIdentity>, &Unprepared),
        interrupted: &AtomicBool,
        network: Option<&Network>,
    ) -> Result<usize> {
        let o = &self.options;
        let reps = o.scaling.reps.min(o.reps).max(1);
        let experiments = plan_with_firewall(available, &o.workloads, &o.firewall, reps, o.seed ^ 0x5ca1e);
        let by_name: HashMap<&str, &dyn Runtime> = available.iter().map(|(r, _)| (r.name(), *r)).collect();
        let mut failures = 0;
        for (j, key) in experiments.iter().enumerate() {
            let index = first_index + j;
            if finished.contains(&TrialIdentity::of("scaling", key.db_key())) || interrupted.load(Ordering::SeqCst) {
                continue;
            }
            eprintln!("edgebench: scaling {}", key.label());
            let db_key = key.db_key();
            self.store.supersede_partial_trial(&self.id, db_key, true)?;
            let runtime = by_name[key.runtime.as_str()];
            let applied = match unprepared.get(&(key.runtime.clone(), key.variant.clone(), key.workload)) {
                Some(why) => Err(trial::Failure::Failed(why.clone())),
                None => self.profiles.apply(&mut self.store, &self.id, network, runtime, key),
            };
            let (store, id) = (&mut self.store, self.id.as_str());
            let mut write =
                |samples: Vec<crate::store::Sample>| store.insert_samples(id, &samples).map_err(trial::Failure::store);
            let result =
                applied.and_then(|()| scaling::run(runtime, key, &self.options, ctx, interrupted, network, &mut write));
            let (status, error) = match result {
                Ok(()) => ("done", String::new()),
                Err(trial::Failure::Interrupted) => ("interrupted", "interrupted".to_string()),
                Err(trial::Failure::Store(e)) => bail!(StoreFailed(e)),
                Err(trial::Failure::Failed(e)) => {
                    failures += 1;
                    eprintln!("edgebench: scaling {}: failed: {e}", key.label());
                    ("failed", e)
                }
            };
            self.store.record_trial(&self.id, "scaling", index, db_key, status, &error)?;
        }
        Ok(failures)
    }

    /// Stores what `prepare` measured, as samples of repetition 0, phase
    /// `prepare` (a resumed campaign prepares again and adds its own).
    fn record_prepared(&mut self, runtime: &dyn Runtime, workload: Workload, variant: &str) -> Result<()> {
        let key = TrialKey::new(runtime.name(), variant, workload, 0);
        let samples: Vec<_> = runtime
            .prepared(workload, variant)
            .into_iter()
            .map(|f| trial::sample(&key, &f.metric, "prepare", 0, f.value, &f.unit))
            .collect();
        self.store.insert_samples(&self.id, &samples)
    }

    fn select_runtimes(&mut self) -> Result<Vec<Box<dyn Runtime>>> {
        let all = self.backends.take().unwrap_or_else(runtime::all);
        let Some(wanted) = &self.options.runtimes else { return Ok(all) };
        // Entries are `runtime` or `runtime:variant`.
        let wanted: Vec<&str> = wanted.iter().map(|w| w.split_once(':').map_or(w.as_str(), |(r, _)| r)).collect();
        let known: Vec<&str> = all.iter().map(|r| r.name()).collect();
        for w in &wanted {
            if !known.contains(w) {
                bail!("unknown runtime {w:?}: known runtimes are {}", known.join(", "));
            }
        }
        Ok(all.into_iter().filter(|r| wanted.contains(&r.name())).collect())
    }

    fn detect(&self, runtimes: &[Box<dyn Runtime>]) -> Result<HashMap<&'static str, Detection>> {
        let mut out = HashMap::new();
        for r in runtimes {
            let d = r.detect(&self.artifacts);
            if !d.available {
                eprintln!("edgebench: {} not measured: {}", r.name(), d.reason);
            }
            out.insert(r.name(), d);
        }
        Ok(out)
    }

    fn record_runtimes(&self, runtimes: &[Box<dyn Runtime>], detections: &HashMap<&str, Detection>) -> Result<()> {
        for r in runtimes {
            let d = &detections[r.name()];
            let notes: serde_json::Map<String, serde_json::Value> = self
                .options
                .workloads
                .iter()
                .filter_map(|w| r.notes(*w).map(|n| (w.name().to_string(), n.into())))
                .collect();
            for v in r.variants().iter().filter(|v| selects(&self.options.runtimes, r.name(), v)) {
                let mut notes = notes.clone();
                for w in &self.options.workloads {
                    if let Some(why) = w.lacks(r.artifact(v)) {
                        if d.available {
                            eprintln!("edgebench: {} {v} {w}: {why}", r.name());
                        }
                        notes.insert(format!("{w}: {NOT_MEASURED}"), why.into());
                    }
                }
                notes.insert(format!("{v}: serving"), r.serving_model(v).into());
                notes.insert(format!("{v}: network path"), r.network_path(v).into());
                self.store.upsert_runtime(
                    &self.id,
                    &RuntimeRow {
                        runtime: r.name().into(),
                        variant: v.to_string(),
                        measured: d.available,
                        version: d.version.clone(),
                        path: d.path.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
                        reason: d.reason.clone(),
                        notes: notes.into(),
                    },
                )?;
            }
        }
        Ok(())
    }

    /// Before any trial, each user workload is launched once on every
    /// configuration that will measure it, and sent its probe and its
    /// conformance requests: an artifact that does not answer as declared is
    /// reported now, and its trials fail with the reason instead of running.
    fn check_user_workloads(
        &self,
        ctx: &Context<'_>,
        available: &[(&dyn Runtime, &'static str)],
        unprepared: &mut Unprepared,
        network: Option<&Network>,
    ) {
        for &workload in self.options.workloads.iter().filter(|w| w.user().is_some()) {
            for (runtime, variant) in available {
                let key = (runtime.name().to_string(), variant.to_string(), workload);
                if workload.lacks(runtime.artifact(variant)).is_some()
                    || unprepared.contains_key(&key)
                    || runtime.serves_workloads(variant).is_err()
                {
                    continue;
                }
                let why = match crate::conformance::check_in(*runtime, variant, workload, ctx, network) {
                    Ok(m) if m.is_empty() => {
                        eprintln!("edgebench: {} {variant} {workload}: answers as declared", runtime.name());
                        continue;
                    }
                    Ok(m) => m.join("; "),
                    Err(e) => format!("{e:#}"),
                };
                eprintln!("edgebench: {} {variant} {workload}: does not answer as declared: {why}", runtime.name());
                unprepared.insert(key, format!("the check before the trials failed (not measured): {why}"));
            }
        }
    }

    /// One unrecorded launch per configuration, so that binaries are in the
    /// page cache and compile caches are filled before anything is measured.
    fn warm_up(
        &self,
        ctx: &Context<'_>,
        available: &[(&dyn Runtime, &'static str)],
        unprepared: &Unprepared,
        interrupted: &AtomicBool,
        network: Option<&Network>,
    ) {
        for (runtime, variant) in available {
            for &workload in &self.options.workloads {
                if workload.lacks(runtime.artifact(variant)).is_some()
                    || unprepared.contains_key(&(runtime.name().to_string(), variant.to_string(), workload))
                {
                    continue;
                }
                let key = TrialKey::new(runtime.name(), variant, workload, 0).with_label_suffix("warmup");
                if let Err(e) = trial::warm_up(*runtime, &key, ctx, interrupted, network) {
                    eprintln!("edgebench: warm-up of {} failed: {e}", key.label());
                }
            }
        }
    }
}

/// Configurations (runtime, variant, workload) whose setup or prepare
/// failed, with the reason their trials fail.
type Unprepared = HashMap<(String, String, Workload), String>;

/// Where client and runtimes ran, and how each runtime serves and is reached:
/// stored with the environment and printed in the report's methods.
fn test_bed(
    cpus: &crate::cpus::CpuPlan,
    runtimes: &[Box<dyn Runtime>],
    detections: &HashMap<&'static str, Detection>,
) -> serde_json::Value {
    let mut per_runtime = serde_json::Map::new();
    for r in runtimes.iter().filter(|r| detections[r.name()].available) {
        for v in r.variants() {
            per_runtime.insert(
                format!("{}/{v}", r.name()),
                serde_json::json!({
                    "serving": r.serving_model(v),
                    "network_path": r.network_path(v),
                    "placement": r.network_placement(v).name(),
                    "start_kind": r.start_kind(v).name(),
                    "cpu_scope": r.cpu_scope(v),
                }),
            );
        }
    }
    serde_json::json!({
        "cpus": {
            "mode": cpus.mode,
            "client": cpus.client.to_string(),
            "sut": cpus.sut.to_string(),
            "sut_workers": cpus.sut_workers(),
            "why": cpus.why,
        },
        "runtimes": per_runtime,
    })
}

/// The whole environment runtimes get: nothing from the user's shell
/// (`RUST_BACKTRACE` there slows some runtimes many times over), and a private
/// HOME so that caches start empty and belong to this campaign.
pub fn controlled_env(work_dir: &Path) -> Vec<(String, String)> {
    vec![
        ("PATH".into(), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()),
        ("HOME".into(), work_dir.join("home").display().to_string()),
        ("LANG".into(), "C.UTF-8".into()),
    ]
}

/// What every trial of a campaign run shares.
struct TrialRun<'a, 'r> {
    ctx: &'a Context<'a>,
    by_name: HashMap<&'static str, &'r dyn Runtime>,
    unprepared: &'a Unprepared,
    interrupted: &'a AtomicBool,
    network: Option<&'a Network>,
    edge: Option<&'a crate::edge::Edge>,
    bar: &'a ProgressBar,
    /// When this run of the campaign began (the budget counts from here).
    started: std::time::Instant,
    /// How long each configuration's trials took in this run.
    durations: HashMap<precision::ConfigKey, Vec<Duration>>,
    failures: usize,
}

impl TrialRun<'_, '_> {
    /// A configuration's mean trial time so far (else all trials', else 10 s).
    fn mean_duration(&self, config: &precision::ConfigKey) -> Duration {
        let mean = |d: &[Duration]| (!d.is_empty()).then(|| d.iter().sum::<Duration>() / d.len() as u32);
        self.durations.get(config).and_then(|d| mean(d)).unwrap_or_else(|| {
            let all: Vec<Duration> = self.durations.values().flatten().copied().collect();
            mean(&all).unwrap_or(Duration::from_secs(10))
        })
    }
}

/// A line for the user: above the progress bar, or on stderr when there is
/// no bar to draw (output not a terminal), where `println` would drop it.
fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

/// The part of a time budget of `budget_s` seconds that trials may use:
/// the rest is for stopping the runtimes and writing the report.
fn budget_for_trials(budget_s: u64) -> Duration {
    Duration::from_secs(budget_s).saturating_sub(Duration::from_secs(10))
}
