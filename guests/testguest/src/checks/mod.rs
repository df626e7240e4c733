//! The misbehaviour checks; each prints one `TESTGUEST: <name>: PASS|FAIL <detail>` line.

pub mod abort;
pub mod fetch;
pub mod mmio_pair;
pub mod passthrough;
pub mod psci;
pub mod smccc_unknown;
pub mod sysreg;
pub mod timer;
