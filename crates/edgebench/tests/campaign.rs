//! Campaign robustness: a crashing runtime marks its samples failed and the
//! campaign goes on; an interrupted campaign keeps every sample and resumes.

mod common;

use common::*;
use edgebench::artifacts::Artifacts;
use edgebench::campaign::{Campaign, Outcome};
use edgebench::runtime::process::{spawn, Launch, WarmMode};
use edgebench::runtime::{self, Context, Detection, Instance, LaunchSpec, Runtime};
use edgebench::store::Store;
use edgebench::Workload;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A real process that exits at once: the workload server given a workload
/// name it does not know.
struct CrashingRuntime;

impl Runtime for CrashingRuntime {
    fn name(&self) -> &'static str {
        "crashing"
    }
    fn variants(&self) -> &'static [&'static str] {
        &["bad-argument"]
    }
    fn serving_model(&self, _variant: &str) -> String {
        "the native server given a bad argument: it exits at once".into()
    }
    fn artifact(&self, _variant: &str) -> edgebench::runtime::ArtifactKind {
        edgebench::runtime::ArtifactKind::Binary
    }
    fn detect(&self, artifacts: &Artifacts) -> Detection {
        Detection::found("test", artifacts.native_server())
    }
    fn launch(&self, ctx: &Context<'_>, spec: &LaunchSpec<'_>) -> anyhow::Result<Box<dyn Instance>> {
        let mut command = Launch::new(ctx.artifacts.native_server());
        command.arg("no-such-workload").arg(spec.addr.to_string());
        let log = ctx.work_dir.join("logs").join(format!("{}.log", spec.label));
        Ok(Box::new(spawn(command, &ctx.env, spec.addr, log, None, WarmMode::None)?))
    }
}

#[test]
fn a_crashing_runtime_fails_its_samples_and_the_campaign_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let options = small_options(&["crashing", "native"], &[Workload::HELLO], dir.path());
    let mut backends = runtime::all();
    backends.push(Box::new(CrashingRuntime));
    let mut campaign = Campaign::create(options, artifacts()).unwrap().with_backends(backends);
    assert_eq!(campaign.run(&AtomicBool::new(false)).unwrap(), Outcome::Finished);
    edgebench::report::write(dir.path()).unwrap();
    let samples = samples(dir.path());
    let crashed: Vec<_> =
        samples.iter().filter(|s| s.runtime == "crashing" && !s.metric.starts_with("settle")).collect();
    assert_eq!(crashed.len(), 2, "one failed cold start per trial: {crashed:#?}");
    assert!(crashed.iter().all(|s| !s.ok && s.metric == "cold_start" && s.error.contains("exited before answering")));
    assert!(
        crashed[0].error.contains("usage: edgebench-workload"),
        "the log tail is in the error: {}",
        crashed[0].error
    );
    assert_eq!(ok_values(&samples, "native", "hello", "cold_start").len(), 2, "native still measured");
    let report = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(report.contains("## Failures"));
    assert_eq!(children_left(), Vec::<String>::new());
}

/// The native server under a name of its own, with real faults of a
/// runtime's own steps (not mocks): a setup that runs a program that is not
/// there, a prepare that reads a file that is not there (for `kv` only), a
/// detection that stops finding it, and warm starts that raise the
/// campaign's interrupt flag.
#[derive(Default)]
struct Fixture {
    name: &'static str,
    setup_fails: bool,
    /// Not found while this is raised.
    hidden: Option<&'static AtomicBool>,
    /// Its instances' warm start raises `STOP` and counts itself.
    interrupts_warm_starts: bool,
}

