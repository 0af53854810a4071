//! One trial: launch an instance, measure it, stop it.
//!
//! Metric definitions (t0 → t1), as printed in the report:
//! - `cold_start`: t0 just before the launch call → t1 the first complete
//!   `200` with the expected body (probe: see `measure::probe`).
//! - `cold_start_accept`: t0 → first accepted TCP connection.
//! - `probe_interval`: mean time between probe attempts in that cold start;
//!   `probe_cpu`: CPU time the probe spent in it (on the client's CPUs).
//! - `settle` (phase `after_stop`): after the trial's instance is stopped,
//!   the wait until the runtime CPUs are quiet again (the next trial starts
//!   only then); `settle_busy`: their busy % over the last window.
//! - `warm_start`: a new instance on an already running runtime: request sent
//!   on a new connection → response read; `warm_start_internal`: the same as
//!   timed inside the runtime (where it reports it).
//! - `latency_keepalive` / `latency_newconn`: request written → response read,
//!   on one kept-alive connection / on a new connection each (connect included).
//! - `memory_*` (phase `after_boot`, `after_latency`): smaps_rollup summed
//!   over every process of the instance; `cpu_time` (phase `boot`, `latency`):
//!   run time of the instance's threads during that phase.

use super::options::{Metric, Options};
use super::plan::TrialKey;
use crate::measure::latency::Run;
use crate::measure::load::{self, Load, Search, Target};
use crate::measure::probe::{NotReady, Probe};
use crate::measure::{http, resources};
use crate::network::Network;
use crate::runtime::{Context, Instance, LaunchSpec, Runtime, WarmStart};
use crate::store::histograms::StoredHistogram;
use crate::store::{now_ns, Sample, Store};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// How long a started instance is left idle to measure its idle CPU.
const IDLE_WINDOW: Duration = Duration::from_millis(250);

pub enum Failure {
    Interrupted,
    Failed(String),
    /// The results file cannot be written (e.g. the disk is full): not the
    /// runtime's fault, so the trial is not recorded and the campaign stops.
    Store(String),
}

impl Failure {
    pub fn store(e: anyhow::Error) -> Failure {
        Failure::Store(format!("{e:#}"))
    }
}

pub struct Trial<'a> {
    pub runtime: &'a dyn Runtime,
    pub key: &'a TrialKey,
    pub options: &'a Options,
    pub ctx: &'a Context<'a>,
    pub interrupted: &'a AtomicBool,
    /// The campaign's namespace and firewall, when it runs profiles.
    pub network: Option<&'a Network>,
    /// The campaign's edge profiles, when it runs any but `none`.
    pub edge: Option<&'a crate::edge::Edge>,
}

/// CPU time of an instance so far (see [`Instance::cpu_ns`]).
fn instance_cpu(instance: &dyn Instance) -> Result<u64, String> {
    instance.cpu_ns().unwrap_or_else(|| Ok(resources::cpu_ns(&instance.pids())))
}

/// CPU spent between two readings; less at the end than at the start means
/// the processes counted changed in between (a figure that would be garbage).
fn cpu_between(start: &Result<u64, String>, end: &Result<u64, String>) -> Result<u64, String> {
    let (start, end) = (start.clone()?, end.clone()?);
    end.checked_sub(start).ok_or_else(|| {
        format!(
            "the instance's CPU time went down ({start} ns → {end} ns): its processes changed during the phase, so \
             no figure is given"
        )
    })
}

/// A free port on loopback, for one instance.
pub fn free_loopback_addr() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

fn ms(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1e6
}

