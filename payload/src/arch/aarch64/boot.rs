//! The boot sequence: read the DTB, build the EL2 map, set up VM0 (stage 2, its DTB, virtual
//! PSCI), start the other CPUs through firmware PSCI and enter VM0.

use crate::board::{resolve_device, Board, GicVersion, PassDevice, PsciMethod, Region, MAX_CPUS};
use crate::fdt_edit;
use crate::fixed::FixedStr;
use crate::image;
use crate::log::{self, Level};
use crate::pagetable::{self, Format, Geometry, MemKind, PageAlloc, PageTable, PAGE_SIZE};
use crate::psci::{self, Psci};
use crate::spin::{SetOnce, SpinLock};
use crate::vgic::{self, Vgic, VgicConfig};
use crate::vm::{VmConfig, VmLayout};
use crate::{error, info, vmdtb, vmm, warn, VERSION};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::console::{Pl011, CONSOLE};
use super::gic;
use super::guest_uart::GuestUart;
use super::pool::Pool;
use super::regs;

extern "C" {
    static __image_end: u8;
    static mut SECONDARY_TTBR: u64;
    fn secondary_entry();
    fn enter_scheduler(stack_top: u64) -> !;
    static cpu_stacks: u8;
}

/// Per-CPU stack (head.S agrees): the boot path moves `Board`-sized values around.
const STACK_SIZE: u64 = 0x10000;
/// Right after the image: the heap, then the page-table pool.
const HEAP_SIZE: u64 = 4 << 20;
const POOL_SIZE: u64 = 12 << 20;
/// Where TF-A on QEMU leaves the DTB when it passes x0 = 0.
const FALLBACK_DTB: u64 = 0x4000_0000;
const MAX_DTB: usize = 1 << 20;
/// The hypervisor's DTB, compacted (NOPs removed): parsed here and the source of VM0's DTB.
static mut DTB_COPY: [u8; MAX_DTB] = [0; MAX_DTB];
/// The hypervisor's own map: 39-bit VA (matches TCR_BASE in head.S).
const EL2_VA_BITS: u32 = 39;

const HCR_VM: u64 = 1 << 0;
const HCR_FMO: u64 = 1 << 3;
const HCR_IMO: u64 = 1 << 4;
const HCR_FB: u64 = 1 << 9;
const HCR_BSU_IS: u64 = 1 << 10;
const HCR_TSC: u64 = 1 << 19;
const HCR_RW: u64 = 1 << 31;

extern crate alloc;
use alloc::boxed::Box;
use alloc::vec::Vec;

use super::context::VcpuCtx;
use super::pcpu;

/// A VM: VM0 (Linux, the host VM), a static guest from `/vms` or a guest mvm created.
pub struct Vm {
    /// 0 for VM0, then the static guests in `/vms` order; 0 for guests mvm created.
    pub index: usize,
    /// The virtual GIC, or `None` when the physical GIC is passed through.
    pub vgic: Option<SpinLock<Vgic>>,
    pub config: VmConfig,
    pub layout: VmLayout,
    pub psci: Psci,
    pub vttbr: u64,
    pub vtcr: u64,
    /// The emulated PL011 of a static guest (VM0 owns the physical one).
    pub vuart: Option<SpinLock<GuestUart>>,
    /// Each vCPU's state while it is not loaded on its pCPU.
    pub vcpus: Vec<SpinLock<VcpuCtx>>,
    /// `CNTVOFF_EL2` while its vCPUs run (0: the virtual count is the physical one). An mvm
    /// guest's is set at each start, so its virtual count begins near 0 when it boots.
    pub cntvoff: AtomicU64,
    /// Scheduling priority, larger first (static guests outrank VM0, as in Minos).
    pub priority: u8,
}

impl Vm {
    /// A VM whose vCPUs are all off (fresh contexts), not yet registered with [`pcpu`].
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        index: usize,
        config: VmConfig,
        layout: VmLayout,
        vgic: Option<SpinLock<Vgic>>,
        psci: Psci,
        vttbr: u64,
        vtcr: u64,
        vuart: Option<SpinLock<GuestUart>>,
    ) -> Self {
        let vcpus = (0..config.vcpus)
            .map(|_| SpinLock::new(VcpuCtx::new()))
            .collect();
        Self {
            index,
            vgic,
            config,
            layout,
            psci,
            vttbr,
            vtcr,
            vuart,
            vcpus,
            cntvoff: AtomicU64::new(0),
            priority: 0,
        }
    }
}

