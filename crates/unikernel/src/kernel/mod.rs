//! The unikernel proper: boot, console, configuration, NIC and server.

#[macro_use]
mod serial;
mod boot;
mod clock;
mod config;
mod idle;
mod nic;
mod server;

use linked_list_allocator::LockedHeap;

/// The heap: socket buffers, DMA buffers of the NIC, the handlers' allocations.
const HEAP_BYTES: usize = 8 * 1024 * 1024;

#[repr(align(4096))]
struct Heap(#[allow(dead_code)] [u8; HEAP_BYTES]);
static mut HEAP: Heap = Heap([0; HEAP_BYTES]);

/// `eb.debug` on the command line: every packet on the console.
pub static DEBUG: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

#[global_allocator]
static ALLOCATOR: LockedHeap = LockedHeap::empty();

/// Called by the boot code in long mode with the PVH start info's address.
#[no_mangle]
extern "C" fn kernel_main(start_info: u64) -> ! {
    // SAFETY: the heap is used only through the allocator, set up once here.
    unsafe { ALLOCATOR.lock().init(core::ptr::addr_of_mut!(HEAP) as *mut u8, HEAP_BYTES) };
    let config = match config::Config::from_start_info(start_info) {
        Ok(c) => c,
        Err(e) => halt(format_args!("edgebench-unikernel: bad command line: {e}")),
    };
    if config.boot_timer {
        // Firecracker's boot timer: guest boot ends when main starts.
        // SAFETY: the device is there when the VMM asked for it on the command line.
        unsafe { core::ptr::write_volatile(0xc000_0000 as *mut u8, 123) };
    }
    println!("edgebench-unikernel: {} on {}/{}", config.workload, config.ip, config.prefix);
    let (nic, nic_irq) = match nic::Nic::probe(&config.mmio_devices) {
        Ok(found) => found,
        Err(e) => halt(format_args!("edgebench-unikernel: no NIC: {e}")),
    };
    let idler = match (config.halt_when_idle, nic_irq) {
        (true, Some(irq)) => Some(idle::Idler::new(irq, config.tsc_khz)),
        (true, None) => {
            println!("edgebench-unikernel: polls its NIC: the VMM named no interrupt line for it");
            None
        }
        (false, _) => None,
    };
    server::serve(nic, idler, &config)
}

fn halt(message: core::fmt::Arguments<'_>) -> ! {
    println!("{message}");
    loop {
        // SAFETY: interrupts are off: the vCPU stops here for good.
        unsafe { core::arch::asm!("cli; hlt") };
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    halt(format_args!("edgebench-unikernel: panic: {info}"))
}
