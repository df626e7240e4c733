//! The hypervisor's side of the calls: decode `x0..x4` into a typed [`Call`], refuse what
//! another VM may not make, and check the buffers and parameters every handler must check.
//! Everything here is pure so it is tested on the host and the handlers stay small.

use crate::error::HvcError;
use crate::hvc;
use crate::types::{
    IrqLevel, VirtioDevice, VmCreate, VM_FLAGS_KNOWN, VM_FLAG_GICV2, VM_FLAG_GICV3,
};
use crate::{MAX_DEVICES, MAX_QUEUES, MAX_VCPUS, MAX_VMS, MEM_ALIGN};

/// A decoded Minos hypercall. Buffer arguments are caller IPAs, still to be checked with
/// [`check_buffer`] and translated through the caller's stage 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Version {
        caller: u32,
    },
    HypInfo,
    MemInfo,
    VmCreate {
        buf: u64,
    },
    VmDestroy {
        vmid: u32,
    },
    VmStart {
        vmid: u32,
    },
    VmStop {
        vmid: u32,
    },
    VmShutdown {
        vmid: u32,
    },
    VmInfo {
        vmid: u32,
        buf: u64,
    },
    VmMapInfo {
        vmid: u32,
    },
    VirtioAdd {
        buf: u64,
    },
    VirtioFetch {
        buf: u64,
        capacity: u64,
    },
    VirtioAck {
        vmid: u32,
        device: u32,
        value: u64,
    },
    VmIrq {
        vmid: u32,
        intid: u32,
        level: IrqLevel,
    },
    VirtioQueue {
        vmid: u32,
        device: u32,
        queue: u32,
    },
    ConsoleRead {
        vmid: u32,
        buf: u64,
        capacity: u64,
        cursor: u64,
    },
}

fn vmid(x: u64) -> Result<u32, HvcError> {
    match u32::try_from(x) {
        Ok(v) if (1..=MAX_VMS).contains(&v) => Ok(v),
        _ => Err(HvcError::NoSuchVm),
    }
}

fn u32_arg(x: u64) -> Result<u32, HvcError> {
    u32::try_from(x).map_err(|_| HvcError::InvalidParameter)
}

impl Call {
    /// Decodes `x0` (function id, only `w0` counts) and `x1..x4`. Unknown ids give
    /// `NotSupported`, out-of-range arguments `InvalidParameter` (or `NoSuchVm` for a VM id
    /// that cannot exist).
    pub fn decode(x: [u64; 5]) -> Result<Call, HvcError> {
        let fid = x[0] as u32;
        let [_, a1, a2, a3, a4] = x;
        Ok(match fid {
            hvc::VERSION => Call::Version {
                caller: u32_arg(a1)?,
            },
            hvc::HYP_INFO => Call::HypInfo,
            hvc::MEM_INFO => Call::MemInfo,
            hvc::VM_CREATE => Call::VmCreate { buf: a1 },
            hvc::VM_DESTROY => Call::VmDestroy { vmid: vmid(a1)? },
            hvc::VM_START => Call::VmStart { vmid: vmid(a1)? },
            hvc::VM_STOP => Call::VmStop { vmid: vmid(a1)? },
            hvc::VM_SHUTDOWN => Call::VmShutdown { vmid: vmid(a1)? },
            hvc::VM_INFO => Call::VmInfo {
                vmid: vmid(a1)?,
                buf: a2,
            },
            hvc::VM_MAP_INFO => Call::VmMapInfo { vmid: vmid(a1)? },
            hvc::VIRTIO_ADD => Call::VirtioAdd { buf: a1 },
            hvc::VIRTIO_FETCH => Call::VirtioFetch {
                buf: a1,
                capacity: a2,
            },
            hvc::VIRTIO_ACK => {
                let device = u32_arg(a2)?;
                if device >= MAX_DEVICES {
                    return Err(HvcError::InvalidParameter);
                }
                Call::VirtioAck {
                    vmid: vmid(a1)?,
                    device,
                    value: a3,
                }
            }
            hvc::VM_IRQ => Call::VmIrq {
                vmid: vmid(a1)?,
                intid: match u32_arg(a2)? {
                    i @ 32..=1019 => i,
                    _ => return Err(HvcError::InvalidParameter),
                },
                level: IrqLevel::from_u32(u32_arg(a3)?).ok_or(HvcError::InvalidParameter)?,
            },
            hvc::VIRTIO_QUEUE => {
                let (device, queue) = (u32_arg(a2)?, u32_arg(a3)?);
                if device >= MAX_DEVICES || queue >= MAX_QUEUES {
                    return Err(HvcError::InvalidParameter);
                }
                Call::VirtioQueue {
                    vmid: vmid(a1)?,
                    device,
                    queue,
                }
            }
            hvc::VM_CONSOLE_READ => {
                if !(1..=4096).contains(&a3) {
                    return Err(HvcError::InvalidParameter);
                }
                Call::ConsoleRead {
                    vmid: vmid(a1)?,
                    buf: a2,
                    capacity: a3,
                    cursor: a4,
                }
            }
            _ => return Err(HvcError::NotSupported),
        })
    }

