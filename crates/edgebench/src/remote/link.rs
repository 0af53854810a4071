//! The client's end of the SSH session to an agent: requests in order, one
//! at a time; replies and events read by a thread of their own.

use super::protocol::{Envelope, Event, Message, Outcome, Request};
use super::Target;
use anyhow::{bail, Context as _, Result};
use serde::de::DeserializeOwned;
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// Lines of the session's stderr kept for error messages.
const STDERR_KEPT: usize = 20;

pub struct Link {
    pub target: Target,
    child: Mutex<Child>,
    /// Held for a whole request → reply exchange.
    channel: Mutex<Channel>,
    exits: Arc<Mutex<HashMap<u64, String>>>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    /// Set until the agent has answered hello, and by `close`: an end of
    /// the session then is not a campaign's lost target.
    closing: Arc<AtomicBool>,
    next_id: AtomicU64,
}

struct Channel {
    stdin: Option<ChildStdin>,
    replies: mpsc::Receiver<(u64, Outcome)>,
}

impl Link {
    /// Starts `ssh … TARGET AGENT_COMMAND`. When the session ends before
    /// `close`, `lost` is set (the campaign then stops as interrupted,
    /// keeping every sample, and can be resumed).
    pub fn connect(
        target: &Target,
        ssh_config: Option<&Path>,
        agent_command: &str,
        lost: Arc<AtomicBool>,
    ) -> Result<Link> {
        let mut ssh = Command::new("ssh");
        if let Some(config) = ssh_config {
            ssh.arg("-F").arg(config);
        }
        if let Some(port) = target.port {
            ssh.args(["-p", &port.to_string()]);
        }
        // No terminal, no password prompt; a dead link is noticed within ~15 s.
        ssh.args(["-T", "-o", "BatchMode=yes", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"]);
        ssh.arg(target.destination()).arg(agent_command);
        ssh.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = ssh.spawn().context("starting ssh (the openssh client): is it installed?")?;
        let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());

        let kept = Arc::new(Mutex::new(VecDeque::new()));
        let k = kept.clone();
        let host = target.host.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr.expect("piped")).lines().map_while(|l| l.ok()) {
                eprintln!("{host}: {line}");
                let mut k = k.lock().unwrap_or_else(|e| e.into_inner());
                if k.len() == STDERR_KEPT {
                    k.pop_front();
                }
                k.push_back(line);
            }
        });

        let (tx, replies) = mpsc::channel();
        let exits = Arc::new(Mutex::new(HashMap::new()));
        let closing = Arc::new(AtomicBool::new(true));
        let (e, c, url) = (exits.clone(), closing.clone(), target.url.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stdout.expect("piped")).lines().map_while(|l| l.ok()) {
                match serde_json::from_str::<Message>(&line) {
                    Ok(Message::Reply { id, outcome }) => {
                        if tx.send((id, outcome)).is_err() {
                            break;
                        }
                    }
                    Ok(Message::Event { event: Event::Exited { instance, how } }) => {
                        e.lock().unwrap_or_else(|e| e.into_inner()).insert(instance, how);
                    }
                    Err(err) => {
                        eprintln!("edgebench: the agent on {url} sent a line that is not the protocol ({err}): {line}");
                        break;
                    }
                }
            }
            if !c.load(Ordering::SeqCst) {
                eprintln!("edgebench: the SSH session to {url} ended: the campaign stops here, every sample is kept");
                lost.store(true, Ordering::SeqCst);
            }
        });
        Ok(Link {
            target: target.clone(),
            child: Mutex::new(child),
            channel: Mutex::new(Channel { stdin, replies }),
            exits,
            stderr: kept,
            closing,
            next_id: AtomicU64::new(1),
        })
    }

    /// One request, its reply decoded as `T`.
    pub fn call<T: DeserializeOwned>(&self, request: Request) -> Result<T> {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let what = format!("{request:?}");
        let mut channel = self.channel.lock().unwrap_or_else(|e| e.into_inner());
        let mut line = serde_json::to_vec(&Envelope { id, request })?;
        line.push(b'\n');
        let written = match channel.stdin.as_mut() {
            Some(stdin) => stdin.write_all(&line).and_then(|()| stdin.flush()),
            None => bail!("the session to {} is closed", self.target.url),
        };
        written.map_err(|e| self.ended(&format!("writing to it failed ({e})")))?;
        loop {
            let (reply_id, outcome) = channel.replies.recv().map_err(|_| self.ended("it ended before answering"))?;
            if reply_id != id && reply_id != 0 {
                continue; // a late reply to a request given up on
            }
            return match outcome {
                Outcome::Ok(value) => serde_json::from_value(value)
                    .with_context(|| format!("the agent's answer to {what} is not what this edgebench expects")),
                Outcome::Error(e) => bail!("on {}: {e}", self.target.host),
            };
        }
    }

    fn ended(&self, how: &str) -> anyhow::Error {
        let tail: Vec<String> = self.stderr.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect();
        anyhow::anyhow!(
            "the SSH session to {} ended: {how}; its last messages: {}",
            self.target.url,
            if tail.is_empty() { "none".to_string() } else { tail.join(" | ") }
        )
    }

    /// The agent has answered hello: from now on, an end of the session
    /// stops the campaign (see `connect`).
    pub fn established(&self) {
        self.closing.store(false, Ordering::SeqCst);
    }

    /// How the instance died, once the agent has said so.
    pub fn exited(&self, instance: u64) -> Option<String> {
        self.exits.lock().unwrap_or_else(|e| e.into_inner()).get(&instance).cloned()
    }

    /// Ends the session: the agent stops whatever is left and exits.
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        drop(self.channel.lock().unwrap_or_else(|e| e.into_inner()).stdin.take());
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..100 {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.close();
    }
}
