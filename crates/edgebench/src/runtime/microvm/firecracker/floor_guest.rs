//! The `vmm-floor` guest: a 64-bit ELF with a PVH entry note whose code (run
//! in 32-bit protected mode, paging off) writes 123 to Firecracker's boot
//! timer at MMIO 0xc0000000 and halts. Written byte by byte here: it measures
//! the VMM itself, with no guest kernel in the way.

/// Where the code is loaded and entered (Firecracker loads kernels at ≥ 1 MiB).
const LOAD_ADDR: u64 = 0x10_0000;
const CODE_OFFSET: u64 = 0x100;

/// mov al, 123; mov [0xc0000000], al; cli; 1: hlt; jmp 1b
const CODE: [u8; 11] = [0xB0, 0x7B, 0xA2, 0x00, 0x00, 0x00, 0xC0, 0xFA, 0xF4, 0xEB, 0xFD];

const EHDR_SIZE: u16 = 64;
const PHDR_SIZE: u16 = 56;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
/// XEN_ELFNOTE_PHYS32_ENTRY: the PVH entry point.
const NOTE_PVH_ENTRY: u32 = 18;

pub fn elf() -> Vec<u8> {
    let note_offset = (EHDR_SIZE + 2 * PHDR_SIZE) as u64;
    let mut note = Vec::new();
    for v in [4u32, 4, NOTE_PVH_ENTRY] {
        note.extend_from_slice(&v.to_le_bytes());
    }
    note.extend_from_slice(b"Xen\0");
    note.extend_from_slice(&(LOAD_ADDR as u32).to_le_bytes());

    let mut out = Vec::new();
    // ELF header: 64-bit, little endian, executable, x86-64.
    out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&2u16.to_le_bytes()); // e_type: EXEC
    out.extend_from_slice(&62u16.to_le_bytes()); // e_machine: x86-64
    out.extend_from_slice(&1u32.to_le_bytes()); // e_version
    out.extend_from_slice(&LOAD_ADDR.to_le_bytes()); // e_entry
    out.extend_from_slice(&(EHDR_SIZE as u64).to_le_bytes()); // e_phoff
    out.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    for v in [EHDR_SIZE, PHDR_SIZE, 2, 64, 0, 0] {
        out.extend_from_slice(&v.to_le_bytes()); // ehsize, phentsize, phnum, shentsize, shnum, shstrndx
    }
    phdr(&mut out, PT_LOAD, 5, CODE_OFFSET, LOAD_ADDR, CODE.len() as u64);
    phdr(&mut out, PT_NOTE, 4, note_offset, 0, note.len() as u64);
    out.extend_from_slice(&note);
    out.resize(CODE_OFFSET as usize, 0);
    out.extend_from_slice(&CODE);
    out
}

fn phdr(out: &mut Vec<u8>, kind: u32, flags: u32, offset: u64, addr: u64, size: u64) {
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    for v in [offset, addr, addr, size, size, 4] {
        out.extend_from_slice(&v.to_le_bytes()); // offset, vaddr, paddr, filesz, memsz, align
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_has_headers_note_and_code_where_they_say() {
        let e = elf();
        assert_eq!(&e[..4], b"\x7fELF");
        assert_eq!(u16::from_le_bytes([e[54], e[55]]), PHDR_SIZE);
        assert_eq!(&e[CODE_OFFSET as usize..], &CODE);
        let note = (EHDR_SIZE + 2 * PHDR_SIZE) as usize;
        assert_eq!(&e[note + 12..note + 16], b"Xen\0");
        assert_eq!(u32::from_le_bytes(e[note + 16..note + 20].try_into().unwrap()), LOAD_ADDR as u32);
    }
}
