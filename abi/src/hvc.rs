//! Function ids and register conventions of the Minos hypercalls.
//!
//! Every call is `HVC #0` with the function id in `w0`, arguments in `x1..x4` and results in
//! `x0..x3` (SMCCC 1.1, SMC64 convention; `x4..x17` are preserved). The ids are SMCCC fast
//! calls (bit 31), 64-bit convention (bit 30), owner 6 ("vendor specific hypervisor service
//! calls", bits 29:24): `0xC600_0000 + n`.
//!
//! `x0` returns a status: `>= 0` is success (a few calls return a value there), `< 0` an
//! [`HvcError`](crate::HvcError). Every call but [`VERSION`] and [`HYP_INFO`] is VM0-only: any
//! other VM gets [`HvcError::Denied`](crate::HvcError::Denied). An unknown id returns
//! `NOT_SUPPORTED` (`-1`), never a fault.
//!
//! "IPA" arguments are intermediate physical addresses in the caller's (VM0's) address space;
//! a buffer must be 8-byte aligned, lie in VM0's RAM and not cross a 4 KiB page, or the call
//! fails with [`HvcError::BadAddress`](crate::HvcError::BadAddress).

/// SMCCC `SMCCC_VERSION` (arch call, SMC32). The hypervisor answers it (and PSCI_FEATURES of
/// it) with 1.1 or later in VM0: Linux uses the HVC conduit for vendor calls only then, so a
/// kernel on bare hardware never issues an HVC that would be undefined there.
pub const SMCCC_VERSION: u32 = 0x8000_0000;

/// SMCCC "Call UID query" of the vendor-specific hypervisor range (SMC32, function 0xFF01).
/// Returns the four words of [`MINOS_UID`] in `x0..x3`; another hypervisor returns its own
/// UID (KVM's) or `NOT_SUPPORTED`. The driver checks it before any other Minos call.
pub const VENDOR_HYP_CALL_UID: u32 = 0x8600_FF01;

/// The Minos hypervisor's UID (the words returned by [`VENDOR_HYP_CALL_UID`], `x0` first).
pub const MINOS_UID: [u32; 4] = [0x6f6e_696d, 0x7572_2d73, 0x682d_7473, 0x2170_7679];

/// SMCCC: fast call.
pub const SMCCC_FAST: u32 = 1 << 31;
/// SMCCC: SMC64/HVC64 calling convention.
pub const SMCCC_64: u32 = 1 << 30;
/// SMCCC owning entity number: vendor specific hypervisor service calls.
pub const SMCCC_OWNER_VENDOR_HYP: u32 = 6;
/// First id of our range.
pub const BASE: u32 = SMCCC_FAST | SMCCC_64 | SMCCC_OWNER_VENDOR_HYP << 24;

/// The function id of call number `n`.
pub const fn id(n: u16) -> u32 {
    BASE | n as u32
}

/// Whether `fid` is in our range (owner 6, fast, 64-bit).
pub const fn is_minos(fid: u32) -> bool {
    fid & 0xFFFF_0000 == BASE
}

/// Version handshake. `x1` = caller's `ABI_VERSION`. Returns `x0` = the hypervisor's
/// `ABI_VERSION` (always non-negative). Callable from any VM. The hypervisor does not refuse a
/// different major here: both sides compare and the newer one decides (see
/// [`compatible`](crate::compatible)).
pub const VERSION: u32 = id(0);

/// Hypervisor facts. Returns `x0` = 0, `x1` = [`MAX_VCPUS`](crate::MAX_VCPUS) it supports per
/// VM, `x2` = most guest VMs, `x3` = the number of physical CPUs. Callable from any VM.
pub const HYP_INFO: u32 = id(1);

/// Memory pool. Returns `x0` = 0, `x1` = pool bytes in total, `x2` = pool bytes free (what a
/// new VM's RAM can come from; VM0's RAM is never part of it).
pub const MEM_INFO: u32 = id(2);

