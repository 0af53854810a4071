//! Test "hosts" on this machine: network namespaces made by the test, each
//! with an sshd of its own, all reached from one controller namespace.
//!
//! ```text
//!   ebt-PID-N-ctl                       ebt-PID-N-h0
//!   to-h0  10.215.k0.1/30 <── veth ──> eth0 10.215.k0.2/30   sshd on :22
//!   to-h1  10.215.k1.1/30 <── veth ──> eth0 10.215.k1.2/30   sshd on :22 (ebt-PID-N-h1)
//! ```
//!
//! Both ends of every veth are created inside our namespaces (never in the
//! machine's own), so nothing here has a route to or from the machine's real
//! interfaces: every byte between the controller and the hosts stays in the
//! namespaces. A command run with [`NamespaceHosts::in_controller`] reaches
//! each host as `ssh -F <ssh_config> root@<host_addr(i)>`. The hosts share
//! this machine's filesystem (only the network is their own).
//!
//! Each /30 is `10.215.k.0/30` with `k` held by an exclusive `flock` while the
//! hosts live, so that test processes running at once never take the same
//! block (their namespaces are apart anyway: this keeps addresses unambiguous
//! in captures and logs); the range is apart from the project's own (firewall
//! namespaces 10.213/16, micro-VM links 10.214/16), and a `k` whose
//! `10.215.k.` appears on the machine's own interfaces anyway is skipped. Dropping the value
//! kills each sshd and every process left in the namespaces (sessions,
//! ssh connection masters), deletes the namespaces and removes the temp dir,
//! also when a test panics.
#![allow(dead_code)]

