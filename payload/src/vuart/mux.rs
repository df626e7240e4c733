//! Sharing the one hypervisor console between VMs.
//!
//! Input goes to the VM that has the focus (VM0 at boot). The escape key is Ctrl-A:
//!
//! | keys | effect |
//! | --- | --- |
//! | Ctrl-A `0`..`9` | give the focus to that VM (if it exists) |
//! | Ctrl-A Ctrl-A | send one Ctrl-A to the focused VM |
//! | Ctrl-A `l` | replay the focused VM's log buffer |
//! | Ctrl-A `?` | print this help |
//! | Ctrl-A anything else | dropped |
//!
//! Output: each guest VM's bytes reach the console as whole lines prefixed `[vmN] ` (VM0's
//! without a prefix); a VM that starts writing while another's line is unfinished first breaks
//! that line, so lines from different VMs never mix.

pub const ESCAPE: u8 = 0x01;

pub const HELP: &str = "minos console: Ctrl-A <digit> focus VM <digit>, Ctrl-A Ctrl-A sends \
Ctrl-A, Ctrl-A l replays the focused VM's log, Ctrl-A ? this help";

/// What one input byte means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Give `byte` to `vmid`'s UART.
    Deliver {
        vmid: u16,
        byte: u8,
    },
    /// The focus moved to `vmid`.
    Focus(u16),
    /// A digit named a VM that does not exist; the focus did not move.
    NoSuchVm(u16),
    Replay(u16),
    Help,
    /// Consumed (the escape key itself, or an unknown command).
    Nothing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputMux {
    focus: u16,
    escaped: bool,
}

impl Default for InputMux {
    fn default() -> Self {
        Self::new()
    }
}

impl InputMux {
    pub const fn new() -> Self {
        Self {
            focus: 0,
            escaped: false,
        }
    }

    pub fn focus(&self) -> u16 {
        self.focus
    }

    /// Feeds one console byte; `exists` says whether a VM id is running.
    pub fn feed(&mut self, byte: u8, exists: impl Fn(u16) -> bool) -> Input {
        if !self.escaped {
            if byte == ESCAPE {
                self.escaped = true;
                return Input::Nothing;
            }
            return Input::Deliver {
                vmid: self.focus,
                byte,
            };
        }
        self.escaped = false;
        match byte {
            ESCAPE => Input::Deliver {
                vmid: self.focus,
                byte,
            },
            b'0'..=b'9' => {
                let vmid = u16::from(byte - b'0');
                if exists(vmid) {
                    self.focus = vmid;
                    Input::Focus(vmid)
                } else {
                    Input::NoSuchVm(vmid)
                }
            }
            b'l' => Input::Replay(self.focus),
            b'?' | b'h' => Input::Help,
            _ => Input::Nothing,
        }
    }
}

/// Tags guest output lines with their VM on the shared console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutputTagger {
    /// The VM whose line is unfinished on the console.
    open_line: Option<u16>,
}

impl OutputTagger {
    pub const fn new() -> Self {
        Self { open_line: None }
    }

    /// Writes `byte` from `vmid` through `out`, with the line breaks and prefixes it needs.
    pub fn emit(&mut self, vmid: u16, byte: u8, mut out: impl FnMut(&[u8])) {
        match self.open_line {
            Some(v) if v == vmid => {}
            other => {
                if other.is_some() {
                    out(b"\n");
                }
                // VM0's console looks as it would without the hypervisor.
                if vmid == 0 {
                    out(&[byte]);
                    self.open_line = if byte == b'\n' { None } else { Some(vmid) };
                    return;
                }
                let mut tag = [0u8; 10];
                tag[..3].copy_from_slice(b"[vm");
                let digits = fmt_u16(vmid, &mut tag[3..8]);
                tag[3 + digits..5 + digits].copy_from_slice(b"] ");
                out(&tag[..5 + digits]);
            }
        }
        out(&[byte]);
        self.open_line = if byte == b'\n' { None } else { Some(vmid) };
    }

    /// Something else (a hypervisor log line) is about to use the console: end any open line.
    pub fn interrupt(&mut self, mut out: impl FnMut(&[u8])) {
        if self.open_line.take().is_some() {
            out(b"\n");
        }
    }
}

