//! Micro-VM backends: QEMU's `microvm` machine (and Firecracker), booting the
//! guest edgebench builds (Debian's cloud kernel, our init, the native
//! workload server), each VM in a network namespace of its own.

pub mod cpio;
mod firecracker;
pub mod guest;
pub mod memory;
pub mod netns;
mod qemu;
mod unikernel;

pub use firecracker::{parse_boot_timer, Firecracker, PVM_REASON};
pub use qemu::QemuMicrovm;
pub use unikernel::{Unikernel, UserImage};

use std::net::{SocketAddr, SocketAddrV4};

/// The workload server's port inside the guest.
pub const GUEST_PORT: u16 = 8080;

/// Where the client reaches a VM's workload server.
pub fn guest_addr(addrs: &netns::VmAddrs) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(addrs.guest, GUEST_PORT))
}

/// A guest command line from its template: `{addrs}` (the Linux guest's
/// `eb.ip=A/P eb.gw=G`), `{ip}`, `{prefix}`, `{gateway}`, `{port}`,
/// `{workload}` and `{tsc_khz}` (the host's TSC rate, 0 if unknown).
pub fn render_args(template: &str, addrs: &netns::VmAddrs, port: u16, workload: crate::Workload) -> String {
    template
        .replace("{addrs}", &addrs.kernel_args())
        .replace("{ip}", &addrs.guest.to_string())
        .replace("{prefix}", &netns::NET_PREFIX.to_string())
        .replace("{gateway}", &addrs.gateway.to_string())
        .replace("{port}", &port.to_string())
        .replace("{workload}", workload.name())
        .replace("{tsc_khz}", &host_tsc_khz().unwrap_or(0).to_string())
}

/// The virtualisation mode of this host, as `environment::virtualization` names it.
pub fn host_mode() -> String {
    crate::environment::virtualization()["mode"].as_str().unwrap_or("unknown").to_string()
}

/// The host's TSC frequency in kHz (the guest skips calibrating it under TCG).
pub fn host_tsc_khz() -> Option<u64> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mhz: f64 = cpuinfo.lines().find(|l| l.starts_with("cpu MHz"))?.split(':').nth(1)?.trim().parse().ok()?;
    Some((mhz * 1000.0) as u64)
}

/// Network namespaces and VMs need root (CAP_NET_ADMIN, /dev/net/tun).
pub fn privilege_problem() -> Option<String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Some("needs root: each VM gets a network namespace and a tap".into());
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is missing: load the tun module (modprobe tun)".into());
    }
    if super::which("ip").is_none() {
        return Some("`ip` (iproute2) is not on PATH: apt-get install iproute2".into());
    }
    None
}
