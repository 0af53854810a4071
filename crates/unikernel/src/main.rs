//! `edgebench-unikernel`: the four workloads as one unikernel image. The
//! VMM enters it through PVH (32-bit, paging off); it switches to long
//! mode, finds its virtio-mmio NIC and address on the kernel command line,
//! and serves the workload named there with the shared handler core over
//! smoltcp. The one vCPU polls the NIC while there is work and halts when
//! there is none, until the NIC's interrupt or a timer wakes it.
//!
//! Built for `x86_64-unknown-none` (`edgebench build`); on any other target
//! this file is an empty program, so that the workspace still checks.

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod kernel;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("edgebench-unikernel runs as a VM guest: build it with --target x86_64-unknown-none");
}
