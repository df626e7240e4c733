//! Runs the vGIC's hardware backends (`vgic::hw_v3` on GICv3, `vgic::hw_v2` on GICv2)
//! against QEMU's GIC models at EL2, with a tiny EL1 guest that acknowledges and EOIs what
//! the list registers present. The GIC version is whatever QEMU was started with; it needs
//! `-smp 2` (CPU 1 runs vCPU 1 for the `kick` check).
//!
//! Checks (each prints `VGIC-HW: <name>: PASS|FAIL ...`):
//! * `lr-encodings`: the vGIC's list-register values and the empty/maintenance status
//!   registers (ELRSR, MISR, EISR) agree with the hardware (underflow with one valid
//!   entry, EOI maintenance, empty status);
//! * `priority-order`: ten SPIs through four list registers arrive highest priority first,
//!   refilled at each exit, with the underflow interrupt requested while they overflow;
//! * `maintenance-refill`: ten more, but the list registers are refilled only from the
//!   physical maintenance interrupt (PPI 25, underflow) taken at EL2 while the guest runs;
//! * `cpuif-state`: the guest's VMCR/APRs survive a save, restore of other values, restore;
//! * `hw-deactivate`: a virtual SPI linked to an active physical SPI is deactivated
//!   physically by the guest's EOI;
//! * `kick`: with a second CPU running vCPU 1 in WFI, an SPI routed to vCPU 1 comes back
//!   from `inject` as a kick for vCPU 1; a physical SGI makes CPU 1 exit, sync and flush,
//!   and its guest takes the SPI (the VM lock of the vGIC contract is a spin lock here);
//! * `sgi`: on v3 the guest writes ICC_SGI1R_EL1, the write traps to EL2 (HCR_EL2.IMO),
//!   `vgic::sgi1r_write_rt` recognizes it and the SGI comes back to the guest; on v2 an
//!   SGI sent by vCPU 1 through GICD_SGIR reaches the guest with CPU 1 in GICV_IAR.
#![no_std]
#![no_main]

mod boot;
mod phys_gic;
mod pl011;
mod sysreg;

#[allow(dead_code)]
#[path = "../../mod.rs"]
mod vgic;

extern crate alloc;

use alloc::vec::Vec;
use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use sysreg::{mrs, msr};
use vgic::hw_v2::{GichListRegs, VcpuIfState as GichIfState};
use vgic::hw_v3::{enable_virtual_cpu_interface, IchListRegs, VcpuIfState};
use vgic::lr::{encode_v2, encode_v3, Lr, LrState};
use vgic::{reset_lrs, sgi1r_write_rt, GicVersion, ListRegs, Vgic, VgicConfig};

const VGICD: u64 = 0x0800_0000;
const VGICR: u64 = 0x080a_0000;
/// QEMU virt's GICv2 virtual interface control frame.
const GICH: usize = 0x0803_0000;
const CHECKS: u32 = 7;
/// The SPI injected for vCPU 1 on the second CPU, which must be kicked to see it.
const KICK_SPI: u32 = 33;
/// Priorities of the ten SPIs of a batch: their order is not the INTID order.
const PRIOS: [u8; 10] = [0x90, 0x10, 0x80, 0x20, 0x70, 0x30, 0x60, 0x40, 0x50, 0x00];
/// The virtual SPI linked to physical SPI 40.
const HW_VIRQ: u32 = 45;
const SGI: u32 = 2;

/// A bump allocator: the vGIC allocates only in `new`.
struct Bump {
    arena: UnsafeCell<[u8; 1 << 18]>,
    next: UnsafeCell<usize>,
}

// SAFETY: one CPU, and EL2 never re-enters itself.
unsafe impl Sync for Bump {}

// SAFETY: hands out disjoint, aligned ranges of the arena; never frees.
unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let base = self.arena.get() as usize;
        let start = (base + *self.next.get() + l.align() - 1) & !(l.align() - 1);
        if start + l.size() > base + (1 << 18) {
            return core::ptr::null_mut();
        }
        *self.next.get() = start + l.size() - base;
        start as *mut u8
    }
    unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}
}

