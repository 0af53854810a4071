//! Command line: `doctor`, `list`, `build`, `run`, `report`, `compare`, `merge`, `conformance`.

use crate::artifacts::Artifacts;
use crate::campaign::{self, Campaign, Options, Outcome, Settings};
use crate::runtime::{self, Context};
use crate::{conformance, doctor, report};
use anyhow::{bail, Context as _, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "edgebench", version, about = "Which runtime should I use at the edge? Measures them side by side.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Lists every runtime: found (version, path), or not found and how to get it.
    Doctor {
        /// Ask the agent on this host instead, ssh://[user@]host[:port] (as `run --target`).
        #[arg(long, value_name = "URL")]
        target: Option<String>,
        /// With --target: an ssh_config file for the connection (ssh -F).
        #[arg(long, value_name = "FILE", requires = "target")]
        ssh_config: Option<PathBuf>,
        /// With --target: the command that starts the agent there [default: edgebench agent].
        #[arg(long, value_name = "COMMAND", requires = "target")]
        agent_command: Option<String>,
        /// Only writes to FILE the configuration of the dockerd edgebench starts when none runs:
        /// the host's /etc/docker/daemon.json plus gVisor's runtimes (where runsc is installed),
        /// for a dockerd started by hand with --config-file FILE (as scripts/test.sh does).
        #[arg(long, value_name = "FILE", conflicts_with = "target")]
        dockerd_config: Option<PathBuf>,
    },
    /// Lists every runtime:variant, workload, metric and firewall profile a campaign can name.
    List {
        /// Also list the workloads this campaign file declares.
        #[arg(long, value_name = "FILE")]
        campaign: Option<PathBuf>,
    },
    /// Builds every workload artifact (adds the rustup targets it needs).
    Build {
        /// Cross-build for an arm64 board instead: `aarch64` (aarch64-unknown-linux-musl).
        /// Everything lands in target/edgebench-aarch64/, ready to copy.
        #[arg(long, value_name = "ARCH")]
        target: Option<String>,
    },
    /// Runs a campaign (default: every runtime detected, every workload) and writes its report.
    Run(Box<RunArgs>),
    /// Writes report.html, report.md and summary.csv for a campaign directory.
    Report {
        /// A directory written by `edgebench run` or `edgebench merge` (only read: it may be
        /// read-only); a merged one gets its fleet report and every host's report again.
        dir: PathBuf,
        /// Where to write the report (default: DIR).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Compares two campaigns cell by cell: what changed, and whether it is significant.
    Compare {
        /// The reference campaign directory.
        a: PathBuf,
        /// The campaign compared with it.
        b: PathBuf,
        /// Where to write compare.md, compare.html and compare.json (default: B).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print the comparison as JSON (as compare.json) instead of the text table.
        #[arg(long)]
        json: bool,
    },
    /// The runtime side of `run --target ssh://…`, started by the client over SSH: speaks only its
    /// line-delimited JSON protocol on stdin/stdout, opens no port, and stops everything it started
    /// when the session ends.
    Agent {
        /// The address instances listen on (default: the address the client reached SSH at, from
        /// SSH_CONNECTION).
        #[arg(long, value_name = "IP")]
        listen: Option<std::net::IpAddr>,
    },
    /// Merges campaigns run on several hosts into one fleet directory: one results file with a
    /// `hosts` table, each host's own report under DIR/hosts/HOST, and the fleet report.
    Merge {
        /// Campaign directories, each PATH or PATH=HOST (default host name: the campaign's
        /// host_label, else its remote target's hostname, else its hostname).
        #[arg(value_name = "SOURCE", required = true)]
        sources: Vec<String>,
        /// A new or empty directory for the fleet.
        #[arg(long, value_name = "DIR", required = true)]
        out: PathBuf,
    },
    /// Checks that every runtime answers every workload's requests exactly like the workload core.
    Conformance {
        /// Comma-separated runtimes (default: all detected).
        #[arg(long)]
        runtimes: Option<String>,
        /// Also check the workloads this campaign file declares (against their declared answers).
        #[arg(long, value_name = "FILE")]
        campaign: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// A campaign file (TOML): the study's settings, each key a flag below in snake_case (README:
    /// "Campaign files"); flags given here override it. Every campaign writes the settings it ran
    /// with to DIR/campaign.toml, which this option runs again.
    #[arg(long, value_name = "FILE")]
    pub campaign: Option<PathBuf>,
    /// Comma-separated runtimes, each `runtime` or `runtime:variant` such as docker:host (default:
    /// all; missing ones are reported as not measured).
    #[arg(long)]
    pub runtimes: Option<String>,
    /// Comma-separated workloads: hello, cpu, echo, kv (default: all).
    #[arg(long)]
    pub workloads: Option<String>,
    /// Comma-separated metrics: cold_start, warm_start, latency, memory, cpu, resources, throughput,
    /// scaling, all (default: cold_start, warm_start, latency, memory, cpu).
    #[arg(long)]
    pub metrics: Option<String>,
    /// Trials (cold starts) per runtime × variant × workload; with --precision, the minimum
    /// [default: 10].
    #[arg(long, allow_negative_numbers = true)]
    pub reps: Option<u32>,
    /// Adaptive repetitions: after --reps, more trials for a configuration until the 95% interval
    /// of each key cell's per-trial median is within ± this of the median, e.g. 5% or 2%; off runs
    /// exactly --reps [default: 5%].
    #[arg(long, value_name = "PERCENT")]
    pub precision: Option<String>,
    /// Adaptive repetitions stop at this many trials per configuration [default: 40].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max_reps: Option<u32>,
    /// Adaptive repetitions are scheduled, widest intervals first, only while the campaign has run
    /// less than this, e.g. 10m, 600s, 1h, or off; the --reps trials always run [default: 10m].
    #[arg(long, value_name = "TIME")]
    pub budget: Option<String>,
    /// Measured requests per latency run [default: 200].
    #[arg(long, allow_negative_numbers = true)]
    pub requests: Option<usize>,
    /// Warm starts per trial [default: 20].
    #[arg(long, allow_negative_numbers = true)]
    pub warm_starts: Option<usize>,
    /// Seed of the trial order (default: drawn from the clock, and stored).
    #[arg(long, allow_negative_numbers = true)]
    pub seed: Option<u64>,
    /// Campaign directory (default: results/<campaign id>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue an interrupted campaign in DIR with its stored options (any option that would change
    /// them is refused).
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with_all = [
            "campaign", "runtimes", "workloads", "metrics", "out", "reps", "precision", "max_reps", "budget", "requests", "warm_starts", "seed",
            "no_warmup", "connections", "load_duration_ms", "slo_p99_ms", "scaling_max", "density_max", "tenants_max",
            "memory_budget_mib", "firewall", "edge_profile", "cpus", "settle_max_ms", "ready_timeout_ms", "baseline",
        ]
    )]
    pub resume: Option<PathBuf>,
    /// With --resume: go on although the artifacts differ from those the campaign began with (each
    /// run's artifacts are stored).
    #[arg(long, requires = "resume")]
    pub allow_changed_artifacts: bool,
    /// Do not build artifacts first (fails if any is missing).
    #[arg(long)]
    pub no_build: bool,
    /// Run the runtimes on another host, ssh://[user@]host[:port], through `edgebench agent` there;
    /// the probe and load generator run here and reach the instances over the network. Nothing is
    /// built here: the target needs edgebench and its artifacts (`edgebench build` there).
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// With --target: an ssh_config file for the connection (ssh -F).
    #[arg(long, value_name = "FILE", requires = "target")]
    pub ssh_config: Option<PathBuf>,
    /// With --target: the command that starts the agent on the target [default: edgebench agent].
    #[arg(long, value_name = "COMMAND", requires = "target")]
    pub agent_command: Option<String>,
    /// The Firecracker binary (default: EDGEBENCH_FIRECRACKER, else `firecracker` on PATH).
    #[arg(long, value_name = "PATH")]
    pub firecracker_bin: Option<PathBuf>,
    /// A guest kernel for qemu-microvm instead of Debian's (EDGEBENCH_VM_KERNEL);
    /// it must have virtio-mmio and virtio-net built in.
    #[arg(long, value_name = "PATH")]
    pub vm_kernel: Option<PathBuf>,
    /// Skip the unrecorded warm-up launch of each configuration.
    #[arg(long)]
    pub no_warmup: bool,
    /// Throughput: connections of the closed and open loops [default: 16].
    #[arg(long, allow_negative_numbers = true)]
    pub connections: Option<usize>,
    /// Throughput: length of the closed-loop run and of each open-loop step, in ms [default: 2000].
    #[arg(long, allow_negative_numbers = true)]
    pub load_duration_ms: Option<u64>,
    /// Throughput and density: the latency objective, p99 in ms [default: 10].
    #[arg(long, allow_negative_numbers = true)]
    pub slo_p99_ms: Option<f64>,
    /// Scaling: concurrent starts up to this K (1, 2, 4, …) [default: 16].
    #[arg(long, allow_negative_numbers = true)]
    pub scaling_max: Option<usize>,
    /// Scaling: density stops at this many instances [default: 64].
    #[arg(long, allow_negative_numbers = true)]
    pub density_max: Option<usize>,
    /// Scaling: density of a runtime with many tenants per instance (the embedded host) stops at
    /// this many tenants [default: 4000].
    #[arg(long, allow_negative_numbers = true)]
    pub tenants_max: Option<usize>,
    /// Scaling: density stops when the instances' PSS exceeds this (MiB) [default: 4096].
    #[arg(long, allow_negative_numbers = true)]
    pub memory_budget_mib: Option<u64>,
    /// Comma-separated firewall profiles, each a factor of the campaign: off, host, rules-N, set-N
    /// (N = 10, 100, 1000, 10000), each but off also with -notrack. Any profile but off runs every
    /// runtime in a network namespace of its own behind a veth (off included, with no rules)
    /// [default: off].
    #[arg(long)]
    pub firewall: Option<String>,
    /// Comma-separated edge profiles, each a factor of the campaign: none, cpu-F (a CPU quota of F
    /// CPUs, e.g. cpu-0.5), mem-Nm (a memory cap of N MiB, e.g. mem-128m), net-lan, net-4g (an
    /// emulated link between client and instance); every instance process is born in the profile's
    /// cgroup, containers get the same limits from Docker [default: none].
    #[arg(long, value_name = "PROFILES")]
    pub edge_profile: Option<String>,
    /// Where the client (probe, load generator) and the runtimes run: auto (on ≥ 2 CPUs, disjoint
    /// sets: one CPU in four for the client, the rest for the runtimes), shared (both on every CPU),
    /// or CLIENT/SUT CPU lists such as 0/1-3 [default: auto].
    #[arg(long)]
    pub cpus: Option<String>,
    /// Before each trial, wait at most this many ms for the runtime CPUs to be quiet after the
    /// previous teardown (the wait is stored as `settle`) [default: 2000].
    #[arg(long, allow_negative_numbers = true)]
    pub settle_max_ms: Option<u64>,
    /// How long a start may take before it counts as failed, in ms (default: each runtime's own
    /// limit: 30 s for most, longer for micro-VMs).
    #[arg(long, value_name = "MS", allow_negative_numbers = true)]
    pub ready_timeout_ms: Option<u64>,
    /// The runtime every ratio and significance test is against [default: native].
    #[arg(long)]
    pub baseline: Option<String>,
}