use anyhow::{bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs::File;
use std::io::Read as _;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Every namespace made here is named `ebt-<pid>-<n>-…`.
pub const PREFIX: &str = "ebt-";
pub const SSHD: &str = "/usr/sbin/sshd";
/// sshd's privilege-separation directory (its package makes it at boot).
const PRIVSEP_DIR: &str = "/run/sshd";
const LOCK_DIR: &str = "/run/edgebench";
const SSHD_START_TIMEOUT: Duration = Duration::from_secs(15);

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Whether the hosts can be made here (sshd, ssh, ssh-keygen, ip, root). When
/// not, the test is skipped with the reason, or fails when EDGEBENCH_REQUIRE
/// names `sshd`.
pub fn available() -> bool {
    let missing: Vec<&str> =
        [SSHD, "/usr/bin/ssh", "/usr/bin/ssh-keygen"].into_iter().filter(|p| !Path::new(p).exists()).collect();
    if !missing.is_empty() {
        super::skip(
            "sshd",
            &format!(
                "namespace hosts need OpenSSH ({} missing: apt-get install openssh-server openssh-client)",
                missing.join(", ")
            ),
        );
        return false;
    }
    if !nix::unistd::geteuid().is_root() {
        super::skip("sshd", "namespace hosts need root (ip netns, sshd)");
        return false;
    }
    if Command::new("ip").arg("-V").output().map(|o| !o.status.success()).unwrap_or(true) {
        super::skip("sshd", "namespace hosts need iproute2 (ip)");
        return false;
    }
    true
}

struct Host {
    netns: String,
    addr: Ipv4Addr,
    sshd: Option<Child>,
    sshd_log: PathBuf,
}

pub struct NamespaceHosts {
    controller: String,
    /// Namespaces created so far (the controller first): deleted on drop.
    namespaces: Vec<String>,
    hosts: Vec<Host>,
    ssh_config: PathBuf,
    /// Hold the hosts' address blocks.
    blocks: Vec<Flock<File>>,
    dir: Option<tempfile::TempDir>,
}

impl NamespaceHosts {
    /// A controller namespace and `n` host namespaces, each host joined to the
    /// controller by its own veth pair, with its sshd accepting connections.
    pub fn start(n: usize) -> Result<NamespaceHosts> {
        remove_leftovers();
        let tag = format!("{PREFIX}{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
        let dir = tempfile::Builder::new().prefix(&format!("{tag}-")).tempdir().context("temp dir")?;
        let ssh_config = dir.path().join("ssh_config");
        // Built step by step: whatever fails, drop removes what was made.
        let mut hosts = NamespaceHosts {
            controller: format!("{tag}-ctl"),
            namespaces: Vec::new(),
            hosts: Vec::new(),
            ssh_config,
            blocks: Vec::new(),
            dir: Some(dir),
        };
        hosts.setup(&tag, n)?;
        Ok(hosts)
    }

    fn setup(&mut self, tag: &str, n: usize) -> Result<()> {
        let dir = self.dir().to_path_buf();
        let client_key = dir.join("client_key");
        keygen(&client_key, "edgebench-test-client")?;
        std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys"))?;
        std::fs::write(
            &self.ssh_config,
            format!(
                "# Written by the test's NamespaceHosts: ssh -F <this file> root@<host address>\n\
                 Host *\n\
                 \x20   User root\n\
                 \x20   IdentityFile {}\n\
                 \x20   IdentitiesOnly yes\n\
                 \x20   UserKnownHostsFile {}\n\
                 \x20   GlobalKnownHostsFile /dev/null\n\
                 \x20   StrictHostKeyChecking accept-new\n\
                 \x20   BatchMode yes\n\
                 \x20   ConnectTimeout 5\n\
                 \x20   LogLevel ERROR\n",
                client_key.display(),
                dir.join("known_hosts").display()
            ),
        )?;
        std::fs::create_dir_all(PRIVSEP_DIR).with_context(|| format!("creating {PRIVSEP_DIR}"))?;
        std::fs::set_permissions(PRIVSEP_DIR, std::fs::Permissions::from_mode(0o755))?;

        ip(&["netns", "add", &self.controller])?;
        self.namespaces.push(self.controller.clone());
        ip(&["-n", &self.controller, "link", "set", "lo", "up"])?;
        for i in 0..n {
            let netns = format!("{tag}-h{i}");
            let (k, lock) = take_block()?;
            self.blocks.push(lock);
            let (ctl_addr, addr) = (Ipv4Addr::new(10, 215, k, 1), Ipv4Addr::new(10, 215, k, 2));
            ip(&["netns", "add", &netns])?;
            self.namespaces.push(netns.clone());
            let to_host = format!("to-h{i}");
            let ctl = self.controller.clone();
            // Both ends are made inside our namespaces: none in the machine's own.
            ip(&["-n", &ctl, "link", "add", &to_host, "type", "veth", "peer", "name", "eth0", "netns", &netns])?;
            ip(&["-n", &ctl, "addr", "add", &format!("{ctl_addr}/30"), "dev", &to_host])?;
            ip(&["-n", &ctl, "link", "set", &to_host, "up"])?;
            ip(&["-n", &netns, "link", "set", "lo", "up"])?;
            ip(&["-n", &netns, "addr", "add", &format!("{addr}/30"), "dev", "eth0"])?;
            ip(&["-n", &netns, "link", "set", "eth0", "up"])?;
            let host_dir = dir.join(format!("h{i}"));
            std::fs::create_dir_all(&host_dir)?;
            let host_key = host_dir.join("ssh_host_ed25519_key");
            keygen(&host_key, &netns)?;
            let config = host_dir.join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "# sshd of the test host {netns} (only its own address)\n\
                     ListenAddress {addr}:22\n\
                     HostKey {}\n\
                     PidFile {}\n\
                     AuthorizedKeysFile {}\n\
                     PermitRootLogin prohibit-password\n\
                     PubkeyAuthentication yes\n\
                     PasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\n\
                     StrictModes no\n\
                     UsePAM no\n\
                     UseDNS no\n\
                     PrintMotd no\n\
                     PrintLastLog no\n\
                     Subsystem sftp internal-sftp\n",
                    host_key.display(),
                    host_dir.join("sshd.pid").display(),
                    dir.join("authorized_keys").display()
                ),
            )?;
            let check = Command::new(SSHD).args(["-t", "-f"]).arg(&config).output().context("running sshd -t")?;
            if !check.status.success() {
                bail!("sshd -t -f {}: {}", config.display(), String::from_utf8_lossy(&check.stderr).trim());
            }
            let sshd_log = host_dir.join("sshd.log");
            let log = File::create(&sshd_log)?;
            let child = Command::new("ip")
                .args(["netns", "exec", &netns, SSHD, "-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .context("starting sshd")?;
            self.hosts.push(Host { netns, addr, sshd: Some(child), sshd_log });
            self.wait_for_sshd(i)?;
        }
        Ok(())
    }

    /// Until the host's sshd answers with its banner, from the controller namespace.
    fn wait_for_sshd(&mut self, i: usize) -> Result<()> {
        let started = Instant::now();
        let addr = SocketAddr::from((self.hosts[i].addr, 22));
        let controller = File::open(Path::new("/run/netns").join(&self.controller))?;
        loop {
            if let Some(status) = self.hosts[i].sshd.as_mut().unwrap().try_wait()? {
                bail!(
                    "sshd of {} exited ({status}): {}",
                    self.hosts[i].netns,
                    std::fs::read_to_string(&self.hosts[i].sshd_log).unwrap_or_default().trim()
                );
            }
            let ns = controller.try_clone()?;
            // A thread of its own enters the namespace (it ends with the thread).
            let banner = std::thread::spawn(move || -> Result<String> {
                nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)?;
                let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
                stream.set_read_timeout(Some(Duration::from_secs(2)))?;
                let mut buf = [0u8; 64];
                let n = stream.read(&mut buf)?;
                Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
            })
            .join()
            .map_err(|_| anyhow::anyhow!("the probing thread panicked"))?;
            match banner {
                Ok(b) if b.starts_with("SSH-2.0-") => return Ok(()),
                Ok(b) => bail!("{addr} answered {b:?}, not an SSH banner"),
                Err(e) if started.elapsed() > SSHD_START_TIMEOUT => {
                    bail!(
                        "sshd of {} does not accept connections on {addr} after {SSHD_START_TIMEOUT:?}: {e:#}; log: {}",
                        self.hosts[i].netns,
                        std::fs::read_to_string(&self.hosts[i].sshd_log).unwrap_or_default().trim()
                    )
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn controller_netns(&self) -> &str {
        &self.controller
    }

    pub fn host_addr(&self, i: usize) -> Ipv4Addr {
        self.hosts[i].addr
    }

    /// The controller's end of host `i`'s link (its source address there).
    pub fn controller_addr(&self, i: usize) -> Ipv4Addr {
        let [a, b, c, _] = self.hosts[i].addr.octets();
        Ipv4Addr::new(a, b, c, 1)
    }

    pub fn host_netns(&self, i: usize) -> &str {
        &self.hosts[i].netns
    }

    /// The pid of host `i`'s sshd.
    pub fn sshd_pid(&self, i: usize) -> u32 {
        self.hosts[i].sshd.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// What host `i`'s sshd logged (`-e`): its connections, accepted keys.
    pub fn sshd_log(&self, i: usize) -> &Path {
        &self.hosts[i].sshd_log
    }

    /// `ssh -F <this> root@<host_addr(i)>`: the client key, known hosts in the temp dir, batch mode.
    pub fn ssh_config(&self) -> &Path {
        &self.ssh_config
    }

    /// The temp dir (keys, configs, sshd logs); removed on drop.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("temp dir").path()
    }

    /// `cmd` run inside the controller namespace (`ip netns exec <ctl> …`),
    /// with its arguments, environment changes and working directory.
    pub fn in_controller(&self, cmd: &mut Command) -> Command {
        let mut wrapped = Command::new("ip");
        wrapped.args(["netns", "exec", &self.controller]).arg(cmd.get_program()).args(cmd.get_args());
        for (key, value) in cmd.get_envs() {
            match value {
                Some(v) => wrapped.env(key, v),
                None => wrapped.env_remove(key),
            };
        }
        if let Some(d) = cmd.get_current_dir() {
            wrapped.current_dir(d);
        }
        wrapped
    }
}

impl Drop for NamespaceHosts {
    fn drop(&mut self) {
        for host in &mut self.hosts {
            if let Some(mut child) = host.sshd.take() {
                kill_tree(child.id());
                let _ = child.wait();
            }
        }
        // Anything else left in our namespaces: sessions that outlived sshd,
        // ssh connection masters (ControlPersist) in the controller.
        for ns in self.namespaces.iter().rev() {
            kill_netns_pids(ns);
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("NamespaceHosts: {e:#}");
            }
        }
        self.blocks.clear();
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            if let Err(e) = dir.close() {
                eprintln!("NamespaceHosts: removing {}: {e}", path.display());
            }
        }
    }
}

/// Namespaces named by this harness (any test process).
pub fn existing() -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output();
    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(PREFIX))
        .map(String::from)
        .collect()
}

/// Removes the namespaces (and what runs in them) of test processes that died
/// without dropping their hosts (SIGKILL).
fn remove_leftovers() {
    for name in existing() {
        let pid = name.trim_start_matches(PREFIX).split('-').next().unwrap_or("");
        if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
            kill_netns_pids(&name);
            let _ = ip(&["netns", "del", &name]);
        }
    }
}

