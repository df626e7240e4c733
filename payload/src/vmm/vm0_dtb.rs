//! What VM0's device tree needs for minos.ko: PSCI over HVC (Linux then takes HVC as its SMCCC
//! conduit, which the driver requires before it issues any Minos call) and the
//! `minos,hypervisor` node carrying the notification interrupt.
//!
//! QEMU's virt machine with `virtualization=on` says `method = "smc"` (its firmware conduit
//! from EL2); the hypervisor traps SMC too, so switching VM0 to HVC changes nothing else.

use crate::fdt_edit::{self, EditError};

/// Sets `/psci`'s `method` to `"hvc"`. Returns whether the node and property exist.
pub fn psci_over_hvc(dtb: &mut [u8]) -> Result<bool, EditError> {
    let Some(psci) = fdt_edit::find_node(dtb, "/psci")? else {
        return Ok(false);
    };
    let range = psci.range();
    fdt_edit::set_prop(dtb, range, "method", b"hvc\0")
}

const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_END: u32 = 9;
/// GIC interrupt specifier: SPI, level high (`interrupts = <0 spi 4>`).
const GIC_SPI: u32 = 0;
const IRQ_LEVEL_HIGH: u32 = 4;

fn be32(b: &[u8], off: usize) -> Result<usize, EditError> {
    let w = b.get(off..off + 4).ok_or(EditError::Truncated)?;
    Ok(u32::from_be_bytes([w[0], w[1], w[2], w[3]]) as usize)
}