impl RunArgs {
    /// The settings given as flags (a comma-separated flag becomes a list).
    fn flag_settings(&self) -> Settings {
        let list = |s: &Option<String>| s.as_ref().map(|s| s.split(',').map(str::to_string).collect::<Vec<_>>());
        Settings {
            runtimes: list(&self.runtimes),
            workloads: list(&self.workloads),
            metrics: list(&self.metrics),
            reps: self.reps,
            precision: self.precision.clone(),
            max_reps: self.max_reps,
            budget: self.budget.clone(),
            requests: self.requests,
            warm_starts: self.warm_starts,
            seed: self.seed,
            out: self.out.clone(),
            warmup: self.no_warmup.then_some(false),
            connections: self.connections,
            load_duration_ms: self.load_duration_ms,
            search_steps: None,
            slo_p99_ms: self.slo_p99_ms,
            scaling_reps: None,
            scaling_max: self.scaling_max,
            density_max: self.density_max,
            tenants_max: self.tenants_max,
            memory_budget_mib: self.memory_budget_mib,
            firewall: list(&self.firewall),
            edge_profile: list(&self.edge_profile),
            cpus: self.cpus.clone(),
            settle_max_ms: self.settle_max_ms,
            ready_timeout_ms: self.ready_timeout_ms,
            baseline: self.baseline.clone(),
            workload: None,
        }
    }

