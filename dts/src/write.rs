//! [`Tree`] → DTB, through `vm-fdt`.

use vm_fdt::{FdtReserveEntry, FdtWriter};

use crate::{DtsError, Node, Tree};

fn werr(e: vm_fdt::Error) -> DtsError {
    DtsError::Write(e.to_string())
}

fn emit(w: &mut FdtWriter, n: &Node) -> Result<(), DtsError> {
    let h = w
        .begin_node(&n.name)
        .map_err(|e| DtsError::Write(format!("node `{}`: {e}", n.name)))?;
    for p in &n.props {
        w.property(&p.name, &p.value)
            .map_err(|e| DtsError::Write(format!("property `{}` of `{}`: {e}", p.name, n.name)))?;
    }
    for c in &n.children {
        emit(w, c)?;
    }
    w.end_node(h).map_err(werr)
}

impl Tree {
    /// Writes the tree as a DTB (version 17). Refuses duplicate properties or sibling names,
    /// which `vm-fdt` would write as they are.
    pub fn to_dtb(&self) -> Result<Vec<u8>, DtsError> {
        self.check()?;
        let rsv = self
            .mem_reserve
            .iter()
            .map(|&(a, s)| FdtReserveEntry::new(a, s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(werr)?;
        let mut w = FdtWriter::new_with_mem_reserv(&rsv).map_err(werr)?;
        w.set_boot_cpuid_phys(self.boot_cpuid_phys);
        emit(&mut w, &self.root)?;
        w.finish().map_err(werr)
    }
}
