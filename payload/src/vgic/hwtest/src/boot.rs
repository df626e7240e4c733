//! EL2 entry, the EL2 vector table, and the EL1 test guest (assembly only, so it touches
//! nothing but x0/x1 and the GIC CPU interface).

core::arch::global_asm!(
    r#"
.section .text.boot, "ax"
.global _start
_start:
    ldr x0, =__el2_stack_top
    mov sp, x0
    ldr x0, =__bss_start
    ldr x1, =__bss_end
1:  cmp x0, x1
    b.hs 2f
    str xzr, [x0], #8
    b 1b
2:  ldr x0, =el2_vectors
    msr vbar_el2, x0
    // No FP/SIMD traps to EL2 (RES1 bits set, TFP clear).
    mov x0, #0x33ff
    msr cptr_el2, x0
    isb
    bl el2_main
3:  wfe
    b 3b

// The second CPU, started by PSCI CPU_ON from el2_main.
.global _start_secondary
_start_secondary:
    ldr x0, =__el2_stack1_top
    mov sp, x0
    ldr x0, =el2_vectors
    msr vbar_el2, x0
    mov x0, #0x33ff
    msr cptr_el2, x0
    isb
    bl el2_secondary_main
7:  wfe
    b 7b

.macro ventry target
    .balign 0x80
    b \target
.endm

.section .text, "ax"
.balign 2048
el2_vectors:
    ventry el2_unexpected   // current EL, SP0
    ventry el2_unexpected
    ventry el2_unexpected
    ventry el2_unexpected
    ventry el2_unexpected   // current EL, SPx
    ventry el2_unexpected
    ventry el2_unexpected
    ventry el2_unexpected
    ventry el2_lower_sync   // lower EL, AArch64
    ventry el2_lower_irq    // IRQ: the maintenance interrupt
    ventry el2_unexpected
    ventry el2_unexpected
    ventry el2_unexpected   // lower EL, AArch32
    ventry el2_unexpected
    ventry el2_unexpected
    ventry el2_unexpected

.macro trap_frame handler
    sub sp, sp, #256
    stp x0, x1, [sp, #0]
    stp x2, x3, [sp, #16]
    stp x4, x5, [sp, #32]
    stp x6, x7, [sp, #48]
    stp x8, x9, [sp, #64]
    stp x10, x11, [sp, #80]
    stp x12, x13, [sp, #96]
    stp x14, x15, [sp, #112]
    stp x16, x17, [sp, #128]
    stp x18, x19, [sp, #144]
    stp x20, x21, [sp, #160]
    stp x22, x23, [sp, #176]
    stp x24, x25, [sp, #192]
    stp x26, x27, [sp, #208]
    stp x28, x29, [sp, #224]
    str x30, [sp, #240]
    mov x0, sp
    bl \handler
    ldp x0, x1, [sp, #0]
    ldp x2, x3, [sp, #16]
    ldp x4, x5, [sp, #32]
    ldp x6, x7, [sp, #48]
    ldp x8, x9, [sp, #64]
    ldp x10, x11, [sp, #80]
    ldp x12, x13, [sp, #96]
    ldp x14, x15, [sp, #112]
    ldp x16, x17, [sp, #128]
    ldp x18, x19, [sp, #144]
    ldp x20, x21, [sp, #160]
    ldp x22, x23, [sp, #176]
    ldp x24, x25, [sp, #192]
    ldp x26, x27, [sp, #208]
    ldp x28, x29, [sp, #224]
    ldr x30, [sp, #240]
    add sp, sp, #256
    eret
.endm

el2_lower_sync:
    trap_frame el2_sync

el2_lower_irq:
    trap_frame el2_irq

el2_unexpected:
    mrs x0, esr_el2
    mrs x1, elr_el2
    bl el2_fatal

// enter_guest(entry, sp_el1): first entry into the EL1 guest, EL1h with DAIF masked.
.global enter_guest
enter_guest:
    msr sp_el1, x1
    msr elr_el2, x0
    mov x2, #0x3c5
    msr spsr_el2, x2
    eret

.balign 2048
guest_vectors:
    ventry guest_bad        // current EL, SP0
    ventry guest_bad
    ventry guest_bad
    ventry guest_bad
    ventry guest_bad        // current EL, SPx: sync
    ventry guest_irq        // IRQ
    ventry guest_bad
    ventry guest_bad
    ventry guest_bad
    ventry guest_bad
    ventry guest_bad
    ventry guest_bad
    ventry guest_bad
    ventry guest_bad
    ventry guest_bad
    ventry guest_bad

.global guest_entry
guest_entry:
    adr x0, guest_vectors
    msr vbar_el1, x0
    mov x0, #1
    msr S3_0_C12_C12_5, x0      // ICC_SRE_EL1.SRE
    isb
    mov x0, #0xff
    msr S3_0_C4_C6_0, x0        // ICC_PMR_EL1
    msr S3_0_C12_C12_3, xzr     // ICC_BPR1_EL1
    mov x0, #1
    msr S3_0_C12_C12_7, x0      // ICC_IGRPEN1_EL1
    isb
    msr daifclr, #2
4:  wfi
    b 4b

// Take the interrupt, EOI it (drop + deactivate), tell the hypervisor which it was. If the
// hypervisor answers x0 != 0, send the SGI described by x1 (a trapped ICC_SGI1R_EL1 write).
guest_irq:
    stp x0, x1, [sp, #-16]!
    mrs x0, S3_0_C12_C12_0      // ICC_IAR1_EL1
    cmp x0, #1020
    b.hs 5f
    msr S3_0_C12_C12_1, x0      // ICC_EOIR1_EL1
    isb
    hvc #1
    cbz x0, 5f
    msr S3_0_C12_C11_5, x1      // ICC_SGI1R_EL1
    isb
5:  ldp x0, x1, [sp], #16
    eret

guest_bad:
    mrs x0, esr_el1
    hvc #3
    b guest_bad

// The GICv2 flavour: the CPU interface is the memory-mapped GICV frame (no stage 2 here,
// so the guest addresses it directly). The hypervisor gets the whole IAR value (CPUID too).
.balign 2048
guest_vectors_v2:
    ventry guest_bad        // current EL, SP0
    ventry guest_bad
    ventry guest_bad
    ventry guest_bad
    ventry guest_bad        // current EL, SPx: sync
    ventry guest_irq_v2     // IRQ
    ventry guest_bad
    ventry guest_bad
    ventry guest_bad
    ventry guest_bad
    ventry guest_bad
    ventry guest_bad
    ventry guest_bad
    ventry guest_bad
    ventry guest_bad
    ventry guest_bad

.global guest_entry_v2
guest_entry_v2:
    adr x0, guest_vectors_v2
    msr vbar_el1, x0
    ldr x1, =0x08040000
    mov w0, #0xff
    str w0, [x1, #0x4]          // GICV_PMR
    mov w0, #1
    str w0, [x1, #0x0]          // GICV_CTLR.EnableGrp0
    msr daifclr, #2
6:  wfi
    b 6b

guest_irq_v2:
    stp x0, x1, [sp, #-16]!
    ldr x1, =0x08040000
    ldr w0, [x1, #0xc]          // GICV_IAR
    str w0, [x1, #0x10]         // GICV_EOIR (ignored for spurious 1023)
    hvc #1
    ldp x0, x1, [sp], #16
    eret
"#
);

extern "C" {
    pub fn enter_guest(entry: usize, sp_el1: usize) -> !;
    pub fn guest_entry();
    pub fn guest_entry_v2();
    pub fn _start_secondary();
    pub static __guest_stack_top: u8;
    pub static __guest_stack1_top: u8;
}
