//! The hostile mode (`--features hostile`, out/testguest-hostile.bin): run as a static VM
//! beside VM0, the guest attacks everything that is not its own and prints one
//! `HOSTILE: <check>: PASS|FAIL <detail>` line per attack, then `HOSTILE: done P/T`, then spins
//! forever with interrupts masked (the harness checks that VM0 still runs meanwhile). A VM
//! named `crash` in `/vms` crashes instead: its vector table moved to an address it does not
//! map, then an UNDEF, so every exception it takes faults again, for good.
//!
//! What it may not reach comes from its DTB: the hypervisor leaves `/vms` (the partition
//! table) in a static guest's DTB, so VM0's and other guests' memory are known; memory below
//! the lowest VM is the hypervisor's; VM0's devices are the DTB's device nodes.

use core::arch::asm;

use fdt::Fdt;

use crate::checks::{abort, sysreg};
use crate::console::println;
use crate::cpu::Features;
use crate::partition::Partition;
use crate::platform::{GicDesc, Platform};
use crate::report::Report;
use crate::rng::XorShift;
use crate::smccc::{self, Conduit, NOT_SUPPORTED};
use crate::vectors::probe;
use crate::{mmio, psci};

/// SMCCC function ID fields.
const FAST: u32 = 1 << 31;
const SMC64: u32 = 1 << 30;
const OWNER_STANDARD: u32 = 4;
/// PSCI calls that stop the caller (CPU_OFF, SYSTEM_SUSPEND, SYSTEM_OFF, SYSTEM_RESET,
/// SYSTEM_RESET2): left out of the sweep, which must go on.
/// What a Minos hypervisor answers any VM with a value: SMCCC discovery (`SMCCC_VERSION`),
/// its vendor UID, and the Minos `VERSION` and `HYP_INFO` calls. The rest of the Minos range
/// (0xc600_0000..) is VM0's and must answer an error.
const DISCOVERY: [u32; 4] = [0x8000_0000, 0x8600_ff01, 0xc600_0000, 0xc600_0001];
const MINOS_RANGE: u32 = 0xc600_0000;
const STOPPING_PSCI: [u32; 5] = [0x02, 0x0e, 0x08, 0x09, 0x12];

pub fn run(p: &Platform, dtb: usize, feats: &Features) -> ! {
    let mut r = Report::with_prefix("HOSTILE");
    // SAFETY: the same DTB `Platform::from_dtb` already parsed.
    let part = match unsafe { Fdt::from_ptr(dtb as *const u8) } {
        Ok(f) => Partition::from_fdt(&f),
        Err(_) => Partition::default(),
    };
    let me_addr = run as *const () as usize as u64;
    let mut crash = false;
    match part.owner_of(me_addr) {
        None => r.result(
            "partition",
            false,
            format_args!("no /vms entry holds this guest ({me_addr:#x}): not a static VM?"),
        ),
        Some(me) => {
            r.result(
                "partition",
                true,
                format_args!(
                    "vm{} at {:#x}+{:#x}, {} VMs in /vms",
                    me.vmid,
                    me.base,
                    me.size,
                    part.vms().len()
                ),
            );
            memory(&mut r, &part, me.vmid);
            crash = me.crash;
        }
    }
    // SAFETY: as above.
    if let Ok(f) = unsafe { Fdt::from_ptr(dtb as *const u8) } {
        device(&mut r, &f);
    }
    if let Some(gic) = p.gic {
        gic_foreign(&mut r, gic);
        sgi_others(&mut r, gic);
    }
    sysreg::run(&mut r, feats);
    firmware(&mut r, p);
    for c in [Conduit::Hvc, Conduit::Smc] {
        sweep(&mut r, c);
    }
    r.done();
    if crash {
        println!("HOSTILE: crashing (vectors at 0, then UDF)");
        // SAFETY: deliberately wrecking this VM: VBAR_EL1 = 0 is outside its memory, so the
        // UNDEF's vector fetch faults, and so does every exception after it.
        unsafe { asm!("msr vbar_el1, xzr", "isb", "udf #0", options(noreturn)) };
    }
    println!("HOSTILE: spinning with interrupts masked");
    // SAFETY: masking this vCPU's own interrupts; the point is to never give the CPU back.
    unsafe { asm!("msr daifset, #0xf") };
    loop {
        core::hint::spin_loop();
    }
}

/// Hypervisor memory, VM0's and every other guest's: first and last page each.
fn memory(r: &mut Report, part: &Partition, me: u32) {
    match part.lowest_base() {
        Some(low) if low >= 0x1000 => abort::check(r, "hyp-mem", low - 0x1000),
        _ => r.skip("hyp-mem", format_args!("no memory below the VMs")),
    }
    let mut others = 0;
    for vm in part.vms().iter().filter(|v| v.vmid != me) {
        let (first, last) = if vm.vmid == 0 {
            ("vm0-mem-first", "vm0-mem-last")
        } else {
            others += 1;
            ("guest-mem-first", "guest-mem-last")
        };
        abort::check(r, first, vm.base);
        abort::check(r, last, vm.last_page());
    }
    if others == 0 {
        r.skip("guest-mem", format_args!("no other static VM in /vms"));
    }
}

