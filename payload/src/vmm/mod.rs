//! The VM manager: the hypervisor's side of the Minos calls (`minos_abi`) and of the guests'
//! virtio-mmio windows, as a state machine over the [`Platform`] trait.
//!
//! # How the trap path and the scheduler drive it
//!
//! One [`Vmm`] exists, behind a lock taken by whichever pCPU traps into it.
//!
//! - **HVC / SMC from any VM** (after the trap decoded `ESR_EL2.EC` = HVC64 or SMC64): call
//!   [`Vmm::hvc`]`(caller_vmid, [x0..x4])` *before* the virtual PSCI. `Some([x0..x3])`: write
//!   the four registers and return to the guest. `None`: not a Minos/SMCCC call; hand it to
//!   `psci` (which answers `NOT_SUPPORTED` for unknown ids). `Vmm::hvc` answers
//!   `SMCCC_VERSION` (1.1), `PSCI_FEATURES(SMCCC_VERSION)`, the vendor-hypervisor UID query and
//!   every Minos call; VM0-only calls from another VM get `DENIED`. It never blocks.
//! - **Data abort in a guest's stage 2** (`ESR_EL2.EC` = 0x24, ISV set, decoded by `esr`): for a
//!   guest VM (not VM0), call [`Vmm::mmio`]`(vmid, vcpu, ipa, access)`:
//!   - [`MmioOutcome::NotMine`]: neither a virtio window nor the power-button PL061
//!     ([`pl061`], which `VM_SHUTDOWN` presses) is there; try the other emulated devices,
//!     else inject the abort as today;
//!   - [`MmioOutcome::Done`]`(v)`: write `v` into `Rt` for a read, step `ELR_EL2` past the
//!     access, return to the guest (`QueueNotify` ends here: mvm is told asynchronously);
//!   - [`MmioOutcome::Blocked`]: **the vCPU blocks** — save `Rt`/width/sign-extension with the
//!     vCPU, do not step the PC yet, and tell the scheduler to block it (`RunQueue::block`)
//!     and pick another vCPU; the pCPU never waits at EL2 for VM0;
//!   - [`MmioOutcome::Retry`]: another vCPU's request on that device is outstanding (the ABI
//!     allows one per device); do not step the PC and block the vCPU like `Blocked`. When the
//!     outstanding request is answered the Vmm calls [`Platform::rerun_mmio`] for it: make it
//!     runnable with the PC unchanged, so it re-executes the access (no vCPU spins on it).
//! - **mvm's answer resumes it**: mvm's `VIRTIO_ACK` reaches [`Vmm::hvc`] on VM0's pCPU, which
//!   calls [`Platform::complete_mmio`]`(vmid, vcpu, value)`: write `value` into the saved `Rt`
//!   (reads), step the PC, `RunQueue::wake` the vCPU and kick its pCPU with an SGI if it idles.
//! - **VM0's notification interrupt**: the Vmm calls [`Platform::vm0_notify`]`(true)` whenever
//!   a request is queued (a `QueueNotify`, a blocking access) and `(false)` once
//!   `VIRTIO_FETCH` drained them all; the platform sets/clears a level virtual SPI in VM0's
//!   vGIC (the `interrupts` of VM0's `minos,hypervisor` node). The driver's threaded handler
//!   calls `VIRTIO_FETCH` until it returns 0.
//! - **Early console**: a VM created with `VM_FLAG_EARLYPRINTK` gets a PL011 at
//!   `EARLY_UART_BASE` from [`Platform::vcpus_create`]; the trap path serves it like a static
//!   guest's console, but its output only goes to the VM's log ring, which `VM_CONSOLE_READ`
//!   reads through [`Platform::console_read`] for mvm's pty.
//! - **Used buffers**: mvm's `VM_IRQ` (`IRQ_EDGE` on a device's INTID) sets that device's
//!   `InterruptStatus` and calls [`Platform::inject_irq`].
//! - **Guest power-off**: when a guest VM calls PSCI `SYSTEM_OFF`, the trap path stops its
//!   vCPUs and calls [`Vmm::guest_off`]; its state becomes `OFF` and its outstanding requests
//!   are dropped.
//! - **Owner gone**: minos.ko destroys every VM a closing `/dev/minos` file owned with
//!   `VM_DESTROY`. When VM0 itself resets or powers off (PSCI from VM0), the trap path calls
//!   [`Vmm::release_owner`]`(0)`: every VM VM0 created is destroyed and its RAM returns to the
//!   pool, so a rebooted VM0 starts from a clean pool.
//!
//! Every argument is checked before anything is allocated, every failure part-way through
//! creation rolls back what was built, and `VM_DESTROY` returns every block to the pool.
//!
//! # Wiring it up (what the integration provides)
//!
//! - [`Config`]: `reserved` = the hypervisor region, VM0's RAM and every device range VM0 sees
//!   (its IPA space is identity-mapped); `vm0_window` = a 2 MiB-aligned IPA range above all of
//!   them (e.g. from 4 GiB up) where guest RAM appears in VM0 for mvm's `mmap`;
//!   `static_vmids` = the ids of `/vms` VMs.
//! - The pool: a [`BlockPool`] carved from the DTB's memory minus `reserved`; `alloc_block`
//!   zeroes the block before returning it.
//! - Stage 2 ([`stage2`]): `stage2_create` takes one more pool block for the guest's tables
//!   ([`stage2::TablePages::from_block`], [`stage2::guest_stage2`]) and `stage2_destroy`
//!   returns it; `vm0_map`/`vm0_unmap` use [`stage2::map_blocks`]/[`stage2::unmap_blocks`] on
//!   VM0's table, then `TLBI VMALLS12E1IS` for VMID 0 (and for the guest's VMID on destroy).
//! - vCPUs: each guest vCPU gets `CNTVOFF_EL2` = the counter at `vm_start`, so its virtual
//!   timer starts at 0, and the vGIC `gic` asks for (`vgic::Vgic`, v2 or v3).
//! - VM0's device tree ([`vm0_dtb`]): `/psci` `method = "hvc"` ([`vm0_dtb::psci_over_hvc`];
//!   without it Linux picks the SMC conduit and minos.ko refuses to load), and the
//!   `minos,hypervisor` node with one free SPI, level high ([`vm0_dtb::add_hypervisor_node`]):
//!   the line [`Platform::vm0_notify`] drives.