pub struct Hyp {
    pub board: Board,
    pub el2_ttbr: u64,
}

/// HCR_EL2 while a vCPU of `vm` runs (the scheduler adds the WFI/WFE traps).
pub fn hcr_for(hyp: &Hyp, vm: &Vm) -> u64 {
    let irq_route = if vm.vgic.is_some() && !hyp.board.gic_passthrough {
        HCR_IMO | HCR_FMO
    } else {
        0
    };
    HCR_RW | HCR_TSC | HCR_BSU_IS | HCR_FB | HCR_VM | irq_route
}

pub static HYP: SetOnce<Hyp> = SetOnce::new();
pub static POOL: SpinLock<Option<Pool>> = SpinLock::new(None);

fn halt() -> ! {
    loop {
        regs::wfe();
    }
}

fn page_down(a: u64) -> u64 {
    a & !(PAGE_SIZE - 1)
}

fn page_up(a: u64) -> u64 {
    (a + PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}

/// Maps `r` rounded out to pages, if it fits the input size; false if it did not fit.
fn map_region(
    t: &mut PageTable,
    pool: &mut impl PageAlloc,
    r: Region,
    kind: MemKind,
) -> Result<bool, pagetable::MapError> {
    let base = page_down(r.base);
    let end = page_up(r.end());
    if end > 1u64 << t.geometry().input_bits {
        return Ok(false);
    }
    t.map(pool, base, base, end - base, kind)?;
    Ok(true)
}

fn stack_top(cpu: usize) -> u64 {
    let base = core::ptr::addr_of!(cpu_stacks) as u64;
    base + (cpu as u64 + 1) * STACK_SIZE
}

/// Entered from head.S on the boot CPU with the early map on.
#[no_mangle]
extern "C" fn primary_main(dtb: u64, load: u64) -> ! {
    let dtb = if dtb == 0 { FALLBACK_DTB } else { dtb };
    // SAFETY: head.S maps the gigabyte holding the DTB as Normal memory; the header is 40
    // bytes and `total_size` checks the magic before trusting the size.
    let header = unsafe { core::slice::from_raw_parts(dtb as *const u8, 40) };
    let size = match fdt_edit::total_size(header) {
        Ok(s) if (40..=MAX_DTB).contains(&s) => s,
        // No DTB means no console either: nothing to say it with.
        _ => halt(),
    };
    // SAFETY: size checked above; the blob is in the same early Normal mapping.
    let src = unsafe { core::slice::from_raw_parts(dtb as *const u8, size) };
    // SAFETY: only the boot CPU runs, once; nothing else refers to the buffer yet.
    let copy = unsafe { &mut *core::ptr::addr_of_mut!(DTB_COPY) };
    let Ok(len) = fdt_edit::compact(src, copy) else {
        halt()
    };
    let blob = &copy[..len];
    let board = match Board::parse(blob) {
        Ok(b) => b,
        Err(_) => halt(),
    };
    if let Some(uart) = board.uart {
        Pl011::init(uart.base);
        log::set_sink(&CONSOLE);
    }
    if let Some(level) = board
        .loglevel
        .as_ref()
        .and_then(|l| Level::parse(l.as_str()))
    {
        log::set_max_level(level);
    }
    info!("Minos {} on {}", VERSION, board.model);
    match setup(board, blob.as_ptr() as u64, load) {
        Ok(()) => {}
        Err(msg) => {
            error!("boot failed: {}", msg);
            halt()
        }
    }
    let hyp = HYP.get().expect("set by setup");
    for vmid in 0..pcpu::MAX_VMS {
        if let Some(vm) = pcpu::vm(vmid) {
            info!(
                "starting vm{} '{}' on cpu{} at {:#x}, DTB at {:#x}",
                vm.config.vmid,
                vm.config.name,
                vm.config.affinity.as_slice()[0],
                vm.config.entry,
                vm.layout.dtb
            );
            pcpu::start_vcpu(hyp, vm, 0, vm.config.entry, vm.layout.dtb);
        }
    }
    start_secondaries(hyp);
    // SAFETY: this CPU's own stack; nothing on it is used after the switch.
    unsafe { enter_scheduler(stack_top(0)) }
}

struct Msg(&'static str);

impl core::fmt::Display for Msg {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.0)
    }
}

