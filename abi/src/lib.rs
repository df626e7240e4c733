//! The hypercall ABI between the hypervisor, the VM0 driver and mvm.
#![no_std]
