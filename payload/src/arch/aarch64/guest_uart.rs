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

/// Guest output is shown a line at a time: VM0 writes the physical UART directly, and a line
/// written in one go is far less likely to be cut by VM0's output than one trap per byte.
const LINE: usize = 160;

pub struct GuestUart {
    pub vmid: u16,
    pub region: Region,
    pub dev: Pl011,
    pub log: LogRing<LOG_SIZE>,
    line: [u8; LINE],
    line_len: usize,
}

impl GuestUart {
    pub fn new(vmid: u16, region: Region) -> Self {
        Self {
            vmid,
            region,
            dev: Pl011::new(),
            log: LogRing::new(),
            line: [0; LINE],
            line_len: 0,
        }
    }

    fn flush_line(&mut self) {
        let mut t = TAGGER.lock();
        for &b in &self.line[..self.line_len] {
            t.emit(self.vmid, b, Console::write_bytes);
        }
        self.line_len = 0;
    }

    /// A trapped guest access at `ipa` (inside `region`): the value a load returns.
    pub fn access(&mut self, ipa: u64, write: bool, size: u8, val: u64) -> Result<u64, Fault> {
        let off = ipa - self.region.base;
        if !write {
            return self.dev.read(off, size).map(u64::from);
        }
        if let Output::Tx(b) = self.dev.write(off, size, val as u32)? {
            self.log.push(b);
            self.line[self.line_len] = b;
            self.line_len += 1;
            if b == b'\n' || self.line_len == LINE {
                self.flush_line();
            }
        }
        Ok(0)
    }
}