    /// Decodes a call made by VM `caller` (0 is VM0): VM-management calls from any other VM
    /// are `Denied` whatever their arguments, so a guest can never reach a VM0 handler nor
    /// probe its argument checks.
    pub fn decode_from(caller: u32, x: [u64; 5]) -> Result<Call, HvcError> {
        let fid = x[0] as u32;
        let known = hvc::ALL.iter().any(|&(_, f)| f == fid);
        if caller != 0 && known && !hvc::allowed_for_any_vm(fid) {
            return Err(HvcError::Denied);
        }
        Call::decode(x)
    }
}

/// A buffer of `len` bytes at caller IPA `ipa`: 8-byte aligned, not crossing a 4 KiB page,
/// not empty. (That it lies in the caller's RAM is the stage-2 walk's job.)
pub fn check_buffer(ipa: u64, len: u64) -> Result<(), HvcError> {
    const PAGE: u64 = 4096;
    if len == 0 || !ipa.is_multiple_of(8) || len > PAGE || ipa % PAGE + len > PAGE {
        return Err(HvcError::BadAddress);
    }
    Ok(())
}

/// Bytes of the GIC regions a VM gets: (distributor, redistributors or CPU interface).
pub fn gic_sizes(c: &VmCreate) -> (u64, u64) {
    if c.flags & VM_FLAG_GICV3 != 0 {
        (0x1_0000, 0x2_0000 * u64::from(c.nr_vcpus))
    } else {
        (0x1_0000, 0x2000)
    }
}

/// What `VM_CREATE` must refuse before it allocates anything.
pub fn check_vm_create(c: &VmCreate) -> Result<(), HvcError> {
    let gic = c.flags & (VM_FLAG_GICV2 | VM_FLAG_GICV3);
    let end = c.mem_base.checked_add(c.mem_size);
    let inside = |a: u64| end.is_some_and(|e| (c.mem_base..e).contains(&a));
    let (dist_len, cpu_len) = gic_sizes(c);
    // A GIC region must be 64 KiB aligned and clear of RAM and of the other region.
    let region_ok = |base: u64, len: u64| {
        base.is_multiple_of(0x1_0000)
            && base
                .checked_add(len)
                .is_some_and(|e| end.is_some_and(|ram_end| e <= c.mem_base || base >= ram_end))
    };
    let disjoint = c.gic_dist.saturating_add(dist_len) <= c.gic_cpu
        || c.gic_cpu.saturating_add(cpu_len) <= c.gic_dist;
    if !(1..=MAX_VCPUS).contains(&c.nr_vcpus)
        || c.flags & !VM_FLAGS_KNOWN != 0
        || gic.count_ones() != 1
        || c.mem_size == 0
        || !c.mem_base.is_multiple_of(MEM_ALIGN)
        || !c.mem_size.is_multiple_of(MEM_ALIGN)
        || !inside(c.entry)
        || !inside(c.setup_data)
        || c.reserved != 0
        || !c.name.contains(&0)
        || !region_ok(c.gic_dist, dist_len)
        || !region_ok(c.gic_cpu, cpu_len)
        || !disjoint
    {
        return Err(HvcError::InvalidParameter);
    }
    Ok(())
}

