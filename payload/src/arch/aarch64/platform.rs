//! The hypervisor's [`vmm::Platform`]: the guest-RAM pool, guest stage 2 and the VM0 window,
//! the guests' vGICs and vCPUs, VM0's notification SPI, and the one [`VMM`] the trap path
//! calls into (see `vmm`'s module doc for the protocol).

extern crate alloc;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ops::Range;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use minos_abi::guest::{EARLY_UART_BASE, EARLY_UART_SIZE};
use minos_abi::types::IrqLevel;
use minos_abi::{hvc, HvcError, MAX_VMS, MEM_ALIGN};

use crate::board::{Board, GicVersion, Region, MAX_CPUS};
use crate::esr::{Esr, MmioAccess};
use crate::fixed::{FixedStr, FixedVec};
use crate::pagetable::{self, Format, Geometry, MemKind, PageTable, PAGE_SIZE};
use crate::psci::Psci;
use crate::spin::{SpinGuard, SpinLock};
use crate::vgic::{self, Vgic, VgicConfig};
use crate::virtio_mmio::Access;
use crate::vm::{VmConfig, VmLayout};
use crate::vmm::stage2::{self, TablePages};
use crate::vmm::{self, placement, BlockPool, Config, GicSpec, MmioOutcome, Platform, Vmm};
use crate::vuart::ring::RingRead;
use crate::{error, info, warn};

use super::boot::{Hyp, Vm, POOL};
use super::guest_uart::GuestUart;
use super::trap::Frame;
use super::{gic, pcpu, regs};

/// The VM manager, built at boot once VM0 exists; `None` if it could not be (then every
/// Minos call past the handshake answers `NOT_SUPPORTED`).
pub static VMM: SpinLock<Option<Vmm<HypPlatform>>> = SpinLock::new(None);

/// VM0's notification SPI, chosen while VM0's device tree is written (0: none).
static NOTIFY_SPI: AtomicU32 = AtomicU32::new(0);

/// Room the `minos,hypervisor` node adds to VM0's DTB (node, two properties, two names).
const NODE_ROOM: u64 = 256;

/// One guest's hardware state, from `stage2_create` to `stage2_destroy`.
struct GuestHw {
    /// Pages of its stage-2 tables: one pool block, returned whole.
    tables: TablePages<'static>,
    table_block: u64,
    pt: PageTable,
    mem: Region,
    /// The vGIC between `vgic_create` and `vcpus_create` (then it moves into the [`Vm`]).
    vgic: Option<Vgic>,
    gic: Option<GicSpec>,
    /// The VM, registered with the scheduler (vCPUs off) by `vcpus_create`.
    vm: Option<&'static Vm>,
    blocks: Vec<u64>,
    /// The access each vCPU blocked on (`MmioOutcome::Blocked`), to finish on resume.
    waiting: [Option<MmioAccess>; MAX_CPUS],
}

pub struct HypPlatform {
    hyp: &'static Hyp,
    vm0: &'static Vm,
    pool: BlockPool,
    /// Index `vmid - 1`.
    guests: Vec<Option<GuestHw>>,
    ipa_bits: u32,
    vtcr: u64,
    /// VM0's stage 2 (its tables come from the hypervisor's page pool).
    vm0_pt: PageTable,
    vm0_ram: Region,
    notify_spi: u32,
    notify_level: bool,
    window_start: u64,
}

fn page_up(a: u64) -> u64 {
    a.next_multiple_of(PAGE_SIZE)
}

/// The stage-2 input size (the physical address size, at most 48 bits) and its geometry.
fn stage2_geometry() -> Option<(u32, Geometry)> {
    let bits = pagetable::parange_bits(read_sysreg!("id_aa64mmfr0_el1")).min(48);
    Geometry::for_input_bits(bits, true).ok().map(|g| (bits, g))
}

/// `VTCR_EL2` for a stage 2 of geometry `g`: 4 KiB granule, inner-shareable write-back walks.
/// (VM0's is built the same way in boot.rs.)
fn vtcr(g: &Geometry, bits: u32) -> u64 {
    g.t0sz()
        | (g.sl0() << 6)
        | (1 << 8)
        | (1 << 10)
        | (3 << 12)
        | (pagetable::ps_field(bits) << 16)
        | (1 << 31)
}

