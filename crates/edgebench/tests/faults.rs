//! Fault injection: real faults at several points of real campaigns, then
//! the checks that nothing leaked and nothing was lost.
//!
//! Faults: an instance killed mid-boot and mid-load; its port taken by a
//! foreign server; a runtime binary that exits at once, hangs, or answers
//! garbage; SIGINT and SIGTERM at random moments, each followed by
//! `--resume`; SIGKILL of edgebench followed by `--resume`; the results on a
//! full filesystem (a small tmpfs) followed by `--resume` once it has room;
//! `report` on read-only results.
//!
//! After every case: no process, container, network namespace, veth, nft
//! table, cgroup or mount of ours is left; every sample committed before a
//! fault is still there, unchanged; a resumed campaign completes its plan
//! with each trial exactly once. The suite prints its count table and fails
//! unless it shows ≥ 100 faults, 0 leaks and 0 lost samples.
//!
//! It drives the one Docker daemon (a SIGKILLed campaign leaves containers
//! that the next run must remove), so it runs in the docker-daemon group.

mod common;

use common::*;
use edgebench::artifacts::Artifacts;
use edgebench::campaign::{Campaign, Outcome};
use edgebench::runtime::{self, Context, Detection, Instance, LaunchSpec, Placement, Runtime};
use edgebench::Workload;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- the tally

#[derive(Default)]
struct Row {
    case: String,
    faults: usize,
    leaks: Vec<String>,
    lost: Vec<String>,
    /// Expectations of the case that did not hold (e.g. a killed trial stored as done).
    wrong: Vec<String>,
}

struct Tally {
    rows: Vec<Row>,
    started: Instant,
}

impl Tally {
    fn table(&self) -> String {
        let mut t =
            format!("{:<44} {:>7} {:>6} {:>13} {:>6}\n", "fault case", "faults", "leaks", "samples lost", "wrong");
        let (mut f, mut l, mut s, mut w) = (0, 0, 0, 0);
        for r in &self.rows {
            t += &format!(
                "{:<44} {:>7} {:>6} {:>13} {:>6}\n",
                r.case,
                r.faults,
                r.leaks.len(),
                r.lost.len(),
                r.wrong.len()
            );
            f += r.faults;
            l += r.leaks.len();
            s += r.lost.len();
            w += r.wrong.len();
        }
        t += &format!("{:<44} {f:>7} {l:>6} {s:>13} {w:>6}\n", "total");
        t += &format!("({:.0} s)\n", self.started.elapsed().as_secs_f64());
        t
    }
}

// ---------------------------------------------------------- randomness

/// A small seeded generator (xorshift): the moments of the faults vary from
/// case to case, and a failing run can be repeated with EDGEBENCH_FAULT_SEED.
struct Rng(u64);

impl Rng {
    /// One seed per run of the suite (printed once), a stream per user.
    fn new() -> Rng {
        static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        static STREAMS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seed = *SEED.get_or_init(|| {
            let seed = std::env::var("EDGEBENCH_FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
            });
            eprintln!("fault seed: EDGEBENCH_FAULT_SEED={seed}");
            seed
        });
        let stream = STREAMS.fetch_add(1, Ordering::Relaxed);
        Rng((seed ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo + 1))
    }
}

// ------------------------------------------------------------- leak checks

/// What of ours is still there: processes (children of this process, which is
/// the subreaper of everything it started), namespaces, veths and nft tables
/// with our prefix that no live campaign holds, containers of these
/// campaigns, cgroups, and mounts under `root`.
fn leaks(root: &Path, campaigns: &[String]) -> Vec<String> {
    // A process killed a moment ago may take a moment to go.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut left = live_children();
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        left = live_children();
    }
    let mut out: Vec<String> = left.into_iter().map(|p| format!("process {p}")).collect();
    out.extend(unheld_network_names().into_iter().map(|n| format!("network {n}")));
    out.extend(containers_of(campaigns).into_iter().map(|c| format!("container {c}")));
    if let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") {
        let root = root.display().to_string();
        out.extend(mounts.lines().filter(|l| l.contains(&root)).map(|l| format!("mount {l}")));
    }
    out.extend(our_cgroups().into_iter().map(|c| format!("cgroup {c}")));
    out
}

/// Children still running, after reaping the ones that have exited (orphans
/// reparented to this subreaper are its children too).
fn live_children() -> Vec<String> {
    loop {
        match nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
            Ok(nix::sys::wait::WaitStatus::StillAlive) | Err(_) => break,
            Ok(_) => continue,
        }
    }
    children_left().into_iter().filter(|l| l.split_whitespace().nth(1) != Some("Z")).collect()
}