/// Copies `src` to `out` with a node `/hypervisor` (`compatible = "minos,hypervisor"`,
/// `interrupts = <0 (intid - 32) 4>`) added as the root's last child, for VM0's notification
/// SPI `intid`. Returns the new size. `src` must be a valid DTB whose root's interrupt parent
/// is the GIC (true on every board with a GIC as its only controller).
pub fn add_hypervisor_node(src: &[u8], out: &mut [u8], intid: u32) -> Result<usize, EditError> {
    if !(32..1020).contains(&intid) {
        return Err(EditError::BadHeader);
    }
    let total = fdt_edit::total_size(src)?;
    let off_struct = be32(src, 8)?;
    let off_strings = be32(src, 12)?;
    let size_strings = be32(src, 32)?;
    let size_struct = be32(src, 36)?;
    let struct_end = off_struct
        .checked_add(size_struct)
        .filter(|&e| e <= total)
        .ok_or(EditError::Truncated)?;
    let strings_end = off_strings
        .checked_add(size_strings)
        .filter(|&e| e <= total)
        .ok_or(EditError::Truncated)?;
    // The struct block ends with the root's END_NODE then END.
    if size_struct < 8
        || be32(src, struct_end - 4)? != FDT_END as usize
        || be32(src, struct_end - 8)? != FDT_END_NODE as usize
    {
        return Err(EditError::BadHeader);
    }
    let compat = minos_abi::VM0_DT_COMPATIBLE;
    // New property names go at the end of the strings block.
    let name_compat = size_strings;
    let name_irq = size_strings + b"compatible\0".len();
    let new_strings: &[u8] = b"compatible\0interrupts\0";

    let mut node = [0u8; 128];
    let mut n = 0;
    let mut put = |bytes: &[u8]| {
        node[n..n + bytes.len()].copy_from_slice(bytes);
        n += bytes.len();
    };
    put(&FDT_BEGIN_NODE.to_be_bytes());
    put(b"hypervisor\0\0");
    put(&FDT_PROP.to_be_bytes());
    put(&(compat.len() as u32 + 1).to_be_bytes());
    put(&(name_compat as u32).to_be_bytes());
    put(compat.as_bytes());
    let pad = (4 - (compat.len() + 1) % 4) % 4;
    put(&[0u8; 4][..1 + pad]);
    put(&FDT_PROP.to_be_bytes());
    put(&12u32.to_be_bytes());
    put(&(name_irq as u32).to_be_bytes());
    for cell in [GIC_SPI, intid - 32, IRQ_LEVEL_HIGH] {
        put(&cell.to_be_bytes());
    }
    put(&FDT_END_NODE.to_be_bytes());
    let node = &node[..n];

    // Layout: header and memory reservations as they were, the struct block with the node
    // before the root's END_NODE, then the strings block with the new names.
    let insert_at = struct_end - 8;
    let new_struct_size = size_struct + node.len();
    let new_off_strings = off_struct + new_struct_size;
    let new_size_strings = size_strings + new_strings.len();
    let new_total = new_off_strings + new_size_strings;
    if struct_end > off_strings {
        // Not the usual block order (dtc and QEMU put the strings last).
        return Err(EditError::BadHeader);
    }
    if new_total > out.len() {
        return Err(EditError::Truncated);
    }
    out[..insert_at].copy_from_slice(&src[..insert_at]);
    out[insert_at..insert_at + node.len()].copy_from_slice(node);
    out[insert_at + node.len()..new_off_strings].copy_from_slice(&src[insert_at..struct_end]);
    out[new_off_strings..new_off_strings + size_strings]
        .copy_from_slice(&src[off_strings..strings_end]);
    out[new_off_strings + size_strings..new_total].copy_from_slice(new_strings);
    for (field, v) in [
        (4, new_total),
        (12, new_off_strings),
        (32, new_size_strings),
        (36, new_struct_size),
    ] {
        out[field..field + 4].copy_from_slice(&(v as u32).to_be_bytes());
    }
    Ok(new_total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn dtb(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    /// Runs `tool` on `dtb` written to a scratch file (removed afterwards).
    fn run(tool: &str, dtb: &[u8], args: &[&str]) -> String {
        let path = std::env::temp_dir().join(format!(
            "vm0dtb-{}-{:?}.dtb",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&path, dtb).unwrap();
        let out = Command::new(tool).args(args).arg(&path).output();
        std::fs::remove_file(&path).unwrap();
        let out = out.unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{tool} {args:?}: {err}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// `fdtget [-t..] <dtb> node prop`.
    fn fdtget(dtb: &[u8], args: &[&str]) -> String {
        let path = std::env::temp_dir().join(format!(
            "vm0dtb-get-{}-{:?}.dtb",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&path, dtb).unwrap();
        let (opts, rest) = args.split_at(args.len() - 2 + usize::from(args[0] == "-l"));
        let out = Command::new("fdtget")
            .args(opts)
            .arg(&path)
            .args(rest)
            .output();
        std::fs::remove_file(&path).unwrap();
        let out = out.unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "fdtget {args:?}: {err}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    #[test]
    fn psci_method_becomes_hvc() {
        for name in ["virt-v3.dtb", "virt-v2.dtb"] {
            let mut d = dtb(name);
            assert_eq!(fdtget(&d, &["/psci", "method"]), "smc");
            assert_eq!(psci_over_hvc(&mut d), Ok(true));
            assert_eq!(fdtget(&d, &["/psci", "method"]), "hvc");
            assert_eq!(fdtget(&d, &["-tx", "/psci", "cpu_on"]), "c4000003");
        }
        let mut d = dtb("virt-v3.dtb");
        fdt_edit::remove_node(&mut d, "/psci").unwrap();
        assert_eq!(psci_over_hvc(&mut d), Ok(false));
    }

    #[test]
    fn the_hypervisor_node_is_added_and_the_rest_kept() {
        let src = dtb("virt-v3.dtb");
        let mut out = vec![0u8; src.len() + 256];
        let n = add_hypervisor_node(&src, &mut out, 47).unwrap();
        let d = &out[..n];
        assert_eq!(
            fdtget(d, &["/hypervisor", "compatible"]),
            "minos,hypervisor"
        );
        assert_eq!(fdtget(d, &["/hypervisor", "interrupts"]), "0 15 4");
        assert_eq!(
            fdtget(d, &["/psci", "method"]),
            fdtget(&src, &["/psci", "method"])
        );
        assert_eq!(
            fdtget(d, &["/", "compatible"]),
            fdtget(&src, &["/", "compatible"])
        );
        let list = |b: &[u8]| fdtget(b, &["-l", "/"]);
        assert_eq!(list(d), format!("{}\nhypervisor", list(&src)));
        // dtc decompiles it without a warning, and the crate's own parser reads it too.
        let dts = run("dtc", d, &["-q", "-I", "dtb", "-O", "dts"]);
        assert!(dts.contains("compatible = \"minos,hypervisor\";"), "{dts}");
        let f = fdt::Fdt::new(d).unwrap();
        let node = f.find_compatible(&["minos,hypervisor"]).unwrap();
        assert_eq!(node.name, "hypervisor");
    }

    #[test]
    fn bad_input_is_an_error() {
        let src = dtb("virt-v3.dtb");
        let mut small = vec![0u8; src.len()];
        assert_eq!(
            add_hypervisor_node(&src, &mut small, 47),
            Err(EditError::Truncated)
        );
        let mut out = vec![0u8; src.len() + 256];
        assert!(add_hypervisor_node(&src, &mut out, 16).is_err(), "a PPI");
        assert!(add_hypervisor_node(&src[..64], &mut out, 47).is_err());
        assert!(add_hypervisor_node(&[0u8; 8], &mut out, 47).is_err());
    }
}
