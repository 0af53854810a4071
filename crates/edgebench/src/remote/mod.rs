//! A remote target: the runtimes on another host, the client here.
//!
//! `edgebench run --target ssh://user@host` starts `ssh host edgebench
//! agent` and speaks a line-delimited JSON protocol (protocol.rs) with it:
//! the agent prepares, launches and stops instances and reads their memory
//! and CPU on the target; the probe, the latency client and the load
//! generator run here and reach the instance at the target's address.
//!
//! Clock domains: every interval is timed on one host, never by subtracting
//! timestamps of two. On the client: cold start (t0 before the launch
//! request is written, so the request's way over SSH is in it), latency and
//! throughput. On the target: memory, CPU, the agent's share of the cold
//! start (`cold_start_agent_dispatch`, `cold_start_agent_launch_call`), the
//! runtime's own launch phases, warm starts, settling. The link's
//! round trip, measured before the campaign, is stored with the environment.

pub mod agent;
mod firewall;
mod link;
pub mod protocol;
mod runtime;

use anyhow::{bail, Context as _, Result};
use link::Link;
use protocol::{Request, Welcome, PROTOCOL};
use serde_json::{json, Value};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Round trips measured of the link, each kind.
const RTT_PROBES: usize = 20;

/// `ssh://[user@]host[:port]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub url: String,
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target> {
        let bad = |why: &str| anyhow::anyhow!("--target {url:?}: {why}: write ssh://[user@]host[:port]");
        let rest = url.strip_prefix("ssh://").ok_or_else(|| bad("only ssh:// targets are supported"))?;
        let (user, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) if !u.is_empty() => (Some(u.to_string()), h),
            Some(_) => return Err(bad("the user before @ is empty")),
            None => (None, rest),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("an IPv6 address needs its closing ]"))?;
            (h.to_string(), after.strip_prefix(':'))
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hostport.to_string(), None),
            }
        };
        if host.is_empty() || host.contains('/') {
            return Err(bad("no host"));
        }
        let port = match port {
            Some(p) => Some(p.parse::<u16>().map_err(|_| bad("the port is not a number from 1 to 65535"))?),
            None => None,
        };
        Ok(Target { url: url.to_string(), user, host, port })
    }

    /// What `ssh` is given: `[user@]host`.
    fn destination(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}", self.host),
            None => self.host.clone(),
        }
    }
}

/// A connected target: its runtimes, its environment and the link's figures.
pub struct Remote {
    link: Arc<Link>,
    welcome: Welcome,
    link_figures: Value,
}

/// How to reach a target.
pub struct Connection<'a> {
    pub target: &'a Target,
    pub ssh_config: Option<&'a Path>,
    pub agent_command: &'a str,
}

/// The campaign's settings the agent needs.
pub struct Settings<'a> {
    pub campaign_id: &'a str,
    pub concurrency: usize,
    pub ready_timeout_ms: Option<u64>,
    pub cpus: &'a str,
}

impl Remote {
    /// Connects, says hello, and measures the link. `lost` is set if the
    /// session ends before the campaign does.
    pub fn connect(c: &Connection<'_>, settings: &Settings<'_>, lost: Arc<AtomicBool>) -> Result<Remote> {
        let link = Arc::new(Link::connect(c.target, c.ssh_config, c.agent_command, lost)?);
        let welcome: Welcome = link
            .call(Request::Hello {
                protocol: PROTOCOL,
                campaign_id: settings.campaign_id.into(),
                concurrency: settings.concurrency,
                ready_timeout_ms: settings.ready_timeout_ms,
                cpus: settings.cpus.into(),
            })
            .with_context(|| {
                format!("starting `{}` on {} over SSH (is edgebench installed there?)", c.agent_command, c.target.url)
            })?;
        link.established();
        if let Some((what, path)) = welcome.missing_artifacts.first() {
            bail!("on {}: {what} is missing ({path}): run `edgebench build` there", c.target.host);
        }
        let link_figures = measure_link(&link, c.target)?;
        Ok(Remote { link, welcome, link_figures })
    }

