//! The console: COM1 (port 0x3f8), which QEMU's microvm and Firecracker
//! both emulate; the VMM's log holds it.

use core::fmt::{self, Write};

const COM1: u16 = 0x3f8;

pub struct Serial;

fn outb(port: u16, value: u8) {
    // SAFETY: port I/O to the UART has no memory effects.
    unsafe { core::arch::asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack)) };
}

fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: as above.
    unsafe { core::arch::asm!("in al, dx", out("al") value, in("dx") port, options(nomem, nostack)) };
    value
}

impl Write for Serial {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.byte(b'\r');
            }
            self.byte(b);
        }
        Ok(())
    }
}

impl Serial {
    fn byte(&mut self, b: u8) {
        // Wait (boundedly) for the transmit holding register to be empty.
        for _ in 0..100_000 {
            if inb(COM1 + 5) & 0x20 != 0 {
                break;
            }
        }
        outb(COM1, b);
    }
}

pub fn print(args: fmt::Arguments<'_>) {
    let _ = Serial.write_fmt(args);
}

macro_rules! println {
    ($($arg:tt)*) => {
        $crate::kernel::serial::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}
