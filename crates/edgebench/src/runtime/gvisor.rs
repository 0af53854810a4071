//! `gvisor`: the `docker` backend's `FROM scratch` image run by gVisor's
//! `runsc` instead of runc: the same engine, image, container lifecycle and
//! measurements as [`super::docker`] (its bridge network, the port published
//! on 127.0.0.1 through Docker's NAT and docker-proxy), with the container's
//! `HostConfig.runtime` naming one of the OCI runtimes below.
//!
//! Those runtimes are registered only in the dockerd edgebench starts itself
//! (a config file in the campaign's work directory, see `docker/daemon.rs`;
//! `scripts/test.sh` does the same for the suite's daemon): a daemon that
//! answers without them makes detection say "not measured" with the fix.
//!
//! Variants, one per runsc platform and network stack (Debian's runsc
//! 0.0~20221219 has the platforms `ptrace` and `kvm`, no `systrap`):
//! - `ptrace-hostinet`: `--platform=ptrace --network=host`. The Sentry
//!   serves the workload's system calls, but its sockets are the host
//!   kernel's, in the container's own network namespace (hostinet), not
//!   gVisor's netstack.
//! - `ptrace-netstack`: `--platform=ptrace`, gVisor's own network stack (its
//!   default). Debian's runsc refuses it on this kernel: see
//!   [`netstack_refused`]; it is then not measured, with that reason.
//! - `kvm-hostinet` (hardware KVM) / `kvm-pvm-hostinet` (this host's KVM is
//!   PVM, paravirtual): `--platform=kvm --network=host`. Under PVM it never
//!   starts a sandbox ([`KVM_PVM_REASON`]): not measured.
//!
//! Memory and CPU: runsc's sandbox (the Sentry, and under ptrace the stub
//! processes the server runs in) and its gofer are children of the
//! container's containerd-shim and live in the container's cgroup (checked
//! here, cgroup v1): the docker backend's figures count all of them.

use super::docker::Docker;
use super::{ArtifactKind, Context, Detection, Instance, LaunchSpec, OwnSample, Placement, Runtime};
use crate::artifacts::Artifacts;
use crate::Workload;
use anyhow::{bail, Result};
use std::path::Path;
use std::sync::OnceLock;

/// The daemon's OCI runtimes edgebench registers: (name, runsc arguments).
const OCI_RUNTIMES: &[(&str, &[&str])] = &[
    ("edgebench-runsc-ptrace-hostinet", &["--platform=ptrace", "--network=host"]),
    ("edgebench-runsc-ptrace-netstack", &["--platform=ptrace"]),
    ("edgebench-runsc-kvm-hostinet", &["--platform=kvm", "--network=host"]),
];

pub const KVM_PVM_REASON: &str = "not measured: this host's KVM is PVM (kvm_pvm, no vmx/svm): runsc's KVM platform \
    (Debian's 0.0~20221219) never starts a sandbox here: the Sentry spins at 100% of a CPU right after creating its \
    VM (its debug log ends at \"TSC scaling support: false\") and the container was still not started after 10 \
    minutes; gVisor on this host is the ptrace-hostinet variant";

/// Every `runsc` runtime, as dockerd's `runtimes` configuration (`daemon.json`).
pub fn daemon_runtimes(runsc: &Path) -> serde_json::Value {
    let entries = OCI_RUNTIMES.iter().map(|(name, args)| {
        (name.to_string(), serde_json::json!({ "path": runsc.display().to_string(), "runtimeArgs": args }))
    });
    serde_json::Value::Object(entries.collect())
}

/// The daemon's OCI runtime of `variant`.
fn oci_runtime(variant: &str) -> Result<&'static str> {
    Ok(match variant {
        "ptrace-hostinet" => OCI_RUNTIMES[0].0,
        "ptrace-netstack" => OCI_RUNTIMES[1].0,
        "kvm-hostinet" | "kvm-pvm-hostinet" => OCI_RUNTIMES[2].0,
        other => bail!("unknown gvisor variant {other:?}"),
    })
}

