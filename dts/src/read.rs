//! DTB → [`Tree`], through the `fdt` crate.
//!
//! `fdt` 0.1.5 trusts its input: it panics on truncated tokens and silently stops at a
//! non-UTF-8 node name or at a property after a child node. So [`validate`] walks the blob
//! first and refuses anything `fdt` would mishandle; after that, `fdt` only sees blobs it reads
//! correctly.

use crate::{DtsError, Node, Property, Tree};

const MAGIC: u32 = 0xd00d_feed;
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;

fn bad(msg: impl Into<String>) -> DtsError {
    DtsError::BadDtb(msg.into())
}

fn be32(b: &[u8], at: usize) -> Result<u32, DtsError> {
    let s = b
        .get(at..at + 4)
        .ok_or_else(|| bad(format!("truncated at {at:#x}")))?;
    Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be64(b: &[u8], at: usize) -> Result<u64, DtsError> {
    Ok((u64::from(be32(b, at)?) << 32) | u64::from(be32(b, at + 4)?))
}

struct Header {
    off_struct: usize,
    off_strings: usize,
    off_rsv: usize,
    boot_cpuid: u32,
    size_strings: usize,
    size_struct: usize,
}

fn header(dtb: &[u8]) -> Result<Header, DtsError> {
    if dtb.len() < 40 {
        return Err(bad("shorter than its header"));
    }
    if be32(dtb, 0)? != MAGIC {
        return Err(bad("bad magic (not d00dfeed)"));
    }
    let total = be32(dtb, 4)? as usize;
    if total > dtb.len() || total < 40 {
        return Err(bad(format!(
            "totalsize {total:#x} does not match the file ({:#x} bytes)",
            dtb.len()
        )));
    }
    let version = be32(dtb, 20)?;
    let last_comp = be32(dtb, 24)?;
    if version < 17 || last_comp > 17 {
        return Err(bad(format!(
            "version {version} (last compatible {last_comp}); need 17"
        )));
    }
    let h = Header {
        off_struct: be32(dtb, 8)? as usize,
        off_strings: be32(dtb, 12)? as usize,
        off_rsv: be32(dtb, 16)? as usize,
        boot_cpuid: be32(dtb, 28)?,
        size_strings: be32(dtb, 32)? as usize,
        size_struct: be32(dtb, 36)? as usize,
    };
    for (what, off, size) in [
        ("structure block", h.off_struct, h.size_struct),
        ("strings block", h.off_strings, h.size_strings),
    ] {
        if !matches!(off.checked_add(size), Some(e) if e <= total) {
            return Err(bad(format!("{what} runs past totalsize")));
        }
    }
    if h.off_struct & 3 != 0 || h.off_rsv & 7 != 0 || h.off_rsv >= total {
        return Err(bad("misaligned or out-of-range block offsets"));
    }
    Ok(h)
}

fn mem_reserve(dtb: &[u8], h: &Header) -> Result<Vec<(u64, u64)>, DtsError> {
    let total = be32(dtb, 4)? as usize;
    let mut out = Vec::new();
    let mut at = h.off_rsv;
    loop {
        if at + 16 > total {
            return Err(bad("memory reservation map is not terminated"));
        }
        let (a, s) = (be64(dtb, at)?, be64(dtb, at + 8)?);
        if a == 0 && s == 0 {
            return Ok(out);
        }
        out.push((a, s));
        at += 16;
    }
}

fn cstr(b: &[u8], at: usize, what: &str) -> Result<usize, DtsError> {
    let rest = b
        .get(at..)
        .ok_or_else(|| bad(format!("{what} out of range")))?;
    let len = rest
        .iter()
        .position(|&c| c == 0)
        .ok_or_else(|| bad(format!("{what} is not NUL-terminated")))?;
    std::str::from_utf8(&rest[..len]).map_err(|_| bad(format!("{what} is not UTF-8")))?;
    Ok(len)
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Walks the structure block and checks every token, name and length.
fn validate(dtb: &[u8], h: &Header) -> Result<(), DtsError> {
    let s = &dtb[h.off_struct..h.off_struct + h.size_struct];
    let strings = &dtb[h.off_strings..h.off_strings + h.size_strings];
    let mut at = 0;
    let mut depth = 0usize;
    // Per open node: whether a child node has begun (properties must come first).
    let mut seen_child: Vec<bool> = Vec::new();
    let mut root_done = false;
    loop {
        let tok = be32(s, at)?;
        at += 4;
        match tok {
            BEGIN_NODE => {
                if root_done {
                    return Err(bad("a second root node"));
                }
                let len = cstr(s, at, "node name")?;
                if depth == 0 && len != 0 {
                    return Err(bad("the root node has a name"));
                }
                if let Some(c) = seen_child.last_mut() {
                    *c = true;
                }
                at += align4(len + 1);
                depth += 1;
                seen_child.push(false);
            }
            END_NODE => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| bad("END_NODE without BEGIN_NODE"))?;
                seen_child.pop();
                if depth == 0 {
                    root_done = true;
                }
            }
            PROP => {
                if depth == 0 {
                    return Err(bad("property outside any node"));
                }
                if seen_child.last() == Some(&true) {
                    return Err(bad("property after a child node"));
                }
                let len = be32(s, at)? as usize;
                let nameoff = be32(s, at + 4)? as usize;
                cstr(strings, nameoff, "property name")?;
                at += 8;
                if !matches!(at.checked_add(len), Some(e) if e <= s.len()) {
                    return Err(bad("property value runs past the structure block"));
                }
                at += align4(len);
            }
            NOP => {}
            END => {
                if depth != 0 || !root_done {
                    return Err(bad("END inside a node"));
                }
                return Ok(());
            }
            t => return Err(bad(format!("unknown token {t:#x} at {at:#x}"))),
        }
    }
}

fn convert(n: fdt::node::FdtNode<'_, '_>, name: &str) -> Node {
    Node {
        name: name.to_string(),
        props: n
            .properties()
            .map(|p| Property {
                name: p.name.to_string(),
                value: p.value.to_vec(),
            })
            .collect(),
        children: n.children().map(|c| convert(c, c.name)).collect(),
    }
}

impl Tree {
    /// Reads a DTB (version 17). Duplicate properties or sibling names are refused.
    pub fn from_dtb(dtb: &[u8]) -> Result<Tree, DtsError> {
        let h = header(dtb)?;
        let mem_reserve = mem_reserve(dtb, &h)?;
        validate(dtb, &h)?;
        let f = fdt::Fdt::new(dtb).map_err(|e| bad(format!("{e:?}")))?;
        let root = f.find_node("/").ok_or_else(|| bad("no root node"))?;
        let tree = Tree {
            root: convert(root, ""),
            mem_reserve,
            boot_cpuid_phys: h.boot_cpuid,
        };
        tree.check()?;
        Ok(tree)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let t = {
            let mut t = Tree::default();
            t.root.set_str("model", "x");
            t.root.child_or_insert("a").set_u32("b", 1);
            t.mem_reserve.push((0x1000, 0x1000));
            t
        };
        let good = t.to_dtb().unwrap();
        assert_eq!(Tree::from_dtb(&good).unwrap(), t);
        assert!(Tree::from_dtb(&[]).is_err());
        assert!(Tree::from_dtb(&good[..good.len() - 1]).is_err());
        // Flip every byte in turn, and truncate the header's sizes: never a panic.
        for i in 0..good.len() {
            for x in [0xff, 0x01, 0x80] {
                let mut b = good.clone();
                b[i] ^= x;
                let _ = Tree::from_dtb(&b);
            }
        }
    }
}
