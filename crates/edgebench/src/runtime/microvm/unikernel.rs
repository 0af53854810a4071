//! `unikernel`: the four workloads as one unikernel image (crates/unikernel:
//! the shared handler core, smoltcp and a virtio-net driver, entered through
//! PVH), booted by QEMU's `microvm` machine or by Firecracker, each VM in a
//! network namespace of its own like the Linux guest. The variant names the
//! VMM and the virtualisation mode, so a TCG or PVM figure is never read as
//! a hardware-KVM one.
//!
//! A user's own unikernel (Unikraft, Nanos, OSv, Hermit, …) is booted the
//! same way: `EDGEBENCH_UNIKERNEL` (kernel), `EDGEBENCH_UNIKERNEL_ARGS` (its
//! command line, with the placeholders of [`super::render_args`]), and
//! optionally `EDGEBENCH_UNIKERNEL_INITRD`, `EDGEBENCH_UNIKERNEL_PORT`
//! (default 8080) and `EDGEBENCH_UNIKERNEL_MEMORY_MIB` (default 128). The
//! conformance check runs on it like on any runtime.

use super::firecracker::{self, Guest};
use super::netns::{Netns, GUEST_MAC, TAP};
use super::qemu::VmInstance;
use super::{host_mode, privilege_problem, render_args, GUEST_PORT};
use crate::artifacts::Artifacts;
use crate::runtime::process::{spawn, Launch, WarmMode};
use crate::runtime::{Context, Detection, ExtraResource, Instance, LaunchSpec, OwnSample, Placement, Runtime};
use crate::Workload;
use anyhow::{bail, Context as _, Result};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// Our image's command line: what `crates/unikernel` reads.
const OUR_ARGS: &str = "eb.ip={ip}/{prefix} eb.gw={gateway} eb.workload={workload} eb.port={port} eb.tsc_khz={tsc_khz}";
/// Our image's memory: its 8 MiB heap and 256 KiB stack, and room.
const OUR_MEMORY_MIB: u64 = 32;

/// A unikernel image built elsewhere, as the user describes it.
#[derive(Clone, Debug)]
pub struct UserImage {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub args: String,
    pub port: u16,
    pub memory_mib: u64,
}

impl UserImage {
    /// From `EDGEBENCH_UNIKERNEL*`; `Err` names what is wrong.
    pub fn from_env() -> std::result::Result<Option<UserImage>, String> {
        let Some(kernel) = std::env::var_os("EDGEBENCH_UNIKERNEL").map(PathBuf::from) else { return Ok(None) };
        let args = std::env::var("EDGEBENCH_UNIKERNEL_ARGS").map_err(|_| {
            "EDGEBENCH_UNIKERNEL is set but EDGEBENCH_UNIKERNEL_ARGS is not: give the image's command line, with \
             {ip} {prefix} {gateway} {port} {workload} where the guest's address, port and workload go"
                .to_string()
        })?;
        let number = |var: &str, default: u64| -> std::result::Result<u64, String> {
            match std::env::var(var) {
                Err(_) => Ok(default),
                Ok(v) => v.parse().map_err(|_| format!("{var}={v:?} is not a whole number")),
            }
        };
        let port = number("EDGEBENCH_UNIKERNEL_PORT", GUEST_PORT as u64)?;
        Ok(Some(UserImage {
            kernel,
            initrd: std::env::var_os("EDGEBENCH_UNIKERNEL_INITRD").map(PathBuf::from),
            args,
            port: u16::try_from(port).map_err(|_| format!("EDGEBENCH_UNIKERNEL_PORT={port} is not a port"))?,
            memory_mib: number("EDGEBENCH_UNIKERNEL_MEMORY_MIB", 128)?,
        }))
    }
}

pub struct Unikernel {
    /// `Err`: the user's description is wrong (reported by `detect`).
    user: std::result::Result<Option<UserImage>, String>,
    firecracker: Option<PathBuf>,
    image_kib: Mutex<Option<f64>>,
}

impl Unikernel {
    pub fn from_env() -> Unikernel {
        let firecracker = std::env::var_os("EDGEBENCH_FIRECRACKER")
            .map(PathBuf::from)
            .or_else(|| crate::runtime::which("firecracker"))
            .filter(|b| crate::runtime::is_executable(b));
        Unikernel { user: UserImage::from_env(), firecracker, image_kib: Mutex::new(None) }
    }

    /// A runtime booting `image` instead of ours (tests, and users through the env).
    pub fn with_image(image: UserImage) -> Unikernel {
        Unikernel { user: Ok(Some(image)), ..Unikernel::from_env() }
    }