/// Names with our prefix (eb-XXXXXX) whose lock no live process holds.
fn unheld_network_names() -> Vec<String> {
    let mut names: HashSet<String> = HashSet::new();
    if let Ok(dir) = std::fs::read_dir("/run/netns") {
        names.extend(dir.flatten().filter_map(|e| e.file_name().into_string().ok()));
    }
    if let Ok(out) = Command::new("ip").args(["-j", "link", "show"]).output() {
        let links: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        for l in links.as_array().into_iter().flatten() {
            if let Some(n) = l["ifname"].as_str() {
                names.insert(n.trim_end_matches("-h").trim_end_matches("-n").to_string());
            }
        }
    }
    if let Ok(out) = Command::new("nft").args(["-j", "list", "tables"]).output() {
        let tables: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        for t in tables["nftables"].as_array().into_iter().flatten() {
            if let Some(n) = t["table"]["name"].as_str() {
                names.insert(n.to_string());
            }
        }
    }
    let ours = |n: &String| n.starts_with("eb-") && n.len() == 9 && n[3..].chars().all(|c| c.is_ascii_hexdigit());
    let mut unheld: Vec<String> = names.into_iter().filter(ours).filter(|n| !held(n)).collect();
    unheld.sort();
    unheld
}

/// Whether a live campaign holds the lock of `name`.
fn held(name: &str) -> bool {
    let Ok(file) = std::fs::File::open(format!("/run/edgebench/{name}.lock")) else { return false };
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(_released_on_drop) => false,
        Err(_) => true,
    }
}

fn containers_of(campaigns: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for id in campaigns {
        let Ok(list) = Command::new("docker")
            .args(["ps", "-a", "-q", "--filter", &format!("label=edgebench.campaign={id}")])
            .output()
        else {
            continue;
        };
        out.extend(String::from_utf8_lossy(&list.stdout).lines().map(|c| format!("{c} of {id}")));
    }
    out
}

/// cgroups named after us (edgebench makes none of its own: Docker's go with their containers).
fn our_cgroups() -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![(PathBuf::from("/sys/fs/cgroup"), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                if e.file_name().to_string_lossy().contains("edgebench") {
                    out.push(e.path().display().to_string());
                }
                if depth < 3 {
                    stack.push((e.path(), depth + 1));
                }
            }
        }
    }
    out
}

// ------------------------------------------------------- samples and plans

/// A stored sample: every column but `ok` and `error`, its error, ok, and its trial.
struct SampleRow {
    cols: String,
    error: String,
    ok: bool,
    trial: String,
}

const SUPERSEDED: &str = "superseded: the trial was interrupted and ran again";

struct Committed {
    samples: BTreeMap<i64, SampleRow>,
    /// Trials finished (done or failed) at the time: their samples' ok may not change.
    finished: HashSet<String>,
}

fn read_only(dir: &Path) -> Option<rusqlite::Connection> {
    let path = dir.join("results.sqlite");
    if !path.exists() {
        return None;
    }
    rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()
}

fn committed(dir: &Path) -> Committed {
    let mut c = Committed { samples: BTreeMap::new(), finished: HashSet::new() };
    let Some(conn) = read_only(dir) else { return c };
    let Ok(mut q) = conn.prepare(
        "SELECT id, runtime || '|' || variant || '|' || workload || '|' || metric || '|' || phase || '|' || firewall \
         || '|' || repetition || '|' || seq || '|' || quote(value) || '|' || unit || '|' || ts_ns, error, ok, \
         runtime || '|' || variant || '|' || workload || '|' || repetition || '|' || firewall FROM samples",
    ) else {
        return c; // no schema yet: nothing was committed
    };
    let rows = q
        .query_map([], |r| {
            Ok((r.get::<_, i64>(0)?, SampleRow { cols: r.get(1)?, error: r.get(2)?, ok: r.get(3)?, trial: r.get(4)? }))
        })
        .unwrap();
    c.samples.extend(rows.flatten());
    if let Ok(mut q) = conn.prepare(
        "SELECT runtime || '|' || variant || '|' || workload || '|' || repetition || '|' || firewall FROM trials \
         WHERE kind = 'trial' AND status IN ('done', 'failed')",
    ) {
        c.finished.extend(q.query_map([], |r| r.get::<_, String>(0)).unwrap().flatten());
    }
    c
}

/// Samples committed before a fault that are gone or changed now. The one
/// change allowed: a sample of a trial unfinished at the fault is kept but
/// marked superseded (ok 0, its error prefixed) when the trial runs again.
fn lost(before: &Committed, dir: &Path) -> Vec<String> {
    let now = committed(dir);
    let mut out = Vec::new();
    for (id, was) in &before.samples {
        let Some(is) = now.samples.get(id) else {
            out.push(format!("sample {id} gone: {}", was.cols));
            continue;
        };
        let superseded = !before.finished.contains(&was.trial)
            && !is.ok
            && is.error.starts_with(SUPERSEDED)
            && (is.error == SUPERSEDED || is.error.ends_with(&format!("; {}", was.error)));
        let same = is.error == was.error && is.ok == was.ok;
        if is.cols != was.cols || !(same || superseded) {
            out.push(format!(
                "sample {id} changed: {} ok {} {:?} -> {} ok {} {:?}",
                was.cols, was.ok, was.error, is.cols, is.ok, is.error
            ));
        }
    }
    out
}

