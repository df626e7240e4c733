//! The guest's early console (`--earlyprintk`): what its kernel prints through `earlycon` on
//! the hypervisor's log-only PL011 (`minos_abi::guest::EARLY_UART_BASE`) before its own
//! console exists. The hypervisor keeps the last 16 KiB of it; mvm reads it after a cursor
//! with `VM_CONSOLE_READ` and writes it to the first virtio console's pty.

use std::io::Write;

use crate::dev::DevError;
use crate::driver::Driver;
use crate::pty;

/// Most bytes one read asks for (the hypervisor's limit per call).
const CHUNK: usize = 4096;
/// Reads per drain at most, so a guest printing without pause cannot hold mvm here.
const MAX_READS: usize = 8;

/// The kernel parameter that sends a guest's early output to the hypervisor's PL011.
pub fn earlycon_param() -> String {
    format!(
        "earlycon=pl011,mmio32,{:#x}",
        minos_abi::guest::EARLY_UART_BASE
    )
}

/// The guest's command line with [`earlycon_param`] last. Another `earlycon` in it would
/// name a UART the VM does not have (the kernel takes the first one it finds): it is dropped.
pub fn with_earlycon(bootargs: &str) -> String {
    let mut words: Vec<&str> = bootargs
        .split_whitespace()
        .filter(|w| *w != "earlycon" && !w.starts_with("earlycon="))
        .collect();
    let ours = earlycon_param();
    words.push(&ours);
    words.join(" ")
}

#[derive(Debug, thiserror::Error)]
pub enum EarlyError {
    #[error(transparent)]
    Dev(#[from] DevError),
    #[error("writing to the pty: {0}")]
    Write(std::io::Error),
}

pub struct EarlyConsole {
    vmid: u32,
    /// Bytes of the guest's early output already handled (read or reported lost).
    cursor: u64,
}

impl EarlyConsole {
    pub fn new(vmid: u32) -> EarlyConsole {
        EarlyConsole { vmid, cursor: 0 }
    }

    /// Copies what the guest wrote since the last call to `out`, saying how much the
    /// hypervisor's ring overwrote before mvm could read it. Returns the bytes copied.
    pub fn drain(&mut self, dev: &dyn Driver, out: &mut dyn Write) -> Result<u64, EarlyError> {
        let mut buf = [0u8; CHUNK];
        let mut total = 0;
        for _ in 0..MAX_READS {
            let r = dev.console_read(self.vmid, self.cursor, &mut buf)?;
            if r.lost > 0 {
                let note = format!("\r\n[mvm: {} bytes of early output lost]\r\n", r.lost);
                pty::write_or_drop(out, note.as_bytes()).map_err(EarlyError::Write)?;
            }
            let n = r.count as usize;
            pty::write_or_drop(out, &buf[..n]).map_err(EarlyError::Write)?;
            self.cursor = r.cursor;
            total += n as u64;
            if n == 0 {
                break;
            }
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::fake::Fake;

    #[test]
    fn the_parameter_names_the_hypervisors_uart() {
        assert_eq!(earlycon_param(), "earlycon=pl011,mmio32,0x40101000");
    }

    #[test]
    fn the_command_line_gets_our_earlycon_only() {
        assert_eq!(
            with_earlycon("console=hvc0 loglevel=8"),
            "console=hvc0 loglevel=8 earlycon=pl011,mmio32,0x40101000"
        );
        assert_eq!(
            with_earlycon("earlycon=pl011,0x9000000 console=hvc0  earlycon"),
            "console=hvc0 earlycon=pl011,mmio32,0x40101000"
        );
        assert_eq!(with_earlycon(""), "earlycon=pl011,mmio32,0x40101000");
        assert_eq!(
            with_earlycon("earlycon_foo=1"),
            "earlycon_foo=1 earlycon=pl011,mmio32,0x40101000",
            "only the earlycon parameter itself"
        );
    }

    #[test]
    fn drains_everything_new_in_order_across_calls() {
        let fake = Fake {
            early_chunk: 5,
            ..Fake::default()
        };
        let mut e = EarlyConsole::new(1);
        let mut out = Vec::new();
        assert_eq!(e.drain(&fake, &mut out).unwrap(), 0, "nothing yet");
        assert_eq!(*fake.calls.borrow(), ["console_read 0"]);
        fake.early
            .borrow_mut()
            .extend_from_slice(b"Booting Linux on physical CPU 0x0\r\n");
        // 5 bytes per read: 8 reads take 40 bytes, more than there is.
        assert_eq!(e.drain(&fake, &mut out).unwrap(), 35);
        assert_eq!(out, b"Booting Linux on physical CPU 0x0\r\n");
        fake.early
            .borrow_mut()
            .extend_from_slice(b"Linux version\r\n");
        assert_eq!(e.drain(&fake, &mut out).unwrap(), 15);
        assert!(out.ends_with(b"0x0\r\nLinux version\r\n"), "{out:?}");
    }

    #[test]
    fn a_busy_guest_does_not_hold_mvm() {
        let fake = Fake {
            early_chunk: 1,
            ..Fake::default()
        };
        fake.early.borrow_mut().extend_from_slice(&[b'x'; 100]);
        let mut e = EarlyConsole::new(1);
        let mut out = Vec::new();
        assert_eq!(e.drain(&fake, &mut out).unwrap(), MAX_READS as u64);
        assert_eq!(e.drain(&fake, &mut out).unwrap(), MAX_READS as u64);
        assert_eq!(
            out.len(),
            2 * MAX_READS,
            "the rest waits for the next drain"
        );
    }

    #[test]
    fn overwritten_output_is_reported_once() {
        let fake = Fake {
            early_kept: 10,
            ..Fake::default()
        };
        fake.early
            .borrow_mut()
            .extend_from_slice(b"0123456789abcdefghij");
        let mut e = EarlyConsole::new(1);
        let mut out = Vec::new();
        e.drain(&fake, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "\r\n[mvm: 10 bytes of early output lost]\r\nabcdefghij"
        );
        out.clear();
        fake.early.borrow_mut().extend_from_slice(b"k");
        e.drain(&fake, &mut out).unwrap();
        assert_eq!(out, b"k");
    }

    #[test]
    fn a_driver_error_is_returned() {
        let fake = Fake::default();
        let mut e = EarlyConsole { vmid: 1, cursor: 5 };
        let err = e.drain(&fake, &mut Vec::new()).unwrap_err().to_string();
        assert!(err.contains("fake console_read"), "{err}");
    }
}
