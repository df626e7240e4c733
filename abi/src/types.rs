//! Structs shared through memory: hypercall buffers ([`VmCreate`], [`VmInfo`],
//! [`VirtioRequest`]) and the driver's ioctl arguments (all of them). Every struct is
//! `#[repr(C)]`, has only naturally aligned fields and explicit `reserved` padding, and its
//! size is pinned by a const assertion; [`CStruct`] tables describe each for the C header.

use crate::VM_NAME_LEN;

/// One field of a C struct, as the header generator writes it.
#[derive(Clone, Copy, Debug)]
pub struct CField {
    pub name: &'static str,
    pub doc: &'static str,
    /// Element type in `<linux/types.h>` spelling (`__u32`, `__s32`, `__u8`, ...).
    pub ctype: &'static str,
    pub offset: usize,
    /// Size in bytes (element size times count for arrays).
    pub size: usize,
}

impl CField {
    /// Element count: 1 for scalars.
    pub const fn count(&self) -> usize {
        self.size / c_type_size(self.ctype)
    }
}

/// A struct's C name (without `struct`), size and fields in order.
#[derive(Clone, Copy, Debug)]
pub struct CStruct {
    pub name: &'static str,
    pub doc: &'static str,
    pub size: usize,
    pub fields: &'static [CField],
}

/// Size of a `<linux/types.h>` scalar.
pub const fn c_type_size(t: &str) -> usize {
    match t.as_bytes() {
        b"__u8" | b"__s8" => 1,
        b"__u16" | b"__s16" => 2,
        b"__u32" | b"__s32" => 4,
        b"__u64" | b"__s64" => 8,
        _ => panic!("unknown C type"),
    }
}

