//! Device-tree editing: read with fdt, change, write with vm-fdt.
