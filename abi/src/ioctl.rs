//! `/dev/minos` ioctl numbers, encoded like Linux's `_IOC` (asm-generic layout, which arm64
//! uses): `dir << 30 | size << 16 | type << 8 | nr`.

use crate::types::{
    CStruct, ConsoleRead, IoEventFd, IrqLine, MapInfo, MemInfo, VirtioAck, VirtioDevice,
    VirtioQueue, VmCreate, VmInfo,
};

/// The ioctl type byte.
pub const MAGIC: u8 = 0xB7;

/// `_IOC_WRITE`: user space passes data in.
pub const DIR_WRITE: u32 = 1;
/// `_IOC_READ`: the driver passes data out.
pub const DIR_READ: u32 = 2;

/// `_IOC(dir, MAGIC, nr, size)`.
pub const fn ioc(dir: u32, nr: u8, size: usize) -> u32 {
    assert!(size < 1 << 14, "_IOC size field is 14 bits");
    dir << 30 | (size as u32) << 16 | (MAGIC as u32) << 8 | nr as u32
}

/// The argument of an ioctl, for the C header.
#[derive(Clone, Copy, Debug)]
pub enum Arg {
    /// A plain `__u32` (a VM id or a version).
    U32,
    Struct(CStruct),
}

impl Arg {
    pub const fn size(self) -> usize {
        match self {
            Arg::U32 => 4,
            Arg::Struct(s) => s.size,
        }
    }
}

/// One ioctl: C name suffix, direction bits, number, argument.
#[derive(Clone, Copy, Debug)]
pub struct Ioctl {
    pub name: &'static str,
    pub dir: u32,
    pub nr: u8,
    pub arg: Arg,
}

impl Ioctl {
    pub const fn number(&self) -> u32 {
        ioc(self.dir, self.nr, self.arg.size())
    }
}

const fn def(name: &'static str, dir: u32, nr: u8, arg: Arg) -> Ioctl {
    Ioctl { name, dir, nr, arg }
}

const R: u32 = DIR_READ;
const W: u32 = DIR_WRITE;
const RW: u32 = DIR_READ | DIR_WRITE;

/// The driver's ABI version (`__u32` out): mvm refuses a different major.
pub const VERSION_IOCTL: Ioctl = def("VERSION", R, 0, Arg::U32);
/// The hypervisor's pool (`MemInfo` out).
pub const MEM_INFO_IOCTL: Ioctl = def("MEM_INFO", R, 1, Arg::Struct(MemInfo::C));
/// Creates a VM owned by this open file (`VmCreate` in, `vmid` out). Closing the file
/// destroys every VM it owns.
pub const VM_CREATE_IOCTL: Ioctl = def("VM_CREATE", RW, 2, Arg::Struct(VmCreate::C));
/// Destroys a VM (`__u32` id in).
pub const VM_DESTROY_IOCTL: Ioctl = def("VM_DESTROY", W, 3, Arg::U32);
/// Starts a VM (`__u32` id in).
pub const VM_START_IOCTL: Ioctl = def("VM_START", W, 4, Arg::U32);
/// Stops a VM's vCPUs now (`__u32` id in).
pub const VM_STOP_IOCTL: Ioctl = def("VM_STOP", W, 5, Arg::U32);
/// Asks the guest to power off (`__u32` id in).
pub const VM_SHUTDOWN_IOCTL: Ioctl = def("VM_SHUTDOWN", W, 6, Arg::U32);
/// One VM's state (`VmInfo`, `vmid` in).
pub const VM_INFO_IOCTL: Ioctl = def("VM_INFO", RW, 7, Arg::Struct(VmInfo::C));
/// Where to `mmap` a VM's RAM (`MapInfo`, `vmid` in).
pub const MAP_INFO_IOCTL: Ioctl = def("MAP_INFO", RW, 8, Arg::Struct(MapInfo::C));
/// Adds a virtio-mmio device (`VirtioDevice`, `index` out).
pub const VIRTIO_ADD_IOCTL: Ioctl = def("VIRTIO_ADD", RW, 9, Arg::Struct(VirtioDevice::C));
/// Binds an eventfd to a device's queue notifications (`IoEventFd` in).
pub const IOEVENTFD_IOCTL: Ioctl = def("IOEVENTFD", W, 10, Arg::Struct(IoEventFd::C));
/// Sets a guest interrupt line (`IrqLine` in).
pub const IRQ_IOCTL: Ioctl = def("IRQ", W, 11, Arg::Struct(IrqLine::C));

