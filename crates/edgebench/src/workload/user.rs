//! A user's workload, declared in a campaign file under `[workload.NAME]`:
//! the artifacts the user has, and the requests with what a correct answer is.

use super::{Expected, ExpectedBody, HttpRequest};
use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserWorkload {
    /// The table's key (`[workload.NAME]`).
    #[serde(skip)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The service keeps state between requests (the runtimes that give a
    /// component a directory for it, `/data`, then give it a fresh one per instance).
    #[serde(default, skip_serializing_if = "is_false")]
    pub keeps_state: bool,
    /// A `wasi:http` proxy component: embedded host, `wasmtime serve`, wasmCloud.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<PathBuf>,
    /// A static Linux binary that serves HTTP/1.1 on the address in `args`: native, Docker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<PathBuf>,
    /// An image for Docker: a tarball as `docker save` writes it (or a
    /// directory holding one unpacked); `args` replaces its CMD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci: Option<PathBuf>,
    /// What `binary`, `oci` and the preview-1 modules are started with; `{addr}`
    /// (ip:port), `{ip}` and `{port}` are replaced by where they must listen.
    #[serde(default = "default_args")]
    pub args: Vec<String>,
    /// WASI preview-1 socket servers, by socket ABI: `wasmedge`, `wamr`, `wasmer`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub wasi_p1: BTreeMap<String, PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unikernel: Option<UnikernelImage>,
    /// The readiness request: a cold start ends at its first correct answer.
    pub probe: Exchange,
    /// The request of latency, load and scaling runs (default: the probe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Exchange>,
    /// Sent in order after the probe, on one instance, by the conformance
    /// check that runs before any trial.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conformance: Vec<Exchange>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnikernelImage {
    /// An ELF entered through PVH (Firecracker and QEMU's microvm boot it as a kernel).
    pub image: PathBuf,
    /// Its command line; `{ip}`, `{prefix}`, `{gateway}`, `{port}`, `{tsc_khz}`
    /// are replaced by the guest's network settings.
    pub args: String,
    /// The port it listens on.
    #[serde(default = "default_port")]
    pub port: u16,
    /// The guest's memory.
    #[serde(default = "default_memory_mib")]
    pub memory_mib: u64,
}

/// One request and what a correct answer to it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    #[serde(default = "default_method")]
    pub method: String,
    /// Path and query, as on the request line.
    #[serde(default = "default_path")]
    pub path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
    #[serde(default = "default_status")]
    pub expect_status: u16,
    /// The exact body of a correct answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_body: Option<String>,
    /// A regular expression the body of a correct answer matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_body_regex: Option<String>,
    /// Sent with the request (edgebench sets host, content-length and connection itself).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

fn is_false(b: &bool) -> bool {
    !b
}
fn default_args() -> Vec<String> {
    vec!["{addr}".into()]
}
fn default_port() -> u16 {
    8080
}
fn default_memory_mib() -> u64 {
    128
}
fn default_method() -> String {
    "GET".into()
}
fn default_path() -> String {
    "/".into()
}
fn default_status() -> u16 {
    200
}

/// The socket ABIs a preview-1 server can be declared for.
pub const WASI_P1_ABIS: [&str; 3] = crate::artifacts::WASI_P1_ABIS;

impl Exchange {
    pub fn request(&self) -> HttpRequest {
        let mut r = HttpRequest::new(&self.method, &self.path, self.body.as_bytes());
        r.headers = self.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        r
    }

    pub fn expected(&self) -> Expected {
        let body = match (&self.expect_body, &self.expect_body_regex) {
            (Some(b), _) => ExpectedBody::Exact(b.as_bytes().to_vec()),
            (None, Some(re)) => {
                ExpectedBody::Matches(regex::bytes::Regex::new(re).expect("validated when the campaign file was read"))
            }
            (None, None) => ExpectedBody::Any,
        };
        Expected { status: self.expect_status, body }
    }

    fn validate(&self, at: &str) -> Result<()> {
        let token =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token(&self.method) {
            bail!("{at}.method: {:?} is not an HTTP method (expected e.g. \"GET\", \"POST\")", self.method);
        }
        if !self.path.starts_with('/') || self.path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            bail!("{at}.path: {:?} is not a request target (expected a path starting with `/`, no spaces)", self.path);
        }
        for (name, value) in &self.headers {
            if !token(name) || value.bytes().any(|b| b == b'\r' || b == b'\n') {
                bail!("{at}.headers: {name:?} = {value:?} is not a valid header (a token name, a one-line value)");
            }
            let lower = name.to_ascii_lowercase();
            if matches!(lower.as_str(), "host" | "content-length" | "connection" | "transfer-encoding") {
                bail!(
                    "{at}.headers: {name:?} is set by edgebench itself (host, content-length, connection); remove it"
                );
            }
        }
        if !(100..=599).contains(&self.expect_status) {
            bail!("{at}.expect_status: {} is not an HTTP status (expected 100-599)", self.expect_status);
        }
        if self.expect_body.is_some() && self.expect_body_regex.is_some() {
            bail!("{at}: give either expect_body (exact) or expect_body_regex, not both");
        }
        if let Some(re) = &self.expect_body_regex {
            regex::bytes::Regex::new(re)
                .with_context(|| format!("{at}.expect_body_regex: {re:?} is not a regular expression"))?;
        }
        Ok(())
    }
}

