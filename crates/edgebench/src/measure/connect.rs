//! Connecting to an instance that may not be up yet, without learning of it late.
//!
//! A SYN sent before a VM's network device or a container's port is up is
//! lost, and the kernel resends it only after a second: a blocking connect
//! with a timeout T learns of readiness up to T late (with 200 ms, micro-VM
//! cold starts read ~100 ms long on average). Instead, while connects are
//! unanswered, a new non-blocking one is started every stagger (at most
//! [`MAX_PENDING`] in flight, the oldest dropped), and the first to complete
//! wins. A refused connect (RST: the address is up, nothing listens yet) is
//! reported at once, and the caller retries on its own interval.
//!
//! The stagger is [`STAGGER`], or half the time since the connector was made
//! if longer (so ~1.5× apart: a handful of SYNs per cold start). SYNs are lost
//! only until the VMM has attached its tap, early in its start; after that
//! they queue until the guest reads them, and the oldest one still in flight
//! is answered the moment the guest listens. Every further SYN is work the
//! guest must do while it boots: under KVM-PVM a packet costs a guest ~10 ms,
//! and a SYN every millisecond made a unikernel's cold start twice as long.
//! Refused connects (the usual case: loopback, containers, a Linux guest
//! before its server listens) are retried by the caller at its own interval.

use nix::poll::{ppoll, PollFd, PollFlags};
use nix::sys::time::TimeSpec;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// Shortest time between two connects while earlier ones are unanswered.
pub const STAGGER: Duration = Duration::from_millis(1);
/// Unanswered connects kept in flight (a window of MAX_PENDING × STAGGER).
pub const MAX_PENDING: usize = 64;

pub enum Step {
    Connected(TcpStream),
    /// Every connect in flight failed; the last error.
    Refused(io::Error),
    /// Connects are in flight, none answered yet.
    Pending,
}

pub struct Connector {
    addr: SocketAddr,
    pending: VecDeque<Socket>,
    created: Instant,
    last_start: Option<Instant>,
    /// Connects started so far.
    pub started: u32,
}

impl Connector {
    pub fn new(addr: SocketAddr) -> Connector {
        Connector { addr, pending: VecDeque::new(), created: Instant::now(), last_start: None, started: 0 }
    }

    /// Starts a connect when none is in flight or the last one began a
    /// stagger ago, then waits at most `max_wait` (and at most until the
    /// next stagger) for one to finish.
    pub fn step(&mut self, max_wait: Duration) -> Step {
        let stagger = STAGGER.max(self.created.elapsed() / 2);
        let due = self.last_start.is_none_or(|t| t.elapsed() >= stagger);
        if self.pending.is_empty() || due {
            match self.start() {
                Ok(Some(stream)) => return Step::Connected(stream),
                Ok(None) => {}
                Err(e) if self.pending.is_empty() => return Step::Refused(e),
                Err(_) => {}
            }
        }
        let until_next = stagger.saturating_sub(self.last_start.map_or(Duration::ZERO, |t| t.elapsed()));
        let wait = max_wait.min(until_next);
        let ready: Vec<bool> = {
            let mut fds: Vec<PollFd> =
                self.pending.iter().map(|s| PollFd::new(s.as_fd(), PollFlags::POLLOUT)).collect();
            match ppoll(&mut fds, Some(TimeSpec::from(wait)), None) {
                Ok(0) | Err(_) => return Step::Pending,
                Ok(_) => fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect(),
            }
        };
        let mut last_error = None;
        let mut kept = VecDeque::with_capacity(self.pending.len());
        for (socket, done) in std::mem::take(&mut self.pending).into_iter().zip(ready) {
            if !done {
                kept.push_back(socket);
                continue;
            }
            match socket.take_error() {
                Ok(None) => match into_stream(socket) {
                    Ok(stream) => return Step::Connected(stream), // the rest are closed with `kept`
                    Err(e) => last_error = Some(e),
                },
                Ok(Some(e)) | Err(e) => last_error = Some(e),
            }
        }
        self.pending = kept;
        match last_error {
            Some(e) if self.pending.is_empty() => Step::Refused(e),
            _ => Step::Pending,
        }
    }

    /// Closes every connect in flight (after a connection that answered wrongly).
    pub fn reset(&mut self) {
        self.pending.clear();
        self.last_start = None;
    }

    /// `Ok(Some)`: connected at once; `Ok(None)`: in flight.
    fn start(&mut self) -> io::Result<Option<TcpStream>> {
        self.started += 1;
        self.last_start = Some(Instant::now());
        let socket = Socket::new(Domain::for_address(self.addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_nonblocking(true)?;
        match socket.connect(&SockAddr::from(self.addr)) {
            Ok(()) => into_stream(socket).map(Some),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
                self.pending.push_back(socket);
                if self.pending.len() > MAX_PENDING {
                    self.pending.pop_front();
                }
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

fn into_stream(socket: Socket) -> io::Result<TcpStream> {
    socket.set_nonblocking(false)?;
    socket.set_tcp_nodelay(true)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn a_listening_port_connects_and_a_closed_one_is_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut open = Connector::new(listener.local_addr().unwrap());
        let connected = (0..1000).find_map(|_| match open.step(Duration::from_millis(10)) {
            Step::Connected(s) => Some(s),
            _ => None,
        });
        assert!(connected.is_some());
        let closed = listener.local_addr().unwrap();
        drop(listener);
        let mut refused = Connector::new(closed);
        let outcome = (0..1000).find_map(|_| match refused.step(Duration::from_millis(10)) {
            Step::Refused(e) => Some(e),
            _ => None,
        });
        assert_eq!(outcome.unwrap().kind(), io::ErrorKind::ConnectionRefused);
    }

    /// A listener whose accept queue is full drops SYNs, as a VM whose
    /// network is not up does: connects stay in flight and new ones are staggered.
    #[test]
    fn unanswered_connects_are_staggered() {
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        listener.bind(&SockAddr::from("127.0.0.1:0".parse::<SocketAddr>().unwrap())).unwrap();
        listener.listen(0).unwrap();
        let addr = listener.local_addr().unwrap().as_socket().unwrap();
        let mut queued = Vec::new();
        let mut connector = Connector::new(addr);
        for _ in 0..200 {
            match connector.step(STAGGER) {
                Step::Connected(s) => queued.push(s), // fills the accept queue
                Step::Refused(e) => panic!("{e}"),
                Step::Pending => {}
            }
        }
        assert!(!connector.pending.is_empty() && connector.pending.len() <= MAX_PENDING);
        assert!(connector.started as usize > queued.len() + 1, "{} started", connector.started);
    }
}