impl Trial<'_> {
    /// Runs the trial under its edge profile (`none`: as [`Trial::run`]):
    /// launches start in the profile's cgroup, and a trial during which the
    /// kernel's OOM killer ended a process there fails with that reason.
    pub fn run_under(&self, store: &mut Store, campaign: &str) -> Result<(), Failure> {
        let Some(edge) = self.edge.filter(|_| self.key.edge != "none") else { return self.run(store, campaign) };
        let _entered = edge.enter(&self.key.edge).map_err(|e| Failure::Failed(format!("{e:#}")))?;
        let before = edge.oom_kills(&self.key.edge);
        let link_before = edge.link_stats();
        let result = self.run(store, campaign);
        let killed = edge.oom_kills(&self.key.edge).saturating_sub(before);
        if let (Some(before), Some(after), true) =
            (link_before, edge.link_stats(), crate::edge::uses_link(std::slice::from_ref(&self.key.edge)))
        {
            // What the link did to this trial's packets (both directions).
            let d = after.since(before);
            let mut s = self.sample("edge_link_lost", "", 0, d.lost as f64, "packets");
            s.detail = format!("forwarded {}, lost {}, dropped at a full queue {}", d.forwarded, d.lost, d.queue_drops);
            store.insert_samples(campaign, &[s]).map_err(Failure::store)?;
        }
        if killed == 0 {
            return result;
        }
        let why = format!(
            "OOM-killed under edge profile {}: the kernel killed {killed} process(es) of the instance at its memory cap",
            self.key.edge
        );
        store.insert_samples(campaign, &[self.failed("edge_oom_kills", "", &why)]).map_err(Failure::store)?;
        match result {
            Err(Failure::Failed(e)) => Err(Failure::Failed(format!("{why}; {e}"))),
            Ok(()) => Err(Failure::Failed(why)),
            other => other,
        }
    }

    pub fn run(&self, store: &mut Store, campaign: &str) -> Result<(), Failure> {
        let failed = |e: String| Failure::Failed(e);
        let mut write = |samples: Vec<Sample>| store.insert_samples(campaign, &samples).map_err(Failure::store);
        let edge = self.edge.filter(|_| self.key.edge != "none");
        let placement = self.runtime.network_placement(&self.key.variant);
        if edge.is_some()
            && crate::edge::uses_link(std::slice::from_ref(&self.key.edge))
            && placement != crate::network::Placement::ServerNamespace
        {
            let why = format!(
                "edge profile {}: this variant's traffic does not cross the emulated link (placement {}: {}), so \
                 the link cannot be applied to it",
                self.key.edge,
                placement.name(),
                self.runtime.network_path(&self.key.variant)
            );
            write(vec![self.failed("cold_start", "", &why)])?;
            return Err(failed(why));
        }
        if let Some(own) = self.own_trial() {
            if edge.is_some() {
                // Its processes are not read back: nothing it measured is kept.
                let why = format!(
                    "edge profile {}: this variant measures a trial of its own, whose processes edgebench does not \
                     check against the profile's limits yet",
                    self.key.edge
                );
                write(vec![self.failed("cold_start", "", &why)])?;
                return Err(failed(why));
            }
            let samples: Vec<Sample> = own
                .iter()
                .map(|o| match &o.value {
                    Ok(v) => self.sample(&o.metric, &o.phase, 0, *v, &o.unit),
                    Err(e) => self.failed(&o.metric, &o.phase, e),
                })
                .collect();
            write(samples)?;
            return match own.iter().find_map(|o| o.value.as_ref().err()) {
                Some(e) => Err(failed(e.clone())),
                None => Ok(()),
            };
        }
        let launched = launch_until_ready_in(self.runtime, self.key, self.ctx, self.interrupted, self.network);
        let (mut instance, ready) = match launched {
            Ok(x) => x,
            Err(Failure::Failed(e)) => {
                write(vec![self.failed("cold_start", "", &e)])?;
                return Err(failed(e));
            }
            Err(f) => return Err(f),
        };
        if let Some(edge) = edge {
            // Before any figure is kept: the profile's limits hold for every process of the instance.
            let pids = instance.constrained_pids();
            match edge.verify(&self.key.edge, &pids) {
                Ok(read) => {
                    let mut s = self.sample("edge_in_force", "", 0, pids.len() as f64, "processes");
                    s.detail = read;
                    write(vec![s])?;
                }
                Err(why) => {
                    let _ = instance.stop();
                    write(vec![self.failed("edge_in_force", "", &why), self.failed("cold_start", "", &why)])?;
                    return Err(failed(why));
                }
            }
        }
        if self.options.wants(Metric::ColdStart) {
            let mut samples = vec![
                self.sample("cold_start", "", 0, ms(ready.response), "ms"),
                self.sample("cold_start_accept", "", 0, ms(ready.accept), "ms"),
                self.sample("probe_interval", "", 0, ready.mean_interval.as_nanos() as f64 / 1e3, "us"),
                self.sample("probe_cpu", "", 0, ms(ready.cpu), "ms"),
            ];
            for (phase, at) in instance.launch_phases() {
                samples.push(self.sample(&format!("cold_start_{phase}"), "", 0, ms(at), "ms"));
            }
            for f in instance.boot_figures() {
                samples.push(self.sample(&f.metric, "", 0, f.value, &f.unit));
            }
            if let Some(applied) = instance.firewall_applied() {
                // Applied in the instance's own namespace before t0.
                let mut s = self.sample("firewall_apply", "", 0, ms(applied.took), "ms");
                s.detail = format!("placement own-namespace; ruleset sha256 {}", applied.ruleset_sha256);
                samples.push(s);
            }
            write(samples)?;
        }
        let boot_cpu = instance_cpu(instance.as_ref());
        write(self.resources(instance.as_ref(), "after_boot", "boot", boot_cpu.clone()))?;
        let mut before_requests = boot_cpu.clone();
        if self.options.wants(Metric::Cpu) {
            // Idle CPU of a started instance: no requests for IDLE_WINDOW.
            std::thread::sleep(IDLE_WINDOW);
            before_requests = instance_cpu(instance.as_ref());
            let sample = match cpu_between(&boot_cpu, &before_requests) {
                Ok(idle) => self.sample("cpu_idle", "", 0, idle as f64 / 1e6 / IDLE_WINDOW.as_secs_f64(), "ms/s"),
                Err(why) => self.failed("cpu_idle", "", &why),
            };
            write(vec![sample])?;
        }
        let boot_cpu = before_requests;

        let mut histograms = Vec::new();
        let result = self.measure_running(instance.as_mut(), &mut write, &mut histograms, boot_cpu);
        let stopped = instance.stop();
        store.insert_histograms(campaign, &histograms).map_err(Failure::store)?;
        result?;
        stopped.map_err(|e| failed(format!("stopping: {e:#}")))
    }

    /// The runtime's own trial for this variant, if it has one.
    fn own_trial(&self) -> Option<Vec<crate::runtime::OwnSample>> {
        let addr = free_loopback_addr().ok()?;
        let spec = LaunchSpec {
            workload: self.key.workload,
            variant: &self.key.variant,
            addr,
            label: self.key.label(),
            netns: None,
            firewall: None,
        };
        self.runtime.own_trial(self.ctx, &spec)
    }

    fn measure_running(
        &self,
        instance: &mut dyn Instance,
        write: &mut dyn FnMut(Vec<Sample>) -> Result<(), Failure>,
        histograms: &mut Vec<StoredHistogram>,
        boot_cpu: Result<u64, String>,
    ) -> Result<(), Failure> {
        let workload = self.key.workload;
        let host = instance.addr().to_string();
        let request = workload.latency_request();
        for (metric, wanted, close) in
            [("latency_keepalive", Metric::LatencyKeepalive, false), ("latency_newconn", Metric::LatencyNewconn, true)]
        {
            if !self.options.wants(wanted) {
                continue;
            }
            let bytes = http::encode(&request, &host, close);
            let expected = workload.expected_latency();
            let run = Run {
                addr: instance.addr(),
                request: &bytes,
                warmup: self.options.warmup_requests,
                count: self.options.requests,
                time_limit: self.options.latency_limit_ms.map(std::time::Duration::from_millis),
                interrupted: self.interrupted,
                expected: Some(&expected),
            };
            let outcome = if close { run.new_connection() } else { run.keepalive() };
            let (latencies, error) = match outcome {
                Ok(l) => (l, None),
                Err((e, l)) => (l, Some(e)),
            };
            let mut samples: Vec<Sample> = latencies
                .iter()
                .enumerate()
                .map(|(i, ns)| self.sample(metric, "", i as u32, *ns as f64 / 1e6, "ms"))
                .collect();
            if error.is_none() && latencies.len() < run.count {
                if let Some(first) = samples.first_mut() {
                    first.detail = format!(
                        "time limit: {} of {} requests in {} ms",
                        latencies.len(),
                        run.count,
                        self.options.latency_limit_ms.unwrap_or_default()
                    );
                }
            }
            if let Some(e) = &error {
                samples.push(self.failed(metric, "", e));
            }
            write(samples)?;
            match error {
                Some(e) if e == "interrupted" => return Err(Failure::Interrupted),
                Some(e) => return Err(Failure::Failed(format!("{metric}: {e}; log: {}", instance.log_tail()))),
                None => {}
            }
        }
        let cpu = cpu_between(&boot_cpu, &instance_cpu(instance));
        write(self.resources(instance, "after_latency", "latency", cpu))?;
        if self.options.wants(Metric::Throughput) {
            let (samples, hists) = self.throughput(instance)?;
            histograms.extend(hists);
            write(samples)?;
            if self.interrupted.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(Failure::Interrupted);
            }
        }
        // Warm starts last: a warm start may replace the instance's processes
        // (Docker restart) or add instances to them, so no phase measured
        // before (latency, its CPU and memory, throughput) includes them.
        if self.options.wants(Metric::WarmStart) {
            let mut samples = Vec::new();
            'warm: for seq in 0..self.options.warm_starts as u32 {
                if self.interrupted.load(std::sync::atomic::Ordering::SeqCst) {
                    // What was measured stays; the trial is re-run on resume.
                    write(samples)?;
                    return Err(Failure::Interrupted);
                }
                match instance.warm_start(workload) {
                    WarmStart::NotApplicable(why) => {
                        samples.push(self.failed("warm_start", "", &format!("not applicable: {why}")));
                        break;
                    }
                    WarmStart::Measured(kinds) => {
                        for w in kinds {
                            samples.push(self.sample("warm_start", &w.phase, seq, ms(w.client), "ms"));
                            if let Some(internal) = w.internal {
                                samples.push(self.sample("warm_start_internal", &w.phase, seq, ms(internal), "ms"));
                            }
                        }
                    }
                    WarmStart::Failed(e) => {
                        samples.push(self.failed("warm_start", "", &e));
                        break 'warm;
                    }
                }
            }
            write(samples)?;
        }

        Ok(())
    }

    /// Closed loop for the maximum rate, then a search for the highest open-loop
    /// rate whose p99 meets the objective; CPU per request from the closed loop.
    /// Every run's counters are samples, its distributions histograms.
    fn throughput(&self, instance: &dyn Instance) -> Result<(Vec<Sample>, Vec<StoredHistogram>), Failure> {
        let o = &self.options.load;
        let target = Target {
            addr: instance.addr(),
            request: http::encode(&self.key.workload.latency_request(), &instance.addr().to_string(), false),
            expected: Some(self.key.workload.expected_latency()),
        };
        let duration = Duration::from_millis(o.duration_ms);
        let io = |e: std::io::Error| Failure::Failed(format!("load generator: {e}"));
        let cpu_before = instance_cpu(instance);
        let closed = load::run(&target, &Load::closed(o.connections, duration), self.interrupted).map_err(io)?;
        let cpu = cpu_between(&cpu_before, &instance_cpu(instance));
        if self.interrupted.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Failure::Interrupted);
        }
        let phase = format!("closed-c{}", o.connections);
        let mut samples = self.load_counters(&phase, 0, &closed);
        let mut histograms = vec![self.histogram("throughput_latency", &phase, 0, &closed.histogram)];
        if closed.errors > 0 || closed.completed == 0 {
            let e = closed.first_error.clone().unwrap_or_else(|| "no request completed".into());
            samples.push(self.failed("throughput", "closed", &format!("{} errors; first: {e}", closed.errors)));
            return Ok((samples, histograms));
        }
        samples.push(self.sample("throughput", &phase, 0, closed.throughput(), "req/s"));
        samples.push(self.sample("throughput_p50", &phase, 0, closed.quantile_ms(0.5), "ms"));
        samples.push(self.sample("throughput_p99", &phase, 0, closed.quantile_ms(0.99), "ms"));
        samples.push(match cpu {
            Ok(ns) => self.sample("cpu_per_request", &phase, 0, ns as f64 / 1e3 / closed.completed as f64, "us"),
            Err(why) => self.failed("cpu_per_request", &phase, &why),
        });

        let search = Search {
            slo: Duration::from_secs_f64(o.slo_p99_ms / 1e3),
            ceiling: closed.throughput() * 1.1,
            steps: o.search_steps,
            step_duration: duration,
            connections: o.connections,
        };
        let (rate, steps) = load::search(&target, &search, self.interrupted).map_err(io)?;
        if self.interrupted.load(std::sync::atomic::Ordering::SeqCst) {
            // A search cut short is no result; the closed loop's samples are
            // stored, and the caller ends the trial as interrupted.
            return Ok((samples, histograms));
        }
        for (seq, step) in steps.iter().enumerate() {
            // One phase for every step, the step's offered rate its own
            // sample: steps are points of a curve (the model's throughput
            // curves), bisection visits other rates in each trial.
            let (phase, seq, r) = (crate::store::SEARCH_PHASE.to_string(), seq as u32, &step.result);
            let p99 = |h: &hdrhistogram::Histogram<u64>, scale: f64| h.value_at_quantile(0.99) as f64 / scale;
            for (metric, value, unit) in [
                ("open_loop_offered", step.rate, "req/s"),
                ("open_loop_p99", r.quantile_ms(0.99), "ms"),
                ("open_loop_p50", r.quantile_ms(0.5), "ms"),
                ("open_loop_service_p99", p99(&r.service, 1e6), "ms"),
                ("open_loop_send_error_p99", p99(&r.send_error, 1e3), "us"),
            ] {
                samples.push(self.sample(metric, &phase, seq, value, unit));
            }
            samples.push(self.sample("open_loop_achieved", &phase, seq, r.throughput(), "req/s"));
            samples.extend(self.load_counters(&phase, seq, r));
            histograms.push(self.histogram("open_loop_latency", &phase, seq, &r.histogram));
            histograms.push(self.histogram("open_loop_service", &phase, seq, &r.service));
            histograms.push(self.histogram("open_loop_send_error", &phase, seq, &r.send_error));
        }
        let phase = format!("open-p99<{}ms", o.slo_p99_ms);
        if rate > 0.0 {
            samples.push(self.sample("throughput", &phase, 0, rate, "req/s"));
        } else {
            let lowest = steps
                .iter()
                .map(|s| (s.rate, s.result.quantile_ms(0.99)))
                .fold((f64::INFINITY, 0.0), |a, b| if b.0 < a.0 { b } else { a });
            let e = format!(
                "no rate tried met p99 < {} ms (lowest tried {:.0} req/s: p99 {:.2} ms)",
                o.slo_p99_ms, lowest.0, lowest.1
            );
            samples.push(self.failed("throughput", &phase, &e));
        }
        Ok((samples, histograms))
    }

    /// A load run's counters: `load_sent`, `load_completed`, `load_errors`,
    /// `load_late`, `load_dropped` (requests).
    fn load_counters(&self, phase: &str, seq: u32, r: &load::LoadResult) -> Vec<Sample> {
        [
            ("load_sent", r.sent),
            ("load_completed", r.completed),
            ("load_errors", r.errors),
            ("load_late", r.late),
            ("load_dropped", r.dropped),
        ]
        .into_iter()
        .map(|(metric, n)| self.sample(metric, phase, seq, n as f64, "requests"))
        .collect()
    }

    fn histogram(&self, metric: &str, phase: &str, seq: u32, h: &hdrhistogram::Histogram<u64>) -> StoredHistogram {
        StoredHistogram {
            key: Sample { value: None, ..self.sample(metric, phase, seq, 0.0, "ns") },
            histogram: h.clone(),
        }
    }

    /// Memory now, and CPU time spent in the phase that just ended.
    fn resources(
        &self,
        instance: &dyn Instance,
        memory_phase: &str,
        cpu_phase: &str,
        cpu_ns: Result<u64, String>,
    ) -> Vec<Sample> {
        let mut out = Vec::new();
        if self.options.wants(Metric::Memory) {
            let metrics = ["memory_rss", "memory_pss", "memory_pss_anon", "memory_pss_file"];
            let memory = instance.memory().unwrap_or_else(|| resources::memory_checked(&instance.pids()));
            match memory {
                Ok(m) => {
                    for (metric, kib) in metrics.into_iter().zip([m.rss_kib, m.pss_kib, m.pss_anon_kib, m.pss_file_kib])
                    {
                        out.push(self.sample(metric, memory_phase, 0, kib as f64, "KiB"));
                    }
                }
                Err(why) => out.extend(metrics.iter().map(|metric| self.failed(metric, memory_phase, &why))),
            }
        }
        if self.options.wants(Metric::Cpu) {
            out.push(match cpu_ns {
                Ok(ns) => self.sample("cpu_time", cpu_phase, 0, ns as f64 / 1e6, "ms"),
                Err(why) => self.failed("cpu_time", cpu_phase, &why),
            });
        }
        if self.options.wants(Metric::Memory) || self.options.wants(Metric::Cpu) {
            for extra in instance.extra_resources() {
                out.push(self.sample(&extra.metric, memory_phase, 0, extra.value, &extra.unit));
            }
        }
        out
    }

    fn sample(&self, metric: &str, phase: &str, seq: u32, value: f64, unit: &str) -> Sample {
        sample(self.key, metric, phase, seq, value, unit)
    }

    fn failed(&self, metric: &str, phase: &str, error: &str) -> Sample {
        failed(self.key, metric, phase, error)
    }
}

