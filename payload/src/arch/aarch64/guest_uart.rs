//! The VMs' consoles: a PL011 model at the board UART's address in each VM's IPA space, its
//! output kept in the VM's log ring and shown on the hypervisor console (`[vmN] ` lines for
//! guests), its input taken from the physical UART through the Ctrl-A multiplexer
//! ([`crate::vuart::mux`]).
//!
//! With static guests the hypervisor owns the physical UART and VM0 gets a model too (its
//! output unprefixed, written at once); without them VM0 drives the UART directly and nothing
//! here runs for it.

extern crate alloc;

use alloc::boxed::Box;
use core::sync::atomic::{AtomicBool, AtomicU16, Ordering};

use crate::board::Region;
use crate::spin::SpinLock;
use crate::vgic::VcpuMask;
use crate::vuart::mux::{Input, InputMux, OutputTagger, HELP};
use crate::vuart::pl011::{Fault, Output, Pl011};
use crate::vuart::ring::LogRing;

use super::boot::{Hyp, Vm};
use super::console::Pl011 as Console;
use super::pcpu;

/// Bytes of output each VM keeps.
pub const LOG_SIZE: usize = 16 * 1024;

/// Serialises guest output on the console so lines of different VMs never mix.
static TAGGER: SpinLock<OutputTagger> = SpinLock::new(OutputTagger::new());
static INPUT: SpinLock<InputMux> = SpinLock::new(InputMux::new());
/// The VM that has the console input (mirrors [`INPUT`] for the output path).
static FOCUS: AtomicU16 = AtomicU16::new(0);
/// Whether the hypervisor owns the physical UART (set once at boot).
static OWNED: AtomicBool = AtomicBool::new(false);

/// Guest output is shown a line at a time (unless the VM has the input focus, whose typed
/// characters must echo at once): a line written in one go is far less likely to be cut by
/// another VM's output than one trap per byte.
const LINE: usize = 160;

pub struct GuestUart {
    pub vmid: u16,
    pub region: Region,
    pub dev: Pl011,
    pub log: Box<LogRing<LOG_SIZE>>,
    /// The INTID its interrupt line drives in the VM's vGIC (the board UART's).
    irq: Option<u32>,
    /// Output only goes to the log: an mvm guest's early console, which VM0 reads back
    /// (VM0 owns the physical UART then) and which takes no input.
    log_only: bool,
    level: bool,
    line: [u8; LINE],
    line_len: usize,
    /// Typed bytes its 16-byte receive FIFO has no room for yet (a pasted line): they move
    /// in as the guest reads. When this is full too, bytes are dropped; the console itself is
    /// always drained, so Ctrl-A works whatever a VM does with its UART.
    typed: [u8; TYPED],
    typed_head: usize,
    typed_len: usize,
}

const TYPED: usize = 1024;

/// An empty log built in place on the heap: an mvm guest's UART is made in the `VM_CREATE`
/// trap, and each move of a 16 KiB ring through its 64 KiB stack would take a quarter of it.
fn new_log() -> Box<LogRing<LOG_SIZE>> {
    let b = Box::<LogRing<LOG_SIZE>>::new_zeroed();
    // SAFETY: all-zero bytes are an empty ring (a zeroed buffer, nothing written).
    unsafe { b.assume_init() }
}

impl GuestUart {
    pub fn new(vmid: u16, region: Region, irq: Option<u32>) -> Self {
        Self {
            vmid,
            region,
            dev: Pl011::new(),
            log: new_log(),
            irq,
            log_only: false,
            level: false,
            line: [0; LINE],
            line_len: 0,
            typed: [0; TYPED],
            typed_head: 0,
            typed_len: 0,
        }
    }

    /// A UART whose output is only kept in its log ring (no interrupt, no input, nothing on
    /// the console).
    pub fn log_only(vmid: u16, region: Region) -> Self {
        Self {
            log_only: true,
            ..Self::new(vmid, region, None)
        }
    }

    /// A byte typed for this VM.
    fn input(&mut self, byte: u8) {
        if self.typed_len < TYPED {
            self.typed[(self.typed_head + self.typed_len) % TYPED] = byte;
            self.typed_len += 1;
        }
        self.refill();
    }

    /// Moves typed bytes into the receive FIFO while it has room.
    fn refill(&mut self) {
        while self.typed_len > 0 && self.dev.can_receive() {
            self.dev.receive(self.typed[self.typed_head]);
            self.typed_head = (self.typed_head + 1) % TYPED;
            self.typed_len -= 1;
        }
    }

    fn flush_line(&mut self) {
        crate::log::hold(|| {
            let mut t = TAGGER.lock();
            for &b in &self.line[..self.line_len] {
                t.emit(self.vmid, b, Console::write_bytes);
            }
        });
        self.line_len = 0;
    }