    fn image(&self, artifacts: &Artifacts, workload: Workload) -> Result<UserImage> {
        if let Some(user) = workload.user() {
            let image =
                user.unikernel.as_ref().with_context(|| format!("workload {workload} has no unikernel image"))?;
            return Ok(UserImage {
                kernel: image.image.clone(),
                initrd: None,
                args: image.args.clone(),
                port: image.port,
                memory_mib: image.memory_mib,
            });
        }
        match &self.user {
            Err(why) => bail!("{why}"),
            Ok(Some(user)) => Ok(user.clone()),
            Ok(None) => Ok(UserImage {
                kernel: artifacts.unikernel(),
                initrd: None,
                args: OUR_ARGS.into(),
                port: GUEST_PORT,
                memory_mib: OUR_MEMORY_MIB,
            }),
        }
    }

    fn is_ours(&self) -> bool {
        matches!(self.user, Ok(None))
    }

    fn qemu() -> Option<PathBuf> {
        std::env::var_os("EDGEBENCH_QEMU").map(PathBuf::from).or_else(|| crate::runtime::which("qemu-system-x86_64"))
    }

    fn qemu_command(&self, qemu: PathBuf, image: &UserImage, variant: &str, args: String) -> Launch {
        let accel: &[&str] = match variant {
            "qemu-kvm" => &["-accel", "kvm", "-cpu", "host"],
            // QEMU's `-cpu host` aborts on PVM unless this flag is dropped.
            "qemu-kvm-pvm" => &["-accel", "kvm", "-cpu", "host,-arch-capabilities"],
            _ => &["-accel", "tcg", "-cpu", "max"],
        };
        // Every virtio-mmio window on the first IOAPIC, where our image
        // looks for its NIC's line (an image that reads the windows QEMU adds
        // to a Linux command line finds them either way).
        let mut c = Launch::new(qemu);
        c.args(["-M", "microvm,ioapic2=off", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"])
            .args(accel)
            .args(["-m", &format!("{}M", image.memory_mib), "-smp", "1", "-serial", "stdio"])
            .arg("-kernel")
            .arg(&image.kernel);
        if let Some(initrd) = &image.initrd {
            c.arg("-initrd").arg(initrd);
        }
        c.args(["-append", &args])
            .args(["-netdev", &format!("tap,id=net0,ifname={TAP},script=no,downscript=no")])
            .args(["-device", &format!("virtio-net-device,netdev=net0,mac={GUEST_MAC}")]);
        c
    }
}

impl Runtime for Unikernel {
    fn name(&self) -> &'static str {
        "unikernel"
    }

    fn variants(&self) -> &'static [&'static str] {
        match host_mode().as_str() {
            "hardware-kvm" => &["qemu-kvm", "qemu-tcg", "firecracker-kvm"],
            "kvm-pvm" => &["qemu-tcg", "qemu-kvm-pvm", "firecracker-pvm"],
            _ => &["qemu-tcg"],
        }
    }

    fn network_placement(&self, _variant: &str) -> Placement {
        Placement::OwnNamespace
    }

    fn serving_model(&self, _variant: &str) -> String {
        "1 vCPU unikernel: one event loop over its NIC that halts the vCPU when idle (woken by the NIC's interrupt or a TSC-deadline timer), up to 32 connections; the VMM's threads on the SUT set".into()
    }

    fn network_path(&self, _variant: &str) -> String {
        "directly to the guest's address: a veth from the host into the VM's own namespace, which routes to the guest's tap (no relay); a firewall profile goes into that namespace's forward chain, in front of the guest".into()
    }

    fn serves_workloads(&self, variant: &str) -> std::result::Result<(), String> {
        if variant.starts_with("firecracker") && self.firecracker.is_none() {
            return Err("not measured: firecracker not found (put it on PATH or set EDGEBENCH_FIRECRACKER)".into());
        }
        Ok(())
    }

    fn own_trial(&self, _ctx: &Context<'_>, spec: &LaunchSpec<'_>) -> Option<Vec<OwnSample>> {
        self.serves_workloads(spec.variant).err().map(|why| vec![OwnSample::failed("cold_start", "", why)])
    }

    fn artifact(&self, _variant: &str) -> crate::runtime::ArtifactKind {
        crate::runtime::ArtifactKind::Unikernel
    }