/// What is wrong with a campaign that should have completed its plan of
/// `planned` trials exactly once, all `done` when `all_done`.
fn plan_problems(dir: &Path, planned: usize, all_done: bool) -> Vec<String> {
    let Some(conn) = read_only(dir) else { return vec!["no results file".into()] };
    let mut out = Vec::new();
    let status: String =
        conn.query_row("SELECT status FROM campaigns", [], |r| r.get(0)).unwrap_or_else(|e| format!("{e}"));
    if status != "finished" {
        out.push(format!("campaign status {status}"));
    }
    let mut q = conn.prepare("SELECT status, count(*) FROM trials WHERE kind = 'trial' GROUP BY status").unwrap();
    let counts: HashMap<String, usize> =
        q.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as usize))).unwrap().flatten().collect();
    let total: usize = counts.values().sum();
    if total != planned {
        out.push(format!("{total} trials recorded, {planned} planned: {counts:?}"));
    }
    let finished = counts.get("done").unwrap_or(&0) + counts.get("failed").unwrap_or(&0);
    if finished != total || (all_done && counts.get("done") != Some(&total)) {
        let mut q = conn
            .prepare("SELECT runtime, variant, workload, repetition, firewall, status, error FROM trials WHERE status != 'done'")
            .unwrap();
        let why: Vec<String> = q
            .query_map([], |r| {
                Ok(format!(
                    "{}|{}|{}|{}|{} {}: {}",
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?
                ))
            })
            .unwrap()
            .flatten()
            .collect();
        out.push(format!("trial statuses {counts:?}: {}", why.join("; ")));
    }
    // Each done trial measured once: one ok cold start, not two.
    let mut q = conn
        .prepare(
            "SELECT t.runtime, t.variant, t.workload, t.repetition, t.firewall, \
             (SELECT count(*) FROM samples s WHERE s.ok = 1 AND s.metric = 'cold_start' AND s.runtime = t.runtime \
              AND s.variant = t.variant AND s.workload = t.workload AND s.repetition = t.repetition \
              AND s.firewall = t.firewall) FROM trials t WHERE t.kind = 'trial' AND t.status = 'done'",
        )
        .unwrap();
    let twice = q
        .query_map([], |r| {
            Ok((
                format!(
                    "{}|{}|{}|{}|{}",
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, String>(4)?
                ),
                r.get::<_, i64>(5)?,
            ))
        })
        .unwrap()
        .flatten()
        .filter(|(_, n)| *n != 1);
    out.extend(twice.map(|(t, n)| format!("trial {t} has {n} ok cold starts")));
    out
}

fn variants(runtimes: &[&str]) -> usize {
    runtime::all().iter().filter(|r| runtimes.contains(&r.name())).map(|r| r.variants().len()).sum()
}

// ------------------------------------------ faults inside a campaign (library)

#[derive(Clone, Copy)]
enum Fault {
    /// SIGKILL to every process of the instance this long after launch returns.
    KillAfter(u64, u64),
    /// A foreign HTTP server takes the instance's port just before launch.
    TakePort,
}

/// A real runtime with a fault injected around its launch.
struct Faulty {
    inner: Box<dyn Runtime>,
    fault: Fault,
    rng: Mutex<Rng>,
    /// Labels of the launches whose fault landed (the process was still running).
    landed: Arc<Mutex<Vec<String>>>,
    /// The foreign servers (stopped at the end of the case).
    squatters: Mutex<Vec<Squatter>>,
}

impl Runtime for Faulty {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn variants(&self) -> &'static [&'static str] {
        self.inner.variants()
    }
    fn detect(&self, artifacts: &Artifacts) -> Detection {
        self.inner.detect(artifacts)
    }
    fn artifact(&self, variant: &str) -> edgebench::runtime::ArtifactKind {
        self.inner.artifact(variant)
    }
    fn notes(&self, w: Workload) -> Option<String> {
        self.inner.notes(w)
    }
    fn prepare(&self, ctx: &Context<'_>, w: Workload, v: &str) -> anyhow::Result<()> {
        self.inner.prepare(ctx, w, v)
    }
    fn serves_workloads(&self, v: &str) -> Result<(), String> {
        self.inner.serves_workloads(v)
    }
    fn prepared(&self, w: Workload, v: &str) -> Vec<runtime::ExtraResource> {
        self.inner.prepared(w, v)
    }
    fn ready_timeout(&self, v: &str) -> Duration {
        self.inner.ready_timeout(v)
    }
    fn setup(&self, ctx: &Context<'_>) -> anyhow::Result<()> {
        self.inner.setup(ctx)
    }
    fn teardown(&self, ctx: &Context<'_>) {
        self.inner.teardown(ctx)
    }
    fn network_placement(&self, v: &str) -> Placement {
        self.inner.network_placement(v)
    }
    fn start_kind(&self, v: &str) -> runtime::StartKind {
        self.inner.start_kind(v)
    }
    fn cpu_scope(&self, v: &str) -> String {
        self.inner.cpu_scope(v)
    }
    fn serving_model(&self, v: &str) -> String {
        self.inner.serving_model(v)
    }
    fn launch(&self, ctx: &Context<'_>, spec: &LaunchSpec<'_>) -> anyhow::Result<Box<dyn Instance>> {
        match self.fault {
            Fault::TakePort => {
                let squatter = Squatter::start(spec.addr);
                if squatter.is_some() {
                    self.landed.lock().unwrap().push(spec.label.clone());
                }
                self.squatters.lock().unwrap().extend(squatter);
                self.inner.launch(ctx, spec)
            }
            Fault::KillAfter(lo, hi) => {
                let instance = self.inner.launch(ctx, spec)?;
                let delay = self.rng.lock().unwrap().ms(lo, hi);
                // pidfds taken now, while the processes are surely ours: a
                // pid reused later is never signalled.
                let pidfds: Vec<i32> = instance.pids().into_iter().filter_map(pidfd_open).collect();
                let (landed, label) = (self.landed.clone(), spec.label.clone());
                std::thread::spawn(move || {
                    std::thread::sleep(delay);
                    let hit = pidfds.iter().filter(|fd| pidfd_kill(**fd)).count();
                    for fd in pidfds {
                        unsafe { libc::close(fd) };
                    }
                    if hit > 0 {
                        landed.lock().unwrap().push(label);
                    }
                });
                Ok(instance)
            }
        }
    }
}

