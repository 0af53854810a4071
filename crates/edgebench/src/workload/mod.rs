//! The services a campaign measures. The four built-in ones (the seed's:
//! hello, cpu, echo, kv) and the user's own, declared in a campaign file, are
//! the same thing to the rest of edgebench: a [`Workload`] with a name, the
//! requests edgebench sends, what a correct answer is, and the artifact each
//! kind of runtime runs.

mod builtin;
mod expected;
mod user;

pub use builtin::{reference_responses, CPU_N};
pub use edgebench_workload_core::Workload as Builtin;
pub use expected::{Expected, ExpectedBody};
pub use user::{render_args, Exchange, UnikernelImage, UserWorkload};

use crate::artifacts::Artifacts;
use anyhow::{bail, Result};
use std::path::PathBuf;
use std::sync::Mutex;

/// One request of the measurement client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    pub target: String,
    /// Sent after `host` (edgebench sets host, content-length and connection itself).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    pub fn new(method: &str, target: &str, body: &[u8]) -> HttpRequest {
        HttpRequest { method: method.to_string(), target: target.to_string(), headers: Vec::new(), body: body.to_vec() }
    }
}

/// A workload: a cheap handle (copied into every trial key) to its definition.
#[derive(Clone, Copy)]
pub struct Workload(&'static Definition);

// Definitions live once, behind `&'static`: their size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq, Eq)]
pub enum Definition {
    Builtin(Builtin),
    User(UserWorkload),
}

/// What a runtime runs of a workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArtifactKind {
    /// A `wasi:http` proxy component.
    Component,
    /// A WASI preview-1 socket server for one socket ABI.
    WasiP1(&'static str),
    /// A static Linux binary, run as a process.
    Binary,
    /// A core Wasm module with edgebench's `eb_alloc`/`eb_handle` ABI, called
    /// by a Worker (workerd); only the built-in workloads have one.
    CoreModule,
    /// A container image: a user's image tarball, else a static binary in a `FROM scratch` image.
    Container,
    /// A unikernel image booted by a VMM.
    Unikernel,
    /// edgebench's own Linux guest (kernel + initramfs with its server).
    LinuxGuest,
}

impl ArtifactKind {
    pub fn describe(self) -> String {
        match self {
            ArtifactKind::Component => "a wasi:http component (`component`)".into(),
            ArtifactKind::WasiP1(abi) => format!("a WASI preview-1 server for {abi} (`wasi_p1.{abi}`)"),
            ArtifactKind::Binary => "a static Linux binary (`binary`)".into(),
            ArtifactKind::CoreModule => {
                "a core Wasm module with edgebench's eb_alloc/eb_handle ABI (only the built-in workloads have one)"
                    .into()
            }
            ArtifactKind::Container => "an image tarball (`oci`) or a static Linux binary (`binary`)".into(),
            ArtifactKind::Unikernel => "a unikernel image (`unikernel`)".into(),
            ArtifactKind::LinuxGuest => {
                "a micro-VM Linux guest (only the built-in workloads have one: their server is in edgebench's initramfs)"
                    .into()
            }
        }
    }
}

static USER: Mutex<Vec<&'static Definition>> = Mutex::new(Vec::new());

impl Workload {
    pub const HELLO: Workload = Workload(&Definition::Builtin(Builtin::Hello));
    pub const CPU: Workload = Workload(&Definition::Builtin(Builtin::Cpu));
    pub const ECHO: Workload = Workload(&Definition::Builtin(Builtin::Echo));
    pub const KV: Workload = Workload(&Definition::Builtin(Builtin::Kv));
    /// The seed's four services, in report order.
    pub const BUILTIN: [Workload; 4] = [Workload::HELLO, Workload::CPU, Workload::ECHO, Workload::KV];

    pub fn of(builtin: Builtin) -> Workload {
        Workload::BUILTIN[Builtin::ALL.iter().position(|b| *b == builtin).expect("every built-in is in ALL")]
    }

    /// Makes a user's workload known by its name (to `--workloads`, stored
    /// configurations, resume). The same definition twice is one workload; a
    /// different one under a known name is an error.
    pub fn register(definition: UserWorkload) -> Result<Workload> {
        if Builtin::from_name(&definition.name).is_some() {
            bail!("workload {:?} is a built-in workload; give yours another name", definition.name);
        }
        let mut known = USER.lock().unwrap();
        if let Some(existing) = known.iter().find(|d| Workload(d).name() == definition.name) {
            if let Definition::User(u) = existing {
                if *u == definition {
                    return Ok(Workload(existing));
                }
            }
            bail!("workload {:?} is already defined differently in this process", definition.name);
        }
        let leaked: &'static Definition = Box::leak(Box::new(Definition::User(definition)));
        known.push(leaked);
        Ok(Workload(leaked))
    }

    pub fn from_name(name: &str) -> Option<Workload> {
        if let Some(b) = Builtin::from_name(name) {
            return Some(Workload::of(b));
        }
        USER.lock().unwrap().iter().find(|d| matches!(d, Definition::User(u) if u.name == name)).map(|d| Workload(d))
    }

    /// The built-in workloads, then every user workload registered.
    pub fn all() -> Vec<Workload> {
        let mut all = Workload::BUILTIN.to_vec();
        all.extend(USER.lock().unwrap().iter().map(|d| Workload(d)));
        all
    }

    pub fn name(self) -> &'static str {
        match self.0 {
            Definition::Builtin(b) => b.name(),
            Definition::User(u) => &u.name,
        }
    }

    pub fn builtin(self) -> Option<Builtin> {
        match self.0 {
            Definition::Builtin(b) => Some(*b),
            Definition::User(_) => None,
        }
    }

    pub fn user(self) -> Option<&'static UserWorkload> {
        match self.0 {
            Definition::Builtin(_) => None,
            Definition::User(u) => Some(u),
        }
    }

    /// The service keeps state between requests (kv, or a user's `keeps_state`).
    pub fn keeps_state(self) -> bool {
        match self.0 {
            Definition::Builtin(b) => *b == Builtin::Kv,
            Definition::User(u) => u.keeps_state,
        }
    }

    /// The readiness request: a cold start ends at its first correct answer.
    pub fn probe_request(self) -> HttpRequest {
        match self.0 {
            Definition::Builtin(b) => builtin::probe_request(*b),
            Definition::User(u) => u.probe.request(),
        }
    }

    pub fn expected_probe(self) -> Expected {
        match self.0 {
            Definition::Builtin(b) => builtin::expected_probe(*b),
            Definition::User(u) => u.probe.expected(),
        }
    }

    /// The request of latency, load and scaling runs: the workload's typical operation.
    pub fn latency_request(self) -> HttpRequest {
        match self.0 {
            Definition::Builtin(b) => builtin::latency_request(*b),
            Definition::User(u) => u.latency.as_ref().unwrap_or(&u.probe).request(),
        }
    }

    /// What a correct answer to [`Self::latency_request`] looks like.
    pub fn expected_latency(self) -> Expected {
        match self.0 {
            Definition::Builtin(b) => builtin::expected_latency(*b),
            Definition::User(u) => u.latency.as_ref().unwrap_or(&u.probe).expected(),
        }
    }

    /// The conformance sequence (sent after the probe on one instance) with
    /// the answer each request must get.
    pub fn conformance(self) -> Vec<(HttpRequest, Expected)> {
        match self.0 {
            Definition::Builtin(b) => builtin::conformance(*b),
            Definition::User(u) => {
                let mut all = vec![(u.probe.request(), u.probe.expected())];
                all.extend(u.latency.iter().chain(&u.conformance).map(|e| (e.request(), e.expected())));
                all
            }
        }
    }

    /// The workload's artifact of `kind`, if it has one.
    pub fn artifact(self, kind: ArtifactKind, artifacts: &Artifacts) -> Option<PathBuf> {
        match (self.0, kind) {
            (Definition::Builtin(b), ArtifactKind::Component) => Some(artifacts.component(*b)),
            (Definition::Builtin(_), ArtifactKind::WasiP1(abi)) => Some(artifacts.wasi_p1_server(abi)),
            (Definition::Builtin(_), ArtifactKind::Binary | ArtifactKind::Container | ArtifactKind::LinuxGuest) => {
                Some(artifacts.native_server())
            }
            (Definition::Builtin(_), ArtifactKind::Unikernel) => Some(artifacts.unikernel()),
            (Definition::Builtin(_), ArtifactKind::CoreModule) => Some(artifacts.workerd_module()),
            (Definition::User(u), ArtifactKind::Component) => u.component.clone(),
            (Definition::User(u), ArtifactKind::WasiP1(abi)) => u.wasi_p1.get(abi).cloned(),
            (Definition::User(u), ArtifactKind::Binary) => u.binary.clone(),
            (Definition::User(u), ArtifactKind::Container) => u.oci.clone().or_else(|| u.binary.clone()),
            (Definition::User(u), ArtifactKind::Unikernel) => u.unikernel.as_ref().map(|k| k.image.clone()),
            (Definition::User(_), ArtifactKind::LinuxGuest | ArtifactKind::CoreModule) => None,
        }
    }

    /// The artifact of `kind`, or an error saying the workload has none.
    pub fn require(self, kind: ArtifactKind, artifacts: &Artifacts) -> Result<PathBuf> {
        match self.artifact(kind, artifacts) {
            Some(p) => Ok(p),
            None => bail!("workload {self} has no artifact for this runtime: it needs {}", kind.describe()),
        }
    }

    /// Why a runtime that runs `kind` cannot run this workload, if it cannot.
    pub fn lacks(self, kind: ArtifactKind) -> Option<String> {
        match self.0 {
            Definition::Builtin(_) => None,
            Definition::User(_) => {
                // Any Artifacts will do: a user's paths do not depend on it.
                let none = Artifacts {
                    source: PathBuf::new(),
                    target_dir: PathBuf::new(),
                    arch: crate::artifacts::Arch::HOST,
                };
                self.artifact(kind, &none).is_none().then(|| {
                    format!(
                        "not measured: this workload has no artifact for this runtime (it needs {})",
                        kind.describe()
                    )
                })
            }
        }
    }

    /// The arguments a binary or a preview-1 server is started with, to
    /// listen on `listen` (ip:port).
    pub fn server_args(self, listen: &str) -> Vec<String> {
        match self.0 {
            Definition::Builtin(b) => vec![b.name().to_string(), listen.to_string()],
            Definition::User(u) => render_args(&u.args, listen),
        }
    }

    /// The image's identity for a content-addressed cache: the user's
    /// artifact files, with what they are.
    pub fn files(self) -> Vec<(String, PathBuf)> {
        self.user().map(UserWorkload::files).unwrap_or_default()
    }

    /// Order, equality and hashing: built-ins first in the seed's order, then by name.
    fn rank(self) -> (usize, &'static str) {
        let at = self.builtin().and_then(|b| Builtin::ALL.iter().position(|x| *x == b)).unwrap_or(Builtin::ALL.len());
        (at, self.name())
    }
}

