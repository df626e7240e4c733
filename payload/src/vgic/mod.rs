//! Virtual GIC: GICv3 distributor + redistributors or GICv2 distributor emulation, and the
//! list-register management that feeds the hardware virtual CPU interface.
//!
//! # How the hypervisor drives it
//!
//! One [`Vgic`] per VM, behind the VM's spin lock (it is not internally locked).
//!
//! * **Set-up.** Build it with [`Vgic::new`]. Program every vCPU's `VMPIDR_EL2` with
//!   [`vmpidr`] (Aff0 = vCPU index % 16, Aff1 = vCPU index / 16, the QEMU `virt` GICv3
//!   scheme; with GICv2's at most 8 vCPUs that is simply Aff0 = index): GICR_TYPER affinity,
//!   IROUTER routing and ICC_SGI1R_EL1 target lists all assume it. The guest's device tree
//!   must describe GICD at `dist_base` and (v3) one redistributor region of
//!   `nr_vcpus * 0x20000` bytes at `redist_base`; with v2, GICC is the hardware GICV frame
//!   mapped by stage 2. Once per pCPU: enable the virtual CPU interface
//!   (`hw_v3::enable_virtual_cpu_interface` / `hw_v2::GichListRegs::enable`), clear the
//!   list registers with [`reset_lrs`], and on GICv3 set `ICC_SRE_EL2.{SRE,Enable}` so the
//!   guest can use the system-register interface.
//! * **Traps.** A stage-2 data abort whose IPA satisfies [`Vgic::contains`] goes to
//!   [`Vgic::mmio_read`] / [`Vgic::mmio_write`]; a trapped `ICC_SGI1R_EL1` write (GICv3,
//!   with `HCR_EL2.IMO` set; [`sgi1r_write_rt`] recognizes its syndrome) goes to
//!   [`Vgic::write_sgi1r`], then skip the instruction. An `Err` means the access itself is
//!   invalid (bad size, misaligned, not a GIC frame, bad vCPU): inject a synchronous
//!   external abort or skip the instruction; unimplemented registers inside a frame are
//!   RAZ/WI and never an error.
//! * **Kicks.** Every call that can make an interrupt deliverable returns a [`VcpuMask`]:
//!   each vCPU in it that is running on another pCPU must be made to exit (IPI), each one
//!   blocked in WFI must be woken. The mask may contain the caller's own vCPU, which needs
//!   nothing since it flushes before re-entry. [`Vgic::take_deferred_kicks`] returns kicks
//!   found while syncing (an SPI re-routed while it was in flight); poll it after sync.
//!   [`Vgic::has_deliverable`] tells whether a trapped WFI may block.
//! * **Devices.** [`Vgic::inject`] marks an interrupt pending. Pass `hw = Some(pintid)` for a
//!   physical interrupt forwarded to the guest (pass-through SPIs, the virtual timer PPI 27):
//!   the hypervisor drops the physical priority (EOImode 1) but does not deactivate it; the
//!   guest's EOI deactivates it through the list register's HW bit. If the guest instead
//!   clears its pending/active state by MMIO, [`Vgic::take_hw_deactivation`] hands the
//!   physical INTID back to the hypervisor to deactivate. Emulated devices with a level
//!   output drive [`Vgic::set_level`] instead: the interrupt stays pending while the line
//!   is high and is re-sampled when the guest EOIs it.
//! * **Entry/exit.** Call [`Vgic::flush_lrs`] right before every `eret` into a vCPU and
//!   [`Vgic::sync_lrs`] right after every exit from it, before anything else touches the
//!   vGIC: between sync and the next flush the model is the whole truth and the pCPU's list
//!   registers are empty, so vCPUs can be switched freely (save/restore the rest of the
//!   virtual CPU interface with `hw_v3::VcpuIfState` / `hw_v2::GichListRegs::save`).
//! * **Maintenance interrupt** (PPI 25): acknowledge, EOI and deactivate it at the physical
//!   GIC; nothing else. It fires when more interrupts were pending than list registers
//!   (underflow, UIE) or an EOI needs re-evaluating (EOI bit); the exit → sync → flush path
//!   refills the list registers highest priority first.
//!
//! `hwtest/` (run by `scripts/tests.d/50-vgic-hw`) is a bare-metal EL2 program doing exactly
//! this on QEMU's GICv3 and GICv2 models, with a tiny EL1 guest.
//!
//! ```ignore
//! // Per pCPU, once: ICC_SRE_EL2 = 0xf (v3), then
//! hw_v3::enable_virtual_cpu_interface();
//! reset_lrs(&mut hw_v3::IchListRegs);
//! // Per vCPU, before its first entry:
//! write_sysreg!("vmpidr_el2", vgic::vmpidr(vcpu));
//! // Exit path (every exception from the guest), under the VM's lock:
//! vm.vgic.sync_lrs(vcpu, &mut IchListRegs);
//! match ec {
//!     EC_DABT_LOW if vm.vgic.contains(ipa) => {
//!         let r = if write { vm.vgic.mmio_write(vcpu, ipa, size, x[rt]).map(kick) }
//!                 else { vm.vgic.mmio_read(vcpu, ipa, size).map(|v| x[rt] = v) };
//!         if r.is_err() { inject_data_abort() }
//!     }
//!     EC_SYSREG => if let Some(rt) = vgic::sgi1r_write_rt(iss) {
//!         kick(vm.vgic.write_sgi1r(vcpu, x[rt]));
//!     }
//!     // Physical IRQ: acknowledge + priority drop (EOImode 1); only 25 is deactivated here.
//!     EC_IRQ => match ack_and_drop_physical() {
//!         25 => deactivate_physical(25),                       // maintenance: sync/flush refill
//!         27 => kick(vm.vgic.inject(27, Some(27), Some(vcpu))), // virtual timer, HW-linked
//!         spi => kick(vm.vgic.inject(spi, Some(spi), None)),    // pass-through
//!     },
//!     _ => {}
//! }
//! kick(vm.vgic.take_deferred_kicks());
//! while let Some(p) = vm.vgic.take_hw_deactivation() { deactivate_physical(p) }
//! // Entry path, right before eret:
//! vm.vgic.flush_lrs(vcpu, &mut IchListRegs);
//! ```
//!
//! # Model limits (deliberate)
//! No LPIs/ITS, no 1-of-N SPI routing (`GICD_TYPER.No1N = 1`), a single security state
//! (`GICD_CTLR.DS = 1`, so IGRPMODR/NSACR are RAZ/WI), at most [`MAX_VCPUS`] vCPUs (8 with
//! GICv2) and [`irq_state::MAX_LRS`] list registers used. Active interrupts are loaded
//! first, so a guest with as many nested active interrupts as list registers sees new
//! pending ones only as it finishes them. An edge injected while the previous one still
//! waits, not yet acknowledged, in a list register may be delivered twice (as with KVM: the
//! hypervisor cannot see whether the guest took the first in between). GICv2 SGIs pending
//! from several sources are delivered one source at a time. State changes the guest makes
//! by MMIO to an interrupt in flight on another running vCPU win over that vCPU's list
//! register at its next sync (the vCPU is kicked).
//!
//! Interface note: beyond the agreed contract this module adds [`Vgic::set_level`],
//! [`Vgic::try_new`], [`Vgic::has_deliverable`], [`Vgic::take_deferred_kicks`],
//! [`Vgic::take_hw_deactivation`], [`Vgic::set_software_deactivation`],
//! [`Vgic::spi_target`], [`Vgic::reset`], [`Vgic::config`], [`vmpidr`], [`vcpu_affinity`],
//! [`reset_lrs`], [`sgi1r_write_rt`], the `BadConfig` error, and in `hw_v3` / `hw_v2` the
//! interface enables and the per-vCPU CPU-interface state save/restore.