fn setup(board: Board, dtb: u64, load: u64) -> Result<(), Msg> {
    describe(&board);
    let image_end = core::ptr::addr_of!(__image_end) as u64;
    let pool_start = page_up(image_end);
    let hyp_region = Region::new(load, pool_start + HEAP_SIZE + POOL_SIZE - load);
    if !board.memory.iter().any(|m| m.contains_region(&hyp_region)) {
        return Err(Msg("the hypervisor image and pool are not inside RAM"));
    }
    info!(
        "hypervisor at {}: heap {:#x} bytes, page pool {:#x} bytes",
        hyp_region, HEAP_SIZE, POOL_SIZE
    );
    // SAFETY: the heap is the first part of the hypervisor's region after the image (inside
    // RAM, checked above, mapped Normal by the early map), used for nothing else.
    unsafe { super::heap::init(pool_start, HEAP_SIZE) };
    let pool_start = pool_start + HEAP_SIZE;

    let boot_mpidr = regs_mpidr();
    let boot_cpu = board
        .cpu_index(boot_mpidr)
        .ok_or(Msg("boot CPU not in /cpus"))?;
    if boot_cpu != 0 {
        return Err(Msg("the boot CPU must be the first node in /cpus"));
    }

    // SAFETY: the pool lies right after the image inside RAM (checked above), is identity
    // mapped Normal by both the early and the final map, and nothing else uses it.
    let mut pool = unsafe { Pool::new(pool_start, pool_start + POOL_SIZE) };
    let el2_ttbr = build_el2_map(&board, &mut pool, hyp_region)?;
    write_sysreg!("ttbr0_el2", el2_ttbr);
    regs::isb();
    regs::tlbi_all_el2();

    let use_vgic = !board.gic_passthrough;
    if use_vgic {
        gic::init_dist(&board.gic, board.cpus.as_slice()[0]);
    }
    let vm0_config = *board
        .vms
        .iter()
        .find(|v| v.vmid == 0)
        .ok_or(Msg("no vm0 in /vms"))?;
    let (owned, refused) = passthrough_devices(&board, dtb);
    let vm0 = build_vm(&board, &mut pool, dtb, hyp_region, vm0_config, 0, &owned)?;
    let mut guests: Vec<Box<Vm>> = Vec::new();
    for config in board.vms.iter().filter(|v| v.vmid != 0) {
        if !use_vgic {
            return Err(Msg("static VMs need the vGIC (no minos,gic-passthrough)"));
        }
        if refused.contains(&config.vmid) {
            error!(
                "vm{} '{}' not started: its devices cannot be passed through",
                config.vmid, config.name
            );
            continue;
        }
        if board.vms.iter().filter(|v| v.vmid == config.vmid).count() > 1 {
            error!("vmid {} is used twice in /vms", config.vmid);
            return Err(Msg("duplicate vmid"));
        }
        // A static VM that cannot be set up is left out; VM0 still boots.
        let index = guests.len() + 1;
        let vm = match build_vm(&board, &mut pool, dtb, hyp_region, *config, index, &owned) {
            Ok(vm) => vm,
            Err(m) => {
                error!("vm{} '{}' not started: {}", config.vmid, config.name, m);
                continue;
            }
        };
        if let Some(other) = core::iter::once(&vm0)
            .chain(guests.iter())
            .find(|o| vm.layout.memory.overlaps(&o.layout.memory))
        {
            error!(
                "vm{} '{}' not started: memory {} overlaps vm{} memory {}",
                vm.config.vmid,
                vm.config.name,
                vm.layout.memory,
                other.config.vmid,
                other.layout.memory
            );
            continue;
        }
        guests.push(vm);
    }
    info!("pool: {:#x} bytes left", pool.remaining());
    *POOL.lock() = Some(pool);
    let hyp = HYP
        .set(Hyp { board, el2_ttbr })
        .map_err(|_| Msg("set up twice"))?;
    pcpu::register_vm(hyp, vm0).map_err(|e| {
        error!("vm0: {:?}", e);
        Msg("cannot schedule VM0")
    })?;
    for vm in guests {
        let (vmid, name) = (vm.config.vmid, vm.config.name);
        if let Err(e) = pcpu::register_vm(hyp, vm) {
            error!("vm{} '{}' not started: {:?}", vmid, name, e);
        }
    }
    for o in owned.iter().filter(|o| pcpu::vm(o.vmid as usize).is_some()) {
        for &spi in o.dev.spis.iter() {
            super::virq::set_spi_owner(spi, o.vmid);
        }
        info!(
            "{} passed through to vm{} (SPIs {:?})",
            o.path.as_str(),
            o.vmid,
            o.dev.spis.as_slice()
        );
    }
    if console_shared(&hyp.board) {
        info!("console shared by the VMs: Ctrl-A <digit> moves the input, Ctrl-A ? for help");
        super::guest_uart::own_console();
    }
    cpu_init(hyp);
    // mvm's VM manager (arch::platform): its pool is what VM0 and /vms left of RAM.
    super::platform::init(hyp, hyp_region);
    Ok(())
}

