//! The agent's protocol: one JSON object per line on the SSH session's
//! stdin (requests) and stdout (replies and events). Nothing else is read:
//! a line that is not a request is answered with an error and ends the session.

use serde::{Deserialize, Serialize};

/// Bumped on any change of the messages below: client and agent must agree.
pub const PROTOCOL: u32 = 2;

#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    pub id: u64,
    #[serde(flatten)]
    pub request: Request,
}

/// What the client asks. Runtimes, variants and workloads go by name: the
/// agent runs only its own backends on its own artifacts.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// First request: the campaign's settings that concern the runtime side.
    Hello {
        protocol: u32,
        campaign_id: String,
        concurrency: usize,
        ready_timeout_ms: Option<u64>,
        cpus: String,
    },
    /// Answered at once (the control channel's round trip).
    Ping,
    Setup {
        runtime: String,
    },
    Teardown {
        runtime: String,
    },
    Prepare {
        config: Config,
    },
    OwnTrial {
        config: Config,
        label: String,
    },
    Launch {
        config: Config,
        label: String,
    },
    Instance {
        instance: u64,
        call: InstanceCall,
    },
    /// Waits until the target's SUT CPUs are quiet (at most `max_ms`).
    Settle {
        max_ms: u64,
    },
    /// Takes the target's ruleset and claims our table's name there
    /// (answer: [`FirewallStarted`]); before the first `Firewall`.
    FirewallStart,
    /// Replaces our table on the target with this profile (answer:
    /// `network::Applied`, timed on the target).
    Firewall {
        profile: String,
    },
    /// Removes our table and compares the target's ruleset with the one taken
    /// at the start (answer: `network::HostCheck`).
    FirewallFinish,
}

/// A runtime × variant × workload, by name.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Config {
    pub runtime: String,
    pub variant: String,
    pub workload: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum InstanceCall {
    Stop,
    LogTail,
    LaunchPhases,
    BootFigures,
    CpuNs,
    Memory,
    ExtraResources,
    WarmStart,
    AddTenant { name: String },
}

/// A reply (`id` of its request) or an event (`event`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Message {
    Reply {
        id: u64,
        #[serde(flatten)]
        outcome: Outcome,
    },
    Event {
        event: Event,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok(serde_json::Value),
    Error(String),
}

/// Sent by the agent when it sees something the client did not ask about.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// An instance died: the client's probe stops waiting for it.
    Exited { instance: u64, how: String },
}

/// The agent's answer to `Hello`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Welcome {
    pub protocol: u32,
    /// The target host's environment (as `environment::capture`), with its CPU plan.
    pub environment: serde_json::Value,
    /// The address instances listen on: the one the client reached SSH at.
    pub listen_ip: std::net::IpAddr,
    pub runtimes: Vec<Described>,
    /// Artifacts missing on the target (what, path).
    pub missing_artifacts: Vec<(String, String)>,
}

/// What the target says of one of its runtimes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Described {
    pub name: String,
    pub detection: crate::runtime::Detection,
    pub variants: Vec<DescribedVariant>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DescribedVariant {
    pub name: String,
    /// `Some(why)` when it serves no workload there.
    pub serves_not: Option<String>,
    pub serving_model: String,
    pub cpu_scope: String,
    pub network_path: String,
    pub deploy_on_running_host: bool,
}

/// The agent's answer to `Launch`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Launched {
    pub instance: u64,
    pub addr: std::net::SocketAddr,
    /// The launch call's duration on the target's clock (not part of any
    /// interval the client times).
    pub launch_call_ns: u64,
    /// The request's line read → the launch call, on the target's clock:
    /// the agent's own share of the cold start the client times.
    pub dispatch_ns: u64,
}

/// The agent's answer to `FirewallStart`.
#[derive(Debug, Serialize, Deserialize)]
pub struct FirewallStarted {
    /// Our table there (`inet TABLE`).
    pub table: String,
    /// The interface holding the listen address.
    pub interface: String,
    pub listen_ip: std::net::IpAddr,
    /// The client's address as the target sees it (`SSH_CONNECTION`), if known.
    pub client_ip: Option<std::net::IpAddr>,
    pub nft_version: String,
    pub before: crate::network::HostSnapshot,
}