#[global_allocator]
static HEAP: Bump = Bump {
    arena: UnsafeCell::new([0; 1 << 18]),
    next: UnsafeCell::new(0),
};

/// The list registers of whichever GIC this is.
enum AnyLrs {
    V3(IchListRegs),
    V2(GichListRegs),
}

impl ListRegs for AnyLrs {
    fn count(&self) -> usize {
        match self {
            AnyLrs::V3(l) => l.count(),
            AnyLrs::V2(l) => l.count(),
        }
    }
    fn read(&self, i: usize) -> u64 {
        match self {
            AnyLrs::V3(l) => l.read(i),
            AnyLrs::V2(l) => l.read(i),
        }
    }
    fn write(&mut self, i: usize, v: u64) {
        match self {
            AnyLrs::V3(l) => l.write(i, v),
            AnyLrs::V2(l) => l.write(i, v),
        }
    }
    fn elrsr(&self) -> u64 {
        match self {
            AnyLrs::V3(l) => l.elrsr(),
            AnyLrs::V2(l) => l.elrsr(),
        }
    }
    fn set_underflow_irq(&mut self, on: bool) {
        match self {
            AnyLrs::V3(l) => l.set_underflow_irq(on),
            AnyLrs::V2(l) => l.set_underflow_irq(on),
        }
    }
}

impl AnyLrs {
    fn v3(&self) -> bool {
        matches!(self, AnyLrs::V3(_))
    }
    fn encode(&self, lr: &Lr) -> u64 {
        match self {
            AnyLrs::V3(_) => encode_v3(lr),
            AnyLrs::V2(_) => u64::from(encode_v2(lr)),
        }
    }
    /// (MISR, EISR) of the virtual interface control.
    fn misr_eisr(&self) -> (u64, u64) {
        match self {
            AnyLrs::V3(_) => (mrs!("S3_4_C12_C11_2"), mrs!("S3_4_C12_C11_3")),
            AnyLrs::V2(l) => {
                // SAFETY: GICH_MISR and GICH_EISR0 in QEMU virt's GICH frame.
                unsafe {
                    (
                        u64::from(core::ptr::read_volatile((l.base + 0x10) as *const u32)),
                        u64::from(core::ptr::read_volatile((l.base + 0x20) as *const u32)),
                    )
                }
            }
        }
    }
    fn uie(&self) -> bool {
        match self {
            AnyLrs::V3(_) => mrs!("S3_4_C12_C11_0") & 0x2 != 0, // ICH_HCR_EL2.UIE
            // SAFETY: GICH_HCR in QEMU virt's GICH frame.
            AnyLrs::V2(l) => unsafe { core::ptr::read_volatile(l.base as *const u32) & 0x2 != 0 },
        }
    }
}

#[derive(PartialEq, Eq)]
enum Phase {
    Priority,
    Maintenance,
    Hw,
    Sgi,
}

struct Harness {
    vgic: Vgic,
    lrs: AnyLrs,
    phase: Phase,
    seen: Vec<u32>,
    want: Vec<u32>,
    uie_requested: bool,
    /// Maintenance interrupts taken at EL2.
    maintenance_irqs: u32,
    /// The guest's ICC_SGI1R_EL1 write trapped to EL2 (v3).
    sgi1r_trapped: bool,
    /// The single-CPU checks are done: CPU 0 goes on with the cross-CPU kick.
    kick_next: bool,
    passed: u32,
}

struct Global(UnsafeCell<Option<Harness>>);
// SAFETY: EL2 never re-enters itself, and the two CPUs take LOCK around every use.
unsafe impl Sync for Global {}
static STATE: Global = Global(UnsafeCell::new(None));
/// The VM lock the vGIC contract asks for. (Exclusives with the MMU off are fine on QEMU;
/// real hardware would want the MMU on.)
static LOCK: AtomicBool = AtomicBool::new(false);
/// The second CPU runs vCPU 1.
static CPU1_UP: AtomicBool = AtomicBool::new(false);
/// INTID + 1 of what vCPU 1's guest took.
static KICK_GOT: AtomicU32 = AtomicU32::new(0);

