//! The `vmm-floor` trial: Firecracker booting the minimal guest of
//! `floor_guest`, timed from the host, with Firecracker's own boot timer
//! beside it; then a snapshot restore of the same guest.
//!
//! Metrics (host-observed, t0 just before spawning firecracker):
//! - `vmm_boot` phases `api_ready`, `configured`, `instance_start` (the
//!   InstanceStart response), `boot_timer_seen` (the boot timer's log line
//!   read by edgebench; it is polled only after the InstanceStart response,
//!   so it cannot be earlier than that); `vmm_boot_timer`: Firecracker's own
//!   figure (InstanceStart request received → the guest's write).
//! - `vmm_restore` phases `api_ready`, `resumed` (snapshot load with resume
//!   answered), from a snapshot created once per campaign.
//! - `vmm_overhead_pss`, `guest_memory` (phase `vmm-floor`): firecracker's PSS
//!   without / of the guest memory mapping, after the boot timer fired.

use super::api::Api;
use crate::runtime::microvm::memory;
use crate::runtime::process::{scratch_dir, spawn, Launch, ProcessInstance, WarmMode};
use crate::runtime::{Context, Instance, LaunchSpec, OwnSample};
use anyhow::{bail, Context as _, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const GUEST_MEMORY_MIB: u64 = 32;
const API_TIMEOUT: Duration = Duration::from_secs(10);
const BOOT_TIMER_TIMEOUT: Duration = Duration::from_secs(20);
const BOOT_TIMER_LINE: &str = "Guest-boot-time =";

/// Files of the snapshot the restores start from.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub state: PathBuf,
    pub memory: PathBuf,
}

pub fn trial(
    bin: &Path,
    ctx: &Context<'_>,
    spec: &LaunchSpec<'_>,
    kernel: &Path,
    snapshot: &std::sync::Mutex<Option<Snapshot>>,
) -> Vec<OwnSample> {
    let mut out = Vec::new();
    let mut snapshot = snapshot.lock().unwrap_or_else(|p| p.into_inner());
    match cold_boot(bin, ctx, spec, kernel, &mut out, snapshot.is_none()) {
        Ok(Some(created)) => *snapshot = Some(created),
        Ok(None) => {}
        Err(e) => {
            out.push(OwnSample::failed("vmm_boot", "", format!("{e:#}")));
            return out;
        }
    }
    if let Some(s) = snapshot.as_ref() {
        if let Err(e) = restore(bin, ctx, spec, s, &mut out) {
            out.push(OwnSample::failed("vmm_restore", "", format!("{e:#}")));
        }
    }
    out
}

fn start(bin: &Path, ctx: &Context<'_>, spec: &LaunchSpec<'_>, name: &str) -> Result<(ProcessInstance, Api)> {
    let dir = scratch_dir(&ctx.work_dir, &format!("{}-{name}", spec.label))?;
    let socket = dir.join("api.sock");
    let mut command = Launch::new(bin);
    command.arg("--api-sock").arg(&socket).args(["--boot-timer", "--level", "Info"]);
    let log = ctx.work_dir.join("logs").join(format!("{}-{name}.log", spec.label));
    let process = spawn(command, &ctx.env, spec.addr, log, Some(dir), WarmMode::None)?;
    Ok((process, Api::new(&socket)))
}

