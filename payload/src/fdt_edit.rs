//! In-place device-tree edits that never move data: removing a node or property turns its
//! tokens into FDT_NOP, and a property may only shrink (the freed tail becomes FDT_NOP too).
//! This is how VM0's DTB is derived from the hypervisor's without an allocator.

use core::fmt;

const MAGIC: u32 = 0xd00d_feed;
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditError {
    BadHeader,
    Truncated,
    BadToken(usize),
    Grow,
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EditError::BadHeader => write!(f, "bad FDT header"),
            EditError::Truncated => write!(f, "FDT structure block truncated"),
            EditError::BadToken(o) => write!(f, "bad FDT token at {o:#x}"),
            EditError::Grow => write!(f, "a property cannot grow in place"),
        }
    }
}

fn rd(fdt: &[u8], off: usize) -> Result<u32, EditError> {
    let b = fdt.get(off..off + 4).ok_or(EditError::Truncated)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn wr(fdt: &mut [u8], off: usize, v: u32) {
    fdt[off..off + 4].copy_from_slice(&v.to_be_bytes());
}

fn align4(v: usize) -> usize {
    (v + 3) & !3
}

/// `totalsize` from the header, after checking the magic.
pub fn total_size(fdt: &[u8]) -> Result<usize, EditError> {
    if rd(fdt, 0)? != MAGIC {
        return Err(EditError::BadHeader);
    }
    Ok(rd(fdt, 4)? as usize)
}

struct Layout {
    structs: usize,
    struct_end: usize,
    strings: usize,
    strings_end: usize,
}

fn layout(fdt: &[u8]) -> Result<Layout, EditError> {
    let total = total_size(fdt)?;
    if total > fdt.len() {
        return Err(EditError::Truncated);
    }
    let structs = rd(fdt, 8)? as usize;
    let strings = rd(fdt, 12)? as usize;
    let struct_end = structs
        .checked_add(rd(fdt, 36)? as usize)
        .ok_or(EditError::BadHeader)?;
    let strings_end = strings
        .checked_add(rd(fdt, 32)? as usize)
        .ok_or(EditError::BadHeader)?;
    if struct_end > total || strings_end > total || !structs.is_multiple_of(4) {
        return Err(EditError::BadHeader);
    }
    Ok(Layout {
        structs,
        struct_end,
        strings,
        strings_end,
    })
}

fn cstr(bytes: &[u8], off: usize, end: usize) -> Result<&[u8], EditError> {
    let s = bytes.get(off..end).ok_or(EditError::Truncated)?;
    let n = s.iter().position(|&b| b == 0).ok_or(EditError::Truncated)?;
    Ok(&s[..n])
}

/// One node seen by [`walk`]: its depth (root = 0), name, the offset of its BEGIN_NODE token
/// and of the first token after its END_NODE.
#[derive(Debug, Clone, Copy)]
pub struct NodeSpan<'a> {
    pub depth: usize,
    pub name: &'a [u8],
    pub start: usize,
    pub end: usize,
    /// Offset just after the name: the first property or child token.
    pub body: usize,
}

impl NodeSpan<'_> {
    /// `(start, end)`, detached from the borrow of the blob.
    pub fn range(&self) -> (usize, usize) {
        (self.start, self.end)
    }
}

