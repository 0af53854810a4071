//! The virtio-net device over virtio-mmio (virtio-drivers), as a smoltcp
//! device. Memory is identity-mapped, so a buffer's address is its
//! physical address; DMA pages come from the heap.
//!
//! Ethernet is handled here, not by smoltcp (which sees an IP device): the
//! guest's only peer is the host's end of the tap, so its MAC is learnt from
//! the first IPv4 frame received and every frame is sent to it, and ARP
//! requests for the guest's address are answered here. smoltcp would instead
//! resolve the peer by ARP first and drop every packet until the reply came:
//! SYNs queued in the tap before the guest was up were then dropped, and
//! each left a listening socket waiting to retransmit its SYN-ACK.

use super::config::MmioWindow;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use virtio_drivers::device::net::VirtIONetRaw;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::{DeviceStatus, DeviceType, Transport};
use virtio_drivers::{BufferDirection, Hal, PhysAddr, PAGE_SIZE};

const QUEUE_SIZE: usize = 64;
const BUFFER_LEN: usize = 2048;

pub struct IdentityHal;

// SAFETY: every address is identity-mapped; DMA pages are page-aligned heap
// allocations that stay allocated until dma_dealloc.
unsafe impl Hal for IdentityHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let layout = core::alloc::Layout::from_size_align(pages * PAGE_SIZE, PAGE_SIZE).unwrap();
        // SAFETY: a non-zero size layout.
        let ptr = unsafe { alloc::alloc::alloc_zeroed(layout) };
        match NonNull::new(ptr) {
            Some(p) => (ptr as usize, p),
            None => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
        let layout = core::alloc::Layout::from_size_align(pages * PAGE_SIZE, PAGE_SIZE).unwrap();
        alloc::alloc::dealloc(vaddr.as_ptr(), layout);
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        NonNull::new(paddr as *mut u8).unwrap()
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        buffer.as_ptr() as *mut u8 as usize
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}

/// Bytes between virtio-drivers' 10-byte net header and the frame: 2 (the
/// `num_buffers` field) once VIRTIO_F_VERSION_1 is negotiated, as the virtio
/// 1.0 header is 12 bytes; 0 on a legacy device (QEMU's default virtio-mmio).
static HEADER_EXTRA: AtomicUsize = AtomicUsize::new(0);
const VERSION_1: u64 = 1 << 32;

/// virtio-mmio as the virtio 1.0 spec and Firecracker want it, around
/// virtio-drivers 0.7: the device status set one bit at a time
/// (ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK; virtio-drivers sets the
/// first two in one write, which Firecracker rejects as an invalid
/// transition), and VIRTIO_F_VERSION_1 accepted when the device offers it
/// (Firecracker's only mode), with its 12-byte net header.
pub struct Stepwise(MmioTransport);

impl Transport for Stepwise {
    fn device_type(&self) -> DeviceType {
        self.0.device_type()
    }
    fn read_device_features(&mut self) -> u64 {
        self.0.read_device_features()
    }
    fn write_driver_features(&mut self, driver_features: u64) {
        let mut features = driver_features;
        if self.0.read_device_features() & VERSION_1 != 0 {
            features |= VERSION_1;
            HEADER_EXTRA.store(2, Ordering::Relaxed);
        }
        self.0.write_driver_features(features)
    }
    fn max_queue_size(&mut self, queue: u16) -> u32 {
        self.0.max_queue_size(queue)
    }
    fn notify(&mut self, queue: u16) {
        self.0.notify(queue)
    }
    fn get_status(&self) -> DeviceStatus {
        self.0.get_status()
    }
    fn set_status(&mut self, status: DeviceStatus) {
        let mut now = if status.is_empty() { DeviceStatus::empty() } else { self.0.get_status() };
        for step in
            [DeviceStatus::ACKNOWLEDGE, DeviceStatus::DRIVER, DeviceStatus::FEATURES_OK, DeviceStatus::DRIVER_OK]
        {
            if status.contains(step) && !now.contains(step) {
                now |= step;
                self.0.set_status(now);
            }
        }
        if now != status || status.is_empty() {
            self.0.set_status(status);
        }
    }
    fn set_guest_page_size(&mut self, guest_page_size: u32) {
        self.0.set_guest_page_size(guest_page_size)
    }
    fn requires_legacy_layout(&self) -> bool {
        self.0.requires_legacy_layout()
    }
    fn queue_set(
        &mut self,
        queue: u16,
        size: u32,
        descriptors: PhysAddr,
        driver_area: PhysAddr,
        device_area: PhysAddr,
    ) {
        self.0.queue_set(queue, size, descriptors, driver_area, device_area)
    }
    fn queue_unset(&mut self, queue: u16) {
        self.0.queue_unset(queue)
    }
    fn queue_used(&mut self, queue: u16) -> bool {
        self.0.queue_used(queue)
    }
    fn ack_interrupt(&mut self) -> bool {
        self.0.ack_interrupt()
    }
    fn config_space<T: 'static>(&self) -> virtio_drivers::Result<NonNull<T>> {
        self.0.config_space()
    }
}

