//! Interface configuration with the classic ioctls (no netlink needed for one
//! address on one interface).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

struct Socket(libc::c_int);

impl Socket {
    fn new() -> Result<Socket, String> {
        // SAFETY: plain syscall; the descriptor is owned by the returned value.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(format!("socket: {}", std::io::Error::last_os_error()));
        }
        Ok(Socket(fd))
    }

    fn ioctl(&self, request: libc::Ioctl, req: &mut libc::ifreq, what: &str) -> Result<(), String> {
        // SAFETY: `req` is a valid ifreq for these SIOC* requests.
        if unsafe { libc::ioctl(self.0, request, req as *mut libc::ifreq) } < 0 {
            return Err(format!("{what}: {}", std::io::Error::last_os_error()));
        }
        Ok(())
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.0) };
    }
}

fn ifreq(name: &str) -> libc::ifreq {
    // SAFETY: ifreq is plain old data; all zero is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes().take(libc::IFNAMSIZ - 1)) {
        *dst = src as libc::c_char;
    }
    req
}

fn sockaddr(addr: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr { s_addr: u32::from(addr).to_be() },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr have the same size.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

/// Waits until the kernel has created interface `name`.
pub fn wait_for(name: &str, timeout: Duration) -> Result<(), String> {
    let socket = Socket::new()?;
    let deadline = Instant::now() + timeout;
    loop {
        let mut req = ifreq(name);
        if socket.ioctl(libc::SIOCGIFINDEX as _, &mut req, name).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no {name} after {timeout:?}: is the virtio-net device attached and virtio_net loaded?"
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Sets the address (if any) of `name` and brings it up.
pub fn bring_up(name: &str, address: Option<(Ipv4Addr, u8)>) -> Result<(), String> {
    let socket = Socket::new()?;
    if let Some((addr, prefix)) = address {
        let mut req = ifreq(name);
        req.ifr_ifru.ifru_addr = sockaddr(addr);
        socket.ioctl(libc::SIOCSIFADDR as _, &mut req, &format!("setting {name}'s address"))?;
        let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
        let mut req = ifreq(name);
        req.ifr_ifru.ifru_netmask = sockaddr(Ipv4Addr::from(mask));
        socket.ioctl(libc::SIOCSIFNETMASK as _, &mut req, &format!("setting {name}'s netmask"))?;
    }
    let mut req = ifreq(name);
    socket.ioctl(libc::SIOCGIFFLAGS as _, &mut req, &format!("reading {name}'s flags"))?;
    // SAFETY: SIOCGIFFLAGS filled the flags member.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    socket.ioctl(libc::SIOCSIFFLAGS as _, &mut req, &format!("bringing {name} up"))
}

/// Adds the default route via `gateway` (SIOCADDRT).
pub fn default_route(gateway: Ipv4Addr) -> Result<(), String> {
    let socket = Socket::new()?;
    // SAFETY: rtentry is plain old data; all zero is valid (destination and
    // mask 0.0.0.0: the default route).
    let mut route: libc::rtentry = unsafe { std::mem::zeroed() };
    route.rt_dst = sockaddr(Ipv4Addr::UNSPECIFIED);
    route.rt_genmask = sockaddr(Ipv4Addr::UNSPECIFIED);
    route.rt_gateway = sockaddr(gateway);
    route.rt_flags = libc::RTF_UP | libc::RTF_GATEWAY;
    // SAFETY: `route` is a valid rtentry for SIOCADDRT.
    if unsafe { libc::ioctl(socket.0, libc::SIOCADDRT as _, &mut route as *mut libc::rtentry) } < 0 {
        return Err(format!("default route via {gateway}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}
