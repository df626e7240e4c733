//! A static guest's console: the PL011 model at the board UART's address in the guest's
//! IPA space, its output kept in the VM's log ring and shown on the hypervisor console as
//! `[vmN] ` lines.

use crate::board::Region;
use crate::spin::SpinLock;
use crate::vuart::mux::OutputTagger;
use crate::vuart::pl011::{Fault, Output, Pl011};
use crate::vuart::ring::LogRing;

use super::console::Pl011 as Console;

/// Bytes of output each VM keeps.
pub const LOG_SIZE: usize = 16 * 1024;

/// Serialises guest output on the console so lines of different VMs never mix.
static TAGGER: SpinLock<OutputTagger> = SpinLock::new(OutputTagger::new());

pub struct GuestUart {
    pub vmid: u16,
    pub region: Region,
    pub dev: Pl011,
    pub log: LogRing<LOG_SIZE>,
}

impl GuestUart {
    pub fn new(vmid: u16, region: Region) -> Self {
        Self {
            vmid,
            region,
            dev: Pl011::new(),
            log: LogRing::new(),
        }
    }

    /// A trapped guest access at `ipa` (inside `region`): the value a load returns.
    pub fn access(&mut self, ipa: u64, write: bool, size: u8, val: u64) -> Result<u64, Fault> {
        let off = ipa - self.region.base;
        if !write {
            return self.dev.read(off, size).map(u64::from);
        }
        if let Output::Tx(b) = self.dev.write(off, size, val as u32)? {
            self.log.push(b);
            TAGGER.lock().emit(self.vmid, b, Console::write_bytes);
        }
        Ok(0)
    }
}
