//! The physical GIC as the hypervisor drives it once VM0 gets a virtual one: every physical
//! interrupt is taken at EL2 (HCR_EL2.IMO/FMO), acknowledged with split priority drop and
//! deactivation (EOImode 1), and forwarded to the vGIC; the hardware deactivates forwarded
//! interrupts when the guest EOIs them (HW list registers).

use core::ptr::{read_volatile, write_volatile};

use crate::board::{GicInfo, GicVersion};

/// SGI the hypervisor sends to make another pCPU exit its guest and refill its list registers.
pub const KICK_SGI: u32 = 0;
/// PPIs forwarded to the vCPU running on the pCPU: PMU, virtual and EL1 physical timer.
pub const FORWARDED_PPIS: [u32; 3] = [23, 27, 30];
/// The maintenance interrupt (list register underflow): the exit itself refills them.
pub const MAINTENANCE_PPI: u32 = 25;
const PRIO: u8 = 0xa0;
/// Hypervisor-internal interrupts preempt forwarded ones.
const PRIO_HYP: u8 = 0x20;

fn rd(a: u64) -> u32 {
    // SAFETY: callers pass registers of the GIC frames the DT names, mapped Device at EL2.
    unsafe { read_volatile(a as *const u32) }
}

fn wr(a: u64, v: u32) {
    // SAFETY: as in `rd`.
    unsafe { write_volatile(a as *mut u32, v) }
}

fn wr8(a: u64, v: u8) {
    // SAFETY: as in `rd`; IPRIORITYR and ITARGETSR are byte accessible.
    unsafe { write_volatile(a as *mut u8, v) }
}

fn rd64(a: u64) -> u64 {
    // SAFETY: as in `rd`; GICR_TYPER is a 64-bit register.
    unsafe { read_volatile(a as *const u64) }
}

fn wr64(a: u64, v: u64) {
    // SAFETY: as in `rd`; GICD_IROUTER<n> is a 64-bit register.
    unsafe { write_volatile(a as *mut u64, v) }
}

const GICD_CTLR: u64 = 0x0;
const GICD_TYPER: u64 = 0x4;
const GICD_IGROUPR: u64 = 0x80;
const GICD_ISENABLER: u64 = 0x100;
const GICD_ICENABLER: u64 = 0x180;
const GICD_IPRIORITYR: u64 = 0x400;
const GICD_ITARGETSR: u64 = 0x800;
const GICD_SGIR: u64 = 0xf00;
const GICD_IROUTER: u64 = 0x6000;
const GICR_TYPER: u64 = 0x8;
const GICR_WAKER: u64 = 0x14;
const GICR_SGI: u64 = 0x1_0000;
const GICC_CTLR: u64 = 0x0;
const GICC_PMR: u64 = 0x4;
const GICC_IAR: u64 = 0xc;
const GICC_EOIR: u64 = 0x10;
const GICC_DIR: u64 = 0x1000;

/// Number of interrupt IDs the distributor implements (SGIs and PPIs included).
pub fn nr_irqs(gic: &GicInfo) -> u32 {
    ((rd(gic.dist.base + GICD_TYPER) & 0x1f) + 1)
        .saturating_mul(32)
        .min(1020)
}

/// Distributor set-up, once, on the boot CPU: every SPI group 1, enabled, routed to `boot_mpidr`
/// (GICv3) or CPU interface `boot_if` (GICv2). Devices VM0 does not drive stay quiet.
pub fn init_dist(gic: &GicInfo, boot_mpidr: u64) {
    let d = gic.dist.base;
    let n = nr_irqs(gic);
    wr(d + GICD_CTLR, 0);
    if gic.version == GicVersion::V3 {
        while rd(d + GICD_CTLR) & (1 << 31) != 0 {}
    }
    let boot_if = if gic.version == GicVersion::V2 {
        rd(d + GICD_ITARGETSR) & 0xff
    } else {
        0
    };
    // GICv3: group 1 (the only group EL2 handles through ICC_*1 registers). GICv2 without
    // security extensions: group 0, signalled as IRQ with GICC_CTLR.EnableGrp0/EOImodeS.
    let group = if gic.version == GicVersion::V3 {
        0xffff_ffff
    } else {
        0
    };
    for i in (32..n).step_by(32) {
        wr(d + GICD_IGROUPR + u64::from(i / 32) * 4, group);
        wr(d + GICD_ICENABLER + u64::from(i / 32) * 4, 0xffff_ffff);
    }
    for i in 32..n {
        wr8(d + GICD_IPRIORITYR + u64::from(i), PRIO);
        match gic.version {
            GicVersion::V3 => wr64(
                d + GICD_IROUTER + 8 * u64::from(i),
                boot_mpidr & 0xff_00ff_ffff,
            ),
            GicVersion::V2 => wr8(d + GICD_ITARGETSR + u64::from(i), boot_if as u8),
        }
    }
    match gic.version {
        // ARE, EnableGrp1, EnableGrp0 (single security state as QEMU's virt has it).
        GicVersion::V3 => {
            wr(d + GICD_CTLR, (1 << 4) | 0x3);
            while rd(d + GICD_CTLR) & (1 << 31) != 0 {}
        }
        GicVersion::V2 => wr(d + GICD_CTLR, 0x3),
    }
    for i in (32..n).step_by(32) {
        wr(d + GICD_ISENABLER + u64::from(i / 32) * 4, 0xffff_ffff);
    }
}

