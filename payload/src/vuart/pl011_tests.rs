use super::pl011::{fr, int, reg, Fault, Output, Pl011};

const UARTEN_TXE_RXE: u32 = 1 | 1 << 8 | 1 << 9;
const FEN: u32 = 1 << 4;

fn enabled(fifo: bool) -> Pl011 {
    let mut u = Pl011::new();
    u.write(reg::CR, 4, UARTEN_TXE_RXE).unwrap();
    if fifo {
        u.write(reg::LCR_H, 4, FEN | 0x60).unwrap();
    }
    u
}

#[test]
fn primecell_ids_identify_a_pl011() {
    let mut u = Pl011::new();
    let ids: Vec<u32> = (0..8)
        .map(|i| u.read(reg::PERIPH_ID0 + 4 * i, 4).unwrap())
        .collect();
    assert_eq!(ids, [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1]);
}

#[test]
fn tx_hands_bytes_out_only_when_enabled() {
    let mut u = Pl011::new();
    assert_eq!(u.write(reg::DR, 4, b'a'.into()).unwrap(), Output::Tx(b'a'));
    u.write(reg::CR, 4, 1).unwrap();
    assert_eq!(
        u.write(reg::DR, 4, b'a'.into()).unwrap(),
        Output::None,
        "TXE clear"
    );
    u.write(reg::CR, 4, UARTEN_TXE_RXE).unwrap();
    assert_eq!(u.write(reg::DR, 4, b'b'.into()).unwrap(), Output::Tx(b'b'));
    assert_eq!(u.write(reg::DR, 1, 0x1_63).unwrap(), Output::Tx(b'c'));
    let f = u.read(reg::FR, 4).unwrap();
    assert_ne!(f & fr::TXFE, 0);
    assert_eq!(f & (fr::TXFF | fr::BUSY), 0);
}

#[test]
fn tx_interrupt_follows_mask_and_clear() {
    let mut u = enabled(true);
    u.write(reg::DR, 4, b'x'.into()).unwrap();
    assert_ne!(u.read(reg::RIS, 4).unwrap() & int::TX, 0);
    assert!(!u.irq_level(), "masked");
    u.write(reg::IMSC, 4, int::TX).unwrap();
    assert!(u.irq_level());
    assert_eq!(u.read(reg::MIS, 4).unwrap(), int::TX);
    u.write(reg::ICR, 4, int::TX).unwrap();
    assert!(!u.irq_level());
    assert_eq!(u.read(reg::RIS, 4).unwrap() & int::TX, 0);
}

#[test]
fn rx_without_fifo_holds_one_byte() {
    let mut u = enabled(false);
    assert_ne!(u.read(reg::FR, 4).unwrap() & fr::RXFE, 0);
    assert!(u.receive(b'1'));
    let f = u.read(reg::FR, 4).unwrap();
    assert_eq!(f & fr::RXFE, 0);
    assert_ne!(f & fr::RXFF, 0);
    assert!(!u.can_receive());
    assert!(!u.receive(b'2'), "overrun");
    assert_ne!(u.read(reg::RIS, 4).unwrap() & int::OE, 0);
    let d = u.read(reg::DR, 4).unwrap();
    assert_eq!(d & 0xff, u32::from(b'1'));
    assert_ne!(d & (1 << 11), 0, "DR carries the overrun flag");
    u.write(reg::RSR, 4, 0).unwrap();
    assert_eq!(u.read(reg::RSR, 4).unwrap(), 0);
    assert_eq!(u.read(reg::RIS, 4).unwrap() & int::OE, 0);
}

#[test]
fn rx_fifo_is_first_in_first_out_and_raises_rx_at_the_trigger() {
    let mut u = enabled(true);
    u.write(reg::IMSC, 4, int::RX | int::RT).unwrap();
    // IFLS reset value: RX trigger at 1/2 (8 bytes).
    for (i, b) in b"abcdefg".iter().enumerate() {
        assert!(u.receive(*b));
        assert_eq!(
            u.read(reg::MIS, 4).unwrap(),
            int::RT,
            "{} bytes: timeout only",
            i + 1
        );
    }
    u.receive(b'h');
    assert_eq!(u.read(reg::MIS, 4).unwrap(), int::RX);
    for b in 8..16u8 {
        assert!(u.receive(b'a' + b));
    }
    assert!(!u.receive(b'!'));
    let mut got = Vec::new();
    while u.read(reg::FR, 4).unwrap() & fr::RXFE == 0 {
        got.push(u.read(reg::DR, 4).unwrap() as u8);
    }
    assert_eq!(got, b"abcdefghijklmnop");
    assert!(!u.irq_level(), "empty FIFO: no RX interrupt");
    // An empty DR read returns 0 and changes nothing.
    assert_eq!(u.read(reg::DR, 4).unwrap() & 0xff, 0);
}

#[test]
fn icr_cannot_clear_rx_while_data_waits() {
    let mut u = enabled(true);
    u.write(reg::IMSC, 4, int::RT).unwrap();
    u.receive(b'q');
    u.write(reg::ICR, 4, int::ALL).unwrap();
    assert!(u.irq_level());
    u.read(reg::DR, 4).unwrap();
    assert!(!u.irq_level());
}

#[test]
fn receiver_off_drops_input() {
    let mut u = Pl011::new();
    assert!(u.can_receive());
    u.write(reg::CR, 4, 1 << 8).unwrap();
    assert!(!u.can_receive(), "UARTEN and RXE clear");
    assert!(!u.receive(b'x'));
    assert_ne!(u.read(reg::FR, 4).unwrap() & fr::RXFE, 0);
}

#[test]
fn leaving_fifo_mode_flushes() {
    let mut u = enabled(true);
    u.receive(b'a');
    u.receive(b'b');
    u.write(reg::LCR_H, 4, 0x60).unwrap();
    assert_ne!(u.read(reg::FR, 4).unwrap() & fr::RXFE, 0);
}

#[test]
fn control_registers_keep_their_defined_bits() {
    let mut u = Pl011::new();
    u.write(reg::IBRD, 4, 0xffff_ffff).unwrap();
    u.write(reg::FBRD, 4, 0xffff_ffff).unwrap();
    u.write(reg::IMSC, 4, 0xffff_ffff).unwrap();
    assert_eq!(u.read(reg::IBRD, 4).unwrap(), 0xffff);
    assert_eq!(u.read(reg::FBRD, 4).unwrap(), 0x3f);
    assert_eq!(u.read(reg::IMSC, 4).unwrap(), int::ALL);
    // Narrow reads see the low bytes of the register at their offset.
    u.write(reg::IBRD, 4, 0x1234).unwrap();
    assert_eq!(u.read(reg::IBRD + 1, 1).unwrap(), 0x12);
    assert_eq!(u.read(reg::IBRD, 2).unwrap(), 0x1234);
    // Read-only and reserved registers ignore writes and read as defined.
    u.write(reg::FR, 4, 0).unwrap();
    assert_ne!(u.read(reg::FR, 4).unwrap() & fr::TXFE, 0);
    u.write(0x800, 4, 5).unwrap();
    assert_eq!(u.read(0x800, 4).unwrap(), 0);
}

#[test]
fn bad_accesses_fault() {
    let mut u = Pl011::new();
    assert_eq!(
        u.read(reg::FR + 1, 4),
        Err(Fault::BadAccess {
            offset: reg::FR + 1,
            size: 4
        })
    );
    assert_eq!(u.read(0, 8), Err(Fault::BadAccess { offset: 0, size: 8 }));
    assert_eq!(u.write(0x1000, 4, 0), Err(Fault::OutOfRange(0x1000)));
}