/// Calls `f` for every node, in pre-order, with spans computed by a first pass.
fn walk<'a>(fdt: &'a [u8], mut f: impl FnMut(&[NodeSpan<'a>])) -> Result<(), EditError> {
    let l = layout(fdt)?;
    let mut stack: [Option<NodeSpan<'a>>; 16] = [None; 16];
    let mut depth = 0usize;
    let mut off = l.structs;
    // Pass over tokens; the node's end is only known at its END_NODE, so report nodes there
    // (post-order) with the full path of ancestors available on the stack.
    loop {
        let token = rd(fdt, off)?;
        match token {
            BEGIN_NODE => {
                let name = cstr(fdt, off + 4, l.struct_end)?;
                let body = off + 4 + align4(name.len() + 1);
                let slot = stack.get_mut(depth).ok_or(EditError::BadToken(off))?;
                *slot = Some(NodeSpan {
                    depth,
                    name,
                    start: off,
                    end: 0,
                    body,
                });
                depth += 1;
                off = body;
            }
            END_NODE => {
                depth = depth.checked_sub(1).ok_or(EditError::BadToken(off))?;
                off += 4;
                if let Some(span) = stack[depth].as_mut() {
                    span.end = off;
                }
                let path: [NodeSpan<'a>; 16] = core::array::from_fn(|i| {
                    stack[i].unwrap_or(NodeSpan {
                        depth: 0,
                        name: &[],
                        start: 0,
                        end: 0,
                        body: 0,
                    })
                });
                f(&path[..=depth]);
            }
            PROP => {
                let len = rd(fdt, off + 4)? as usize;
                off += 12 + align4(len);
            }
            NOP => off += 4,
            END => {
                return if depth == 0 {
                    Ok(())
                } else {
                    Err(EditError::Truncated)
                }
            }
            _ => return Err(EditError::BadToken(off)),
        }
        if off >= l.struct_end {
            return Err(EditError::Truncated);
        }
    }
}

fn segment_matches(name: &[u8], seg: &str) -> bool {
    let seg = seg.as_bytes();
    if name == seg {
        return true;
    }
    !seg.contains(&b'@') && name.split(|&b| b == b'@').next() == Some(seg)
}

fn path_matches(path: &[NodeSpan<'_>], want: &str) -> bool {
    let mut segs = want.split('/').filter(|s| !s.is_empty());
    for node in &path[1..] {
        match segs.next() {
            Some(seg) if segment_matches(node.name, seg) => {}
            _ => return false,
        }
    }
    segs.next().is_none()
}

/// The span of the node at `path` (e.g. `/vms`, `/cpus/cpu@1`; a segment without a unit
/// address matches any unit address).
pub fn find_node<'a>(fdt: &'a [u8], path: &str) -> Result<Option<NodeSpan<'a>>, EditError> {
    let mut found = None;
    walk(fdt, |p| {
        if found.is_none() && path_matches(p, path) {
            found = Some(p[p.len() - 1]);
        }
    })?;
    Ok(found)
}

