//! The virtio-net device over virtio-mmio (virtio-drivers), as a smoltcp
//! device. Memory is identity-mapped, so a buffer's address is its
//! physical address; DMA pages come from the heap.

use alloc::rc::Rc;
use alloc::string::String;
use core::cell::RefCell;
use core::ptr::NonNull;
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use virtio_drivers::device::net::{RxBuffer, VirtIONet};
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::{DeviceType, Transport};
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

type Net = VirtIONet<IdentityHal, MmioTransport, QUEUE_SIZE>;

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
            let net = Net::new(transport, BUFFER_LEN).map_err(|e| alloc::format!("virtio-net at {base:#x}: {e:?}"))?;
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
        let result = f(buffer.packet());
        let _ = self.1 .0.borrow_mut().recycle_rx_buffer(buffer);
        result
    }
}

impl phy::TxToken for Tx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut net = self.0 .0.borrow_mut();
        let mut buffer = net.new_tx_buffer(len);
        let result = f(buffer.packet_mut());
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
