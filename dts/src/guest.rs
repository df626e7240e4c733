//! Edits that turn a machine's DTB into one a guest at EL1 can use.

use crate::{DtsError, Node, Tree};

fn compatible_has(n: &Node, want: &[&str]) -> bool {
    n.prop("compatible").is_some_and(|p| {
        p.value
            .split(|&b| b == 0)
            .any(|c| want.iter().any(|w| c == w.as_bytes()))
    })
}

const GICV2: [&str; 4] = [
    "arm,cortex-a15-gic",
    "arm,cortex-a7-gic",
    "arm,gic-400",
    "arm,cortex-a9-gic",
];

impl Tree {
    /// Makes every spin-table CPU start through PSCI (`method` = `hvc` or `smc`) and adds a
    /// `/psci` node when there is none: a hypervisor offers PSCI to its guests, whatever the
    /// board's firmware does. Returns whether anything changed.
    pub fn use_psci(&mut self, method: &str) -> Result<bool, DtsError> {
        if method != "hvc" && method != "smc" {
            return Err(DtsError::Invalid(format!(
                "PSCI method `{method}` is not hvc or smc"
            )));
        }
        let mut changed = false;
        if let Ok(cpus) = self.node_mut("/cpus") {
            for c in &mut cpus.children {
                if c.prop_str("device_type") == Some("cpu")
                    && c.prop_str("enable-method") == Some("spin-table")
                {
                    c.set_str("enable-method", "psci");
                    c.remove("cpu-release-addr");
                    changed = true;
                }
            }
        }
        if changed && self.root.child("psci").is_none() {
            let n = self.root.child_or_insert("psci");
            n.set(
                "compatible",
                b"arm,psci-1.0\0arm,psci-0.2\0arm,psci\0".to_vec(),
            );
            n.set_str("method", method);
        }
        Ok(changed)
    }

    /// Removes what only a hypervisor may use from the GIC node: the GICv2 virtual interface
    /// regions (GICH, GICV) or GICv3's GICC/GICH/GICV, and the maintenance interrupt.
    pub fn strip_gic_virtualization(&mut self) -> Result<bool, DtsError> {
        let (ac, sc) = self.root.cells();
        let per = (ac + sc) as usize * 4;
        let mut changed = false;
        let mut result = Ok(());
        self.root.walk_mut(&mut |n| {
            let keep = if compatible_has(n, &GICV2) {
                2
            } else if compatible_has(n, &["arm,gic-v3"]) {
                1 + n.prop_u32("#redistributor-regions").unwrap_or(1) as usize
            } else {
                return;
            };
            if n.remove("interrupts") {
                changed = true;
            }
            if let Some(p) = n.props.iter_mut().find(|p| p.name == "reg") {
                if per == 0 || p.value.len() % per != 0 {
                    result = Err(DtsError::Invalid(format!("{}: odd reg size", n.name)));
                    return;
                }
                if p.value.len() > keep * per {
                    p.value.truncate(keep * per);
                    changed = true;
                }
            }
        });
        result.map(|()| changed)
    }
}
