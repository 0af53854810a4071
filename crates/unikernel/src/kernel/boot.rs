//! PVH entry: the VMM starts us in 32-bit protected mode with paging off
//! and the start info's address in %ebx. We identity-map the first 4 GiB
//! with 2 MiB pages (RAM, the virtio-mmio windows, Firecracker's boot
//! timer), enter long mode, and call `kernel_main(start_info)`. Nothing here
//! uses SSE or XSAVE (the target is soft-float), which KVM-PVM's emulator
//! stumbles on in early code.

core::arch::global_asm!(
    r#"
    .section .note.pvh, "a"
    .p2align 2
    .long 4
    .long 4
    .long 18            /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .long pvh_start

    .section .text.boot, "ax"
    .code32
    .global pvh_start
pvh_start:
    cli
    movl %ebx, %esi
    /* 2048 page-directory entries of 2 MiB: 0 .. 4 GiB */
    movl $boot_pd, %edi
    movl $0x83, %eax
    xorl %edx, %edx
    movl $2048, %ecx
1:
    movl %eax, (%edi)
    movl %edx, 4(%edi)
    addl $0x200000, %eax
    adcl $0, %edx
    addl $8, %edi
    decl %ecx
    jnz 1b
    /* four page-directory-pointer entries, one per directory */
    movl $boot_pdpt, %edi
    movl $boot_pd, %eax
    orl $3, %eax
    movl $4, %ecx
2:
    movl %eax, (%edi)
    movl $0, 4(%edi)
    addl $4096, %eax
    addl $8, %edi
    decl %ecx
    jnz 2b
    movl $boot_pdpt, %eax
    orl $3, %eax
    movl %eax, boot_pml4
    movl $0, boot_pml4+4
    movl $boot_pml4, %eax
    movl %eax, %cr3
    movl %cr4, %eax
    orl $0x20, %eax             /* PAE */
    movl %eax, %cr4
    movl $0xC0000080, %ecx      /* EFER */
    rdmsr
    orl $0x100, %eax            /* LME */
    wrmsr
    movl %cr0, %eax
    orl $0x80000001, %eax       /* PG | PE */
    movl %eax, %cr0
    lgdt boot_gdt_ptr
    ljmp $0x08, $pvh_long

    .code64
pvh_long:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    movabsq $boot_stack_top, %rsp
    movl %esi, %edi
    call kernel_main
3:
    hlt
    jmp 3b

    .section .data.boot, "aw"
    .p2align 3
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff    /* 64-bit code */
    .quad 0x00cf92000000ffff    /* data */
boot_gdt_ptr:
    .word 23
    .long boot_gdt
    .long 0

    .section .bss.boot, "aw", @nobits
    .p2align 12
boot_pml4:
    .skip 4096
boot_pdpt:
    .skip 4096
boot_pd:
    .skip 4 * 4096
boot_stack:
    .skip 256 * 1024
boot_stack_top:
"#,
    options(att_syntax)
);
