//! Halting when there is nothing to do, as every real kernel does: the
//! vCPU stops (`hlt`) until the NIC's interrupt or a timer wakes it. A
//! guest that spins on its NIC instead holds a host CPU for as long as it
//! lives, so a host could run only as many VMs as it has CPUs.
//!
//! The interrupt path is the plain x86 one, the same under KVM, KVM-PVM
//! and TCG: an IDT, the local APIC software-enabled, the NIC's IOAPIC pin
//! routed to one vector, the 8259 PICs masked, and the local APIC's timer
//! in TSC-deadline mode for smoltcp's own timers. Handlers only
//! acknowledge: the main loop polls the NIC after every wake-up, and
//! interrupts are enabled nowhere but in the halt itself.

use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicU64, Ordering};

const NIC_VECTOR: u8 = 0x30;
const TIMER_VECTOR: u8 = 0x31;
const SPURIOUS_VECTOR: u8 = 0xff;
const CODE_SELECTOR: u16 = 0x08; // boot.rs's GDT

const MSR_APIC_BASE: u32 = 0x1b;
const MSR_TSC_DEADLINE: u32 = 0x6e0;
const X2APIC_MSR_BASE: u32 = 0x800;
const APIC_ID: u32 = 0x20;
const APIC_TPR: u32 = 0x80;
const APIC_EOI: u32 = 0xb0;
const APIC_SVR: u32 = 0xf0;
const APIC_LVT_TIMER: u32 = 0x320;
const LVT_MASKED: u32 = 1 << 16;
const LVT_TSC_DEADLINE: u32 = 0b10 << 17;
const IOAPIC_BASE: usize = 0xfec0_0000;

/// The EOI register's address for the handler, or 0 in x2APIC mode (an MSR).
#[no_mangle]
static EB_APIC_EOI: AtomicU64 = AtomicU64::new(0);

// The NIC/timer handler: EOI, and if the interrupt came in between `sti`
// and `hlt` (a hypervisor that does not honour the STI shadow), step over
// the `hlt` so that the main loop polls instead of sleeping on it.
// Exceptions: a stub per vector (16 bytes apart) that reports and stops.
global_asm!(
    r#"
    .section .text
    .global eb_irq_entry
eb_irq_entry:
    push rax
    mov rax, [rip + EB_APIC_EOI]
    test rax, rax
    jz 2f
    mov dword ptr [rax], 0
    jmp 3f
2:
    push rcx
    push rdx
    mov ecx, 0x80b
    xor eax, eax
    xor edx, edx
    wrmsr
    pop rdx
    pop rcx
3:
    lea rax, [rip + eb_hlt_at]
    cmp [rsp + 8], rax
    jne 4f
    add qword ptr [rsp + 8], 1
4:
    pop rax
    iretq

    .global eb_spurious_entry
eb_spurious_entry:
    iretq

    .global eb_idle_halt
eb_idle_halt:
    sti
    .global eb_hlt_at
eb_hlt_at:
    hlt
    cli
    ret

    .balign 16
    .global eb_exception_stubs
eb_exception_stubs:
    .irp vector, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .balign 16
    mov edi, \vector
    jmp eb_exception_common
    .endr
eb_exception_common:
    mov rsi, [rsp]
    and rsp, -16
    call eb_exception
"#
);

extern "C" {
    fn eb_irq_entry();
    fn eb_spurious_entry();
    fn eb_idle_halt();
    static eb_exception_stubs: u8;
}

/// An unexpected CPU exception: say which, and stop.
#[no_mangle]
extern "C" fn eb_exception(vector: u64, top_of_stack: u64) -> ! {
    super::halt(format_args!("edgebench-unikernel: CPU exception {vector} (error code or rip {top_of_stack:#x})"))
}

#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    attributes: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

impl Gate {
    const ABSENT: Gate =
        Gate { offset_low: 0, selector: 0, ist: 0, attributes: 0, offset_mid: 0, offset_high: 0, reserved: 0 };