pub fn sample(key: &TrialKey, metric: &str, phase: &str, seq: u32, value: f64, unit: &str) -> Sample {
    Sample {
        runtime: key.runtime.clone(),
        variant: key.variant.clone(),
        workload: key.workload.name().into(),
        metric: metric.into(),
        phase: phase.into(),
        firewall: key.firewall.clone(),
        edge: key.edge.clone(),
        repetition: key.repetition,
        seq,
        value: Some(value),
        unit: unit.into(),
        ts_ns: now_ns(),
        ok: true,
        error: String::new(),
        detail: String::new(),
    }
}

pub fn failed(key: &TrialKey, metric: &str, phase: &str, error: &str) -> Sample {
    Sample { value: None, ok: false, error: error.into(), ..sample(key, metric, phase, 0, 0.0, "") }
}

/// After a trial: waits until the runtime CPUs are quiet again (its
/// teardown's work done) and stores the wait with the trial.
pub fn settle(key: &TrialKey, options: &Options, runtime: &dyn Runtime) -> Vec<Sample> {
    let bound = Duration::from_millis(options.settle_max_ms);
    let settled = runtime.settle_elsewhere(bound).unwrap_or_else(|| {
        let cpus = crate::cpus::installed().map(|p| p.sut).unwrap_or_else(crate::cpus::Cpus::allowed);
        Ok(crate::measure::settle::wait(&cpus, bound))
    });
    match settled {
        Ok(settled) => vec![
            sample(key, "settle", "after_stop", 0, ms(settled.waited), "ms"),
            sample(key, "settle_busy", "after_stop", 0, settled.busy * 100.0, "%"),
        ],
        Err(why) => vec![failed(key, "settle", "after_stop", &why)],
    }
}

