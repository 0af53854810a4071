//! Time for the TCP stack: the TSC, at the rate the host passed on the
//! command line (`eb.tsc_khz`; the TSC runs at the host's rate under TCG
//! and under KVM). Only smoltcp's timers use it: no figure comes from here.

static mut TSC_PER_US: u64 = 1000;

pub fn init(tsc_khz: u64) {
    // SAFETY: set once, before anything reads it; one vCPU.
    unsafe { TSC_PER_US = (tsc_khz / 1000).max(1) };
}

fn rdtsc() -> u64 {
    // SAFETY: rdtsc reads a counter; no memory effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

pub fn now() -> smoltcp::time::Instant {
    // SAFETY: written once in init.
    let per_us = unsafe { TSC_PER_US };
    smoltcp::time::Instant::from_micros((rdtsc() / per_us) as i64)
}
