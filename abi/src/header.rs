//! The C view of the ABI: `mvm/kmod/minos_abi.h`, written from the Rust definitions so the
//! driver cannot drift from the hypervisor. The header also carries `_Static_assert`s of every
//! struct size, field offset and ioctl number, so the C compiler checks its own reading of it.
//!
//! Regenerate with `cargo run -q -p minos-abi --bin minos-abi-header > mvm/kmod/minos_abi.h`;
//! `abi/tests/header.rs` fails while the committed file differs.

use core::fmt::{Result, Write};

use crate::types::{self, CStruct, IrqLevel, RequestKind, VmState};
use crate::{error, guest, hvc, ioctl};

/// Repository path of the generated header.
pub const PATH: &str = "mvm/kmod/minos_abi.h";

/// Writes the whole header.
pub fn write_c_header(w: &mut impl Write) -> Result {
    w.write_str(
        "/* SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0 */\n\
         /*\n \
         * The Minos hypercall and /dev/minos ioctl ABI.\n \
         *\n \
         * GENERATED from the minos-abi crate (abi/src) by\n \
         * `cargo run -q -p minos-abi --bin minos-abi-header`: do not edit.\n \
         */\n\
         #ifndef _MINOS_ABI_H\n\
         #define _MINOS_ABI_H\n\n\
         #include <linux/types.h>\n\
         #include <linux/ioctl.h>\n\n",
    )?;
    writeln!(w, "#define MINOS_ABI_MAJOR {}", crate::ABI_MAJOR)?;
    writeln!(w, "#define MINOS_ABI_MINOR {}", crate::ABI_MINOR)?;
    writeln!(w, "#define MINOS_ABI_VERSION {:#010x}", crate::ABI_VERSION)?;
    writeln!(
        w,
        "#define MINOS_DT_COMPATIBLE \"{}\"",
        crate::VM0_DT_COMPATIBLE
    )?;
    writeln!(w, "#define MINOS_DEVICE_NAME \"{}\"", crate::DEVICE_NAME)?;
    writeln!(w, "#define MINOS_VM_NAME_LEN {}", crate::VM_NAME_LEN)?;
    writeln!(w, "#define MINOS_MAX_VCPUS {}", crate::MAX_VCPUS)?;
    writeln!(w, "#define MINOS_MAX_VMS {}", crate::MAX_VMS)?;
    writeln!(w, "#define MINOS_MAX_DEVICES {}", crate::MAX_DEVICES)?;
    writeln!(w, "#define MINOS_MEM_ALIGN {:#x}ULL", crate::MEM_ALIGN)?;
    writeln!(
        w,
        "#define MINOS_MMAP_VMID_SHIFT {}",
        ioctl::MMAP_VMID_SHIFT
    )?;

    w.write_str("\n/* Guest address map. */\n")?;
    writeln!(
        w,
        "#define MINOS_GUEST_VIRTIO_MMIO_BASE {:#x}ULL",
        guest::VIRTIO_MMIO_BASE
    )?;
    writeln!(
        w,
        "#define MINOS_GUEST_VIRTIO_MMIO_STRIDE {:#x}",
        guest::VIRTIO_MMIO_STRIDE
    )?;
    writeln!(
        w,
        "#define MINOS_GUEST_VIRTIO_FIRST_INTID {}",
        guest::VIRTIO_FIRST_INTID
    )?;
    writeln!(
        w,
        "#define MINOS_GUEST_POWER_GPIO_BASE {:#x}ULL",
        guest::POWER_GPIO_BASE
    )?;
    writeln!(
        w,
        "#define MINOS_GUEST_POWER_GPIO_INTID {}",
        guest::POWER_GPIO_INTID
    )?;
    writeln!(
        w,
        "#define MINOS_GUEST_POWER_GPIO_PIN {}",
        guest::POWER_GPIO_PIN
    )?;
    writeln!(
        w,
        "#define MINOS_GUEST_EARLY_UART_BASE {:#x}ULL",
        guest::EARLY_UART_BASE
    )?;

    w.write_str("\n/* SMCCC calls the driver makes before any Minos call. */\n")?;
    writeln!(
        w,
        "#define MINOS_SMCCC_VERSION {:#010x}",
        hvc::SMCCC_VERSION
    )?;
    writeln!(
        w,
        "#define MINOS_VENDOR_HYP_CALL_UID {:#010x}",
        hvc::VENDOR_HYP_CALL_UID
    )?;
    for (i, word) in hvc::MINOS_UID.iter().enumerate() {
        writeln!(w, "#define MINOS_UID_{i} {word:#010x}")?;
    }

    w.write_str("\n/* Hypercall function ids: HVC #0, SMCCC fast call, SMC64, owner 6. */\n")?;
    for (name, fid) in hvc::ALL {
        writeln!(w, "#define MINOS_HVC_{name} {fid:#010x}")?;
    }

    w.write_str("\n/* Status codes in x0 (>= 0: success). */\n")?;
    for e in error::ALL {
        writeln!(w, "#define MINOS_E_{} ({})", e.c_name(), e.code())?;
    }

    w.write_str("\n/* VM flags. */\n")?;
    for (name, v) in types::FLAGS {
        writeln!(w, "#define MINOS_{name} {v:#x}")?;
    }
    for (prefix, vals) in [
        (VmState::C_PREFIX, VmState::C),
        (RequestKind::C_PREFIX, RequestKind::C),
        (IrqLevel::C_PREFIX, IrqLevel::C),
    ] {
        w.write_char('\n')?;
        for (name, v) in vals {
            writeln!(w, "#define MINOS_{prefix}{name} {v}")?;
        }
    }

    for s in types::ALL {
        write_struct(w, &s)?;
    }

    w.write_str("\n/* ioctls on /dev/minos. */\n")?;
    writeln!(w, "#define MINOS_IOC_MAGIC {:#x}", ioctl::MAGIC)?;
    for io in ioctl::ALL {
        let macro_name = match io.dir {
            ioctl::DIR_READ => "_IOR",
            ioctl::DIR_WRITE => "_IOW",
            _ => "_IOWR",
        };
        write!(
            w,
            "#define MINOS_IOC_{} {macro_name}(MINOS_IOC_MAGIC, {}, ",
            io.name, io.nr
        )?;
        match io.arg {
            ioctl::Arg::U32 => w.write_str("__u32)\n")?,
            ioctl::Arg::Struct(s) => writeln!(w, "struct {})", s.name)?,
        }
    }

    w.write_str(
        "\n/* The C compiler's reading of this file must match the Rust definitions. */\n",
    )?;
    for s in types::ALL {
        writeln!(
            w,
            "_Static_assert(sizeof(struct {0}) == {1}, \"struct {0} size\");",
            s.name, s.size
        )?;
        for f in s.fields {
            writeln!(
                w,
                "_Static_assert(__builtin_offsetof(struct {0}, {1}) == {2}, \"{0}.{1}\");",
                s.name, f.name, f.offset
            )?;
        }
    }
    for io in ioctl::ALL {
        writeln!(
            w,
            "_Static_assert(MINOS_IOC_{0} == {1:#010x}U, \"MINOS_IOC_{0}\");",
            io.name,
            io.number()
        )?;
    }

    w.write_str("\n#endif /* _MINOS_ABI_H */\n")
}

fn write_struct(w: &mut impl Write, s: &CStruct) -> Result {
    w.write_str("\n/*\n")?;
    for line in s.doc.lines() {
        writeln!(w, " *{}", line.trim_end())?;
    }
    w.write_str(" */\n")?;
    writeln!(w, "struct {} {{", s.name)?;
    for f in s.fields {
        let doc = f.doc.trim();
        if !doc.is_empty() {
            writeln!(w, "\t/* {doc} */")?;
        }
        if f.count() > 1 {
            writeln!(w, "\t{} {}[{}];", f.ctype, f.name, f.count())?;
        } else {
            writeln!(w, "\t{} {};", f.ctype, f.name)?;
        }
    }
    w.write_str("};\n")
}