impl Runtime for Fixture {
    fn name(&self) -> &'static str {
        self.name
    }
    fn variants(&self) -> &'static [&'static str] {
        &["v"]
    }
    fn serving_model(&self, _variant: &str) -> String {
        "the native server".into()
    }
    fn artifact(&self, _variant: &str) -> edgebench::runtime::ArtifactKind {
        edgebench::runtime::ArtifactKind::Binary
    }
    fn detect(&self, artifacts: &Artifacts) -> Detection {
        match self.hidden {
            Some(h) if h.load(Ordering::SeqCst) => Detection::missing("uninstalled between the two runs"),
            _ => Detection::found("test", artifacts.native_server()),
        }
    }
    fn setup(&self, _ctx: &Context<'_>) -> anyhow::Result<()> {
        if self.setup_fails {
            Command::new("/nonexistent/edgebench-daemon").status()?;
        }
        Ok(())
    }
    fn prepare(&self, ctx: &Context<'_>, workload: Workload, _variant: &str) -> anyhow::Result<()> {
        if workload == Workload::KV {
            std::fs::read(ctx.work_dir.join("no-such-image"))?;
        }
        Ok(())
    }
    fn launch(&self, ctx: &Context<'_>, spec: &LaunchSpec<'_>) -> anyhow::Result<Box<dyn Instance>> {
        let mut command = Launch::new(ctx.artifacts.native_server());
        command.arg(spec.workload.name()).arg(spec.addr.to_string());
        let log = ctx.work_dir.join("logs").join(format!("{}.log", spec.label));
        let instance = Box::new(spawn(command, &ctx.env, spec.addr, log, None, WarmMode::None)?);
        Ok(if self.interrupts_warm_starts { Box::new(CountingInstance(instance)) } else { instance })
    }
}

#[test]
fn a_failed_setup_or_prepare_fails_only_its_trials_and_the_campaign_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let mut options =
        small_options(&["no-setup", "no-prepare", "native"], &[Workload::HELLO, Workload::KV], dir.path());
    options.reps = 1;
    options.warmup = true;
    let mut backends = runtime::all();
    backends.push(Box::new(Fixture { name: "no-setup", setup_fails: true, ..Default::default() }));
    backends.push(Box::new(Fixture { name: "no-prepare", ..Default::default() }));
    let mut campaign = Campaign::create(options, artifacts()).unwrap().with_backends(backends);
    assert_eq!(campaign.run(&AtomicBool::new(false)).unwrap(), Outcome::Finished);
    edgebench::report::write(dir.path()).unwrap();
    let samples = samples(dir.path());
    let cold = |rt: &str, w: &str| -> Vec<_> {
        samples.iter().filter(|s| s.runtime == rt && s.workload == w && s.metric == "cold_start").collect()
    };
    for w in ["hello", "kv"] {
        let failed = cold("no-setup", w);
        assert!(failed.len() == 1 && !failed[0].ok, "{failed:?}");
        assert!(failed[0].error.contains("setup of no-setup failed"), "{}", failed[0].error);
        assert_eq!(ok_values(&samples, "native", w, "cold_start").len(), 1, "native still measured");
    }
    let kv = cold("no-prepare", "kv");
    assert!(kv.len() == 1 && !kv[0].ok && kv[0].error.contains("prepare of no-prepare v for kv failed"), "{kv:?}");
    assert_eq!(ok_values(&samples, "no-prepare", "hello", "cold_start").len(), 1, "its other workload runs");
    let store = Store::open_existing(dir.path()).unwrap();
    assert_eq!(store.campaign().unwrap().unwrap().status, "finished");
    assert!(dir.path().join("report.md").exists(), "the report is written");
    assert_eq!(children_left(), Vec::<String>::new());
}

/// Raised between the two runs: the runtime "sometimes" is uninstalled.
static GONE: AtomicBool = AtomicBool::new(false);

/// Raises `flag` once `done` trials are stored in `dir`.
fn interrupt_after(done: i64, dir: &std::path::Path, flag: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let db = dir.join("results.sqlite");
    std::thread::spawn(move || {
        for _ in 0..4000 {
            std::thread::sleep(std::time::Duration::from_millis(5));
            let n = rusqlite::Connection::open(&db)
                .and_then(|c| {
                    c.query_row("SELECT count(*) FROM trials WHERE status = 'done'", [], |r| r.get::<_, i64>(0))
                })
                .unwrap_or(0);
            if n >= done {
                break;
            }
        }
        flag.store(true, Ordering::SeqCst);
    })
}