mod dist;
mod dist_v2;
mod flush;
mod irq_regs;
pub mod irq_state;
pub mod lr;
mod redist;
mod sgi;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod hw_v2;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod hw_v3;

pub use sgi::sgi1r_write_rt;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use irq_state::{Irq, SpiRoute, VcpuState, NR_PRIVATE};

extern crate alloc;

/// Most vCPUs one VM's vGIC serves (a [`VcpuMask`] is 64 bits).
pub const MAX_VCPUS: usize = 64;
/// GICv2 target lists are eight bits wide.
pub const MAX_VCPUS_V2: usize = 8;
/// Highest SPI count: INTIDs 32..1019.
pub const MAX_SPIS: u32 = 1020 - 32;
/// vCPUs per affinity-level-1 cluster in the MPIDR scheme (the GICv3 SGI target-list width).
pub const CLUSTER_SIZE: usize = 16;
/// Size of one vCPU's redistributor (RD_base + SGI_base frames).
pub const GICR_STRIDE: u64 = 0x2_0000;
const GICD_SIZE_V3: u64 = 0x1_0000;
const GICD_SIZE_V2: u64 = 0x1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicVersion {
    V2,
    V3,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VgicConfig {
    pub version: GicVersion,
    pub nr_vcpus: usize,
    /// SPIs the guest sees (rounded up to a multiple of 32, as GICD_TYPER can only say that).
    pub nr_spis: u32,
    pub dist_base: u64,
    /// GICv3 only: the first redistributor; vCPU `i`'s is at `redist_base + i * 0x20000`.
    pub redist_base: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VgicError {
    /// The IPA is in no GICD/GICR frame of this vGIC.
    NotMapped { ipa: u64 },
    /// Size not allowed for this register, or misaligned.
    BadAccess { ipa: u64, size: u8 },
    /// The vCPU index is out of range.
    BadVcpu { vcpu: usize },
    /// [`Vgic::try_new`]: the configuration cannot be modelled.
    BadConfig(&'static str),
}

impl fmt::Display for VgicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VgicError::NotMapped { ipa } => write!(f, "vgic: IPA {ipa:#x} is not a GIC frame"),
            VgicError::BadAccess { ipa, size } => {
                write!(f, "vgic: invalid {size}-byte access at IPA {ipa:#x}")
            }
            VgicError::BadVcpu { vcpu } => write!(f, "vgic: no vCPU {vcpu}"),
            VgicError::BadConfig(why) => write!(f, "vgic: bad configuration: {why}"),
        }
    }
}

