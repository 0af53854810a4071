//! The pause container of a firewall campaign: a container with no network
//! (Docker gives it a namespace holding only loopback) whose namespace the
//! campaign turns into its server namespace (`ip netns attach`), so that the
//! `host` variant's containers join it (`network_mode: container:<pause>`,
//! as the containers of a Kubernetes pod do) and sit on exactly the path of
//! the process runtimes: the same veth, the same firewall table.

use super::engine::Engine;
use super::labels;
use anyhow::{Context as _, Result};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::CreateContainerOptions;

pub struct Pod {
    pub id: String,
    /// Its process, in the host's pid namespace.
    pub pid: u32,
}

/// Creates and starts the pause container (removed with the campaign's
/// containers in `teardown`, or as a leftover once its edgebench is gone).
pub fn start(engine: &Engine, image: &str, campaign: &str) -> Result<Pod> {
    let config = ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(vec!["pause".into()]),
        labels: Some(labels::for_container(campaign)),
        stop_signal: Some("SIGKILL".into()),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            cpuset_cpus: crate::cpus::sut_list(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let name = format!("edgebench-{campaign}-pod-{}", std::process::id());
    let name: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '-' }).collect();
    let options = CreateContainerOptions { name: Some(name), ..Default::default() };
    let created = engine.call("create the pause container", engine.api().create_container(Some(options), config))?;
    let id = created.id;
    engine.call("start the pause container", engine.api().start_container(&id, None))?;
    let info = engine.call("inspect the pause container", engine.api().inspect_container(&id, None))?;
    let pid = info
        .state
        .and_then(|s| s.pid)
        .and_then(|p| u32::try_from(p).ok())
        .filter(|p| *p > 0)
        .context("the pause container runs no process")?;
    Ok(Pod { id, pid })
}