/// Invalidates every stage-1 and stage-2 TLB entry of the VMID in `vttbr`, on every CPU.
fn tlbi_vmid(vttbr: u64) {
    let saved = read_sysreg!("vttbr_el2");
    write_sysreg!("vttbr_el2", vttbr);
    regs::isb();
    // SAFETY: TLB maintenance only drops cached translations; VTTBR_EL2 is put back before
    // anything runs at EL1 on this CPU.
    unsafe {
        core::arch::asm!(
            "dsb ishst",
            "tlbi vmalls12e1is",
            "dsb ish",
            "isb",
            options(nostack)
        )
    };
    write_sysreg!("vttbr_el2", saved);
    regs::isb();
}

/// Adds the `minos,hypervisor` node, with a free SPI of the board (`hyp_dtb`, the
/// hypervisor's DTB, names every device) to VM0's DTB at `layout.dtb`, inside
/// `layout.memory`. Returns the DTB's new size; `None` (DTB unchanged, guest VMs disabled) if
/// there is no free SPI or no room.
pub fn add_vm0_node(board: &Board, hyp_dtb: &[u8], layout: &VmLayout) -> Option<u64> {
    let spi = match placement::notify_spi(hyp_dtb, gic::nr_irqs(&board.gic)) {
        Ok(spi) => spi,
        Err(e) => {
            warn!("no notification SPI for mvm ({}): guest VMs disabled", e);
            return None;
        }
    };
    // SAFETY: VM0's DTB, written by the caller in VM0's RAM (mapped at EL2); VM0 does not
    // run yet. The header is checked before its size is trusted.
    let head = unsafe { core::slice::from_raw_parts(layout.dtb as *const u8, 40) };
    let size = crate::fdt_edit::total_size(head).ok()?;
    let room = Region::new(layout.dtb, size as u64 + NODE_ROOM);
    if !layout.memory.contains_region(&room) {
        warn!("no room after VM0's DTB for the minos,hypervisor node: guest VMs disabled");
        return None;
    }
    // SAFETY: as above, with the room the node needs checked to be VM0's RAM.
    let out = unsafe { core::slice::from_raw_parts_mut(layout.dtb as *mut u8, room.size as usize) };
    let copy: Vec<u8> = out[..size].to_vec();
    match crate::vmm::vm0_dtb::add_hypervisor_node(&copy, out, spi) {
        Ok(n) => {
            NOTIFY_SPI.store(spi, Ordering::Relaxed);
            Some(n as u64)
        }
        Err(e) => {
            out[..size].copy_from_slice(&copy);
            warn!(
                "VM0 DTB: cannot add the minos,hypervisor node ({}): guest VMs disabled",
                e
            );
            None
        }
    }
}

/// Builds [`VMM`] once `HYP` is set: the pool is every whole 2 MiB block of RAM that is not
/// the hypervisor's, no VM's of `/vms` and no device's.
pub fn init(hyp: &'static Hyp, hyp_region: Region) {
    match build(hyp, hyp_region) {
        Ok(v) => {
            let p = v.platform();
            info!(
                "guest pool: {} MiB in 2 MiB blocks; guest RAM appears in VM0 at {:#x}; mvm notification SPI {}",
                p.pool.total() >> 20,
                p.window_start,
                p.notify_spi
            );
            *VMM.lock() = Some(v);
        }
        Err(why) => info!("mvm guests disabled: {}", why),
    }
}