fn pidfd_open(pid: u32) -> Option<i32> {
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    (fd >= 0).then_some(fd as i32)
}

/// SIGKILL through a pidfd; true when the process was running (not yet exited).
fn pidfd_kill(fd: i32) -> bool {
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let waitable = unsafe {
        libc::waitid(libc::P_PIDFD, fd as libc::id_t, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT)
    };
    // waitid fails (ECHILD) for a process that is not our child: then only
    // the signal's result tells; for our child, a pid of 0 means still running.
    let exited = waitable == 0 && unsafe { info.si_pid() } != 0;
    !exited && unsafe { libc::syscall(libc::SYS_pidfd_send_signal, fd, libc::SIGKILL, std::ptr::null::<u8>(), 0) } == 0
}

/// A foreign server on a port: answers every request with a 200 that is not
/// the workload's answer, until stopped.
struct Squatter {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<usize>>,
}

impl Squatter {
    fn start(addr: std::net::SocketAddr) -> Option<Squatter> {
        let listener = TcpListener::bind(addr).ok()?;
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut answered = 0;
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
                        let mut buf = [0u8; 4096];
                        let _ = s.read(&mut buf);
                        let _ =
                            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\nconnection: close\r\n\r\nsquatter");
                        answered += 1;
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            answered
        });
        Some(Squatter { stop, thread: Some(thread) })
    }

    fn stop(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

/// One campaign of `runtimes` × hello with `fault` around every launch.
fn library_case(case: &str, runtimes: &[&str], fault: Fault, reps: u32, requests: usize) -> Row {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("c");
    let mut options = small_options(runtimes, &[Workload::HELLO], &dir);
    options.reps = reps;
    options.requests = requests;
    options.metrics = vec![edgebench::campaign::Metric::ColdStart, edgebench::campaign::Metric::LatencyKeepalive];
    options.ready_timeout_ms = Some(5000);
    let landed = Arc::new(Mutex::new(Vec::new()));
    // Leaked (a test process): the campaign owns boxes, the case inspects them after.
    let faulty: Vec<&'static Faulty> = runtime::all()
        .into_iter()
        .filter(|r| runtimes.contains(&r.name()))
        .map(|inner| {
            &*Box::leak(Box::new(Faulty {
                inner,
                fault,
                rng: Mutex::new(Rng::new()),
                landed: landed.clone(),
                squatters: Mutex::new(Vec::new()),
            }))
        })
        .collect();
    let backends: Vec<Box<dyn Runtime>> = faulty.iter().map(|f| Box::new(Shared(f)) as Box<dyn Runtime>).collect();
    let mut campaign = Campaign::create(options, artifacts()).unwrap().with_backends(backends);
    let id = campaign.id.clone();
    let outcome = campaign.run(&AtomicBool::new(false));
    drop(campaign);
    std::thread::sleep(Duration::from_millis(400)); // late kill threads land or give up
    let mut answered = 0;
    for f in &faulty {
        for s in f.squatters.lock().unwrap().drain(..) {
            answered += s.stop();
        }
    }
    let landed: HashSet<String> = landed.lock().unwrap().iter().cloned().collect();
    let mut row = Row { case: case.into(), faults: landed.len(), ..Row::default() };
    match outcome {
        Ok(Outcome::Finished) => {}
        other => row.wrong.push(format!("campaign: {other:?}")),
    }
    row.wrong.extend(plan_problems(&dir, variants(runtimes) * reps as usize, false));
    // Every trial whose fault landed failed, with the reason; the others were measured.
    let conn = read_only(&dir).unwrap();
    let mut q = conn.prepare("SELECT runtime, variant, workload, repetition, status, error FROM trials").unwrap();
    let trials: Vec<(String, String, String, u32, String, String)> = q
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .unwrap()
        .flatten()
        .collect();
    for (runtime, variant, workload, rep, status, error) in trials {
        let label =
            edgebench::campaign::TrialKey::new(&runtime, &variant, Workload::from_name(&workload).unwrap(), rep)
                .label();
        let hit = landed.contains(&label);
        if hit && status != "failed" {
            row.wrong.push(format!("{label}: its fault landed but it is stored as {status}"));
        }
        if !hit && status != "done" {
            row.wrong.push(format!("{label}: no fault landed but it is stored as {status}: {error}"));
        }
        if hit && error.is_empty() {
            row.wrong.push(format!("{label}: failed without a reason"));
        }
    }
    if matches!(fault, Fault::TakePort) {
        // Never measured against the foreign server: no ok cold start at all.
        let ok: i64 = conn
            .query_row("SELECT count(*) FROM samples WHERE metric = 'cold_start' AND ok = 1", [], |r| r.get(0))
            .unwrap();
        if ok != 0 {
            row.wrong.push(format!("{ok} cold starts stored as ok on a port a foreign server held"));
        }
        if answered == 0 {
            row.wrong.push("the foreign servers were never asked: the fault did not bite".into());
        }
    }
    row.leaks = leaks(root.path(), &[id]);
    row
}

/// Lets the campaign own a box while the case keeps the runtime to inspect it.
struct Shared(&'static Faulty);

impl Runtime for Shared {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn variants(&self) -> &'static [&'static str] {
        self.0.variants()
    }
    fn detect(&self, a: &Artifacts) -> Detection {
        self.0.detect(a)
    }
    fn artifact(&self, variant: &str) -> edgebench::runtime::ArtifactKind {
        self.0.artifact(variant)
    }
    fn notes(&self, w: Workload) -> Option<String> {
        self.0.notes(w)
    }
    fn prepare(&self, ctx: &Context<'_>, w: Workload, v: &str) -> anyhow::Result<()> {
        self.0.prepare(ctx, w, v)
    }
    fn serves_workloads(&self, v: &str) -> Result<(), String> {
        self.0.serves_workloads(v)
    }
    fn prepared(&self, w: Workload, v: &str) -> Vec<runtime::ExtraResource> {
        self.0.prepared(w, v)
    }
    fn ready_timeout(&self, v: &str) -> Duration {
        self.0.ready_timeout(v)
    }
    fn setup(&self, ctx: &Context<'_>) -> anyhow::Result<()> {
        self.0.setup(ctx)
    }
    fn teardown(&self, ctx: &Context<'_>) {
        self.0.teardown(ctx)
    }
    fn network_placement(&self, v: &str) -> Placement {
        self.0.network_placement(v)
    }
    fn start_kind(&self, v: &str) -> runtime::StartKind {
        self.0.start_kind(v)
    }
    fn cpu_scope(&self, v: &str) -> String {
        self.0.cpu_scope(v)
    }
    fn serving_model(&self, v: &str) -> String {
        self.0.serving_model(v)
    }
    fn launch(&self, ctx: &Context<'_>, spec: &LaunchSpec<'_>) -> anyhow::Result<Box<dyn Instance>> {
        self.0.launch(ctx, spec)
    }
}

// ------------------------------------------------ faults through the binary

fn edgebench(args: &[String], env: &[(String, String)], log: &Path) -> Child {
    let out = std::fs::File::create(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_edgebench"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env_remove("RUST_BACKTRACE")
        // Its own process group, as a shell's job: SIGINT goes to the group, as Ctrl-C does.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap()
}

/// Waits for `child`, at most `limit` (then kills it and says so).
fn finish(child: &mut Child, limit: Duration) -> Result<std::process::ExitStatus, String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Ok(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("did not end within {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Signal {
    Int,
    Term,
    Kill,
}

/// A campaign through the binary, hit by `signal` at random moments, resumed
/// after each hit until it completes. Returns the hits that landed.
struct SignalCase<'a> {
    name: &'a str,
    signal: Signal,
    /// Hits wanted (each run gets one, at a random moment, while it runs).
    hits: usize,
    runtimes: &'a [&'a str],
    workloads: &'a str,
    firewall: &'a str,
    reps: u32,
    /// The window of the random moment, from the launch of edgebench.
    window_ms: (u64, u64),
}

fn signal_case(c: &SignalCase<'_>, rng: &mut Rng) -> Row {
    let root = tempfile::tempdir().unwrap();
    let mut row = Row { case: c.name.into(), ..Row::default() };
    let mut ids = Vec::new();
    // Campaigns until enough hits landed (a run may end before its moment comes).
    for n in 1..=6 {
        if row.faults >= c.hits {
            break;
        }
        let dir = root.path().join(format!("c{n}"));
        ids.extend(signalled_campaign(c, &dir, rng, &mut row));
    }
    row.leaks.extend(leaks(root.path(), &ids));
    row
}

/// One campaign, hit at a random moment of each run while hits are wanted,
/// resumed until it completes; returns its id.
fn signalled_campaign(c: &SignalCase<'_>, dir: &Path, rng: &mut Rng, row: &mut Row) -> Option<String> {
    let d = dir.display().to_string();
    let first: Vec<String> = [
        "run",
        "--no-build",
        "--runtimes",
        &c.runtimes.join(","),
        "--workloads",
        c.workloads,
        "--metrics",
        "cold_start,warm_start,latency",
        "--reps",
        &c.reps.to_string(),
        "--requests",
        "50",
        "--warm-starts",
        "2",
        "--no-warmup",
        "--settle-max-ms",
        "30",
        "--firewall",
        c.firewall,
        "--seed",
        &(rng.next() >> 1).to_string(),
        "--out",
        &d,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let resume: Vec<String> = ["run", "--no-build", "--resume", &d].iter().map(|s| s.to_string()).collect();
    let profiles = c.firewall.split(',').count();
    let planned = variants(c.runtimes) * c.workloads.split(',').count() * c.reps as usize * profiles;
    let campaign_id =
        || read_only(dir).and_then(|conn| conn.query_row("SELECT id FROM campaigns", [], |r| r.get(0)).ok());
    for run in 1..=c.hits + 8 {
        let before = committed(dir);
        // A run killed before its campaign began is started again, not resumed.
        let args = if campaign_id().is_some() { &resume } else { &first };
        let log = dir.with_extension(format!("run-{run}.log"));
        let mut child = edgebench(args, &[], &log);
        let mut hit = false;
        // Whether edgebench had installed its handler when hit (it says
        // "campaign ID in DIR" just before): then it must end as interrupted.
        let mut handled = false;
        if row.faults < c.hits {
            let at = rng.ms(c.window_ms.0, c.window_ms.1);
            let t0 = Instant::now();
            while t0.elapsed() < at && child.try_wait().unwrap().is_none() {
                std::thread::sleep(Duration::from_millis(5));
            }
            if child.try_wait().unwrap().is_none() {
                handled = std::fs::read_to_string(&log).unwrap_or_default().contains("edgebench: campaign ");
                let pid = nix::unistd::Pid::from_raw(child.id() as i32);
                let sent = match c.signal {
                    Signal::Int => nix::sys::signal::killpg(pid, nix::sys::signal::SIGINT),
                    Signal::Term => nix::sys::signal::kill(pid, nix::sys::signal::SIGTERM),
                    Signal::Kill => nix::sys::signal::kill(pid, nix::sys::signal::SIGKILL),
                };
                hit = sent.is_ok();
            }
        }
        let status = match finish(&mut child, Duration::from_secs(180)) {
            Ok(s) => s,
            Err(e) => {
                row.wrong.push(format!("run {run}: {e}"));
                return campaign_id();
            }
        };
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        use std::os::unix::process::ExitStatusExt;
        let expected = match (hit, c.signal) {
            (false, _) => status.success(),
            // Interrupted with the way to resume, or finished just before, or
            // hit before the handler was installed.
            (true, Signal::Int | Signal::Term) => {
                (status.code() == Some(130) && text.contains("--resume"))
                    || status.success()
                    || (!handled && status.signal().is_some())
            }
            (true, Signal::Kill) => status.signal() == Some(9) || status.success(),
        };
        if !expected {
            row.wrong.push(format!("run {run} (hit: {hit}): {status}: {}", tail(&text)));
        }
        if text.contains("panicked") {
            row.wrong.push(format!("run {run} panicked: {}", tail(&text)));
        }
        if hit && !status.success() {
            row.faults += 1;
        }
        if c.signal == Signal::Kill && hit {
            // Instances die with edgebench (parent-death signal), at once.
            std::thread::sleep(Duration::from_millis(300));
            row.leaks.extend(live_children().into_iter().map(|p| format!("after SIGKILL: process {p}")));
        }
        row.lost.extend(lost(&before, dir));
        if status.success() {
            row.wrong.extend(plan_problems(dir, planned, true));
            return campaign_id();
        }
    }
    row.wrong.push(format!("{d}: not finished after {} runs", c.hits + 8));
    campaign_id()
}

/// The end of a run's output, without the report's table rows.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('|')).collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// The wasmtime CLI replaced by a script that answers `--version` and every
/// other command as the real one, but `serve` as `mode` says.
fn bad_wasmtime(dir: &Path, real: &Path, mode: &str) -> PathBuf {
    let serve = match mode {
        "exits" => "echo 'wasmtime: cannot start' >&2; exit 3".to_string(),
        // A child of its own that hangs too: stopping must take the whole group.
        "hangs" => "sleep 600 & sleep 600".to_string(),
        // Binary garbage on both streams, and garbage to whoever connects.
        "garbage" => "head -c 3000 /dev/urandom; head -c 3000 /dev/urandom >&2\n\
             while [ \"$1\" != --addr ]; do shift; done\n\
             exec python3 -c 'import os,socket,sys\n\
h,p=sys.argv[1].rsplit(\":\",1); s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
s.bind((h,int(p))); s.listen(64)\n\
while True:\n c,_=s.accept(); c.sendall(os.urandom(700)); c.close()' \"$2\""
            .to_string(),
        _ => unreachable!(),
    };
    let path = dir.join(format!("wasmtime-{mode}"));
    let script = format!("#!/bin/sh\nif [ \"$1\" = serve ]; then\n{serve}\nfi\nexec {} \"$@\"\n", real.display());
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

fn bad_binary_case(mode: &str, real: &Path) -> Row {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("c");
    let script = bad_wasmtime(root.path(), real, mode);
    let args: Vec<String> = [
        "run",
        "--no-build",
        "--runtimes",
        "wasmtime,native",
        "--workloads",
        "hello",
        "--metrics",
        "cold_start,latency",
        "--reps",
        "2",
        "--requests",
        "20",
        "--no-warmup",
        "--settle-max-ms",
        "30",
        "--ready-timeout-ms",
        "1500",
        "--out",
        &dir.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let log = root.path().join("run.log");
    let env = [("EDGEBENCH_WASMTIME".to_string(), script.display().to_string())];
    let mut child = edgebench(&args, &env, &log);
    let mut row = Row { case: format!("wasmtime binary {mode}"), ..Row::default() };
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    match finish(&mut child, Duration::from_secs(120)) {
        Ok(s) if s.success() => {}
        Ok(s) => row.wrong.push(format!("{s}: {}", tail(&text()))),
        Err(e) => row.wrong.push(e),
    }
    let planned = variants(&["wasmtime", "native"]) * 2;
    row.wrong.extend(plan_problems(&dir, planned, false));
    if let Some(conn) = read_only(&dir) {
        let mut q = conn.prepare("SELECT runtime, status, error FROM trials").unwrap();
        for (runtime, status, error) in q
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
            .unwrap()
            .flatten()
        {
            match runtime.as_str() {
                "wasmtime" if status == "failed" && !error.is_empty() => row.faults += 1,
                "native" if status == "done" => {}
                _ => row.wrong.push(format!("{runtime}: {status} {error}")),
            }
        }
    }
    let id = read_only(&dir).and_then(|c| c.query_row("SELECT id FROM campaigns", [], |r| r.get(0)).ok());
    row.leaks = leaks(root.path(), &id.into_iter().collect::<Vec<_>>());
    row
}

/// The results on a tmpfs of `size`: the campaign stops with the file named
/// when it is full, keeps what it stored, and completes once there is room.
fn full_disk_case(sizes: &[&str]) -> Row {
    let mut row = Row { case: "results on a full filesystem".into(), ..Row::default() };
    for size in sizes {
        let root = tempfile::tempdir().unwrap();
        let mnt = root.path().join("small");
        std::fs::create_dir(&mnt).unwrap();
        let mounted =
            Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(&mnt).status();
        if !mounted.is_ok_and(|s| s.success()) {
            skip("tmpfs", "cannot mount a tmpfs (not root?): the full-disk case is not run");
            return row;
        }
        let dir = mnt.join("c");
        let d = dir.display().to_string();
        let args: Vec<String> = [
            "run",
            "--no-build",
            "--runtimes",
            "native,wasmtime-embedded",
            "--workloads",
            "hello,kv",
            "--metrics",
            "cold_start,latency",
            "--reps",
            "4",
            "--requests",
            "60",
            "--no-warmup",
            "--settle-max-ms",
            "30",
            "--out",
            &d,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let log = root.path().join("run.log");
        let mut child = edgebench(&args, &[], &log);
        let status = finish(&mut child, Duration::from_secs(120));
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        match status {
            Ok(s) if s.code() == Some(1) && text.contains("cannot write") && text.contains(&d) => row.faults += 1,
            Ok(s) if s.success() => row.wrong.push(format!("{size}: the campaign fit; make the tmpfs smaller")),
            other => row.wrong.push(format!("{size}: {other:?}: {}", tail(&text))),
        }
        let before = committed(&dir);
        let grown = Command::new("mount").args(["-o", "remount,size=64m"]).arg(&mnt).status().unwrap();
        assert!(grown.success());
        let resume: Vec<String> = ["run", "--no-build", "--resume", &d].iter().map(|s| s.to_string()).collect();
        let began = read_only(&dir).is_some_and(|c| c.query_row("SELECT id FROM campaigns", [], |_| Ok(())).is_ok());
        // Full before its first row: the same command again (resume says so).
        let mut child = edgebench(if began { &resume } else { &args }, &[], &log);
        match finish(&mut child, Duration::from_secs(120)) {
            Ok(s) if s.success() => {}
            other => row.wrong.push(format!(
                "{size}: resume: {other:?}: {}",
                tail(&std::fs::read_to_string(&log).unwrap_or_default())
            )),
        }
        row.lost.extend(lost(&before, &dir));
        row.wrong.extend(plan_problems(&dir, variants(&["native", "wasmtime-embedded"]) * 2 * 4, true));
        let id = read_only(&dir).and_then(|c| c.query_row("SELECT id FROM campaigns", [], |r| r.get(0)).ok());
        let unmounted = Command::new("umount").arg(&mnt).status().unwrap();
        assert!(unmounted.success());
        row.leaks.extend(leaks(root.path(), &id.into_iter().collect::<Vec<_>>()));
    }
    row
}

/// `report` on a read-only copy: writing into it fails with the path named;
/// `--out` elsewhere works; the copy is unchanged.
fn read_only_report_case() -> Row {
    let mut row = Row { case: "report on read-only results".into(), ..Row::default() };
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("c");
    let (outcome, _) = run_campaign(edgebench::campaign::Options {
        metrics: vec![edgebench::campaign::Metric::ColdStart],
        ..small_options(&["native"], &[Workload::HELLO], &dir)
    });
    assert_eq!(outcome, Outcome::Finished);
    let ro = root.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    let bind = |args: &[&str], target: &Path| Command::new("mount").args(args).arg(target).status();
    if !Command::new("mount").arg("--bind").arg(&dir).arg(&ro).status().is_ok_and(|s| s.success()) {
        skip("tmpfs", "cannot bind-mount (not root?): the read-only report case is not run");
        return row;
    }
    assert!(bind(&["-o", "remount,bind,ro"], &ro).unwrap().success());
    let before = snapshot_files(&ro);
    let into_itself = Command::new(env!("CARGO_BIN_EXE_edgebench")).arg("report").arg(&ro).output().unwrap();
    let stderr = String::from_utf8_lossy(&into_itself.stderr);
    row.faults += 1;
    if into_itself.status.code() != Some(1) || !stderr.contains(&ro.display().to_string()) || !stderr.contains("--out")
    {
        row.wrong.push(format!("report into read-only: {}: {stderr}", into_itself.status));
    }
    let elsewhere = root.path().join("elsewhere");
    let out = Command::new(env!("CARGO_BIN_EXE_edgebench"))
        .arg("report")
        .arg(&ro)
        .arg("--out")
        .arg(&elsewhere)
        .output()
        .unwrap();
    row.faults += 1;
    if !out.status.success() || !elsewhere.join("report.html").exists() {
        row.wrong.push(format!("report --out: {}: {}", out.status, String::from_utf8_lossy(&out.stderr)));
    }
    if snapshot_files(&ro) != before {
        row.lost.push("the read-only campaign changed".into());
    }
    assert!(Command::new("umount").arg(&ro).status().unwrap().success());
    row.leaks = leaks(root.path(), &[]);
    row
}

fn snapshot_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect()
}

// ------------------------------------------------------------------ the suite

#[test]
fn fault_injection_suite() {
    // Orphans of a SIGKILLed edgebench come back to this process, where the
    // leak check sees them (instead of to init, where it would not).
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    artifacts();
    let mut rng = Rng::new();
    let mut tally = Tally { rows: Vec::new(), started: Instant::now() };
    let wasm = ["native", "wasmtime-embedded"];
    let mut process_runtimes = vec!["native", "wasmtime-embedded"];
    if available("wasmtime") {
        process_runtimes.push("wasmtime");
    }

    // EDGEBENCH_FAULT_CASES=sub1,sub2 runs only the cases whose name has one of them (to debug one).
    let filter = std::env::var("EDGEBENCH_FAULT_CASES").ok();
    let wanted = |name: &str| filter.as_ref().is_none_or(|f| f.split(',').any(|p| name.contains(p)));
    let mut add = |row: Option<Row>| tally.rows.extend(row);

    let kill_boot = "instance killed mid-boot";
    add(wanted(kill_boot).then(|| library_case(kill_boot, &process_runtimes, Fault::KillAfter(0, 2), 4, 200)));
    let kill_load = "instance killed mid-load";
    add(wanted(kill_load).then(|| library_case(kill_load, &process_runtimes, Fault::KillAfter(40, 200), 4, 4000)));
    let port = "port taken by a foreign server";
    add(wanted(port).then(|| library_case(port, &process_runtimes, Fault::TakePort, 3, 50)));

    if let Some(real) = runtime::all().iter().find(|r| r.name() == "wasmtime").and_then(|r| {
        let d = r.detect(&Artifacts::from_env());
        d.available.then_some(d.path).flatten()
    }) {
        for mode in ["exits", "hangs", "garbage"] {
            add(wanted(&format!("wasmtime binary {mode}")).then(|| bad_binary_case(mode, &real)));
        }
    }

    let firewall = match edgebench::network::available() {
        Ok(_) => "off,host",
        Err(why) => {
            skip("nftables", &format!("signal cases run without firewall profiles: {why}"));
            "off"
        }
    };
    let signals = |name, signal| SignalCase {
        name,
        signal,
        hits: 14,
        runtimes: &wasm,
        workloads: "hello,kv",
        firewall,
        reps: 2,
        window_ms: (30, 2500),
    };
    for (name, signal) in [
        ("SIGINT, then --resume", Signal::Int),
        ("SIGTERM, then --resume", Signal::Term),
        ("SIGKILL of edgebench, then --resume", Signal::Kill),
    ] {
        add(wanted(name).then(|| signal_case(&signals(name, signal), &mut rng)));
    }
    let docker = SignalCase {
        name: "SIGKILL with Docker containers, then --resume",
        signal: Signal::Kill,
        hits: 4,
        runtimes: &["docker"],
        workloads: "hello",
        firewall: "off",
        reps: 2,
        window_ms: (1500, 6000),
    };
    add((wanted(docker.name) && available("docker")).then(|| signal_case(&docker, &mut rng)));
    add(wanted("full filesystem").then(|| full_disk_case(&["200k", "260k", "340k", "480k", "700k"])));
    add(wanted("read-only").then(read_only_report_case));

    let table = tally.table();
    eprintln!("\n{table}");
    let details: Vec<String> = tally
        .rows
        .iter()
        .flat_map(|r| r.leaks.iter().chain(&r.lost).chain(&r.wrong).map(move |x| format!("{}: {x}", r.case)))
        .collect();
    let faults: usize = tally.rows.iter().map(|r| r.faults).sum();
    assert!(details.is_empty(), "{table}\n{}", details.join("\n"));
    assert!(filter.is_some() || faults >= 100, "only {faults} faults landed:\n{table}");
}
