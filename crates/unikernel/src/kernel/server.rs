//! The workload over TCP: a pool of sockets listening on the service port
//! (one connection each), every request answered by the shared core's
//! `http1::next`, exactly as the native server frames it.

use super::clock::now;
use super::config::Config;
use super::idle::Idler;
use super::nic::Nic;
use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;
use edgebench_workload_core::http1::{self, Step};
use edgebench_workload_core::{KvStore, StoreError};
use smoltcp::iface::{Config as IfaceConfig, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::wire::{HardwareAddress, IpCidr};

/// Connections at once: the load generator's 16 and the probe's, with room.
const SOCKETS: usize = 32;
const SOCKET_BUFFER: usize = 16 * 1024;

/// `kv`'s state in the guest's memory, like the native server's.
#[derive(Default)]
struct GuestStore(RefCell<BTreeMap<String, String>>);

impl KvStore for GuestStore {
    fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.0.borrow().get(key).cloned())
    }

    fn put(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.0.borrow_mut().insert(key.to_string(), value.to_string());
        Ok(())
    }
}

struct Connection {
    handle: SocketHandle,
    /// Bytes received and not yet answered.
    input: Vec<u8>,
    /// Response bytes not yet in the socket's send buffer.
    output: Vec<u8>,
    close_after_output: bool,
}

/// Serves forever. With an idler, the vCPU halts whenever a pass over the
/// stack and the sockets did nothing, until the NIC or smoltcp's next timer
/// wakes it; without one it polls.
pub fn serve(mut nic: Nic, mut idler: Option<Idler>, config: &Config) -> ! {
    nic.set_ip(config.ip.octets());
    let mut iface = Interface::new(IfaceConfig::new(HardwareAddress::Ip), &mut nic, now());
    iface.update_ip_addrs(|addrs| {
        let _ = addrs.push(IpCidr::new(config.ip.into(), config.prefix));
    });
    if let Some(gw) = config.gateway {
        let _ = iface.routes_mut().add_default_ipv4_route(gw);
    }
    let mut sockets = SocketSet::new(Vec::new());
    let mut connections: Vec<Connection> = (0..SOCKETS)
        .map(|_| {
            let socket = tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; SOCKET_BUFFER]),
                tcp::SocketBuffer::new(vec![0; SOCKET_BUFFER]),
            );
            Connection { handle: sockets.add(socket), input: Vec::new(), output: Vec::new(), close_after_output: false }
        })
        .collect();
    let store = GuestStore::default();
    println!("edgebench-unikernel: serving {} on port {}", config.workload, config.port);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let mut worked = iface.poll(now(), &mut nic, &mut sockets) == PollResult::SocketStateChanged;
        for c in &mut connections {
            let socket = sockets.get_mut::<tcp::Socket>(c.handle);
            if !socket.is_open() {
                worked = true;
                c.input.clear();
                c.output.clear();
                c.close_after_output = false;
                let _ = socket.listen(config.port);
                socket.set_nagle_enabled(false);
                socket.set_ack_delay(None);
                continue;
            }
            while socket.can_recv() {
                if super::DEBUG.load(core::sync::atomic::Ordering::Relaxed) {
                    println!("can_recv on {:?} in {}", c.handle, socket.state());
                }
                match socket.recv_slice(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        worked = true;
                        c.input.extend_from_slice(&chunk[..n]);
                    }
                }
            }
            while c.output.is_empty() && !c.close_after_output {
                match http1::next(&c.input, config.workload, &store) {
                    Step::Incomplete => break,
                    Step::Respond { bytes, consumed, close } => {
                        if super::DEBUG.load(core::sync::atomic::Ordering::Relaxed) {
                            println!("request of {consumed} bytes: {} bytes to send", bytes.len());
                        }
                        c.input.drain(..consumed);
                        c.output = bytes;
                        c.close_after_output = close;
                    }
                }
            }
            if !c.output.is_empty() && socket.can_send() {
                let sent = socket.send_slice(&c.output);
                if super::DEBUG.load(core::sync::atomic::Ordering::Relaxed) {
                    println!("send_slice: {sent:?}");
                }
                if let Ok(n) = sent {
                    worked |= n > 0;
                    c.output.drain(..n);
                }
            }
            if !socket.is_active() {
                continue; // listening
            }
            // The peer closed its half and everything it sent is answered.
            let peer_done = socket.state() == tcp::State::CloseWait && c.input.is_empty();
            if c.output.is_empty() && (c.close_after_output || peer_done) && socket.send_queue() == 0 {
                worked = true;
                socket.close();
            }
        }
        if let (false, Some(idler)) = (worked, idler.as_mut()) {
            let wake_after_us = iface.poll_delay(now(), &sockets).map(|d| d.total_micros());
            idler.idle(wake_after_us);
            nic.ack_interrupt();
        }
    }
}