fn build(hyp: &'static Hyp, hyp_region: Region) -> Result<Vmm<HypPlatform>, &'static str> {
    let board = &hyp.board;
    let vm0 = pcpu::vm(0).ok_or("VM0 is not registered")?;
    if vm0.vgic.is_none() {
        return Err("VM0 has the physical GIC (no vGIC to signal it through)");
    }
    let notify_spi = NOTIFY_SPI.load(Ordering::Relaxed);
    if notify_spi == 0 {
        return Err("VM0's DTB has no minos,hypervisor node");
    }
    let (ipa_bits, g) = stage2_geometry().ok_or("no usable stage-2 size")?;
    let range = |r: Region| r.base..r.end();
    let mut reserved: Vec<Range<u64>> = alloc::vec![range(hyp_region)];
    reserved.extend(board.vms.iter().filter_map(|v| v.memory.map(range)));
    reserved.extend(
        (0..pcpu::MAX_VMS)
            .filter_map(pcpu::vm)
            .map(|v| range(v.layout.memory)),
    );
    reserved.extend(board.devices.iter().map(|d| range(d.region)));
    reserved.extend(board.uart.map(range));
    let ram: Vec<Range<u64>> = board.memory.iter().map(|&m| range(m)).collect();
    let pool = BlockPool::carve(&ram, &reserved);
    // VM0's IPA space is identity mapped: its window must also avoid all of RAM.
    let mut taken = reserved.clone();
    taken.extend(ram.iter().cloned());
    let window = placement::vm0_window(&taken, ipa_bits, pool.total().saturating_mul(2))
        .ok_or("no free VM0 IPA range for guest RAM")?;
    let static_vmids = board
        .vms
        .iter()
        .filter(|v| (1..=MAX_VMS).contains(&v.vmid))
        .fold(0u64, |m, v| m | 1 << (v.vmid - 1));
    let cfg = Config {
        nr_pcpus: board.cpus.len() as u32,
        ipa_bits,
        static_vmids,
        reserved,
        vm0_window: window.clone(),
    };
    let vm0_root = vm0.vttbr & 0x0000_ffff_ffff_fffe;
    let mut guests = Vec::new();
    guests.resize_with(MAX_VMS as usize, || None);
    let platform = HypPlatform {
        hyp,
        pool,
        guests,
        ipa_bits,
        vtcr: vtcr(&g, ipa_bits),
        vm0_pt: PageTable::from_root(vm0_root, Format::Stage2, g),
        vm0,
        vm0_ram: vm0.layout.memory,
        notify_spi,
        notify_level: false,
        window_start: window.start,
    };
    Vmm::new(cfg, platform).map_err(|_| "the VM manager's configuration is invalid")
}

/// An HVC/SMC from VM `caller` with `x0..x4`: the answer if it is a Minos call or one of the
/// SMCCC queries the driver makes (`vmm::handshake`, answered even when no VM manager could be
/// built), `None` for the virtual PSCI.
#[inline]
pub fn hvc(caller: u32, x: [u64; 5]) -> Option<[u64; 4]> {
    let fid = x[0] as u32;
    // Ids of the Minos range past its last call stay the virtual PSCI's: it warns about
    // unknown calls once and answers NOT_SUPPORTED like the Vmm would.
    if !hvc::is_minos(fid) || fid & 0xffff >= hvc::ALL.len() as u32 {
        // The handshake ids are SMCCC's, outside the Minos range: no lock for them.
        return vmm::handshake(x);
    }
    match lock_vmm() {
        Some(mut g) => g.as_mut()?.hvc(caller, x),
        // A stopping vCPU never sees the answer.
        None => Some([HvcError::Busy.reg(), 0, 0, 0]),
    }
}

/// Destroys every VM `owner` created (VM0 powering off or resetting).
pub fn release_owner(owner: u32) {
    if let Some(v) = lock_vmm().as_mut().and_then(|g| g.as_mut()) {
        v.release_owner(owner);
    }
}

/// The vCPU of `vm` loaded on this pCPU (it reloads its list registers on the way out).
fn running_here(vm: &Vm) -> Option<usize> {
    pcpu::current(regs::cpu_index())
        .filter(|(c, _)| core::ptr::eq(*c, vm))
        .map(|(_, v)| v)
}

/// Completes a trapped access: a read's value into its register, the PC past it.
fn finish_access(f: &mut Frame, a: MmioAccess, value: u64) {
    if !a.write && a.reg != 31 {
        f.x[usize::from(a.reg)] = a.extend(value);
    }
    f.elr += 4;
}

/// Guest VMs whose vCPU asked PSCI `SYSTEM_OFF`/`RESET`, for the VM manager to see at its
/// next call: the trap path of a stopping vCPU must not wait for the VM manager's lock.
static OFF: [AtomicBool; MAX_VMS as usize + 1] =
    [const { AtomicBool::new(false) }; MAX_VMS as usize + 1];

/// Takes the VM manager's lock from a trap, unless the trapping vCPU is being stopped (then a
/// pCPU holding the lock may be waiting for it to leave: give up).
fn lock_vmm() -> Option<SpinGuard<'static, Option<Vmm<HypPlatform>>>> {
    loop {
        if let Some(mut g) = VMM.try_lock() {
            if let Some(v) = g.as_mut() {
                for (vmid, f) in OFF.iter().enumerate() {
                    if f.swap(false, Ordering::Relaxed) {
                        v.guest_off(vmid as u32);
                    }
                }
            }
            return Some(g);
        }
        if pcpu::current_stopping() {
            return None;
        }
        core::hint::spin_loop();
    }
}

