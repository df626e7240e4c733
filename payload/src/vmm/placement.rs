//! Where the integration puts the VM manager's resources on a given board: the VM0 IPA window
//! guest RAM appears in for mvm, and VM0's notification SPI. Pure functions of the board's
//! ranges and device tree, so they are tested on the host against QEMU's real DTBs.

use core::ops::Range;

use fdt::Fdt;
use minos_abi::MEM_ALIGN;

use super::platform::overlaps;

/// Guest RAM appears in VM0 at or above this IPA: far from anything a board puts low, and
/// above 32-bit DMA limits VM0's drivers might care about.
const WINDOW_FLOOR: u64 = 1 << 32;

/// The lowest 2 MiB-aligned range of `size` bytes at or above 4 GiB and above every range in
/// `taken` that starts below it, clear of all of `taken`, ending at or below `1 << ipa_bits`.
pub fn vm0_window(taken: &[Range<u64>], ipa_bits: u32, size: u64) -> Option<Range<u64>> {
    let size = size.checked_next_multiple_of(MEM_ALIGN)?.max(MEM_ALIGN);
    let limit = 1u64.checked_shl(ipa_bits)?;
    let mut at = WINDOW_FLOOR;
    // Each step moves `at` past one range it collided with, so `taken.len() + 1` rounds
    // are enough.
    for _ in 0..=taken.len() {
        let end = at.checked_add(size)?;
        if end > limit {
            return None;
        }
        let win = at..end;
        match taken
            .iter()
            .filter(|r| overlaps(r, &win))
            .map(|r| r.end)
            .max()
        {
            None => return Some(win),
            Some(e) => at = e.checked_next_multiple_of(MEM_ALIGN)?,
        }
    }
    None
}

/// Why no notification SPI can be chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpiError {
    /// The device tree does not parse.
    BadDtb,
    /// Every SPI the GIC implements up to its last is used by a device.
    NoneFree { highest_used: u32, nr_irqs: u32 },
}

impl core::fmt::Display for SpiError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SpiError::BadDtb => f.write_str("the device tree does not parse"),
            SpiError::NoneFree {
                highest_used,
                nr_irqs,
            } => write!(
                f,
                "devices use SPIs up to INTID {highest_used}, the GIC has {nr_irqs} INTIDs"
            ),
        }
    }
}

/// VM0's notification SPI: the GIC's last INTID (`nr_irqs - 1`, at most 1019), provided it
/// lies above every SPI the devices in `dtb` use (`interrupts`, `interrupts-extended` and
/// `interrupt-map` entries of 3-cell GIC specifiers, and GICv2m MSI ranges).
pub fn notify_spi(dtb: &[u8], nr_irqs: u32) -> Result<u32, SpiError> {
    let highest_used = highest_spi(dtb)?;
    let top = nr_irqs.min(1020).saturating_sub(1);
    if top >= 32 && top > highest_used {
        Ok(top)
    } else {
        Err(SpiError::NoneFree {
            highest_used,
            nr_irqs,
        })
    }
}

fn cells(b: &[u8]) -> impl Iterator<Item = u32> + '_ {
    b.chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
}

/// SPI INTID of a 3-cell GIC specifier (`<type number flags>`, type 0 = SPI).
fn spi_of(spec: &[u32]) -> Option<u32> {
    match spec {
        [0, n, _] => Some(n.saturating_add(32)),
        _ => None,
    }
}

/// The highest SPI INTID the tree's devices use (31 when none).
fn highest_spi(dtb: &[u8]) -> Result<u32, SpiError> {
    let fdt = Fdt::new(dtb).map_err(|_| SpiError::BadDtb)?;
    let mut high = 31u32;
    let mut see = |i: u32| high = high.max(i);
    // Interrupt controllers' `#interrupt-cells`/`#address-cells`, by phandle.
    let parent_cells = |phandle: u32| -> Option<(usize, usize)> {
        let n = fdt.find_phandle(phandle)?;
        let ic = n.property("#interrupt-cells")?.as_usize()?;
        let ac = n
            .property("#address-cells")
            .and_then(|p| p.as_usize())
            .unwrap_or(0);
        Some((ic, ac))
    };
    for node in fdt.all_nodes() {
        if let Some(p) = node.property("interrupts") {
            // Only 3-cell specifiers name GIC SPIs; other controllers' lines are not ours.
            if p.value.len() % 12 == 0 {
                let v: alloc::vec::Vec<u32> = cells(p.value).collect();
                v.chunks_exact(3).filter_map(spi_of).for_each(&mut see);
            }
        }
        if let Some(p) = node.property("interrupts-extended") {
            let v: alloc::vec::Vec<u32> = cells(p.value).collect();
            let mut i = 0;
            while i < v.len() {
                let Some((ic, _)) = parent_cells(v[i]) else {
                    break;
                };
                if let Some(s) = v.get(i + 1..i + 1 + ic).and_then(spi_of) {
                    see(s);
                }
                i += 1 + ic;
            }
        }
        if let Some(p) = node.property("interrupt-map") {
            let child_addr = node
                .property("#address-cells")
                .and_then(|p| p.as_usize())
                .unwrap_or(2);
            let child_irq = node
                .property("#interrupt-cells")
                .and_then(|p| p.as_usize())
                .unwrap_or(1);
            let v: alloc::vec::Vec<u32> = cells(p.value).collect();
            let mut i = 0;
            while let Some(&phandle) = v.get(i + child_addr + child_irq) {
                let Some((ic, ac)) = parent_cells(phandle) else {
                    break;
                };
                let spec = i + child_addr + child_irq + 1 + ac;
                if let Some(s) = v.get(spec..spec + ic).and_then(spi_of) {
                    see(s);
                }
                i = spec + ic;
            }
        }
        let base = node.property("arm,msi-base-spi").and_then(|p| p.as_usize());
        let num = node.property("arm,msi-num-spis").and_then(|p| p.as_usize());
        if let (Some(b), Some(n)) = (base, num) {
            see(u32::try_from(b + n.max(1) - 1).unwrap_or(u32::MAX));
        }
    }
    Ok(high)
}