fn lock() {
    while LOCK
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        core::hint::spin_loop();
    }
}

fn unlock() {
    LOCK.store(false, Ordering::Release);
}

fn state() -> &'static mut Harness {
    // SAFETY: set once in el2_main before any guest runs; callers hold LOCK.
    unsafe { (*STATE.0.get()).as_mut().expect("harness state") }
}

/// This CPU's index (Aff0; QEMU virt numbers CPUs 0, 1, ...).
fn cpu() -> usize {
    (mrs!("mpidr_el1") & 0xff) as usize
}

/// Spins until `done`, or gives up after 10 s of counter time (a safety net for a hung
/// CPU, not a performance bound: the waits take microseconds).
fn wait_for(done: impl Fn() -> bool) -> bool {
    let start = mrs!("cntpct_el0");
    let limit = mrs!("cntfrq_el0") * 10;
    while mrs!("cntpct_el0").wrapping_sub(start) < limit {
        if done() {
            return true;
        }
        core::hint::spin_loop();
    }
    done()
}

fn check(h: &mut Harness, name: &str, ok: bool, detail: core::fmt::Arguments) {
    if ok {
        h.passed += 1;
        println!("VGIC-HW: {}: PASS {}", name, detail);
    } else {
        println!("VGIC-HW: {}: FAIL {}", name, detail);
    }
}

fn power_off() -> ! {
    // PSCI SYSTEM_OFF; QEMU's conduit is SMC when EL2 exists and EL3 does not.
    // SAFETY: hands the machine back to QEMU.
    unsafe { core::arch::asm!("smc #0", in("x0") 0x8400_0008u64, options(noreturn)) }
}

/// The hardware's view of list-register state, compared with what the vGIC's fake assumes.
fn probe_lrs(lrs: &mut AnyLrs) -> bool {
    let n = lrs.count();
    let pending = |id| Lr {
        vintid: id,
        priority: 0x80,
        group1: lrs.v3(),
        state: LrState::Pending,
        ..Lr::default()
    };
    let (p50, p51) = (lrs.encode(&pending(50)), lrs.encode(&pending(51)));
    reset_lrs(lrs);
    let all_empty = lrs.elrsr() & ((1 << n) - 1) == (1 << n) - 1;
    lrs.write(0, p50);
    lrs.set_underflow_irq(true);
    let misr_u1 = lrs.misr_eisr().0 & 0x2 != 0; // MISR.U with one valid entry
    let back = lrs.read(0) == p50;
    lrs.write(1, p51);
    let misr_u2 = lrs.misr_eisr().0 & 0x2 != 0; // two valid: no underflow
    let elrsr = lrs.elrsr() & 0b11 == 0;
    reset_lrs(lrs);
    let eoi = lrs.encode(&Lr {
        vintid: 52,
        eoi_maint: true,
        ..Lr::default()
    });
    lrs.write(0, eoi);
    let (misr, eisr) = lrs.misr_eisr();
    let misr_eoi = misr & 0x1 != 0; // MISR.EOI
    let eisr = eisr & 0x1 != 0;
    let not_empty = lrs.elrsr() & 1 == 0;
    reset_lrs(lrs);
    let ok = all_empty && misr_u1 && back && !misr_u2 && elrsr && misr_eoi && eisr && not_empty;
    if !ok {
        println!(
            "VGIC-HW: probe: empty={all_empty} u1={misr_u1} readback={back} u2={misr_u2} \
             elrsr={elrsr} eoi={misr_eoi} eisr={eisr} eoi-not-empty={not_empty}"
        );
    }
    ok
}

