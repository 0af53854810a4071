//! Scaling limits, as two experiments on one configuration:
//! - concurrent start: K instances launched at once from K threads (K = 1, 2,
//!   4, … up to a bound); each instance's cold start is a `scaling_start`
//!   sample (phase `k=K`), and K over the time until all answered is the
//!   creation rate `scaling_rate` (instances/s);
//! - density: instances are added one at a time until their PSS together
//!   exceeds the memory budget, p99 of a short run on the newest breaks the
//!   latency objective, a start fails, or the bound is reached. `density` is
//!   the number of instances that fit; its detail text says what stopped it.
//!
//! An instance is what a runtime's `launch` returns, for every runtime alike:
//! a process (native, `wasmtime serve`), a container, a VM, or a deployment
//! on a shared host. Its memory is the PSS of its own processes, so a runtime
//! that shares one process between instances shows its per-instance cost in
//! PSS. A runtime whose instance takes many tenants (the embedded host:
//! components loaded side by side in one process, routed by `Host`) is
//! counted in tenants of one instance instead, up to `--tenants-max`.

use super::options::Options;
use super::plan::TrialKey;
use super::trial::{failed, launch_until_ready_in, sample, Failure};
use crate::measure::latency::Run;
use crate::measure::{http, resources};
use crate::network::Network;
use crate::runtime::{Context, Instance, Runtime};
use crate::store::Sample;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

pub fn run(
    runtime: &dyn Runtime,
    key: &TrialKey,
    options: &Options,
    ctx: &Context<'_>,
    interrupted: &AtomicBool,
    network: Option<&Network>,
    write: &mut dyn FnMut(Vec<Sample>) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let launcher = Launcher { runtime, ctx, interrupted, network };
    concurrent_starts(&launcher, key, options, write)?;
    write(density(&launcher, key, options)?)
}

/// Launches instances of one configuration where the campaign places them.
struct Launcher<'a> {
    runtime: &'a dyn Runtime,
    ctx: &'a Context<'a>,
    interrupted: &'a AtomicBool,
    network: Option<&'a Network>,
}

impl Launcher<'_> {
    fn launch(&self, key: &TrialKey) -> Result<(Box<dyn Instance>, crate::measure::probe::Ready), Failure> {
        launch_until_ready_in(self.runtime, key, self.ctx, self.interrupted, self.network)
    }
}

fn instance_key(key: &TrialKey, tag: &str) -> TrialKey {
    key.clone().with_label_suffix(tag)
}

fn concurrent_starts(
    launcher: &Launcher<'_>,
    key: &TrialKey,
    options: &Options,
    write: &mut dyn FnMut(Vec<Sample>) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let mut k = 1;
    while k <= options.scaling.max_concurrent.max(1) {
        let phase = format!("k={k}");
        let start = Instant::now();
        let launched: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..k)
                .map(|i| {
                    let key = instance_key(key, &format!("k{k}-{i}"));
                    scope.spawn(move || launcher.launch(&key))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(Failure::Failed("panicked".into())))).collect()
        });
        let all_ready = start.elapsed();
        let mut samples = Vec::new();
        let mut instances: Vec<Box<dyn Instance>> = Vec::new();
        let mut failure = None;
        for (i, result) in launched.into_iter().enumerate() {
            match result {
                Ok((instance, ready)) => {
                    samples.push(sample(key, "scaling_start", &phase, i as u32, ms(ready.response), "ms"));
                    instances.push(instance);
                }
                Err(Failure::Interrupted) => failure = Some(Failure::Interrupted),
                Err(f @ Failure::Store(_)) => failure = Some(f),
                Err(Failure::Failed(e)) => {
                    samples.push(failed(key, "scaling_start", &phase, &e));
                    failure.get_or_insert(Failure::Failed(e));
                }
            }
        }
        for mut instance in instances {
            let _ = instance.stop();
        }
        if failure.is_none() {
            samples.push(sample(key, "scaling_rate", &phase, 0, k as f64 / all_ready.as_secs_f64(), "instances/s"));
        }
        write(samples)?;
        match failure {
            Some(f @ (Failure::Interrupted | Failure::Store(_))) => return Err(f),
            // Larger K would fail too: the failure is recorded, stop here.
            Some(Failure::Failed(_)) => return Ok(()),
            None => k *= 2,
        }
    }
    Ok(())
}