mod block_pool;
pub mod pl061;
pub mod placement;
mod platform;
pub mod stage2;
#[cfg(test)]
mod tests;
pub mod vm0_dtb;

pub use block_pool::{BlockPool, FreeError};
pub use platform::{Config, ConfigError, GicSpec, Platform};

use alloc::vec::Vec;
use core::ops::Range;

use minos_abi::call::{check_buffer, check_virtio_device, check_vm_create, gic_sizes, Call};
use minos_abi::guest::{
    EARLY_UART_BASE, EARLY_UART_SIZE, POWER_GPIO_BASE, POWER_GPIO_INTID, POWER_GPIO_PIN,
    POWER_GPIO_SIZE,
};
use minos_abi::types::{
    IrqLevel, RequestKind, VirtioDevice, VirtioRequest, VmCreate, VmInfo, VmState, VM_FLAG_64BIT,
    VM_FLAG_EARLYPRINTK, VM_FLAG_GICV3,
};
use minos_abi::{hvc, HvcError, ABI_VERSION, MAX_DEVICES, MAX_VCPUS, MAX_VMS, MEM_ALIGN};
use pl061::Pl061;
use platform::overlaps;

use crate::virtio_mmio::{Access, Blocking, Effect, MmioDevice, WINDOW};

extern crate alloc;

/// `SMCCC_VERSION`'s answer: 1.1.
pub const SMCCC_VERSION_1_1: u64 = 0x1_0001;
/// SMCCC `SMCCC_ARCH_FEATURES` (SMC32): mandatory from SMCCC 1.1 on, which we claim.
const SMCCC_ARCH_FEATURES: u32 = 0x8000_0001;
/// SMCCC's `NOT_SUPPORTED` (-1) in a 64-bit register.
const SMCCC_NOT_SUPPORTED: u64 = u64::MAX;
/// Arm TRNG `TRNG_VERSION` (SMC32, DEN0098).
const TRNG_VERSION: u32 = 0x8400_0050;
/// PSCI `PSCI_FEATURES` (SMC32).
const PSCI_FEATURES: u32 = 0x8400_000a;

/// The early UART's window (`VM_FLAG_EARLYPRINTK`).
const EARLY_UART: Range<u64> = EARLY_UART_BASE..EARLY_UART_BASE + EARLY_UART_SIZE;

/// What the trap path does after a guest's access to one of its emulated windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmioOutcome {
    /// Neither a virtio window nor the power-button PL061 of this VM.
    NotMine,
    /// Finished: the value a read returns (0 for writes); step the PC.
    Done(u64),
    /// The vCPU waits for mvm: block it; [`Platform::complete_mmio`] resumes it.
    Blocked,
    /// Block the vCPU without stepping its PC; [`Platform::rerun_mmio`] wakes it to
    /// re-execute the access.
    Retry,
}

struct Device {
    regs: MmioDevice,
    base: u64,
    intid: u32,
    /// Queues notified since the last `VIRTIO_FETCH` (bit per queue).
    notify: u32,
    /// The outstanding blocking request: who waits, and whether mvm has fetched it.
    waiter: Option<Waiter>,
    /// vCPUs (bit per vCPU) whose blocking access found `waiter` taken: they re-execute it
    /// once `waiter` is answered.
    retry: u32,
}