    /// One backend per runtime this edgebench knows, each driven on the target.
    pub fn backends(&self) -> Vec<Box<dyn crate::runtime::Runtime>> {
        crate::runtime::all()
            .into_iter()
            .map(|local| {
                let described = self.welcome.runtimes.iter().find(|d| d.name == local.name()).cloned();
                Box::new(runtime::RemoteRuntime::new(local, described, self.link.clone()))
                    as Box<dyn crate::runtime::Runtime>
            })
            .collect()
    }

    /// Stored with the campaign's environment: the target host's own
    /// environment, and the link (the target, its round trips, the clocks).
    /// The target's firewall, for campaigns with firewall profiles.
    pub fn firewall(&self) -> Box<dyn crate::campaign::TargetFirewall> {
        Box::new(firewall::RemoteFirewall { link: self.link.clone() })
    }

    pub fn environment(&self) -> (Value, Value) {
        (self.welcome.environment.clone(), self.link_figures.clone())
    }

    /// The link in one line, for the user.
    pub fn describe_link(&self) -> String {
        let median = |k: &str| self.link_figures[k]["median"].as_f64().map_or("n/a".into(), |v| format!("{v:.3} ms"));
        format!(
            "round trip {} (TCP connect), {} (agent request over SSH), median of {RTT_PROBES}",
            median("tcp_connect_rtt_ms"),
            median("control_rtt_ms")
        )
    }

    /// Ends the session; the agent cleans up on the target.
    pub fn close(&self) {
        self.link.close();
    }
}

/// The link's round trip, two ways, each [`RTT_PROBES`] times, on this
/// host's clock: a TCP connect to the target's SSH port (one SYN → SYN-ACK:
/// the network's round trip) and a request → reply of the agent protocol
/// (what every control message costs: SSH's encryption and both processes).
fn measure_link(link: &Link, target: &Target) -> Result<Value> {
    let port = target.port.unwrap_or(22);
    let addr: SocketAddr = (target.host.as_str(), port)
        .to_socket_addrs()
        .with_context(|| format!("resolving {}", target.host))?
        .next()
        .with_context(|| format!("{} resolves to no address", target.host))?;
    let mut tcp = Vec::new();
    for _ in 0..RTT_PROBES {
        let start = Instant::now();
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(_) => tcp.push(start.elapsed()),
            Err(e) => {
                eprintln!("edgebench: link round trip: connecting to {addr}: {e} (not stored)");
                break;
            }
        }
    }
    let mut control = Vec::new();
    for _ in 0..RTT_PROBES {
        let start = Instant::now();
        link.call::<()>(Request::Ping)?;
        control.push(start.elapsed());
    }
    Ok(json!({
        "target": target.url,
        "address": addr.to_string(),
        "tcp_connect_rtt_ms": figures(&tcp),
        "control_rtt_ms": figures(&control),
        "clocks": "client: cold_start (t0 before the launch request is written over SSH), latency, throughput; \
                   target: memory, cpu, warm_start, settle, cold_start_agent_dispatch, cold_start_agent_launch_call and the runtime's own launch phases",
    }))
}

fn figures(durations: &[Duration]) -> Value {
    if durations.is_empty() {
        return Value::Null;
    }
    let mut ms: Vec<f64> = durations.iter().map(|d| d.as_nanos() as f64 / 1e6).collect();
    ms.sort_by(f64::total_cmp);
    json!({ "n": ms.len(), "min": ms[0], "median": ms[ms.len() / 2], "max": ms[ms.len() - 1] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_with_user_port_and_ipv6() {
        let t = Target::parse("ssh://root@10.0.0.2:2222").unwrap();
        assert_eq!((t.user.as_deref(), t.host.as_str(), t.port), (Some("root"), "10.0.0.2", Some(2222)));
        let t = Target::parse("ssh://[::1]:22").unwrap();
        assert_eq!((t.user, t.host.as_str(), t.port), (None, "::1", Some(22)));
        assert_eq!(Target::parse("ssh://edge-1").unwrap().destination(), "edge-1");
        for bad in ["http://x", "ssh://", "ssh://@h", "ssh://h:99999", "ssh://[::1"] {
            let e = Target::parse(bad).unwrap_err().to_string();
            assert!(e.contains("ssh://[user@]host[:port]"), "{bad}: {e}");
        }
    }
}