impl UserWorkload {
    /// Checks a definition read from a file and makes its paths absolute
    /// (relative ones are read from `base`, the file's directory).
    pub fn validated(mut self, name: &str, base: &Path) -> Result<UserWorkload> {
        let at = format!("workload.{name}");
        if name.is_empty()
            || name.len() > 40
            || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            bail!(
                "[{at}]: a workload name is 1-40 characters of a-z, 0-9, `-` and `_` (it names files and report rows)"
            );
        }
        if super::Builtin::from_name(name).is_some() {
            bail!("[{at}]: {name:?} is a built-in workload; give yours another name");
        }
        self.name = name.to_string();
        let absolute = |key: &str, p: &mut PathBuf, dir_too: bool| -> Result<()> {
            if p.is_relative() {
                *p = base.join(&*p);
            }
            let meta = std::fs::metadata(&*p).with_context(|| {
                format!("{at}.{key}: cannot read {} (paths are relative to the campaign file)", p.display())
            })?;
            if !(meta.is_file() || (dir_too && meta.is_dir())) {
                bail!("{at}.{key}: {} is not a file", p.display());
            }
            *p = p.canonicalize()?;
            Ok(())
        };
        if let Some(p) = &mut self.component {
            absolute("component", p, false)?;
        }
        if let Some(p) = &mut self.binary {
            absolute("binary", p, false)?;
            use std::os::unix::fs::PermissionsExt;
            if std::fs::metadata(&*p)?.permissions().mode() & 0o111 == 0 {
                bail!("{at}.binary: {} is not executable (chmod +x it)", p.display());
            }
        }
        for (abi, p) in &mut self.wasi_p1 {
            if !WASI_P1_ABIS.contains(&abi.as_str()) {
                bail!("{at}.wasi_p1: unknown socket ABI {abi:?} (expected one of: {})", WASI_P1_ABIS.join(", "));
            }
            absolute(&format!("wasi_p1.{abi}"), p, false)?;
        }
        if let Some(u) = &mut self.unikernel {
            absolute("unikernel.image", &mut u.image, false)?;
        }
        if let Some(p) = &mut self.oci {
            absolute("oci", p, true)?;
        }
        if self.component.is_none()
            && self.binary.is_none()
            && self.oci.is_none()
            && self.wasi_p1.is_empty()
            && self.unikernel.is_none()
        {
            bail!("[{at}]: no artifact: give at least one of component, binary, oci, wasi_p1, unikernel");
        }
        if self.args.iter().any(|a| a.contains('\0')) {
            bail!("{at}.args: an argument contains a NUL byte");
        }
        self.probe.validate(&format!("{at}.probe"))?;
        if let Some(l) = &self.latency {
            l.validate(&format!("{at}.latency"))?;
        }
        for (i, c) in self.conformance.iter().enumerate() {
            c.validate(&format!("{at}.conformance[{i}]"))?;
        }
        Ok(self)
    }

    /// Every artifact file, with what it is (for the campaign's fingerprint).
    pub fn files(&self) -> Vec<(String, PathBuf)> {
        let mut out = Vec::new();
        let n = &self.name;
        out.extend(self.component.iter().map(|p| (format!("{n} component (user)"), p.clone())));
        out.extend(self.binary.iter().map(|p| (format!("{n} binary (user)"), p.clone())));
        out.extend(self.oci.iter().filter(|p| p.is_file()).map(|p| (format!("{n} image (user)"), p.clone())));
        out.extend(
            self.wasi_p1.iter().map(|(abi, p)| (format!("{n} WASI preview-1 server for {abi} (user)"), p.clone())),
        );
        out.extend(self.unikernel.iter().map(|u| (format!("{n} unikernel (user)"), u.image.clone())));
        out
    }
}

/// `args` with `{addr}`, `{ip}` and `{port}` replaced by `listen`.
pub fn render_args(args: &[String], listen: &str) -> Vec<String> {
    let (ip, port) = listen.rsplit_once(':').unwrap_or((listen, ""));
    args.iter().map(|a| a.replace("{addr}", listen).replace("{ip}", ip).replace("{port}", port)).collect()
}