    fn interrupt(handler: u64) -> Gate {
        Gate {
            offset_low: handler as u16,
            selector: CODE_SELECTOR,
            ist: 0,
            attributes: 0x8e, // present, DPL 0, 64-bit interrupt gate
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

#[repr(C, align(16))]
struct Idt([Gate; 256]);
static mut IDT: Idt = Idt([Gate::ABSENT; 256]);

#[repr(C, packed)]
struct IdtPointer {
    limit: u16,
    base: u64,
}

/// Halts the vCPU until an interrupt, with smoltcp's next timer armed.
pub struct Idler {
    x2apic: bool,
    /// 0 without TSC-deadline support: then a pending timer is waited out by polling.
    tsc_per_us: u64,
    armed: bool,
}

impl Idler {
    /// Routes the NIC's IOAPIC pin `nic_irq` to the vCPU; interrupts stay off
    /// (they are enabled only inside [`Idler::idle`]).
    pub fn new(nic_irq: u8, tsc_khz: u64) -> Idler {
        // SAFETY: one vCPU, interrupts off; the IDT is written once, here,
        // before `lidt`, and only the CPU reads it afterwards.
        unsafe {
            let idt = &mut *core::ptr::addr_of_mut!(IDT);
            let stubs = core::ptr::addr_of!(eb_exception_stubs) as u64;
            for (vector, gate) in idt.0.iter_mut().enumerate().take(32) {
                *gate = Gate::interrupt(stubs + 16 * vector as u64);
            }
            idt.0[NIC_VECTOR as usize] = Gate::interrupt(eb_irq_entry as *const () as u64);
            idt.0[TIMER_VECTOR as usize] = Gate::interrupt(eb_irq_entry as *const () as u64);
            idt.0[SPURIOUS_VECTOR as usize] = Gate::interrupt(eb_spurious_entry as *const () as u64);
            let pointer =
                IdtPointer { limit: (core::mem::size_of::<Idt>() - 1) as u16, base: idt as *const Idt as u64 };
            asm!("lidt [{}]", in(reg) &pointer, options(readonly, nostack));
        }
        // The legacy PICs would deliver the same lines again through LINT0.
        outb(0x21, 0xff);
        outb(0xa1, 0xff);

        let apic_base = rdmsr(MSR_APIC_BASE);
        let x2apic = apic_base & (1 << 10) != 0;
        if !x2apic {
            EB_APIC_EOI.store((apic_base & 0xffff_f000) + APIC_EOI as u64, Ordering::Relaxed);
        }
        let tsc_deadline = cpuid_ecx(1) & (1 << 24) != 0;
        let idler = Idler { x2apic, tsc_per_us: if tsc_deadline { (tsc_khz / 1000).max(1) } else { 0 }, armed: false };
        idler.apic_write(APIC_TPR, 0);
        idler.apic_write(APIC_SVR, 0x100 | SPURIOUS_VECTOR as u32);
        idler
            .apic_write(APIC_LVT_TIMER, if tsc_deadline { LVT_TSC_DEADLINE | TIMER_VECTOR as u32 } else { LVT_MASKED });
        let apic_id = if x2apic { idler.apic_read(APIC_ID) } else { idler.apic_read(APIC_ID) >> 24 };
        // Edge-triggered, active high, fixed delivery to this vCPU. A
        // level-triggered device line (QEMU's) is lowered by the main loop's
        // acknowledgement after every wake-up, so each new event is an edge.
        ioapic_write(0x10 + 2 * nic_irq as u32, NIC_VECTOR as u32);
        ioapic_write(0x11 + 2 * nic_irq as u32, apic_id << 24);
        println!(
            "edgebench-unikernel: halts when idle (NIC on IOAPIC pin {nic_irq}, {}APIC {apic_id}, {})",
            if x2apic { "x2" } else { "x" },
            if tsc_deadline { "TSC-deadline timer" } else { "no TSC-deadline timer: polls while a TCP timer is due" }
        );
        idler
    }

    /// Sleeps until an interrupt, or `wake_after_us` at the latest (smoltcp's
    /// next timer). Returns at once without a timer when one is due and the
    /// TSC-deadline timer is missing: the caller then polls.
    pub fn idle(&mut self, wake_after_us: Option<u64>) {
        if let Some(us) = wake_after_us {
            if self.tsc_per_us == 0 || us == 0 {
                return;
            }
            wrmsr(MSR_TSC_DEADLINE, rdtsc() + us * self.tsc_per_us);
            self.armed = true;
        } else if self.armed {
            wrmsr(MSR_TSC_DEADLINE, 0);
            self.armed = false;
        }
        // SAFETY: `sti; hlt; cli`: the handlers save what they touch.
        unsafe { eb_idle_halt() };
    }

    fn apic_write(&self, register: u32, value: u32) {
        if self.x2apic {
            wrmsr(X2APIC_MSR_BASE + (register >> 4), value as u64);
        } else {
            let base = rdmsr(MSR_APIC_BASE) & 0xffff_f000;
            // SAFETY: the local APIC's page is identity-mapped (boot.rs maps 4 GiB).
            unsafe { core::ptr::write_volatile((base + register as u64) as *mut u32, value) };
        }
    }

    fn apic_read(&self, register: u32) -> u32 {
        if self.x2apic {
            rdmsr(X2APIC_MSR_BASE + (register >> 4)) as u32
        } else {
            let base = rdmsr(MSR_APIC_BASE) & 0xffff_f000;
            // SAFETY: as in apic_write.
            unsafe { core::ptr::read_volatile((base + register as u64) as *const u32) }
        }
    }
}

fn ioapic_write(register: u32, value: u32) {
    // SAFETY: the IOAPIC's window (select at +0, data at +0x10) is identity-mapped.
    unsafe {
        core::ptr::write_volatile(IOAPIC_BASE as *mut u32, register);
        core::ptr::write_volatile((IOAPIC_BASE + 0x10) as *mut u32, value);
    }
}

fn rdmsr(msr: u32) -> u64 {
    let (low, high): (u32, u32);
    // SAFETY: reads an architectural MSR.
    unsafe { asm!("rdmsr", in("ecx") msr, out("eax") low, out("edx") high, options(nomem, nostack)) };
    (high as u64) << 32 | low as u64
}

fn wrmsr(msr: u32, value: u64) {
    // SAFETY: writes the APIC's and the timer's MSRs only.
    unsafe { asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32, options(nostack)) };
}

fn rdtsc() -> u64 {
    // SAFETY: reads a counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

fn cpuid_ecx(leaf: u32) -> u32 {
    core::arch::x86_64::__cpuid(leaf).ecx
}

fn outb(port: u16, value: u8) {
    // SAFETY: masks the PICs; no memory effects.
    unsafe { asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack)) };
}