/// A device a static VM owns (its `devices` property).
pub struct Owned {
    pub vmid: u32,
    pub path: FixedStr<64>,
    pub dev: PassDevice,
}

/// Resolves every static VM's `devices` in the hypervisor DT. A device that cannot be found,
/// is the hypervisor's own (GIC, console) or is claimed twice refuses its VM (returned second).
fn passthrough_devices(board: &Board, dtb: u64) -> (Vec<Owned>, Vec<u32>) {
    // SAFETY: `dtb` is the hypervisor's compacted DTB copy, `dtb_size` bytes, never written.
    let blob = unsafe { core::slice::from_raw_parts(dtb as *const u8, board.dtb_size) };
    let (mut owned, mut refused) = (Vec::<Owned>::new(), Vec::new());
    for vm in board.vms.iter() {
        for path in vm.devices.iter() {
            if vm.vmid == 0 {
                warn!("vm0 lists devices: VM0 has every device no other VM owns; ignored");
                break;
            }
            let dev = match resolve_device(blob, path.as_str()) {
                Ok(d) => d,
                Err(e) => {
                    error!("vm{} device {}: {}", vm.vmid, path.as_str(), e);
                    refused.push(vm.vmid);
                    continue;
                }
            };
            let hyp_own = |r: &Region| {
                board.uart.is_some_and(|u| u.overlaps(r))
                    || board
                        .devices
                        .iter()
                        .any(|d| d.is_gic && d.region.overlaps(r))
            };
            let taken = |r: &Region| {
                owned
                    .iter()
                    .any(|o| o.dev.regions.iter().any(|x| x.overlaps(r)))
            };
            if dev.regions.iter().any(|r| hyp_own(r) || taken(r)) {
                error!(
                    "vm{} device {}: the hypervisor's or another VM's",
                    vm.vmid,
                    path.as_str()
                );
                refused.push(vm.vmid);
                continue;
            }
            owned.push(Owned {
                vmid: vm.vmid,
                path: *path,
                dev,
            });
        }
    }
    owned.retain(|o| !refused.contains(&o.vmid));
    (owned, refused)
}

/// Whether VM0 shares the console with static guests: then the hypervisor owns the physical
/// UART (input multiplexed with Ctrl-A) and every VM, VM0 included, gets a model of it.
fn console_shared(board: &Board) -> bool {
    !board.gic_passthrough && board.uart.is_some() && board.vms.iter().any(|v| v.vmid != 0)
}

/// One VM from its `/vms` node: layout checked, stage 2, DTB, vGIC, virtual PSCI, and its
/// virtual UART (static guests; VM0 too when the console is shared).
#[inline(never)]
fn build_vm(
    board: &Board,
    pool: &mut Pool,
    dtb: u64,
    hyp_region: Region,
    config: VmConfig,
    index: usize,
    owned: &[Owned],
) -> Result<Box<Vm>, Msg> {
    let layout = config.layout(board, hyp_region).map_err(|e| {
        error!("vm{}: {}", config.vmid, e);
        Msg("invalid VM description in /vms")
    })?;
    if index > 0 && config.memory.is_none() {
        error!("vm{}: a static VM needs a memory property", config.vmid);
        return Err(Msg("invalid VM description in /vms"));
    }
    info!(
        "vm{} '{}': {} vCPUs, memory {}, entry {:#x}, DTB at {:#x}, on CPUs {:?}",
        config.vmid,
        config.name,
        config.vcpus,
        layout.memory,
        config.entry,
        layout.dtb,
        config.affinity.as_slice()
    );
    check_kernel(&config, &layout)?;
    let use_vgic = !board.gic_passthrough;
    let (vttbr, vtcr) = build_stage2(board, pool, &layout, &config, index, use_vgic, owned)?;
    write_vm_dtb(board, dtb, &config, &layout, use_vgic, index == 0, owned)?;
    let vgic = if use_vgic {
        Some(SpinLock::new(new_vgic(board, &config)?))
    } else {
        None
    };
    let psci = Psci::new(
        &board.cpus.as_slice()[..config.vcpus as usize],
        layout.memory,
    );
    // A guest's console is an emulated PL011 where the board's UART is.
    let vuart = match board.uart {
        Some(u) if index > 0 || console_shared(board) => Some(SpinLock::new(GuestUart::new(
            config.vmid as u16,
            Region::new(u.base, 0x1000),
            board.uart_irq,
        ))),
        _ => None,
    };
    let mut vm = Vm::new(index, config, layout, vgic, psci, vttbr, vtcr, vuart);
    // Minos runs its real-time guests ahead of VM0; the starvation limit keeps VM0 going.
    vm.priority = u8::from(index > 0);
    Ok(Box::new(vm))
}

