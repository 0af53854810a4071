//! `edgebench-guest-init`: PID 1 of the micro-VM guest (static musl).
//!
//! Reads its configuration from the kernel command line (`/proc/cmdline`):
//! `eb.ip=ADDR/PREFIX` (eth0's address), `eb.gw=ADDR` (optional default
//! route), `eb.workload=NAME`, and
//! `eb.modules=a,b,c` (the `.ko` files under /lib/modules to load, in order).
//! Then it execs `/edgebench-workload NAME 0.0.0.0:8080`. Every step writes
//! one line to the console, so a guest that stops says where.

mod cmdline;
mod net;

use std::ffi::CString;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

const WORKLOAD_SERVER: &str = "/edgebench-workload";
const LISTEN: &str = "0.0.0.0:8080";
/// How long eth0 may take to appear after virtio_net is loaded.
const NETDEV_TIMEOUT: Duration = Duration::from_secs(10);

fn main() {
    let started = Instant::now();
    if let Err(e) = run(started) {
        eprintln!("edgebench-guest-init: {e}");
    }
    // PID 1 must not exit (the kernel would panic before printing our error).
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn run(started: Instant) -> Result<(), String> {
    mount_pseudo_filesystems()?;
    let cmdline = std::fs::read_to_string("/proc/cmdline").map_err(|e| format!("reading /proc/cmdline: {e}"))?;
    let config = cmdline::Config::parse(&cmdline)?;
    for module in &config.modules {
        load_module(module, &cmdline::module_params(&cmdline, module))?;
    }
    net::bring_up("lo", None)?;
    net::wait_for("eth0", NETDEV_TIMEOUT)?;
    net::bring_up("eth0", Some(config.address))?;
    if let Some(gateway) = config.gateway {
        net::default_route(gateway)?;
    }
    eprintln!(
        "edgebench-guest-init: network up after {:?}; exec {WORKLOAD_SERVER} {}",
        started.elapsed(),
        config.workload
    );
    let err = std::process::Command::new(WORKLOAD_SERVER).arg(&config.workload).arg(LISTEN).exec();
    Err(format!("exec {WORKLOAD_SERVER}: {err}"))
}

fn mount_pseudo_filesystems() -> Result<(), String> {
    use nix::mount::{mount, MsFlags};
    for (fstype, target) in [("proc", "/proc"), ("sysfs", "/sys"), ("devtmpfs", "/dev")] {
        let _ = std::fs::create_dir_all(target);
        if let Err(e) = mount(Some(fstype), target, Some(fstype), MsFlags::empty(), None::<&str>) {
            // devtmpfs may already be mounted by the kernel (CONFIG_DEVTMPFS_MOUNT).
            if e != nix::errno::Errno::EBUSY {
                return Err(format!("mounting {fstype} on {target}: {e}"));
            }
        }
    }
    Ok(())
}

/// Loads `/lib/modules/NAME.ko` with the `finit_module` syscall.
fn load_module(name: &str, params: &str) -> Result<(), String> {
    let path = format!("/lib/modules/{name}.ko");
    let file = std::fs::File::open(&path).map_err(|e| format!("opening {path}: {e}"))?;
    let params = CString::new(params).map_err(|_| format!("parameters of {name} contain NUL"))?;
    match nix::kmod::finit_module(file.as_fd(), &params, nix::kmod::ModuleInitFlags::empty()) {
        // Built into this kernel or already loaded: nothing to do.
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(e) => Err(format!("loading module {name}: {e}")),
    }
}