type Raw = VirtIONetRaw<IdentityHal, Stepwise, QUEUE_SIZE>;

/// virtio-drivers' header size (the legacy 10 bytes; see HEADER_EXTRA).
const NET_HEADER: usize = 10;
const ETHERNET_HEADER: usize = 14;
const IPV4: [u8; 2] = [0x08, 0x00];
const ARP: [u8; 2] = [0x08, 0x06];

/// The device and its buffers, each found by the token (head descriptor)
/// the queue gave it. Frames are sent without waiting for the device: a
/// driver that spins until the VMM has taken each frame (virtio-drivers'
/// `send`) holds the vCPU while the VMM's thread, on the same host CPU,
/// waits for it to yield: each frame could then wait for the host to
/// preempt the vCPU (reasoned, not measured: under KVM-PVM the instruction
/// emulator's cost hid any difference).
struct Device {
    raw: Raw,
    rx: [Option<Vec<u8>>; QUEUE_SIZE],
    /// Frames the device has not taken yet, and their lengths.
    tx: [Option<(Vec<u8>, usize)>; QUEUE_SIZE],
    tx_free: Vec<Vec<u8>>,
}

impl Device {
    fn new(transport: Stepwise) -> virtio_drivers::Result<Device> {
        let mut device = Device {
            raw: Raw::new(transport)?,
            rx: [const { None }; QUEUE_SIZE],
            tx: [const { None }; QUEUE_SIZE],
            tx_free: Vec::new(),
        };
        for _ in 0..QUEUE_SIZE {
            device.post_rx(alloc::vec![0; BUFFER_LEN])?;
        }
        Ok(device)
    }

    /// Gives `buffer` to the device for a frame to come.
    fn post_rx(&mut self, mut buffer: Vec<u8>) -> virtio_drivers::Result<()> {
        // SAFETY: the buffer is kept in `rx` under its token, untouched, until
        // the device returns it.
        let token = unsafe { self.raw.receive_begin(&mut buffer) }?;
        self.rx[token as usize] = Some(buffer);
        Ok(())
    }

    /// The next received frame's buffer and the frame's place in it.
    fn take_rx(&mut self) -> Option<(Vec<u8>, core::ops::Range<usize>)> {
        let token = self.raw.poll_receive()?;
        let mut buffer = self.rx[token as usize].take()?;
        // SAFETY: the buffer posted under this token.
        let (header, len) = unsafe { self.raw.receive_complete(token, &mut buffer) }.ok()?;
        let extra = HEADER_EXTRA.load(Ordering::Relaxed).min(len);
        Some((buffer, header + extra..header + len))
    }

    /// Takes back the buffers of frames the device has sent.
    fn reclaim_tx(&mut self) {
        while let Some(token) = self.raw.poll_transmit() {
            let Some((buffer, len)) = self.tx[token as usize].take() else { break };
            // SAFETY: the same buffer and length as given to transmit_begin.
            let _ = unsafe { self.raw.transmit_complete(token, &buffer[..len]) };
            self.tx_free.push(buffer);
        }
    }

    /// Queues one frame of `len` bytes that `fill` writes, and notifies the device.
    fn send<R>(&mut self, len: usize, fill: impl FnOnce(&mut [u8]) -> R) -> R {
        self.reclaim_tx();
        let mut buffer = self.tx_free.pop().unwrap_or_else(|| alloc::vec![0; BUFFER_LEN]);
        // The header (no offloads) and, on a virtio 1.0 device, num_buffers = 0.
        let start = NET_HEADER + HEADER_EXTRA.load(Ordering::Relaxed);
        buffer[..start].fill(0);
        let result = fill(&mut buffer[start..start + len]);
        let total = start + len;
        loop {
            // SAFETY: the buffer is kept in `tx` under its token until reclaimed.
            match unsafe { self.raw.transmit_begin(&buffer[..total]) } {
                Ok(token) => {
                    self.tx[token as usize] = Some((buffer, total));
                    break;
                }
                // Every descriptor in flight: wait for the device to take some.
                Err(virtio_drivers::Error::QueueFull) => {
                    core::hint::spin_loop();
                    self.reclaim_tx();
                }
                Err(e) => {
                    if super::DEBUG.load(Ordering::Relaxed) {
                        println!("tx {len} bytes: {e:?}");
                    }
                    self.tx_free.push(buffer);
                    break;
                }
            }
        }
        result
    }
}

#[derive(Clone)]
pub struct Nic(Rc<RefCell<Device>>, Rc<Link>);

/// This end's addresses and the peer's MAC once known.
struct Link {
    mac: [u8; 6],
    ip: Cell<[u8; 4]>,
    peer: Cell<Option<[u8; 6]>>,
}

