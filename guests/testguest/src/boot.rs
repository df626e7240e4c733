//! Entry points: the arm64 Image header, the primary and secondary vCPU entries, the drop from
//! EL2 to EL1 (bare QEMU with virtualization=on) and the identity MMU.
//!
//! Everything here runs before Rust may: the MMU is off (all accesses are Device memory), the
//! Image is not relocated yet and there is no stack.

use core::arch::global_asm;

global_asm!(
    r#"
    .section .text.head, "ax"
    .global _head
_head:
    b       primary_entry
    .long   0
    .quad   0                       // text_offset
    .quad   __image_size            // image size, bss included
    .quad   0xa                     // little endian, 4 KiB pages, anywhere in RAM
    .quad   0, 0, 0
    .ascii  "ARM\x64"
    .long   0

    .section .text.boot, "ax"
primary_entry:
    mov     x19, x0                 // DTB
    mrs     x20, CurrentEL
    lsr     x20, x20, #2            // the EL we were entered at, reported later
    cmp     x20, #2
    b.ne    1f
    bl      el2_to_el1
1:  msr     daifset, #0xf
    adrp    x21, _head              // load address: the relocations are against link address 0

    adrp    x1, __rela_start
    add     x1, x1, :lo12:__rela_start
    adrp    x2, __rela_end
    add     x2, x2, :lo12:__rela_end
2:  cmp     x1, x2
    b.hs    3f
    ldp     x3, x4, [x1], #16       // r_offset, r_info
    ldr     x5, [x1], #8            // r_addend
    cmp     x4, #1027               // R_AARCH64_RELATIVE, the only kind a static PIE has
    b.ne    2b
    add     x5, x5, x21
    str     x5, [x21, x3]
    b       2b

3:  adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
4:  cmp     x1, x2
    b.hs    5f
    stp     xzr, xzr, [x1], #16
    b       4b

    // Identity map of the first 512 GiB in 1 GiB blocks: Device everywhere except the blocks
    // holding this Image and the DTB, which are Normal write-back memory.
5:  adrp    x0, boot_l1
    add     x0, x0, :lo12:boot_l1
    ldr     x3, ={device}
    mov     x1, #0
6:  lsl     x2, x1, #30
    orr     x2, x2, x3
    str     x2, [x0, x1, lsl #3]
    add     x1, x1, #1
    cmp     x1, #512
    b.lo    6b
    ldr     x3, ={normal}
    lsr     x1, x21, #30
    lsl     x2, x1, #30
    orr     x2, x2, x3
    str     x2, [x0, x1, lsl #3]
    lsr     x1, x19, #30
    cmp     x1, #512
    b.hs    7f
    lsl     x2, x1, #30
    orr     x2, x2, x3
    str     x2, [x0, x1, lsl #3]
7:  bl      el1_setup
    adrp    x1, boot_stack_top
    add     x1, x1, :lo12:boot_stack_top
    mov     sp, x1
    mov     x0, x19
    mov     x1, x20
    bl      rust_main
8:  wfe
    b       8b

    // PSCI CPU_ON target: x0 = context id.
    .global secondary_entry
secondary_entry:
    mov     x19, x0
    mrs     x20, CurrentEL
    lsr     x20, x20, #2
    cmp     x20, #2
    b.ne    1f
    bl      el2_to_el1
1:  msr     daifset, #0xf
    adrp    x0, boot_l1
    add     x0, x0, :lo12:boot_l1
    bl      el1_setup
    adrp    x1, secondary_stack_top
    add     x1, x1, :lo12:secondary_stack_top
    mov     sp, x1
    mov     x0, x19
    mov     x1, x20
    bl      rust_secondary
2:  wfe
    b       2b

    // x0 = L1 table. FP/SIMD on (Rust uses it), vectors installed, MMU and caches on.
el1_setup:
    mov     x1, #(3 << 20)
    msr     cpacr_el1, x1
    adrp    x1, el1_vectors
    add     x1, x1, :lo12:el1_vectors
    msr     vbar_el1, x1
    ldr     x1, ={mair}
    msr     mair_el1, x1
    ldr     x1, ={tcr}
    msr     tcr_el1, x1
    msr     ttbr0_el1, x0
    dsb     ish
    isb
    tlbi    vmalle1
    dsb     ish
    isb
    ldr     x1, ={sctlr}
    msr     sctlr_el1, x1
    isb
    ret

    // Entered at EL2 (bare QEMU, virtualization=on): become an EL1 guest of a null hypervisor
    // whose only job is to answer HVC with NOT_SUPPORTED. Returns at EL1 to x30.
el2_to_el1:
    adrp    x1, el2_vectors
    add     x1, x1, :lo12:el2_vectors
    msr     vbar_el2, x1
    mov     x1, #(1 << 31)          // HCR_EL2.RW: EL1 is AArch64; nothing else trapped
    msr     hcr_el2, x1
    mov     x1, #3                  // EL1 may use the physical counter and timer
    msr     cnthctl_el2, x1
    msr     cntvoff_el2, xzr
    mov     x1, #0x33ff             // no FP/SIMD trap
    msr     cptr_el2, x1
    msr     hstr_el2, xzr
    mrs     x1, id_aa64pfr0_el1
    ubfx    x1, x1, #24, #4         // GIC system registers implemented?
    cbz     x1, 1f
    mrs     x1, icc_sre_el2
    orr     x1, x1, #0x1            // SRE
    orr     x1, x1, #0x8            // Enable: EL1 may set its own SRE
    msr     icc_sre_el2, x1
    isb
1:  mrs     x1, midr_el1
    msr     vpidr_el2, x1
    mrs     x1, mpidr_el1
    msr     vmpidr_el2, x1
    ldr     x1, ={sctlr_off}
    msr     sctlr_el1, x1
    mov     x1, #0x3c5              // EL1h, DAIF masked
    msr     spsr_el2, x1
    msr     elr_el2, x30
    isb
    eret

    .balign 2048
el2_vectors:
    .rept 8
    b       .
    .balign 0x80
    .endr
    b       el2_lower_sync          // lower EL, AArch64, synchronous
    .balign 0x80
    .rept 7
    b       .
    .balign 0x80
    .endr
el2_lower_sync:
    msr     tpidr_el2, x1
    mrs     x1, esr_el2
    lsr     x1, x1, #26
    cmp     x1, #0x16               // HVC64
    b.ne    .
    mrs     x1, tpidr_el2
    mov     x0, #-1                 // SMCCC NOT_SUPPORTED
    eret

    .ltorg

    .section .bss.boot, "aw", %nobits
    .balign 4096
boot_l1:
    .space  4096
    .balign 16
    .space  0x10000
boot_stack_top:
    .space  0x8000
secondary_stack_top:
"#,
    device = const DEVICE_BLOCK,
    normal = const NORMAL_BLOCK,
    mair = const MAIR,
    tcr = const TCR,
    sctlr = const SCTLR_ON,
    sctlr_off = const SCTLR_OFF,
);

/// MAIR attribute 0: Device-nGnRnE; attribute 1: Normal, inner/outer write-back.
const MAIR: u64 = 0xff << 8;
/// Level 1 block: valid, AF; device blocks never executable.
const DEVICE_BLOCK: u64 = 0b01 | (1 << 10) | (1 << 53) | (1 << 54);
/// Level 1 block: valid, AF, inner shareable, attribute 1.
const NORMAL_BLOCK: u64 = 0b01 | (1 << 2) | (3 << 8) | (1 << 10);
/// T0SZ=25 (39-bit VA, walks start at level 1), write-back walks, inner shareable, 4 KiB granule,
/// no TTBR1 walks, 40-bit IPA.
const TCR: u64 = 25 | (1 << 8) | (1 << 10) | (3 << 12) | (1 << 23) | (2 << 32);
/// SCTLR_EL1 RES1 bits only (MMU and caches off).
const SCTLR_OFF: u64 = 0x30d0_0800;
/// MMU, data cache and instruction cache on.
const SCTLR_ON: u64 = SCTLR_OFF | 1 | (1 << 2) | (1 << 12);