#[test]
fn a_resumed_campaign_whose_plan_changed_runs_each_trial_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = small_options(&["native", "sometimes"], &[Workload::HELLO], dir.path());
    options.reps = 5;
    let backends = || {
        let mut b = runtime::all();
        b.push(Box::new(Fixture { name: "sometimes", hidden: Some(&GONE), ..Default::default() }) as Box<dyn Runtime>);
        b
    };
    GONE.store(false, Ordering::SeqCst);
    let interrupted = Arc::new(AtomicBool::new(false));
    let watcher = interrupt_after(4, dir.path(), interrupted.clone());
    let mut campaign = Campaign::create(options, artifacts()).unwrap().with_backends(backends());
    assert_eq!(campaign.run(&interrupted).unwrap(), Outcome::Interrupted);
    watcher.join().unwrap();
    let native_before = ok_values(&samples(dir.path()), "native", "hello", "cold_start").len();
    assert!(native_before < 5, "some native trials are left: {native_before}");

    // The second run finds one runtime fewer: its plan is another list.
    GONE.store(true, Ordering::SeqCst);
    let mut resumed = Campaign::resume(dir.path(), artifacts()).unwrap().with_backends(backends());
    assert_eq!(resumed.run(&AtomicBool::new(false)).unwrap(), Outcome::Finished);
    let mut reps: Vec<u32> =
        ok_values(&samples(dir.path()), "native", "hello", "cold_start").iter().map(|s| s.repetition).collect();
    reps.sort();
    assert_eq!(reps, (1..=5).collect::<Vec<_>>(), "every native repetition exactly once");
    assert_eq!(children_left(), Vec::<String>::new());
}

/// Raised by the first warm start of a fixture that interrupts warm starts, as a Ctrl-C would be.
static STOP: AtomicBool = AtomicBool::new(false);
static WARM_STARTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A warm start (a real request on a new connection) that raises the
/// campaign's interrupt flag and counts the calls.
struct CountingInstance(Box<dyn Instance>);

impl Instance for CountingInstance {
    fn addr(&self) -> std::net::SocketAddr {
        self.0.addr()
    }
    fn launched_at(&self) -> std::time::Instant {
        self.0.launched_at()
    }
    fn exited(&mut self) -> Option<String> {
        self.0.exited()
    }
    fn pids(&self) -> Vec<u32> {
        self.0.pids()
    }
    fn stop(&mut self) -> anyhow::Result<()> {
        self.0.stop()
    }
    fn log_tail(&self) -> String {
        self.0.log_tail()
    }
    fn warm_start(&mut self, workload: Workload) -> runtime::WarmStart {
        WARM_STARTS.fetch_add(1, Ordering::SeqCst);
        STOP.store(true, Ordering::SeqCst);
        runtime::warm_start_per_request(self.0.addr(), workload, None)
    }
}

#[test]
fn an_interrupt_during_warm_starts_ends_the_trial_at_once_as_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = small_options(&["interrupted-warm"], &[Workload::HELLO], dir.path());
    options.reps = 1;
    options.warm_starts = 5;
    let mut backends = runtime::all();
    backends.push(Box::new(Fixture { name: "interrupted-warm", interrupts_warm_starts: true, ..Default::default() }));
    let mut campaign = Campaign::create(options, artifacts()).unwrap().with_backends(backends);
    assert_eq!(campaign.run(&STOP).unwrap(), Outcome::Interrupted);
    assert_eq!(WARM_STARTS.load(Ordering::SeqCst), 1, "no warm start after the interrupt");
    let conn = rusqlite::Connection::open(dir.path().join("results.sqlite")).unwrap();
    let status: String = conn.query_row("SELECT status FROM trials", [], |r| r.get(0)).unwrap();
    assert_eq!(status, "interrupted", "re-run on resume, not failed for good");
    let warm = samples(dir.path()).into_iter().filter(|s| s.metric == "warm_start" && s.ok).count();
    assert_eq!(warm, 1, "the warm start measured before the interrupt is kept");
    assert_eq!(children_left(), Vec::<String>::new());
}