macro_rules! abi_struct {
    (
        $(#[doc = $doc:literal])*
        $name:ident as $cname:literal, size $size:literal {
            $( $(#[doc = $fd:literal])* $field:ident : $ty:ty => $ctype:literal ),* $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name {
            $( $(#[doc = $fd])* pub $field: $ty, )*
        }

        const _: () = assert!(core::mem::size_of::<$name>() == $size);
        const _: () = assert!(core::mem::align_of::<$name>() <= 8);

        impl $name {
            /// This struct's C description.
            pub const C: CStruct = CStruct {
                name: $cname,
                doc: concat!($($doc, "\n"),*),
                size: $size,
                fields: &[$(CField {
                    name: stringify!($field),
                    doc: concat!($($fd),*),
                    ctype: $ctype,
                    offset: core::mem::offset_of!($name, $field),
                    size: core::mem::size_of::<$ty>(),
                }),*],
            };
        }
    };
}

abi_struct! {
    /// Parameters of a new VM (`VM_CREATE` buffer and `MINOS_IOC_VM_CREATE` argument).
    VmCreate as "minos_vm_create", size 96 {
        /// NUL-terminated name (for `mvm list`).
        name: [u8; VM_NAME_LEN] => "__u8",
        /// 1..=`MAX_VCPUS`.
        nr_vcpus: u32 => "__u32",
        /// `VM_FLAG_*`.
        flags: u32 => "__u32",
        /// Guest IPA of RAM, `MEM_ALIGN`-aligned.
        mem_base: u64 => "__u64",
        /// RAM bytes, a non-zero multiple of `MEM_ALIGN`.
        mem_size: u64 => "__u64",
        /// Guest IPA vCPU 0 starts at (inside RAM).
        entry: u64 => "__u64",
        /// Guest IPA handed to the kernel in `x0` (the DTB; inside RAM).
        setup_data: u64 => "__u64",
        /// Guest IPA of the virtual GIC distributor (as the guest DTB places it; 64 KiB).
        gic_dist: u64 => "__u64",
        /// Guest IPA of the GICv3 redistributors (128 KiB per vCPU) or of the GICv2 CPU
        /// interface (8 KiB), as the guest DTB places them.
        gic_cpu: u64 => "__u64",
        /// Out (ioctl only): the VM id the hypervisor returned.
        vmid: u32 => "__u32",
        reserved: u32 => "__u32",
    }
}

abi_struct! {
    /// One VM's state (`VM_INFO` buffer and `MINOS_IOC_VM_INFO` argument; `vmid` is the input).
    VmInfo as "minos_vm_info", size 88 {
        vmid: u32 => "__u32",
        /// `VmState`.
        state: u32 => "__u32",
        nr_vcpus: u32 => "__u32",
        flags: u32 => "__u32",
        mem_base: u64 => "__u64",
        mem_size: u64 => "__u64",
        entry: u64 => "__u64",
        setup_data: u64 => "__u64",
        /// Filled by the driver: the process that created the VM (0 if unknown).
        owner_pid: u32 => "__u32",
        reserved: u32 => "__u32",
        name: [u8; VM_NAME_LEN] => "__u8",
    }
}

abi_struct! {
    /// The hypervisor's memory pool (`MINOS_IOC_MEM_INFO`).
    MemInfo as "minos_mem_info", size 16 {
        total: u64 => "__u64",
        free: u64 => "__u64",
    }
}

abi_struct! {
    /// How to map a VM's RAM (`MINOS_IOC_MAP_INFO`; `vmid` is the input): `mmap` the device
    /// with `size` bytes at file offset `mmap_offset`, and byte 0 of the mapping is guest IPA
    /// `guest_base`.
    MapInfo as "minos_map_info", size 32 {
        vmid: u32 => "__u32",
        reserved: u32 => "__u32",
        guest_base: u64 => "__u64",
        size: u64 => "__u64",
        mmap_offset: u64 => "__u64",
    }
}

abi_struct! {
    /// A virtio-mmio device of a VM (`VIRTIO_ADD` buffer, `MINOS_IOC_VIRTIO_ADD` argument).
    /// The hypervisor answers the identification registers, `DeviceFeatures` and
    /// `QueueNumMax` from it; config-space and `Status` accesses go to mvm.
    VirtioDevice as "minos_virtio_device", size 40 {
        vmid: u32 => "__u32",
        /// Virtio device id (1 net, 2 block, 3 console).
        device_id: u32 => "__u32",
        /// Guest IPA of the 0x200-byte register window.
        base: u64 => "__u64",
        /// SPI INTID the device raises.
        intid: u32 => "__u32",
        /// Out: the device index in the VM.
        index: u32 => "__u32",
        /// Feature bits the device offers (`VIRTIO_F_VERSION_1` included).
        features: u64 => "__u64",
        /// Number of virtqueues, 1..=`MAX_QUEUES`.
        num_queues: u32 => "__u32",
        /// `QueueNumMax` of every queue (a power of two, at most 32768).
        queue_max: u32 => "__u32",
    }
}

abi_struct! {
    /// Where the guest put one virtqueue (`MINOS_IOC_VIRTIO_QUEUE`; `vmid`, `device` and
    /// `queue` are the input), as the guest wrote it into the register file.
    VirtioQueue as "minos_virtio_queue", size 48 {
        vmid: u32 => "__u32",
        device: u32 => "__u32",
        queue: u32 => "__u32",
        /// `QueueNum`: the size the driver chose.
        size: u32 => "__u32",
        /// `QueueReady`: 1 once the driver enabled the queue.
        ready: u32 => "__u32",
        reserved: u32 => "__u32",
        /// Guest IPA of the descriptor table.
        desc: u64 => "__u64",
        /// Guest IPA of the driver (available) ring.
        driver: u64 => "__u64",
        /// Guest IPA of the device (used) ring.
        device_ring: u64 => "__u64",
    }
}

abi_struct! {
    /// Completes a blocking virtio request (`MINOS_IOC_VIRTIO_ACK`, `VIRTIO_ACK`).
    VirtioAck as "minos_virtio_ack", size 16 {
        vmid: u32 => "__u32",
        device: u32 => "__u32",
        /// The value a config read returns (ignored for writes).
        value: u64 => "__u64",
    }
}

abi_struct! {
    /// One pending virtio request (`VIRTIO_FETCH` array element).
    VirtioRequest as "minos_virtio_request", size 32 {
        vmid: u32 => "__u32",
        /// Device index in the VM.
        device: u32 => "__u32",
        /// `RequestKind`.
        kind: u32 => "__u32",
        /// Queue index (`QueueNotify`), `0x70` (`Status` writes) or the offset into the
        /// device's config space (config accesses: register 0x100 is offset 0).
        offset: u32 => "__u32",
        /// Value written (writes).
        value: u64 => "__u64",
        /// Access width in bytes (1, 2 or 4; config space may be read in any of them).
        width: u32 => "__u32",
        reserved: u32 => "__u32",
    }
}

abi_struct! {
    /// Binds an eventfd to a device's queue notifications (`MINOS_IOC_IOEVENTFD`): the driver
    /// signals `fd` for every `QueueNotify` of (`vmid`, `device`). `fd` = -1 unbinds.
    IoEventFd as "minos_ioeventfd", size 16 {
        vmid: u32 => "__u32",
        device: u32 => "__u32",
        fd: i32 => "__s32",
        reserved: u32 => "__u32",
    }
}

abi_struct! {
    /// Sets a guest interrupt line (`MINOS_IOC_IRQ`, `VM_IRQ`).
    IrqLine as "minos_irq_line", size 16 {
        vmid: u32 => "__u32",
        intid: u32 => "__u32",
        /// `IrqLevel`.
        level: u32 => "__u32",
        reserved: u32 => "__u32",
    }
}

abi_struct! {
    /// Reads a VM's early console (`MINOS_IOC_CONSOLE_READ`; see `VM_CONSOLE_READ`).
    ConsoleRead as "minos_console_read", size 32 {
        vmid: u32 => "__u32",
        /// In: the buffer's size (the driver reads at most one page per call); out: bytes
        /// written to it.
        count: u32 => "__u32",
        /// In: where to read from (0 for the first call); out: where the next call reads.
        cursor: u64 => "__u64",
        /// Out: bytes overwritten before they could be read (skipped).
        lost: u64 => "__u64",
        /// In: user address of the buffer.
        buf: u64 => "__u64",
    }
}

/// Every struct, in header order.
pub const ALL: [CStruct; 11] = [
    VmCreate::C,
    VmInfo::C,
    MemInfo::C,
    MapInfo::C,
    VirtioDevice::C,
    VirtioQueue::C,
    VirtioAck::C,
    VirtioRequest::C,
    IoEventFd::C,
    IrqLine::C,
    ConsoleRead::C,
];

/// `VmCreate::flags`/`VmInfo::flags`: AArch64 guest (AArch32 when clear).
pub const VM_FLAG_64BIT: u32 = 1 << 0;
/// The guest gets a GICv2 (distributor + CPU interface).
pub const VM_FLAG_GICV2: u32 = 1 << 1;
/// The guest gets a GICv3 (distributor + redistributors). Exactly one GIC flag is set.
pub const VM_FLAG_GICV3: u32 = 1 << 2;
/// The guest gets a log-only PL011 at [`EARLY_UART_BASE`](crate::guest::EARLY_UART_BASE) for
/// its kernel's `earlycon`; VM0 reads it with [`VM_CONSOLE_READ`](crate::hvc::VM_CONSOLE_READ).
pub const VM_FLAG_EARLYPRINTK: u32 = 1 << 3;
/// Every defined flag: the hypervisor refuses others with `INVALID_PARAMETER`.
pub const VM_FLAGS_KNOWN: u32 = VM_FLAG_64BIT | VM_FLAG_GICV2 | VM_FLAG_GICV3 | VM_FLAG_EARLYPRINTK;

/// Flags as (C name, value).
pub const FLAGS: [(&str, u32); 4] = [
    ("VM_FLAG_64BIT", VM_FLAG_64BIT),
    ("VM_FLAG_GICV2", VM_FLAG_GICV2),
    ("VM_FLAG_GICV3", VM_FLAG_GICV3),
    ("VM_FLAG_EARLYPRINTK", VM_FLAG_EARLYPRINTK),
];

macro_rules! abi_enum {
    ($(#[doc = $doc:literal])* $name:ident as $prefix:literal { $($(#[doc = $vd:literal])* $v:ident = $n:literal => $c:literal),* $(,)? }) => {
        $(#[doc = $doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u32)]
        pub enum $name { $($(#[doc = $vd])* $v = $n),* }

        impl $name {
            /// C prefix of the constants.
            pub const C_PREFIX: &'static str = $prefix;
            /// (C suffix, value) of every variant.
            pub const C: &'static [(&'static str, u32)] = &[$(($c, $n)),*];

            pub const fn from_u32(v: u32) -> Option<Self> {
                match v { $($n => Some($name::$v),)* _ => None }
            }
        }
    };
}

abi_enum! {
    /// `VmInfo::state`.
    VmState as "VM_STATE_" {
        /// Created (and maybe loaded), never started.
        Created = 0 => "CREATED",
        /// vCPU 0 was started.
        Running = 1 => "RUNNING",
        /// Stopped by `VM_STOP` or the guest's PSCI `SYSTEM_OFF`.
        Off = 2 => "OFF",
        /// `VM_SHUTDOWN` was asked and the guest has not powered off yet.
        ShuttingDown = 3 => "SHUTTING_DOWN",
    }
}

abi_enum! {
    /// `VirtioRequest::kind`.
    RequestKind as "VIRTIO_REQ_" {
        /// A `QueueNotify` write (asynchronous: the vCPU did not wait).
        QueueNotify = 1 => "QUEUE_NOTIFY",
        /// A `Status` write: the vCPU waits for `VIRTIO_ACK`.
        StatusWrite = 2 => "STATUS_WRITE",
        /// A config-space read: the vCPU waits for `VIRTIO_ACK` with the value.
        ConfigRead = 3 => "CONFIG_READ",
        /// A config-space write: the vCPU waits for `VIRTIO_ACK`.
        ConfigWrite = 4 => "CONFIG_WRITE",
    }
}

abi_enum! {
    /// `IrqLine::level`.
    IrqLevel as "IRQ_" {
        /// Deassert a level line.
        Low = 0 => "LOW",
        /// Assert a level line.
        High = 1 => "HIGH",
        /// Raise an edge (what virtio-mmio's used-buffer interrupt is).
        Edge = 2 => "EDGE",
    }
}

/// Writes `name` into a NUL-terminated fixed field, cut to fit. Returns whether it fit whole.
pub fn set_name(field: &mut [u8; VM_NAME_LEN], name: &str) -> bool {
    *field = [0; VM_NAME_LEN];
    let bytes = name.as_bytes();
    let n = bytes.len().min(VM_NAME_LEN - 1);
    field[..n].copy_from_slice(&bytes[..n]);
    n == bytes.len()
}

/// The name stored in a fixed field (up to the first NUL; invalid UTF-8 gives `None`).
pub fn name_str(field: &[u8; VM_NAME_LEN]) -> Option<&str> {
    let end = field.iter().position(|&b| b == 0).unwrap_or(VM_NAME_LEN);
    core::str::from_utf8(&field[..end]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structs_have_no_hidden_padding() {
        for s in ALL {
            let mut at = 0;
            for f in s.fields {
                assert_eq!(
                    f.offset, at,
                    "{}.{} follows its predecessor",
                    s.name, f.name
                );
                assert_eq!(
                    f.offset % c_type_size(f.ctype),
                    0,
                    "{}.{} aligned",
                    s.name,
                    f.name
                );
                assert_eq!(f.size % c_type_size(f.ctype), 0);
                at += f.size;
            }
            assert_eq!(at, s.size, "{} ends with its last field", s.name);
            assert_eq!(s.size % 8, 0, "{} size is a multiple of 8", s.name);
        }
    }

    #[test]
    fn names_are_cut_and_terminated() {
        let mut f = [0xffu8; VM_NAME_LEN];
        assert!(set_name(&mut f, "elinux64"));
        assert_eq!(name_str(&f), Some("elinux64"));
        let long = "x".repeat(40);
        assert!(!set_name(&mut f, &long));
        assert_eq!(f[VM_NAME_LEN - 1], 0);
        assert_eq!(name_str(&f).unwrap().len(), VM_NAME_LEN - 1);
    }

    #[test]
    fn enums_round_trip() {
        for &(_, v) in VmState::C {
            assert_eq!(VmState::from_u32(v).unwrap() as u32, v);
        }
        assert_eq!(RequestKind::from_u32(0), None);
        assert_eq!(IrqLevel::from_u32(2), Some(IrqLevel::Edge));
    }

    #[test]
    fn gic_flags_are_distinct_bits() {
        assert_eq!(VM_FLAG_GICV2 & VM_FLAG_GICV3, 0);
        assert_eq!(VM_FLAGS_KNOWN.count_ones(), FLAGS.len() as u32);
    }
}