/// Boots the floor guest; creates the snapshot when `make_snapshot`.
fn cold_boot(
    bin: &Path,
    ctx: &Context<'_>,
    spec: &LaunchSpec<'_>,
    kernel: &Path,
    out: &mut Vec<OwnSample>,
    make_snapshot: bool,
) -> Result<Option<Snapshot>> {
    let (mut vm, api) = start(bin, ctx, spec, "boot")?;
    let t0 = vm.launched_at();
    api.wait_ready(API_TIMEOUT, &mut || vm.exited())?;
    out.push(OwnSample::ms("vmm_boot", "api_ready", t0.elapsed()));
    let boot = serde_json::json!({ "kernel_image_path": kernel.display().to_string(), "boot_args": "console=none" });
    api.call("PUT", "/boot-source", &boot.to_string())?;
    let machine = serde_json::json!({ "vcpu_count": 1, "mem_size_mib": GUEST_MEMORY_MIB });
    api.call("PUT", "/machine-config", &machine.to_string())?;
    out.push(OwnSample::ms("vmm_boot", "configured", t0.elapsed()));
    api.call("PUT", "/actions", r#"{"action_type":"InstanceStart"}"#)?;
    out.push(OwnSample::ms("vmm_boot", "instance_start", t0.elapsed()));
    let reported = wait_boot_timer(&mut vm)?;
    out.push(OwnSample::ms("vmm_boot", "boot_timer_seen", t0.elapsed()));
    out.push(OwnSample::ms("vmm_boot_timer", "", reported));
    for r in memory::resources(vm.pid(), GUEST_MEMORY_MIB * 1024) {
        out.push(OwnSample { metric: r.metric, phase: "vmm-floor".into(), value: Ok(r.value), unit: r.unit });
    }
    let created = if make_snapshot { Some(create_snapshot(ctx, &api)?) } else { None };
    vm.stop()?;
    Ok(created)
}

fn create_snapshot(ctx: &Context<'_>, api: &Api) -> Result<Snapshot> {
    let dir = ctx.work_dir.join("state/firecracker-snapshot");
    std::fs::create_dir_all(&dir)?;
    let s = Snapshot { state: dir.join("vm.snap"), memory: dir.join("vm.mem") };
    api.call("PATCH", "/vm", r#"{"state":"Paused"}"#)?;
    let body = serde_json::json!({ "snapshot_type": "Full", "snapshot_path": s.state.display().to_string(), "mem_file_path": s.memory.display().to_string() });
    api.call("PUT", "/snapshot/create", &body.to_string()).context("creating the snapshot")?;
    Ok(s)
}

fn restore(bin: &Path, ctx: &Context<'_>, spec: &LaunchSpec<'_>, s: &Snapshot, out: &mut Vec<OwnSample>) -> Result<()> {
    let (mut vm, api) = start(bin, ctx, spec, "restore")?;
    let t0 = vm.launched_at();
    api.wait_ready(API_TIMEOUT, &mut || vm.exited())?;
    out.push(OwnSample::ms("vmm_restore", "api_ready", t0.elapsed()));
    let body = serde_json::json!({
        "snapshot_path": s.state.display().to_string(),
        "mem_backend": { "backend_type": "File", "backend_path": s.memory.display().to_string() },
        "resume_vm": true,
    });
    api.call("PUT", "/snapshot/load", &body.to_string()).context("restoring the snapshot")?;
    out.push(OwnSample::ms("vmm_restore", "resumed", t0.elapsed()));
    if let Some(how) = vm.exited() {
        bail!("firecracker exited after the restore: {how}");
    }
    vm.stop()
}

/// Waits for the boot timer's log line; returns the time Firecracker reports.
fn wait_boot_timer(vm: &mut ProcessInstance) -> Result<Duration> {
    let deadline = Instant::now() + BOOT_TIMER_TIMEOUT;
    loop {
        let log = std::fs::read_to_string(vm.log_path()).unwrap_or_default();
        if let Some(us) = log.lines().find_map(parse_boot_timer) {
            return Ok(Duration::from_micros(us));
        }
        if let Some(how) = vm.exited() {
            bail!("firecracker exited before the guest wrote the boot timer: {how}");
        }
        if Instant::now() > deadline {
            bail!("no boot-timer signal within {BOOT_TIMER_TIMEOUT:?}; log: {}", vm.log_tail());
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// `... Guest-boot-time =   1234 us 1 ms, ...` → 1234.
pub fn parse_boot_timer(line: &str) -> Option<u64> {
    let rest = &line[line.find(BOOT_TIMER_LINE)? + BOOT_TIMER_LINE.len()..];
    let mut words = rest.split_whitespace();
    let us = words.next()?.parse().ok()?;
    (words.next() == Some("us")).then_some(us)
}

#[cfg(test)]
mod tests {
    #[test]
    fn boot_timer_line_is_parsed() {
        let line = "2026-11-28T15:00:00 [anonymous-instance:main] Guest-boot-time =  12034 us 12 ms, 3 CPU us 0 CPU ms";
        assert_eq!(super::parse_boot_timer(line), Some(12034));
        assert_eq!(super::parse_boot_timer("something else"), None);
    }
}