    pub fn options(&self) -> Result<Options> {
        // The micro-VM backends read these when constructed (runtime::all).
        if let Some(bin) = &self.firecracker_bin {
            if !runtime::is_executable(bin) {
                bail!("--firecracker-bin {}: not an executable file", bin.display());
            }
            std::env::set_var("EDGEBENCH_FIRECRACKER", bin);
        }
        if let Some(kernel) = &self.vm_kernel {
            if !kernel.is_file() {
                bail!(
                    "--vm-kernel {}: no such file (pass a kernel image, or omit it to boot Debian's)",
                    kernel.display()
                );
            }
            std::env::set_var("EDGEBENCH_VM_KERNEL", kernel);
        }
        // The campaign is written back as TOML, whose integers are signed 64-bit.
        if self.seed.is_some_and(|s| s > i64::MAX as u64) {
            bail!(
                "--seed must be at most {} (it is stored in DIR/campaign.toml, whose integers are signed 64-bit)",
                i64::MAX
            );
        }
        let flags = self.flag_settings();
        let file = match &self.campaign {
            Some(path) => Some((path, Settings::read(path)?)),
            None => None,
        };
        let merged = match &file {
            Some((_, from_file)) => from_file.overridden_by(&flags),
            None => flags.clone(),
        };
        // An error names a setting as the user gave it: the flag, or the file's key.
        let (flag_keys, file_keys) = (flags.keys(), file.as_ref().map(|(_, f)| f.keys()).unwrap_or_default());
        let named = |key: &str| -> String {
            match &file {
                Some((path, _)) if file_keys.iter().any(|k| k == key) && !flag_keys.iter().any(|k| k == key) => {
                    format!("`{key}` in {}", path.display())
                }
                _ => format!("--{}", key.replace('_', "-")),
            }
        };
        let backends = runtime::all();
        let known: Vec<(&str, &[&str])> = backends.iter().map(|r| (r.name(), r.variants())).collect();
        merged.resolve(&named, &known, || chrono::Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64)
    }
}