/// Creates a VM, not running. `x1` = IPA of a [`VmCreate`](crate::types::VmCreate). Its RAM
/// (`mem_size` bytes, zeroed, from the pool) appears at guest IPA `mem_base`; its vGIC is the
/// one `flags` asks for. Returns `x0` = the new VM id (`>= 1`).
pub const VM_CREATE: u32 = id(3);

/// Destroys a VM: stops its vCPUs, unmaps its RAM from VM0, returns the RAM to the pool.
/// `x1` = VM id.
pub const VM_DESTROY: u32 = id(4);

/// Starts (or restarts after [`VM_STOP`]) a VM: vCPU 0 enters the entry point given at
/// creation at EL1h, MMU off, `x0` = `setup_data` (the DTB), other vCPUs wait for PSCI
/// `CPU_ON`. `x1` = VM id.
pub const VM_START: u32 = id(5);

/// Stops every vCPU of a VM now (its RAM and devices stay: it can be reloaded and started
/// again). `x1` = VM id.
pub const VM_STOP: u32 = id(6);

/// Asks the guest to power off cleanly: the hypervisor raises the power-button pin of the
/// VM's emulated PL061 (see [`guest`](crate::guest); mvm puts it and its `gpio-keys` node in
/// the guest DTB). Returns at once; the VM reaches
/// [`VmState::Off`](crate::types::VmState::Off) when the guest calls PSCI `SYSTEM_OFF`.
/// `x1` = VM id.
pub const VM_SHUTDOWN: u32 = id(7);

/// One VM's state. `x1` = VM id, `x2` = IPA of a [`VmInfo`](crate::types::VmInfo) to fill.
pub const VM_INFO: u32 = id(8);

/// Where a VM's RAM is mapped in VM0. `x1` = VM id. Returns `x0` = 0, `x1` = VM0 IPA of the
/// window, `x2` = its size, `x3` = the guest IPA it corresponds to (`mem_base`). The window is
/// normal cacheable memory in VM0's stage 2 and holds exactly that VM's RAM.
pub const VM_MAP_INFO: u32 = id(9);

/// Adds a virtio-mmio register file to a VM (before [`VM_START`]). `x1` = IPA of a
/// [`VirtioDevice`](crate::types::VirtioDevice) (its `vmid` names the VM). Returns `x0` = the
/// device index in that VM.
pub const VIRTIO_ADD: u32 = id(10);

/// Takes pending virtio requests. `x1` = IPA of an array of
/// [`VirtioRequest`](crate::types::VirtioRequest), `x2` = its capacity. Returns `x0` = the
/// number written. The hypervisor raises VM0's notification interrupt (see
/// [`VM0_DT_COMPATIBLE`](crate::VM0_DT_COMPATIBLE)) while requests are pending.
pub const VIRTIO_FETCH: u32 = id(11);

/// Completes a blocking request (status or config access): the vCPU that made it resumes.
/// `x1` = VM id, `x2` = device index, `x3` = the value a read returns (ignored for writes).
/// A device has at most one blocking request pending.
pub const VIRTIO_ACK: u32 = id(12);

/// Sets a guest interrupt line. `x1` = VM id, `x2` = INTID (an SPI of that VM), `x3` =
/// [`IrqLevel`](crate::types::IrqLevel).
pub const VM_IRQ: u32 = id(13);

/// One virtqueue as the guest configured it. `x1` = VM id, `x2` = device index, `x3` = queue
/// index. Returns `x0` = `QueueNum | QueueReady << 16`, `x1` = descriptor table IPA, `x2` =
/// driver ring IPA, `x3` = device ring IPA.
pub const VIRTIO_QUEUE: u32 = id(14);

