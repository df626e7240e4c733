// Entry points of minos.bin: the arm64 Image header, self-relocation, the early identity map,
// secondary CPU entry, the EL2 exception vectors and the trap frame save/restore.

.equ STACK_SIZE, 0x10000
.equ MAX_CPUS, 8
.equ FRAME_SIZE, 800
.equ FALLBACK_DTB, 0x40000000
// SCTLR_EL2 RES1 bits with the MMU and caches off.
.equ SCTLR_EL2_OFF, 0x30c50830
// CPTR_EL2: RES1 bits, no FP/SIMD trap.
.equ CPTR_EL2_VAL, 0x33ff
// Early map blocks: Device-nGnRE + AF + XN, and Normal WB inner-shareable + AF.
.equ EARLY_DEVICE, 0x0040000000000401
.equ EARLY_NORMAL, 0x0000000000000705
.equ MAIR_VAL, 0xff04
// TCR_EL2: T0SZ=25 (39-bit VA), WB/WA walks, inner shareable, 4K granule, RES1 bits 31 and 23.
.equ TCR_BASE, 0x80803519
.equ R_AARCH64_RELATIVE, 1027

.macro adr_l reg, sym
    adrp    \reg, \sym
    add     \reg, \reg, :lo12:\sym
.endm

.section .text.head, "ax"
.global _start
_start:
    b       primary_entry           // code0
    .long   0                       // code1
    .quad   0                       // text_offset
    .quad   __image_size            // image_size, including bss
    .quad   0xa                     // flags: little endian, 4K pages, anywhere in RAM
    .quad   0
    .quad   0
    .quad   0
    .ascii  "ARM\x64"
    .long   0

primary_entry:
    mov     x19, x0                 // DTB (0 from TF-A on QEMU)
    adr     x20, _start             // where we were loaded
    msr     daifset, #0xf
    ldr     x0, =SCTLR_EL2_OFF
    msr     sctlr_el2, x0
    ldr     x0, =CPTR_EL2_VAL
    msr     cptr_el2, x0
    isb

    // Apply R_AARCH64_RELATIVE relocations for the load address (the image is linked at 0).
    adr_l   x1, __rela_start
    adr_l   x2, __rela_end
1:  cmp     x1, x2
    b.hs    3f
    ldp     x3, x4, [x1], #16       // r_offset, r_info
    ldr     x5, [x1], #8            // r_addend
    cmp     x4, #R_AARCH64_RELATIVE
    b.ne    2f
    add     x5, x5, x20
    str     x5, [x20, x3]
2:  b       1b
3:
    adr_l   x1, __bss_start
    adr_l   x2, __bss_end
4:  cmp     x1, x2
    b.hs    5f
    stp     xzr, xzr, [x1], #16
    b       4b
5:
    // Nothing we just wrote with the MMU off may be shadowed by stale cache lines.
    mov     x0, x20
    adr_l   x1, __image_end
    bl      dcache_inval_range
    ic      iallu
    dsb     sy
    isb

    // Early map: 1 GiB blocks over 512 GiB, all Device except the gigabytes holding the
    // image and the DTB. Rust replaces it with an exact map once it has read the DTB.
    adr_l   x0, early_l1
    ldr     x2, =EARLY_DEVICE
    mov     x1, #0
