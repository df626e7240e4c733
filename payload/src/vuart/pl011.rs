//! The guest side of a virtual ARM PL011 (r1p5): its registers, 16-byte RX FIFO and interrupt
//! line, as a data-abort handler sees them.
//!
//! Transmission is instantaneous: a DR write hands the byte to the caller (console, log ring)
//! and the TX FIFO is always empty, so `FR.TXFE` is set and the TX interrupt is raised on every
//! write, as QEMU's model does. The receive timeout interrupt is raised as soon as the FIFO
//! holds data below the trigger level, so no byte sits unannounced.

/// Register offsets.
pub mod reg {
    pub const DR: u64 = 0x000;
    pub const RSR: u64 = 0x004;
    pub const FR: u64 = 0x018;
    pub const ILPR: u64 = 0x020;
    pub const IBRD: u64 = 0x024;
    pub const FBRD: u64 = 0x028;
    pub const LCR_H: u64 = 0x02c;
    pub const CR: u64 = 0x030;
    pub const IFLS: u64 = 0x034;
    pub const IMSC: u64 = 0x038;
    pub const RIS: u64 = 0x03c;
    pub const MIS: u64 = 0x040;
    pub const ICR: u64 = 0x044;
    pub const DMACR: u64 = 0x048;
    pub const PERIPH_ID0: u64 = 0xfe0;
    pub const PCELL_ID3: u64 = 0xffc;
}

/// Flag register bits.
pub mod fr {
    pub const BUSY: u32 = 1 << 3;
    pub const RXFE: u32 = 1 << 4;
    pub const TXFF: u32 = 1 << 5;
    pub const RXFF: u32 = 1 << 6;
    pub const TXFE: u32 = 1 << 7;
}

/// Interrupt bits (IMSC, RIS, MIS, ICR).
pub mod int {
    pub const RX: u32 = 1 << 4;
    pub const TX: u32 = 1 << 5;
    pub const RT: u32 = 1 << 6;
    pub const OE: u32 = 1 << 10;
    pub const ALL: u32 = 0x7ff;
}

const CR_UARTEN: u32 = 1 << 0;
const CR_TXE: u32 = 1 << 8;
const CR_RXE: u32 = 1 << 9;
const LCR_H_FEN: u32 = 1 << 4;
const DR_OE: u32 = 1 << 11;
const RSR_OE: u32 = 1 << 3;
/// PeriphID0-3 and PCellID0-3, as the PrimeCell bus probe reads them.
const IDS: [u32; 8] = [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];
const FIFO: usize = 16;

/// A guest access the model refuses (the caller injects a data abort).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Not naturally aligned, or wider than 32 bits.
    BadAccess { offset: u64, size: u8 },
    /// Past the 4 KiB register frame.
    OutOfRange(u64),
}

/// What a register write produced for the hypervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    None,
    /// A byte the guest transmitted.
    Tx(u8),
}

#[derive(Debug, Clone)]
pub struct Pl011 {
    rx: [u16; FIFO],
    rx_head: usize,
    rx_len: usize,
    rsr: u32,
    ris: u32,
    imsc: u32,
    ibrd: u32,
    fbrd: u32,
    lcr_h: u32,
    cr: u32,
    ifls: u32,
    ilpr: u32,
    dmacr: u32,
}

impl Default for Pl011 {
    fn default() -> Self {
        Self::new()
    }
}

impl Pl011 {
    /// The state firmware leaves a console in: enabled (UARTEN, TXE, RXE; bare-metal guests
    /// write DR without programming CR, as on QEMU), FIFOs off, trigger levels at 1/2.
    pub const fn new() -> Self {
        Self {
            rx: [0; FIFO],
            rx_head: 0,
            rx_len: 0,
            rsr: 0,
            ris: 0,
            imsc: 0,
            ibrd: 0,
            fbrd: 0,
            lcr_h: 0,
            cr: CR_UARTEN | CR_TXE | CR_RXE,
            ifls: 0x12,
            ilpr: 0,
            dmacr: 0,
        }
    }

    fn fifo_depth(&self) -> usize {
        if self.lcr_h & LCR_H_FEN != 0 {
            FIFO
        } else {
            1
        }
    }

    fn rx_trigger(&self) -> usize {
        if self.lcr_h & LCR_H_FEN == 0 {
            return 1;
        }
        // IFLS.RXIFLSEL: 1/8, 1/4, 1/2, 3/4, 7/8 full.
        match (self.ifls >> 3) & 7 {
            0 => 2,
            1 => 4,
            2 => 8,
            3 => 12,
            _ => 14,
        }
    }

    fn update_rx_ints(&mut self) {
        self.ris &= !(int::RX | int::RT);
        if self.rx_len >= self.rx_trigger() {
            self.ris |= int::RX;
        } else if self.rx_len > 0 {
            self.ris |= int::RT;
        }
    }

    /// The level of the UART's interrupt line (RIS masked by IMSC).
    pub fn irq_level(&self) -> bool {
        self.ris & self.imsc != 0
    }

