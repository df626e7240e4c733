//! The `/vms` node the hypervisor reads its boot-time VMs from (the Minos format).

use crate::{DtsError, Node, Tree};

/// One VM for `/vms`, written as `vmN { device_type = "virtual_machine"; vmid; vm_name; type;
/// vcpus; entry; vcpu_affinity; memory; setup_data; [native_wfi;] [host_vm;] }` with
/// addresses in two cells (`/vms` has `#address-cells = #size-cells = <2>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSpec {
    pub vmid: u32,
    pub name: String,
    /// `linux` or another OS type the hypervisor knows.
    pub os_type: String,
    pub vcpus: u32,
    pub entry: u64,
    /// The physical CPU of each vCPU.
    pub affinity: Vec<u32>,
    /// RAM: (base, size).
    pub memory: (u64, u64),
    /// Where the VM's DTB is loaded.
    pub setup_data: u64,
    pub native_wfi: bool,
    /// VM0, the privileged VM that runs the VM manager.
    pub host: bool,
}

fn cells64(v: &[u64]) -> Vec<u32> {
    v.iter()
        .flat_map(|&x| [(x >> 32) as u32, x as u32])
        .collect()
}

impl Tree {
    /// Adds (or replaces) `/vms/vm<vmid>`.
    pub fn set_vm(&mut self, vm: &VmSpec) -> Result<(), DtsError> {
        if vm.vcpus == 0 || vm.affinity.len() != vm.vcpus as usize {
            return Err(DtsError::Invalid(format!(
                "vm{}: {} vCPUs but {} affinity entries",
                vm.vmid,
                vm.vcpus,
                vm.affinity.len()
            )));
        }
        let vms = self.node_or_insert("/vms")?;
        vms.set_u32("#address-cells", 2);
        vms.set_u32("#size-cells", 2);
        let name = format!("vm{}", vm.vmid);
        vms.children.retain(|c| c.name != name);
        let mut n = Node::new(&name);
        n.set_str("device_type", "virtual_machine");
        n.set_u32("vmid", vm.vmid);
        n.set_str("vm_name", &vm.name);
        n.set_str("type", &vm.os_type);
        n.set_u32("vcpus", vm.vcpus);
        n.set_cells("entry", &cells64(&[vm.entry]));
        n.set_cells("vcpu_affinity", &vm.affinity);
        n.set_cells("memory", &cells64(&[vm.memory.0, vm.memory.1]));
        n.set_cells("setup_data", &cells64(&[vm.setup_data]));
        if vm.native_wfi {
            n.set_empty("native_wfi");
        }
        if vm.host {
            n.set_empty("host_vm");
        }
        vms.children.push(n);
        Ok(())
    }
}