    /// A trapped guest access at `ipa` (inside `region`): the value a load returns.
    pub fn access(&mut self, ipa: u64, write: bool, size: u8, val: u64) -> Result<u64, Fault> {
        let off = ipa - self.region.base;
        if !write {
            let v = self.dev.read(off, size).map(u64::from);
            self.refill();
            return v;
        }
        if let Output::Tx(b) = self.dev.write(off, size, val as u32)? {
            self.log.push(b);
            if self.log_only {
                return Ok(0);
            }
            self.line[self.line_len] = b;
            self.line_len += 1;
            let at_once = self.vmid == 0 || FOCUS.load(Ordering::Relaxed) == self.vmid;
            if at_once || b == b'\n' || self.line_len == LINE {
                self.flush_line();
            }
        }
        Ok(0)
    }

    /// Drives the model's interrupt line into `vm`'s vGIC when it changed; the vCPUs to kick.
    pub fn sync_irq(&mut self, vm: &Vm) -> VcpuMask {
        let level = self.dev.irq_level();
        match (self.irq, &vm.vgic) {
            (Some(irq), Some(vgic)) if level != self.level => {
                self.level = level;
                vgic.lock().set_level(irq, None, level)
            }
            _ => VcpuMask::EMPTY,
        }
    }
}

/// Takes the physical UART's input for the VMs' models (at boot, with static guests).
pub fn own_console() {
    OWNED.store(true, Ordering::Release);
    Console::enable_rx_irq();
}

/// Whether physical interrupt `intid` is the console's, taken by [`console_input`].
pub fn is_console_irq(hyp: &Hyp, intid: u32) -> bool {
    OWNED.load(Ordering::Relaxed) && hyp.board.uart_irq == Some(intid)
}

/// Whether typed input can reach VM `vmid`'s UART (a log-only one takes none: an mvm guest's
/// input comes through its virtio console).
fn has_console(vmid: u16) -> bool {
    pcpu::vm(usize::from(vmid))
        .and_then(|vm| vm.vuart.as_ref())
        .is_some_and(|u| !u.lock().log_only)
}

/// Something for the person at the console (not a VM's output): on a line of its own.
fn say(parts: &[&[u8]]) {
    crate::log::hold(|| {
        let mut t = TAGGER.lock();
        t.interrupt(Console::write_bytes);
        for p in parts {
            Console::write_bytes(p);
        }
        Console::write_bytes(b"\r\n");
    });
}

/// The console's receive interrupt: every byte typed goes through the multiplexer to the VM
/// with the focus.
pub fn console_input(hyp: &Hyp, here: Option<(&Vm, usize)>) {
    // Acknowledged before the drain, not after: a byte that lands between the last read and
    // a later acknowledgement would sit in the FIFO with its interrupt cleared, and input
    // would stall until the next key (a pasted line stopped mid-way like that).
    Console::ack_rx_irq();
    while let Some(b) = Console::read_byte() {
        let input = INPUT.lock().feed(b, has_console);
        match input {
            Input::Deliver { vmid, byte } => deliver(hyp, here, vmid, byte),
            Input::Focus(v) => {
                FOCUS.store(v, Ordering::Relaxed);
                let mut d = [0u8; 5];
                say(&[b"[minos] console input to vm", digits(v, &mut d)]);
            }
            Input::NoSuchVm(v) => {
                let mut d = [0u8; 5];
                say(&[b"[minos] no vm", digits(v, &mut d), b" with a console"]);
            }
            Input::Replay(v) => replay(v),
            Input::Help => say(&[HELP.as_bytes()]),
            Input::Nothing => {}
        }
    }
}

fn deliver(hyp: &Hyp, here: Option<(&Vm, usize)>, vmid: u16, byte: u8) {
    let Some(vm) = pcpu::vm(usize::from(vmid)) else {
        return;
    };
    let Some(uart) = &vm.vuart else { return };
    let kicks = {
        let mut u = uart.lock();
        u.input(byte);
        u.sync_irq(vm)
    };
    let me = here.and_then(|(h, v)| (h.config.vmid == vm.config.vmid).then_some(v));
    pcpu::notify(hyp, vm, kicks, me);
}

/// Ctrl-A l: the focused VM's log ring, as it was written.
fn replay(vmid: u16) {
    let Some(vm) = pcpu::vm(usize::from(vmid)) else {
        return;
    };
    let Some(uart) = &vm.vuart else { return };
    let u = uart.lock();
    let mut d = [0u8; 5];
    say(&[b"[minos] log of vm", digits(vmid, &mut d), b":"]);
    let (a, b) = u.log.as_slices();
    crate::log::hold(|| {
        let _t = TAGGER.lock();
        Console::write_bytes(a);
        Console::write_bytes(b);
        Console::write_bytes(b"\r\n[minos] end of log\r\n");
    });
}

fn digits(mut v: u16, buf: &mut [u8; 5]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[i..];
        }
    }
}