/// Logs what VM `vmid`'s devices wait for, if the VM manager is free right now (called with
/// a run queue locked: never waits for the lock).
pub fn report_outstanding(vmid: u32) {
    let Some(g) = VMM.try_lock() else { return };
    let Some(vmm) = g.as_ref() else { return };
    for o in vmm.outstanding(vmid) {
        info!("stall: vm{} {:?}", vmid, o);
    }
}

/// Guest VM `vmid` powered itself off (its vCPUs are being stopped): its state becomes `OFF`.
pub fn guest_off(vmid: u32) {
    if let Some(f) = OFF.get(vmid as usize) {
        f.store(true, Ordering::Relaxed);
    }
    // Applied now if the lock is free, else by whoever takes it next.
    if let Some(g) = VMM.try_lock() {
        drop(g);
        let _ = lock_vmm();
    }
}

/// A guest's data abort at `ipa` that neither the vGIC nor the UART took: a virtio window or
/// the power button (`vmm::Vmm::mmio`). False when it is none of them (inject the abort).
pub fn mmio(vm: &Vm, v: usize, frame: &mut Frame, esr: Esr, ipa: u64) -> bool {
    let vmid = vm.config.vmid;
    if vmid == 0 {
        return false;
    }
    let Some(a) = esr.mmio() else { return false };
    let Some(mut guard) = lock_vmm() else {
        // This vCPU is being stopped: it never runs this access again.
        return true;
    };
    let Some(vmm) = guard.as_mut() else {
        return false;
    };
    let raw = if a.reg == 31 {
        0
    } else {
        frame.x[usize::from(a.reg)]
    };
    let access = Access {
        offset: 0,
        width: u32::from(a.size),
        write: a.write,
        value: if a.size == 8 {
            raw
        } else {
            raw & ((1u64 << (a.size * 8)) - 1)
        },
    };
    match vmm.mmio(vmid, v as u32, ipa, access) {
        MmioOutcome::NotMine => false,
        MmioOutcome::Done(val) => {
            finish_access(frame, a, val);
            true
        }
        outcome => {
            if outcome == MmioOutcome::Blocked {
                if let Some(w) = vmm
                    .platform_mut()
                    .hw(vmid)
                    .and_then(|h| h.waiting.get_mut(v))
                {
                    *w = Some(a);
                }
            }
            // Under the lock, so mvm's answer cannot come before the vCPU is blocked.
            pcpu::block_current(vmm.platform().hyp);
            true
        }
    }
}

impl HypPlatform {
    fn hw(&mut self, vmid: u32) -> Option<&mut GuestHw> {
        self.guests
            .get_mut((vmid as usize).wrapping_sub(1))
            .and_then(Option::as_mut)
    }

    fn vm(&self, vmid: u32) -> Option<&'static Vm> {
        self.guests
            .get((vmid as usize).wrapping_sub(1))
            .and_then(Option::as_ref)
            .and_then(|h| h.vm)
    }

    /// Checks `[ipa, ipa + len)` lies in VM0's RAM (identity mapped, so also its address).
    fn vm0_ram_range(&self, ipa: u64, len: usize) -> Result<u64, HvcError> {
        let end = ipa.checked_add(len as u64).ok_or(HvcError::BadAddress)?;
        if ipa < self.vm0_ram.base || end > self.vm0_ram.end() {
            return Err(HvcError::BadAddress);
        }
        Ok(ipa)
    }
}

impl Platform for HypPlatform {
    fn pool_total(&self) -> u64 {
        self.pool.total()
    }

    fn pool_free(&self) -> u64 {
        self.pool.free()
    }

    fn alloc_block(&mut self) -> Option<u64> {
        let pa = self.pool.alloc()?;
        // SAFETY: the block is pool RAM (never the hypervisor's or VM0's), identity mapped
        // Normal at EL2, and was just handed out: nobody else uses it.
        unsafe { core::ptr::write_bytes(pa as *mut u8, 0, MEM_ALIGN as usize) };
        Some(pa)
    }