/// A device that is not this guest's (the RTC, else a virtio-mmio slot): VM0's, or another
/// static VM's when a `/vms` node's `devices` names it (`guest-device`).
fn device(r: &mut Report, fdt: &Fdt) {
    let dev = ["arm,pl031", "virtio,mmio"].iter().find_map(|c| {
        fdt.find_compatible(&[c])
            .and_then(|n| n.reg()?.next())
            .map(|reg| reg.starting_address as u64)
    });
    match dev {
        Some(a) if passed_through(fdt, a) => abort::check(r, "guest-device", a),
        Some(a) => abort::check(r, "vm0-device", a),
        None => r.skip(
            "vm0-device",
            format_args!("no pl031 or virtio-mmio in the DTB"),
        ),
    }
}

/// Whether some `/vms` node's `devices` names the device node at MMIO address `addr`.
fn passed_through(fdt: &Fdt, addr: u64) -> bool {
    let Some(vms) = fdt.find_node("/vms") else {
        return false;
    };
    vms.children().any(|vm| {
        vm.property("devices").is_some_and(|p| {
            p.value
                .split(|&b| b == 0)
                .filter_map(|path| fdt.find_node(core::str::from_utf8(path).ok()?))
                .filter_map(|n| n.reg()?.next())
                .any(|reg| reg.starting_address as u64 == addr)
        })
    })
}

/// Enables, pends, routes and prioritises every SPI and turns the distributor off and on:
/// in a static VM that reaches only its own virtual distributor. Each access must either
/// complete or abort; VM0's interrupts carrying on is checked by the harness.
fn gic_foreign(r: &mut Report, gic: GicDesc) {
    let (dist, v3) = match gic {
        GicDesc::V2 { dist, .. } => (dist, false),
        GicDesc::V3 { dist, .. } => (dist, true),
    };
    let mut accesses = 0u32;
    let mut aborts = 0u32;
    let mut bad = None;
    let mut poke = |off: usize, v: u32| {
        accesses += 1;
        // SAFETY: a GICD register of this VM's own (virtual) distributor; a fault is caught.
        let (_, t) = probe(|| unsafe { mmio::write32(dist + off, v) });
        if let Some(t) = t {
            if t.esr.is_data_abort() {
                aborts += 1;
            } else if bad.is_none() {
                bad = Some(t.esr.0);
            }
        }
    };
    for n in 1..32 {
        poke(0x100 + 4 * n, u32::MAX); // ISENABLER
        poke(0x200 + 4 * n, u32::MAX); // ISPENDR
        poke(0x300 + 4 * n, u32::MAX); // ISACTIVER
    }
    for n in 8..256 {
        poke(0x400 + 4 * n, 0); // IPRIORITYR: highest
        if !v3 {
            poke(0x800 + 4 * n, u32::MAX); // ITARGETSR: every CPU
        }
    }
    if v3 {
        for n in 32..1020 {
            poke(0x6100 + 8 * n, 1); // IROUTER: Aff0 = 1, a CPU it does not have
            poke(0x6104 + 8 * n, 0);
        }
    }
    // CTLR off and back on, then everything cleared again so the guest's own state is sane.
    poke(0, 0);
    poke(0, if v3 { 0x12 } else { 1 });
    for n in 1..32 {
        poke(0x180 + 4 * n, u32::MAX);
        poke(0x280 + 4 * n, u32::MAX);
        poke(0x380 + 4 * n, u32::MAX);
    }
    match bad {
        None => r.result(
            "gicd-foreign",
            true,
            format_args!(
                "{accesses} writes to foreign interrupts' GICD registers, {aborts} aborted"
            ),
        ),
        Some(esr) => r.result(
            "gicd-foreign",
            false,
            format_args!("a GICD write raised a non-abort exception (ESR {esr:#x})"),
        ),
    }
}

