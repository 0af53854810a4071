//! The conformance check: the same request sequence sent to a workload on a
//! runtime must give exactly the status codes and bodies of the workload core
//! (a user workload: the answers its definition declares). This is what makes
//! comparing runtimes fair.

use crate::campaign::{launch_until_ready_in, Failure, TrialKey};
use crate::measure::http;
use crate::network::Network;
use crate::runtime::{Context, Runtime};
use crate::Workload;
use anyhow::{bail, Result};
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// Launches `workload` on `runtime`, sends the sequence, stops the instance.
/// Returns the mismatches (empty when the runtime conforms).
pub fn check(runtime: &dyn Runtime, variant: &str, workload: Workload, ctx: &Context<'_>) -> Result<Vec<String>> {
    check_in(runtime, variant, workload, ctx, None)
}

/// [`check`], with the instance placed where a campaign's `network` puts it.
pub fn check_in(
    runtime: &dyn Runtime,
    variant: &str,
    workload: Workload,
    ctx: &Context<'_>,
    network: Option<&Network>,
) -> Result<Vec<String>> {
    if let Err(why) = runtime.serves_workloads(variant) {
        eprintln!("conformance: {} {variant} not checked: {why}", runtime.name());
        return Ok(Vec::new());
    }
    let key = TrialKey::new(runtime.name(), variant, workload, 0).with_label_suffix("conformance");
    let never = AtomicBool::new(false);
    let (mut instance, _) = match launch_until_ready_in(runtime, &key, ctx, &never, network) {
        Ok(x) => x,
        Err(Failure::Failed(e) | Failure::Store(e)) => bail!("{}: {e}", key.label()),
        Err(Failure::Interrupted) => bail!("interrupted"),
    };
    let mismatches = send(instance.addr(), workload, &key.label());
    instance.stop()?;
    Ok(mismatches)
}

/// Sends `workload`'s conformance sequence to a server already listening on
/// `addr` (started by a runtime, or by hand: the arm64 binaries under
/// qemu-user) and returns the mismatches, each prefixed with `label`.
pub fn send(addr: SocketAddr, workload: Workload, label: &str) -> Vec<String> {
    let host = addr.to_string();
    let mut mismatches = Vec::new();
    for (request, expected) in workload.conformance() {
        let bytes = http::encode(&request, &host, true);
        match http::one_shot(addr, &bytes, Duration::from_secs(10)) {
            Ok(r) => {
                if let Err(e) = expected.check(r.status, &r.body) {
                    mismatches.push(format!("{label} {} {}: {e}", request.method, request.target))
                }
            }
            Err(e) => mismatches.push(format!("{label} {} {}: {e}", request.method, request.target)),
        }
    }
    mismatches
}