/// What one device of a guest waits for (see [`Vmm::outstanding`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outstanding {
    pub device: usize,
    /// The vCPU blocked on its request, if any.
    pub waiter: Option<u32>,
    /// Whether mvm has fetched that request.
    pub fetched: bool,
    /// vCPUs that will re-run their access once it is answered (bit per vCPU).
    pub retry: u32,
    /// Queues notified and not fetched yet (bit per queue).
    pub notified: u32,
}

#[derive(Clone, Copy)]
struct Waiter {
    vcpu: u32,
    req: Blocking,
    fetched: bool,
}

struct Guest {
    params: VmCreate,
    state: VmState,
    owner: u32,
    blocks: Vec<u64>,
    /// VM0 IPA where its RAM is mapped for mvm.
    window: u64,
    devices: Vec<Device>,
    /// The power-button GPIO controller and the level its interrupt line was last set to.
    gpio: Pl061,
    gpio_line: bool,
}

impl Guest {
    fn ram(&self) -> Range<u64> {
        self.params.mem_base..self.params.mem_base + self.params.mem_size
    }

    fn window(&self) -> Range<u64> {
        self.window..self.window + self.params.mem_size
    }

    fn early_uart(&self) -> bool {
        self.params.flags & VM_FLAG_EARLYPRINTK != 0
    }

    /// Guest IPA ranges already taken: RAM, the GIC regions, the power-button PL061, the
    /// early UART if it has one and every virtio window.
    fn taken(&self) -> Vec<Range<u64>> {
        let (dist, cpu) = gic_sizes(&self.params);
        let mut v = alloc::vec![
            self.ram(),
            self.params.gic_dist..self.params.gic_dist + dist,
            self.params.gic_cpu..self.params.gic_cpu + cpu,
            POWER_GPIO_BASE..POWER_GPIO_BASE + POWER_GPIO_SIZE,
        ];
        if self.early_uart() {
            v.push(EARLY_UART);
        }
        v.extend(self.devices.iter().map(|d| d.base..d.base + WINDOW));
        v
    }

    /// Drops every outstanding request (the vCPUs are stopped): nobody waits any more.
    fn drop_requests(&mut self) {
        for d in &mut self.devices {
            d.regs.cancel();
            d.waiter = None;
            d.notify = 0;
            d.retry = 0;
        }
    }
}

/// The VM manager.
pub struct Vmm<P: Platform> {
    platform: P,
    cfg: Config,
    /// Index `vmid - 1`.
    vms: Vec<Option<Guest>>,
    /// VM id `VIRTIO_FETCH` starts from next, so one busy VM cannot starve the others.
    fetch_from: u32,
}

/// The calls minos.ko makes at load — `SMCCC_VERSION`, `PSCI_FEATURES(SMCCC_VERSION)`, the
/// vendor-hypervisor UID and the ABI `VERSION` — and `SMCCC_ARCH_FEATURES` (SMCCC 1.1 makes it
/// mandatory; Linux asks it once the version says 1.1) and `TRNG_VERSION` (absent), answered from `minos_abi`'s constants alone,
/// so the trap path can answer them before a [`Vmm`] (and its [`Platform`]) exists. `None`:
/// not one of them.
pub fn handshake(x: [u64; 5]) -> Option<[u64; 4]> {
    match x[0] as u32 {
        hvc::SMCCC_VERSION => Some(reply(SMCCC_VERSION_1_1)),
        PSCI_FEATURES if x[1] as u32 == hvc::SMCCC_VERSION => Some(reply(0)),
        // No arch workaround or extension is implemented: only the query itself exists.
        SMCCC_ARCH_FEATURES => Some(reply(if x[1] as u32 == SMCCC_ARCH_FEATURES {
            0
        } else {
            SMCCC_NOT_SUPPORTED
        })),
        hvc::VENDOR_HYP_CALL_UID => Some(hvc::MINOS_UID.map(u64::from)),
        // No TRNG: the answer its spec gives for that, without the trap path's unknown-call
        // warning (Linux probes it on every boot once SMCCC says 1.1).
        TRNG_VERSION => Some(reply(SMCCC_NOT_SUPPORTED)),
        // Both sides compare versions; the hypervisor only tells its own.
        hvc::VERSION => Some(Call::decode(x).map_or_else(err, |_| reply(u64::from(ABI_VERSION)))),
        _ => None,
    }
}

fn reply(x0: u64) -> [u64; 4] {
    [x0, 0, 0, 0]
}

fn err(e: HvcError) -> [u64; 4] {
    reply(e.reg())
}

fn as_bytes<T: Copy>(v: &T) -> &[u8] {
    // SAFETY: only used on the ABI's `#[repr(C)]` structs, whose sizes are pinned by const
    // assertions to the sum of their fields (no padding bytes to read).
    unsafe { core::slice::from_raw_parts((v as *const T).cast::<u8>(), core::mem::size_of::<T>()) }
}