/// Reads what a VM created with [`VM_FLAG_EARLYPRINTK`](crate::types::VM_FLAG_EARLYPRINTK)
/// wrote to its early console (the PL011 at
/// [`EARLY_UART_BASE`](crate::guest::EARLY_UART_BASE)). The hypervisor keeps the last 16 KiB;
/// a cursor counts every byte the VM ever wrote there (0 at creation, not reset by a restart).
/// `x1` = VM id, `x2` = VM0 IPA of the buffer, `x3` = its capacity (1..=4096: what does not
/// fit in the buffer's page is left for the next call), `x4` = the cursor to read from.
/// Returns `x0` = the number of bytes written to the buffer, `x1` = the cursor after them,
/// `x2` = bytes lost: written after `x4` but overwritten before this read (they are skipped).
/// A cursor past what the VM wrote is `INVALID_PARAMETER`; a VM without the flag, `BAD_STATE`.
pub const VM_CONSOLE_READ: u32 = id(15);

/// Every call, with its C name, in id order (for the C header and tests).
pub const ALL: [(&str, u32); 16] = [
    ("VERSION", VERSION),
    ("HYP_INFO", HYP_INFO),
    ("MEM_INFO", MEM_INFO),
    ("VM_CREATE", VM_CREATE),
    ("VM_DESTROY", VM_DESTROY),
    ("VM_START", VM_START),
    ("VM_STOP", VM_STOP),
    ("VM_SHUTDOWN", VM_SHUTDOWN),
    ("VM_INFO", VM_INFO),
    ("VM_MAP_INFO", VM_MAP_INFO),
    ("VIRTIO_ADD", VIRTIO_ADD),
    ("VIRTIO_FETCH", VIRTIO_FETCH),
    ("VIRTIO_ACK", VIRTIO_ACK),
    ("VM_IRQ", VM_IRQ),
    ("VIRTIO_QUEUE", VIRTIO_QUEUE),
    ("VM_CONSOLE_READ", VM_CONSOLE_READ),
];

/// Whether any VM may make the call (the rest are VM0-only).
pub const fn allowed_for_any_vm(fid: u32) -> bool {
    fid == VERSION || fid == HYP_INFO
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_fast_smc64_vendor_hyp() {
        assert_eq!(BASE, 0xC600_0000);
        for (i, (_, fid)) in ALL.iter().enumerate() {
            assert_eq!(*fid, 0xC600_0000 + i as u32, "ids are dense and in order");
            assert!(is_minos(*fid));
            assert_eq!(fid >> 31, 1, "fast call");
            assert_eq!(fid >> 30 & 1, 1, "SMC64");
            assert_eq!(fid >> 24 & 0x3f, 6, "owner: vendor hypervisor");
        }
    }

    #[test]
    fn uid_query_is_the_smccc_one_and_spells_minos() {
        assert_eq!(VENDOR_HYP_CALL_UID >> 24 & 0x3f, 6);
        assert_eq!(VENDOR_HYP_CALL_UID & 0xffff, 0xff01);
        assert!(
            !is_minos(VENDOR_HYP_CALL_UID),
            "SMC32, outside our SMC64 range"
        );
        let mut b = [0u8; 16];
        for (i, w) in MINOS_UID.iter().enumerate() {
            b[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        assert_eq!(&b, b"minos-rust-hyvp!");
    }

    #[test]
    fn other_owners_are_not_ours() {
        assert!(!is_minos(0x8400_0008), "PSCI SYSTEM_OFF (SMC32)");
        assert!(!is_minos(0xC400_0003), "PSCI CPU_ON (SMC64)");
        assert!(!is_minos(0x8600_0000), "owner 6 but SMC32");
        assert!(!is_minos(0xC500_0000), "standard hypervisor owner");
    }

    #[test]
    fn only_version_and_info_are_open_to_every_vm() {
        let open: usize = ALL.iter().filter(|(_, f)| allowed_for_any_vm(*f)).count();
        assert_eq!(open, 2);
        assert!(!allowed_for_any_vm(VM_CREATE));
    }
}