    fn free_block(&mut self, pa: u64) {
        if let Err(e) = self.pool.release(pa) {
            error!("guest pool: {}", e);
        }
    }

    fn stage2_create(&mut self, vmid: u32, mem_base: u64, blocks: &[u64]) -> Result<(), HvcError> {
        let slot = (vmid as usize).wrapping_sub(1);
        if self.guests.get(slot).is_none_or(Option::is_some) {
            return Err(HvcError::InvalidParameter);
        }
        let table_block = self.alloc_block().ok_or(HvcError::NoMemory)?;
        // SAFETY: a pool block just handed out (identity mapped at EL2), used only for this
        // VM's tables until `stage2_destroy` returns it.
        let mut tables = unsafe { TablePages::from_block(table_block) };
        let pt = match stage2::guest_stage2(&mut tables, self.ipa_bits, mem_base, blocks) {
            Ok(pt) => pt,
            Err(e) => {
                warn!("vm{} stage 2: {}", vmid, e);
                self.free_block(table_block);
                return Err(HvcError::NoMemory);
            }
        };
        self.guests[slot] = Some(GuestHw {
            tables,
            table_block,
            pt,
            mem: Region::new(mem_base, blocks.len() as u64 * MEM_ALIGN),
            vgic: None,
            gic: None,
            vm: None,
            blocks: blocks.to_vec(),
            waiting: [None; MAX_CPUS],
        });
        Ok(())
    }

    fn stage2_destroy(&mut self, vmid: u32) {
        let Some(hw) = self
            .guests
            .get_mut((vmid as usize).wrapping_sub(1))
            .and_then(Option::take)
        else {
            return;
        };
        // Nothing runs on these tables any more (the vCPUs were unregistered): drop what
        // any CPU cached from them before the pages can be reused.
        tlbi_vmid(hw.pt.root() | u64::from(vmid & 0xff) << 48);
        self.free_block(hw.table_block);
    }

    fn vm0_map(&mut self, ipa: u64, blocks: &[u64]) -> Result<(), HvcError> {
        let mut pool = POOL.lock();
        let Some(pool) = pool.as_mut() else {
            return Err(HvcError::NoMemory);
        };
        stage2::map_blocks(&mut self.vm0_pt, pool, ipa, blocks).map_err(|e| {
            warn!("VM0 window at {:#x}: {}", ipa, e);
            HvcError::NoMemory
        })
    }

    fn vm0_unmap(&mut self, ipa: u64, len: u64) {
        {
            let mut pool = POOL.lock();
            let Some(pool) = pool.as_mut() else { return };
            stage2::unmap_blocks(&self.vm0_pt, pool, ipa, len / MEM_ALIGN);
        }
        // Before the blocks go back to the pool, no VM0 CPU may still reach them.
        tlbi_vmid(self.vm0.vttbr);
    }

    fn vgic_create(&mut self, vmid: u32, gic: GicSpec) -> Result<(), HvcError> {
        let board_gic = self.hyp.board.gic;
        let (version, host) = match (gic.version, board_gic.version) {
            (3, GicVersion::V3) => (vgic::GicVersion::V3, GicVersion::V3),
            (2, GicVersion::V2) => (vgic::GicVersion::V2, GicVersion::V2),
            // The list registers are the host's: a guest gets the host's GIC generation.
            _ => return Err(HvcError::InvalidParameter),
        };
        let nr_spis = gic::nr_irqs(&board_gic).saturating_sub(32);
        let hw = self.hw(vmid).ok_or(HvcError::NoSuchVm)?;
        let cfg = VgicConfig {
            version,
            nr_vcpus: gic.nr_vcpus as usize,
            nr_spis,
            dist_base: gic.dist,
            redist_base: gic.cpu,
        };
        let mut v = Vgic::try_new(cfg).map_err(|e| {
            warn!("vm{} vGIC: {}", vmid, e);
            HvcError::InvalidParameter
        })?;
        if host == GicVersion::V2 {
            // The guest's GICC is the hardware's virtual CPU interface, as for VM0.
            v.set_software_deactivation(true);
            let size = page_up(board_gic.cpu.size.min(board_gic.vcpu.size));
            hw.pt
                .map(
                    &mut hw.tables,
                    gic.cpu,
                    board_gic.vcpu.base,
                    size,
                    MemKind::Device,
                )
                .map_err(|_| HvcError::InvalidParameter)?;
        }
        hw.vgic = Some(v);
        hw.gic = Some(gic);
        Ok(())
    }