    /// Whether the guest can take another byte now (its receiver is on and the FIFO has room).
    pub fn can_receive(&self) -> bool {
        self.receiving() && self.rx_len < self.fifo_depth()
    }

    fn receiving(&self) -> bool {
        self.cr & (CR_UARTEN | CR_RXE) == CR_UARTEN | CR_RXE
    }

    /// A byte from the console for this guest. Returns false when it was lost: receiver off,
    /// or the FIFO full (an overrun, flagged in RSR and the OE interrupt as on hardware).
    pub fn receive(&mut self, byte: u8) -> bool {
        if !self.receiving() {
            return false;
        }
        if self.rx_len >= self.fifo_depth() {
            self.rsr |= RSR_OE;
            self.ris |= int::OE;
            return false;
        }
        let tail = (self.rx_head + self.rx_len) % FIFO;
        self.rx[tail] = u16::from(byte);
        self.rx_len += 1;
        self.update_rx_ints();
        true
    }

    fn pop_rx(&mut self) -> u32 {
        if self.rx_len == 0 {
            return 0;
        }
        let v = u32::from(self.rx[self.rx_head]);
        self.rx_head = (self.rx_head + 1) % FIFO;
        self.rx_len -= 1;
        self.update_rx_ints();
        // The overrun status travels with the next byte read, as in DR[11].
        if self.rsr & RSR_OE != 0 {
            v | DR_OE
        } else {
            v
        }
    }

    fn flags(&self) -> u32 {
        let mut f = fr::TXFE;
        if self.rx_len == 0 {
            f |= fr::RXFE;
        }
        if self.rx_len >= self.fifo_depth() {
            f |= fr::RXFF;
        }
        f
    }

    fn check(offset: u64, size: u8) -> Result<(), Fault> {
        if offset >= 0x1000 {
            return Err(Fault::OutOfRange(offset));
        }
        if !matches!(size, 1 | 2 | 4) || !offset.is_multiple_of(u64::from(size)) {
            return Err(Fault::BadAccess { offset, size });
        }
        Ok(())
    }

    /// A guest load of `size` bytes at `offset` in the frame. Narrow loads read the low bytes
    /// of the 32-bit register; unknown offsets read as zero.
    pub fn read(&mut self, offset: u64, size: u8) -> Result<u32, Fault> {
        Self::check(offset, size)?;
        let word = offset & !3;
        let v = match word {
            reg::DR => self.pop_rx(),
            reg::RSR => self.rsr,
            reg::FR => self.flags(),
            reg::ILPR => self.ilpr,
            reg::IBRD => self.ibrd,
            reg::FBRD => self.fbrd,
            reg::LCR_H => self.lcr_h,
            reg::CR => self.cr,
            reg::IFLS => self.ifls,
            reg::IMSC => self.imsc,
            reg::RIS => self.ris,
            reg::MIS => self.ris & self.imsc,
            reg::DMACR => self.dmacr,
            reg::PERIPH_ID0..=reg::PCELL_ID3 => IDS[((word - reg::PERIPH_ID0) / 4) as usize],
            _ => 0,
        };
        let shift = (offset & 3) * 8;
        let mask = if size == 4 {
            u32::MAX
        } else {
            (1u32 << (u32::from(size) * 8)) - 1
        };
        Ok((v >> shift) & mask)
    }

    /// A guest store. Read-only and unknown registers ignore writes.
    pub fn write(&mut self, offset: u64, size: u8, value: u32) -> Result<Output, Fault> {
        Self::check(offset, size)?;
        let word = offset & !3;
        // Sub-word stores other than to DR are rare; treat them as stores of the low bytes.
        let v = value << ((offset & 3) * 8);
        match word {
            reg::DR => {
                if self.cr & (CR_UARTEN | CR_TXE) != CR_UARTEN | CR_TXE {
                    return Ok(Output::None);
                }
                self.ris |= int::TX;
                return Ok(Output::Tx(v as u8));
            }
            reg::RSR => {
                self.rsr = 0;
                self.ris &= !int::OE;
            }
            reg::ILPR => self.ilpr = v & 0xff,
            reg::IBRD => self.ibrd = v & 0xffff,
            reg::FBRD => self.fbrd = v & 0x3f,
            reg::LCR_H => {
                // Changing the FIFO mode flushes the FIFOs.
                if (self.lcr_h ^ v) & LCR_H_FEN != 0 {
                    self.rx_len = 0;
                }
                self.lcr_h = v & 0xff;
                self.update_rx_ints();
            }
            reg::CR => self.cr = v & 0xff87,
            reg::IFLS => {
                self.ifls = v & 0x3f;
                self.update_rx_ints();
            }
            reg::IMSC => self.imsc = v & int::ALL,
            reg::ICR => {
                self.ris &= !(v & int::ALL);
                // RX/RT reflect the FIFO level: clearing them while data waits is undone.
                self.update_rx_ints();
                if v & int::OE != 0 {
                    self.rsr &= !RSR_OE;
                }
            }
            reg::DMACR => self.dmacr = v & 7,
            _ => {}
        }
        Ok(Output::None)
    }
}