/// A set of vCPU indices (bit `i` = vCPU `i`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuMask(pub u64);

impl VcpuMask {
    pub const EMPTY: VcpuMask = VcpuMask(0);
    pub const ALL: VcpuMask = VcpuMask(u64::MAX);

    pub fn single(vcpu: usize) -> Self {
        if vcpu < MAX_VCPUS {
            VcpuMask(1 << vcpu)
        } else {
            VcpuMask(0)
        }
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn contains(self, vcpu: usize) -> bool {
        vcpu < MAX_VCPUS && self.0 & (1 << vcpu) != 0
    }
    /// The vCPU indices, lowest first.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        let mut bits = self.0;
        core::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            Some(i)
        })
    }
}

impl core::ops::BitOr for VcpuMask {
    type Output = VcpuMask;
    fn bitor(self, rhs: VcpuMask) -> VcpuMask {
        VcpuMask(self.0 | rhs.0)
    }
}

impl core::ops::BitOrAssign for VcpuMask {
    fn bitor_assign(&mut self, rhs: VcpuMask) {
        self.0 |= rhs.0;
    }
}

/// The list registers of the pCPU the vCPU runs on.
pub trait ListRegs {
    /// Number of implemented list registers.
    fn count(&self) -> usize;
    /// Raw list register `i` (a GICv2 `GICH_LR` value is zero-extended).
    fn read(&self, i: usize) -> u64;
    fn write(&mut self, i: usize, v: u64);
    /// Empty list register status: bit `i` set when LR `i` holds nothing.
    fn elrsr(&self) -> u64;
    /// Underflow maintenance interrupt enable (`ICH_HCR_EL2.UIE` / `GICH_HCR.UIE`).
    fn set_underflow_irq(&mut self, on: bool);
}

/// Clears every list register and the underflow request (once per pCPU at start-up, since
/// their reset values are UNKNOWN).
pub fn reset_lrs(lrs: &mut impl ListRegs) {
    for i in 0..lrs.count() {
        lrs.write(i, 0);
    }
    lrs.set_underflow_irq(false);
}

/// MPIDR affinity (Aff1.Aff0) of vCPU `vcpu` in this vGIC's scheme.
pub fn vcpu_affinity(vcpu: usize) -> u64 {
    (((vcpu / CLUSTER_SIZE) as u64 & 0xff) << 8) | (vcpu % CLUSTER_SIZE) as u64
}