/// Why runsc's own network stack cannot run here, when it cannot. Debian's
/// runsc decides it would run in the host's (root) network namespace when
/// `/proc/sys/net/core/rmem_default` exists, and refuses to start with its
/// netstack there; on recent kernels that file exists in every namespace.
/// Both facts are checked (the runsc binary still carries that test; the
/// file exists in a new namespace); when either cannot be told, the variant
/// runs and a refusal shows as its error.
pub fn netstack_refused() -> Option<String> {
    static REASON: OnceLock<Option<String>> = OnceLock::new();
    REASON
        .get_or_init(|| {
            const CHECK: &[u8] = b"failed to access /proc/sys/net/core/rmem_default";
            let runsc = super::which("runsc")?;
            let binary = std::fs::read(&runsc).ok()?;
            binary.windows(CHECK.len()).any(|w| w == CHECK).then_some(())?;
            let unshare = super::which("unshare")?;
            let in_new_netns = super::process::helper(unshare)
                .args(["--net", "test", "-e", "/proc/sys/net/core/rmem_default"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .ok()?;
            in_new_netns.success().then(|| {
                format!(
                    "not measured: this runsc ({}) refuses its own network stack here: it takes the presence of \
                     /proc/sys/net/core/rmem_default as being in the host's network namespace, and on this kernel \
                     ({}) that file exists in every network namespace, so `runsc create` fails with \"cannot run \
                     with network enabled in root network namespace\"; the -hostinet variants run the same sandbox \
                     with the host kernel's sockets in the container's namespace",
                    super::version_of(&runsc, &["--version"]).unwrap_or_else(|| runsc.display().to_string()),
                    std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim()
                )
            })
        })
        .clone()
}

pub struct Gvisor {
    docker: Docker,
}

impl Gvisor {
    pub fn from_env() -> Gvisor {
        Gvisor { docker: Docker::from_env() }
    }
}

impl Runtime for Gvisor {
    fn name(&self) -> &'static str {
        "gvisor"
    }

    fn variants(&self) -> &'static [&'static str] {
        match super::microvm::host_mode().as_str() {
            "hardware-kvm" => &["ptrace-hostinet", "kvm-hostinet", "ptrace-netstack"],
            "kvm-pvm" => &["ptrace-hostinet", "kvm-pvm-hostinet", "ptrace-netstack"],
            _ => &["ptrace-hostinet", "ptrace-netstack"],
        }
    }

    /// runsc, then Docker (its engine, or the dockerd edgebench would start),
    /// then the runsc runtimes in the daemon that answers, if one does.
    fn detect(&self, artifacts: &Artifacts) -> Detection {
        let env = crate::campaign::controlled_env(Path::new("/"));
        let Some(runsc) = super::docker::find_on_path(&env, "runsc") else {
            return Detection::missing("runsc (gVisor) not found: apt-get install -y runsc");
        };
        let docker = self.docker.detect(artifacts);
        if !docker.available {
            return Detection::missing(format!(
                "gVisor runs through Docker here, and Docker cannot: {}",
                docker.reason
            ));
        }
        let wanted = daemon_runtimes(&runsc);
        let wanted = wanted.as_object().expect("an object");
        match self.docker.daemon_runtimes() {
            Err(e) => return Detection::missing(format!("the Docker engine does not list its runtimes: {e}")),
            Ok(None) => {}
            Ok(Some(registered)) => {
                let socket = self.docker.socket().unwrap_or_default();
                let path = runsc.display().to_string();
                for (name, args) in OCI_RUNTIMES {
                    let same = registered
                        .get(*name)
                        .is_some_and(|(p, a)| *p == path && a.iter().map(String::as_str).eq(args.iter().copied()));
                    if !same {
                        return Detection::missing(format!(
                            "the dockerd answering at {} has no runtime {name} as edgebench registers it ({} {}): \
                             stop that dockerd so that edgebench starts its own (it registers runsc's runtimes), or \
                             add to its daemon.json \"runtimes\": {} and reload it (SIGHUP)",
                            socket.display(),
                            path,
                            args.join(" "),
                            serde_json::Value::Object(wanted.clone())
                        ));
                    }
                }
            }
        }
        let version = super::version_of(&runsc, &["--version"]).unwrap_or_else(|| "runsc".into());
        Detection::found(format!("{version}; through {}", docker.version), runsc)
    }

    fn artifact(&self, _variant: &str) -> ArtifactKind {
        ArtifactKind::Container
    }

    fn notes(&self, workload: Workload) -> Option<String> {
        let state = if workload.keeps_state() {
            " State in the server process memory inside the sandbox (as native); a `restart` warm start begins with an empty store."
        } else {
            ""
        };
        Some(format!(
            "variant = runsc platform + network stack (hostinet: the host kernel's sockets in the container's \
             namespace, not gVisor's netstack); the docker image and lifecycle, `runtime` set to runsc's; KVM under \
             PVM (this host: {}) is never hardware KVM.{state}",
            super::microvm::host_mode()
        ))
    }

    fn serves_workloads(&self, variant: &str) -> std::result::Result<(), String> {
        match variant {
            "kvm-pvm-hostinet" => Err(KVM_PVM_REASON.into()),
            "ptrace-netstack" => netstack_refused().map_or(Ok(()), Err),
            _ => Ok(()),
        }
    }

    fn own_trial(&self, _ctx: &Context<'_>, spec: &LaunchSpec<'_>) -> Option<Vec<OwnSample>> {
        // One failed sample per trial with the reason, never a number.
        self.serves_workloads(spec.variant).err().map(|why| vec![OwnSample::failed("cold_start", "", why)])
    }

    /// Reached like docker's bridge: a port published on 127.0.0.1 through
    /// Docker's NAT and docker-proxy, so a profile applies in the host
    /// namespace, on `lo`, in front of the proxy.
    fn network_placement(&self, _variant: &str) -> Placement {
        Placement::HostLoopback
    }

    fn serving_model(&self, _variant: &str) -> String {
        "the native server in a gVisor sandbox (one thread per connection, its system calls served by the Sentry), `--cpuset-cpus` the SUT set; dockerd (when edgebench starts it), containerd, the shims and runsc's gofer on the SUT set".into()
    }

    fn cpu_scope(&self, _variant: &str) -> String {
        "the container's cgroup: runsc's sandbox (the Sentry and the stubs the server runs in) and its gofer, exited \
         processes included, plus the containerd-shim and docker-proxy; not dockerd's or containerd's work for it"
            .into()
    }

    fn network_path(&self, variant: &str) -> String {
        let stack = if variant.ends_with("netstack") {
            "gVisor's netstack in the Sentry"
        } else {
            "the host kernel's sockets opened by the Sentry (hostinet)"
        };
        format!(
            "Docker's bridge: the port published on 127.0.0.1 through Docker's NAT rules and docker-proxy into the \
             container's namespace, where {stack} serves it (a firewall profile sits on `lo`, not on the veth path)"
        )
    }

    fn setup(&self, ctx: &Context<'_>) -> Result<()> {
        self.docker.setup(ctx)
    }

    fn teardown(&self, ctx: &Context<'_>) {
        self.docker.teardown(ctx)
    }

    fn prepare(&self, ctx: &Context<'_>, workload: Workload, variant: &str) -> Result<()> {
        oci_runtime(variant)?;
        if self.serves_workloads(variant).is_err() {
            return Ok(());
        }
        self.docker.prepare_image(ctx, workload)
    }

    fn launch(&self, ctx: &Context<'_>, spec: &LaunchSpec<'_>) -> Result<Box<dyn Instance>> {
        let runtime = oci_runtime(spec.variant)?;
        if let Err(why) = self.serves_workloads(spec.variant) {
            bail!("gvisor {}: {why}", spec.variant);
        }
        self.docker.launch_under(ctx, spec, runtime)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_a_registered_runtime() {
        let runtimes = daemon_runtimes(Path::new("/usr/bin/runsc"));
        for variant in ["ptrace-hostinet", "ptrace-netstack", "kvm-hostinet", "kvm-pvm-hostinet"] {
            let name = oci_runtime(variant).unwrap();
            let args = &runtimes[name]["runtimeArgs"];
            assert_eq!(runtimes[name]["path"], "/usr/bin/runsc");
            let platform = if variant.starts_with("kvm") { "--platform=kvm" } else { "--platform=ptrace" };
            assert!(args.as_array().unwrap().iter().any(|a| a == platform), "{variant}: {args}");
            let hostinet = args.as_array().unwrap().iter().any(|a| a == "--network=host");
            assert_eq!(hostinet, variant.ends_with("hostinet"), "{variant}: {args}");
        }
        assert!(oci_runtime("systrap").is_err());
    }
}
