//! Starting an instance without forking edgebench.
//!
//! `std::process::Command` forks as soon as a `pre_exec` hook is set, and a
//! fork copies edgebench's page tables: under KVM-PVM that put ~0.6 ms
//! (growing with edgebench's memory) inside every process cold start
//! (measured: native `hello` 1.45 ms with fork, 0.81 ms without). Here the
//! child is made the way glibc's `posix_spawn` makes it, `clone(CLONE_VM |
//! CLONE_VFORK)`: it shares edgebench's memory, runs only plain system calls
//! on a stack of its own, and the spawning thread waits until it has exec'd.
//! Between clone and exec it joins a process group of its own, sets its
//! parent-death signal and then checks that its parent is still there (so an
//! edgebench killed outright at any moment leaves no instance behind), takes
//! the SUT's CPUs, its network namespace and its stdio. Under an edge
//! profile's cgroup (`edge`) it is born there: on cgroup v1 the spawning
//! thread joins the cgroup before t0 and leaves it once the child has exec'd
//! (a v1 migration waits for an RCU grace period, milliseconds, which must
//! not be in a cold start); on v2 the child moves itself before exec.

use std::ffi::{c_char, c_int, c_void, CString, OsStr};
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Instant;

/// An instance's command: a `Command` (program, arguments, directory) and
/// the network namespace to start it in.
pub struct Launch {
    command: Command,
    netns: Option<OwnedFd>,
}

impl Launch {
    pub fn new(program: impl AsRef<OsStr>) -> Launch {
        Launch { command: Command::new(program), netns: None }
    }

    /// Starts the instance inside the namespace at `path` (a /run/netns path).
    pub fn enter_netns(&mut self, path: &Path) -> anyhow::Result<()> {
        use anyhow::Context as _;
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        self.netns = Some(file.into());
        Ok(())
    }

    /// Starts the instance inside the namespace `handle` is open on.
    pub fn enter_netns_of(&mut self, handle: &File) -> std::io::Result<()> {
        self.netns = Some(handle.try_clone()?.into());
        Ok(())
    }
}

impl std::ops::Deref for Launch {
    type Target = Command;
    fn deref(&self) -> &Command {
        &self.command
    }
}

impl std::ops::DerefMut for Launch {
    fn deref_mut(&mut self) -> &mut Command {
        &mut self.command
    }
}

/// Everything the child reads, built before t0: it may not allocate.
pub(super) struct Prepared {
    path: CString,
    _argv: Vec<CString>,
    argv: Vec<*const c_char>,
    _envp: Vec<CString>,
    envp: Vec<*const c_char>,
    cwd: Option<CString>,
    stdin: File,
    out: File,
    netns: Option<OwnedFd>,
    cpus: Option<libc::cpu_set_t>,
    /// The edge profile in force: v2, the child writes "0" to its
    /// `cgroup.procs` files; v1, the spawning thread moves there and back.
    cgroups: Option<std::sync::Arc<crate::edge::InForce>>,
    /// Signals with a handler in edgebench: reset before the child unblocks
    /// signals, or one arriving before exec would run edgebench's handler.
    handled: Vec<c_int>,
    parent: libc::pid_t,
    stack: Vec<u8>,
    /// Set by the child when a step fails: step << 16 | errno.
    error: AtomicI32,
}

// SAFETY: the raw pointers point into the CStrings owned by the same value.
unsafe impl Send for Prepared {}

const STACK: usize = 128 * 1024;
const STEPS: [&str; 8] = [
    "",
    "setpgid",
    "prctl(PR_SET_PDEATHSIG)",
    "sched_setaffinity",
    "setns",
    "dup2",
    "chdir",
    "entering the edge profile's cgroup",
];
const EXEC_STEP: i32 = 8;