/// What `VIRTIO_ADD` must refuse: a misaligned window, an INTID that is not an SPI, no or
/// too many queues, a `queue_max` that is not a power of two up to 32768, set `index`.
pub fn check_virtio_device(d: &VirtioDevice) -> Result<(), HvcError> {
    if !d.base.is_multiple_of(0x200)
        || !(32..=1019).contains(&d.intid)
        || !(1..=MAX_QUEUES).contains(&d.num_queues)
        || !d.queue_max.is_power_of_two()
        || d.queue_max > 32768
        || d.index != 0
    {
        return Err(HvcError::InvalidParameter);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{set_name, VM_FLAG_64BIT};

    fn regs(fid: u32, a: [u64; 4]) -> [u64; 5] {
        [u64::from(fid), a[0], a[1], a[2], a[3]]
    }

    #[test]
    fn decodes_every_call() {
        assert_eq!(
            Call::decode(regs(hvc::VERSION, [0x1_0000, 0, 0, 0])),
            Ok(Call::Version { caller: 0x1_0000 })
        );
        assert_eq!(
            Call::decode(regs(hvc::VM_INFO, [3, 0x4700_0000, 0, 0])),
            Ok(Call::VmInfo {
                vmid: 3,
                buf: 0x4700_0000
            })
        );
        assert_eq!(
            Call::decode(regs(hvc::VIRTIO_ADD, [0x4700_0000, 0, 0, 0])),
            Ok(Call::VirtioAdd { buf: 0x4700_0000 })
        );
        assert_eq!(
            Call::decode(regs(hvc::VIRTIO_QUEUE, [2, 1, 0, 0])),
            Ok(Call::VirtioQueue {
                vmid: 2,
                device: 1,
                queue: 0
            })
        );
        assert_eq!(
            Call::decode(regs(hvc::VM_CONSOLE_READ, [2, 0x4700_0000, 4096, 77])),
            Ok(Call::ConsoleRead {
                vmid: 2,
                buf: 0x4700_0000,
                capacity: 4096,
                cursor: 77
            })
        );
        assert_eq!(
            Call::decode(regs(hvc::VM_IRQ, [1, 40, 2, 0])),
            Ok(Call::VmIrq {
                vmid: 1,
                intid: 40,
                level: IrqLevel::Edge
            })
        );
        for (_, fid) in hvc::ALL {
            // Every id decodes with plausible arguments (none is forgotten in `decode`).
            let plausible = [[1, 0x4000_0000, 32, 0], [1, 0, 0, 0], [1, 40, 1, 0]];
            let ok = plausible
                .iter()
                .any(|a| Call::decode(regs(fid, *a)).is_ok());
            assert!(ok, "{fid:#x} never decodes");
        }
    }

    #[test]
    fn refuses_bad_arguments() {
        assert_eq!(
            Call::decode(regs(hvc::BASE + 0xff, [0; 4])),
            Err(HvcError::NotSupported)
        );
        assert_eq!(
            Call::decode(regs(0x8400_0008, [0; 4])),
            Err(HvcError::NotSupported)
        );
        assert_eq!(
            Call::decode(regs(hvc::VM_START, [0, 0, 0, 0])),
            Err(HvcError::NoSuchVm),
            "VM0"
        );
        assert_eq!(
            Call::decode(regs(hvc::VM_START, [u64::from(MAX_VMS) + 1, 0, 0, 0])),
            Err(HvcError::NoSuchVm)
        );
        assert_eq!(
            Call::decode(regs(hvc::VM_START, [1 << 32 | 1, 0, 0, 0])),
            Err(HvcError::NoSuchVm)
        );
        assert_eq!(
            Call::decode(regs(hvc::VM_IRQ, [1, 16, 1, 0])),
            Err(HvcError::InvalidParameter),
            "a PPI is not the caller's to raise"
        );
        assert_eq!(
            Call::decode(regs(hvc::VM_IRQ, [1, 40, 3, 0])),
            Err(HvcError::InvalidParameter)
        );
        assert_eq!(
            Call::decode(regs(hvc::VIRTIO_QUEUE, [1, 0, u64::from(MAX_QUEUES), 0])),
            Err(HvcError::InvalidParameter)
        );
        assert_eq!(
            Call::decode(regs(hvc::VIRTIO_ACK, [1, u64::from(MAX_DEVICES), 0, 0])),
            Err(HvcError::InvalidParameter)
        );
        for capacity in [0, 4097, u64::MAX] {
            assert_eq!(
                Call::decode(regs(hvc::VM_CONSOLE_READ, [1, 0x4700_0000, capacity, 0])),
                Err(HvcError::InvalidParameter),
                "capacity {capacity}"
            );
        }
        assert_eq!(
            Call::decode(regs(hvc::VM_CONSOLE_READ, [0, 0x4700_0000, 64, 0])),
            Err(HvcError::NoSuchVm),
            "VM0 has no early console to read"
        );
    }

    #[test]
    fn guests_may_only_ask_the_version_and_info() {
        let create = regs(hvc::VM_CREATE, [0x4700_0000, 0, 0, 0]);
        assert!(Call::decode_from(0, create).is_ok());
        assert_eq!(Call::decode_from(2, create), Err(HvcError::Denied));
        // Denied before the arguments are looked at.
        let bad_args = regs(hvc::VIRTIO_ACK, [0, u64::from(MAX_DEVICES), 0, 0]);
        assert_eq!(Call::decode_from(2, bad_args), Err(HvcError::Denied));
        assert_eq!(
            Call::decode_from(0, bad_args),
            Err(HvcError::InvalidParameter)
        );
        assert!(Call::decode_from(2, regs(hvc::VERSION, [0; 4])).is_ok());
        assert!(Call::decode_from(2, regs(hvc::HYP_INFO, [0; 4])).is_ok());
        // Unknown stays NotSupported for everyone (no information about VM0-only calls).
        assert_eq!(
            Call::decode_from(2, regs(hvc::BASE + 0x100, [0; 4])),
            Err(HvcError::NotSupported)
        );
    }

    #[test]
    fn buffers() {
        assert_eq!(check_buffer(0x4700_0000, 80), Ok(()));
        assert_eq!(
            check_buffer(0x4700_0fb0, 80),
            Ok(()),
            "ends exactly at the page end"
        );
        assert_eq!(
            check_buffer(0x4700_0fb8, 80),
            Err(HvcError::BadAddress),
            "crosses"
        );
        assert_eq!(
            check_buffer(0x4700_0004, 16),
            Err(HvcError::BadAddress),
            "misaligned"
        );
        assert_eq!(check_buffer(0x4700_0000, 0), Err(HvcError::BadAddress));
        assert_eq!(check_buffer(u64::MAX - 7, 8), Ok(()));
        assert_eq!(check_buffer(0, 4097), Err(HvcError::BadAddress));
    }

    #[test]
    fn virtio_device_checks() {
        let good = VirtioDevice {
            vmid: 1,
            device_id: 3,
            base: 0x4000_0200,
            intid: 33,
            index: 0,
            features: 1 << 32,
            num_queues: 2,
            queue_max: 256,
        };
        assert_eq!(check_virtio_device(&good), Ok(()));
        let bad = [
            VirtioDevice {
                base: 0x4000_0100,
                ..good
            },
            VirtioDevice { intid: 27, ..good },
            VirtioDevice {
                num_queues: 0,
                ..good
            },
            VirtioDevice {
                num_queues: MAX_QUEUES + 1,
                ..good
            },
            VirtioDevice {
                queue_max: 100,
                ..good
            },
            VirtioDevice {
                queue_max: 65536,
                ..good
            },
            VirtioDevice { index: 1, ..good },
        ];
        for (i, d) in bad.iter().enumerate() {
            assert_eq!(
                check_virtio_device(d),
                Err(HvcError::InvalidParameter),
                "case {i}"
            );
        }
    }

    fn good() -> VmCreate {
        let mut c = VmCreate {
            nr_vcpus: 2,
            flags: VM_FLAG_64BIT | VM_FLAG_GICV3,
            mem_base: 0x8000_0000,
            mem_size: 84 << 20,
            entry: 0x8008_0000,
            setup_data: 0x83e0_0000,
            gic_dist: 0x0800_0000,
            gic_cpu: 0x080a_0000,
            ..VmCreate::default()
        };
        set_name(&mut c.name, "elinux");
        c
    }

    #[test]
    fn vm_create_checks() {
        assert_eq!(check_vm_create(&good()), Ok(()));
        let bad = [
            VmCreate {
                nr_vcpus: 0,
                ..good()
            },
            VmCreate {
                nr_vcpus: MAX_VCPUS + 1,
                ..good()
            },
            VmCreate {
                flags: VM_FLAG_64BIT,
                ..good()
            },
            VmCreate {
                flags: VM_FLAG_64BIT | VM_FLAG_GICV2 | VM_FLAG_GICV3,
                ..good()
            },
            VmCreate {
                flags: good().flags | 1 << 31,
                ..good()
            },
            VmCreate {
                mem_size: 0,
                ..good()
            },
            VmCreate {
                mem_size: 85 << 20,
                ..good()
            },
            VmCreate {
                mem_base: 0x8008_0000,
                ..good()
            },
            VmCreate {
                entry: 0x7fff_f000,
                ..good()
            },
            VmCreate {
                setup_data: 0x8540_0000,
                ..good()
            },
            VmCreate {
                mem_base: u64::MAX - (MEM_ALIGN - 1),
                ..good()
            },
            VmCreate {
                reserved: 1,
                ..good()
            },
            VmCreate {
                name: [b'x'; crate::VM_NAME_LEN],
                ..good()
            },
        ];
        for (i, c) in bad.iter().enumerate() {
            assert_eq!(
                check_vm_create(c),
                Err(HvcError::InvalidParameter),
                "case {i}"
            );
        }
    }
}