/// This CPU's redistributor (GICv3), found by its affinity.
fn redist_of(gic: &GicInfo, mpidr: u64) -> Option<u64> {
    let aff = ((mpidr >> 32 & 0xff) << 24) | (mpidr & 0xff_ffff);
    let mut rd_base = gic.redist.base;
    while rd_base + 0x2_0000 <= gic.redist.end() {
        let typer = rd64(rd_base + GICR_TYPER);
        if typer >> 32 == aff {
            return Some(rd_base);
        }
        if typer & (1 << 4) != 0 {
            return None;
        }
        rd_base += 0x2_0000;
    }
    None
}

/// Per-CPU set-up: SGIs/PPIs (the hypervisor's own: the kick SGI, the maintenance interrupt
/// and the EL2 timer `hyp_timer`), the CPU interface with EOImode 1, and the virtual CPU
/// interface. Returns false if this CPU's redistributor cannot be found.
pub fn init_cpu(gic: &GicInfo, mpidr: u64, hyp_timer: u32) -> bool {
    let hyp_irqs = (1u32 << KICK_SGI) | (1 << 25) | (1u32 << (hyp_timer & 31));
    let fwd: u32 = FORWARDED_PPIS.iter().fold(0, |m, &p| m | 1 << p);
    match gic.version {
        GicVersion::V3 => {
            let Some(r) = redist_of(gic, mpidr) else {
                return false;
            };
            wr(r + GICR_WAKER, rd(r + GICR_WAKER) & !0x2);
            while rd(r + GICR_WAKER) & 0x4 != 0 {}
            let sgi = r + GICR_SGI;
            wr(sgi + GICD_ICENABLER, 0xffff_ffff);
            wr(sgi + GICD_IGROUPR, 0xffff_ffff);
            for i in 0..32u64 {
                let p = if hyp_irqs & (1 << i) != 0 {
                    PRIO_HYP
                } else {
                    PRIO
                };
                wr8(sgi + GICD_IPRIORITYR + i, p);
            }
            wr(sgi + GICD_ISENABLER, hyp_irqs | fwd);
            write_sysreg!("S3_0_C4_C6_0", 0xff); // ICC_PMR_EL1
            write_sysreg!("S3_0_C12_C12_3", 0); // ICC_BPR1_EL1
            let ctlr = read_sysreg!("S3_0_C12_C12_4"); // ICC_CTLR_EL1
            write_sysreg!("S3_0_C12_C12_4", ctlr | 0x2); // EOImode: drop and deactivate apart
            write_sysreg!("S3_0_C12_C12_7", 1); // ICC_IGRPEN1_EL1
            super::regs::isb();
            crate::vgic::hw_v3::enable_virtual_cpu_interface();
            crate::vgic::reset_lrs(&mut crate::vgic::hw_v3::IchListRegs);
        }
        GicVersion::V2 => {
            let d = gic.dist.base;
            wr(d + GICD_ICENABLER, 0xffff_ffff);
            wr(d + GICD_IGROUPR, 0);
            for i in 0..32u64 {
                let p = if hyp_irqs & (1 << i) != 0 {
                    PRIO_HYP
                } else {
                    PRIO
                };
                wr8(d + GICD_IPRIORITYR + i, p);
            }
            wr(d + GICD_ISENABLER, hyp_irqs | fwd);
            let c = gic.cpu.base;
            wr(c + GICC_PMR, 0xff);
            wr(c + GICC_CTLR, 1 | (1 << 9)); // EnableGrp0, EOImodeS (split EOI for group 0)
            let mut lrs = crate::vgic::hw_v2::GichListRegs {
                base: gic.hyp.base as usize,
            };
            lrs.enable();
            crate::vgic::reset_lrs(&mut lrs);
        }
    }
    true
}

/// Acknowledges the highest-priority pending interrupt; `None` if spurious.
pub fn ack(gic: &GicInfo) -> Option<u32> {
    let iar = match gic.version {
        GicVersion::V3 => read_sysreg!("S3_0_C12_C12_0") as u32, // ICC_IAR1_EL1
        GicVersion::V2 => rd(gic.cpu.base + GICC_IAR),
    };
    (iar & 0x3ff < 1020).then_some(iar)
}

/// Priority drop (the interrupt stays active).
pub fn eoi(gic: &GicInfo, iar: u32) {
    match gic.version {
        GicVersion::V3 => write_sysreg!("S3_0_C12_C12_1", u64::from(iar)), // ICC_EOIR1_EL1
        GicVersion::V2 => wr(gic.cpu.base + GICC_EOIR, iar),
    }
}

pub fn deactivate(gic: &GicInfo, iar: u32) {
    match gic.version {
        GicVersion::V3 => write_sysreg!("S3_0_C12_C11_1", u64::from(iar)), // ICC_DIR_EL1
        GicVersion::V2 => wr(gic.cpu.base + GICC_DIR, iar),
    }
}

/// Sends SGI `intid` to the pCPU with affinity `mpidr` (GICv3) / CPU interface `cpu` (GICv2).
pub fn send_sgi(gic: &GicInfo, intid: u32, mpidr: u64, cpu: usize) {
    match gic.version {
        GicVersion::V3 => {
            let aff0 = mpidr & 0xff;
            let v = ((mpidr >> 32 & 0xff) << 48)
                | ((mpidr >> 16 & 0xff) << 32)
                | ((aff0 >> 4) << 44)
                | (u64::from(intid & 0xf) << 24)
                | ((mpidr >> 8 & 0xff) << 16)
                | (1 << (aff0 & 0xf));
            super::regs::dsb_ish();
            write_sysreg!("S3_0_C12_C11_5", v); // ICC_SGI1R_EL1
            super::regs::isb();
        }
        GicVersion::V2 => {
            super::regs::dsb_ish();
            wr(
                gic.dist.base + GICD_SGIR,
                (1 << (16 + (cpu & 7))) | (intid & 0xf),
            );
        }
    }
}
