//! One trial: launch an instance, measure it, stop it.
//!
//! Metric definitions (t0 → t1), as printed in the report:
//! - `cold_start`: t0 just before the launch call → t1 the first complete
//!   `200` with the expected body (probe: see `measure::probe`).
//! - `cold_start_accept`: t0 → first accepted TCP connection.
//! - `probe_interval`: mean time between probe attempts in that cold start.
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
use crate::measure::probe::{NotReady, Probe};
use crate::measure::{http, resources};
use crate::runtime::{Context, Instance, LaunchSpec, Runtime, WarmStart};
use crate::store::{now_ns, Sample, Store};
use crate::workload::{expected_probe_body, latency_request, probe_request};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

pub enum Failure {
    Interrupted,
    Failed(String),
}

pub struct Trial<'a> {
    pub runtime: &'a dyn Runtime,
    pub key: &'a TrialKey,
    pub options: &'a Options,
    pub ctx: &'a Context<'a>,
    pub interrupted: &'a AtomicBool,
}

/// A free port on loopback, for one instance.
pub fn free_loopback_addr() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

fn ms(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1e6
}

impl Trial<'_> {
    pub fn run(&self, store: &mut Store, campaign: &str) -> Result<(), Failure> {
        let failed = |e: String| Failure::Failed(e);
        let mut write = |samples: Vec<Sample>| {
            store.insert_samples(campaign, &samples).map_err(|e| Failure::Failed(format!("store: {e:#}")))
        };
        let (mut instance, ready) = match launch_until_ready(self.runtime, self.key, self.ctx, self.interrupted) {
            Ok(x) => x,
            Err(Failure::Failed(e)) => {
                write(vec![self.failed("cold_start", "", &e)])?;
                return Err(failed(e));
            }
            Err(f) => return Err(f),
        };
        if self.options.wants(Metric::ColdStart) {
            let mut samples = vec![
                self.sample("cold_start", "", 0, ms(ready.response), "ms"),
                self.sample("cold_start_accept", "", 0, ms(ready.accept), "ms"),
                self.sample("probe_interval", "", 0, ready.mean_interval.as_nanos() as f64 / 1e3, "us"),
            ];
            for (phase, at) in instance.launch_phases() {
                samples.push(self.sample(&format!("cold_start_{phase}"), "", 0, ms(at), "ms"));
            }
            write(samples)?;
        }
        let boot_cpu = resources::cpu_ns(&instance.pids());
        write(self.resources(instance.as_ref(), "after_boot", "boot", boot_cpu))?;

        let result = self.measure_running(instance.as_mut(), &mut write, boot_cpu);
        let stopped = instance.stop();
        result?;
        stopped.map_err(|e| failed(format!("stopping: {e:#}")))
    }

    fn measure_running(
        &self,
        instance: &mut dyn Instance,
        write: &mut dyn FnMut(Vec<Sample>) -> Result<(), Failure>,
        boot_cpu: u64,
    ) -> Result<(), Failure> {
        let workload = self.key.workload;
        if self.options.wants(Metric::WarmStart) {
            let mut samples = Vec::new();
            'warm: for seq in 0..self.options.warm_starts as u32 {
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

        let host = instance.addr().to_string();
        let request = latency_request(workload);
        for (metric, wanted, close) in
            [("latency_keepalive", Metric::LatencyKeepalive, false), ("latency_newconn", Metric::LatencyNewconn, true)]
        {
            if !self.options.wants(wanted) {
                continue;
            }
            let bytes = http::encode(&request, &host, close);
            let run = Run {
                addr: instance.addr(),
                request: &bytes,
                warmup: self.options.warmup_requests,
                count: self.options.requests,
                interrupted: self.interrupted,
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
        let pids = instance.pids();
        let cpu = resources::cpu_ns(&pids).saturating_sub(boot_cpu);
        write(self.resources(instance, "after_latency", "latency", cpu))
    }

    /// Memory now, and CPU time spent in the phase that just ended.
    fn resources(&self, instance: &dyn Instance, memory_phase: &str, cpu_phase: &str, cpu_ns: u64) -> Vec<Sample> {
        let mut out = Vec::new();
        if self.options.wants(Metric::Memory) {
            let m = resources::memory(&instance.pids());
            for (metric, kib) in [
                ("memory_rss", m.rss_kib),
                ("memory_pss", m.pss_kib),
                ("memory_pss_anon", m.pss_anon_kib),
                ("memory_pss_file", m.pss_file_kib),
            ] {
                out.push(self.sample(metric, memory_phase, 0, kib as f64, "KiB"));
            }
        }
        if self.options.wants(Metric::Cpu) {
            out.push(self.sample("cpu_time", cpu_phase, 0, cpu_ns as f64 / 1e6, "ms"));
        }
        if self.options.wants(Metric::Memory) || self.options.wants(Metric::Cpu) {
            for extra in instance.extra_resources() {
                out.push(self.sample(&extra.metric, memory_phase, 0, extra.value, &extra.unit));
            }
        }
        out
    }

    fn sample(&self, metric: &str, phase: &str, seq: u32, value: f64, unit: &str) -> Sample {
        Sample {
            runtime: self.key.runtime.clone(),
            variant: self.key.variant.clone(),
            workload: self.key.workload.name().into(),
            metric: metric.into(),
            phase: phase.into(),
            firewall: "off".into(),
            repetition: self.key.repetition,
            seq,
            value: Some(value),
            unit: unit.into(),
            ts_ns: now_ns(),
            ok: true,
            error: String::new(),
        }
    }

    fn failed(&self, metric: &str, phase: &str, error: &str) -> Sample {
        Sample { value: None, ok: false, error: error.into(), ..self.sample(metric, phase, 0, 0.0, "") }
    }
}

/// Launches an instance and waits for its first correct answer.
pub fn launch_until_ready(
    runtime: &dyn Runtime,
    key: &TrialKey,
    ctx: &Context<'_>,
    interrupted: &AtomicBool,
) -> Result<(Box<dyn Instance>, crate::measure::probe::Ready), Failure> {
    let addr = free_loopback_addr().map_err(|e| Failure::Failed(format!("no free port: {e}")))?;
    let spec = LaunchSpec { workload: key.workload, variant: &key.variant, addr, label: key.label() };
    let request = http::encode(&probe_request(key.workload), &addr.to_string(), false);
    let expected = expected_probe_body(key.workload);
    let probe = Probe {
        addr,
        request: &request,
        expected_body: &expected,
        timeout: runtime.ready_timeout(&key.variant),
        interrupted,
    };
    let mut instance = runtime.launch(ctx, &spec).map_err(|e| Failure::Failed(format!("launch: {e:#}")))?;
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
) -> Result<(), String> {
    match launch_until_ready(runtime, key, ctx, interrupted) {
        Ok((mut instance, _)) => instance.stop().map_err(|e| e.to_string()),
        Err(Failure::Failed(e)) => Err(e),
        Err(Failure::Interrupted) => Ok(()),
    }
}