/// The value to program into `VMPIDR_EL2` for vCPU `vcpu` (bit 31 is RES1).
pub fn vmpidr(vcpu: usize) -> u64 {
    (1 << 31) | vcpu_affinity(vcpu)
}

/// The vCPU whose MPIDR affinity is `aff` (Aff3..Aff0 packed as in MPIDR: Aff3 at bit 32).
fn vcpu_of_affinity(aff: u64, nr_vcpus: usize) -> Option<usize> {
    if aff & !0xffff != 0 || aff & 0xff >= CLUSTER_SIZE as u64 {
        return None;
    }
    let v = ((aff >> 8) & 0xff) as usize * CLUSTER_SIZE + (aff & 0xff) as usize;
    (v < nr_vcpus).then_some(v)
}

/// One VM's virtual GIC.
pub struct Vgic {
    cfg: VgicConfig,
    /// Distributor group enables (GICD_CTLR.EnableGrp0 / EnableGrp1).
    enable_grp0: bool,
    enable_grp1: bool,
    vcpus: Vec<VcpuState>,
    spis: Vec<Irq>,
    routes: Vec<SpiRoute>,
    /// SPIs that are pending, active or in a list register, one bit each.
    spi_live: Vec<u64>,
    deferred_kicks: VcpuMask,
    /// Physical INTIDs to deactivate because the guest dropped their virtual state
    /// without an EOI (one bit per INTID 0..1023).
    hw_deactivations: [u64; 16],
    /// Words of `hw_deactivations` that are not zero: polled after every exit.
    hw_deactivation_words: u16,
    /// vCPUs whose next flush may load something: cleared by a flush that found nothing,
    /// set by every change to the model. Most exits (hypercalls, MMIO reads) change
    /// nothing, and their flush is then a single test.
    dirty: VcpuMask,
    /// vCPUs with list registers in use (`VcpuState::lr_used != 0`): the exit path tests
    /// this one word instead of the vCPU's state.
    lrs_loaded: VcpuMask,
    /// HW-linked interrupts go to the list registers without the HW bit; their physical
    /// deactivation is queued when the guest's EOI comes back (EOI maintenance).
    sw_deactivate: bool,
}

impl Vgic {
    /// Builds the vGIC, clamping the configuration into what can be modelled (at least one
    /// vCPU, at most [`MAX_VCPUS`] or [`MAX_VCPUS_V2`], at most [`MAX_SPIS`] SPIs rounded up
    /// to a multiple of 32). [`Vgic::config`] tells the result.
    pub fn new(cfg: VgicConfig) -> Self {
        let max_vcpus = match cfg.version {
            GicVersion::V2 => MAX_VCPUS_V2,
            GicVersion::V3 => MAX_VCPUS,
        };
        let nr_vcpus = cfg.nr_vcpus.clamp(1, max_vcpus);
        let nr_spis = (cfg.nr_spis.min(MAX_SPIS).div_ceil(32) * 32).min(MAX_SPIS);
        let cfg = VgicConfig {
            nr_vcpus,
            nr_spis,
            ..cfg
        };
        let n = nr_spis as usize;
        let reset_dest = Self::reset_dest(&cfg);
        Vgic {
            cfg,
            enable_grp0: false,
            enable_grp1: false,
            vcpus: vec![VcpuState::default(); nr_vcpus],
            spis: vec![Irq::at_reset(NR_PRIVATE as u32); n],
            routes: vec![
                SpiRoute {
                    dest: reset_dest,
                    ..SpiRoute::default()
                };
                n
            ],
            spi_live: vec![0; n.div_ceil(64)],
            deferred_kicks: VcpuMask::EMPTY,
            hw_deactivations: [0; 16],
            hw_deactivation_words: 0,
            dirty: VcpuMask::ALL,
            lrs_loaded: VcpuMask::EMPTY,
            sw_deactivate: false,
        }
    }