impl Nic {
    /// The first virtio-mmio window that holds a network device, and its IOAPIC pin.
    pub fn probe(windows: &[MmioWindow]) -> Result<(Nic, Option<u8>), String> {
        for &MmioWindow { base, irq, .. } in windows {
            let Some(header) = NonNull::new(base as *mut VirtIOHeader) else { continue };
            // SAFETY: the VMM named this window on the command line; it is identity-mapped.
            let Ok(transport) = (unsafe { MmioTransport::new(header) }) else { continue };
            if transport.device_type() != DeviceType::Network {
                continue;
            }
            let device =
                Device::new(Stepwise(transport)).map_err(|e| alloc::format!("virtio-net at {base:#x}: {e:?}"))?;
            let link = Link { mac: device.raw.mac_address(), ip: Cell::new([0; 4]), peer: Cell::new(None) };
            return Ok((Nic(Rc::new(RefCell::new(device)), Rc::new(link)), irq));
        }
        Err(alloc::format!("no virtio-net device in the {} virtio_mmio.device windows", windows.len()))
    }

    /// Acknowledges the device's interrupt, which lowers a level-triggered line.
    pub fn ack_interrupt(&self) {
        self.0.borrow_mut().raw.ack_interrupt();
    }

    /// The address ARP requests are answered for.
    pub fn set_ip(&self, ip: [u8; 4]) {
        self.1.ip.set(ip);
    }

    /// Answers an ARP request for our address (`frame` from its Ethernet header on).
    fn answer_arp(&self, frame: &[u8]) {
        let arp = &frame[ETHERNET_HEADER..];
        if arp.len() < 28 || arp[6..8] != [0, 1] || arp[24..28] != self.1.ip.get() {
            return;
        }
        let mut reply = [0u8; 42];
        reply[0..6].copy_from_slice(&arp[8..14]);
        reply[6..12].copy_from_slice(&self.1.mac);
        reply[12..14].copy_from_slice(&ARP);
        reply[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]); // Ethernet, IPv4, reply
        reply[22..28].copy_from_slice(&self.1.mac);
        reply[28..32].copy_from_slice(&self.1.ip.get());
        reply[32..42].copy_from_slice(&arp[8..18]); // the asker's MAC and address
        self.send_frame(reply.len(), |frame| frame.copy_from_slice(&reply));
    }

    /// Sends one Ethernet frame of `len` bytes that `fill` writes.
    fn send_frame<R>(&self, len: usize, fill: impl FnOnce(&mut [u8]) -> R) -> R {
        if super::DEBUG.load(Ordering::Relaxed) {
            println!("tx {len} bytes");
        }
        self.0.borrow_mut().send(len, fill)
    }
}

/// A received IPv4 frame: its buffer and where the IP packet is in it.
pub struct Rx(Option<Vec<u8>>, Nic, core::ops::Range<usize>);
pub struct Tx(Nic);

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(mut self, f: F) -> R {
        let buffer = self.0.take().expect("a token is consumed once");
        let result = f(&buffer[self.2.clone()]);
        let _ = self.1 .0.borrow_mut().post_rx(buffer);
        result
    }
}

impl phy::TxToken for Tx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let link = &self.0 .1;
        // Before any frame came in, the peer is unknown: broadcast (the host's end takes it).
        let peer = link.peer.get().unwrap_or([0xff; 6]);
        self.0.send_frame(ETHERNET_HEADER + len, |frame| {
            frame[0..6].copy_from_slice(&peer);
            frame[6..12].copy_from_slice(&link.mac);
            frame[12..14].copy_from_slice(&IPV4);
            f(&mut frame[ETHERNET_HEADER..])
        })
    }
}

impl phy::Device for Nic {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx;

    fn receive(&mut self, _now: Instant) -> Option<(Rx, Tx)> {
        loop {
            let (buffer, frame) = self.0.borrow_mut().take_rx()?;
            if super::DEBUG.load(Ordering::Relaxed) {
                println!("rx {} bytes", frame.len());
            }
            let bytes = &buffer[frame.clone()];
            if bytes.len() > ETHERNET_HEADER && bytes[12..14] == IPV4 {
                let mut peer = [0u8; 6];
                peer.copy_from_slice(&bytes[6..12]);
                self.1.peer.set(Some(peer));
                let packet = frame.start + ETHERNET_HEADER..frame.end;
                return Some((Rx(Some(buffer), self.clone(), packet), Tx(self.clone())));
            }
            if bytes.len() > ETHERNET_HEADER && bytes[12..14] == ARP {
                self.answer_arp(bytes);
            }
            let _ = self.0.borrow_mut().post_rx(buffer);
        }
    }

    fn transmit(&mut self, _now: Instant) -> Option<Tx> {
        Some(Tx(self.clone()))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = 1500;
        caps
    }
}
