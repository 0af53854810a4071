//! The host's NATS control API (wasmCloud 2.x, protobuf JSON mapping of
//! `wasmcloud.runtime.v2`): requests `workload.start|stop|status` on
//! `runtime.host.<host_id>.…`, heartbeats on `runtime.operator.heartbeat.<host_id>`.
//!
//! edgebench is blocking; a small current-thread Tokio runtime shared by the
//! backend drives the async client inside `block_on`.

use anyhow::{anyhow, bail, Context as _, Result};
use async_nats::{Client, RequestErrorKind, Subscriber};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

pub const HEARTBEATS: &str = "runtime.operator.heartbeat.*";

/// A workload's state as the host reports it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadStatus {
    #[serde(default)]
    pub workload_id: String,
    /// e.g. `WORKLOAD_STATE_RUNNING`, `WORKLOAD_STATE_ERROR`.
    #[serde(default)]
    pub workload_state: String,
    #[serde(default)]
    pub message: String,
}

impl WorkloadStatus {
    pub fn is(&self, state: &str) -> bool {
        self.workload_state == format!("WORKLOAD_STATE_{state}")
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reply {
    workload_status: WorkloadStatus,
}

#[derive(Deserialize)]
struct Heartbeat {
    id: String,
    #[serde(default)]
    labels: std::collections::HashMap<String, String>,
}

/// One connection to the campaign's NATS server.
pub struct Control {
    rt: Arc<Runtime>,
    client: Client,
}

pub fn new_runtime() -> Result<Arc<Runtime>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("creating the Tokio runtime of the NATS client")?;
    Ok(Arc::new(rt))
}

impl Control {
    pub fn connect(rt: Arc<Runtime>, url: &str) -> Result<Control> {
        // Futures are built inside `block_on`: Tokio timers need the runtime's context.
        let client = rt
            .block_on(async {
                async_nats::ConnectOptions::new()
                    .connection_timeout(Duration::from_secs(5))
                    .request_timeout(Some(Duration::from_secs(10)))
                    .max_reconnects(3)
                    .connect(url)
                    .await
            })
            .with_context(|| format!("connecting to NATS at {url}"))?;
        Ok(Control { rt, client })
    }

    /// One round trip to the server, so that the next timed request does not
    /// pay for a reconnection.
    pub fn ping(&self) -> Result<()> {
        let flush = async { tokio::time::timeout(Duration::from_secs(5), self.client.flush()).await };
        self.rt.block_on(flush).context("NATS did not answer within 5 s")?.context("NATS flush")
    }

    /// Subscribes to host heartbeats; the subscription is active on return.
    pub fn heartbeats(&self) -> Result<Subscriber> {
        let sub = self.rt.block_on(self.client.subscribe(HEARTBEATS)).context("subscribing to heartbeats")?;
        self.ping()?;
        Ok(sub)
    }

    /// Waits for the first heartbeat of the host labelled `hostgroup=group`:
    /// returns its id and when the heartbeat arrived. `exited` is asked
    /// between waits whether the host died.
    pub fn wait_for_host(
        &self,
        sub: &mut Subscriber,
        group: &str,
        limit: Duration,
        exited: &mut dyn FnMut() -> Option<String>,
    ) -> Result<(String, Instant)> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(how) = exited() {
                bail!("wash host exited before its first heartbeat: {how}");
            }
            let next = async { tokio::time::timeout(Duration::from_millis(20), sub.next()).await };
            match self.rt.block_on(next) {
                Ok(Some(msg)) => {
                    let at = Instant::now();
                    let beat: Heartbeat = match serde_json::from_slice(&msg.payload) {
                        Ok(b) => b,
                        Err(_) => continue,
                    };
                    if beat.labels.get("hostgroup").map(String::as_str) == Some(group) {
                        return Ok((beat.id, at));
                    }
                }
                Ok(None) => bail!("the NATS heartbeat subscription ended"),
                Err(_) => {}
            }
        }
        bail!("no heartbeat from wash host (host group {group}) within {limit:?}")
    }

    /// `workload.start`: the host replies once the workload runs or failed.
    /// Until the host has subscribed to its control subject NATS answers
    /// "no responders": retried within `limit`.
    pub fn start(&self, host_id: &str, request: &Value, limit: Duration) -> Result<WorkloadStatus> {
        self.request(host_id, "workload.start", request, limit)
    }

    pub fn stop(&self, host_id: &str, workload_id: &str, limit: Duration) -> Result<WorkloadStatus> {
        self.request(host_id, "workload.stop", &serde_json::json!({ "workloadId": workload_id }), limit)
    }

    pub fn status(&self, host_id: &str, workload_id: &str, limit: Duration) -> Result<WorkloadStatus> {
        self.request(host_id, "workload.status", &serde_json::json!({ "workloadId": workload_id }), limit)
    }

    fn request(&self, host_id: &str, operation: &str, body: &Value, limit: Duration) -> Result<WorkloadStatus> {
        let subject = format!("runtime.host.{host_id}.{operation}");
        let payload = serde_json::to_vec(body)?;
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("{subject}: no reply within {limit:?}");
            }
            let request = async_nats::Request::new().payload(payload.clone().into()).timeout(Some(left));
            match self.rt.block_on(async { self.client.send_request(subject.clone(), request).await }) {
                Ok(msg) => {
                    let reply: Reply = serde_json::from_slice(&msg.payload).map_err(|e| {
                        anyhow!("{subject}: unexpected reply ({e}): {}", String::from_utf8_lossy(&msg.payload))
                    })?;
                    return Ok(reply.workload_status);
                }
                Err(e) if e.kind() == RequestErrorKind::NoResponders => {
                    self.rt.block_on(async { tokio::time::sleep(Duration::from_millis(1)).await });
                }
                Err(e) if e.kind() == RequestErrorKind::TimedOut => bail!("{subject}: no reply within {limit:?}"),
                Err(e) => bail!("{subject}: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_start_reply() {
        let text = br#"{"workloadStatus":{"workloadId":"w1","workloadState":"WORKLOAD_STATE_ERROR","message":"failed to pull"}}"#;
        let reply: Reply = serde_json::from_slice(text).unwrap();
        assert!(reply.workload_status.is("ERROR"));
        assert_eq!(reply.workload_status.message, "failed to pull");
    }

    #[test]
    fn parses_a_heartbeat() {
        let text = br#"{"id":"01a2","hostname":"vm","labels":{"hostgroup":"edgebench-1"},"httpPort":18080}"#;
        let beat: Heartbeat = serde_json::from_slice(text).unwrap();
        assert_eq!((beat.id.as_str(), beat.labels["hostgroup"].as_str()), ("01a2", "edgebench-1"));
    }
}