/// What the user asked for is wrong (bad option value, unknown name, a
/// directory that is not a campaign): exit code 2, as for clap's own errors.
#[derive(Debug)]
pub struct Usage(pub anyhow::Error);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for Usage {}

fn usage(e: anyhow::Error) -> anyhow::Error {
    Usage(e).into()
}

/// The campaign was interrupted (Ctrl-C): exit code 130, as a shell reports SIGINT.
#[derive(Debug)]
pub struct Interrupted(pub String);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Interrupted {}

/// `compare` found cells that changed (significant and beyond the noise
/// threshold): exit code 3, so that a script or CI can act on it.
#[derive(Debug)]
pub struct Changed(pub usize);

impl std::fmt::Display for Changed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} cell(s) changed significantly (exit code 3)", self.0)
    }
}

impl std::error::Error for Changed {}

/// The process exit code for the outcome of [`execute`]: 0 success, 2 bad
/// input, 3 `compare` found changes, 130 interrupted, 1 any other failure.
pub fn exit_code(result: &Result<()>) -> u8 {
    match result {
        Ok(()) => 0,
        Err(e) if e.downcast_ref::<Usage>().is_some() => 2,
        Err(e) if e.downcast_ref::<Changed>().is_some() => 3,
        Err(e) if e.downcast_ref::<Interrupted>().is_some() => 130,
        Err(_) => 1,
    }
}

