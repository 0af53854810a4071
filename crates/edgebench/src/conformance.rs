//! The conformance check: the same request sequence sent to a workload on a
//! runtime must give exactly the status codes and bodies of the workload core.
//! This is what makes comparing runtimes fair.

use crate::campaign::{launch_until_ready, Failure, TrialKey};
use crate::measure::http;
use crate::runtime::{Context, Runtime};
use crate::workload::{conformance_requests, probe_request, reference_responses};
use crate::Workload;
use anyhow::{bail, Result};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// Launches `workload` on `runtime`, sends the sequence, stops the instance.
/// Returns the mismatches (empty when the runtime conforms).
pub fn check(runtime: &dyn Runtime, variant: &str, workload: Workload, ctx: &Context<'_>) -> Result<Vec<String>> {
    if let Err(why) = runtime.serves_workloads(variant) {
        eprintln!("conformance: {} {variant} not checked: {why}", runtime.name());
        return Ok(Vec::new());
    }
    let key = TrialKey::new(runtime.name(), variant, workload, 0).with_label_suffix("conformance");
    let never = AtomicBool::new(false);
    let (mut instance, _) = match launch_until_ready(runtime, &key, ctx, &never) {
        Ok(x) => x,
        Err(Failure::Failed(e) | Failure::Store(e)) => bail!("{}: {e}", key.label()),
        Err(Failure::Interrupted) => bail!("interrupted"),
    };
    let requests = conformance_requests(workload);
    let mut all = vec![probe_request(workload)];
    all.extend(requests.iter().cloned());
    let expected = reference_responses(workload, &all);
    let host = instance.addr().to_string();
    let mut mismatches = Vec::new();
    for (request, (status, body)) in requests.iter().zip(expected.iter().skip(1)) {
        let bytes = http::encode(request, &host, true);
        match http::one_shot(instance.addr(), &bytes, Duration::from_secs(10)) {
            Ok(r) if r.status == *status && r.body == *body => {}
            Ok(r) => mismatches.push(format!(
                "{} {} {}: got {} {:?}, expected {} {:?}",
                key.label(),
                request.method,
                request.target,
                r.status,
                String::from_utf8_lossy(&r.body),
                status,
                String::from_utf8_lossy(body)
            )),
            Err(e) => mismatches.push(format!("{} {} {}: {e}", key.label(), request.method, request.target)),
        }
    }
    instance.stop()?;
    Ok(mismatches)
}