    /// Back to the power-on state (VM reset, e.g. PSCI SYSTEM_RESET), without allocating.
    /// Every vCPU must be stopped and synced first: list-register bookkeeping is dropped.
    pub fn reset(&mut self) {
        self.enable_grp0 = false;
        self.enable_grp1 = false;
        self.vcpus.fill(VcpuState::default());
        self.spis.fill(Irq::at_reset(NR_PRIVATE as u32));
        let reset_dest = Self::reset_dest(&self.cfg);
        self.routes.fill(SpiRoute {
            dest: reset_dest,
            ..SpiRoute::default()
        });
        self.spi_live.fill(0);
        self.deferred_kicks = VcpuMask::EMPTY;
        self.hw_deactivations = [0; 16];
        self.hw_deactivation_words = 0;
        self.dirty = VcpuMask::ALL;
        self.lrs_loaded = VcpuMask::EMPTY;
    }

    /// Where SPIs go out of reset: IROUTER resets to affinity 0 (vCPU 0); GICv2 ITARGETSR
    /// resets to no CPU, except on a uniprocessor where it is RAZ/WI and all go to CPU 0.
    fn reset_dest(cfg: &VgicConfig) -> Option<u8> {
        match cfg.version {
            GicVersion::V3 => Some(0),
            GicVersion::V2 if cfg.nr_vcpus == 1 => Some(0),
            GicVersion::V2 => None,
        }
    }

    /// Like [`Vgic::new`] but refuses configurations it would have to clamp.
    pub fn try_new(cfg: VgicConfig) -> Result<Self, VgicError> {
        let max_vcpus = match cfg.version {
            GicVersion::V2 => MAX_VCPUS_V2,
            GicVersion::V3 => MAX_VCPUS,
        };
        if cfg.nr_vcpus == 0 || cfg.nr_vcpus > max_vcpus {
            return Err(VgicError::BadConfig("vCPU count out of range"));
        }
        if cfg.nr_spis > MAX_SPIS {
            return Err(VgicError::BadConfig("more than 988 SPIs"));
        }
        let dist_size = Self::dist_size_of(cfg.version);
        if cfg.dist_base & (dist_size - 1) != 0 {
            return Err(VgicError::BadConfig(
                "GICD base not aligned to its frame size",
            ));
        }
        if cfg.version == GicVersion::V3 {
            if cfg.redist_base & 0xffff != 0 {
                return Err(VgicError::BadConfig("GICR base not 64 KiB aligned"));
            }
            let rd_end = cfg.redist_base + cfg.nr_vcpus as u64 * GICR_STRIDE;
            if cfg.dist_base < rd_end && cfg.redist_base < cfg.dist_base + dist_size {
                return Err(VgicError::BadConfig("GICD and GICR frames overlap"));
            }
        }
        Ok(Self::new(cfg))
    }

    /// The effective configuration (after clamping).
    pub fn config(&self) -> &VgicConfig {
        &self.cfg
    }

    fn dist_size_of(v: GicVersion) -> u64 {
        match v {
            GicVersion::V2 => GICD_SIZE_V2,
            GicVersion::V3 => GICD_SIZE_V3,
        }
    }

    fn in_dist(&self, ipa: u64) -> Option<u64> {
        let off = ipa.wrapping_sub(self.cfg.dist_base);
        (off < Self::dist_size_of(self.cfg.version)).then_some(off)
    }

    /// (redistributor index, offset inside its 128 KiB) for a GICR IPA.
    fn in_redist(&self, ipa: u64) -> Option<(usize, u64)> {
        if self.cfg.version != GicVersion::V3 {
            return None;
        }
        let off = ipa.wrapping_sub(self.cfg.redist_base);
        let idx = off / GICR_STRIDE;
        (idx < self.cfg.nr_vcpus as u64).then_some((idx as usize, off % GICR_STRIDE))
    }

    /// Is `ipa` inside a GICD or GICR frame of this vGIC?
    pub fn contains(&self, ipa: u64) -> bool {
        self.in_dist(ipa).is_some() || self.in_redist(ipa).is_some()
    }

    fn check_access(&self, vcpu: usize, ipa: u64, size: u8) -> Result<(), VgicError> {
        if vcpu >= self.cfg.nr_vcpus {
            return Err(VgicError::BadVcpu { vcpu });
        }
        if !matches!(size, 1 | 2 | 4 | 8) || ipa & (u64::from(size) - 1) != 0 {
            return Err(VgicError::BadAccess { ipa, size });
        }
        Ok(())
    }

