//! What the VM manager needs from the rest of the hypervisor: the page pool, stage 2, the vGIC,
//! vCPUs and the scheduler, interrupt injection and VM0's memory. The real implementation lives
//! with the trap path; the tests use a fake.

extern crate alloc;

use core::ops::Range;

use minos_abi::types::IrqLevel;
use minos_abi::HvcError;

use crate::vuart::ring::RingRead;

/// Which virtual GIC a new VM gets and where its guest sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GicSpec {
    /// 2 or 3.
    pub version: u8,
    pub nr_vcpus: u32,
    /// Guest IPA of the distributor.
    pub dist: u64,
    /// Guest IPA of the GICv3 redistributors or the GICv2 CPU interface.
    pub cpu: u64,
}

/// The hypervisor services behind the Minos calls. Every method is called with the VM manager's
/// lock held, on the pCPU that trapped; none may wait for VM0.
pub trait Platform {
    /// Bytes of the guest-RAM pool in total, and free now.
    fn pool_total(&self) -> u64;
    fn pool_free(&self) -> u64;
    /// One zeroed, 2 MiB-aligned 2 MiB block of the pool (its physical address), `None` when
    /// the pool is exhausted.
    fn alloc_block(&mut self) -> Option<u64>;
    /// Returns a block [`Self::alloc_block`] handed out.
    fn free_block(&mut self, pa: u64);

    /// Builds VM `vmid`'s stage 2: `blocks[i]` at guest IPA `mem_base + i * 2 MiB`, normal
    /// cacheable; nothing else mapped (device windows trap). Its table pages may come from one
    /// more pool block (see `vmm::stage2::TablePages`), which `stage2_destroy` returns.
    fn stage2_create(&mut self, vmid: u32, mem_base: u64, blocks: &[u64]) -> Result<(), HvcError>;
    /// Frees VM `vmid`'s stage 2 and invalidates its TLB entries.
    fn stage2_destroy(&mut self, vmid: u32);
    /// Maps `blocks` contiguously at VM0 IPA `ipa` (normal cacheable) so mvm can `mmap` them.
    fn vm0_map(&mut self, ipa: u64, blocks: &[u64]) -> Result<(), HvcError>;
    /// Removes `len` bytes at VM0 IPA `ipa` from VM0's stage 2 (TLBs invalidated on return).
    fn vm0_unmap(&mut self, ipa: u64, len: u64);

    fn vgic_create(&mut self, vmid: u32, gic: GicSpec) -> Result<(), HvcError>;
    fn vgic_destroy(&mut self, vmid: u32);
    /// `count` vCPUs, powered off, registered with the scheduler. With `early_uart` the VM
    /// also gets a PL011 at [`EARLY_UART_BASE`](minos_abi::guest::EARLY_UART_BASE) whose
    /// output is only kept in its log ring (VM0 owns the console: nothing is echoed there),
    /// read back by [`Self::console_read`].
    fn vcpus_create(
        &mut self,
        vmid: u32,
        count: u32,
        aarch64: bool,
        early_uart: bool,
    ) -> Result<(), HvcError>;
    /// Removes the (stopped) vCPUs from the scheduler and frees them.
    fn vcpus_destroy(&mut self, vmid: u32);

    /// Resets every vCPU; vCPU 0 becomes runnable at `entry` (EL1h, MMU off, `x0` =
    /// `setup_data`), the others wait for PSCI `CPU_ON`.
    fn vm_start(&mut self, vmid: u32, entry: u64, setup_data: u64) -> Result<(), HvcError>;
    /// Powers every vCPU off now: a vCPU running on another pCPU is kicked out and not
    /// scheduled again; a vCPU waiting for mvm stays off. Also called for a VM never started
    /// (on destroy): then nothing runs and it does nothing.
    fn vm_stop(&mut self, vmid: u32);
    /// Sets (or pulses, for [`IrqLevel::Edge`]) a virtual SPI of VM `vmid`, kicking the pCPU
    /// of the vCPU it targets.
    fn inject_irq(&mut self, vmid: u32, intid: u32, level: IrqLevel) -> Result<(), HvcError>;

    /// The blocking MMIO access vCPU `vcpu` of VM `vmid` made is answered: a read writes
    /// `value` into its destination register; the vCPU steps past the access and becomes
    /// runnable (kicking its pCPU).
    fn complete_mmio(&mut self, vmid: u32, vcpu: u32, value: u64);
    /// vCPU `vcpu` of VM `vmid`, blocked after [`MmioOutcome::Retry`](super::MmioOutcome),
    /// becomes runnable with its PC unchanged: it re-executes the access.
    fn rerun_mmio(&mut self, vmid: u32, vcpu: u32);

    /// Raises (`true`) or lowers VM0's notification interrupt (requests pending for
    /// `VIRTIO_FETCH`).
    fn vm0_notify(&mut self, pending: bool);
    /// Copies from / to VM0 IPA `ipa` through VM0's stage 2 (the buffer was checked with
    /// `minos_abi::call::check_buffer`; the walk must refuse what is not VM0's RAM).
    fn vm0_read(&mut self, ipa: u64, buf: &mut [u8]) -> Result<(), HvcError>;
    fn vm0_write(&mut self, ipa: u64, buf: &[u8]) -> Result<(), HvcError>;

    /// Copies what VM `vmid` wrote to its early UART, from position `cursor` of its output,
    /// into `out` (see [`LogRing::read_from`](crate::vuart::ring::LogRing::read_from)).
    /// `InvalidParameter` for a cursor past its output, `BadState` if it has no early UART.
    fn console_read(
        &mut self,
        vmid: u32,
        cursor: u64,
        out: &mut [u8],
    ) -> Result<RingRead, HvcError>;
}

/// Fixed facts the VM manager checks against.
#[derive(Clone, Debug)]
pub struct Config {
    /// Physical CPUs (answered by `HYP_INFO`).
    pub nr_pcpus: u32,
    /// Guest IPA size in bits (the stage-2 input size guests get, 32..=48): a guest's RAM,
    /// GIC regions and virtio windows must lie below `1 << ipa_bits`.
    pub ipa_bits: u32,
    /// VM ids taken by static VMs (from the DTB's `/vms`): bit `id - 1` for VM id `id`
    /// (1..=64). Those are never created, destroyed or managed through the calls.
    pub static_vmids: u64,
    /// Physical ranges a guest's RAM must never come from: the hypervisor image, heap and page
    /// pool tables, VM0's RAM and devices. (VM0's IPA space is identity-mapped, so they are
    /// also the VM0 IPAs that [`Config::vm0_window`] must avoid.)
    pub reserved: alloc::vec::Vec<Range<u64>>,
    /// VM0 IPA range where guest RAM is mapped for mvm: outside VM0's RAM and devices,
    /// 2 MiB-aligned.
    pub vm0_window: Range<u64>,
}

/// A [`Config`] that cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// The VM0 window is empty, misaligned or overlaps a reserved range.
    BadWindow,
    /// `ipa_bits` is outside 32..=48.
    BadIpaBits,
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ConfigError::BadWindow => f.write_str(
                "the VM0 window for guest RAM is empty, not 2 MiB aligned or overlaps VM0/hypervisor memory",
            ),
            ConfigError::BadIpaBits => f.write_str("the guest IPA size is not 32 to 48 bits"),
        }
    }
}

pub(crate) fn overlaps(a: &Range<u64>, b: &Range<u64>) -> bool {
    a.start < b.end && b.start < a.end
}
