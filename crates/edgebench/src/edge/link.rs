//! The emulated link of `net-*` edge profiles: a bump in the wire, in user
//! space, between two TUN devices that replace the campaign's veth (the way
//! Mahimahi's link shells work). The same on every host: it needs no qdisc
//! (this development machine's kernel has no `sch_netem`, nor `fq`), only
//! `/dev/net/tun`.
//!
//! ```text
//!   host namespace (client)          edgebench            server namespace
//!   eb-XXXXXX-h (TUN) ──read──> [queue, delay] ──write──> eb-XXXXXX-n (TUN)
//!                     <──write── [queue, delay] <──read──
//! ```
//!
//! Each direction has its own thread and FIFO queue. A packet that arrives
//! at time t with length L (IP bytes) is lost with the preset's probability
//! (Bernoulli, at arrival); otherwise it is serialised at the preset's rate
//! after the packets before it (`sent = max(t, previous sent) + 8L/rate`),
//! then delayed (`due = sent + delay + jitter`, jitter normal, truncated at
//! ±2σ) and written out at `max(due, previous due)`: packets are never
//! reordered, as netem does with a rate. A full queue (1000 packets,
//! netem's default limit) drops the packet. Under every other profile the
//! link forwards at once (`none` is the same path, without delay), so a
//! profile's Δ is the link's properties alone.

use super::LinkPreset;
use anyhow::{bail, Context as _, Result};
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Packets a direction holds before dropping (netem's default `limit`).
pub const QUEUE_LIMIT: usize = 1000;

/// One direction's shape.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shape {
    pub delay: Duration,
    /// σ of a normal jitter (truncated at ±2σ).
    pub jitter: Duration,
    /// Bits per second; `None`: unlimited.
    pub rate_bps: Option<u64>,
    /// Loss probability (0..1).
    pub loss: f64,
}

impl Shape {
    pub fn of(preset: LinkPreset) -> Shape {
        match preset {
            LinkPreset::Lan => Shape {
                delay: Duration::from_micros(250),
                jitter: Duration::ZERO,
                rate_bps: Some(1_000_000_000),
                loss: 0.0,
            },
            LinkPreset::FourG => Shape {
                delay: Duration::from_millis(25),
                jitter: Duration::from_millis(5),
                rate_bps: Some(20_000_000),
                loss: 0.001,
            },
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "each way: delay {:?} ± {:?} (normal, truncated at 2σ), rate {}, loss {}%, queue {QUEUE_LIMIT} packets",
            self.delay,
            self.jitter,
            self.rate_bps.map_or("unlimited".into(), |r| format!("{} Mbit/s", r as f64 / 1e6)),
            self.loss * 100.0
        )
    }
}

/// Counters of one direction since the link was made.
#[derive(Default)]
struct Counters {
    forwarded: AtomicU64,
    lost: AtomicU64,
    queue_drops: AtomicU64,
}

/// What the link did during one trial (both directions added).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub forwarded: u64,
    pub lost: u64,
    pub queue_drops: u64,
}

impl LinkStats {
    pub fn since(self, before: LinkStats) -> LinkStats {
        LinkStats {
            forwarded: self.forwarded - before.forwarded,
            lost: self.lost - before.lost,
            queue_drops: self.queue_drops - before.queue_drops,
        }
    }
}

struct Shared {
    shape: Mutex<Option<Shape>>,
    stop: AtomicBool,
    counters: [Counters; 2],
}

/// The link between the campaign's two TUN devices; forwarding stops and
/// both devices vanish when it is dropped (they are not persistent).
pub struct LinkEmulator {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// The control of a running link, shared with the edge profiles.
#[derive(Clone)]
pub struct LinkControl(Arc<Shared>);

impl LinkControl {
    /// Shapes both directions from now on (`None`: forward at once).
    pub fn set(&self, shape: Option<Shape>) {
        *self.0.shape.lock().unwrap_or_else(|e| e.into_inner()) = shape;
    }

    pub fn shape(&self) -> Option<Shape> {
        *self.0.shape.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn stats(&self) -> LinkStats {
        let sum = |f: fn(&Counters) -> &AtomicU64| self.0.counters.iter().map(|c| f(c).load(Ordering::Relaxed)).sum();
        LinkStats { forwarded: sum(|c| &c.forwarded), lost: sum(|c| &c.lost), queue_drops: sum(|c| &c.queue_drops) }
    }
}

/// Opens a new TUN device `name` (IP packets, no packet-info header) in
/// this thread's network namespace; it lives as long as the descriptor.
pub fn open_tun(name: &str) -> Result<OwnedFd> {
    #[repr(C)]
    struct IfReq {
        name: [u8; libc::IFNAMSIZ],
        flags: libc::c_short,
        _pad: [u8; 22],
    }
    const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
    const IFF_TUN: libc::c_short = 0x0001;
    const IFF_NO_PI: libc::c_short = 0x1000;
    if name.len() >= libc::IFNAMSIZ {
        bail!("interface name {name:?} is too long");
    }
    let file = File::options()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .context("opening /dev/net/tun (the tun module): an emulated link needs it")?;
    let mut req = IfReq { name: [0; libc::IFNAMSIZ], flags: IFF_TUN | IFF_NO_PI, _pad: [0; 22] };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: TUNSETIFF reads and writes an ifreq, which `req` is laid out as.
    if unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, &mut req) } < 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("creating TUN device {name}"));
    }
    let fd: OwnedFd = file.into();
    // Non-blocking: a direction's thread reads until the device is empty.
    let flags = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL)?;
    let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(flags))?;
    Ok(fd)
}