    /// A guest read of `size` bytes at `ipa` by vCPU `vcpu`.
    pub fn mmio_read(&mut self, vcpu: usize, ipa: u64, size: u8) -> Result<u64, VgicError> {
        self.check_access(vcpu, ipa, size)?;
        let r = if let Some(off) = self.in_dist(ipa) {
            match self.cfg.version {
                GicVersion::V3 => self.dist_read(off, size),
                GicVersion::V2 => self.dist_v2_read(vcpu, off, size),
            }
        } else if let Some((rd, off)) = self.in_redist(ipa) {
            self.redist_read(rd, off, size)
        } else {
            return Err(VgicError::NotMapped { ipa });
        };
        r.ok_or(VgicError::BadAccess { ipa, size })
    }

    /// A guest write of `size` bytes at `ipa` by vCPU `vcpu`; returns the vCPUs to kick.
    pub fn mmio_write(
        &mut self,
        vcpu: usize,
        ipa: u64,
        size: u8,
        val: u64,
    ) -> Result<VcpuMask, VgicError> {
        self.check_access(vcpu, ipa, size)?;
        self.dirty = VcpuMask::ALL;
        let val = if size == 8 {
            val
        } else {
            val & ((1u64 << (size * 8)) - 1)
        };
        let r = if let Some(off) = self.in_dist(ipa) {
            match self.cfg.version {
                GicVersion::V3 => self.dist_write(off, size, val),
                GicVersion::V2 => self.dist_v2_write(vcpu, off, size, val),
            }
        } else if let Some((rd, off)) = self.in_redist(ipa) {
            self.redist_write(rd, off, size, val)
        } else {
            return Err(VgicError::NotMapped { ipa });
        };
        r.ok_or(VgicError::BadAccess { ipa, size })
    }

    /// A trapped `ICC_SGI1R_EL1` write by vCPU `vcpu` (GICv3); returns the vCPUs to kick.
    pub fn write_sgi1r(&mut self, vcpu: usize, val: u64) -> VcpuMask {
        if vcpu >= self.cfg.nr_vcpus || self.cfg.version != GicVersion::V3 {
            return VcpuMask::EMPTY;
        }
        self.dirty = VcpuMask::ALL;
        let req = sgi::decode_sgi1r(val);
        let targets = sgi::sgi1r_targets(&req, vcpu, self.cfg.nr_vcpus);
        let mut kick = VcpuMask::EMPTY;
        for t in targets.iter() {
            kick |= self.set_private_pending(t, req.intid, vcpu);
        }
        kick
    }

    /// Marks `intid` pending. PPIs need `vcpu_hint` (the vCPU owning the PPI); SPIs go where
    /// the guest routed them and ignore it; SGIs are refused (they come from SGI1R/SGIR).
    /// `hw = Some(p)` links the interrupt to physical INTID `p` until the next injection
    /// without it. Returns the vCPU to kick, empty if the interrupt cannot be delivered now
    /// (it then stays pending, as on hardware).
    pub fn inject(&mut self, intid: u32, hw: Option<u32>, vcpu_hint: Option<usize>) -> VcpuMask {
        let hw = hw.filter(|&p| p < 1020).map(|p| p as u16);
        if intid < 16 {
            return VcpuMask::EMPTY;
        }
        self.dirty = VcpuMask::ALL;
        let vcpu = if intid < NR_PRIVATE as u32 {
            match vcpu_hint {
                Some(v) if v < self.cfg.nr_vcpus => v,
                _ => return VcpuMask::EMPTY,
            }
        } else {
            0
        };
        let Some(irq) = self.irq_mut(vcpu, intid) else {
            return VcpuMask::EMPTY;
        };
        irq.hw = hw;
        irq.pending = true;
        self.changed(vcpu, intid)
    }