    fn detect(&self, artifacts: &Artifacts) -> Detection {
        let Some(qemu) = Self::qemu() else {
            return Detection::missing("qemu-system-x86_64 not found: apt-get install qemu-system-x86");
        };
        if let Some(why) = privilege_problem() {
            return Detection::missing(why);
        }
        let image = match self.image(artifacts, Workload::HELLO) {
            Ok(i) => i,
            Err(e) => return Detection::missing(format!("{e:#}")),
        };
        let Ok(meta) = std::fs::metadata(&image.kernel) else {
            return Detection::missing(if self.is_ours() {
                format!("{} is not built: run `edgebench build`", image.kernel.display())
            } else {
                format!("EDGEBENCH_UNIKERNEL={} does not exist", image.kernel.display())
            });
        };
        let qemu_version = crate::runtime::version_of(&qemu, &["--version"]).unwrap_or_default();
        let firecracker = match &self.firecracker {
            Some(b) => crate::runtime::version_of(b, &["--version"]).unwrap_or_else(|| "firecracker".into()),
            None => "firecracker not found".into(),
        };
        let which =
            if self.is_ours() { "edgebench's".to_string() } else { format!("user's {}", image.kernel.display()) };
        Detection::found(
            format!(
                "{which} image, {} KiB; {qemu_version}; {firecracker}; host {}",
                meta.len().div_ceil(1024),
                host_mode()
            ),
            image.kernel,
        )
    }

    fn notes(&self, _workload: Workload) -> Option<String> {
        Some(format!(
            "variant = VMM + virtualisation mode (tcg: QEMU's emulator; kvm-pvm: this host's paravirtual KVM; \
             host: {}). {} 1 vCPU; the guest polls its NIC, so its vCPU is always busy (cpu_idle is not an idle \
             figure). Memory: vmm_overhead_pss = the VMM's PSS without the guest RAM mapping, guest_memory = that \
             mapping's PSS; image_size (phase prepare) = the image file",
            host_mode(),
            if self.is_ours() {
                "Guest: edgebench's unikernel (crates/unikernel: handler core + smoltcp + virtio-net), kv state in guest memory;"
            } else {
                "Guest: the user's image (EDGEBENCH_UNIKERNEL);"
            }
        ))
    }

    fn ready_timeout(&self, variant: &str) -> Duration {
        Duration::from_secs(if variant == "qemu-tcg" { 60 } else { 30 })
    }

    fn setup(&self, _ctx: &Context<'_>) -> Result<()> {
        super::netns::remove_leftovers();
        Ok(())
    }

    fn prepare(&self, ctx: &Context<'_>, workload: Workload, _variant: &str) -> Result<()> {
        let image = self.image(ctx.artifacts, workload)?;
        let bytes = std::fs::metadata(&image.kernel).with_context(|| format!("{}", image.kernel.display()))?.len();
        *self.image_kib.lock().unwrap() = Some(bytes as f64 / 1024.0);
        Ok(())
    }

    fn prepared(&self, _workload: Workload, _variant: &str) -> Vec<ExtraResource> {
        let kib = *self.image_kib.lock().unwrap();
        kib.map(|value| ExtraResource { metric: "image_size".into(), value, unit: "KiB".into() }).into_iter().collect()
    }

    fn launch(&self, ctx: &Context<'_>, spec: &LaunchSpec<'_>) -> Result<Box<dyn Instance>> {
        if let Err(why) = self.serves_workloads(spec.variant) {
            bail!("unikernel {}: {why}", spec.variant);
        }
        let image = self.image(ctx.artifacts, spec.workload)?;
        if spec.variant.starts_with("firecracker") {
            let bin = self.firecracker.clone().context("firecracker not found")?;
            let guest = Guest {
                kernel: image.kernel.clone(),
                initrd: image.initrd.clone(),
                args: image.args.clone(),
                memory_mib: image.memory_mib,
                boot_timer: self.is_ours() && spec.workload.builtin().is_some(),
                port: image.port,
            };
            return Ok(Box::new(firecracker::boot(&bin, ctx, spec, &guest)?));
        }
        let qemu = Self::qemu().context("qemu-system-x86_64 not found: apt-get install qemu-system-x86")?;
        let ns = Netns::create()?;
        let firewall = ns.apply_firewall(spec.firewall)?;
        let args = render_args(&image.args, &ns.addrs(), image.port, spec.workload);
        let mut command = self.qemu_command(qemu, &image, spec.variant, args);
        ns.enter_on_spawn(&mut command)?;
        let log = ctx.work_dir.join("logs").join(format!("{}.log", spec.label));
        let process = spawn(command, &ctx.env, spec.addr, log, None, WarmMode::None)?;
        let mut vm = VmInstance::on_port(process, ns, image.memory_mib * 1024, image.port);
        vm.firewall = firewall;
        Ok(Box::new(vm))
    }
}
