//! Per-interrupt and per-vCPU state of the virtual GIC.

/// Most list registers the model drives (GICv3 has at most 16; GICv2 up to 64, but real
/// implementations have four).
pub const MAX_LRS: usize = 16;

/// Number of private interrupts (SGIs + PPIs) per vCPU.
pub const NR_PRIVATE: usize = 32;

/// State of one virtual interrupt.
#[derive(Clone, Copy, Debug, Default)]
pub struct Irq {
    pub enabled: bool,
    /// Pending latch not yet handed to a list register.
    pub pending: bool,
    pub active: bool,
    pub group1: bool,
    /// ICFGR: level-sensitive (false = edge-triggered).
    pub level: bool,
    pub priority: u8,
    /// Physical INTID the guest's deactivation must reach (HW-linked).
    pub hw: Option<u16>,
    /// Loaded into a list register of vCPU `lr_vcpu` and not yet synced back.
    pub in_lr: bool,
    pub lr_vcpu: u8,
    /// The pending state that was moved into that list register.
    pub lr_pending: bool,
    /// GICv2 SGI: the source CPU loaded with it.
    pub lr_source: u8,
    /// The guest cleared the pending state (ICPENDR) while it sat in a list register of a
    /// running vCPU: at sync the list register's pending bit is dropped.
    pub lr_drop_pending: bool,
    /// The guest wrote the active state (IS/ICACTIVER) meanwhile: at sync the model's
    /// active bit wins over the list register's.
    pub lr_active_override: bool,
    /// Level of the interrupt's input line ([`super::Vgic::set_level`]).
    pub line: bool,
}

impl Irq {
    /// Power-on state of INTID `id`. SGIs are edge-triggered by definition; PPIs and SPIs
    /// start level-sensitive as on GIC-500/600 and QEMU (Linux only reconfigures the ones it
    /// uses, and reads the PPIs' ICFGR1 back). The reset priority is UNKNOWN architecturally;
    /// zero is what hardware shows.
    pub fn at_reset(id: u32) -> Self {
        Irq {
            level: id >= 16,
            ..Irq::default()
        }
    }

    /// Pending, active or in flight: something the guest must still see or finish.
    pub fn live(&self) -> bool {
        self.pending || self.active || self.in_lr
    }
}

/// The SPI-only routing state.
#[derive(Clone, Copy, Debug, Default)]
pub struct SpiRoute {
    /// GICv3 GICD_IROUTER value as written (Aff3..Aff0; IRM is RES0 because TYPER.No1N=1).
    pub irouter: u64,
    /// GICv2 GICD_ITARGETSR byte.
    pub targets: u8,
    /// The vCPU the SPI is delivered to, if the routing names an existing one.
    pub dest: Option<u8>,
}

/// What occupies one list register of a vCPU between flush and sync.
#[derive(Clone, Copy, Debug, Default)]
pub struct LrSlot {
    pub intid: u16,
    /// GICv2 SGI source CPU.
    pub source: u8,
}

/// Per-vCPU state: its private interrupts, redistributor and list-register bookkeeping.
#[derive(Clone, Debug)]
pub struct VcpuState {
    pub private: [Irq; NR_PRIVATE],
    /// GICv2: pending SGI sources, one bit per sending CPU, per SGI.
    pub sgi_sources: [u8; 16],
    /// GICv2: source of the SGI currently active.
    pub sgi_active_source: [u8; 16],
    /// GICR_WAKER.ProcessorSleep (ChildrenAsleep follows it immediately).
    pub processor_sleep: bool,
    pub lr: [LrSlot; MAX_LRS],
    /// List registers written by the last flush and not yet synced.
    pub lr_used: u64,
    /// Private interrupts that are [`Irq::live`], one bit each: flush looks only at these.
    pub private_live: u32,
}

impl Default for VcpuState {
    fn default() -> Self {
        VcpuState {
            private: core::array::from_fn(|id| Irq::at_reset(id as u32)),
            sgi_sources: [0; 16],
            sgi_active_source: [0; 16],
            processor_sleep: true,
            lr: [LrSlot::default(); MAX_LRS],
            lr_used: 0,
            private_live: 0,
        }
    }
}