    fn vgic_destroy(&mut self, vmid: u32) {
        if let Some(hw) = self.hw(vmid) {
            hw.vgic = None;
            hw.gic = None;
        }
    }

    fn vcpus_create(
        &mut self,
        vmid: u32,
        count: u32,
        aarch64: bool,
        early_uart: bool,
    ) -> Result<(), HvcError> {
        if !aarch64 {
            return Err(HvcError::InvalidParameter);
        }
        let nr_pcpus = self.hyp.board.cpus.len().max(1);
        let vtcr = self.vtcr;
        let hyp = self.hyp;
        let hw = self.hw(vmid).ok_or(HvcError::NoSuchVm)?;
        let vgic = hw.vgic.take().ok_or(HvcError::BadState)?;
        let count = count as usize;
        if count == 0 || count > MAX_CPUS {
            return Err(HvcError::InvalidParameter);
        }
        let mut affinity = FixedVec::new();
        let mut mpidrs = [0u64; MAX_CPUS];
        for (v, m) in mpidrs.iter_mut().enumerate().take(count) {
            // vCPU i runs on pCPU i % nr_pcpus: a VM's vCPUs spread over the CPUs.
            let _ = affinity.push((v % nr_pcpus) as u32);
            *m = vgic::vcpu_affinity(v);
        }
        let config = VmConfig {
            vmid,
            name: FixedStr::new("mvm"),
            os_type: FixedStr::new("linux"),
            vcpus: count as u32,
            entry: hw.mem.base,
            affinity,
            memory: Some(hw.mem),
            setup_data: None,
            native_wfi: false,
            devices: Default::default(),
        };
        let vm = Vm::new(
            0,
            config,
            VmLayout {
                memory: hw.mem,
                dtb: hw.mem.base,
            },
            Some(SpinLock::new(vgic)),
            Psci::new(&mpidrs[..count], hw.mem),
            hw.pt.root() | u64::from(vmid & 0xff) << 48,
            vtcr,
            early_uart.then(|| {
                let region = Region::new(EARLY_UART_BASE, EARLY_UART_SIZE);
                SpinLock::new(GuestUart::log_only(vmid as u16, region))
            }),
        );
        let vm = pcpu::register_vm(hyp, Box::new(vm)).map_err(|e| {
            warn!("vm{}: cannot schedule its vCPUs: {:?}", vmid, e);
            HvcError::NoMemory
        })?;
        OFF.get(vmid as usize)
            .inspect(|f| f.store(false, Ordering::Relaxed));
        hw.vm = Some(vm);
        Ok(())
    }

    fn vcpus_destroy(&mut self, vmid: u32) {
        let hyp = self.hyp;
        if let Some(hw) = self.hw(vmid) {
            if hw.vm.take().is_some() {
                // Returns once no pCPU runs or holds its vCPUs: their stage 2 is unused.
                drop(pcpu::unregister_vm(hyp, vmid as usize));
            }
            hw.waiting = [None; MAX_CPUS];
        }
    }

    fn vm_start(&mut self, vmid: u32, entry: u64, setup_data: u64) -> Result<(), HvcError> {
        let hyp = self.hyp;
        let hw = self.hw(vmid).ok_or(HvcError::NoSuchVm)?;
        let vm = hw.vm.ok_or(HvcError::BadState)?;
        // A restart: the last run's vCPUs (stopped) must have left their pCPUs before their
        // interrupt state is reset.
        for v in 0..vm.config.vcpus as usize {
            pcpu::wait_unloaded(vm, v);
        }
        hw.waiting = [None; MAX_CPUS];
        if let Some(g) = &vm.vgic {
            g.lock().reset();
        }
        vm.psci.reset();
        // Its virtual count starts near 0 now (a restart too), whatever the time since create.
        vm.cntvoff
            .store(read_sysreg!("cntpct_el0"), Ordering::Relaxed);
        // mvm wrote the images through VM0's cacheable window; the guest starts with its
        // MMU and caches off.
        for &b in &hw.blocks {
            regs::dcache_clean_range(b, MEM_ALIGN);
        }
        pcpu::start_vcpu(hyp, vm, 0, entry, setup_data);
        Ok(())
    }