fn regs_mpidr() -> u64 {
    read_sysreg!("mpidr_el1") & 0xff_00ff_ffff
}

fn describe(board: &Board) {
    for m in board.memory.iter() {
        info!("memory {}", m);
    }
    info!("{} CPUs, PSCI via {:?}", board.cpus.len(), board.psci);
    let g = &board.gic;
    match g.version {
        GicVersion::V3 => info!("GICv3: GICD {} GICR {}", g.dist, g.redist),
        GicVersion::V2 => {
            info!(
                "GICv2: GICD {} GICC {} GICH {} GICV {}",
                g.dist, g.cpu, g.hyp, g.vcpu
            )
        }
    }
    info!(
        "timer PPIs: phys {} virt {} hyp {}; maintenance IRQ {}",
        board.timer.phys, board.timer.virt, board.timer.hyp, g.maintenance_irq
    );
    if let Some(u) = board.uart {
        info!("console: PL011 at {:#x}", u.base);
    }
    info!(
        "{} device regions, {} VM(s) in /vms",
        board.devices.len(),
        board.vms.len()
    );
}

fn build_el2_map(board: &Board, pool: &mut Pool, hyp: Region) -> Result<u64, Msg> {
    let oom = |e: pagetable::MapError| {
        error!("EL2 map: {}", e);
        Msg("cannot build the EL2 page tables")
    };
    let g = Geometry::for_input_bits(EL2_VA_BITS, false).map_err(oom)?;
    let mut t = PageTable::new(pool, Format::El2, g).map_err(oom)?;
    map_region(&mut t, pool, hyp, MemKind::Normal).map_err(oom)?;
    for m in board.memory.iter() {
        if !map_region(&mut t, pool, *m, MemKind::Normal).map_err(oom)? {
            warn!("RAM {} beyond the EL2 map, not used", m);
        }
    }
    let uart = board.uart.into_iter();
    let gic = board.devices.iter().filter(|d| d.is_gic).map(|d| d.region);
    for r in uart.chain(gic) {
        map_region(&mut t, pool, r, MemKind::Device).map_err(oom)?;
    }
    Ok(t.root())
}

/// Identity stage-2 map for VM0: its RAM and every device of the board except the GIC's
/// hypervisor interfaces.
fn new_vgic(board: &Board, config: &VmConfig) -> Result<Vgic, Msg> {
    let g = &board.gic;
    for (v, &mpidr) in board.cpus.as_slice()[..config.vcpus as usize]
        .iter()
        .enumerate()
    {
        if mpidr != vgic::vcpu_affinity(v) {
            error!(
                "cpu{} MPIDR {:#x} is not the vGIC's {:#x}",
                v,
                mpidr,
                vgic::vcpu_affinity(v)
            );
            return Err(Msg(
                "the DT's CPU MPIDRs do not follow the vGIC's numbering",
            ));
        }
    }
    let cfg = VgicConfig {
        version: match g.version {
            GicVersion::V2 => vgic::GicVersion::V2,
            GicVersion::V3 => vgic::GicVersion::V3,
        },
        nr_vcpus: config.vcpus as usize,
        nr_spis: gic::nr_irqs(g).saturating_sub(32),
        dist_base: g.dist.base,
        redist_base: g.redist.base,
    };
    let mut v = Vgic::try_new(cfg).map_err(|e| {
        error!("vGIC: {:?}", e);
        Msg("cannot create a VM's vGIC")
    })?;
    // QEMU 7.2's GICv2 does not re-signal an interrupt deactivated through a list register's
    // HW bit (see `Vgic::set_software_deactivation`): deactivate forwarded ones ourselves.
    if g.version == GicVersion::V2 {
        v.set_software_deactivation(true);
    }
    info!(
        "vGIC{}: {} SPIs, GICD at {:#x} (vm{})",
        if cfg.version == vgic::GicVersion::V3 {
            3
        } else {
            2
        },
        cfg.nr_spis,
        cfg.dist_base,
        config.vmid
    );
    Ok(v)
}

