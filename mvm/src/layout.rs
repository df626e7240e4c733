//! The guest memory image: what goes where in the VM's RAM, checked before anything is copied.

/// One blob to place at a guest address.
#[derive(Debug, Clone, Copy)]
pub struct Piece<'a> {
    pub name: &'static str,
    pub addr: u64,
    pub data: &'a [u8],
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LayoutError {
    #[error("the {name} ({addr:#x}..{end:#x}) is outside the VM's RAM ({base:#x}..{ram_end:#x}): use more memory (-m) or other load addresses")]
    OutOfRange {
        name: &'static str,
        addr: u64,
        end: u128,
        base: u64,
        ram_end: u128,
    },
    #[error("the {a} ({a_start:#x}..{a_end:#x}) overlaps the {b} ({b_start:#x}..{b_end:#x})")]
    Overlap {
        a: &'static str,
        a_start: u64,
        a_end: u128,
        b: &'static str,
        b_start: u64,
        b_end: u128,
    },
    #[error("the VM's RAM ({base:#x}..{end:#x}) overlaps the guest device window at {mmio:#x} (virtio-mmio, power button): use another memory base")]
    MmioInRam { base: u64, end: u128, mmio: u64 },
}

/// Checks that every piece lies inside `[base, base + size)` and no two overlap, and that no
/// device window in `mmio` falls in RAM. Ends are computed in `u128`: nothing wraps.
pub fn check(
    base: u64,
    size: u64,
    pieces: &[Piece],
    mmio: &[(u64, u64)],
) -> Result<(), LayoutError> {
    let ram_end = u128::from(base) + u128::from(size);
    for &(m, len) in mmio {
        if u128::from(m) < ram_end && u128::from(base) < u128::from(m) + u128::from(len) {
            return Err(LayoutError::MmioInRam {
                base,
                end: ram_end,
                mmio: m,
            });
        }
    }
    let span = |p: &Piece| (p.addr, u128::from(p.addr) + p.data.len() as u128);
    for (i, p) in pieces.iter().enumerate() {
        let (start, end) = span(p);
        if start < base || end > ram_end {
            return Err(LayoutError::OutOfRange {
                name: p.name,
                addr: start,
                end,
                base,
                ram_end,
            });
        }
        for q in &pieces[i + 1..] {
            let (qs, qe) = span(q);
            if u128::from(start) < qe
                && u128::from(qs) < end
                && !p.data.is_empty()
                && !q.data.is_empty()
            {
                return Err(LayoutError::Overlap {
                    a: p.name,
                    a_start: start,
                    a_end: end,
                    b: q.name,
                    b_start: qs,
                    b_end: qe,
                });
            }
        }
    }
    Ok(())
}

/// Copies checked pieces into `ram` (guest IPA `base` is `ram[0]`).
pub fn write(ram: &mut [u8], base: u64, pieces: &[Piece]) -> Result<(), LayoutError> {
    check(base, ram.len() as u64, pieces, &[])?;
    for p in pieces {
        let off = (p.addr - base) as usize;
        ram[off..off + p.data.len()].copy_from_slice(p.data);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: u64 = 0x8000_0000;

    fn piece(name: &'static str, addr: u64, data: &'static [u8]) -> Piece<'static> {
        Piece { name, addr, data }
    }

    #[test]
    fn places_pieces_at_their_offsets() {
        let mut ram = vec![0u8; 0x1000];
        let pieces = [
            piece("kernel", BASE + 0x10, b"KERN"),
            piece("dtb", BASE + 0x800, b"DTB"),
        ];
        write(&mut ram, BASE, &pieces).unwrap();
        assert_eq!(&ram[0x10..0x14], b"KERN");
        assert_eq!(&ram[0x800..0x803], b"DTB");
        assert_eq!(ram[0x14], 0);
    }

    #[test]
    fn rejects_out_of_range_and_overlaps() {
        let e = check(BASE, 0x100, &[piece("kernel", BASE + 0xfe, b"abc")], &[]).unwrap_err();
        assert!(matches!(e, LayoutError::OutOfRange { name: "kernel", .. }));
        let e = check(BASE, 0x100, &[piece("ramdisk", BASE - 1, b"a")], &[]).unwrap_err();
        assert!(matches!(
            e,
            LayoutError::OutOfRange {
                name: "ramdisk",
                ..
            }
        ));
        let e = check(
            BASE,
            0x100,
            &[piece("kernel", BASE, b"abcd"), piece("dtb", BASE + 3, b"x")],
            &[],
        )
        .unwrap_err();
        assert!(matches!(
            e,
            LayoutError::Overlap {
                a: "kernel",
                b: "dtb",
                ..
            }
        ));
        // Touching is fine.
        check(
            BASE,
            0x100,
            &[piece("kernel", BASE, b"abcd"), piece("dtb", BASE + 4, b"x")],
            &[],
        )
        .unwrap();
        // Near the top of the address space nothing wraps around.
        let e = check(
            u64::MAX - 7,
            4,
            &[piece("kernel", u64::MAX - 2, b"abcd")],
            &[],
        )
        .unwrap_err();
        assert!(matches!(e, LayoutError::OutOfRange { .. }));
    }

    #[test]
    fn rejects_ram_over_device_windows() {
        let e = check(0x4000_0000, 0x20_0000, &[], &[(0x4000_0000, 0x200)]).unwrap_err();
        assert!(matches!(e, LayoutError::MmioInRam { .. }));
        check(BASE, 0x20_0000, &[], &[(0x4000_0000, 0x200)]).unwrap();
    }
}