/// `density` (the cause in its detail) and `density_pss_per_instance`: the
/// instances' total PSS at the stop ÷ their count.
fn density(launcher: &Launcher<'_>, key: &TrialKey, options: &Options) -> Result<Vec<Sample>, Failure> {
    if let Some(tenants) = tenant_density(launcher, key, options)? {
        return Ok(tenants);
    }
    let interrupted = launcher.interrupted;
    let o = &options.scaling;
    let budget_kib = o.memory_budget_mib * 1024;
    let mut instances: Vec<Box<dyn Instance>> = Vec::new();
    let mut pss_kib = 0;
    let (fit, cause) = loop {
        if instances.len() >= o.max_instances {
            break (instances.len(), format!("instance bound: {} instances (--scaling bound)", o.max_instances));
        }
        let instance = match launcher.launch(&instance_key(key, &format!("d{}", instances.len()))) {
            Ok((instance, _)) => instance,
            Err(Failure::Interrupted) => {
                stop_all(instances);
                return Err(Failure::Interrupted);
            }
            Err(f @ Failure::Store(_)) => {
                stop_all(instances);
                return Err(f);
            }
            Err(Failure::Failed(e)) => break (instances.len(), format!("start failed: {e}")),
        };
        instances.push(instance);
        pss_kib = instances.iter().map(|i| resources::memory(&i.pids()).pss_kib).sum::<u64>();
        if pss_kib > budget_kib {
            break (instances.len() - 1, format!("memory budget: {} MiB of PSS exceeded", o.memory_budget_mib));
        }
        let newest = instances.last().expect("just pushed");
        match short_run_p99(newest.addr(), &newest.addr().to_string(), key, interrupted) {
            Ok(p99_ms) if p99_ms > o.slo_p99_ms => {
                break (
                    instances.len() - 1,
                    format!(
                        "latency objective: p99 {p99_ms:.2} ms > {} ms with {} instances",
                        o.slo_p99_ms,
                        instances.len()
                    ),
                );
            }
            Ok(_) => {}
            Err(e) if e == "interrupted" => {
                stop_all(instances);
                return Err(Failure::Interrupted);
            }
            Err(e) => break (instances.len() - 1, format!("requests failed: {e}")),
        }
    };
    if interrupted.load(std::sync::atomic::Ordering::SeqCst) {
        // Cut short: not a density, whatever cause ended the loop.
        stop_all(instances);
        return Err(Failure::Interrupted);
    }
    let count = instances.len().max(1) as f64;
    stop_all(instances);
    let mut s = sample(key, "density", "", 0, fit as f64, "instances");
    s.detail = cause;
    Ok(vec![s, sample(key, "density_pss_per_instance", "", 0, pss_kib as f64 / count, "KiB")])
}

/// Density in tenants of one instance, for a runtime that takes them (else
/// `None`): tenants are added one at a time until the process's PSS exceeds
/// the memory budget, p99 of a short run on the newest tenant breaks the
/// latency objective, a deploy fails, or `--tenants-max` is reached.
fn tenant_density(launcher: &Launcher<'_>, key: &TrialKey, options: &Options) -> Result<Option<Vec<Sample>>, Failure> {
    let o = &options.scaling;
    let (mut instance, _) = launcher.launch(&instance_key(key, "tenants"))?;
    let budget_kib = o.memory_budget_mib * 1024;
    // The component the instance started with is its first tenant.
    let mut tenants = 1;
    let mut pss_kib = resources::memory(&instance.pids()).pss_kib;
    let cause = loop {
        if launcher.interrupted.load(std::sync::atomic::Ordering::SeqCst) {
            let _ = instance.stop();
            return Err(Failure::Interrupted);
        }
        if tenants >= o.max_tenants {
            break format!("tenant bound: {} tenants (--tenants-max)", o.max_tenants);
        }
        let name = format!("t{tenants}");
        match instance.add_tenant(&name) {
            None => {
                let _ = instance.stop();
                return Ok(None);
            }
            Some(Err(e)) => break format!("deploy failed: {e:#}"),
            Some(Ok(())) => {}
        }
        let pss = resources::memory(&instance.pids()).pss_kib;
        if pss > budget_kib {
            break format!("memory budget: {} MiB of PSS exceeded with {} tenants", o.memory_budget_mib, tenants + 1);
        }
        match short_run_p99(instance.addr(), &name, key, launcher.interrupted) {
            Ok(p99_ms) if p99_ms > o.slo_p99_ms => {
                break format!(
                    "latency objective: p99 {p99_ms:.2} ms > {} ms with {} tenants",
                    o.slo_p99_ms,
                    tenants + 1
                );
            }
            Ok(_) => {}
            Err(e) if e == "interrupted" => continue,
            Err(e) => break format!("requests failed: {e}"),
        }
        tenants += 1;
        pss_kib = pss;
    };
    let _ = instance.stop();
    let mut s = sample(key, "density", "", 0, tenants as f64, "instances");
    s.detail = format!("tenants in one host process; {cause}");
    Ok(Some(vec![s, sample(key, "density_pss_per_instance", "", 0, pss_kib as f64 / tenants as f64, "KiB")]))
}

/// p99 (ms) of 50 keep-alive requests (after 5 unrecorded) to `addr` with
/// `Host: host`, or why they failed (`interrupted` when interrupted).
fn short_run_p99(
    addr: std::net::SocketAddr,
    host: &str,
    key: &TrialKey,
    interrupted: &AtomicBool,
) -> Result<f64, String> {
    let request = http::encode(&key.workload.latency_request(), host, false);
    let expected = key.workload.expected_latency();
    let run =
        Run { addr, request: &request, warmup: 5, count: 50, time_limit: None, interrupted, expected: Some(&expected) };
    let mut latencies = run.keepalive().map_err(|(e, _)| e)?;
    latencies.sort_unstable();
    Ok(latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)] as f64 / 1e6)
}

fn stop_all(instances: Vec<Box<dyn Instance>>) {
    for mut i in instances {
        let _ = i.stop();
    }
}

fn ms(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1e6
}
