//! `native`: the static musl workload server as a plain process. The floor
//! every other number is read against.

use super::process::{spawn, Launch, WarmMode};
use super::{ArtifactKind, Context, Detection, Instance, LaunchSpec, Runtime};
use crate::artifacts::Artifacts;
use anyhow::Result;

pub struct Native;

impl Runtime for Native {
    fn name(&self) -> &'static str {
        "native"
    }

    fn variants(&self) -> &'static [&'static str] {
        &["static-musl"]
    }

    fn serving_model(&self, _variant: &str) -> String {
        "static musl server: one thread per connection (its own model), on the SUT CPUs".into()
    }

    fn detect(&self, artifacts: &Artifacts) -> Detection {
        let path = artifacts.native_server();
        if path.exists() {
            Detection::found(format!("edgebench-workload {}", env!("CARGO_PKG_VERSION")), path)
        } else {
            Detection::missing(format!("{} is not built: run `edgebench build`", path.display()))
        }
    }

    fn artifact(&self, _variant: &str) -> ArtifactKind {
        ArtifactKind::Binary
    }

    fn notes(&self, workload: crate::Workload) -> Option<String> {
        workload.keeps_state().then(|| "state in process memory (one server process serves every request)".into())
    }

    fn launch(&self, ctx: &Context<'_>, spec: &LaunchSpec<'_>) -> Result<Box<dyn Instance>> {
        let mut command = Launch::new(spec.workload.require(ArtifactKind::Binary, ctx.artifacts)?);
        command.args(spec.workload.server_args(&spec.addr.to_string()));
        spec.place(&mut command)?;
        let log = ctx.work_dir.join("logs").join(format!("{}.log", spec.label));
        Ok(Box::new(spawn(command, &ctx.env, spec.addr, log, None, WarmMode::None)?))
    }
}