/// Saves the guest's virtual CPU interface state, loads a different one, reads it back,
/// restores the guest's: what a pCPU switching vCPUs does between sync and flush.
fn cpuif_state_roundtrip(lrs: &AnyLrs) -> bool {
    match lrs {
        AnyLrs::V3(_) => {
            let mut guest = VcpuIfState::default();
            guest.save();
            let other = VcpuIfState {
                vmcr: 0,
                ap0r: [0; 4],
                ap1r: [1 << 3, 0, 0, 0],
            };
            other.restore();
            let mut back = VcpuIfState::default();
            back.save();
            guest.restore();
            let mut again = VcpuIfState::default();
            again.save();
            // The guest set its PMR (VMCR.VPMR, bits 31:24); the binary points of the other
            // state clamp to their minimums, so only VPMR is compared.
            guest.vmcr >> 24 != 0
                && back.vmcr >> 24 == 0
                && back.ap1r[0] == 1 << 3
                && again.vmcr == guest.vmcr
                && again.ap1r == guest.ap1r
        }
        AnyLrs::V2(l) => {
            let guest = l.save();
            l.restore(&GichIfState {
                vmcr: 0,
                apr: 1 << 3,
            });
            let back = l.save();
            l.restore(&guest);
            let again = l.save();
            guest.vmcr >> 24 != 0
                && back.vmcr >> 24 == 0
                && back.apr == 1 << 3
                && again.vmcr == guest.vmcr
                && again.apr == guest.apr
        }
    }
}

/// Programs the virtual distributor (and redistributor) as a Linux guest would.
fn guest_gic_setup(g: &mut Vgic, v3: bool) {
    let w = |g: &mut Vgic, a: u64, s: u8, v: u64| {
        g.mmio_write(0, a, s, v).expect("valid vGIC access");
    };
    if v3 {
        w(g, VGICR + 0x14, 4, 0);
        w(g, VGICR + 0x1_0080, 4, 0xffff_ffff);
        w(g, VGICR + 0x1_0100, 4, 1 << SGI);
        w(g, VGICR + 0x1_0400 + u64::from(SGI), 1, 0x10);
        w(g, VGICD + 0x84, 4, 0xffff_ffff);
        w(g, VGICD + 0x104, 4, 0xffff_ffff);
        w(g, VGICD, 4, 0x12);
    } else {
        // Group 0 throughout, as Linux' GICv2 driver leaves it; SPIs to CPU 0.
        w(g, VGICD + 0x100, 4, 1 << SGI);
        w(g, VGICD + 0x400 + u64::from(SGI), 1, 0x10);
        for i in (32..64).step_by(4) {
            w(g, VGICD + 0x800 + i, 4, 0x0101_0101);
        }
        w(g, VGICD + 0x104, 4, 0xffff_ffff);
        w(g, VGICD, 4, 0x1);
    }
}

#[no_mangle]
extern "C" fn el2_main() -> ! {
    // ID_AA64PFR0_EL1.GIC: GICv3 system registers present?
    let v3 = (mrs!("S3_0_C0_C4_0") >> 24) & 0xf != 0;
    println!("VGIC-HW: start (GICv{})", if v3 { 3 } else { 2 });
    if v3 {
        msr!("S3_4_C12_C9_5", 0xf); // ICC_SRE_EL2: SRE, DFB, DIB, Enable (EL1 may use SRE)
    }
    msr!("S3_4_C1_C1_0", (1 << 31) | (1 << 4) | (1 << 3)); // HCR_EL2: RW, IMO, FMO
    phys_gic::init(v3);
    let lrs = if v3 {
        enable_virtual_cpu_interface();
        AnyLrs::V3(IchListRegs)
    } else {
        let l = GichListRegs { base: GICH };
        l.enable();
        AnyLrs::V2(l)
    };
    let mut vgic = Vgic::new(VgicConfig {
        version: if v3 { GicVersion::V3 } else { GicVersion::V2 },
        nr_vcpus: 2,
        nr_spis: 64,
        dist_base: VGICD,
        redist_base: VGICR,
    });
    guest_gic_setup(&mut vgic, v3);

    // SAFETY: nothing else runs yet.
    unsafe {
        *STATE.0.get() = Some(Harness {
            vgic,
            lrs,
            phase: Phase::Priority,
            seen: Vec::new(),
            want: Vec::new(),
            uie_requested: false,
            sgi1r_trapped: false,
            kick_next: false,
            maintenance_irqs: 0,
            passed: 0,
        })
    };
    let h = state();
    let ok = probe_lrs(&mut h.lrs);
    let n = h.lrs.count();
    check(h, "lr-encodings", ok, format_args!("({n} list registers)"));

    // The second CPU will run vCPU 1 (PSCI CPU_ON, SMC conduit on QEMU without EL3).
    let entry = boot::_start_secondary as *const () as u64;
    let on: i64;
    // SAFETY: PSCI call; the entry point and its stack are part of this image.
    unsafe {
        core::arch::asm!("smc #0", inout("x0") 0xc400_0003u64 => on, in("x1") 1u64,
            in("x2") entry, in("x3") 0u64, options(nostack))
    };
    if on != 0 {
        println!("VGIC-HW: PSCI CPU_ON of CPU 1 failed: {on}");
    }

    h.want = inject_batch(&mut h.vgic, 32);
    h.vgic.flush_lrs(0, &mut h.lrs);
    h.uie_requested = h.lrs.uie();
    let entry = if v3 {
        boot::guest_entry as *const () as usize
    } else {
        boot::guest_entry_v2 as *const () as usize
    };
    // SAFETY: the guest code and stack are part of this image.
    unsafe { boot::enter_guest(entry, core::ptr::addr_of!(boot::__guest_stack_top) as usize) }
}

