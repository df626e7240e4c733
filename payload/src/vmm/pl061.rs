//! The PL061 GPIO controller every guest VM gets at `minos_abi::guest::POWER_GPIO_BASE`: its
//! pin `POWER_GPIO_PIN` is the power button (`gpio-keys`, `KEY_POWER`) that `VM_SHUTDOWN`
//! presses, as QEMU's virt machine does for `system_powerdown`. Only the registers Linux's
//! `gpio-pl061` driver uses; every other access reads as zero and ignores writes.

/// Register offsets (PL061 TRM, 3.2).
mod reg {
    /// `GPIODATA` spans 0x000..0x400: address bits 9:2 mask the pins an access touches.
    pub const DATA_END: u32 = 0x400;
    pub const DIR: u32 = 0x400;
    pub const IS: u32 = 0x404;
    pub const IBE: u32 = 0x408;
    pub const IEV: u32 = 0x40c;
    pub const IE: u32 = 0x410;
    pub const RIS: u32 = 0x414;
    pub const MIS: u32 = 0x418;
    pub const IC: u32 = 0x41c;
    pub const AFSEL: u32 = 0x420;
    pub const ID: u32 = 0xfe0;
}

/// PeriphID0..3 then PCellID0..3 (what the AMBA bus probe matches: 0x00041061).
const ID: [u8; 8] = [0x61, 0x10, 0x04, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pl061 {
    /// Levels driven on the pins from outside (the button).
    inputs: u8,
    /// Output latch for pins the guest set as outputs.
    data: u8,
    dir: u8,
    is: u8,
    ibe: u8,
    iev: u8,
    ie: u8,
    /// Latched edge interrupts (`GPIORIS` for edge-sensitive pins).
    edges: u8,
    afsel: u8,
}

impl Pl061 {
    /// Pin levels as the guest reads them: outputs from the latch, inputs from outside.
    fn levels(&self) -> u8 {
        (self.data & self.dir) | (self.inputs & !self.dir)
    }

    /// `GPIORIS`: latched edges, and level-sensitive pins at their active level.
    fn raw_status(&self) -> u8 {
        let active = !(self.levels() ^ self.iev);
        (self.edges & !self.is) | (active & self.is)
    }

    /// Whether the interrupt line is asserted.
    pub fn line(&self) -> bool {
        self.raw_status() & self.ie != 0
    }

    /// Drives input `pin` (0..8) to `high`, latching the edge interrupt the guest configured.
    pub fn set_input(&mut self, pin: u32, high: bool) {
        if pin >= 8 {
            return;
        }
        let bit = 1u8 << pin;
        let before = self.levels();
        if high {
            self.inputs |= bit;
        } else {
            self.inputs &= !bit;
        }
        let changed = (before ^ self.levels()) & bit;
        if changed == 0 {
            return;
        }
        let rising = high;
        let wanted = self.ibe & bit != 0 || (self.iev & bit != 0) == rising;
        if self.is & bit == 0 && wanted {
            self.edges |= bit;
        }
    }

    /// A guest read at `offset` (any width; the registers are 8 bits wide).
    pub fn read(&self, offset: u32) -> u64 {
        let v = match offset {
            o if o < reg::DATA_END => self.levels() & (o >> 2) as u8,
            reg::DIR => self.dir,
            reg::IS => self.is,
            reg::IBE => self.ibe,
            reg::IEV => self.iev,
            reg::IE => self.ie,
            reg::RIS => self.raw_status(),
            reg::MIS => self.raw_status() & self.ie,
            reg::AFSEL => self.afsel,
            o if (reg::ID..reg::ID + 32).contains(&o) && o % 4 == 0 => {
                ID[((o - reg::ID) / 4) as usize]
            }
            _ => 0,
        };
        u64::from(v)
    }

    /// A guest write at `offset`.
    pub fn write(&mut self, offset: u32, value: u64) {
        let v = value as u8;
        match offset {
            o if o < reg::DATA_END => {
                let mask = (o >> 2) as u8 & self.dir;
                self.data = (self.data & !mask) | (v & mask);
            }
            reg::DIR => self.dir = v,
            reg::IS => self.is = v,
            reg::IBE => self.ibe = v,
            reg::IEV => self.iev = v,
            reg::IE => self.ie = v,
            reg::IC => self.edges &= !v,
            reg::AFSEL => self.afsel = v,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIN: u32 = 3;
    const BIT: u64 = 1 << PIN;
    /// `GPIODATA` address that reads pin 3 alone.
    const DATA3: u32 = (BIT as u32) << 2;

    /// What gpio-pl061 + gpio-keys configure for a key on pin 3: input, both edges, unmasked.
    fn as_linux_sets_it_up() -> Pl061 {
        let mut g = Pl061::default();
        g.write(reg::DIR, 0);
        g.write(reg::IS, 0);
        g.write(reg::IBE, BIT);
        g.write(reg::IE, BIT);
        g
    }

    #[test]
    fn identifies_as_a_pl061() {
        let g = Pl061::default();
        let id: Vec<u64> = (0..8).map(|i| g.read(0xfe0 + 4 * i)).collect();
        assert_eq!(id, [0x61, 0x10, 0x04, 0x00, 0x0d, 0xf0, 0x05, 0xb1]);
        assert_eq!(g.read(0xfe1), 0);
        assert_eq!(g.read(0x1000), 0);
    }

    #[test]
    fn pressing_the_button_raises_an_edge_until_cleared() {
        let mut g = as_linux_sets_it_up();
        assert!(!g.line());
        g.set_input(PIN, true);
        assert!(g.line());
        assert_eq!(g.read(reg::MIS), BIT);
        assert_eq!(g.read(DATA3), BIT, "the key reads pressed");
        assert_eq!(g.read(1 << 2), 0, "through another pin's mask");
        g.set_input(PIN, true);
        g.write(reg::IC, BIT);
        assert!(!g.line(), "no new edge while held");
        g.set_input(PIN, false);
        assert!(g.line(), "release is an edge too");
        g.write(reg::IC, BIT);
        assert!(!g.line());
    }

    #[test]
    fn masked_and_rising_only_configurations() {
        let mut g = as_linux_sets_it_up();
        g.write(reg::IE, 0);
        g.set_input(PIN, true);
        assert!(!g.line());
        assert_eq!(g.read(reg::RIS), BIT, "raw status still latched");
        g.write(reg::IE, BIT);
        assert!(g.line());

        let mut g = Pl061::default();
        g.write(reg::IEV, BIT);
        g.write(reg::IE, BIT);
        g.set_input(PIN, true);
        g.write(reg::IC, BIT);
        g.set_input(PIN, false);
        assert!(!g.line(), "falling edge ignored when rising was asked");
    }

    #[test]
    fn level_sensitive_follows_the_pin() {
        let mut g = Pl061::default();
        g.write(reg::IS, BIT);
        g.write(reg::IEV, BIT);
        g.write(reg::IE, BIT);
        assert!(!g.line());
        g.set_input(PIN, true);
        assert!(g.line());
        g.write(reg::IC, BIT);
        assert!(g.line(), "a level cannot be cleared");
        g.set_input(PIN, false);
        assert!(!g.line());
    }

    #[test]
    fn outputs_come_from_the_latch() {
        let mut g = Pl061::default();
        g.write(reg::DIR, 0x01);
        g.write(0x3fc, 0xff);
        assert_eq!(g.read(0x3fc), 0x01, "only the output pin latched");
        g.set_input(0, false);
        assert_eq!(g.read(0x3fc), 0x01, "an output ignores the outside");
        g.set_input(9, true);
        assert_eq!(g, {
            let mut h = Pl061::default();
            h.write(reg::DIR, 0x01);
            h.write(0x3fc, 0xff);
            h
        });
    }
}
