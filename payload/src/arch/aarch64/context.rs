//! A vCPU's state while it is off its pCPU: the trap frame, the EL1 system registers, its
//! timers and the virtual CPU interface registers besides the list registers (those are
//! synced into the vGIC model on every exit, so they need no saving here).

use crate::vgic::{hw_v2, hw_v3};

use super::trap::Frame;

/// PSTATE for a fresh vCPU: EL1h, D/A/I/F masked (Linux's boot protocol).
pub const SPSR_EL1H_MASKED: u64 = 0x3c5;
/// SCTLR_EL1 RES1 bits, MMU and caches off.
pub const SCTLR_EL1_RESET: u64 = 0x30d0_0800;

const CNT_ENABLE: u64 = 1;
const CNT_IMASK: u64 = 2;
const CNT_ISTATUS: u64 = 4;

/// Whether a timer with control value `ctl` still asserts its interrupt as the guest set it
/// up (enabled and expired; the mask is the hypervisor's, see [`TimerRegs::mask`]).
pub fn asserting(ctl: u64) -> bool {
    ctl & (CNT_ENABLE | CNT_ISTATUS) == CNT_ENABLE | CNT_ISTATUS
}

/// Saves or restores each listed EL1 register to/from the same-named field.
macro_rules! el1_regs {
    ($($field:ident: $reg:literal),* $(,)?) => {
        /// EL1 (and EL0) system registers the guest owns.
        #[derive(Clone, Copy, Debug, Default)]
        pub struct El1Regs {
            $(pub $field: u64,)*
        }

        impl El1Regs {
            pub fn save(&mut self) {
                $(self.$field = read_sysreg!($reg);)*
            }

            pub fn restore(&self) {
                $(write_sysreg!($reg, self.$field);)*
            }
        }
    };
}

el1_regs! {
    sctlr: "sctlr_el1",
    cpacr: "cpacr_el1",
    ttbr0: "ttbr0_el1",
    ttbr1: "ttbr1_el1",
    tcr: "tcr_el1",
    mair: "mair_el1",
    amair: "amair_el1",
    vbar: "vbar_el1",
    contextidr: "contextidr_el1",
    esr: "esr_el1",
    far: "far_el1",
    afsr0: "afsr0_el1",
    afsr1: "afsr1_el1",
    par: "par_el1",
    elr: "elr_el1",
    spsr: "spsr_el1",
    sp_el0: "sp_el0",
    sp_el1: "sp_el1",
    tpidr_el0: "tpidr_el0",
    tpidrro_el0: "tpidrro_el0",
    tpidr_el1: "tpidr_el1",
    cntkctl: "cntkctl_el1",
    csselr: "csselr_el1",
    mdscr: "mdscr_el1",
}

/// One EL1 timer (virtual or physical) as the guest left it.
#[derive(Clone, Copy, Debug, Default)]
pub struct TimerRegs {
    pub ctl: u64,
    pub cval: u64,
}

impl TimerRegs {
    /// The counter value (in this timer's own count) at which it fires, if it can fire.
    pub fn deadline(&self) -> Option<u64> {
        (self.ctl & (CNT_ENABLE | CNT_IMASK) == CNT_ENABLE).then_some(self.cval)
    }

    /// Masks it, as the hypervisor does when it delivers the interrupt itself: the guest's
    /// handler sees ISTATUS and reprograms it (Linux clears IMASK when it sets the next event).
    pub fn mask(&mut self) {
        self.ctl |= CNT_IMASK;
    }
}

/// The virtual CPU interface registers other than the list registers.
#[derive(Clone, Copy, Debug, Default)]
pub enum GicIf {
    #[default]
    None,
    V3(hw_v3::VcpuIfState),
    V2(hw_v2::VcpuIfState),
}

/// Everything of a vCPU that lives in the pCPU while it runs.
pub struct VcpuCtx {
    pub frame: Frame,
    pub el1: El1Regs,
    pub vtimer: TimerRegs,
    pub ptimer: TimerRegs,
    pub gic: GicIf,
    /// A reset (entry, x0) to apply when it is next loaded: set by a start while its pCPU
    /// may still be saving the state it had before it was stopped.
    pub pending_reset: Option<(u64, u64)>,
    /// Timer interrupt lines raised in its vGIC ([`TIMER_V`], [`TIMER_P`]), lowered once the
    /// guest's timer stops asserting.
    pub timer_lines: u8,
}

/// [`VcpuCtx::timer_lines`] bits.
pub const TIMER_V: u8 = 1;
pub const TIMER_P: u8 = 2;

impl VcpuCtx {
    pub fn new() -> Self {
        // SAFETY: `Frame` is plain integers; all-zero is a valid value.
        let frame = unsafe { core::mem::zeroed() };
        Self {
            frame,
            el1: El1Regs::default(),
            vtimer: TimerRegs::default(),
            ptimer: TimerRegs::default(),
            gic: GicIf::None,
            pending_reset: None,
            timer_lines: 0,
        }
    }

    /// The state of a vCPU coming out of reset into `entry` with `x0`: EL1h, interrupts
    /// masked, MMU and caches off, timers off, GIC interface reset.
    pub fn reset(&mut self, entry: u64, x0: u64) {
        *self = Self::new();
        self.frame.elr = entry;
        self.frame.spsr = SPSR_EL1H_MASKED;
        self.frame.x[0] = x0;
        self.el1.sctlr = SCTLR_EL1_RESET;
    }
}

impl Default for VcpuCtx {
    fn default() -> Self {
        Self::new()
    }
}

/// Saves the timers and turns them off so they cannot fire for the next vCPU.
pub fn save_timers(ctx: &mut VcpuCtx) {
    ctx.vtimer = TimerRegs {
        ctl: read_sysreg!("cntv_ctl_el0"),
        cval: read_sysreg!("cntv_cval_el0"),
    };
    ctx.ptimer = TimerRegs {
        ctl: read_sysreg!("cntp_ctl_el0"),
        cval: read_sysreg!("cntp_cval_el0"),
    };
    write_sysreg!("cntv_ctl_el0", 0);
    write_sysreg!("cntp_ctl_el0", 0);
}

pub fn restore_timers(ctx: &VcpuCtx) {
    write_sysreg!("cntv_cval_el0", ctx.vtimer.cval);
    write_sysreg!("cntv_ctl_el0", ctx.vtimer.ctl);
    write_sysreg!("cntp_cval_el0", ctx.ptimer.cval);
    write_sysreg!("cntp_ctl_el0", ctx.ptimer.ctl);
}