pub fn execute(cli: Cli) -> Result<()> {
    let artifacts = Artifacts::from_env();
    match cli.command {
        Command::Doctor { dockerd_config: Some(file), .. } => {
            let env = crate::campaign::controlled_env(std::path::Path::new("/"));
            if !crate::runtime::docker::write_daemon_config(&file, &env)? {
                bail!("runsc not found: nothing to add to the host's dockerd configuration (apt-get install -y runsc)");
            }
            println!("{}: the host's dockerd configuration with gVisor's runtimes", file.display());
            Ok(())
        }
        Command::Doctor { target: None, .. } => {
            print!("{}", doctor::report(&artifacts));
            Ok(())
        }
        Command::Doctor { target: Some(url), ssh_config, agent_command, .. } => {
            let target = crate::remote::Target::parse(&url).map_err(usage)?;
            let connection = crate::remote::Connection {
                target: &target,
                ssh_config: ssh_config.as_deref(),
                agent_command: agent_command.as_deref().unwrap_or("edgebench agent"),
            };
            let settings = crate::remote::Settings {
                campaign_id: "doctor",
                concurrency: 1,
                ready_timeout_ms: None,
                cpus: "shared",
            };
            let lost = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let remote = crate::remote::Remote::connect(&connection, &settings, lost)?;
            print!("{}", doctor::remote_report(&remote, &artifacts));
            remote.close();
            Ok(())
        }
        Command::List { campaign } => {
            register_declared_workloads(campaign.as_deref()).map_err(usage)?;
            print!("{}", doctor::list());
            Ok(())
        }
        Command::Build { target: None } => artifacts.build(),
        Command::Build { target: Some(target) } => {
            let arch = crate::artifacts::Arch::parse_cross(&target).map_err(usage)?;
            artifacts.build_cross(arch).map(|_| ())
        }
        Command::Report { dir, out } => {
            // Every input is checked before anything is written: a fleet's hosts, or the campaign.
            let fleet = crate::store::Store::open_read_only(&dir).and_then(|s| s.is_fleet()).map_err(usage)?;
            if fleet {
                report::fleet::load(&dir).map_err(usage)?;
            } else {
                report::load(&dir).map_err(usage)?;
            }
            let out = out.as_ref().unwrap_or(&dir);
            let path = report::write_to(&dir, out).with_context(|| {
                format!("writing the report into {} (where it cannot be written, give --out DIR2)", out.display())
            })?;
            println!("{}", path.display());
            Ok(())
        }
        Command::Compare { a, b, out, json } => {
            let comparison = report::compare::compare(&a, &b).map_err(usage)?;
            let (md, html) = comparison.write(out.as_ref().unwrap_or(&b))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&comparison.json())?);
            } else {
                print!("{}", comparison.text_table());
                println!("{}\n{}", md.display(), html.display());
            }
            match comparison.changed().len() {
                0 => Ok(()),
                n => Err(Changed(n).into()),
            }
        }
        Command::Merge { sources, out } => {
            let sources = crate::merge::plan(&sources, &out).map_err(usage)?;
            let path = crate::merge::merge(&sources, &out)
                .with_context(|| format!("writing the fleet into {}", out.display()))?;
            for s in &sources {
                eprintln!("edgebench: {} (campaign {}) as host {}", s.dir.display(), s.campaign, s.host);
            }
            println!("{}", path.display());
            Ok(())
        }
        Command::Run(args) => run(*args, artifacts),
        Command::Agent { listen } => crate::remote::agent::serve(listen),
        Command::Conformance { runtimes, campaign } => {
            register_declared_workloads(campaign.as_deref()).map_err(usage)?;
            conformance_all(runtimes, artifacts)
        }
    }
}

fn ensure_artifacts(artifacts: &Artifacts, build: bool) -> Result<()> {
    if build {
        return artifacts.build();
    }
    let missing = artifacts.missing();
    if let Some((what, path)) = missing.first() {
        return Err(usage(anyhow::anyhow!(
            "{what} is missing ({}): run `edgebench build`, or drop --no-build",
            path.display()
        )));
    }
    Ok(())
}

