//! The guest's configuration, from the kernel command line the VMM passes
//! in the PVH start info: the same `eb.ip=A/P eb.gw=G eb.workload=W` as the
//! Linux guest's init reads, `eb.port` (default 8080), `eb.tsc_khz`,
//! `eb.boot_timer` (Firecracker's), `eb.idle=halt|poll` (default halt), and the VMM's own
//! `virtio_mmio.device=SIZE@BASE:IRQ` entries (Firecracker passes them;
//! without any, QEMU microvm's fixed windows are probed).

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use edgebench_workload_core::Workload;
use smoltcp::wire::Ipv4Address;

const START_INFO_MAGIC: u32 = 0x336e_c578;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MmioWindow {
    pub base: usize,
    pub size: usize,
    /// `None`: the VMM did not say (the guest then polls).
    pub irq: Option<u8>,
}

pub struct Config {
    pub workload: Workload,
    pub ip: Ipv4Address,
    pub prefix: u8,
    pub gateway: Option<Ipv4Address>,
    pub port: u16,
    pub boot_timer: bool,
    /// Each virtio-mmio window: base, size and IOAPIC pin.
    pub mmio_devices: Vec<MmioWindow>,
    /// `eb.idle=poll`: never halt (the busy-polling guest, for comparison).
    pub halt_when_idle: bool,
    pub tsc_khz: u64,
}

impl Config {
    pub fn from_start_info(start_info: u64) -> Result<Config, String> {
        // SAFETY: the VMM placed the start info at this identity-mapped
        // address; its magic is checked before anything else is read.
        let cmdline = unsafe {
            let base = start_info as *const u8;
            if core::ptr::read_unaligned(base as *const u32) != START_INFO_MAGIC {
                return Err("no PVH start info (wrong magic)".into());
            }
            let at = core::ptr::read_unaligned(base.add(24) as *const u64) as *const u8;
            if at.is_null() {
                return Err("the VMM passed no command line".into());
            }
            let mut len = 0;
            while *at.add(len) != 0 && len < 4096 {
                len += 1;
            }
            core::str::from_utf8(core::slice::from_raw_parts(at, len)).map_err(|_| "not UTF-8".to_string())?
        };
        Config::parse(cmdline)
    }

    pub fn parse(cmdline: &str) -> Result<Config, String> {
        let mut workload = None;
        let mut address = None;
        let mut gateway = None;
        let mut port = 8080;
        let mut tsc_khz = 0;
        let mut boot_timer = false;
        let mut halt_when_idle = true;
        let mut mmio_devices = Vec::new();
        for arg in cmdline.split_ascii_whitespace() {
            let (key, value) = arg.split_once('=').unwrap_or((arg, ""));
            match key {
                "eb.workload" => {
                    workload = Some(Workload::from_name(value).ok_or_else(|| alloc::format!("eb.workload={value}"))?)
                }
                "eb.ip" => address = Some(value),
                "eb.gw" => gateway = Some(ipv4(value)?),
                "eb.port" => port = value.parse().map_err(|_| alloc::format!("eb.port={value}"))?,
                "eb.tsc_khz" => tsc_khz = value.parse().map_err(|_| alloc::format!("eb.tsc_khz={value}"))?,
                "eb.boot_timer" => boot_timer = true,
                "eb.idle" => {
                    halt_when_idle = match value {
                        "halt" => true,
                        "poll" => false,
                        _ => return Err(alloc::format!("eb.idle={value} (halt or poll)")),
                    }
                }
                "eb.debug" => super::DEBUG.store(true, core::sync::atomic::Ordering::Relaxed),
                "virtio_mmio.device" => mmio_devices.push(mmio_device(value)?),
                _ => {}
            }
        }
        if mmio_devices.is_empty() {
            // QEMU's microvm names its virtio-mmio windows only to a Linux
            // boot; they sit at fixed places: 512 bytes each from 0xfeb00000,
            // window i on IOAPIC pin 16 + i (with ACPI on, QEMU's default,
            // and `ioapic2=off`, which the backend passes: 8 windows, all on
            // the first IOAPIC; QEMU's monitor, `info irq`, shows the pin).
            mmio_devices.extend((0..8).map(|i| MmioWindow {
                base: 0xfeb0_0000 + i * 0x200,
                size: 0x200,
                irq: Some(16 + i as u8),
            }));
        }
        let (ip, prefix) = address.ok_or("eb.ip=A.B.C.D/P is missing")?.split_once('/').ok_or("eb.ip needs /P")?;
        let tsc_khz = if tsc_khz > 0 { tsc_khz } else { 1_000_000 };
        super::clock::init(tsc_khz);
        Ok(Config {
            workload: workload.ok_or("eb.workload is missing")?,
            ip: ipv4(ip)?,
            prefix: prefix.parse().map_err(|_| alloc::format!("prefix /{prefix}"))?,
            gateway,
            port,
            boot_timer,
            mmio_devices,
            halt_when_idle,
            tsc_khz,
        })
    }
}

fn ipv4(text: &str) -> Result<Ipv4Address, String> {
    let mut octets = [0u8; 4];
    let mut parts = text.split('.');
    for o in &mut octets {
        *o = parts.next().and_then(|p| p.parse().ok()).ok_or_else(|| alloc::format!("address {text:?}"))?;
    }
    if parts.next().is_some() {
        return Err(alloc::format!("address {text:?}"));
    }
    Ok(Ipv4Address::new(octets[0], octets[1], octets[2], octets[3]))
}

/// `SIZE@BASE[:IRQ[:ID]]`, SIZE with an optional K/M suffix, BASE in hex.
fn mmio_device(value: &str) -> Result<MmioWindow, String> {
    let bad = || alloc::format!("virtio_mmio.device={value}");
    let (size, rest) = value.split_once('@').ok_or_else(bad)?;
    let mut parts = rest.split(':');
    let base = parts.next().ok_or_else(bad)?;
    let irq = match parts.next() {
        None => None,
        Some(irq) => Some(irq.parse::<u8>().ok().filter(|irq| *irq < 24).ok_or_else(bad)?),
    };
    let (digits, unit) = match size.as_bytes().last() {
        Some(b'K' | b'k') => (&size[..size.len() - 1], 1024),
        Some(b'M' | b'm') => (&size[..size.len() - 1], 1024 * 1024),
        _ => (size, 1),
    };
    let size = digits.parse::<usize>().map_err(|_| bad())? * unit;
    let base = usize::from_str_radix(base.trim_start_matches("0x"), 16).map_err(|_| bad())?;
    Ok(MmioWindow { base, size, irq })
}