impl LinkEmulator {
    /// Forwards between `host` and `server` (TUN descriptors) from now on,
    /// at once until a shape is set; `seed` makes loss and jitter reproducible.
    pub fn start(host: OwnedFd, server: OwnedFd, seed: u64) -> Result<LinkEmulator> {
        let shared =
            Arc::new(Shared { shape: Mutex::new(None), stop: AtomicBool::new(false), counters: Default::default() });
        let host = Arc::new(host);
        let server = Arc::new(server);
        let mut threads = Vec::new();
        for (dir, (from, to)) in [(host.clone(), server.clone()), (server, host)].into_iter().enumerate() {
            let shared = shared.clone();
            let rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ dir as u64);
            let name = if dir == 0 { "eb-link-up" } else { "eb-link-down" };
            threads.push(
                std::thread::Builder::new()
                    .name(name.into())
                    .spawn(move || forward(&from, &to, &shared, dir, rng))
                    .context("starting the link's threads")?,
            );
        }
        Ok(LinkEmulator { shared, threads })
    }

    pub fn control(&self) -> LinkControl {
        LinkControl(self.shared.clone())
    }
}

impl std::fmt::Debug for LinkEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkEmulator").field("shape", &LinkControl(self.shared.clone()).shape()).finish()
    }
}

impl Drop for LinkEmulator {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A normal sample (Box–Muller), truncated at ±2σ.
fn jitter(rng: &mut impl Rng, sigma: Duration) -> f64 {
    if sigma.is_zero() {
        return 0.0;
    }
    let (u1, u2): (f64, f64) = (rng.gen_range(f64::MIN_POSITIVE..1.0), rng.gen());
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    z.clamp(-2.0, 2.0) * sigma.as_secs_f64()
}

/// One direction: read every packet `from` holds, queue it with its due
/// time, write out what is due, sleep until the next is due or a packet comes.
fn forward(from: &OwnedFd, to: &OwnedFd, shared: &Shared, dir: usize, mut rng: impl Rng) {
    use nix::poll::{ppoll, PollFd, PollFlags};
    // Timers to the nanosecond: a 250 µs delay must not become 300 µs.
    // SAFETY: prctl on this thread, no pointers.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1, 0, 0, 0) };
    let counters = &shared.counters[dir];
    let mut queue: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let (mut link_free, mut last_due) = (Instant::now(), Instant::now());
    let mut buf = vec![0u8; 65_536];
    while !shared.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let wait = queue.front().map_or(Duration::from_millis(50), |(due, _)| due.saturating_duration_since(now));
        let mut fds = [PollFd::new(from.as_fd(), PollFlags::POLLIN)];
        let timeout = nix::sys::time::TimeSpec::from_duration(wait.min(Duration::from_millis(50)));
        let _ = ppoll(&mut fds, Some(timeout), None);
        loop {
            // SAFETY: reading into our own buffer.
            let n = unsafe { libc::read(from.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            let arrived = Instant::now();
            let shape = *shared.shape.lock().unwrap_or_else(|e| e.into_inner());
            let due = match shape {
                None => arrived,
                Some(s) => {
                    if s.loss > 0.0 && rng.gen_bool(s.loss) {
                        counters.lost.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    if queue.len() >= QUEUE_LIMIT {
                        counters.queue_drops.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let serialise =
                        s.rate_bps.map_or(Duration::ZERO, |r| Duration::from_secs_f64(n as f64 * 8.0 / r as f64));
                    link_free = link_free.max(arrived) + serialise;
                    let delayed = s.delay.as_secs_f64() + jitter(&mut rng, s.jitter);
                    link_free + Duration::from_secs_f64(delayed.max(0.0))
                }
            };
            last_due = last_due.max(due);
            queue.push_back((last_due, buf[..n as usize].to_vec()));
        }
        let now = Instant::now();
        while queue.front().is_some_and(|(due, _)| *due <= now) {
            let (_, packet) = queue.pop_front().expect("a front packet");
            // SAFETY: writing our own buffer; a full device drops it, as a wire would.
            let written = unsafe { libc::write(to.as_raw_fd(), packet.as_ptr().cast(), packet.len()) };
            if written == packet.len() as isize {
                counters.forwarded.fetch_add(1, Ordering::Relaxed);
            } else {
                counters.queue_drops.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_is_truncated_and_centred() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let sigma = Duration::from_millis(5);
        let xs: Vec<f64> = (0..20_000).map(|_| jitter(&mut rng, sigma)).collect();
        assert!(xs.iter().all(|x| x.abs() <= 0.010 + 1e-12));
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.0002, "mean {mean}");
        assert_eq!(jitter(&mut rng, Duration::ZERO), 0.0);
    }

    #[test]
    fn stats_subtract() {
        let a = LinkStats { forwarded: 10, lost: 1, queue_drops: 0 };
        let b = LinkStats { forwarded: 25, lost: 3, queue_drops: 2 };
        assert_eq!(b.since(a), LinkStats { forwarded: 15, lost: 2, queue_drops: 2 });
    }
}
