//! Forwards TCP from a loopback port of the root namespace to the guest in
//! its namespace, so that the trial's client (probe, latency, load) reaches
//! the VM at `LaunchSpec.addr` and sends nothing anywhere else.
//!
//! The loopback port is bound only once the guest accepts a TCP connection:
//! until then the client's connects are refused, as they would be by a server
//! that is not up yet, so `cold_start_accept` keeps its meaning.

use super::netns::Netns;
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long one connection attempt to a guest that is not up may take: a SYN
/// sent before the guest's network is up is lost, so this bounds how late the
/// guest's first accept can be noticed (and must exceed a slow guest's SYN-ACK).
const GUEST_CONNECT_TIMEOUT: Duration = Duration::from_millis(50);
const GUEST_POLL_PAUSE: Duration = Duration::from_millis(2);

pub struct Relay {
    listen: SocketAddr,
    stop: Arc<AtomicBool>,
    streams: Arc<Streams>,
    error: Arc<Mutex<Option<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    pub fn start(listen: SocketAddr, guest: SocketAddr, ns: &Netns) -> std::io::Result<Relay> {
        let root = File::open("/proc/thread-self/ns/net")?;
        let inside = ns.handle().try_clone()?;
        let stop = Arc::new(AtomicBool::new(false));
        let streams = Arc::new(Streams::default());
        let error = Arc::new(Mutex::new(None));
        let (s, st, e) = (stop.clone(), streams.clone(), error.clone());
        let thread = std::thread::Builder::new().name("vm-relay".into()).spawn(move || {
            if let Err(why) = serve(listen, guest, &root, &inside, &s, &st) {
                *e.lock().unwrap() = Some(why);
            }
        })?;
        Ok(Relay { listen, stop, streams, error, thread: Some(thread) })
    }

    /// Why the relay stopped on its own, if it did.
    pub fn error(&self) -> Option<String> {
        self.error.lock().unwrap().clone()
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes a blocking accept (refused if the port was never bound).
        let _ = TcpStream::connect_timeout(&self.listen, Duration::from_millis(100));
        for (_, ends) in self.streams.open.lock().unwrap().drain() {
            for s in ends {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
    }
}

fn setns(ns: &File) -> Result<(), String> {
    nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns: {e}"))
}

fn serve(
    listen: SocketAddr,
    guest: SocketAddr,
    root: &File,
    inside: &File,
    stop: &AtomicBool,
    streams: &Arc<Streams>,
) -> Result<(), String> {
    setns(inside)?;
    // Bounded by `stop`, which the instance sets when the probe gives up.
    while !stop.load(Ordering::SeqCst) {
        if TcpStream::connect_timeout(&guest, GUEST_CONNECT_TIMEOUT).is_ok() {
            break;
        }
        std::thread::sleep(GUEST_POLL_PAUSE);
    }
    if stop.load(Ordering::SeqCst) {
        return Ok(());
    }
    setns(root)?;
    let listener = TcpListener::bind(listen).map_err(|e| format!("relay cannot listen on {listen}: {e}"))?;
    setns(inside)?;
    for (id, client) in listener.incoming().enumerate() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(client) = client else { continue };
        // Connected from this thread, hence inside the VM's namespace.
        let Ok(upstream) = TcpStream::connect(guest) else { continue };
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        let (Ok(c2), Ok(u2), Ok(c3), Ok(u3)) =
            (client.try_clone(), upstream.try_clone(), client.try_clone(), upstream.try_clone())
        else {
            continue;
        };
        streams.open.lock().unwrap().insert(id, [c3, u3]);
        let remaining = Arc::new(AtomicU8::new(2));
        for (from, to) in [(client, upstream), (u2, c2)] {
            let (streams, remaining) = (streams.clone(), remaining.clone());
            std::thread::spawn(move || {
                pipe(from, to);
                if remaining.fetch_sub(1, Ordering::SeqCst) == 1 {
                    streams.open.lock().unwrap().remove(&id);
                }
            });
        }
    }
    Ok(())
}

/// Both ends of every open forwarded connection, shut down on stop.
#[derive(Default)]
struct Streams {
    open: Mutex<HashMap<usize, [TcpStream; 2]>>,
}

/// Copies until EOF or error, then passes the EOF on.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
