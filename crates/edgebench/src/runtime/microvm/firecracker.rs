//! `firecracker`: the Firecracker VMM, driven over its API socket.
//!
//! Variants carry the virtualisation mode: `linux-<mode>` boots our Linux
//! guest and serves the workload (needs hardware KVM: under KVM-PVM a stock
//! Linux guest never reaches user space, so there it is "not measured" with
//! that reason, never a number); `vmm-floor-<mode>` measures the VMM itself
//! with a minimal guest edgebench writes (see `floor`), under its own metric
//! names.

mod api;
mod floor;
mod floor_guest;

pub use floor::parse_boot_timer;

use super::guest::{GuestFiles, MODULES};
use super::netns::{Netns, GUEST_MAC, TAP};
use super::qemu::VmInstance;
use super::{host_mode, privilege_problem};
use crate::artifacts::Artifacts;
use crate::runtime::process::{scratch_dir, spawn, Launch, WarmMode};
use crate::runtime::{Context, Detection, Instance, LaunchSpec, OwnSample, Runtime};
use anyhow::{bail, Context as _, Result};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

pub const PVM_REASON: &str = "not measured: this host's KVM is PVM (kvm_pvm, no vmx/svm): a stock Linux guest does \
                              not reach user space; the vmm-floor variant measures the VMM itself";
const LINUX_MEMORY_MIB: u64 = 256;

pub struct Firecracker {
    bin: Option<PathBuf>,
    /// Created by the first vmm-floor trial, restored by every one.
    snapshot: Mutex<Option<floor::Snapshot>>,
}

impl Firecracker {
    /// The binary named by `EDGEBENCH_FIRECRACKER`, else `firecracker` on PATH.
    pub fn from_env() -> Firecracker {
        Firecracker::with_binary(std::env::var_os("EDGEBENCH_FIRECRACKER").map(PathBuf::from))
    }

    pub fn with_binary(bin: Option<PathBuf>) -> Firecracker {
        Firecracker { bin, snapshot: Mutex::new(None) }
    }

    fn binary(&self) -> Option<PathBuf> {
        self.bin.clone().or_else(|| crate::runtime::which("firecracker"))
    }

    fn floor_kernel(ctx: &Context<'_>) -> Result<PathBuf> {
        let path = ctx.work_dir.join("state/vmm-floor.elf");
        std::fs::create_dir_all(path.parent().unwrap())?;
        std::fs::write(&path, floor_guest::elf())?;
        Ok(path)
    }
}

impl Runtime for Firecracker {
    /// The VM sits in a namespace of its own, reached over a veth of its own.
    fn network_placement(&self, _variant: &str) -> crate::runtime::Placement {
        crate::runtime::Placement::OwnNamespace
    }

    fn name(&self) -> &'static str {
        "firecracker"
    }

    fn variants(&self) -> &'static [&'static str] {
        match host_mode().as_str() {
            "hardware-kvm" => &["linux-kvm", "vmm-floor-kvm"],
            "kvm-pvm" => &["linux-pvm", "vmm-floor-pvm"],
            _ => &["linux", "vmm-floor"],
        }
    }

    fn serving_model(&self, _variant: &str) -> String {
        "1 vCPU guest (vmm-floor: no server, the boot timer only; linux: the native server); Firecracker's threads on the SUT set".into()
    }

    fn network_path(&self, _variant: &str) -> String {
        "vmm-floor: none (the boot timer is read from the VMM); linux: directly to the guest's address over a veth into the VM's own namespace (no relay; a firewall profile goes into that namespace's forward chain)".into()
    }

    fn artifact(&self, _variant: &str) -> crate::runtime::ArtifactKind {
        crate::runtime::ArtifactKind::LinuxGuest
    }

    fn detect(&self, artifacts: &Artifacts) -> Detection {
        let Some(bin) = self.binary().filter(|b| crate::runtime::is_executable(b)) else {
            return Detection::missing(
                "firecracker not found: put it on PATH (release from github.com/firecracker-microvm/firecracker, \
                 or built from source) or set EDGEBENCH_FIRECRACKER",
            );
        };
        if std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_err() {
            return Detection::missing("/dev/kvm is missing or not accessible: Firecracker needs KVM");
        }
        if let Some(why) = privilege_problem() {
            return Detection::missing(why);
        }
        let version = crate::runtime::version_of(&bin, &["--version"]).unwrap_or_default();
        let guest = GuestFiles::new(artifacts);
        Detection::found(format!("{version}; guest kernel {}; host {}", guest.kernel_release(), host_mode()), bin)
    }

    fn notes(&self, _workload: crate::Workload) -> Option<String> {
        Some(format!(
            "variant = guest + virtualisation mode (host: {}). vmm-floor: Firecracker with a minimal guest that \
             only writes its boot timer; metrics vmm_boot / vmm_boot_timer / vmm_restore measure the VMM, not a \
             workload, and are the same for every workload",
            host_mode()
        ))
    }

    fn ready_timeout(&self, _variant: &str) -> Duration {
        Duration::from_secs(30)
    }

    fn setup(&self, _ctx: &Context<'_>) -> Result<()> {
        super::netns::remove_leftovers();
        Ok(())
    }

    fn teardown(&self, ctx: &Context<'_>) {
        self.snapshot.lock().unwrap_or_else(|p| p.into_inner()).take();
        let _ = std::fs::remove_dir_all(ctx.work_dir.join("state/firecracker-snapshot"));
    }

    fn serves_workloads(&self, variant: &str) -> std::result::Result<(), String> {
        if variant.starts_with("vmm-floor") {
            return Err("vmm-floor boots a minimal guest that serves nothing: it measures the VMM".into());
        }
        if host_mode() == "kvm-pvm" {
            return Err(PVM_REASON.into());
        }
        Ok(())
    }

    fn own_trial(&self, ctx: &Context<'_>, spec: &LaunchSpec<'_>) -> Option<Vec<OwnSample>> {
        if !spec.variant.starts_with("vmm-floor") {
            // A Linux guest this host cannot boot: one failed sample per trial, never a number.
            return self.serves_workloads(spec.variant).err().map(|why| vec![OwnSample::failed("cold_start", "", why)]);
        }
        let Some(bin) = self.binary() else { return Some(vec![OwnSample::failed("vmm_boot", "", "no firecracker")]) };
        Some(match Self::floor_kernel(ctx) {
            Ok(kernel) => floor::trial(&bin, ctx, spec, &kernel, &self.snapshot),
            Err(e) => vec![OwnSample::failed("vmm_boot", "", format!("writing the floor guest: {e:#}"))],
        })
    }

    fn launch(&self, ctx: &Context<'_>, spec: &LaunchSpec<'_>) -> Result<Box<dyn Instance>> {
        if let Err(why) = self.serves_workloads(spec.variant) {
            bail!("firecracker {}: {why}", spec.variant);
        }
        let bin = self.binary().context("firecracker not found")?;
        let guest = GuestFiles::new(ctx.artifacts);
        let kernel = guest.vmlinux();
        if !kernel.is_file() {
            bail!(
                "guest kernel {} (ELF, extracted from Debian's bzImage with lz4) does not exist: run `edgebench build`",
                kernel.display()
            );
        }
        let args = format!(
            "console=ttyS0 reboot=k panic=1 quiet {} eb.workload={} eb.modules={}",
            "{addrs}",
            spec.workload.name(),
            MODULES.join(",")
        );
        let guest = Guest {
            kernel,
            initrd: Some(guest.initramfs()),
            args,
            memory_mib: LINUX_MEMORY_MIB,
            boot_timer: false,
            port: super::GUEST_PORT,
        };
        let vm = boot(&bin, ctx, spec, &guest)?;
        Ok(Box::new(vm))
    }
}