extern crate alloc;

#[cfg(test)]
mod tests {
    use super::*;

    const G: u64 = 1 << 30;

    fn dtb(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn window_starts_at_4g_when_free() {
        let taken = [0x4000_0000..0x8000_0000, 0x0900_0000..0x0900_1000];
        assert_eq!(
            vm0_window(&taken, 40, 3 << 20),
            Some(4 * G..4 * G + (4 << 20))
        );
    }

    #[test]
    fn window_skips_ram_and_devices_above_4g() {
        let taken = [
            0x4000_0000..0x1_4000_0000,     // RAM up to 5 GiB
            0x1_4010_0000..0x1_4010_1000,   // a device just above
            0x40_0000_0000..0x40_1000_0000, // high redistributors
        ];
        let w = vm0_window(&taken, 40, G).unwrap();
        assert_eq!(w, 0x1_4020_0000..0x1_4020_0000 + G);
        assert!(!taken.iter().any(|r| overlaps(r, &w)));
    }

    #[test]
    fn window_must_fit_the_ipa_space() {
        assert_eq!(
            vm0_window(&[], 32, 2 << 20),
            None,
            "4 GiB is the top of 32 bits"
        );
        let above = [4 * G..(1 << 36), 0..1];
        assert_eq!(vm0_window(&above, 36, 2 << 20), None);
        assert!(vm0_window(&[], 33, 4 * G).is_some());
        assert_eq!(vm0_window(&[], 33, 4 * G + 1), None);
        assert_eq!(
            vm0_window(&[], 64, 2 << 20),
            None,
            "no shift overflow panic"
        );
    }

    #[test]
    fn qemu_virt_notification_spi_is_the_gics_last() {
        // QEMU virt: UART 33, RTC 34, PCIe INTx 35-38 (interrupt-map), GPIO 39, virtio-mmio
        // 48-79; 288 INTIDs. (Its v2m frame names no SPI range in the tree, and VM0's DTB
        // loses the frame anyway: the vGIC has no MSI frame.)
        for name in ["virt-v3.dtb", "virt-v2.dtb"] {
            let d = dtb(name);
            assert_eq!(highest_spi(&d), Ok(79), "{name}");
            assert_eq!(notify_spi(&d, 288), Ok(287), "{name}");
        }
    }

    fn compile(dts: &str) -> Vec<u8> {
        use std::io::Write;
        let mut c = std::process::Command::new("dtc")
            .args(["-q", "-I", "dts", "-O", "dtb"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(dts.as_bytes()).unwrap();
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success());
        out.stdout
    }

    #[test]
    fn every_way_of_naming_an_spi_counts() {
        let tree = |body: &str| {
            compile(&format!(
                "/dts-v1/; / {{ #address-cells = <2>; #size-cells = <2>; interrupt-parent = <&gic>;
                gic: intc@0 {{ reg = <0 0 0 0x1000>; #interrupt-cells = <3>; #address-cells = <2>;
                interrupt-controller; }};
                other: ic2@1 {{ reg = <0 1 0 1>; #interrupt-cells = <1>; interrupt-controller; }};
                {body} }};"
            ))
        };
        let map = "pcie@9 { reg = <0 9 0 1>; #address-cells = <3>; #size-cells = <2>;
            #interrupt-cells = <1>; interrupt-map-mask = <0 0 0 7>;
            interrupt-map = <0 0 0 1 &gic 0 0 0 200 4>, <0 0 0 2 &gic 0 0 0 3 4>; };";
        assert_eq!(highest_spi(&tree(map)), Ok(232));
        let ext = "dev@5 { reg = <0 5 0 1>; interrupts-extended = <&other 250>, <&gic 0 210 4>; };";
        assert_eq!(
            highest_spi(&tree(ext)),
            Ok(242),
            "the 1-cell controller's 250 is not an SPI"
        );
        let msi = "v2m@7 { reg = <0 7 0 1>; arm,msi-base-spi = <100>; arm,msi-num-spis = <64>; };";
        assert_eq!(highest_spi(&tree(msi)), Ok(163));
        let ppi = "timer { interrupts = <1 13 4>, <1 14 4>; };";
        assert_eq!(highest_spi(&tree(ppi)), Ok(31), "PPIs are not SPIs");
        assert_eq!(
            notify_spi(&tree(map), 233),
            Err(SpiError::NoneFree {
                highest_used: 232,
                nr_irqs: 233
            })
        );
    }

    #[test]
    fn no_free_spi_is_an_error() {
        let d = dtb("virt-v3.dtb");
        let high = highest_spi(&d).unwrap();
        assert_eq!(
            notify_spi(&d, high + 1),
            Err(SpiError::NoneFree {
                highest_used: high,
                nr_irqs: high + 1
            })
        );
        assert_eq!(notify_spi(b"not a dtb", 288), Err(SpiError::BadDtb));
    }
}