    fn vm_stop(&mut self, vmid: u32) {
        if let Some(vm) = self.vm(vmid) {
            pcpu::stop_vm(self.hyp, vm);
        }
    }

    fn inject_irq(&mut self, vmid: u32, intid: u32, level: IrqLevel) -> Result<(), HvcError> {
        let vm = self.vm(vmid).ok_or(HvcError::NoSuchVm)?;
        let vgic = vm.vgic.as_ref().ok_or(HvcError::NoSuchVm)?;
        if !(32..1020).contains(&intid) {
            return Err(HvcError::InvalidParameter);
        }
        let kicks = {
            let mut g = vgic.lock();
            match level {
                IrqLevel::High => g.set_level(intid, None, true),
                IrqLevel::Low => g.set_level(intid, None, false),
                IrqLevel::Edge => g.inject(intid, None, None),
            }
        };
        pcpu::notify(self.hyp, vm, kicks, running_here(vm));
        Ok(())
    }

    fn complete_mmio(&mut self, vmid: u32, vcpu: u32, value: u64) {
        let hyp = self.hyp;
        let Some(hw) = self.hw(vmid) else { return };
        let (Some(vm), Some(slot)) = (hw.vm, hw.waiting.get_mut(vcpu as usize)) else {
            return;
        };
        let Some(access) = slot.take() else {
            info!("stall: answer for vm{} vcpu{}: no access waits", vmid, vcpu);
            return;
        };
        pcpu::resume_vcpu(hyp, vm, vcpu as usize, |f| finish_access(f, access, value));
    }

    fn rerun_mmio(&mut self, vmid: u32, vcpu: u32) {
        if let Some(vm) = self.vm(vmid) {
            // Nothing changes: the PC still names the access, which runs again.
            pcpu::resume_vcpu(self.hyp, vm, vcpu as usize, |_| {});
        }
    }

    fn vm0_notify(&mut self, pending: bool) {
        if pending == self.notify_level {
            return;
        }
        self.notify_level = pending;
        let vm0 = self.vm0;
        let Some(vgic) = &vm0.vgic else { return };
        let kicks = vgic.lock().set_level(self.notify_spi, None, pending);
        let here = running_here(vm0);
        pcpu::notify(self.hyp, vm0, kicks, here);
        // A guest that just queued work for mvm yields to the VM0 vCPU that must take it when
        // both share this pCPU: else a guest spinning on its request (virtio-console waits for
        // its buffer) holds the pCPU until its slice ends, and mvm with it.
        let cpu = regs::cpu_index();
        let shares = kicks.iter().any(|v| {
            vm0.config
                .affinity
                .as_slice()
                .get(v)
                .is_some_and(|&p| p as usize == cpu)
        });
        if pending && here.is_none() && shares {
            pcpu::yield_current();
        }
    }

    fn vm0_read(&mut self, ipa: u64, buf: &mut [u8]) -> Result<(), HvcError> {
        let pa = self.vm0_ram_range(ipa, buf.len())?;
        // SAFETY: the range is inside VM0's RAM (checked), identity mapped Normal at EL2;
        // VM0 may change it concurrently, which only affects what VM0 itself asked for.
        unsafe { core::ptr::copy_nonoverlapping(pa as *const u8, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    fn vm0_write(&mut self, ipa: u64, buf: &[u8]) -> Result<(), HvcError> {
        let pa = self.vm0_ram_range(ipa, buf.len())?;
        // SAFETY: as in `vm0_read`: VM0's own RAM, the buffer VM0 passed.
        unsafe { core::ptr::copy_nonoverlapping(buf.as_ptr(), pa as *mut u8, buf.len()) };
        Ok(())
    }

    fn console_read(
        &mut self,
        vmid: u32,
        cursor: u64,
        out: &mut [u8],
    ) -> Result<RingRead, HvcError> {
        let vm = self.vm(vmid).ok_or(HvcError::NoSuchVm)?;
        let uart = vm.vuart.as_ref().ok_or(HvcError::BadState)?;
        let r = uart.lock().log.read_from(cursor, out);
        r.ok_or(HvcError::InvalidParameter)
    }
}