/// Injects SPIs `first..first + 10` with [`PRIOS`]; returns the order they must arrive in.
fn inject_batch(g: &mut Vgic, first: u32) -> Vec<u32> {
    for (k, &p) in PRIOS.iter().enumerate() {
        let id = first + k as u32;
        g.mmio_write(0, VGICD + 0x400 + u64::from(id), 1, p.into())
            .expect("prio");
        g.inject(id, None, None);
    }
    let mut want: Vec<u32> = (first..first + 10).collect();
    want.sort_by_key(|&id| PRIOS[(id - first) as usize]);
    want
}

/// CPU 1: set up its share of the GIC, then run vCPU 1's guest, which just waits.
#[no_mangle]
extern "C" fn el2_secondary_main() -> ! {
    let v3 = (mrs!("S3_0_C0_C4_0") >> 24) & 0xf != 0;
    if v3 {
        msr!("S3_4_C12_C9_5", 0xf); // ICC_SRE_EL2
        enable_virtual_cpu_interface();
    } else {
        GichListRegs { base: GICH }.enable();
    }
    msr!("S3_4_C1_C1_0", (1 << 31) | (1 << 4) | (1 << 3)); // HCR_EL2: RW, IMO, FMO
    phys_gic::init_secondary(v3);
    lock();
    let h = state();
    reset_lrs(&mut h.lrs);
    h.vgic.flush_lrs(1, &mut h.lrs);
    unlock();
    CPU1_UP.store(true, Ordering::Release);
    let entry = if v3 {
        boot::guest_entry as *const () as usize
    } else {
        boot::guest_entry_v2 as *const () as usize
    };
    // SAFETY: the guest code and vCPU 1's stack are part of this image.
    unsafe {
        boot::enter_guest(
            entry,
            core::ptr::addr_of!(boot::__guest_stack1_top) as usize,
        )
    }
}

/// After the last single-CPU check (CPU 0, lock held): an SPI for vCPU 1, which sleeps in
/// WFI on CPU 1, must come back as a kick; CPU 1 is sent a physical SGI for it. Returns
/// the kick mask.
fn start_kick(h: &mut Harness) -> vgic::VcpuMask {
    let v3 = h.lrs.v3();
    if v3 {
        let irouter = VGICD + 0x6000 + 8 * u64::from(KICK_SPI);
        h.vgic
            .mmio_write(0, irouter, 8, vgic::vcpu_affinity(1))
            .expect("IROUTER");
    } else {
        let targets = VGICD + 0x800 + u64::from(KICK_SPI);
        h.vgic.mmio_write(0, targets, 1, 0b10).expect("ITARGETSR");
    }
    let kick = h.vgic.inject(KICK_SPI, None, None);
    for t in kick.iter().filter(|&t| t != cpu()) {
        phys_gic::kick(v3, t);
    }
    kick
}