#[test]
fn report_only_reads_the_campaign_and_names_a_file_that_is_not_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = small_options(&["native"], &[Workload::HELLO], dir.path());
    options.reps = 1;
    let mut campaign = Campaign::create(options, artifacts()).unwrap();
    assert_eq!(campaign.run(&AtomicBool::new(false)).unwrap(), Outcome::Finished);
    drop(campaign); // closes the file: its WAL is checkpointed and removed
    let listing = |d: &std::path::Path| {
        let mut names: Vec<String> =
            std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    };
    let results = dir.path().join("results.sqlite");
    let (bytes, files) = (std::fs::read(&results).unwrap(), listing(dir.path()));

    let bin = env!("CARGO_BIN_EXE_edgebench");
    let elsewhere = tempfile::tempdir().unwrap();
    let out = Command::new(bin).arg("report").arg(dir.path()).arg("--out").arg(elsewhere.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(elsewhere.path().join("report.md").exists() && elsewhere.path().join("report.html").exists());
    assert_eq!(std::fs::read(&results).unwrap(), bytes, "results.sqlite is not written by report");
    assert_eq!(listing(dir.path()), files, "nothing is added to the campaign directory (no -wal, no -shm)");

    // A file that is not a results file: the error names it.
    let foreign = tempfile::tempdir().unwrap();
    std::fs::write(foreign.path().join("results.sqlite"), "not a database at all, but long enough to look like one")
        .unwrap();
    let out = Command::new(bin).arg("report").arg(foreign.path()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("is not an edgebench results file") && err.contains(&foreign.path().display().to_string()),
        "{err}"
    );
}

#[test]
fn ctrl_c_ends_a_campaign_with_exit_code_130_and_the_way_to_resume() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c");
    // Its own process group, as a shell's foreground job: the SIGINT goes to the whole group.
    let child = Command::new(env!("CARGO_BIN_EXE_edgebench"))
        .args(["run", "--no-build", "--runtimes", "native", "--workloads", "hello", "--reps", "200"])
        .args(["--metrics", "cold_start", "--settle-max-ms", "100", "--out"])
        .arg(&out)
        .process_group(0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let stored = || {
        rusqlite::Connection::open(out.join("results.sqlite"))
            .and_then(|c| c.query_row("SELECT count(*) FROM trials WHERE status = 'done'", [], |r| r.get::<_, i64>(0)))
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while stored() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGINT).unwrap();
    let output = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{err}");
    assert!(err.contains("resume with `edgebench run --resume"), "{err}");
    let conn = rusqlite::Connection::open(out.join("results.sqlite")).unwrap();
    let failed: i64 = conn.query_row("SELECT count(*) FROM trials WHERE status = 'failed'", [], |r| r.get(0)).unwrap();
    assert_eq!(failed, 0, "an interrupt fails no trial");
    assert_eq!(children_left(), Vec::<String>::new());
}

#[test]
fn a_spent_time_budget_stops_the_planned_trials_after_a_full_round_and_the_report_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = small_options(&["native"], &[Workload::HELLO, Workload::KV], dir.path());
    options.metrics = vec![edgebench::campaign::Metric::ColdStart];
    options.reps = 4;
    options.precision = Some(0.05);
    // Spent before the second round can start: each cell keeps its one trial.
    options.budget_s = Some(0);
    let (outcome, samples) = run_campaign(options);
    assert_eq!(outcome, Outcome::Finished);
    for w in ["hello", "kv"] {
        let reps: Vec<u32> = ok_values(&samples, "native", w, "cold_start").iter().map(|s| s.repetition).collect();
        assert_eq!(reps, vec![1], "{w}: the first round only");
    }
    let report = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(report.contains("have fewer than the 4 planned trials"), "{report}");
    assert_eq!(children_left(), Vec::<String>::new());
}

