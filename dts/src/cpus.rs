//! Trimming CPUs: drop `cpu` nodes above a count and everything that points at them.

use crate::{DtsError, Node, Tree};

fn is_cpu(n: &Node) -> bool {
    n.prop_str("device_type") == Some("cpu")
}

/// Properties that are plain lists of CPU phandles (PMUs, GICv3 PPI partitions, ...).
const CPU_LISTS: [&str; 3] = ["interrupt-affinity", "cpus", "affinity"];

/// Whether a node's `compatible` names a GICv1/v2 (whose PPI specifiers carry a CPU mask).
fn is_gicv2(n: &Node) -> bool {
    let Some(p) = n.prop("compatible") else {
        return false;
    };
    p.value.split(|&b| b == 0).any(|c| {
        matches!(
            c,
            b"arm,cortex-a15-gic"
                | b"arm,cortex-a9-gic"
                | b"arm,cortex-a7-gic"
                | b"arm,gic-400"
                | b"arm,arm11mp-gic"
                | b"arm,pl390"
        )
    })
}

impl Tree {
    /// Keeps the first `count` CPU nodes under `/cpus` and removes the rest, with the
    /// `cpu-map` entries, `interrupt-affinity`/`cpus` list entries and `cooling-device`
    /// entries that name them; GICv2 PPI CPU masks shrink to the CPUs kept.
    pub fn trim_cpus(&mut self, count: usize) -> Result<(), DtsError> {
        if count == 0 {
            return Err(DtsError::Invalid("--cpus must be at least 1".into()));
        }
        let cpus = self.node_mut("/cpus")?;
        let total = cpus.children.iter().filter(|c| is_cpu(c)).count();
        if count > total {
            return Err(DtsError::Invalid(format!(
                "cannot keep {count} CPUs: the DTB has {total}"
            )));
        }
        let mut removed = Vec::new();
        let mut kept = 0;
        cpus.children.retain(|c| {
            if !is_cpu(c) {
                return true;
            }
            kept += 1;
            if kept <= count {
                return true;
            }
            removed.push(c.prop_u32("phandle"));
            false
        });
        let removed: Vec<u32> = removed.into_iter().flatten().collect();
        if count == total {
            return Ok(());
        }
        drop_references(&mut self.root, &removed);
        self.shrink_ppi_masks(count)?;
        Ok(())
    }

    /// GICv2 PPI specifiers `<1 N flags>` carry a CPU mask in flags[15:8].
    fn shrink_ppi_masks(&mut self, count: usize) -> Result<(), DtsError> {
        let mut gics = Vec::new();
        self.root.walk(&mut |n| {
            if is_gicv2(n) {
                if let Some(p) = n.prop_u32("phandle") {
                    gics.push(p);
                }
            }
        });
        if gics.is_empty() {
            return Ok(());
        }
        let keep: u32 = if count >= 8 {
            0xff00
        } else {
            ((1u32 << count) - 1) << 8
        };
        fn go(n: &mut Node, parent: Option<u32>, gics: &[u32], keep: u32) {
            let parent = n.prop_u32("interrupt-parent").or(parent);
            if parent.is_some_and(|p| gics.contains(&p)) {
                if let Some(mut cells) = n.prop_cells("interrupts") {
                    if cells.len() % 3 == 0 {
                        for spec in cells.chunks_exact_mut(3) {
                            if spec[0] == 1 && spec[2] & 0xff00 != 0 {
                                spec[2] = (spec[2] & !0xff00) | (spec[2] & keep);
                            }
                        }
                        n.set_cells("interrupts", &cells);
                    }
                }
            }
            for c in &mut n.children {
                go(c, parent, gics, keep);
            }
        }
        go(&mut self.root, None, &gics, keep);
        Ok(())
    }
}

/// Removes references to the `removed` phandles below `n`; returns whether `n` itself should go
/// (a `cpu-map` leaf or a cooling map left empty).
fn drop_references(n: &mut Node, removed: &[u32]) -> bool {
    if n.prop_u32("cpu").is_some_and(|p| removed.contains(&p)) {
        return true;
    }
    for name in CPU_LISTS {
        if let Some(cells) = n.prop_cells(name) {
            let left: Vec<u32> = cells.into_iter().filter(|p| !removed.contains(p)).collect();
            n.set_cells(name, &left);
        }
    }
    let mut emptied = false;
    if let Some(cells) = n.prop_cells("cooling-device") {
        // <&cpu min max> triples.
        if cells.len() % 3 == 0 {
            let left: Vec<u32> = cells
                .chunks_exact(3)
                .filter(|t| !removed.contains(&t[0]))
                .flatten()
                .copied()
                .collect();
            emptied = left.is_empty();
            n.set_cells("cooling-device", &left);
        }
    }
    let had_children = !n.children.is_empty();
    n.children.retain_mut(|c| !drop_references(c, removed));
    // A cpu-map cluster whose cores all went is removed too.
    let empty_cluster = had_children
        && n.children.is_empty()
        && (n.name.starts_with("cluster") || n.name.starts_with("socket"));
    emptied || empty_cluster
}