fn run(args: RunArgs, artifacts: Artifacts) -> Result<()> {
    for w in crate::environment::warnings() {
        eprintln!("edgebench: warning: {w}");
    }
    let target = args.target.as_deref().map(crate::remote::Target::parse).transpose().map_err(usage)?;
    // Every input is checked before the (possibly long) build.
    let options = match &args.resume {
        Some(dir) => {
            // A fleet holds copies of finished campaigns: a campaign goes on in its own directory.
            if crate::store::Store::open_read_only(dir).and_then(|s| s.is_fleet()).map_err(usage)? {
                return Err(usage(anyhow::anyhow!(
                    "{} is a merged fleet (written by `edgebench merge`): resume a campaign in the directory it \
                     ran in, then merge again",
                    dir.display()
                )));
            }
            None
        }
        None => {
            let options = args.options().map_err(usage)?;
            if let Some(out) = &options.out {
                Campaign::check_out(out).map_err(usage)?;
            }
            if target.is_some() {
                check_remote(&options).map_err(usage)?;
            } else {
                crate::edge::check_here(&options.edge).map_err(usage)?;
            }
            Some(options)
        }
    };
    // With a target the runtimes run there, on its artifacts: nothing is built here.
    if target.is_none() {
        ensure_artifacts(&artifacts, !args.no_build)?;
    }
    crate::measure::probe::tighten_timer_slack();
    let mut campaign = match options {
        None => Campaign::resume_with(args.resume.as_ref().unwrap(), artifacts, args.allow_changed_artifacts)
            .map_err(usage)?,
        // --out was checked above: what fails now is the disk, not the input.
        Some(options) => Campaign::create(options, artifacts)?,
    };
    if args.resume.is_some() {
        check_same_target(&campaign, target.as_ref()).map_err(usage)?;
    }
    eprintln!("edgebench: campaign {} in {}", campaign.id, campaign.dir.display());
    let interrupted = campaign::interrupt_flag();
    let remote = match &target {
        Some(target) => {
            let connection = crate::remote::Connection {
                target,
                ssh_config: args.ssh_config.as_deref(),
                agent_command: args.agent_command.as_deref().unwrap_or("edgebench agent"),
            };
            let o = campaign.options();
            let settings = crate::remote::Settings {
                campaign_id: &campaign.id,
                concurrency: o.load.connections,
                ready_timeout_ms: o.ready_timeout_ms,
                cpus: &o.cpus,
            };
            let remote = match crate::remote::Remote::connect(&connection, &settings, interrupted.clone()) {
                Ok(remote) => remote,
                Err(e) => {
                    if args.resume.is_none() {
                        campaign.remove_unbegun();
                    }
                    return Err(e);
                }
            };
            eprintln!("edgebench: target {}: {}", target.url, remote.describe_link());
            campaign = campaign
                .with_backends(remote.backends())
                .with_target(remote.environment())
                .with_target_firewall(remote.firewall());
            Some(remote)
        }
        None => None,
    };
    let outcome = campaign.run(&interrupted);
    if let Some(remote) = &remote {
        remote.close();
    }
    // The report is the CLI's to write (the campaign only measures and
    // stores): from what is stored, however the campaign ended.
    let reported = report::write(&campaign.dir);
    let outcome = outcome?;
    reported?;
    println!("{}", report::headline(&campaign.dir)?);
    println!("report: {}", campaign.dir.join(report::REPORT_HTML).display());
    println!("samples: {}", campaign.dir.join(crate::store::RESULTS_FILE).display());
    if outcome == Outcome::Interrupted {
        let again = target.as_ref().map(|t| format!(" --target {}", t.url)).unwrap_or_default();
        return Err(Interrupted(format!(
            "campaign interrupted; every sample so far is stored: resume with `edgebench run --resume {}{again}`",
            campaign.dir.display()
        ))
        .into());
    }
    Ok(())
}

/// What a remote target does not run (yet): said before anything starts.
fn check_remote(options: &crate::campaign::Options) -> Result<()> {
    if options.wants(crate::campaign::Metric::Scaling) {
        bail!("--metrics scaling: scaling experiments are not run on a remote target; run them on the host itself");
    }
    if options.uses_edge() {
        bail!(
            "--edge-profile {}: edge profiles are not run on a remote target yet; run that campaign on the host itself",
            options.edge.join(",")
        );
    }
    if let Some(w) = options.workloads.iter().find(|w| w.user().is_some()) {
        bail!("workload {w}: a remote target runs only the built-in workloads (hello, cpu, echo, kv)");
    }
    Ok(())
}

