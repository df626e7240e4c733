//! The hypercall ABI between the hypervisor, the VM0 driver (`minos.ko`) and mvm: the one
//! source of truth. `no_std`, no dependencies: the hypervisor uses it as is.
//!
//! Three layers, each in its own module:
//!
//! - [`hvc`]: SMCCC function ids (`HVC #0`, fast, SMC64, vendor-specific hypervisor range) and
//!   what each call takes in `x1..x4` and returns in `x0..x3`.
//! - [`error`]: the status codes returned in `x0` (SMCCC's `NOT_SUPPORTED = -1` plus ours).
//! - [`types`]: the `#[repr(C)]` structs shared through memory (hypercall buffers and the
//!   driver's ioctl arguments), with sizes and offsets fixed by const assertions.
//! - [`ioctl`]: the `/dev/minos` ioctl numbers (Linux `_IOC` encoding).
//! - [`call`]: the hypervisor's decoder: registers to a typed [`call::Call`], VM0-only
//!   enforcement, buffer and `VM_CREATE` parameter checks.
//! - [`guest`]: the guest address-map facts both sides use (virtio windows, power button).
//! - [`header`]: writes `mvm/kmod/minos_abi.h`, the C view of all of the above.
//!
//! Version handshake: the driver calls [`hvc::VERSION`] with its [`ABI_VERSION`]; the hypervisor
//! answers with its own; both sides accept only an equal major ([`compatible`]). mvm asks the
//! driver the same with [`ioctl::VERSION`].
#![no_std]

pub mod call;
pub mod error;
pub mod guest;
pub mod header;
pub mod hvc;
pub mod ioctl;
pub mod types;

pub use error::HvcError;

/// ABI major: any incompatible change (a call's meaning, a struct's layout) bumps it.
pub const ABI_MAJOR: u16 = 1;
/// ABI minor: backward-compatible additions (new calls, new flag bits).
pub const ABI_MINOR: u16 = 1;
/// `major << 16 | minor`, as exchanged by [`hvc::VERSION`] and [`ioctl::VERSION`].
pub const ABI_VERSION: u32 = version(ABI_MAJOR, ABI_MINOR);

/// Packs a version the way the handshake exchanges it.
pub const fn version(major: u16, minor: u16) -> u32 {
    (major as u32) << 16 | minor as u32
}

/// `(major, minor)` of a packed version.
pub const fn split_version(v: u32) -> (u16, u16) {
    ((v >> 16) as u16, v as u16)
}

/// Whether a peer speaking `peer` can talk to us: same major. A newer minor on either side only
/// adds calls the other does not make.
pub const fn compatible(peer: u32) -> bool {
    split_version(peer).0 == ABI_MAJOR
}

/// The `compatible` string of the node the hypervisor adds to VM0's device tree. Its first
/// `interrupts` entry is the VM0 notification interrupt (virtio requests pending, see
/// [`hvc::VIRTIO_FETCH`]).
pub const VM0_DT_COMPATIBLE: &str = "minos,hypervisor";

/// Name of the driver's misc device (`/dev/minos`).
pub const DEVICE_NAME: &str = "minos";

/// Longest VM name, NUL included.
pub const VM_NAME_LEN: usize = 32;

/// Most vCPUs one guest VM may have.
pub const MAX_VCPUS: u32 = 8;

/// VM ids run from 1 to this (VM0 is 0 and never managed through the ABI).
pub const MAX_VMS: u32 = 64;

/// Most virtio devices per VM (device indexes run from 0).
pub const MAX_DEVICES: u32 = 8;

/// Most virtqueues per virtio device.
pub const MAX_QUEUES: u32 = 8;

/// Guest RAM is handed out, mapped and sized in 2 MiB blocks (one stage-2 block entry).
pub const MEM_ALIGN: u64 = 2 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_packing_round_trips() {
        assert_eq!(split_version(version(3, 7)), (3, 7));
        assert_eq!(ABI_VERSION >> 16, u32::from(ABI_MAJOR));
    }

    #[test]
    fn only_the_major_decides_compatibility() {
        assert!(compatible(version(ABI_MAJOR, ABI_MINOR + 5)));
        assert!(compatible(version(ABI_MAJOR, 0)));
        assert!(!compatible(version(ABI_MAJOR + 1, ABI_MINOR)));
        assert!(!compatible(0));
    }
}