impl PartialEq for Workload {
    fn eq(&self, other: &Workload) -> bool {
        self.rank() == other.rank()
    }
}
impl Eq for Workload {}
impl std::hash::Hash for Workload {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name().hash(state)
    }
}
impl PartialOrd for Workload {
    fn partial_cmp(&self, other: &Workload) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Workload {
    fn cmp(&self, other: &Workload) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

impl std::fmt::Debug for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

impl serde::Serialize for Workload {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Workload {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = <String as serde::Deserialize>::deserialize(d)?;
        Workload::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown workload {name:?} (a user workload is declared in the campaign file)"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> UserWorkload {
        let text = "binary = \"/bin/true\"\n[probe]\npath = \"/\"\nexpect_body_regex = \"^ok\"\n";
        let mut u: UserWorkload = toml::from_str(text).unwrap();
        u.name = name.into();
        u
    }

    #[test]
    fn builtins_and_user_workloads_are_found_by_name_and_ordered() {
        assert_eq!(Workload::from_name("kv"), Some(Workload::KV));
        assert_eq!(Workload::of(Builtin::Echo), Workload::ECHO);
        let mine = Workload::register(user("zz-mine")).unwrap();
        assert_eq!(Workload::register(user("zz-mine")).unwrap(), mine);
        let mut other = user("zz-mine");
        other.args = vec!["--port".into(), "{port}".into()];
        assert!(Workload::register(other).unwrap_err().to_string().contains("defined differently"));
        assert!(Workload::register(user("hello")).is_err());
        assert_eq!(Workload::from_name("zz-mine"), Some(mine));
        assert!(Workload::KV < mine && Workload::HELLO < Workload::CPU);
        assert_eq!(mine.server_args("10.0.0.2:8080"), vec!["10.0.0.2:8080"]);
        assert!(mine.lacks(ArtifactKind::Binary).is_none());
        assert!(mine.lacks(ArtifactKind::Component).unwrap().contains("no artifact for this runtime"));
        assert!(mine.expected_probe().check(200, b"ok then").is_ok());
        assert!(mine.expected_probe().check(200, b"not ok").is_err());
        let back: Workload = serde_json::from_value(serde_json::to_value(mine).unwrap()).unwrap();
        assert_eq!(back, mine);
    }

    #[test]
    fn args_are_rendered_with_the_listen_address() {
        let args = vec!["--listen".to_string(), "{ip}".into(), "-p{port}".into(), "{addr}".into()];
        assert_eq!(render_args(&args, "127.0.0.1:9000"), vec!["--listen", "127.0.0.1", "-p9000", "127.0.0.1:9000"]);
    }
}