    /// Drives the input line of a PPI or SPI from a device model: a level-sensitive
    /// interrupt (GICD_ICFGR) is pending while the line is high and is re-sampled when the
    /// guest EOIs it; an edge-triggered one latches pending on a rising edge. Use it for
    /// emulated devices with level outputs (virtio-mmio, UART); physical interrupts use
    /// [`Vgic::inject`] with `hw`. Returns the vCPUs to kick.
    pub fn set_level(&mut self, intid: u32, vcpu_hint: Option<usize>, level: bool) -> VcpuMask {
        if intid < 16 {
            return VcpuMask::EMPTY;
        }
        self.dirty = VcpuMask::ALL;
        let vcpu = if intid < NR_PRIVATE as u32 {
            match vcpu_hint {
                Some(v) if v < self.cfg.nr_vcpus => v,
                _ => return VcpuMask::EMPTY,
            }
        } else {
            0
        };
        let Some(irq) = self.irq_mut(vcpu, intid) else {
            return VcpuMask::EMPTY;
        };
        let rising = level && !irq.line;
        irq.line = level;
        irq.hw = None;
        if irq.level {
            if level {
                irq.pending = true;
            } else {
                irq.pending = false;
                // Lowered before the guest took it: withdraw it from the list register.
                if irq.in_lr && irq.lr_pending {
                    irq.lr_drop_pending = true;
                }
            }
        } else if rising {
            irq.pending = true;
        }
        self.changed(vcpu, intid)
    }

    /// Does vCPU `vcpu` have an interrupt the guest could take (to decide whether a trapped
    /// WFI may sleep)? Guest-side masking (PMR, PSTATE.I) is not considered.
    pub fn has_deliverable(&self, vcpu: usize) -> bool {
        if vcpu >= self.cfg.nr_vcpus {
            return false;
        }
        let st = &self.vcpus[vcpu];
        if st.lr_used != 0
            || VcpuMask(st.private_live.into())
                .iter()
                .any(|id| self.signalable(&st.private[id]))
        {
            return true;
        }
        self.live_spis()
            .any(|s| self.routes[s].dest == Some(vcpu as u8) && self.signalable(&self.spis[s]))
    }

    /// The vCPU SPI `intid` is routed to (GICD_IROUTER / ITARGETSR), so the hypervisor can
    /// route the physical SPI of a pass-through device to the pCPU running it. `None` for a
    /// non-SPI or when the guest's routing names no vCPU.
    pub fn spi_target(&self, intid: u32) -> Option<usize> {
        let s = intid.checked_sub(NR_PRIVATE as u32)? as usize;
        self.routes.get(s)?.dest.map(usize::from)
    }

    /// Kicks discovered by [`Vgic::sync_lrs`] for other vCPUs; cleared by the call.
    #[inline]
    pub fn take_deferred_kicks(&mut self) -> VcpuMask {
        core::mem::take(&mut self.deferred_kicks)
    }

    /// A physical INTID the hypervisor must deactivate itself (GICv3 `ICC_DIR_EL1` /
    /// GICv2 `GICC_DIR`, or the physical GICD_ICACTIVER): the guest cleared the pending or
    /// active state of a HW-linked interrupt, so its EOI will never reach the physical one.
    /// A PPI must be deactivated on the pCPU the vCPU runs on. Poll after `mmio_write` and
    /// `sync_lrs` until `None`.
    #[inline]
    pub fn take_hw_deactivation(&mut self) -> Option<u32> {
        if self.hw_deactivation_words == 0 {
            return None;
        }
        let w = self.hw_deactivation_words.trailing_zeros() as usize;
        let bits = &mut self.hw_deactivations[w % 16];
        let b = bits.trailing_zeros();
        *bits &= bits.wrapping_sub(1);
        if *bits == 0 {
            self.hw_deactivation_words &= !(1 << w);
        }
        Some(w as u32 * 64 + b)
    }

    /// Software deactivation of forwarded interrupts: load them without the list register
    /// HW bit and with an EOI maintenance request instead; when the guest EOIs one, the
    /// exit's sync queues its physical INTID for [`Vgic::take_hw_deactivation`]. It costs
    /// one exit per forwarded interrupt. Use it where HW-bit deactivation is unreliable:
    /// QEMU 7.2's GICv2 model clears the physical active bit on a GICH_LR HW-bit
    /// deactivation without re-evaluating its physical CPU interface, so an interrupt that
    /// re-asserted meanwhile (a virtual timer reprogrammed in its own handler) is not
    /// signalled until some unrelated GIC event, never on a quiet uniprocessor VM (Linux
    /// hangs in its first `sleep`). The hypervisor's own deactivation write re-evaluates.
    pub fn set_software_deactivation(&mut self, on: bool) {
        self.sw_deactivate = on;
        self.dirty = VcpuMask::ALL;
    }