fn build_stage2(
    board: &Board,
    pool: &mut Pool,
    layout: &VmLayout,
    config: &VmConfig,
    index: usize,
    use_vgic: bool,
    owned: &[Owned],
) -> Result<(u64, u64), Msg> {
    let vmid = config.vmid;
    let err = |e: pagetable::MapError| {
        error!("vm{} stage 2: {}", vmid, e);
        Msg("cannot build a VM's stage-2 tables")
    };
    let pa_bits = pagetable::parange_bits(read_sysreg!("id_aa64mmfr0_el1"));
    let g = Geometry::for_input_bits(pa_bits, true).map_err(err)?;
    let mut t = PageTable::new(pool, Format::Stage2, g).map_err(err)?;
    map_region(&mut t, pool, layout.memory, MemKind::Normal).map_err(err)?;
    // Only VM0 gets the board's devices; a static guest gets its memory, its GIC CPU
    // interface and emulated devices.
    for d in board.devices.iter().filter(|_| index == 0) {
        // With a vGIC, VM0 gets none of the GIC's frames: GICD/GICR trap to the emulation,
        // and GICv2's GICV shows up where the DT puts GICC (mapped below).
        if matches!(d.name.as_str(), "gich" | "gicv") || (use_vgic && d.is_gic) {
            continue;
        }
        // A shared console is the hypervisor's: VM0 gets the model.
        if console_shared(board) && board.uart.is_some_and(|u| u.overlaps(&d.region)) {
            continue;
        }
        // Another VM's device.
        if owned
            .iter()
            .any(|o| o.dev.regions.iter().any(|r| r.overlaps(&d.region)))
        {
            continue;
        }
        match map_region(&mut t, pool, d.region, MemKind::Device) {
            Ok(true) => {}
            Ok(false) => warn!(
                "{} {} beyond the {}-bit IPA space, not passed through",
                d.name, d.region, pa_bits
            ),
            Err(e) => warn!("{} {}: {}, not passed through", d.name, d.region, e),
        }
    }
    for o in owned.iter().filter(|o| index > 0 && o.vmid == vmid) {
        for &r in o.dev.regions.iter() {
            map_region(&mut t, pool, r, MemKind::Device).map_err(err)?;
        }
    }
    let gic = &board.gic;
    if use_vgic && gic.version == GicVersion::V2 {
        if gic.vcpu.size == 0 {
            return Err(Msg("GICv2 without a GICV frame: cannot give a VM a vGIC"));
        }
        let size = page_up(gic.cpu.size.min(gic.vcpu.size));
        t.map(pool, gic.cpu.base, gic.vcpu.base, size, MemKind::Device)
            .map_err(err)?;
        info!(
            "GICV {} mapped as vm{}'s GICC at {:#x}",
            gic.vcpu, vmid, gic.cpu.base
        );
    }
    info!(
        "vm{} stage 2: {}-bit IPA, start level {}, VMID {}",
        vmid, pa_bits, g.start_level, vmid
    );
    let vtcr = g.t0sz()
        | (g.sl0() << 6)
        | (1 << 8)
        | (1 << 10)
        | (3 << 12)
        | (pagetable::ps_field(pa_bits) << 16)
        | (1 << 31);
    Ok((t.root() | (u64::from(vmid & 0xff) << 48), vtcr))
}