fn from_bytes<T: Copy + Default>(b: &[u8]) -> T {
    let mut v = T::default();
    let n = core::mem::size_of::<T>().min(b.len());
    // SAFETY: `T` is one of the ABI's `#[repr(C)]` structs of integer fields, for which every
    // byte pattern is a valid value; at most `size_of::<T>()` bytes are written.
    unsafe { core::ptr::copy_nonoverlapping(b.as_ptr(), (&mut v as *mut T).cast::<u8>(), n) };
    v
}

impl<P: Platform> Vmm<P> {
    pub fn new(cfg: Config, platform: P) -> Result<Self, ConfigError> {
        let w = &cfg.vm0_window;
        if w.start >= w.end
            || !w.start.is_multiple_of(MEM_ALIGN)
            || !w.end.is_multiple_of(MEM_ALIGN)
            || cfg.reserved.iter().any(|r| overlaps(r, w))
        {
            return Err(ConfigError::BadWindow);
        }
        if !(32..=48).contains(&cfg.ipa_bits) {
            return Err(ConfigError::BadIpaBits);
        }
        let mut vms = Vec::new();
        vms.resize_with(MAX_VMS as usize, || None);
        Ok(Vmm {
            platform,
            cfg,
            vms,
            fetch_from: 1,
        })
    }

    pub fn platform(&self) -> &P {
        &self.platform
    }

    pub fn platform_mut(&mut self) -> &mut P {
        &mut self.platform
    }