/// What Firecracker boots: a kernel (+ initrd), its command line (`{addrs}`
/// stands for the guest's `eb.ip=… eb.gw=…`), memory, and the port it serves.
pub struct Guest {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub args: String,
    pub memory_mib: u64,
    /// Start with `--boot-timer` and tell the guest (`eb.boot_timer`) to write it.
    pub boot_timer: bool,
    pub port: u16,
}

/// Starts Firecracker in a namespace of its own and boots `guest` through
/// its API; t0 is taken inside `spawn`, the API's phases are kept.
pub fn boot(bin: &std::path::Path, ctx: &Context<'_>, spec: &LaunchSpec<'_>, guest: &Guest) -> Result<VmInstance> {
    let ns = Netns::create()?;
    let firewall = ns.apply_firewall(spec.firewall)?;
    let dir = scratch_dir(&ctx.work_dir, &spec.label)?;
    let socket = dir.join("api.sock");
    let mut command = Launch::new(bin);
    command.arg("--api-sock").arg(&socket);
    if guest.boot_timer {
        // The boot timer's line is logged at Info.
        command.args(["--boot-timer", "--level", "Info"]);
    } else {
        command.args(["--level", "Warning"]);
    }
    ns.enter_on_spawn(&mut command)?;
    let log = ctx.work_dir.join("logs").join(format!("{}.log", spec.label));
    let mut process = spawn(command, &ctx.env, spec.addr, log, Some(dir), WarmMode::None)?;
    let t0 = process.launched_at();
    let api = api::Api::new(&socket);
    api.wait_ready(Duration::from_secs(10), &mut || process.exited())?;
    let api_ready = t0.elapsed();
    let mut args = super::render_args(&guest.args, &ns.addrs(), guest.port, spec.workload);
    if guest.boot_timer {
        args.push_str(" eb.boot_timer");
    }
    let mut boot = serde_json::json!({
        "kernel_image_path": guest.kernel.display().to_string(),
        "boot_args": args,
    });
    if let Some(initrd) = &guest.initrd {
        boot["initrd_path"] = initrd.display().to_string().into();
    }
    api.call("PUT", "/boot-source", &boot.to_string())?;
    let machine = serde_json::json!({ "vcpu_count": 1, "mem_size_mib": guest.memory_mib });
    api.call("PUT", "/machine-config", &machine.to_string())?;
    let net = serde_json::json!({ "iface_id": "eth0", "host_dev_name": TAP, "guest_mac": GUEST_MAC });
    api.call("PUT", "/network-interfaces/eth0", &net.to_string())?;
    api.call("PUT", "/actions", r#"{"action_type":"InstanceStart"}"#)?;
    let instance_start = t0.elapsed();
    let mut vm = VmInstance::on_port(process, ns, guest.memory_mib * 1024, guest.port);
    vm.firewall = firewall;
    vm.phases = vec![("api_ready".into(), api_ready), ("instance_start".into(), instance_start)];
    vm.boot_timer = guest.boot_timer;
    Ok(vm)
}