fn check_kernel(config: &VmConfig, layout: &VmLayout) -> Result<(), Msg> {
    let (entry, vmid) = (config.entry, config.vmid);
    // SAFETY: the entry is inside the VM's RAM (checked by `layout`), mapped Normal at EL2, and we
    // read only its 64-byte header.
    let head = unsafe { core::slice::from_raw_parts(entry as *const u8, 64) };
    match image::parse(head) {
        Some(h) => {
            info!(
                "vm{} kernel: arm64 Image, image_size {:#x}, flags {:#x}",
                vmid, h.image_size, h.flags
            );
            let kernel = Region::new(entry, h.image_size.max(64));
            if kernel.end() > layout.memory.end() {
                error!(
                    "vm{}: kernel {} does not fit in {}",
                    vmid, kernel, layout.memory
                );
                return Err(Msg("a VM's kernel does not fit in its memory"));
            }
            if kernel.contains(layout.dtb) {
                error!(
                    "vm{}: DTB at {:#x} inside the kernel {}",
                    vmid, layout.dtb, kernel
                );
                return Err(Msg("a VM's DTB address lies inside its kernel image"));
            }
        }
        // VM0's loader may be anything; a static guest's image is checked to fit its memory,
        // which needs the header's size.
        None if vmid != 0 => {
            error!("vm{}: no arm64 Image header at entry {:#x}", vmid, entry);
            return Err(Msg("a static VM's image is not an arm64 Image"));
        }
        None => warn!(
            "no arm64 Image header at vm{} entry {:#x}; entering it anyway",
            vmid, entry
        ),
    }
    Ok(())
}

fn write_vm_dtb(
    board: &Board,
    dtb: u64,
    config: &VmConfig,
    layout: &VmLayout,
    use_vgic: bool,
    is_vm0: bool,
    owned: &[Owned],
) -> Result<(), Msg> {
    let size = board.dtb_size as u64;
    let dest = Region::new(layout.dtb, size);
    if !layout.memory.contains_region(&dest) {
        error!("vm{}: DTB does not fit at {:#x}", config.vmid, layout.dtb);
        return Err(Msg("a VM's DTB does not fit at setup_data"));
    }
    // SAFETY: source is the hypervisor DTB (mapped, `size` bytes); destination is inside the VM's
    // RAM, mapped Normal at EL2, not yet running. `copy` allows overlap.
    let out = unsafe {
        core::ptr::copy(dtb as *const u8, layout.dtb as *mut u8, size as usize);
        core::slice::from_raw_parts_mut(layout.dtb as *mut u8, size as usize)
    };
    // The vGIC has no ITS (LPIs) and no GICv2m MSI frame. A static guest keeps `/vms`.
    let fixed: &[&str] = match (use_vgic, is_vm0) {
        (true, true) => &["/vms", "/intc/its", "/intc/v2m"],
        (true, false) => &["/intc/its", "/intc/v2m"],
        (false, _) => &["/vms"],
    };
    // VM0 does not see the devices static VMs own.
    let mut remove: Vec<&str> = fixed.to_vec();
    if is_vm0 {
        remove.extend(owned.iter().map(|o| o.path.as_str()));
    }
    vmdtb::derive(out, layout.memory, config.vcpus as usize, &remove).map_err(|e| {
        error!("vm{} DTB: {}", config.vmid, e);
        Msg("cannot derive a VM's DTB")
    })?;
    // Linux takes its SMCCC conduit from `/psci`: minos.ko needs HVC.
    if is_vm0
        && !vmm::vm0_dtb::psci_over_hvc(out).map_err(|e| {
            error!("vm0 DTB: {}", e);
            Msg("cannot switch VM0's PSCI to HVC")
        })?
    {
        warn!("vm0 DTB has no /psci method: minos.ko will not find its HVC conduit");
    }
    if !is_vm0 {
        // Bare-metal guests parse with the `fdt` crate, which cannot skip the NOPs the
        // edits leave between nodes (Linux can).
        let copy: Vec<u8> = out.to_vec();
        fdt_edit::compact(&copy, out).map_err(|e| {
            error!("vm{} DTB: {}", config.vmid, e);
            Msg("cannot compact a VM's DTB")
        })?;
    }
    // mvm's notification line (minos.ko finds it by compatible): a node appended last.
    let size = if is_vm0 {
        // SAFETY: the hypervisor DTB (mapped, `board.dtb_size` bytes), only read.
        let hyp_dtb = unsafe { core::slice::from_raw_parts(dtb as *const u8, size as usize) };
        super::platform::add_vm0_node(board, hyp_dtb, layout).unwrap_or(size)
    } else {
        size
    };
    // The VM starts with its caches off.
    regs::dcache_clean_range(layout.dtb, size);
    Ok(())
}