/// Writes `v` in decimal at the start of `buf` (5 bytes), returning the digit count.
fn fmt_u16(mut v: u16, buf: &mut [u8]) -> usize {
    let mut tmp = [0u8; 5];
    let mut n = 0;
    loop {
        tmp[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for (o, &d) in buf.iter_mut().zip(tmp[..n].iter().rev()) {
        *o = d;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vms_0_1_2(v: u16) -> bool {
        v <= 2
    }

    #[test]
    fn plain_bytes_go_to_the_focused_vm() {
        let mut m = InputMux::new();
        assert_eq!(
            m.feed(b'x', vms_0_1_2),
            Input::Deliver {
                vmid: 0,
                byte: b'x'
            }
        );
    }

    #[test]
    fn escape_digit_switches_focus() {
        let mut m = InputMux::new();
        assert_eq!(m.feed(ESCAPE, vms_0_1_2), Input::Nothing);
        assert_eq!(m.feed(b'2', vms_0_1_2), Input::Focus(2));
        assert_eq!(
            m.feed(b'2', vms_0_1_2),
            Input::Deliver {
                vmid: 2,
                byte: b'2'
            },
            "a digit without escape is input"
        );
        assert_eq!(m.focus(), 2);
    }

    #[test]
    fn unknown_vm_keeps_the_focus() {
        let mut m = InputMux::new();
        m.feed(ESCAPE, vms_0_1_2);
        assert_eq!(m.feed(b'7', vms_0_1_2), Input::NoSuchVm(7));
        assert_eq!(m.focus(), 0);
        assert_eq!(
            m.feed(b'a', vms_0_1_2),
            Input::Deliver {
                vmid: 0,
                byte: b'a'
            }
        );
    }

    #[test]
    fn double_escape_sends_a_literal_escape() {
        let mut m = InputMux::new();
        m.feed(ESCAPE, vms_0_1_2);
        m.feed(b'1', vms_0_1_2);
        assert_eq!(m.feed(ESCAPE, vms_0_1_2), Input::Nothing);
        assert_eq!(
            m.feed(ESCAPE, vms_0_1_2),
            Input::Deliver {
                vmid: 1,
                byte: ESCAPE
            }
        );
        // And the state machine is back to normal.
        assert_eq!(
            m.feed(b'q', vms_0_1_2),
            Input::Deliver {
                vmid: 1,
                byte: b'q'
            }
        );
    }

    #[test]
    fn other_commands() {
        let mut m = InputMux::new();
        m.feed(ESCAPE, vms_0_1_2);
        assert_eq!(m.feed(b'?', vms_0_1_2), Input::Help);
        m.feed(ESCAPE, vms_0_1_2);
        assert_eq!(m.feed(b'l', vms_0_1_2), Input::Replay(0));
        m.feed(ESCAPE, vms_0_1_2);
        assert_eq!(m.feed(b'z', vms_0_1_2), Input::Nothing, "unknown: dropped");
        assert_eq!(
            m.feed(b'z', vms_0_1_2),
            Input::Deliver {
                vmid: 0,
                byte: b'z'
            }
        );
    }

    fn render(events: &[(u16, &[u8])]) -> String {
        let mut t = OutputTagger::new();
        let mut out = Vec::new();
        for (vm, bytes) in events {
            for &b in *bytes {
                t.emit(*vm, b, |s| out.extend_from_slice(s));
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn lines_are_tagged_and_never_mixed() {
        assert_eq!(render(&[(1, b"ab\ncd\n")]), "[vm1] ab\n[vm1] cd\n");
        assert_eq!(
            render(&[(1, b"hel"), (12, b"x\n"), (1, b"lo\n")]),
            "[vm1] hel\n[vm12] x\n[vm1] lo\n"
        );
        assert_eq!(render(&[(65535, b"z")]), "[vm65535] z");
    }

    #[test]
    fn vm0_lines_carry_no_tag_but_are_kept_apart() {
        assert_eq!(
            render(&[(0, b"$ ls"), (2, b"boot\n"), (0, b"\nok\n")]),
            "$ ls\n[vm2] boot\n\nok\n"
        );
    }

    #[test]
    fn interrupt_closes_an_open_line() {
        let mut t = OutputTagger::new();
        let mut out = Vec::new();
        t.emit(3, b'a', |s| out.extend_from_slice(s));
        t.interrupt(|s| out.extend_from_slice(s));
        t.interrupt(|s| out.extend_from_slice(s));
        t.emit(3, b'b', |s| out.extend_from_slice(s));
        assert_eq!(out, b"[vm3] a\n[vm3] b");
    }
}