6:  orr     x3, x2, x1, lsl #30
    str     x3, [x0, x1, lsl #3]
    add     x1, x1, #1
    cmp     x1, #512
    b.lo    6b
    ldr     x2, =EARLY_NORMAL
    lsr     x1, x20, #30
    orr     x3, x2, x1, lsl #30
    str     x3, [x0, x1, lsl #3]
    mov     x4, x19
    cbnz    x4, 7f
    ldr     x4, =FALLBACK_DTB
7:  lsr     x1, x4, #30
    cmp     x1, #512
    b.hs    8f
    orr     x3, x2, x1, lsl #30
    str     x3, [x0, x1, lsl #3]
8:  dsb     sy
    bl      enable_mmu

    mov     x0, #0
    bl      set_cpu_stack
    adr_l   x0, vectors
    msr     vbar_el2, x0
    msr     tpidr_el2, xzr
    isb
    mov     x0, x19
    mov     x1, x20
    bl      primary_main
    b       park

// x0 = TTBR0_EL2 value. Clobbers x1, x2.
.global enable_mmu
enable_mmu:
    ldr     x1, =MAIR_VAL
    msr     mair_el2, x1
    mrs     x1, id_aa64mmfr0_el1
    and     x1, x1, #7
    cmp     x1, #5
    mov     x2, #5
    csel    x1, x1, x2, ls
    ldr     x2, =TCR_BASE
    orr     x2, x2, x1, lsl #16
    msr     tcr_el2, x2
    msr     ttbr0_el2, x0
    isb
    tlbi    alle2
    dsb     sy
    isb
    mrs     x1, sctlr_el2
    mov     x2, #0x1005             // M, C, I
    orr     x1, x1, x2
    msr     sctlr_el2, x1
    isb
    ret

// x0 = CPU index: sp = top of that CPU's stack. Clobbers x1.
set_cpu_stack:
    adr_l   x1, cpu_stacks
    add     x0, x0, #1
    lsl     x0, x0, #16             // STACK_SIZE
    add     x1, x1, x0
    mov     sp, x1
    ret

// Invalidate data cache lines over [x0, x1). Clobbers x2, x3.
dcache_inval_range:
    mrs     x3, ctr_el0
    ubfx    x3, x3, #16, #4
    mov     x2, #4
    lsl     x2, x2, x3              // line size in bytes
    sub     x3, x2, #1
    bic     x0, x0, x3
1:  dc      ivac, x0
    add     x0, x0, x2
    cmp     x0, x1
    b.lo    1b
    dsb     sy
    ret

// PSCI CPU_ON target; x0 = CPU index (the context id we passed). MMU off.
.global secondary_entry
secondary_entry:
    mov     x19, x0
    msr     daifset, #0xf
    ldr     x0, =SCTLR_EL2_OFF
    msr     sctlr_el2, x0
    ldr     x0, =CPTR_EL2_VAL
    msr     cptr_el2, x0
    isb
    adr_l   x0, SECONDARY_TTBR
    ldr     x0, [x0]
    bl      enable_mmu
    mov     x0, x19
    bl      set_cpu_stack
    adr_l   x0, vectors
    msr     vbar_el2, x0
    msr     tpidr_el2, x19
    isb
    mov     x0, x19
    bl      secondary_main
    b       park

.global park
park:
    wfe
    b       park

// enter_scheduler(stack_top): resets this CPU's stack, builds a frame below its top with
// first_entry(frame) (which waits until a vCPU is runnable) and enters that vCPU.
.global enter_scheduler
enter_scheduler:
    mov     sp, x0
    sub     sp, sp, #FRAME_SIZE
    mov     x0, sp
    bl      first_entry
    b       trap_restore

// Exception vectors. Every entry saves a full frame and calls trap_entry(kind, frame);
// kind = vector index (0-3 EL2 SP0, 4-7 EL2 SPx, 8-11 lower AArch64, 12-15 lower AArch32).
.macro vector kind
    .balign 0x80
    sub     sp, sp, #FRAME_SIZE
    stp     x0, x1, [sp]
    mov     x0, #\kind
    b       trap_common
.endm

.section .text.vectors, "ax"
.balign 2048
.global vectors
vectors:
    vector 0
    vector 1
    vector 2
    vector 3
    vector 4
    vector 5
    vector 6
    vector 7
    vector 8
    vector 9
    vector 10
    vector 11
    vector 12
    vector 13
    vector 14
    vector 15

trap_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x2, elr_el2
    stp     x30, x2, [sp, #240]
    mrs     x3, spsr_el2
    str     x3, [sp, #256]
    add     x2, sp, #272
    stp     q0, q1, [x2, #0]
    stp     q2, q3, [x2, #32]
    stp     q4, q5, [x2, #64]
    stp     q6, q7, [x2, #96]
    stp     q8, q9, [x2, #128]
    stp     q10, q11, [x2, #160]
    stp     q12, q13, [x2, #192]
    stp     q14, q15, [x2, #224]
    stp     q16, q17, [x2, #256]
    stp     q18, q19, [x2, #288]
    stp     q20, q21, [x2, #320]
    stp     q22, q23, [x2, #352]
    stp     q24, q25, [x2, #384]
    stp     q26, q27, [x2, #416]
    stp     q28, q29, [x2, #448]
    stp     q30, q31, [x2, #480]
    mrs     x3, fpsr
    mrs     x4, fpcr
    add     x2, x2, #512
    stp     x3, x4, [x2]
    mov     x1, sp
    bl      trap_entry

// Restores the frame at sp and returns to the guest it describes.
trap_restore:
    add     x2, sp, #272
    ldp     q0, q1, [x2, #0]
    ldp     q2, q3, [x2, #32]
    ldp     q4, q5, [x2, #64]
    ldp     q6, q7, [x2, #96]
    ldp     q8, q9, [x2, #128]
    ldp     q10, q11, [x2, #160]
    ldp     q12, q13, [x2, #192]
    ldp     q14, q15, [x2, #224]
    ldp     q16, q17, [x2, #256]
    ldp     q18, q19, [x2, #288]
    ldp     q20, q21, [x2, #320]
    ldp     q22, q23, [x2, #352]
    ldp     q24, q25, [x2, #384]
    ldp     q26, q27, [x2, #416]
    ldp     q28, q29, [x2, #448]
    ldp     q30, q31, [x2, #480]
    add     x2, x2, #512
    ldp     x3, x4, [x2]
    msr     fpsr, x3
    msr     fpcr, x4
    ldp     x30, x2, [sp, #240]
    msr     elr_el2, x2
    ldr     x3, [sp, #256]
    msr     spsr_el2, x3
    ldp     x0, x1, [sp]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    add     sp, sp, #FRAME_SIZE
    eret

.section .bss.early, "aw", %nobits
.balign 4096
early_l1:
    .space 4096
.balign 16
cpu_stacks:
    .space STACK_SIZE * MAX_CPUS

.section .data.secondary, "aw"
.balign 64
.global SECONDARY_TTBR
SECONDARY_TTBR:
    .quad 0
    .space 56