/// Launches an instance on 127.0.0.1 and waits for its first correct answer.
pub fn launch_until_ready(
    runtime: &dyn Runtime,
    key: &TrialKey,
    ctx: &Context<'_>,
    interrupted: &AtomicBool,
) -> Result<(Box<dyn Instance>, crate::measure::probe::Ready), Failure> {
    launch_until_ready_in(runtime, key, ctx, interrupted, None)
}

/// Launches an instance where `network` places it (none: 127.0.0.1) and
/// waits for its first correct answer.
pub fn launch_until_ready_in(
    runtime: &dyn Runtime,
    key: &TrialKey,
    ctx: &Context<'_>,
    interrupted: &AtomicBool,
    network: Option<&Network>,
) -> Result<(Box<dyn Instance>, crate::measure::probe::Ready), Failure> {
    let (addr, netns) = match network {
        None => (free_loopback_addr().map_err(|e| Failure::Failed(format!("no free port: {e}")))?, None),
        Some(net) => {
            net.instance_addr(runtime.network_placement(&key.variant)).map_err(|e| Failure::Failed(format!("{e:#}")))?
        }
    };
    // A runtime on a path of its own applies the trial's profile itself.
    let firewall = match network {
        Some(net) if runtime.network_placement(&key.variant) == crate::network::Placement::OwnNamespace => {
            let profile =
                crate::network::Profile::parse(&key.firewall).map_err(|e| Failure::Failed(format!("{e:#}")))?;
            Some(crate::runtime::OwnFirewall { network: net, profile })
        }
        _ => None,
    };
    let spec = LaunchSpec { workload: key.workload, variant: &key.variant, addr, label: key.label(), netns, firewall };
    let mut instance = runtime.launch(ctx, &spec).map_err(|e| Failure::Failed(format!("launch: {e:#}")))?;
    // Where the instance really answers: `addr` for most, the guest's own
    // address for a VM (known once its namespace exists). Built after t0,
    // before the first attempt: a few µs the probe loop would spend anyway.
    let addr = instance.addr();
    let request = http::encode(&key.workload.probe_request(), &addr.to_string(), false);
    let expected = key.workload.expected_probe();
    let probe = Probe {
        addr,
        request: &request,
        expected: &expected,
        timeout: ctx.ready_timeout.unwrap_or_else(|| runtime.ready_timeout(&key.variant)),
        interrupted,
    };
    let t0 = instance.launched_at();
    match probe.wait(t0, &mut || instance.exited()) {
        Ok(ready) => Ok((instance, ready)),
        Err(NotReady::Interrupted) => {
            let _ = instance.stop();
            Err(Failure::Interrupted)
        }
        Err(e) => {
            let log = instance.log_tail();
            let _ = instance.stop();
            Err(Failure::Failed(format!("{e}; log: {log}")))
        }
    }
}

/// An unrecorded launch (page cache, compile caches).
pub fn warm_up(
    runtime: &dyn Runtime,
    key: &TrialKey,
    ctx: &Context<'_>,
    interrupted: &AtomicBool,
    network: Option<&Network>,
) -> Result<(), String> {
    let spec = LaunchSpec {
        workload: key.workload,
        variant: &key.variant,
        addr: ([127, 0, 0, 1], 0).into(),
        label: key.label(),
        netns: None,
        firewall: None,
    };
    if let Some(own) = runtime.own_trial(ctx, &spec) {
        return match own.into_iter().find_map(|o| o.value.err()) {
            Some(e) => Err(e),
            None => Ok(()),
        };
    }
    match launch_until_ready_in(runtime, key, ctx, interrupted, network) {
        Ok((mut instance, _)) => instance.stop().map_err(|e| e.to_string()),
        Err(Failure::Failed(e) | Failure::Store(e)) => Err(e),
        Err(Failure::Interrupted) => Ok(()),
    }
}