/// One virtqueue's guest addresses (`VirtioQueue`, `vmid`/`device`/`queue` in).
pub const VIRTIO_QUEUE_IOCTL: Ioctl = def("VIRTIO_QUEUE", RW, 12, Arg::Struct(VirtioQueue::C));
/// Completes a blocking request read from the device (`VirtioAck` in).
pub const VIRTIO_ACK_IOCTL: Ioctl = def("VIRTIO_ACK", W, 13, Arg::Struct(VirtioAck::C));
/// Reads an owned VM's early console (`ConsoleRead`: `vmid`, `count`, `cursor`, `buf` in;
/// `count`, `cursor`, `lost` out).
pub const CONSOLE_READ_IOCTL: Ioctl = def("CONSOLE_READ", RW, 14, Arg::Struct(ConsoleRead::C));

/// Every ioctl in number order.
pub const ALL: [Ioctl; 15] = [
    VERSION_IOCTL,
    MEM_INFO_IOCTL,
    VM_CREATE_IOCTL,
    VM_DESTROY_IOCTL,
    VM_START_IOCTL,
    VM_STOP_IOCTL,
    VM_SHUTDOWN_IOCTL,
    VM_INFO_IOCTL,
    MAP_INFO_IOCTL,
    VIRTIO_ADD_IOCTL,
    IOEVENTFD_IOCTL,
    IRQ_IOCTL,
    VIRTIO_QUEUE_IOCTL,
    VIRTIO_ACK_IOCTL,
    CONSOLE_READ_IOCTL,
];

/// Request numbers, for callers of `ioctl(2)`.
pub const VERSION: u32 = VERSION_IOCTL.number();
pub const MEM_INFO: u32 = MEM_INFO_IOCTL.number();
pub const VM_CREATE: u32 = VM_CREATE_IOCTL.number();
pub const VM_DESTROY: u32 = VM_DESTROY_IOCTL.number();
pub const VM_START: u32 = VM_START_IOCTL.number();
pub const VM_STOP: u32 = VM_STOP_IOCTL.number();
pub const VM_SHUTDOWN: u32 = VM_SHUTDOWN_IOCTL.number();
pub const VM_INFO: u32 = VM_INFO_IOCTL.number();
pub const MAP_INFO: u32 = MAP_INFO_IOCTL.number();
pub const VIRTIO_ADD: u32 = VIRTIO_ADD_IOCTL.number();
pub const IOEVENTFD: u32 = IOEVENTFD_IOCTL.number();
pub const IRQ: u32 = IRQ_IOCTL.number();
pub const VIRTIO_QUEUE: u32 = VIRTIO_QUEUE_IOCTL.number();
pub const VIRTIO_ACK: u32 = VIRTIO_ACK_IOCTL.number();
pub const CONSOLE_READ: u32 = CONSOLE_READ_IOCTL.number();

/// `read(2)` on `/dev/minos` returns whole [`VirtioRequest`](crate::types::VirtioRequest)
/// records: the blocking requests (status and config accesses) of the VMs this open file
/// owns, each to be answered with [`VIRTIO_ACK`]. `poll` reports them as readable.
pub const READ_RECORD_SIZE: usize = crate::types::VirtioRequest::C.size;

/// `mmap` offsets select the VM: the driver hands out `vmid << MMAP_VMID_SHIFT`.
pub const MMAP_VMID_SHIFT: u32 = 32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_matches_linux() {
        // _IOR('V', 0, struct v4l2_capability /* 104 bytes */) == VIDIOC_QUERYCAP
        let querycap = 2 << 30 | 104 << 16 | (b'V' as u32) << 8;
        assert_eq!(querycap, 0x8068_5600);
        // Ours, worked by hand: _IOWR(0xB7, 2, 96 bytes)
        assert_eq!(VM_CREATE, 0xC060_B702);
        assert_eq!(VM_DESTROY, 0x4004_B703);
    }

    #[test]
    fn numbers_are_dense_and_unique() {
        for (i, io) in ALL.iter().enumerate() {
            assert_eq!(io.nr as usize, i);
            for other in &ALL[i + 1..] {
                assert_ne!(io.number(), other.number());
            }
        }
    }
}