/// Spans of every node for which `pred(path)` holds.
pub fn find_nodes<'a, const N: usize>(
    fdt: &'a [u8],
    mut pred: impl FnMut(&[NodeSpan<'a>]) -> bool,
) -> Result<crate::fixed::FixedVec<(usize, usize), N>, EditError> {
    let mut out = crate::fixed::FixedVec::new();
    walk(fdt, |p| {
        if pred(p) {
            let n = p[p.len() - 1];
            let _ = out.push((n.start, n.end));
        }
    })?;
    Ok(out)
}

/// The property `name` directly inside the node spanning `[start, end)`: (token offset,
/// value offset, value length).
pub fn find_prop(
    fdt: &[u8],
    node: (usize, usize),
    name: &str,
) -> Result<Option<(usize, usize, usize)>, EditError> {
    let l = layout(fdt)?;
    let (start, end) = node;
    let name_len = cstr(fdt, start + 4, end)?.len();
    let mut off = start + 4 + align4(name_len + 1);
    while off < end {
        match rd(fdt, off)? {
            PROP => {
                let len = rd(fdt, off + 4)? as usize;
                let nameoff = rd(fdt, off + 8)? as usize;
                let pname = cstr(fdt, l.strings + nameoff, l.strings_end)?;
                if pname == name.as_bytes() {
                    if off + 12 + len > end {
                        return Err(EditError::Truncated);
                    }
                    return Ok(Some((off, off + 12, len)));
                }
                off += 12 + align4(len);
            }
            NOP => off += 4,
            // Properties come before children: the first child ends the search.
            _ => return Ok(None),
        }
    }
    Ok(None)
}

/// Turns `[start, end)` (a node or property, 4-byte aligned) into NOP tokens.
pub fn nop_range(fdt: &mut [u8], start: usize, end: usize) {
    let mut off = start;
    while off + 4 <= end {
        wr(fdt, off, NOP);
        off += 4;
    }
}

/// Removes the node at `path`; returns whether it existed.
pub fn remove_node(fdt: &mut [u8], path: &str) -> Result<bool, EditError> {
    match find_node(fdt, path)? {
        Some(n) => {
            nop_range(fdt, n.start, n.end);
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Replaces the value of an existing property with `value`, which may not be longer.
pub fn set_prop(
    fdt: &mut [u8],
    node: (usize, usize),
    name: &str,
    value: &[u8],
) -> Result<bool, EditError> {
    let Some((tok, voff, len)) = find_prop(fdt, node, name)? else {
        return Ok(false);
    };
    if value.len() > len {
        return Err(EditError::Grow);
    }
    fdt[voff..voff + value.len()].copy_from_slice(value);
    let new_end = voff + align4(value.len());
    fdt[voff + value.len()..new_end].fill(0);
    wr(fdt, tok + 4, value.len() as u32);
    nop_range(fdt, new_end, voff + align4(len));
    Ok(true)
}

/// Copies `src` into `out` without NOP tokens (and without trailing free space), returning
/// the new size. Some tools (QEMU's `-dtb` fix-ups) leave NOPs that the `fdt` crate cannot
/// skip everywhere.
pub fn compact(src: &[u8], out: &mut [u8]) -> Result<usize, EditError> {
    let l = layout(src)?;
    let rsv = rd(src, 16)? as usize;
    if rsv < 40 || rsv > l.structs {
        return Err(EditError::BadHeader);
    }
    let hdr = 40;
    let rsv_len = l.structs - rsv;
    let need = hdr + rsv_len + (l.struct_end - l.structs) + (l.strings_end - l.strings);
    if out.len() < need {
        return Err(EditError::Truncated);
    }
    out[..hdr].copy_from_slice(&src[..hdr]);
    out[hdr..hdr + rsv_len].copy_from_slice(&src[rsv..l.structs]);
    let new_structs = hdr + rsv_len;
    let mut o = new_structs;
    let mut off = l.structs;
    loop {
        let token = rd(src, off)?;
        let len = match token {
            BEGIN_NODE => 4 + align4(cstr(src, off + 4, l.struct_end)?.len() + 1),
            PROP => 12 + align4(rd(src, off + 4)? as usize),
            END_NODE | END => 4,
            NOP => {
                off += 4;
                continue;
            }
            _ => return Err(EditError::BadToken(off)),
        };
        let chunk = src.get(off..off + len).ok_or(EditError::Truncated)?;
        out[o..o + len].copy_from_slice(chunk);
        o += len;
        off += len;
        if token == END {
            break;
        }
    }
    let struct_size = o - new_structs;
    let strings_size = l.strings_end - l.strings;
    out[o..o + strings_size].copy_from_slice(&src[l.strings..l.strings_end]);
    let total = o + strings_size;
    wr(out, 4, total as u32);
    wr(out, 8, new_structs as u32);
    wr(out, 12, o as u32);
    wr(out, 16, hdr as u32);
    wr(out, 32, strings_size as u32);
    wr(out, 36, struct_size as u32);
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::tests::VIRT_V3;
    use crate::board::{Board, Region};

    #[test]
    fn removes_vms_and_shrinks_memory() {
        let mut dtb = VIRT_V3.to_vec();
        assert!(remove_node(&mut dtb, "/vms").unwrap());
        assert!(!remove_node(&mut dtb, "/vms").unwrap());
        let mem = find_node(&dtb, "/memory").unwrap().unwrap().range();
        let mut reg = [0u8; 16];
        reg[..8].copy_from_slice(&0x4400_0000u64.to_be_bytes());
        reg[8..].copy_from_slice(&0x1000_0000u64.to_be_bytes());
        assert!(set_prop(&mut dtb, mem, "reg", &reg).unwrap());
        let b = Board::parse(&dtb).unwrap();
        assert!(b.vms.is_empty());
        assert_eq!(
            b.memory.as_slice(),
            &[Region::new(0x4400_0000, 0x1000_0000)]
        );
        // Everything else is untouched.
        assert_eq!(b.cpus.len(), 2);
        assert_eq!(
            b.devices.len(),
            Board::parse(VIRT_V3).unwrap().devices.len()
        );
    }

    #[test]
    fn shrinking_a_property_keeps_the_tree_valid() {
        let mut dtb = VIRT_V3.to_vec();
        let cpus = find_node(&dtb, "/cpus").unwrap().unwrap().range();
        let cpu1 = find_node(&dtb, "/cpus/cpu@1").unwrap().unwrap().range();
        assert!(cpu1.0 > cpus.0 && cpu1.1 < cpus.1);
        nop_range(&mut dtb, cpu1.0, cpu1.1);
        let root = find_node(&dtb, "/").unwrap().unwrap().range();
        assert!(set_prop(&mut dtb, root, "model", b"ab\0").unwrap());
        assert_eq!(
            set_prop(&mut dtb, root, "model", &[1u8; 64]),
            Err(EditError::Grow)
        );
        // The `fdt` crate trips over NOPs between sibling nodes (Linux and dtc do not), so
        // check with this module's own walker.
        assert!(find_node(&dtb, "/cpus/cpu@1").unwrap().is_none());
        assert!(find_node(&dtb, "/cpus/cpu@0").unwrap().is_some());
        assert!(find_node(&dtb, "/cpus/cpu-map").unwrap().is_some());
        let root = find_node(&dtb, "/").unwrap().unwrap().range();
        let (_, voff, len) = find_prop(&dtb, root, "model").unwrap().unwrap();
        assert_eq!(&dtb[voff..voff + len], b"ab\0");
        let chosen = find_node(&dtb, "/chosen").unwrap().unwrap().range();
        assert!(find_prop(&dtb, chosen, "stdout-path").unwrap().is_some());
    }

    #[test]
    fn compact_drops_nops_so_the_fdt_crate_can_read_it() {
        // QEMU's -dtb fix-ups NOP out /memory and append a new one: model that.
        let mut dtb = VIRT_V3.to_vec();
        let mem = find_node(&dtb, "/memory").unwrap().unwrap().range();
        let cpu1 = find_node(&dtb, "/cpus/cpu@1").unwrap().unwrap().range();
        nop_range(&mut dtb, cpu1.0, cpu1.1);
        nop_range(&mut dtb, mem.0, mem.1);
        assert!(Board::parse(&dtb).is_err());
        let mut out = vec![0u8; dtb.len()];
        let n = compact(&dtb, &mut out).unwrap();
        assert_eq!(n, dtb.len() - (mem.1 - mem.0) - (cpu1.1 - cpu1.0));
        assert_eq!(total_size(&out).unwrap(), n);
        let b = Board::parse(&out[..n]).map(|b| b.cpus.len());
        // No memory node left is the only complaint.
        assert_eq!(b.err(), Some(crate::board::BoardError::Missing("memory")));
        assert!(compact(&dtb, &mut [0u8; 64]).is_err());
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(total_size(b"nope").unwrap_err(), EditError::BadHeader);
        let mut dtb = VIRT_V3.to_vec();
        dtb.truncate(100);
        assert!(find_node(&dtb, "/vms").is_err());
        let mut dtb = VIRT_V3.to_vec();
        let off = rd(&dtb, 8).unwrap() as usize;
        wr(&mut dtb, off, 0x77);
        assert_eq!(
            find_node(&dtb, "/vms").unwrap_err(),
            EditError::BadToken(off)
        );
    }
}
