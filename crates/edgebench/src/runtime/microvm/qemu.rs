//! `qemu-microvm`: QEMU's `microvm` machine booting our guest. Variant `kvm`
//! where the CPU has VT-x/AMD-V, `tcg` (QEMU's emulator) everywhere: the
//! variant names the mode so that a TCG figure is never read as a KVM one.
//! Under KVM-PVM the stock Debian kernel does not reach init: variant `kvm-pvm`
//! is listed and reported "not measured" with that reason, never a number.

use super::guest::{GuestFiles, MODULES};
use super::netns::{Netns, VmAddrs, GUEST_MAC, TAP};
use super::{guest_addr, host_mode, host_tsc_khz, memory, privilege_problem};
use crate::artifacts::Artifacts;
use crate::runtime::process::{spawn, Launch, ProcessInstance, WarmMode};
use crate::runtime::{Context, Detection, ExtraResource, Instance, LaunchSpec, OwnSample, Runtime, WarmStart};
use anyhow::{bail, Context as _, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const QEMU: &str = "qemu-system-x86_64";
const GUEST_MEMORY_MIB: u64 = 256;
pub const KVM_PVM_REASON: &str = "not measured: this host's KVM is PVM (kvm_pvm, no vmx/svm): the stock Debian \
                                  kernel does not reach init under it; the tcg variant boots the same guest";

pub struct QemuMicrovm {
    /// A kernel of the user's (`EDGEBENCH_VM_KERNEL`) instead of Debian's: it
    /// must have virtio-mmio and virtio-net built in (no modules are loaded).
    kernel: Option<PathBuf>,
}

impl QemuMicrovm {
    pub fn from_env() -> QemuMicrovm {
        QemuMicrovm { kernel: std::env::var_os("EDGEBENCH_VM_KERNEL").map(PathBuf::from) }
    }

    pub fn with_kernel(kernel: PathBuf) -> QemuMicrovm {
        QemuMicrovm { kernel: Some(kernel) }
    }

    fn qemu() -> Option<PathBuf> {
        std::env::var_os("EDGEBENCH_QEMU").map(PathBuf::from).or_else(|| crate::runtime::which(QEMU))
    }

    fn command(&self, qemu: PathBuf, guest: &GuestFiles, spec: &LaunchSpec<'_>, addrs: VmAddrs) -> Result<Launch> {
        let kernel = self.kernel.clone().unwrap_or_else(|| guest.kernel());
        if !kernel.is_file() {
            bail!(
                "guest kernel {} does not exist: run `edgebench build` (fetches Debian's {}) or point \
                 EDGEBENCH_VM_KERNEL at a kernel image",
                kernel.display(),
                super::guest::KERNEL_PACKAGE
            );
        }
        let mut append = vec![
            "console=ttyS0".to_string(),
            "quiet".into(),
            "panic=-1".into(),
            addrs.kernel_args(),
            format!("eb.workload={}", spec.workload.name()),
        ];
        if self.kernel.is_none() {
            append.push(format!("eb.modules={}", MODULES.join(",")));
        }
        let accel = match spec.variant {
            "kvm" => ["-accel", "kvm", "-cpu", "host"],
            _ => {
                // TCG: the kernel's TSC calibration against the emulated PIT takes seconds.
                if let Some(khz) = host_tsc_khz() {
                    append.push(format!("tsc_early_khz={khz}"));
                }
                ["-accel", "tcg", "-cpu", "max"]
            }
        };
        let mut c = Launch::new(qemu);
        c.args(["-M", "microvm", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"])
            .args(accel)
            .args(["-m", &format!("{GUEST_MEMORY_MIB}M"), "-smp", "1", "-serial", "stdio"])
            .arg("-kernel")
            .arg(kernel)
            .arg("-initrd")
            .arg(guest.initramfs())
            .args(["-append", &append.join(" ")])
            .args(["-netdev", &format!("tap,id=net0,ifname={TAP},script=no,downscript=no")])
            .args(["-device", &format!("virtio-net-device,netdev=net0,mac={GUEST_MAC}")]);
        Ok(c)
    }
}

impl Runtime for QemuMicrovm {
    /// The VM sits in a namespace of its own, reached over a veth of its own.
    fn network_placement(&self, _variant: &str) -> crate::runtime::Placement {
        crate::runtime::Placement::OwnNamespace
    }

    fn name(&self) -> &'static str {
        "qemu-microvm"
    }

    fn variants(&self) -> &'static [&'static str] {
        match host_mode().as_str() {
            "hardware-kvm" => &["kvm", "tcg"],
            "kvm-pvm" => &["tcg", "kvm-pvm"],
            _ => &["tcg"],
        }
    }

    fn serving_model(&self, _variant: &str) -> String {
        "1 vCPU guest running the native server (one thread per connection); QEMU's threads on the SUT set".into()
    }

    fn network_path(&self, _variant: &str) -> String {
        "directly to the guest's address: a veth from the host into the VM's own namespace, which routes to the guest's tap (no relay); a firewall profile goes into that namespace's forward chain, in front of the guest".into()
    }

    fn serves_workloads(&self, variant: &str) -> std::result::Result<(), String> {
        if variant == "kvm-pvm" {
            return Err(KVM_PVM_REASON.into());
        }
        Ok(())
    }

    fn own_trial(&self, _ctx: &Context<'_>, spec: &LaunchSpec<'_>) -> Option<Vec<OwnSample>> {
        // One failed sample per trial with the reason, never a number.
        self.serves_workloads(spec.variant).err().map(|why| vec![OwnSample::failed("cold_start", "", why)])
    }

    fn artifact(&self, _variant: &str) -> crate::runtime::ArtifactKind {
        crate::runtime::ArtifactKind::LinuxGuest
    }

    fn detect(&self, artifacts: &Artifacts) -> Detection {
        let Some(qemu) = Self::qemu() else {
            return Detection::missing(format!("{QEMU} not found: apt-get install qemu-system-x86"));
        };
        if let Some(why) = privilege_problem() {
            return Detection::missing(why);
        }
        let guest = GuestFiles::new(artifacts);
        if self.kernel.is_none() {
            if let Some(why) = guest.missing() {
                return Detection::missing(why);
            }
        } else if !guest.initramfs().exists() {
            return Detection::missing(format!("{} is not built: run `edgebench build`", guest.initramfs().display()));
        }
        let version = crate::runtime::version_of(&qemu, &["--version"]).unwrap_or_default();
        let kernel = match &self.kernel {
            Some(k) => k.display().to_string(),
            None => guest.kernel_release(),
        };
        Detection::found(format!("{version}; guest kernel {kernel}; host {}", host_mode()), qemu)
    }

    fn notes(&self, _workload: crate::Workload) -> Option<String> {
        Some(format!(
            "variant = virtualisation mode (tcg: QEMU's emulator, not hardware virtualisation; host: {}). \
             Guest: Debian cloud kernel + edgebench's initramfs, 1 vCPU, {GUEST_MEMORY_MIB} MiB. The client \
             reaches the guest directly at its address over a veth into the VM's network namespace, which \
             routes to the guest's tap (both created before t0); memory: vmm_overhead_pss = QEMU PSS without the guest RAM mapping, \
             guest_memory = that mapping's PSS",
            host_mode()
        ))
    }

    fn ready_timeout(&self, variant: &str) -> Duration {
        // TCG boots a full kernel in an emulator: seconds, more when the host is busy.
        Duration::from_secs(if variant == "kvm" { 30 } else { 90 })
    }

    fn setup(&self, _ctx: &Context<'_>) -> Result<()> {
        super::netns::remove_leftovers();
        Ok(())
    }

    fn launch(&self, ctx: &Context<'_>, spec: &LaunchSpec<'_>) -> Result<Box<dyn Instance>> {
        if let Err(why) = self.serves_workloads(spec.variant) {
            bail!("qemu-microvm {}: {why}", spec.variant);
        }
        let qemu = Self::qemu().with_context(|| format!("{QEMU} not found: apt-get install qemu-system-x86"))?;
        let guest = GuestFiles::new(ctx.artifacts);
        let ns = Netns::create()?;
        let firewall = ns.apply_firewall(spec.firewall)?;
        let mut command = self.command(qemu, &guest, spec, ns.addrs())?;
        ns.enter_on_spawn(&mut command)?;
        let log = ctx.work_dir.join("logs").join(format!("{}.log", spec.label));
        let process = spawn(command, &ctx.env, spec.addr, log, None, WarmMode::None)?;
        let mut vm = VmInstance::new(process, ns, GUEST_MEMORY_MIB * 1024);
        vm.firewall = firewall;
        Ok(Box::new(vm))
    }
}

/// A VMM process and its namespace; the guest is reached at its own address.
pub struct VmInstance {
    pub process: ProcessInstance,
    pub ns: Netns,
    addr: SocketAddr,
    pub guest_kib: u64,
    /// Launch events after t0 (e.g. Firecracker's API ready, InstanceStart).
    pub phases: Vec<(String, Duration)>,
    /// The firewall profile applied in the VM's namespace before t0.
    pub firewall: Option<crate::network::Applied>,
    /// Firecracker started with `--boot-timer`: its log holds the guest's boot time.
    pub boot_timer: bool,
}

impl VmInstance {
    pub fn new(process: ProcessInstance, ns: Netns, guest_kib: u64) -> VmInstance {
        let addr = guest_addr(&ns.addrs());
        VmInstance { process, ns, addr, guest_kib, phases: Vec::new(), firewall: None, boot_timer: false }
    }

    /// As [`VmInstance::new`], the guest serving on `port`.
    pub fn on_port(process: ProcessInstance, ns: Netns, guest_kib: u64, port: u16) -> VmInstance {
        let mut vm = VmInstance::new(process, ns, guest_kib);
        vm.addr.set_port(port);
        vm
    }
}

impl Instance for VmInstance {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn launched_at(&self) -> Instant {
        self.process.launched_at()
    }

    fn exited(&mut self) -> Option<String> {
        self.process.exited()
    }

    fn pids(&self) -> Vec<u32> {
        self.process.pids()
    }

    fn stop(&mut self) -> Result<()> {
        let stopped = self.process.stop();
        self.ns.delete()?;
        stopped
    }

    fn log_tail(&self) -> String {
        self.process.log_tail()
    }

    fn launch_phases(&self) -> Vec<(String, Duration)> {
        self.phases.clone()
    }

    fn boot_figures(&self) -> Vec<ExtraResource> {
        if !self.boot_timer {
            return Vec::new();
        }
        let log = std::fs::read_to_string(self.process.log_path()).unwrap_or_default();
        let Some(us) = log.lines().find_map(super::parse_boot_timer) else { return Vec::new() };
        let figure = us as f64 / 1e3;
        vec![ExtraResource { metric: "vmm_boot_timer".into(), value: figure, unit: "ms".into() }]
    }

    fn firewall_applied(&self) -> Option<crate::network::Applied> {
        self.firewall.clone()
    }

    fn extra_resources(&self) -> Vec<ExtraResource> {
        memory::resources(self.process.pid(), self.guest_kib)
    }

    fn warm_start(&mut self, _workload: crate::Workload) -> WarmStart {
        WarmStart::NotApplicable(
            "micro-VM: snapshot restore is not measured; every start is a cold boot of the VMM and guest".into(),
        )
    }
}
