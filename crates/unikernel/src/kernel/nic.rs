//! The virtio-net device over virtio-mmio (virtio-drivers), as a smoltcp
//! device. Memory is identity-mapped, so a buffer's address is its
//! physical address; DMA pages come from the heap.

use alloc::rc::Rc;
use alloc::string::String;
use core::cell::RefCell;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use virtio_drivers::device::net::{RxBuffer, VirtIONet};
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

type Net = VirtIONet<IdentityHal, Stepwise, QUEUE_SIZE>;

#[derive(Clone)]
pub struct Nic(Rc<RefCell<Net>>);

impl Nic {
    /// The first virtio-mmio window that holds a network device.
    pub fn probe(windows: &[(usize, usize)]) -> Result<Nic, String> {
        for &(base, _size) in windows {
            let Some(header) = NonNull::new(base as *mut VirtIOHeader) else { continue };
            // SAFETY: the VMM named this window on the command line; it is identity-mapped.
            let Ok(transport) = (unsafe { MmioTransport::new(header) }) else { continue };
            if transport.device_type() != DeviceType::Network {
                continue;
            }
            let net = Net::new(Stepwise(transport), BUFFER_LEN)
                .map_err(|e| alloc::format!("virtio-net at {base:#x}: {e:?}"))?;
            return Ok(Nic(Rc::new(RefCell::new(net))));
        }
        Err(alloc::format!("no virtio-net device in the {} virtio_mmio.device windows", windows.len()))
    }

    pub fn mac(&self) -> [u8; 6] {
        self.0.borrow().mac_address()
    }
}

pub struct Rx(Option<RxBuffer>, Nic);
pub struct Tx(Nic);

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(mut self, f: F) -> R {
        let buffer = self.0.take().expect("a token is consumed once");
        let extra = HEADER_EXTRA.load(Ordering::Relaxed).min(buffer.packet_len());
        let result = f(&buffer.packet()[extra..]);
        let _ = self.1 .0.borrow_mut().recycle_rx_buffer(buffer);
        result
    }
}

impl phy::TxToken for Tx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut net = self.0 .0.borrow_mut();
        let extra = HEADER_EXTRA.load(Ordering::Relaxed);
        // The header's tail (num_buffers) stays 0, as the spec asks of a driver.
        let mut buffer = net.new_tx_buffer(len + extra);
        let result = f(&mut buffer.packet_mut()[extra..]);
        let sent = net.send(buffer);
        if super::DEBUG.load(core::sync::atomic::Ordering::Relaxed) {
            println!("tx {len} bytes: {sent:?}");
        }
        result
    }
}

impl phy::Device for Nic {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx;

    fn receive(&mut self, _now: Instant) -> Option<(Rx, Tx)> {
        let buffer = self.0.borrow_mut().receive().ok()?;
        if super::DEBUG.load(core::sync::atomic::Ordering::Relaxed) {
            println!("rx {} bytes", buffer.packet_len());
        }
        Some((Rx(Some(buffer), self.clone()), Tx(self.clone())))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Tx> {
        Some(Tx(self.clone()))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps
    }
}
