//! The guest's own EL1 exception vectors. A check arms a probe, provokes an exception, and the
//! handler records it and resumes after the faulting instruction; anything unexpected ends the
//! run with a FAIL line.

use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::esr::Esr;

/// Saved context; layout shared with the assembly below.
#[repr(C)]
pub struct Frame {
    pub x: [u64; 31],
    pub elr: u64,
    pub spsr: u64,
    _pad: u64,
    pub q: [u128; 32],
}

const FRAME_SIZE: usize = core::mem::size_of::<Frame>();
const _: () = assert!(FRAME_SIZE == 784);

global_asm!(
    r#"
    .macro VENTRY kind
    .balign 0x80
    sub     sp, sp, #{frame}
    stp     x0, x1, [sp, #0]
    mov     x0, #\kind
    b       el1_common
    .endm

    .section .text.vectors, "ax"
    .balign 2048
    .global el1_vectors
el1_vectors:
    .irp k, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    VENTRY \k
    .endr

el1_common:
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
    str     x30, [sp, #240]
    mrs     x1, elr_el1
    mrs     x2, spsr_el1
    stp     x1, x2, [sp, #248]
    add     x1, sp, #272
    stp     q0, q1, [x1, #0]
    stp     q2, q3, [x1, #32]
    stp     q4, q5, [x1, #64]
    stp     q6, q7, [x1, #96]
    stp     q8, q9, [x1, #128]
    stp     q10, q11, [x1, #160]
    stp     q12, q13, [x1, #192]
    stp     q14, q15, [x1, #224]
    stp     q16, q17, [x1, #256]
    stp     q18, q19, [x1, #288]
    stp     q20, q21, [x1, #320]
    stp     q22, q23, [x1, #352]
    stp     q24, q25, [x1, #384]
    stp     q26, q27, [x1, #416]
    stp     q28, q29, [x1, #448]
    stp     q30, q31, [x1, #480]
    mov     x1, x0
    mov     x0, sp
    bl      el1_exception
    add     x1, sp, #272
    ldp     q0, q1, [x1, #0]
    ldp     q2, q3, [x1, #32]
    ldp     q4, q5, [x1, #64]
    ldp     q6, q7, [x1, #96]
    ldp     q8, q9, [x1, #128]
    ldp     q10, q11, [x1, #160]
    ldp     q12, q13, [x1, #192]
    ldp     q14, q15, [x1, #224]
    ldp     q16, q17, [x1, #256]
    ldp     q18, q19, [x1, #288]
    ldp     q20, q21, [x1, #320]
    ldp     q22, q23, [x1, #352]
    ldp     q24, q25, [x1, #384]
    ldp     q26, q27, [x1, #416]
    ldp     q28, q29, [x1, #448]
    ldp     q30, q31, [x1, #480]
    ldp     x1, x2, [sp, #248]
    msr     elr_el1, x1
    msr     spsr_el1, x2
    ldp     x0, x1, [sp, #0]
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
    ldr     x30, [sp, #240]
    add     sp, sp, #{frame}
    eret
"#,
    frame = const FRAME_SIZE,
);

/// Vector slot of a synchronous exception from EL1 using SP_EL1.
const SYNC_EL1H: u64 = 4;
/// Vector slot of an IRQ from EL1 using SP_EL1.
const IRQ_EL1H: u64 = 5;

static ARMED: AtomicBool = AtomicBool::new(false);
static TRAPPED: AtomicBool = AtomicBool::new(false);
static TRAP_ESR: AtomicU64 = AtomicU64::new(0);
static TRAP_FAR: AtomicU64 = AtomicU64::new(0);
static TRAP_ELR: AtomicU64 = AtomicU64::new(0);

/// An exception caught by a probe.
#[derive(Clone, Copy)]
pub struct Trap {
    pub esr: Esr,
    pub far: u64,
    pub elr: u64,
}

/// Runs `f` with the probe armed: every synchronous exception it takes resumes at the next
/// instruction (after an instruction abort: at the link register), and the first one is
/// returned.
pub fn probe<R>(f: impl FnOnce() -> R) -> (R, Option<Trap>) {
    TRAPPED.store(false, Ordering::SeqCst);
    ARMED.store(true, Ordering::SeqCst);
    let r = f();
    ARMED.store(false, Ordering::SeqCst);
    let trap = TRAPPED.load(Ordering::SeqCst).then(|| Trap {
        esr: Esr(TRAP_ESR.load(Ordering::SeqCst)),
        far: TRAP_FAR.load(Ordering::SeqCst),
        elr: TRAP_ELR.load(Ordering::SeqCst),
    });
    (r, trap)
}

#[no_mangle]
extern "C" fn el1_exception(frame: &mut Frame, kind: u64) {
    match kind {
        SYNC_EL1H => {
            let (esr, far): (u64, u64);
            // SAFETY: reading the syndrome registers of the exception being handled.
            unsafe {
                asm!("mrs {}, esr_el1", "mrs {}, far_el1", out(reg) esr, out(reg) far);
            }
            if ARMED.load(Ordering::SeqCst) {
                if !TRAPPED.swap(true, Ordering::SeqCst) {
                    TRAP_ESR.store(esr, Ordering::SeqCst);
                    TRAP_FAR.store(far, Ordering::SeqCst);
                    TRAP_ELR.store(frame.elr, Ordering::SeqCst);
                }
                // A fetch abort has nothing to skip: return to the caller that branched there.
                if Esr(esr).is_instruction_abort() {
                    frame.elr = frame.x[30];
                } else {
                    frame.elr += 4;
                }
                return;
            }
            crate::fatal(format_args!(
                "unexpected exception ESR={esr:#x} FAR={far:#x} ELR={:#x}",
                frame.elr
            ));
        }
        IRQ_EL1H => crate::gic::handle_irq(),
        _ => crate::fatal(format_args!(
            "unexpected exception vector {kind} ELR={:#x}",
            frame.elr
        )),
    }
}