impl Prepared {
    pub(super) fn new(launch: Launch, env: &[(String, String)], out: File) -> std::io::Result<Prepared> {
        let Launch { command, netns } = launch;
        let mut vars: Vec<(Vec<u8>, Option<Vec<u8>>)> =
            env.iter().map(|(k, v)| (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()))).collect();
        for (k, v) in command.get_envs() {
            vars.retain(|(key, _)| key.as_slice() != k.as_bytes());
            vars.push((k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec())));
        }
        let envp_owned: Vec<CString> = vars
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| [k, b"=".to_vec(), v].concat()))
            .map(cstring)
            .collect::<std::io::Result<_>>()?;
        let path_var = envp_owned
            .iter()
            .find_map(|e| e.as_bytes().strip_prefix(b"PATH=").map(|p| OsStr::from_bytes(p).to_owned()))
            .or_else(|| std::env::var_os("PATH"));
        let program = resolve(command.get_program(), path_var.as_deref())?;
        let argv_owned: Vec<CString> = std::iter::once(command.get_program())
            .chain(command.get_args())
            .map(|a| cstring(a.as_bytes().to_vec()))
            .collect::<std::io::Result<_>>()?;
        let cpus = match crate::cpus::sut_set() {
            Some(set) => Some(cpu_set(&set)?),
            None => None,
        };
        Ok(Prepared {
            path: cstring(program.as_os_str().as_bytes().to_vec())?,
            argv: argv_owned.iter().map(|a| a.as_ptr()).chain(std::iter::once(std::ptr::null())).collect(),
            _argv: argv_owned,
            envp: envp_owned.iter().map(|e| e.as_ptr()).chain(std::iter::once(std::ptr::null())).collect(),
            _envp: envp_owned,
            cwd: command.get_current_dir().map(|d| cstring(d.as_os_str().as_bytes().to_vec())).transpose()?,
            stdin: File::open("/dev/null")?,
            out,
            netns,
            cpus,
            cgroups: crate::edge::in_force().filter(|f| f.places()),
            handled: handled_signals(),
            parent: std::process::id() as libc::pid_t,
            stack: vec![0; STACK],
            error: AtomicI32::new(0),
        })
    }

    /// Clones the child and returns its pid once it has exec'd, with t0
    /// (taken right before the clone). Call it from a thread that lives as
    /// long as edgebench, with every signal blocked: the parent-death signal
    /// follows the thread that made the child.
    pub(super) fn spawn(mut self) -> std::io::Result<(libc::pid_t, Instant)> {
        // The stack grows down from its end, 16-byte aligned.
        let top = unsafe { self.stack.as_mut_ptr().add(STACK) } as usize & !15;
        let arg = &self as *const Prepared as *mut c_void;
        let moves = self.cgroups.as_ref().map_or(&[][..], |f| &f.thread_moves[..]);
        if DISPLACED.load(Ordering::SeqCst) {
            return Err(std::io::Error::other(
                "the spawning thread could not leave an edge profile's cgroup earlier: no instance is started, \
                 since it would run under that profile's limits",
            ));
        }
        for (profile, _) in moves {
            move_this_thread(profile).map_err(|e| {
                std::io::Error::new(e.kind(), format!("joining the edge profile's cgroup (v1 tasks): {e}"))
            })?;
        }
        let launched_at = Instant::now();
        // SAFETY: the child only makes system calls on `stack` and reads
        // `self`, which outlives it: CLONE_VFORK holds this thread until
        // the child has exec'd or exited.
        let pid =
            unsafe { libc::clone(child, top as *mut c_void, libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD, arg) };
        let cloned = if pid < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) };
        for (_, home) in moves {
            if let Err(e) = move_this_thread(home) {
                DISPLACED.store(true, Ordering::SeqCst);
                eprintln!(
                    "edgebench: the spawning thread cannot leave an edge profile's cgroup ({e}): later launches fail"
                );
            }
        }
        cloned?;
        let error = self.error.load(Ordering::SeqCst);
        if error != 0 {
            let mut status = 0;
            // SAFETY: reaping our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            let (step, errno) = (error >> 16, error & 0xffff);
            let what = if step == EXEC_STEP { "execve".to_string() } else { STEPS[step as usize].to_string() };
            let cause = std::io::Error::from_raw_os_error(errno);
            return Err(std::io::Error::new(cause.kind(), format!("{what} in the new process: {cause}")));
        }
        Ok((pid, launched_at))
    }
}