/// A campaign is resumed against the target it began with, and only then.
fn check_same_target(campaign: &Campaign, target: Option<&crate::remote::Target>) -> Result<()> {
    let began = campaign.stored_target()?;
    match (began.as_deref(), target) {
        (None, None) => Ok(()),
        (Some(b), Some(t)) if b == t.url => Ok(()),
        (Some(b), _) => bail!("this campaign ran its runtimes on {b}: resume it with --target {b}"),
        (None, Some(t)) => bail!("this campaign ran its runtimes on this host: resume it without --target {}", t.url),
    }
}

/// Makes the workloads a campaign file declares known by name.
fn register_declared_workloads(file: Option<&std::path::Path>) -> Result<()> {
    let Some(file) = file else { return Ok(()) };
    for (name, mut w) in Settings::read(file)?.workload.unwrap_or_default() {
        w.name = name;
        crate::Workload::register(w)?;
    }
    Ok(())
}

fn conformance_all(runtimes: Option<String>, artifacts: Artifacts) -> Result<()> {
    let wanted: Option<Vec<String>> =
        runtimes.map(|r| r.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect());
    let known: Vec<&str> = runtime::all().iter().map(|r| r.name()).collect();
    if let Some(w) = &wanted {
        if let Some(unknown) = w.iter().find(|n| !known.contains(&n.as_str())) {
            return Err(usage(anyhow::anyhow!("unknown runtime {unknown:?}: known runtimes are {}", known.join(", "))));
        }
        if w.is_empty() {
            return Err(usage(anyhow::anyhow!("--runtimes names no runtime: known runtimes are {}", known.join(", "))));
        }
    }
    ensure_artifacts(&artifacts, true)?;
    // A private directory (not a name anyone could guess and create first).
    let work = tempfile::Builder::new().prefix("edgebench-conformance-").tempdir()?;
    let ctx = Context::new(format!("conformance-{}", std::process::id()), &artifacts, work.path())?;
    let mut failures = 0;
    for r in runtime::all() {
        if wanted.as_ref().is_some_and(|w| !w.iter().any(|n| n == r.name())) {
            continue;
        }
        let d = r.detect(&artifacts);
        if !d.available {
            println!("{:<20} not measured: {}", r.name(), d.reason);
            // Named on the command line: not checking it is a failure, not a pass.
            if wanted.is_some() {
                failures += 1;
            }
            continue;
        }
        // The campaign's hooks: e.g. Docker starts its daemon and builds its image here.
        if let Err(e) = r.setup(&ctx) {
            failures += 1;
            println!("FAILED {:<20} setup: {e:#}", r.name());
            r.teardown(&ctx);
            continue;
        }
        for variant in r.variants() {
            if let Err(why) = r.serves_workloads(variant) {
                println!("{:<20} {variant:<20} not checked: {why}", r.name());
                continue;
            }
            for w in crate::Workload::all() {
                if let Some(why) = w.lacks(r.artifact(variant)) {
                    println!("{:<20} {variant:<20} {w:<6} {why}", r.name());
                    continue;
                }
                let result =
                    r.prepare(&ctx, w, variant).and_then(|()| conformance::check(r.as_ref(), variant, w, &ctx));
                match result {
                    Ok(m) if m.is_empty() => println!("{:<20} {variant:<20} {w:<6} conforms", r.name()),
                    Ok(m) => {
                        failures += 1;
                        for line in m {
                            println!("MISMATCH {line}");
                        }
                    }
                    Err(e) => {
                        failures += 1;
                        println!("FAILED {:<20} {variant} {w}: {e:#}", r.name());
                    }
                }
            }
        }
        r.teardown(&ctx);
    }
    if failures > 0 {
        bail!("{failures} runtime/workload pair(s) do not conform or could not be checked");
    }
    Ok(())
}