#[test]
fn an_interrupted_campaign_keeps_its_samples_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = small_options(&["native"], &[Workload::HELLO, Workload::KV], dir.path());
    options.reps = 6;
    let interrupted = Arc::new(AtomicBool::new(false));
    // Interrupt once a few trials have been stored.
    let watcher = interrupt_after(3, dir.path(), interrupted.clone());
    let mut campaign = Campaign::create(options, artifacts()).unwrap();
    let outcome = campaign.run(&interrupted).unwrap();
    watcher.join().unwrap();
    assert_eq!(outcome, Outcome::Interrupted);
    let before = samples(dir.path());
    let cold_before = before.iter().filter(|s| s.metric == "cold_start" && s.ok).count();
    assert!((3..12).contains(&cold_before), "some but not all trials ran: {cold_before}");
    {
        let store = Store::open_existing(dir.path()).unwrap();
        assert_eq!(store.campaign().unwrap().unwrap().status, "interrupted");
    }
    assert_eq!(children_left(), Vec::<String>::new(), "nothing left running after the interrupt");

    // A binary that changed since the campaign began is refused (one campaign, one set of binaries),
    // unless allowed; every run's artifacts are stored.
    let first_env = {
        let conn = rusqlite::Connection::open(dir.path().join("results.sqlite")).unwrap();
        let env: String = conn.query_row("SELECT environment FROM campaigns", [], |r| r.get(0)).unwrap();
        conn.execute(
            "UPDATE campaigns SET environment = json_set(environment, '$.artifacts.\"native server\"', 'deadbeef')",
            [],
        )
        .unwrap();
        env
    };
    let err = Campaign::resume(dir.path(), artifacts()).err().expect("refused").to_string();
    assert!(err.contains("artifacts differ") && err.contains("native server"), "{err}");
    let mut resumed = Campaign::resume_with(dir.path(), artifacts(), true).unwrap();
    assert_eq!(resumed.run(&AtomicBool::new(false)).unwrap(), Outcome::Finished);
    let runs: i64 = rusqlite::Connection::open(dir.path().join("results.sqlite"))
        .unwrap()
        .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(runs, 2, "the first run and the resume, each with its artifacts");
    assert!(first_env.contains("\"artifacts\""), "the first run's artifacts are in the environment");
    let after = samples(dir.path());
    for w in ["hello", "kv"] {
        let mut reps: Vec<u32> = ok_values(&after, "native", w, "cold_start").iter().map(|s| s.repetition).collect();
        reps.sort();
        assert_eq!(reps, (1..=6).collect::<Vec<_>>(), "{w}: every repetition exactly once");
    }
    // Every sample stored before the interrupt is still there: unchanged, or
    // (for the trial cut short, which ran again) marked superseded.
    for s in &before {
        let kept = after.iter().any(|a| {
            a.ts_ns == s.ts_ns
                && a.metric == s.metric
                && a.value == s.value
                && a.seq == s.seq
                && (a == s || a.error.starts_with("superseded"))
        });
        assert!(kept, "kept: {s:?}");
    }
    assert_eq!(children_left(), Vec::<String>::new());
}

#[test]
fn the_cli_names_bad_input_and_what_to_do() {
    let bin = env!("CARGO_BIN_EXE_edgebench");
    let out = Command::new(bin).args(["run", "--metrics", "speed", "--no-build"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "bad input is a usage error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown metric \"speed\"") && err.contains("cold_start"), "{err}");

    let out = Command::new(bin)
        .args(["run", "--runtimes", "nope", "--no-build", "--out"])
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("unknown runtime \"nope\" in --runtimes: known runtimes are native"),
        "{err}"
    );

    // --resume continues with the stored options: one that would change them is refused, not ignored.
    for flag in [["--reps", "3"], ["--seed", "7"], ["--requests", "5"], ["--load-duration-ms", "10"]] {
        let out = Command::new(bin).args(["run", "--no-build", "--resume", "somewhere"]).args(flag).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(flag[0]) && err.contains("cannot be used with"), "{err}");
    }

    // A misspelt runtime is named, and nothing is reported as conforming.
    let out = Command::new(bin).args(["conformance", "--runtimes", "wasmtim"]).output().unwrap();
    let (err, text) = (String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    assert!(out.status.code() == Some(2) && err.contains("unknown runtime \"wasmtim\""), "{err}");
    assert!(!text.contains("conforms"), "{text}");

    // An existing directory that holds no campaign is not taken over (its files would be at risk).
    let foreign = tempfile::tempdir().unwrap();
    std::fs::write(foreign.path().join("thesis.tex"), "mine").unwrap();
    let out = Command::new(bin)
        .args(["run", "--runtimes", "native", "--no-build", "--out"])
        .arg(foreign.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code() == Some(2) && err.contains("holds files but no campaign"), "{err}");
    assert!(foreign.path().join("thesis.tex").exists() && !foreign.path().join("results.sqlite").exists());

    let out = Command::new(bin).args(["report", "/nonexistent-dir"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("is it a campaign directory"), "{err}");
}

/// One campaign file started on every host of a fleet at once (same seed,
/// same second) still gives each campaign its own id: merging needs them apart.
#[test]
fn campaigns_started_together_with_one_seed_have_different_ids() {
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<String> = (0..2)
        .map(|i| {
            let options = common::small_options(&["native"], &[Workload::HELLO], &dir.path().join(i.to_string()));
            Campaign::create(options, common::artifacts()).unwrap().id
        })
        .collect();
    assert_ne!(ids[0], ids[1]);
}
