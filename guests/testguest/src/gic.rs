//! Just enough GICv2 / GICv3 to send an SGI to ourselves, take it, and time its EOI.

use core::arch::asm;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::cpu;
use crate::mmio;
use crate::platform::GicDesc;

/// The SGI the benchmarks send.
pub const BENCH_SGI: u32 = 1;
const SPURIOUS: u32 = 1023;

const GICD_CTLR: usize = 0x000;
const GICD_IIDR: usize = 0x008;
const GICD_ISENABLER: usize = 0x100;
const GICD_ICENABLER: usize = 0x180;
const GICD_IPRIORITYR: usize = 0x400;
const GICD_SGIR: usize = 0xf00;
const GICD_CTLR_RWP: u32 = 1 << 31;

const GICC_CTLR: usize = 0x00;
const GICC_PMR: usize = 0x04;
const GICC_IAR: usize = 0x0c;
const GICC_EOIR: usize = 0x10;

const GICR_WAKER: usize = 0x14;
const GICR_TYPER: usize = 0x08;
const GICR_SGI: usize = 0x1_0000;
const GICR_IGROUPR0: usize = GICR_SGI + 0x080;
const GICR_ISENABLER0: usize = GICR_SGI + 0x100;
const GICR_IPRIORITYR: usize = GICR_SGI + 0x400;

static VERSION: AtomicUsize = AtomicUsize::new(0);
static CPU_IF: AtomicUsize = AtomicUsize::new(0);
/// GICD (v2) or this CPU's redistributor (v3): where SGIs and PPIs are enabled.
static PRIVATE_BASE: AtomicUsize = AtomicUsize::new(0);

/// Counter value read first thing in the IRQ handler.
pub static IRQ_AT: AtomicU64 = AtomicU64::new(0);
/// Interrupts taken (spurious ones excluded).
pub static IRQS: AtomicU64 = AtomicU64::new(0);
/// Ticks spent in EOI writes, summed.
pub static EOI_TICKS: AtomicU64 = AtomicU64::new(0);

#[derive(Debug)]
pub enum GicError {
    NoRedistributor,
    RedistributorAsleep,
    DistributorBusy,
}

fn rd(addr: usize) -> u32 {
    // SAFETY: callers pass GIC register addresses from the DTB, mapped as Device memory.
    unsafe { mmio::read32(addr) }
}

fn wr(addr: usize, v: u32) {
    // SAFETY: as in `rd`.
    unsafe { mmio::write32(addr, v) }
}

fn rd64(addr: usize) -> u64 {
    // SAFETY: as in `rd`; GICR_TYPER is 64 bits wide.
    unsafe { mmio::read64(addr) }
}

fn wait_rwp(dist: usize) -> Result<(), GicError> {
    for _ in 0..1_000_000 {
        if rd(dist + GICD_CTLR) & GICD_CTLR_RWP == 0 {
            return Ok(());
        }
    }
    Err(GicError::DistributorBusy)
}

/// Finds this CPU's redistributor by its affinity in GICR_TYPER.
fn find_redist(base: usize) -> Result<usize, GicError> {
    let mpidr = cpu::mpidr();
    let aff = (mpidr & 0xff_ffff) | ((mpidr >> 32) & 0xff) << 24;
    let mut rd_base = base;
    for _ in 0..256 {
        let typer = rd64(rd_base + GICR_TYPER);
        if typer >> 32 == aff {
            return Ok(rd_base);
        }
        if typer & (1 << 4) != 0 {
            break;
        }
        // Two 64 KiB frames, four with virtual LPI support.
        rd_base += if typer & (1 << 1) != 0 {
            0x4_0000
        } else {
            0x2_0000
        };
    }
    Err(GicError::NoRedistributor)
}

/// Enables the distributor, this CPU's interface and the benchmark SGI.
pub fn init(desc: GicDesc) -> Result<(), GicError> {
    match desc {
        GicDesc::V2 { dist, cpu } => {
            wr(dist + GICD_CTLR, 1);
            wr(dist + GICD_ISENABLER, 1 << BENCH_SGI);
            wr(
                dist + GICD_IPRIORITYR + (BENCH_SGI as usize & !3),
                0x8080_8080,
            );
            wr(cpu + GICC_PMR, 0xff);
            wr(cpu + GICC_CTLR, 1);
            CPU_IF.store(cpu, Ordering::SeqCst);
            PRIVATE_BASE.store(dist, Ordering::SeqCst);
            VERSION.store(2, Ordering::SeqCst);
        }
        GicDesc::V3 { dist, redist } => {
            // ARE plus both group enables: the same bits in the secure-disabled and NS views.
            wr(dist + GICD_CTLR, (1 << 4) | (1 << 1) | 1);
            wait_rwp(dist)?;
            let r = find_redist(redist)?;
            wr(r + GICR_WAKER, rd(r + GICR_WAKER) & !(1 << 1));
            let mut awake = false;
            for _ in 0..1_000_000 {
                if rd(r + GICR_WAKER) & (1 << 2) == 0 {
                    awake = true;
                    break;
                }
            }
            if !awake {
                return Err(GicError::RedistributorAsleep);
            }
            wr(r + GICR_IGROUPR0, u32::MAX);
            wr(r + GICR_IPRIORITYR + (BENCH_SGI as usize & !3), 0x8080_8080);
            wr(r + GICR_ISENABLER0, 1 << BENCH_SGI);
            // SAFETY: enabling the system register interface and group 1 at EL1; ICC_SRE_EL1
            // is writable here (no EL3, or EL2 set ICC_SRE_EL2.Enable).
            unsafe {
                asm!(
                    "mrs {t}, icc_sre_el1",
                    "orr {t}, {t}, #1",
                    "msr icc_sre_el1, {t}",
                    "isb",
                    "mov {t}, #0xff",
                    "msr icc_pmr_el1, {t}",
                    "msr icc_bpr1_el1, xzr",
                    "mov {t}, #1",
                    "msr icc_igrpen1_el1, {t}",
                    "isb",
                    t = out(reg) _,
                );
            }
            PRIVATE_BASE.store(r + GICR_SGI, Ordering::SeqCst);
            VERSION.store(3, Ordering::SeqCst);
        }
    }
    Ok(())
}