    /// VM ids created through the calls (ascending).
    pub fn vmids(&self) -> impl Iterator<Item = u32> + '_ {
        (1..=MAX_VMS).filter(|&id| self.vms[id as usize - 1].is_some())
    }

    /// The state of a VM created through the calls.
    pub fn state(&self, vmid: u32) -> Option<VmState> {
        self.guest(vmid).ok().map(|g| g.state)
    }

    fn guest(&self, vmid: u32) -> Result<&Guest, HvcError> {
        let i = (vmid as usize).wrapping_sub(1);
        self.vms
            .get(i)
            .and_then(Option::as_ref)
            .ok_or(HvcError::NoSuchVm)
    }

    fn guest_mut(&mut self, vmid: u32) -> Result<&mut Guest, HvcError> {
        let i = (vmid as usize).wrapping_sub(1);
        self.vms
            .get_mut(i)
            .and_then(Option::as_mut)
            .ok_or(HvcError::NoSuchVm)
    }

    /// An HVC or SMC from VM `caller` (0 = VM0) with `x0..x4`: `Some(x0..x3)` when it is
    /// answered here, `None` when it belongs to the virtual PSCI.
    pub fn hvc(&mut self, caller: u32, x: [u64; 5]) -> Option<[u64; 4]> {
        if let Some(r) = handshake(x) {
            return Some(r);
        }
        if !hvc::is_minos(x[0] as u32) {
            return None;
        }
        Some(match Call::decode_from(caller, x) {
            Ok(call) => self.call(caller, call).unwrap_or_else(err),
            Err(e) => err(e),
        })
    }

    fn call(&mut self, caller: u32, call: Call) -> Result<[u64; 4], HvcError> {
        Ok(match call {
            // Both sides compare versions; the hypervisor only tells its own.
            Call::Version { .. } => reply(u64::from(ABI_VERSION)),
            Call::HypInfo => [
                0,
                u64::from(MAX_VCPUS),
                u64::from(MAX_VMS - self.cfg.static_vmids.count_ones()),
                u64::from(self.cfg.nr_pcpus),
            ],
            Call::MemInfo => [0, self.platform.pool_total(), self.platform.pool_free(), 0],
            Call::VmCreate { buf } => reply(u64::from(self.vm_create(caller, buf)?)),
            Call::VmDestroy { vmid } => {
                self.vm_destroy(vmid)?;
                reply(0)
            }
            Call::VmStart { vmid } => {
                self.vm_start(vmid)?;
                reply(0)
            }
            Call::VmStop { vmid } => {
                self.vm_stop(vmid)?;
                reply(0)
            }
            Call::VmShutdown { vmid } => {
                self.vm_shutdown(vmid)?;
                reply(0)
            }
            Call::VmInfo { vmid, buf } => {
                self.vm_info(vmid, buf)?;
                reply(0)
            }
            Call::VmMapInfo { vmid } => {
                let g = self.guest(vmid)?;
                [0, g.window, g.params.mem_size, g.params.mem_base]
            }
            Call::VirtioAdd { buf } => reply(u64::from(self.virtio_add(buf)?)),
            Call::VirtioFetch { buf, capacity } => reply(self.virtio_fetch(buf, capacity)?),
            Call::VirtioAck {
                vmid,
                device,
                value,
            } => {
                self.virtio_ack(vmid, device, value)?;
                reply(0)
            }
            Call::VmIrq { vmid, intid, level } => {
                self.vm_irq(vmid, intid, level)?;
                reply(0)
            }
            Call::VirtioQueue {
                vmid,
                device,
                queue,
            } => {
                let g = self.guest(vmid)?;
                let d = g
                    .devices
                    .get(device as usize)
                    .ok_or(HvcError::InvalidParameter)?;
                let q = d.regs.queue(queue).ok_or(HvcError::InvalidParameter)?;
                [
                    u64::from(q.num) | u64::from(q.ready) << 16,
                    q.desc,
                    q.driver,
                    q.device,
                ]
            }
            Call::ConsoleRead {
                vmid,
                buf,
                capacity,
                cursor,
            } => self.console_read(vmid, buf, capacity, cursor)?,
        })
    }

    fn read_buf<T: Copy + Default>(&mut self, ipa: u64) -> Result<T, HvcError> {
        let mut b = [0u8; 128];
        let n = core::mem::size_of::<T>();
        check_buffer(ipa, n as u64)?;
        self.platform.vm0_read(ipa, &mut b[..n])?;
        Ok(from_bytes(&b[..n]))
    }

    fn vm_create(&mut self, owner: u32, buf: u64) -> Result<u32, HvcError> {
        let p: VmCreate = self.read_buf(buf)?;
        check_vm_create(&p)?;
        let ram = p.mem_base..p.mem_base + p.mem_size;
        // The guest's fixed devices (minos_abi::guest) must stay clear of its RAM, and
        // everything must fit the guest's IPA size.
        let (dist, cpu) = gic_sizes(&p);
        let top = 1u64 << self.cfg.ipa_bits;
        let fits = [ram.end, p.gic_dist + dist, p.gic_cpu + cpu]
            .iter()
            .all(|&end| end <= top);
        let early = p.flags & VM_FLAG_EARLYPRINTK != 0;
        if !fits
            || overlaps(&ram, &(POWER_GPIO_BASE..POWER_GPIO_BASE + POWER_GPIO_SIZE))
            || (early && overlaps(&ram, &EARLY_UART))
        {
            return Err(HvcError::InvalidParameter);
        }
        let vmid = (1..=MAX_VMS)
            .find(|&id| self.cfg.static_vmids >> (id - 1) & 1 == 0 && self.guest(id).is_err())
            .ok_or(HvcError::NoMemory)?;
        let window = self.find_window(p.mem_size).ok_or(HvcError::NoMemory)?;
        let blocks = self.alloc_blocks(p.mem_size / MEM_ALIGN)?;
        let gic = GicSpec {
            version: if p.flags & VM_FLAG_GICV3 != 0 { 3 } else { 2 },
            nr_vcpus: p.nr_vcpus,
            dist: p.gic_dist,
            cpu: p.gic_cpu,
        };
        if let Err(e) = self.build(vmid, &p, &blocks, window, gic) {
            for &b in &blocks {
                self.platform.free_block(b);
            }
            return Err(e);
        }
        self.vms[vmid as usize - 1] = Some(Guest {
            params: p,
            state: VmState::Created,
            owner,
            blocks,
            window,
            devices: Vec::new(),
            gpio: Pl061::default(),
            gpio_line: false,
        });
        Ok(vmid)
    }

    /// Builds stage 2, the VM0 mapping, the vGIC and the vCPUs, undoing what was built when a
    /// step fails.
    fn build(
        &mut self,
        vmid: u32,
        p: &VmCreate,
        blocks: &[u64],
        window: u64,
        gic: GicSpec,
    ) -> Result<(), HvcError> {
        let pl = &mut self.platform;
        pl.stage2_create(vmid, p.mem_base, blocks)?;
        if let Err(e) = pl.vm0_map(window, blocks) {
            pl.stage2_destroy(vmid);
            return Err(e);
        }
        if let Err(e) = pl.vgic_create(vmid, gic) {
            pl.vm0_unmap(window, p.mem_size);
            pl.stage2_destroy(vmid);
            return Err(e);
        }
        let aarch64 = p.flags & VM_FLAG_64BIT != 0;
        let early_uart = p.flags & VM_FLAG_EARLYPRINTK != 0;
        if let Err(e) = pl.vcpus_create(vmid, p.nr_vcpus, aarch64, early_uart) {
            pl.vgic_destroy(vmid);
            pl.vm0_unmap(window, p.mem_size);
            pl.stage2_destroy(vmid);
            return Err(e);
        }
        Ok(())
    }

    /// `count` pool blocks, each checked to be aligned, clear of reserved memory and of every
    /// other VM's RAM; all or nothing.
    fn alloc_blocks(&mut self, count: u64) -> Result<Vec<u64>, HvcError> {
        let mut blocks: Vec<u64> = Vec::new();
        let mut fail = None;
        for _ in 0..count {
            let Some(b) = self.platform.alloc_block() else {
                fail = Some(HvcError::NoMemory);
                break;
            };
            let r = b..b.saturating_add(MEM_ALIGN);
            let bad = !b.is_multiple_of(MEM_ALIGN)
                || self.cfg.reserved.iter().any(|x| overlaps(x, &r))
                || blocks.contains(&b)
                || self.vms.iter().flatten().any(|g| g.blocks.contains(&b));
            if bad {
                // A pool handing out memory that is not its own is a hypervisor bug: never give
                // it to a guest, and do not return it to the pool either.
                fail = Some(HvcError::NoMemory);
                break;
            }
            blocks.push(b);
        }
        if let Some(e) = fail {
            for b in blocks {
                self.platform.free_block(b);
            }
            return Err(e);
        }
        Ok(blocks)
    }

    /// First-fit VM0 IPA range of `size` bytes inside the window, clear of every VM's.
    fn find_window(&self, size: u64) -> Option<u64> {
        let mut used: Vec<Range<u64>> = self.vms.iter().flatten().map(Guest::window).collect();
        used.sort_by_key(|r| r.start);
        let mut at = self.cfg.vm0_window.start;
        for r in used {
            if at.checked_add(size)? <= r.start {
                break;
            }
            at = at.max(r.end);
        }
        (at.checked_add(size)? <= self.cfg.vm0_window.end).then_some(at)
    }

    fn vm_destroy(&mut self, vmid: u32) -> Result<(), HvcError> {
        self.guest(vmid)?;
        let Some(g) = self.vms[vmid as usize - 1].take() else {
            return Err(HvcError::NoSuchVm);
        };
        let pl = &mut self.platform;
        pl.vm_stop(vmid);
        pl.vcpus_destroy(vmid);
        pl.vgic_destroy(vmid);
        pl.vm0_unmap(g.window, g.params.mem_size);
        pl.stage2_destroy(vmid);
        for &b in &g.blocks {
            pl.free_block(b);
        }
        self.update_notify();
        Ok(())
    }

    fn vm_start(&mut self, vmid: u32) -> Result<(), HvcError> {
        let g = self.guest_mut(vmid)?;
        if !matches!(g.state, VmState::Created | VmState::Off) {
            return Err(HvcError::BadState);
        }
        let (entry, setup) = (g.params.entry, g.params.setup_data);
        self.platform.vm_start(vmid, entry, setup)?;
        let g = self.guest_mut(vmid)?;
        g.state = VmState::Running;
        for d in &mut g.devices {
            d.regs.power_on_reset();
        }
        // A new boot finds the button released and its controller reset.
        g.gpio = Pl061::default();
        self.sync_gpio(vmid)
    }

    /// Sets the power-button controller's interrupt line to its model's level, if it moved.
    fn sync_gpio(&mut self, vmid: u32) -> Result<(), HvcError> {
        let g = self.guest_mut(vmid)?;
        let line = g.gpio.line();
        if line == g.gpio_line {
            return Ok(());
        }
        g.gpio_line = line;
        let level = if line { IrqLevel::High } else { IrqLevel::Low };
        self.platform.inject_irq(vmid, POWER_GPIO_INTID, level)
    }

    fn vm_stop(&mut self, vmid: u32) -> Result<(), HvcError> {
        let g = self.guest_mut(vmid)?;
        if !matches!(g.state, VmState::Running | VmState::ShuttingDown) {
            return Err(HvcError::BadState);
        }
        self.platform.vm_stop(vmid);
        self.guest_off(vmid);
        Ok(())
    }

    fn vm_shutdown(&mut self, vmid: u32) -> Result<(), HvcError> {
        let g = self.guest_mut(vmid)?;
        if g.state != VmState::Running {
            return Err(HvcError::BadState);
        }
        g.gpio.set_input(POWER_GPIO_PIN, true);
        g.state = VmState::ShuttingDown;
        self.sync_gpio(vmid)
    }

    /// A guest VM's vCPUs were stopped (PSCI `SYSTEM_OFF`, or `VM_STOP`): its state becomes
    /// `OFF` and nobody waits for mvm's answers any more.
    pub fn guest_off(&mut self, vmid: u32) {
        if let Ok(g) = self.guest_mut(vmid) {
            g.state = VmState::Off;
            g.drop_requests();
            self.update_notify();
        }
    }

    /// Destroys every VM `owner` created (VM0 reset or powered off).
    pub fn release_owner(&mut self, owner: u32) {
        let ids: Vec<u32> = self
            .vmids()
            .filter(|&id| self.guest(id).is_ok_and(|g| g.owner == owner))
            .collect();
        for id in ids {
            // The id was just listed: destroying it cannot fail.
            let _ = self.vm_destroy(id);
        }
    }

    fn vm_info(&mut self, vmid: u32, buf: u64) -> Result<(), HvcError> {
        check_buffer(buf, core::mem::size_of::<VmInfo>() as u64)?;
        let g = self.guest(vmid)?;
        let p = &g.params;
        let info = VmInfo {
            vmid,
            state: g.state as u32,
            nr_vcpus: p.nr_vcpus,
            flags: p.flags,
            mem_base: p.mem_base,
            mem_size: p.mem_size,
            entry: p.entry,
            setup_data: p.setup_data,
            owner_pid: 0,
            reserved: 0,
            name: p.name,
        };
        self.platform.vm0_write(buf, as_bytes(&info))
    }

    fn virtio_add(&mut self, buf: u64) -> Result<u32, HvcError> {
        let d: VirtioDevice = self.read_buf(buf)?;
        check_virtio_device(&d)?;
        let vmid = d.vmid;
        let ipa_bits = self.cfg.ipa_bits;
        let g = self.guest_mut(vmid)?;
        if g.state != VmState::Created {
            return Err(HvcError::BadState);
        }
        if g.devices.len() >= MAX_DEVICES as usize {
            return Err(HvcError::NoMemory);
        }
        let window = d.base
            ..d.base
                .checked_add(WINDOW)
                .ok_or(HvcError::InvalidParameter)?;
        if window.end > 1u64 << ipa_bits {
            return Err(HvcError::InvalidParameter);
        }
        let intid_taken =
            d.intid == POWER_GPIO_INTID || g.devices.iter().any(|x| x.intid == d.intid);
        if intid_taken || g.taken().iter().any(|r| overlaps(r, &window)) {
            return Err(HvcError::InvalidParameter);
        }
        g.devices.push(Device {
            regs: MmioDevice::new(&d),
            base: d.base,
            intid: d.intid,
            notify: 0,
            waiter: None,
            retry: 0,
        });
        Ok(g.devices.len() as u32 - 1)
    }

    fn virtio_ack(&mut self, vmid: u32, device: u32, value: u64) -> Result<(), HvcError> {
        let g = self.guest_mut(vmid)?;
        let d = g
            .devices
            .get_mut(device as usize)
            .ok_or(HvcError::InvalidParameter)?;
        let w = d.waiter.take().ok_or(HvcError::BadState)?;
        let v = d.regs.complete(value).unwrap_or(0);
        let retry = core::mem::take(&mut d.retry);
        self.platform.complete_mmio(vmid, w.vcpu, v);
        for vcpu in (0..32).filter(|i| retry >> i & 1 != 0) {
            self.platform.rerun_mmio(vmid, vcpu);
        }
        self.update_notify();
        Ok(())
    }

    /// `VM_CONSOLE_READ`: up to `capacity` bytes of the VM's early console from `cursor`,
    /// written at VM0 IPA `buf` (what does not fit in `buf`'s page waits for the next call).
    fn console_read(
        &mut self,
        vmid: u32,
        buf: u64,
        capacity: u64,
        cursor: u64,
    ) -> Result<[u64; 4], HvcError> {
        if !self.guest(vmid)?.early_uart() {
            return Err(HvcError::BadState);
        }
        let cap = capacity.min(4096 - buf % 4096);
        check_buffer(buf, cap)?;
        let mut out = alloc::vec![0u8; cap as usize];
        let r = self.platform.console_read(vmid, cursor, &mut out)?;
        if r.count > 0 {
            self.platform.vm0_write(buf, &out[..r.count])?;
        }
        Ok([r.count as u64, r.cursor, r.lost, 0])
    }

    fn vm_irq(&mut self, vmid: u32, intid: u32, level: IrqLevel) -> Result<(), HvcError> {
        let g = self.guest_mut(vmid)?;
        if level == IrqLevel::Edge {
            if let Some(d) = g.devices.iter_mut().find(|d| d.intid == intid) {
                d.regs.raise_used();
            }
        }
        self.platform.inject_irq(vmid, intid, level)
    }

    /// A guest VM's access to guest IPA `ipa` that faulted in its stage 2.
    pub fn mmio(&mut self, vmid: u32, vcpu: u32, ipa: u64, access: Access) -> MmioOutcome {
        let Ok(g) = self.guest_mut(vmid) else {
            return MmioOutcome::NotMine;
        };
        if (POWER_GPIO_BASE..POWER_GPIO_BASE + POWER_GPIO_SIZE).contains(&ipa) {
            let offset = (ipa - POWER_GPIO_BASE) as u32;
            if !matches!(access.width, 1 | 2 | 4) || !offset.is_multiple_of(access.width) {
                return MmioOutcome::Done(0);
            }
            if !access.write {
                return MmioOutcome::Done(g.gpio.read(offset));
            }
            g.gpio.write(offset, access.value);
            // The VM exists (just looked up): only the injection itself can fail, and a lost
            // level change is retried by the next access.
            let _ = self.sync_gpio(vmid);
            return MmioOutcome::Done(0);
        }
        let Some(d) = g
            .devices
            .iter_mut()
            .find(|d| (d.base..d.base + WINDOW).contains(&ipa))
        else {
            return MmioOutcome::NotMine;
        };
        let access = Access {
            offset: (ipa - d.base) as u32,
            ..access
        };
        let out = match d.regs.access(access) {
            Effect::Done(v) => return MmioOutcome::Done(v),
            Effect::Retry => {
                if vcpu < 32 {
                    d.retry |= 1 << vcpu;
                    return MmioOutcome::Retry;
                }
                // No vCPU this high exists (MAX_VCPUS is 8): nothing would wake it.
                return MmioOutcome::Done(0);
            }
            Effect::Notify(q) => {
                d.notify |= 1 << q;
                MmioOutcome::Done(0)
            }
            Effect::Block(req) => {
                d.waiter = Some(Waiter {
                    vcpu,
                    req,
                    fetched: false,
                });
                MmioOutcome::Blocked
            }
        };
        self.platform.vm0_notify(true);
        out
    }

    /// For a stall report: each device of VM `vmid` with something outstanding.
    pub fn outstanding(&self, vmid: u32) -> Vec<Outstanding> {
        let Ok(g) = self.guest(vmid) else {
            return Vec::new();
        };
        g.devices
            .iter()
            .enumerate()
            .filter(|(_, d)| d.waiter.is_some() || d.retry != 0 || d.notify != 0)
            .map(|(i, d)| Outstanding {
                device: i,
                waiter: d.waiter.map(|w| w.vcpu),
                fetched: d.waiter.is_some_and(|w| w.fetched),
                retry: d.retry,
                notified: d.notify,
            })
            .collect()
    }

    fn pending(&self) -> bool {
        self.vms.iter().flatten().any(|g| {
            g.devices
                .iter()
                .any(|d| d.notify != 0 || d.waiter.is_some_and(|w| !w.fetched))
        })
    }

    fn update_notify(&mut self) {
        let p = self.pending();
        self.platform.vm0_notify(p);
    }

    /// Writes up to `capacity` pending requests at VM0 IPA `buf`, queue notifications of a
    /// device before its blocking request, VMs in turn from where the last fetch stopped.
    fn virtio_fetch(&mut self, buf: u64, capacity: u64) -> Result<u64, HvcError> {
        const SZ: u64 = core::mem::size_of::<VirtioRequest>() as u64;
        if capacity == 0 {
            return Err(HvcError::InvalidParameter);
        }
        // The buffer may not cross its page: take what fits.
        let room = (4096 - buf % 4096) / SZ;
        let cap = capacity.min(room).max(1);
        check_buffer(buf, cap * SZ)?;
        let cap = cap as usize;
        let mut out: Vec<VirtioRequest> = Vec::with_capacity(cap);
        let start = self.fetch_from;
        let mut next = start;
        'vms: for k in 0..MAX_VMS {
            let vmid = (start - 1 + k) % MAX_VMS + 1;
            let Ok(g) = self.guest(vmid) else { continue };
            for (i, d) in g.devices.iter().enumerate() {
                let mut reqs = (0..32u32)
                    .filter(|q| d.notify >> q & 1 != 0)
                    .map(|q| (RequestKind::QueueNotify, q, 0, 4));
                let blocking = d
                    .waiter
                    .filter(|w| !w.fetched)
                    .map(|w| (w.req.kind, w.req.offset, w.req.value, w.req.width));
                for (kind, offset, value, width) in reqs.by_ref().chain(blocking) {
                    if out.len() == cap {
                        next = vmid;
                        break 'vms;
                    }
                    out.push(VirtioRequest {
                        vmid,
                        device: i as u32,
                        kind: kind as u32,
                        offset,
                        value,
                        width,
                        reserved: 0,
                    });
                }
            }
            next = vmid % MAX_VMS + 1;
        }
        let mut bytes = Vec::with_capacity(out.len() * SZ as usize);
        for r in &out {
            bytes.extend_from_slice(as_bytes(r));
        }
        if !bytes.is_empty() {
            self.platform.vm0_write(buf, &bytes)?;
        }
        // Written: now they are mvm's.
        for r in &out {
            if let Ok(g) = self.guest_mut(r.vmid) {
                let d = &mut g.devices[r.device as usize];
                if r.kind == RequestKind::QueueNotify as u32 {
                    d.notify &= !(1 << r.offset);
                } else if let Some(w) = d.waiter.as_mut() {
                    w.fetched = true;
                }
            }
        }
        self.fetch_from = next;
        self.update_notify();
        Ok(out.len() as u64)
    }
}