    fn queue_hw_deactivation(&mut self, pintid: u16) {
        let p = usize::from(pintid) % 1024;
        self.hw_deactivations[p / 64] |= 1 << (p % 64);
        self.hw_deactivation_words |= 1 << (p / 64);
    }

    // ---- shared state helpers ----

    /// Interrupt `id` as seen by vCPU `vcpu` (its own bank for SGIs/PPIs).
    fn irq(&self, vcpu: usize, id: u32) -> Option<&Irq> {
        if id < NR_PRIVATE as u32 {
            self.vcpus.get(vcpu)?.private.get(id as usize)
        } else {
            self.spis.get((id - NR_PRIVATE as u32) as usize)
        }
    }

    fn irq_mut(&mut self, vcpu: usize, id: u32) -> Option<&mut Irq> {
        if id < NR_PRIVATE as u32 {
            self.vcpus.get_mut(vcpu)?.private.get_mut(id as usize)
        } else {
            self.spis.get_mut((id - NR_PRIVATE as u32) as usize)
        }
    }

    /// The vCPU interrupt `id` (in `vcpu`'s view) is delivered to.
    fn target_of(&self, vcpu: usize, id: u32) -> Option<usize> {
        if id < NR_PRIVATE as u32 {
            Some(vcpu)
        } else {
            let r = self.routes.get((id - NR_PRIVATE as u32) as usize)?;
            r.dest.map(usize::from)
        }
    }

    fn group_enabled(&self, irq: &Irq) -> bool {
        if irq.group1 {
            self.enable_grp1
        } else {
            self.enable_grp0
        }
    }

    /// Pending and allowed through to the CPU interface.
    fn signalable(&self, irq: &Irq) -> bool {
        irq.pending && irq.enabled && self.group_enabled(irq)
    }

    fn live_spis(&self) -> impl Iterator<Item = usize> + '_ {
        self.spi_live
            .iter()
            .enumerate()
            .flat_map(|(w, &bits)| VcpuMask(bits).iter().map(move |b| w * 64 + b))
    }

    /// Records whether interrupt `id` (in `vcpu`'s view) is live in `spi_live` or the
    /// vCPU's `private_live`.
    fn track_live(&mut self, vcpu: usize, id: u32, live: bool) {
        if id >= NR_PRIVATE as u32 {
            let s = (id - NR_PRIVATE as u32) as usize;
            let (w, b) = (s / 64, s % 64);
            if live {
                self.spi_live[w] |= 1 << b;
            } else {
                self.spi_live[w] &= !(1 << b);
            }
        } else if let Some(st) = self.vcpus.get_mut(vcpu) {
            if live {
                st.private_live |= 1 << id;
            } else {
                st.private_live &= !(1 << id);
            }
        }
    }

    /// Book-keeping after interrupt `id` (in `vcpu`'s view) changed; returns who to kick.
    fn changed(&mut self, vcpu: usize, id: u32) -> VcpuMask {
        let Some(irq) = self.irq(vcpu, id).copied() else {
            return VcpuMask::EMPTY;
        };
        self.track_live(vcpu, id, irq.live());
        let mut kick = VcpuMask::EMPTY;
        if irq.in_lr {
            kick |= VcpuMask::single(irq.lr_vcpu.into());
        }
        if self.signalable(&irq) {
            if let Some(t) = self.target_of(vcpu, id) {
                kick |= VcpuMask::single(t);
            }
        }
        kick
    }

    /// SGI `intid` from `source` pending on `target`.
    fn set_private_pending(&mut self, target: usize, intid: u32, source: usize) -> VcpuMask {
        if target >= self.cfg.nr_vcpus || intid >= 16 {
            return VcpuMask::EMPTY;
        }
        if self.cfg.version == GicVersion::V2 {
            self.vcpus[target].sgi_sources[intid as usize] |= 1 << (source & 7);
        }
        self.vcpus[target].private[intid as usize].pending = true;
        self.changed(target, intid)
    }
}