/// Set once the spawning thread failed to return from a profile's cgroup.
static DISPLACED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Moves the calling thread into the v1 cgroup whose `tasks` file is `tasks`.
fn move_this_thread(mut tasks: &File) -> std::io::Result<()> {
    use std::io::Write as _;
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    tasks.write_all(tid.to_string().as_bytes())
}

extern "C" fn child(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the parent's `Prepared`, alive until exec (CLONE_VFORK).
    let p = unsafe { &*(arg as *const Prepared) };
    let fail = |step: i32| -> ! {
        // SAFETY: errno of this (shared) thread, read right after the failed call.
        let errno = unsafe { *libc::__errno_location() };
        p.error.store(step << 16 | (errno & 0xffff), Ordering::SeqCst);
        unsafe { libc::_exit(127) }
    };
    // SAFETY: plain system calls, no allocation, no locks.
    unsafe {
        for &signal in &p.handled {
            libc::signal(signal, libc::SIG_DFL);
        }
        // Rust ignores SIGPIPE; the instance gets the default, as std gives it.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        if libc::setpgid(0, 0) != 0 {
            fail(1);
        }
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
            fail(2);
        }
        if libc::getppid() != p.parent {
            // edgebench died before the signal was set: nobody would stop this instance.
            libc::_exit(127);
        }
        if let Some(set) = &p.cpus {
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) != 0 {
                fail(3);
            }
        }
        if let Some(in_force) = &p.cgroups {
            // v2 only (v1: `procs` is empty, the child was born in the cgroup).
            for procs in &in_force.procs {
                if libc::write(procs.as_raw_fd(), b"0".as_ptr() as *const c_void, 1) != 1 {
                    fail(7);
                }
            }
        }
        if let Some(fd) = &p.netns {
            if libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                fail(4);
            }
        }
        if libc::dup2(p.stdin.as_raw_fd(), 0) < 0
            || libc::dup2(p.out.as_raw_fd(), 1) < 0
            || libc::dup2(p.out.as_raw_fd(), 2) < 0
        {
            fail(5);
        }
        if let Some(dir) = &p.cwd {
            if libc::chdir(dir.as_ptr()) != 0 {
                fail(6);
            }
        }
        libc::execve(p.path.as_ptr(), p.argv.as_ptr(), p.envp.as_ptr());
        fail(EXEC_STEP)
    }
}

fn cstring(bytes: Vec<u8>) -> std::io::Result<CString> {
    CString::new(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
}

/// The program's path: as given when it has a `/`, else the first
/// executable of that name on `path_var` (the child's PATH, as std does).
fn resolve(program: &OsStr, path_var: Option<&OsStr>) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if program.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(program));
    }
    std::env::split_paths(path_var.unwrap_or_default())
        .map(|dir| dir.join(program))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{program:?} is not on PATH (No such file or directory)"),
            )
        })
}

fn cpu_set(cpus: &[usize]) -> std::io::Result<libc::cpu_set_t> {
    // SAFETY: an all-zero cpu_set_t is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("CPU {cpu} is out of range")));
        }
        // SAFETY: `cpu` is below CPU_SETSIZE.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    Ok(set)
}

/// Signals edgebench handles (ctrlc's SIGINT/SIGTERM/SIGHUP, ...).
fn handled_signals() -> Vec<c_int> {
    (1..libc::SIGRTMAX())
        .filter(|&signal| {
            // SAFETY: reading a disposition only.
            let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
            let read = unsafe { libc::sigaction(signal, std::ptr::null(), &mut action) } == 0;
            read && action.sa_sigaction != libc::SIG_DFL && action.sa_sigaction != libc::SIG_IGN
        })
        .collect()
}
