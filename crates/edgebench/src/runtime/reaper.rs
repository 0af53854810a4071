//! Kills the process groups of edgebench's instances when edgebench dies
//! without stopping them (SIGKILL, a crash). An instance cannot set its own
//! parent-death signal: that needs code between fork and exec, and instances
//! are started without a fork (see [`super::process`]).
//!
//! A small process forked once, early, before edgebench holds much memory:
//! it reads the groups to watch from a pipe, and when the pipe's write end
//! closes (edgebench is gone, however it went) it kills every group still
//! watched, then exits. It runs in a process group of its own and ignores
//! the terminal's signals, so a Ctrl-C meant for edgebench does not end it first.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::sync::{Mutex, OnceLock};

struct Reaper {
    pid: u32,
    pipe: Mutex<File>,
}

static REAPER: OnceLock<Option<Reaper>> = OnceLock::new();

/// Starts the reaper if it is not running.
pub fn start() {
    REAPER.get_or_init(fork_reaper);
}

/// The reaper's pid (a child of this process while it lives).
pub fn pid() -> Option<u32> {
    REAPER.get().and_then(Option::as_ref).map(|r| r.pid)
}

/// Watches the process group `pgid` (an instance's, led by its first process).
pub fn watch(pgid: u32) {
    send(pgid as i32);
}

/// Stops watching `pgid` (its instance was stopped and reaped).
pub fn release(pgid: u32) {
    send(-(pgid as i32));
}

fn send(message: i32) {
    start();
    if let Some(Some(r)) = REAPER.get() {
        // 4 bytes: a pipe write this small is atomic, whichever thread sends it.
        let _ = r.pipe.lock().unwrap_or_else(|e| e.into_inner()).write_all(&message.to_le_bytes());
    }
}

fn fork_reaper() -> Option<Reaper> {
    // Close-on-exec: no instance may hold the write end (the reaper would never see it close).
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ok()?;
    // SAFETY: the child runs only system calls and arithmetic on its stack
    // (no allocation, no lock) until it exits, as a fork of a threaded process must.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => watch_until_closed(read.as_raw_fd()),
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            drop(read);
            Some(Reaper { pid: child.as_raw() as u32, pipe: Mutex::new(File::from(write)) })
        }
        Err(e) => {
            eprintln!(
                "edgebench: cannot start the reaper ({e}): instances of an edgebench killed outright would outlive it"
            );
            None
        }
    }
}

/// The reaper itself: never returns.
fn watch_until_closed(fd: i32) -> ! {
    const MAX_GROUPS: usize = 4096;
    // SAFETY: plain system calls on descriptors this process owns.
    unsafe {
        libc::setpgid(0, 0);
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGPIPE] {
            libc::signal(signal, libc::SIG_IGN);
        }
        libc::dup2(fd, 0);
        // Everything else inherited (sockets, files, other pipes' write ends) is closed.
        libc::syscall(libc::SYS_close_range, 1u32, u32::MAX, 0u32);
        let mut groups = [0i32; MAX_GROUPS];
        let mut buf = [0u8; 1024];
        let mut have = 0usize;
        loop {
            let n = libc::read(0, buf.as_mut_ptr().add(have).cast(), buf.len() - have);
            if n == 0 {
                break;
            }
            if n < 0 {
                if *libc::__errno_location() == libc::EINTR {
                    continue;
                }
                break;
            }
            have += n as usize;
            let whole = have / 4 * 4;
            for chunk in buf[..whole].chunks_exact(4) {
                let v = i32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                let (find, put) = if v > 0 { (0, v) } else { (-v, 0) };
                if let Some(slot) = groups.iter_mut().find(|g| **g == find) {
                    *slot = put;
                }
            }
            buf.copy_within(whole..have, 0);
            have -= whole;
        }
        for g in groups {
            if g > 0 {
                libc::kill(-g, libc::SIGKILL);
            }
        }
        libc::_exit(0)
    }
}
