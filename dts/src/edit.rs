//! The edits a guest or hypervisor DTB needs: memory, chosen, virtio-mmio devices.

use crate::{DtsError, Node, Tree};

/// Encodes `v` in `cells` 32-bit cells (1 or 2).
pub(crate) fn encode(v: u64, cells: u32, what: &str) -> Result<Vec<u32>, DtsError> {
    match cells {
        1 => u32::try_from(v)
            .map(|x| vec![x])
            .map_err(|_| DtsError::Invalid(format!("{what} {v:#x} does not fit in one cell"))),
        2 => Ok(vec![(v >> 32) as u32, v as u32]),
        n => Err(DtsError::Invalid(format!(
            "{what}: #cells = {n} is not supported"
        ))),
    }
}

/// `reg` cells for (address, size) pairs under a parent with the given cell counts.
pub(crate) fn reg_cells(ranges: &[(u64, u64)], (ac, sc): (u32, u32)) -> Result<Vec<u32>, DtsError> {
    let mut out = Vec::new();
    for &(a, s) in ranges {
        out.extend(encode(a, ac, "address")?);
        out.extend(encode(s, sc, "size")?);
    }
    Ok(out)
}

fn unit_name(base: &str, addr: u64) -> String {
    format!("{base}@{addr:x}")
}

fn is_memory(n: &Node) -> bool {
    n.prop_str("device_type") == Some("memory")
        || n.name == "memory"
        || n.name.starts_with("memory@")
}

impl Tree {
    /// Makes the RAM exactly `ranges`: the first memory node gets them all (and the unit
    /// address of the first), other memory nodes are removed.
    pub fn set_memory(&mut self, ranges: &[(u64, u64)]) -> Result<(), DtsError> {
        let first = *ranges
            .first()
            .ok_or_else(|| DtsError::Invalid("no memory ranges".into()))?;
        let cells = reg_cells(ranges, self.root.cells())?;
        let mut seen = false;
        self.root.children.retain(|c| {
            if !is_memory(c) {
                return true;
            }
            let keep = !seen;
            seen = true;
            keep
        });
        let name = unit_name("memory", first.0);
        if self
            .root
            .children
            .iter()
            .any(|c| c.name == name && !is_memory(c))
        {
            return Err(DtsError::DuplicateNode(format!("/{name}")));
        }
        let node = match self.root.children.iter_mut().find(|c| is_memory(c)) {
            Some(n) => n,
            None => self.root.child_or_insert(&name),
        };
        node.name = name;
        node.set_str("device_type", "memory");
        node.set_cells("reg", &cells);
        Ok(())
    }

    pub fn set_bootargs(&mut self, args: &str) -> Result<(), DtsError> {
        self.node_or_insert("/chosen")?.set_str("bootargs", args);
        Ok(())
    }

    pub fn set_stdout_path(&mut self, path: &str) -> Result<(), DtsError> {
        self.node_or_insert("/chosen")?.set_str("stdout-path", path);
        Ok(())
    }

    /// `linux,initrd-start` / `-end` (end exclusive), in the root's address cell width.
    pub fn set_initrd(&mut self, start: u64, end: u64) -> Result<(), DtsError> {
        if end <= start {
            return Err(DtsError::Invalid(format!(
                "initrd end {end:#x} is not after its start {start:#x}"
            )));
        }
        let ac = self.root.cells().0;
        let s = encode(start, ac, "initrd start")?;
        let e = encode(end, ac, "initrd end")?;
        let chosen = self.node_or_insert("/chosen")?;
        chosen.set_cells("linux,initrd-start", &s);
        chosen.set_cells("linux,initrd-end", &e);
        Ok(())
    }

    /// Adds a `virtio,mmio` device at the root like QEMU's: 0x200 bytes of registers and an
    /// edge-triggered SPI. `intid` is the GIC interrupt ID (32..=1019).
    pub fn add_virtio_mmio(&mut self, addr: u64, intid: u32) -> Result<(), DtsError> {
        if !(32..=1019).contains(&intid) {
            return Err(DtsError::Invalid(format!(
                "virtio-mmio interrupt {intid} is not a GIC SPI (32..=1019)"
            )));
        }
        let gic = self.interrupt_parent_cells()?;
        if gic != 3 {
            return Err(DtsError::Invalid(format!(
                "virtio-mmio needs a GIC interrupt parent (3 interrupt cells, found {gic})"
            )));
        }
        let name = unit_name("virtio_mmio", addr);
        if self.root.children.iter().any(|c| c.name == name) {
            return Err(DtsError::DuplicateNode(format!("/{name}")));
        }
        let reg = reg_cells(&[(addr, 0x200)], self.root.cells())?;
        let mut n = Node::new(&name);
        n.set_empty("dma-coherent");
        // GIC_SPI, SPI number, IRQ_TYPE_EDGE_RISING
        n.set_cells("interrupts", &[0, intid - 32, 1]);
        n.set_cells("reg", &reg);
        n.set_str("compatible", "virtio,mmio");
        self.root.children.push(n);
        Ok(())
    }

    /// `#interrupt-cells` of the root's interrupt parent.
    fn interrupt_parent_cells(&self) -> Result<u32, DtsError> {
        let ph = self
            .root
            .prop_u32("interrupt-parent")
            .ok_or_else(|| DtsError::Invalid("the root has no interrupt-parent".into()))?;
        let mut cells = None;
        self.root.walk(&mut |n| {
            if n.prop_u32("phandle") == Some(ph) {
                cells = n.prop_u32("#interrupt-cells");
            }
        });
        cells.ok_or_else(|| DtsError::Invalid(format!("interrupt parent {ph:#x} not found")))
    }

    /// Lays every node and property of `other` over this tree: properties replace, nodes merge
    /// by name, new ones are added at the end (what dtc does with a second `/ { ... };`).
    pub fn merge(&mut self, other: &Tree) {
        fn go(dst: &mut Node, src: &Node) {
            for p in &src.props {
                dst.set(&p.name, p.value.clone());
            }
            for c in &src.children {
                go(dst.child_or_insert(&c.name), c);
            }
        }
        go(&mut self.root, &other.root);
        for r in &other.mem_reserve {
            if !self.mem_reserve.contains(r) {
                self.mem_reserve.push(*r);
            }
        }
    }
}