/// CPU 0, lock released: waits for vCPU 1's guest to report, checks, powers off.
fn finish_kick(kick: vgic::VcpuMask) -> ! {
    let got = wait_for(|| KICK_GOT.load(Ordering::Acquire) != 0);
    lock();
    let h = state();
    let intid = KICK_GOT.load(Ordering::Acquire).wrapping_sub(1);
    let ok = got && kick == vgic::VcpuMask::single(1) && intid == KICK_SPI;
    check(
        h,
        "kick",
        ok,
        format_args!(
            "kick mask {:#b}, vCPU 1 on CPU 1 took vINTID {intid}",
            kick.0
        ),
    );
    finish(h)
}

fn finish(h: &mut Harness) -> ! {
    println!("VGIC-HW: done {}/{}", h.passed, CHECKS);
    power_off()
}

/// The guest took interrupt `iar`; the answer goes back in its x0/x1.
fn on_guest_irq(iar: u32, frame: &mut [u64; 32]) {
    let h = state();
    frame[0] = 0;
    let (intid, source) = (iar & 0x3ff, (iar >> 10) & 7);
    if intid >= 1020 {
        return; // spurious: nothing was taken
    }
    if cpu() == 1 {
        h.vgic.sync_lrs(1, &mut h.lrs);
        KICK_GOT.store(intid + 1, Ordering::Release);
        h.vgic.flush_lrs(1, &mut h.lrs);
        return;
    }
    if h.phase == Phase::Maintenance {
        h.seen.push(intid);
        if h.seen.len() < h.want.len() {
            // Only the maintenance interrupt refills the list registers in this phase.
            return;
        }
    }
    h.vgic.sync_lrs(0, &mut h.lrs);
    match h.phase {
        Phase::Priority => {
            h.seen.push(intid);
            if h.seen.len() == h.want.len() {
                let ok = h.seen == h.want && h.uie_requested;
                let (seen, uie) = (h.seen.clone(), h.uie_requested);
                check(
                    h,
                    "priority-order",
                    ok,
                    format_args!("got {seen:?}, UIE requested {uie}"),
                );
                // Next: ten more, refilled only by the maintenance interrupt.
                h.seen.clear();
                h.want = inject_batch(&mut h.vgic, 48);
                phys_gic::enable_maintenance(h.lrs.v3());
                h.phase = Phase::Maintenance;
            }
        }
        Phase::Maintenance => {
            let ok = h.seen == h.want && h.maintenance_irqs > 0;
            let (seen, n) = (h.seen.clone(), h.maintenance_irqs);
            check(
                h,
                "maintenance-refill",
                ok,
                format_args!("got {seen:?} after {n} maintenance interrupts"),
            );
            let v3 = h.lrs.v3();
            let active = phys_gic::make_active(v3);
            h.vgic.inject(HW_VIRQ, Some(phys_gic::SPI), None);
            h.phase = Phase::Hw;
            if !active {
                check(
                    h,
                    "hw-deactivate",
                    false,
                    format_args!("physical SPI not active"),
                );
                finish(h);
            }
        }
        Phase::Hw => {
            let ok = cpuif_state_roundtrip(&h.lrs);
            check(
                h,
                "cpuif-state",
                ok,
                format_args!("VMCR/APR save, restore, save"),
            );
            let still_active = phys_gic::is_active();
            let ok = intid == HW_VIRQ && !still_active;
            check(
                h,
                "hw-deactivate",
                ok,
                format_args!(
                    "vINTID {intid}, physical SPI 40 active after the guest's EOI: {still_active}"
                ),
            );
            if h.lrs.v3() {
                // The guest sends it to itself (target list Aff0 0) through ICC_SGI1R_EL1.
                frame[0] = 1;
                frame[1] = (u64::from(SGI) << 24) | 1;
            } else {
                // vCPU 1 sends it to vCPU 0 (CPU target list bit 0).
                let sgir = (1 << 16) | u64::from(SGI);
                h.vgic
                    .mmio_write(1, VGICD + 0xf00, 4, sgir)
                    .expect("GICD_SGIR");
            }
            h.phase = Phase::Sgi;
        }
        Phase::Sgi => {
            // GICv3 has no source in IAR; GICv2 reports the sender (vCPU 1).
            let v3 = h.lrs.v3();
            let want_source = if v3 { 0 } else { 1 };
            let ok = intid == SGI && source == want_source && (h.sgi1r_trapped || !v3);
            let trapped = h.sgi1r_trapped;
            check(
                h,
                "sgi",
                ok,
                format_args!("vINTID {intid} from CPU {source}, ICC_SGI1R_EL1 trapped {trapped}"),
            );
            h.kick_next = true;
        }
    }
    h.vgic.flush_lrs(0, &mut h.lrs);
}