/// A free `k` of 10.215.k.0/30, held while the returned lock lives.
fn take_block() -> Result<(u8, Flock<File>)> {
    std::fs::create_dir_all(LOCK_DIR).with_context(|| format!("creating {LOCK_DIR}"))?;
    let own = Command::new("ip").args(["-br", "addr"]).output().context("ip -br addr")?;
    let own = String::from_utf8_lossy(&own.stdout).into_owned();
    let start = std::process::id().wrapping_mul(2654435761) >> 24;
    for i in 0..256u32 {
        let k = ((start + i) % 256) as u8;
        if own.contains(&format!(" 10.215.{k}.")) {
            continue;
        }
        let path = format!("{LOCK_DIR}/ebt-net-{k}.lock");
        let file = File::options().create(true).truncate(false).write(true).open(&path)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok((k, lock)),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => continue,
            Err((_, e)) => return Err(e).with_context(|| format!("locking {path}")),
        }
    }
    bail!("every 10.215.k.0/30 block is in use")
}

/// Kills every process descending from `pid`, leaves first, so that each is
/// reaped by its own (still running) parent rather than left to init as a
/// zombie; then `pid` itself (the caller reaps it).
fn kill_tree(pid: u32) {
    for _ in 0..50 {
        let mut tree = vec![pid];
        loop {
            let more: Vec<u32> = children_of(&tree).into_iter().filter(|p| !tree.contains(p)).collect();
            if more.is_empty() {
                break;
            }
            tree.extend(more);
        }
        let descendants = &tree[1..];
        if descendants.is_empty() {
            break;
        }
        for p in descendants.iter().filter(|p| children_of(&[**p]).is_empty()) {
            let _ = kill(Pid::from_raw(*p as i32), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
}

/// The processes whose parent is in `parents`.
fn children_of(parents: &[u32]) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return out };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else { continue };
        let ppid = rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
        if ppid.is_some_and(|p| parents.contains(&p)) {
            out.push(pid);
        }
    }
    out
}

/// SIGKILLs every process in namespace `ns` until none is left (a few rounds).
fn kill_netns_pids(ns: &str) {
    for _ in 0..20 {
        let out = Command::new("ip").args(["netns", "pids", ns]).output();
        let pids: Vec<i32> = out
            .map(|o| String::from_utf8_lossy(&o.stdout).split_whitespace().filter_map(|p| p.parse().ok()).collect())
            .unwrap_or_default();
        if pids.is_empty() {
            return;
        }
        for p in pids {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("NamespaceHosts: processes still in {ns} after SIGKILL");
}

/// An ed25519 key pair without passphrase at `path` (and `path`.pub).
fn keygen(path: &Path, comment: &str) -> Result<()> {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .context("running ssh-keygen")?;
    if !out.status.success() {
        bail!("ssh-keygen -f {}: {}", path.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).output().context("running ip (iproute2)")?;
    if !out.status.success() {
        bail!("ip {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}