/// Enables a PPI (16-31) on this CPU, group 1, middle priority. Needs `init` first.
pub fn enable_ppi(intid: u32) {
    debug_assert!((16..32).contains(&intid));
    // GICD (v2) and the redistributor's SGI frame (v3) share these offsets.
    let base = PRIVATE_BASE.load(Ordering::SeqCst);
    let prio = base + GICD_IPRIORITYR + (intid as usize & !3);
    let shift = 8 * (intid & 3);
    wr(prio, (rd(prio) & !(0xff << shift)) | (0x80 << shift));
    wr(base + GICD_ISENABLER, 1 << intid);
}

const GICD_IGROUPR: usize = 0x080;
const GICD_ITARGETSR: usize = 0x800;
const GICD_IROUTER: usize = 0x6000;

/// Enables SPI `intid` at the distributor `dist`, group 1 (v3) / 0 (v2, like the rest of
/// this guest), middle priority, routed to this CPU (vCPU 0).
pub fn enable_spi(dist: usize, intid: u32) {
    let n = intid as usize;
    let prio = dist + GICD_IPRIORITYR + (n & !3);
    let shift = 8 * (intid & 3);
    wr(prio, (rd(prio) & !(0xff << shift)) | (0x80 << shift));
    if VERSION.load(Ordering::SeqCst) == 3 {
        let g = dist + GICD_IGROUPR + n / 32 * 4;
        wr(g, rd(g) | 1 << (n % 32));
        // SAFETY: GICD_IROUTER<n> is a 64-bit register of the mapped distributor.
        unsafe { core::ptr::write_volatile((dist + GICD_IROUTER + 8 * n) as *mut u64, 0) };
    } else {
        let t = dist + GICD_ITARGETSR + (n & !3);
        wr(t, (rd(t) & !(0xff << shift)) | (1 << shift));
    }
    wr(dist + GICD_ISENABLER + n / 32 * 4, 1 << (n % 32));
}

/// Polls the CPU interface (interrupts masked at the CPU) for up to `ticks` counter ticks:
/// the INTID acknowledged, ended at once; `None` if nothing came.
pub fn poll_ack(ticks: u64) -> Option<u32> {
    let end = cpu::counter() + ticks;
    while cpu::counter() < end {
        let iar = ack();
        if iar & 0x3ff != SPURIOUS {
            eoi(iar);
            return Some(iar & 0x3ff);
        }
    }
    None
}

/// Disables a PPI enabled with `enable_ppi`.
pub fn disable_ppi(intid: u32) {
    let base = PRIVATE_BASE.load(Ordering::SeqCst);
    wr(base + GICD_ICENABLER, 1 << intid);
}

/// GICD_IIDR: a distributor register read, which a hypervisor emulates.
pub fn read_dist_iidr(dist: usize) -> u32 {
    rd(dist + GICD_IIDR)
}

/// Sends the benchmark SGI to this CPU only.
#[inline(always)]
pub fn send_self_sgi(dist: usize) {
    if VERSION.load(Ordering::Relaxed) == 3 {
        let m = cpu::mpidr();
        let v = ((m >> 32) & 0xff) << 48
            | ((m >> 16) & 0xff) << 32
            | u64::from(BENCH_SGI) << 24
            | ((m >> 8) & 0xff) << 16
            | 1 << (m & 0xf);
        // SAFETY: ICC_SGI1R_EL1 is enabled by `init`.
        unsafe { asm!("msr icc_sgi1r_el1, {}", "isb", in(reg) v) };
    } else {
        // TargetListFilter 0b10: this CPU.
        wr(dist + GICD_SGIR, (2 << 24) | BENCH_SGI);
    }
}

fn ack() -> u32 {
    if VERSION.load(Ordering::Relaxed) == 3 {
        let v: u64;
        // SAFETY: acknowledging the interrupt being handled.
        unsafe { asm!("mrs {}, icc_iar1_el1", out(reg) v) };
        v as u32
    } else {
        rd(CPU_IF.load(Ordering::Relaxed) + GICC_IAR)
    }
}

fn eoi(iar: u32) {
    if VERSION.load(Ordering::Relaxed) == 3 {
        // SAFETY: ending the interrupt acknowledged by `ack`.
        unsafe { asm!("msr icc_eoir1_el1, {}", "isb", in(reg) u64::from(iar)) };
    } else {
        wr(CPU_IF.load(Ordering::Relaxed) + GICC_EOIR, iar);
    }
}

/// Acknowledges and ends every interrupt pending at the CPU interface, as a handler would,
/// with interrupts still masked at the CPU (a polling loop that saw its timer fire).
pub fn drain_pending() {
    loop {
        let iar = ack();
        if iar & 0x3ff == SPURIOUS {
            return;
        }
        eoi(iar);
    }
}

/// The IRQ vector's handler.
pub fn handle_irq() {
    let at = cpu::counter();
    let iar = ack();
    if iar & 0x3ff == SPURIOUS {
        return;
    }
    IRQ_AT.store(at, Ordering::SeqCst);
    let t0 = cpu::counter();
    eoi(iar);
    let t1 = cpu::counter();
    EOI_TICKS.fetch_add(t1 - t0, Ordering::SeqCst);
    IRQS.fetch_add(1, Ordering::SeqCst);
}