/// Per-CPU EL2 configuration; the per-VM registers are loaded with each vCPU.
fn cpu_init(hyp: &Hyp) {
    let use_vgic = !hyp.board.gic_passthrough;
    let irq_route = if use_vgic { HCR_IMO | HCR_FMO } else { 0 };
    write_sysreg!(
        "hcr_el2",
        HCR_RW | HCR_TSC | HCR_BSU_IS | HCR_FB | HCR_VM | irq_route
    );
    write_sysreg!("vpidr_el2", read_sysreg!("midr_el1"));
    // EL1 may use the physical counter and timer directly; every VM sees the physical count.
    write_sysreg!("cnthctl_el2", 0b11);
    write_sysreg!("cntvoff_el2", 0);
    write_sysreg!("hstr_el2", 0);
    // Give EL1 every PMU counter.
    write_sysreg!("mdcr_el2", (read_sysreg!("pmcr_el0") >> 11) & 0x1f);
    if hyp.board.gic.version == GicVersion::V3 {
        // ICC_SRE_EL2: SRE, DFB, DIB, Enable (EL1 may use the system-register interface).
        write_sysreg!("S3_4_C12_C9_5", 0xf);
        regs::isb();
        // ICH_HCR_EL2: virtual CPU interface off until the vGIC drives it.
        write_sysreg!("S3_4_C12_C11_0", 0);
    }
    regs::isb();
    pcpu::init_cpu(regs::cpu_index());
    if use_vgic && !gic::init_cpu(&hyp.board.gic, regs_mpidr(), hyp.board.timer.hyp) {
        error!(
            "cpu{}: no redistributor for MPIDR {:#x}",
            regs::cpu_index(),
            regs_mpidr()
        );
    }
    regs::tlbi_all_el1();
}

fn start_secondaries(hyp: &Hyp) {
    // SAFETY: written once before any secondary starts; cleaned to PoC because secondaries
    // read it with their MMU off.
    unsafe {
        core::ptr::addr_of_mut!(SECONDARY_TTBR).write_volatile(hyp.el2_ttbr);
        regs::dcache_clean_range(core::ptr::addr_of!(SECONDARY_TTBR) as u64, 8);
    }
    if hyp.board.psci == PsciMethod::None {
        warn!("no PSCI in the DT: running on the boot CPU only");
        return;
    }
    let entry = secondary_entry as *const () as u64;
    for (i, &mpidr) in hyp.board.cpus.iter().enumerate().skip(1) {
        let r = regs::smc(0xc400_0003, mpidr, entry, i as u64) as i64;
        if r != psci::SUCCESS {
            warn!("PSCI CPU_ON of cpu{} (MPIDR {:#x}) failed: {}", i, mpidr, r);
        }
    }
}

static SEEN: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

/// Entered from head.S on each secondary CPU, MMU on, stack set: at boot, and (with the GIC
/// passed through) whenever a parked CPU is woken for a vCPU.
#[no_mangle]
extern "C" fn secondary_main(cpu: usize) -> ! {
    let Some(hyp) = HYP.get() else { halt() };
    cpu_init(hyp);
    if !SEEN[cpu].swap(true, Ordering::Relaxed) {
        // Runs while VM0 may already print on the shared UART: debug level keeps it out of
        // the guest's lines.
        crate::debug!("cpu{} online", cpu);
    }
    // SAFETY: this CPU's own stack; nothing on it is used after the switch.
    unsafe { enter_scheduler(stack_top(cpu)) }
}

/// Parks this pCPU through firmware (with the GIC passed through the hypervisor cannot take
/// interrupts to wake itself); [`wake_parked`] brings it back.
pub fn power_off_cpu() -> ! {
    regs::smc(u64::from(psci::CPU_OFF), 0, 0, 0);
    // Only returns if firmware refused (e.g. no PSCI): wait here instead.
    halt()
}

/// Makes sure parked pCPU `p` runs its scheduler: it is off (firmware CPU_ON starts it) or
/// on its way (ALREADY_ON/ON_PENDING: retry while it has not rescheduled yet).
pub fn wake_parked(hyp: &Hyp, p: usize, still_wanted: impl Fn() -> bool) {
    let mpidr = hyp.board.cpus.as_slice()[p];
    let entry = secondary_entry as *const () as u64;
    // A pCPU on its way to CPU_OFF gets there in a few hundred instructions; one that never
    // does (firmware refused its CPU_OFF) must not hang the caller.
    for _ in 0..1_000_000 {
        let r = regs::smc(0xc400_0003, mpidr, entry, p as u64) as i64;
        if r == psci::SUCCESS || !still_wanted() {
            return;
        }
        if r != psci::ALREADY_ON && r != psci::ON_PENDING {
            error!("firmware CPU_ON of cpu{} failed: {}", p, r);
            return;
        }
        core::hint::spin_loop();
    }
    error!("cpu{} neither powers off nor reschedules", p);
}