/// A physical interrupt while the guest ran: only the maintenance interrupt is enabled.
#[no_mangle]
extern "C" fn el2_irq(_frame: &mut [u64; 32]) {
    lock();
    let h = state();
    let v3 = h.lrs.v3();
    let iar = phys_gic::ack(v3);
    let vcpu = cpu();
    match iar & 0x3ff {
        // Maintenance (CPU 0) or the kick (CPU 1): either way, exit, sync, flush.
        25 | phys_gic::KICK_SGI => {
            if iar & 0x3ff == 25 {
                h.maintenance_irqs += 1;
            }
            h.vgic.sync_lrs(vcpu, &mut h.lrs);
            h.vgic.flush_lrs(vcpu, &mut h.lrs);
            phys_gic::eoi_deactivate(v3, iar);
        }
        1023 => {}
        other => {
            println!("VGIC-HW: FATAL unexpected physical interrupt {other}");
            power_off()
        }
    }
    unlock();
}

/// A synchronous exception from the guest: only HVCs are expected.
#[no_mangle]
extern "C" fn el2_sync(frame: &mut [u64; 32]) {
    lock();
    el2_sync_locked(frame);
    let kick_next = core::mem::take(&mut state().kick_next);
    unlock();
    if kick_next {
        // CPU 1 needs the lock to come up: wait for it unlocked.
        if !wait_for(|| CPU1_UP.load(Ordering::Acquire)) {
            lock();
            check(state(), "kick", false, format_args!("CPU 1 never came up"));
            finish(state());
        }
        lock();
        let kick = start_kick(state());
        unlock();
        finish_kick(kick);
    }
}

fn el2_sync_locked(frame: &mut [u64; 32]) {
    let esr = mrs!("esr_el2");
    let (ec, imm) = (esr >> 26, esr & 0xffff);
    match (ec, imm) {
        (0x16, 1) => on_guest_irq(frame[0] as u32, frame),
        (0x18, _) => {
            let Some(rt) = sgi1r_write_rt(esr as u32 & 0x1ff_ffff) else {
                println!("VGIC-HW: FATAL unexpected system register trap, ESR_EL2 {esr:#x}");
                power_off()
            };
            let val = if rt == 31 { 0 } else { frame[usize::from(rt)] };
            let h = state();
            h.sgi1r_trapped = true;
            h.vgic.sync_lrs(0, &mut h.lrs);
            h.vgic.write_sgi1r(0, val);
            h.vgic.flush_lrs(0, &mut h.lrs);
            msr!("elr_el2", mrs!("elr_el2") + 4);
        }
        (0x16, 3) => {
            println!("VGIC-HW: FATAL guest exception, ESR_EL1 {:#x}", frame[0]);
            power_off()
        }
        _ => {
            println!("VGIC-HW: FATAL unexpected trap, ESR_EL2 {esr:#x}");
            power_off()
        }
    }
}

#[no_mangle]
extern "C" fn el2_fatal(esr: u64, elr: u64) -> ! {
    println!("VGIC-HW: FATAL EL2 exception, ESR_EL2 {esr:#x} ELR_EL2 {elr:#x}");
    power_off()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("VGIC-HW: FATAL panic: {info}");
    power_off()
}