/// SGIs to every other CPU: all-but-self and explicit target lists naming CPUs it lacks.
fn sgi_others(r: &mut Report, gic: GicDesc) {
    let mut sent = 0;
    let mut trap = None;
    for intid in 0..16u64 {
        let (_, t) = probe(|| match gic {
            // SAFETY: an SGI write; with IRM the targets are "all but self".
            GicDesc::V3 { .. } => unsafe {
                asm!("msr S3_0_C12_C11_5, {}", in(reg) (1u64 << 40) | (intid << 24));
                asm!("msr S3_0_C12_C11_5, {}", in(reg) (intid << 24) | 0xfffe);
                asm!("isb");
            },
            // SAFETY: GICD_SGIR of its own distributor: filter 1 = all but self, then a list.
            GicDesc::V2 { dist, .. } => unsafe {
                mmio::write32(dist + 0xf00, (1 << 24) | intid as u32);
                mmio::write32(dist + 0xf00, (0xfe << 16) | intid as u32);
            },
        });
        sent += 2;
        if t.is_some() {
            trap = t;
        }
    }
    match trap {
        None => r.result(
            "sgi-others",
            true,
            format_args!("{sent} SGIs to other CPUs sent, none faulted"),
        ),
        Some(t) => r.result(
            "sgi-others",
            false,
            format_args!("an SGI write faulted (ESR {:#x})", t.esr.0),
        ),
    }
}

/// Firmware calls that would reach other VMs' CPUs: must be refused.
fn firmware(r: &mut Report, p: &Platform) {
    let ps = crate::psci();
    // MPIDR 1 is a physical CPU (VM0's or the hypervisor's), never one of this 1-vCPU VM.
    let foreign = 1u64;
    if p.cpus[..p.ncpus].contains(&foreign) {
        r.skip("psci-foreign-cpu", format_args!("MPIDR 1 is this VM's own"));
        return;
    }
    let on = ps.cpu_on(foreign, run as *const () as usize as u64, 0);
    let aff = ps.affinity_info(foreign);
    r.result(
        "psci-foreign-cpu",
        on == psci::INVALID_PARAMETERS && aff == psci::INVALID_PARAMETERS,
        format_args!("CPU_ON(1)={on} AFFINITY_INFO(1)={aff} (want -2)"),
    );
}

/// Every function number 0..=0xffff in each fast-call range the SMCCC assigns (owners 0-6:
/// Arm architecture, CPU, SiP, OEM, standard secure (PSCI), standard and vendor hypervisor
/// services; SMC32 and SMC64), and in the yielding SMC32/SMC64 ranges with owners cycling
/// through all 64, each with random x1-x7: only errors, never a hang or an exception. PSCI's
/// own functions answer for themselves (the ones that stop the caller are left out), and so do
/// the hypervisor's discovery calls ([`DISCOVERY`]).
fn sweep(r: &mut Report, c: Conduit) {
    let mut rng = XorShift::new(0x5eed_0000 ^ c as u64);
    let (mut calls, mut skipped, mut wrong) = (0u32, 0u32, 0u32);
    let mut first_wrong = (0u32, 0i64);
    let mut trapped = None;
    let fast = (0..7u32).flat_map(|owner| [FAST | (owner << 24), FAST | SMC64 | (owner << 24)]);
    for range in fast.chain([0, SMC64]) {
        for num in 0..=0xffffu32 {
            let fid = if range & FAST != 0 {
                range | num
            } else {
                range | ((num & 0x3f) << 24) | num
            };
            let owner = (fid >> 24) & 0x3f;
            let psci_call = fid & FAST != 0 && owner == OWNER_STANDARD && num <= 0x1f;
            if psci_call && STOPPING_PSCI.contains(&num) {
                skipped += 1;
                continue;
            }
            let mut args = [0u64; 8];
            args[0] = u64::from(fid);
            for a in &mut args[1..] {
                *a = rng.next_u64();
            }
            let (ret, t) = probe(|| smccc::call(c, args));
            calls += 1;
            if let Some(t) = t {
                trapped.get_or_insert(t.esr.0);
                continue;
            }
            let v = smccc::result(fid, ret[0]);
            // PSCI answers for itself (versions, states, its own errors); the hypervisor
            // identifies itself; VM0's calls are refused with an error of their own.
            let minos_refused = fid & 0xffff_0000 == MINOS_RANGE && v < 0;
            let ok = psci_call || DISCOVERY.contains(&fid) || minos_refused || v == NOT_SUPPORTED;
            if !ok {
                if wrong == 0 {
                    first_wrong = (fid, v);
                }
                wrong += 1;
            }
        }
    }
    let name = match c {
        Conduit::Hvc => "hypercall-sweep-hvc",
        Conduit::Smc => "hypercall-sweep-smc",
    };
    match (trapped, wrong) {
        (None, 0) => r.result(
            name,
            true,
            format_args!("{calls} calls, all errors ({skipped} caller-stopping PSCI ids left out)"),
        ),
        (Some(esr), _) => r.result(
            name,
            false,
            format_args!("{calls} calls, an exception came back (ESR {esr:#x})"),
        ),
        (None, n) => r.result(
            name,
            false,
            format_args!(
                "{n} of {calls} calls answered other than an error, first {:#x} -> {}",
                first_wrong.0, first_wrong.1
            ),
        ),
    }
}
