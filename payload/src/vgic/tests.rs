//! Behavioural tests of the whole vGIC through its public interface and a fake CPU interface.

use super::fake::FakeLrs;
use super::lr::LrState;
use super::*;

const GICD: u64 = 0x0800_0000;
const GICR: u64 = 0x080a_0000;
const SGI: u64 = 0x1_0000;

fn v3(nr_vcpus: usize, nr_spis: u32) -> Vgic {
    Vgic::new(VgicConfig {
        version: GicVersion::V3,
        nr_vcpus,
        nr_spis,
        dist_base: GICD,
        redist_base: GICR,
    })
}

fn v2(nr_vcpus: usize, nr_spis: u32) -> Vgic {
    Vgic::new(VgicConfig {
        version: GicVersion::V2,
        nr_vcpus,
        nr_spis,
        dist_base: GICD,
        redist_base: 0,
    })
}

fn rd(g: &mut Vgic, vcpu: usize, ipa: u64, size: u8) -> u64 {
    g.mmio_read(vcpu, ipa, size)
        .unwrap_or_else(|e| panic!("read {ipa:#x}: {e}"))
}

fn wr(g: &mut Vgic, vcpu: usize, ipa: u64, size: u8, val: u64) -> VcpuMask {
    g.mmio_write(vcpu, ipa, size, val)
        .unwrap_or_else(|e| panic!("write {ipa:#x}: {e}"))
}

fn gicr(vcpu: usize) -> u64 {
    GICR + vcpu as u64 * GICR_STRIDE
}

/// Enables SPI `id` at priority `prio`, group 1, with the distributor on.
fn enable_spi(g: &mut Vgic, id: u32, prio: u8) {
    wr(g, 0, GICD, 4, 0x12);
    let (reg, bit) = (u64::from(id / 32) * 4, 1u64 << (id % 32));
    let grp = rd(g, 0, GICD + 0x80 + reg, 4);
    wr(g, 0, GICD + 0x80 + reg, 4, grp | bit);
    wr(g, 0, GICD + 0x100 + reg, 4, bit);
    wr(g, 0, GICD + 0x400 + u64::from(id), 1, prio.into());
}

/// Delivers everything pending on `vcpu` through a fake guest that acks and EOIs in the
/// order the CPU interface presents them (and completes interrupts already active), re-flushing whenever the maintenance interrupt
/// would fire. Returns the INTIDs in delivery order.
fn drain(g: &mut Vgic, vcpu: usize, lrs: &mut FakeLrs) -> Vec<u32> {
    drain_lrs(g, vcpu, lrs).iter().map(|lr| lr.vintid).collect()
}

/// [`drain`], returning the list registers as acknowledged (GICv2 SGIs carry their source).
fn drain_lrs(g: &mut Vgic, vcpu: usize, lrs: &mut FakeLrs) -> Vec<super::lr::Lr> {
    let mut seen = Vec::new();
    g.flush_lrs(vcpu, lrs);
    for _ in 0..1000 {
        if let Some(lr) = lrs.ack() {
            seen.push(lr);
            lrs.eoi(lr.vintid);
        } else if let Some(&(id, _)) = lrs.loaded().iter().find(|l| l.1.active()) {
            // Finish what was already in service when this vCPU was entered.
            lrs.eoi(id);
        }
        if lrs.maintenance() || lrs.loaded().is_empty() {
            g.sync_lrs(vcpu, lrs);
            g.flush_lrs(vcpu, lrs);
            if lrs.loaded().is_empty() {
                break;
            }
        }
    }
    g.sync_lrs(vcpu, lrs);
    seen
}

#[test]
fn gicd_typer_iidr_pidr2_v3() {
    let mut g = v3(4, 256);
    let typer = rd(&mut g, 0, GICD + 4, 4);
    assert_eq!(typer & 0x1f, 8, "ITLinesNumber for 288 INTIDs");
    assert_eq!((typer >> 19) & 0x1f, 9, "IDbits = 10 bits");
    assert_eq!(typer & (1 << 17), 0, "no LPIs");
    assert_eq!(typer & (1 << 16), 0, "no MBIS");
    assert_ne!(typer & (1 << 25), 0, "No1N");
    assert_eq!(rd(&mut g, 0, GICD + 0xffe8, 4) & 0xf0, 0x30);
    assert_eq!(rd(&mut g, 0, GICD + 8, 4) & 0xfff, 0x43b);
    // A non-multiple of 32 rounds up.
    let mut g = v3(1, 100);
    assert_eq!(rd(&mut g, 0, GICD + 4, 4) & 0x1f, 4);
    assert_eq!(g.config().nr_spis, 128);
}

#[test]
fn gicd_ctlr_v3_are_and_ds_stick() {
    let mut g = v3(2, 32);
    assert_eq!(rd(&mut g, 0, GICD, 4), 0x50);
    wr(&mut g, 0, GICD, 4, 0x13);
    assert_eq!(rd(&mut g, 0, GICD, 4), 0x53);
    wr(&mut g, 0, GICD, 4, 0);
    assert_eq!(rd(&mut g, 0, GICD, 4), 0x50, "ARE/DS RAO/WI, RWP reads 0");
}

#[test]
fn set_clear_pairs_on_spis() {
    let mut g = v3(1, 64);
    for (set, clr) in [(0x100, 0x180), (0x200, 0x280), (0x300, 0x380)] {
        wr(&mut g, 0, GICD + set + 4, 4, 0b1011);
        wr(&mut g, 0, GICD + set + 4, 4, 0b0100); // zeros do not clear
        assert_eq!(rd(&mut g, 0, GICD + set + 4, 4), 0b1111);
        assert_eq!(rd(&mut g, 0, GICD + clr + 4, 4), 0b1111);
        wr(&mut g, 0, GICD + clr + 4, 4, 0b0101);
        assert_eq!(rd(&mut g, 0, GICD + set + 4, 4), 0b1010);
        wr(&mut g, 0, GICD + clr + 4, 4, 0); // zeros do not set
        assert_eq!(rd(&mut g, 0, GICD + clr + 4, 4), 0b1010);
    }
    // IGROUPR stores the whole word.
    wr(&mut g, 0, GICD + 0x84, 4, 0xffff_0000);
    assert_eq!(rd(&mut g, 0, GICD + 0x84, 4), 0xffff_0000);
    // INTIDs 0..31 live in the redistributor with ARE=1: RAZ/WI here.
    wr(&mut g, 0, GICD + 0x100, 4, 0xffff_ffff);
    assert_eq!(rd(&mut g, 0, GICD + 0x100, 4), 0);
    assert_eq!(rd(&mut g, 0, gicr(0) + SGI + 0x100, 4), 0);
    // Registers past the implemented SPIs are RAZ/WI.
    wr(&mut g, 0, GICD + 0x100 + 12, 4, 0xffff_ffff);
    assert_eq!(rd(&mut g, 0, GICD + 0x100 + 12, 4), 0);
}

#[test]
fn set_clear_pairs_on_redistributor() {
    let mut g = v3(2, 32);
    let r1 = gicr(1) + SGI;
    wr(&mut g, 0, r1 + 0x100, 4, 1 << 27 | 1 << 3);
    assert_eq!(rd(&mut g, 0, r1 + 0x100, 4), 1 << 27 | 1 << 3);
    assert_eq!(
        rd(&mut g, 0, gicr(0) + SGI + 0x100, 4),
        0,
        "banked per redistributor"
    );
    wr(&mut g, 1, r1 + 0x180, 4, 1 << 3);
    assert_eq!(rd(&mut g, 1, r1 + 0x180, 4), 1 << 27);
    wr(&mut g, 1, r1 + 0x200, 4, 1 << 5);
    assert_eq!(rd(&mut g, 1, r1 + 0x200, 4), 1 << 5);
    wr(&mut g, 1, r1 + 0x280, 4, 1 << 5);
    assert_eq!(rd(&mut g, 1, r1 + 0x200, 4), 0);
    wr(&mut g, 1, r1 + 0x80, 4, !0);
    assert_eq!(rd(&mut g, 1, r1 + 0x80, 4), 0xffff_ffff);
}

#[test]
fn ipriorityr_byte_and_word_access() {
    let mut g = v3(1, 32);
    wr(&mut g, 0, GICD + 0x400 + 33, 1, 0xa0);
    assert_eq!(rd(&mut g, 0, GICD + 0x400 + 32, 4), 0x0000_a000);
    wr(&mut g, 0, GICD + 0x400 + 36, 4, 0x1122_3344);
    assert_eq!(rd(&mut g, 0, GICD + 0x400 + 39, 1), 0x11);
    assert_eq!(rd(&mut g, 0, GICD + 0x400 + 36, 1), 0x44);
    assert_eq!(rd(&mut g, 0, GICD + 0x400 + 38, 2), 0x1122);
    // Banked PPI priorities in SGI_base.
    wr(&mut g, 0, gicr(0) + SGI + 0x400 + 27, 1, 0x80);
    assert_eq!(rd(&mut g, 0, gicr(0) + SGI + 0x418, 4), 0x8000_0000);
    // 8-byte access to IPRIORITYR is not allowed.
    assert!(g.mmio_read(0, GICD + 0x400 + 32, 8).is_err());
}

#[test]
fn icfgr_sgis_read_only_edge() {
    let mut g = v3(1, 32);
    let r = gicr(0) + SGI;
    assert_eq!(rd(&mut g, 0, r + 0xc00, 4), 0xaaaa_aaaa);
    wr(&mut g, 0, r + 0xc00, 4, 0);
    assert_eq!(rd(&mut g, 0, r + 0xc00, 4), 0xaaaa_aaaa);
    wr(&mut g, 0, r + 0xc04, 4, 0);
    assert_eq!(rd(&mut g, 0, r + 0xc04, 4), 0, "PPIs level");
    wr(&mut g, 0, GICD + 0xc08, 4, 0x0000_0002);
    assert_eq!(rd(&mut g, 0, GICD + 0xc08, 4), 0x2);
}

#[test]
fn irouter_routes_spi_by_affinity() {
    let mut g = v3(4, 32);
    enable_spi(&mut g, 40, 0x80);
    let irouter40 = GICD + 0x6000 + 8 * 40;
    // vCPU 2 is Aff0 = 2.
    wr(&mut g, 0, irouter40, 8, vcpu_affinity(2) | (1 << 31));
    assert_eq!(rd(&mut g, 0, irouter40, 8), 2, "IRM is RES0 (No1N)");
    assert_eq!(g.inject(40, None, None), VcpuMask::single(2));
    let mut lrs = FakeLrs::new(GicVersion::V3, 4);
    g.flush_lrs(0, &mut lrs);
    assert!(lrs.loaded().is_empty(), "not for vCPU 0");
    g.sync_lrs(0, &mut lrs);
    g.flush_lrs(2, &mut lrs);
    assert_eq!(lrs.loaded(), vec![(40, LrState::Pending)]);
    g.sync_lrs(2, &mut lrs);
    assert_eq!(g.spi_target(40), Some(2));
    assert_eq!(g.spi_target(27), None, "not an SPI");
    assert_eq!(g.spi_target(5000), None);
    // 32-bit halves; Aff1 = 1 names a vCPU that does not exist: undeliverable.
    wr(&mut g, 0, irouter40, 4, 0x100);
    wr(&mut g, 0, irouter40 + 4, 4, 0);
    assert_eq!(rd(&mut g, 0, irouter40, 4), 0x100);
    assert!(g.inject(40, None, None).is_empty());
    // Moving it to vCPU 3 hands over the pending state and kicks vCPU 3.
    assert_eq!(wr(&mut g, 0, irouter40, 8, 3), VcpuMask::single(3));
    // IROUTER for SGIs/PPIs and beyond the SPIs is RAZ/WI.
    wr(&mut g, 0, GICD + 0x6000 + 8 * 5, 8, 3);
    assert_eq!(rd(&mut g, 0, GICD + 0x6000 + 8 * 5, 8), 0);
    wr(&mut g, 0, GICD + 0x6000 + 8 * 64, 8, 3);
    assert_eq!(rd(&mut g, 0, GICD + 0x6000 + 8 * 64, 8), 0);
}

#[test]
fn gicr_typer_last_and_affinity() {
    let mut g = v3(20, 32);
    for v in 0..20 {
        let typer = rd(&mut g, 0, gicr(v) + 8, 8);
        assert_eq!((typer >> 8) & 0xffff, v as u64, "Processor_Number");
        assert_eq!(typer >> 32, vcpu_affinity(v));
        assert_eq!(typer & (1 << 4) != 0, v == 19, "Last");
        assert_eq!(typer & 1, 0, "no PLPIS");
        // Two 32-bit halves give the same value.
        let lo = rd(&mut g, 0, gicr(v) + 8, 4);
        let hi = rd(&mut g, 0, gicr(v) + 0xc, 4);
        assert_eq!(hi << 32 | lo, typer);
    }
    assert_eq!(rd(&mut g, 0, gicr(17) + 8, 8) >> 32, 0x0101);
    assert_eq!(vmpidr(17), 0x8000_0101);
    assert_eq!(rd(&mut g, 0, gicr(3) + 0xffe8, 4) & 0xf0, 0x30);
    assert!(!g.contains(gicr(20)));
    assert!(g.contains(gicr(19) + 0x1_ffff));
}

#[test]
fn gicr_waker_handshake() {
    let mut g = v3(2, 32);
    assert_eq!(rd(&mut g, 0, gicr(1) + 0x14, 4), 0x6, "asleep out of reset");
    wr(&mut g, 1, gicr(1) + 0x14, 4, 0);
    assert_eq!(
        rd(&mut g, 1, gicr(1) + 0x14, 4),
        0,
        "children awake at once"
    );
    assert_eq!(
        rd(&mut g, 0, gicr(0) + 0x14, 4),
        0x6,
        "other redistributor untouched"
    );
    wr(&mut g, 1, gicr(1) + 0x14, 4, 0x2);
    assert_eq!(rd(&mut g, 1, gicr(1) + 0x14, 4), 0x6);
}

#[test]
fn sgi1r_routes_to_the_right_vcpus() {
    let mut g = v3(4, 32);
    wr(&mut g, 0, GICD, 4, 0x12);
    for v in 0..4 {
        wr(&mut g, v, gicr(v) + SGI + 0x80, 4, !0);
        wr(&mut g, v, gicr(v) + SGI + 0x100, 4, 0xffff);
    }
    // SGI 3 to vCPUs 1 and 2.
    assert_eq!(g.write_sgi1r(0, (3 << 24) | 0b110), VcpuMask(0b110));
    assert_eq!(rd(&mut g, 0, gicr(1) + SGI + 0x200, 4), 1 << 3);
    assert_eq!(rd(&mut g, 0, gicr(2) + SGI + 0x200, 4), 1 << 3);
    assert_eq!(rd(&mut g, 0, gicr(3) + SGI + 0x200, 4), 0);
    // IRM = 1: everyone but the sender.
    assert_eq!(g.write_sgi1r(2, (1 << 40) | (7 << 24)), VcpuMask(0b1011));
    assert_eq!(rd(&mut g, 0, gicr(2) + SGI + 0x200, 4), 1 << 3);
    assert_eq!(rd(&mut g, 0, gicr(0) + SGI + 0x200, 4), 1 << 7);
    // Aff1 = 1 targets nobody in a 4-vCPU VM.
    assert!(g.write_sgi1r(0, (1 << 16) | 1).is_empty());
    // Delivered through the LR on the target.
    let mut lrs = FakeLrs::new(GicVersion::V3, 4);
    assert_eq!(drain(&mut g, 1, &mut lrs), vec![3, 7]);
    assert_eq!(rd(&mut g, 0, gicr(1) + SGI + 0x200, 4), 0);
    assert!(g.write_sgi1r(9, 1).is_empty(), "bad sender vCPU is ignored");
}

#[test]
fn disabled_or_dist_off_stays_pending() {
    let mut g = v3(1, 32);
    let mut lrs = FakeLrs::new(GicVersion::V3, 4);
    wr(&mut g, 0, GICD + 0x84, 4, !0);
    assert!(g.inject(33, None, None).is_empty(), "disabled: no kick");
    g.flush_lrs(0, &mut lrs);
    assert!(lrs.loaded().is_empty());
    g.sync_lrs(0, &mut lrs);
    assert_eq!(
        wr(&mut g, 0, GICD + 0x104, 4, 1 << 1),
        VcpuMask::EMPTY,
        "dist still off"
    );
    assert_eq!(
        wr(&mut g, 0, GICD, 4, 0x2),
        VcpuMask::single(0),
        "enabling Grp1 kicks"
    );
    assert!(g.has_deliverable(0));
    g.flush_lrs(0, &mut lrs);
    assert_eq!(lrs.loaded(), vec![(33, LrState::Pending)]);
    g.sync_lrs(0, &mut lrs);
}

#[test]
fn more_pending_than_lrs_priority_order_and_refill() {
    let mut g = v3(1, 64);
    let mut lrs = FakeLrs::new(GicVersion::V3, 4);
    // Ten SPIs, priority inverse to INTID order so the INTID order is not the answer.
    let prios = [0x90u8, 0x10, 0x80, 0x20, 0x70, 0x30, 0x60, 0x40, 0x50, 0x00];
    for (k, &p) in prios.iter().enumerate() {
        enable_spi(&mut g, 40 + k as u32, p);
    }
    for k in 0..10 {
        assert_eq!(g.inject(40 + k, None, None), VcpuMask::single(0));
    }
    g.flush_lrs(0, &mut lrs);
    let mut first: Vec<u32> = lrs.loaded().iter().map(|l| l.0).collect();
    first.sort();
    assert_eq!(first, vec![41, 43, 45, 49], "the four highest priorities");
    assert!(lrs.uie, "underflow requested while six wait");
    // The guest handles three; the fourth one alone left triggers the underflow.
    for _ in 0..3 {
        let lr = lrs.ack().unwrap();
        lrs.eoi(lr.vintid);
    }
    assert!(lrs.maintenance());
    g.sync_lrs(0, &mut lrs);
    assert!(!lrs.uie, "sync leaves underflow off");
    assert!(lrs.loaded().is_empty(), "sync empties the LRs");
    let mut seen = vec![49, 41, 43];
    seen.extend(drain(&mut g, 0, &mut lrs));
    let mut want: Vec<u32> = (40..50).collect();
    want.sort_by_key(|&i| prios[(i - 40) as usize]);
    assert_eq!(seen, want, "every interrupt once, highest priority first");
    assert!(!g.has_deliverable(0));
}

#[test]
fn active_interrupt_keeps_its_lr_and_gets_pending_again() {
    let mut g = v3(1, 32);
    let mut lrs = FakeLrs::new(GicVersion::V3, 2);
    enable_spi(&mut g, 34, 0x40);
    g.inject(34, None, None);
    g.flush_lrs(0, &mut lrs);
    assert_eq!(lrs.ack().unwrap().vintid, 34);
    // Exit while the guest handles it; the device fires again.
    g.sync_lrs(0, &mut lrs);
    assert_eq!(rd(&mut g, 0, GICD + 0x304, 4), 1 << 2, "active read back");
    g.inject(34, None, None);
    g.flush_lrs(0, &mut lrs);
    assert_eq!(lrs.loaded(), vec![(34, LrState::PendingActive)]);
    lrs.eoi(34);
    assert_eq!(lrs.loaded(), vec![(34, LrState::Pending)]);
    g.sync_lrs(0, &mut lrs);
    assert_eq!(drain(&mut g, 0, &mut lrs), vec![34]);
}

#[test]
fn hw_linked_timer_ppi_v3() {
    let mut g = v3(2, 32);
    let mut lrs = FakeLrs::new(GicVersion::V3, 4);
    wr(&mut g, 1, GICD, 4, 0x12);
    wr(&mut g, 1, gicr(1) + SGI + 0x80, 4, !0);
    wr(&mut g, 1, gicr(1) + SGI + 0x100, 4, 1 << 27);
    wr(&mut g, 1, gicr(1) + SGI + 0x41b, 1, 0xa0);
    assert!(
        g.inject(27, Some(27), None).is_empty(),
        "a PPI needs its vCPU"
    );
    assert_eq!(g.inject(27, Some(27), Some(1)), VcpuMask::single(1));
    g.flush_lrs(1, &mut lrs);
    let lr = lrs.decode(0);
    assert_eq!(
        (lr.vintid, lr.pintid, lr.priority, lr.group1),
        (27, Some(27), 0xa0, true)
    );
    assert_ne!(lrs.lrs[0] & (1 << 61), 0, "ICH_LR.HW");
    lrs.ack();
    lrs.eoi(27);
    assert_eq!(
        lrs.hw_deactivated,
        vec![27],
        "guest EOI deactivates the physical timer"
    );
    g.sync_lrs(1, &mut lrs);
    assert_eq!(rd(&mut g, 1, gicr(1) + SGI + 0x300, 4), 0);
    assert_eq!(rd(&mut g, 1, gicr(1) + SGI + 0x200, 4), 0);
    // vCPU 0's PPI 27 is a different interrupt.
    assert_eq!(rd(&mut g, 0, gicr(0) + SGI + 0x100, 4), 0);
}

#[test]
fn hw_active_never_loaded_pending_active() {
    let mut g = v3(1, 32);
    let mut lrs = FakeLrs::new(GicVersion::V3, 4);
    enable_spi(&mut g, 48, 0x20);
    g.inject(48, Some(80), None);
    g.flush_lrs(0, &mut lrs);
    lrs.ack();
    g.sync_lrs(0, &mut lrs);
    g.inject(48, Some(80), None);
    g.flush_lrs(0, &mut lrs);
    assert_eq!(lrs.loaded(), vec![(48, LrState::Active)]);
    lrs.eoi(48);
    assert_eq!(lrs.hw_deactivated, vec![80]);
    g.sync_lrs(0, &mut lrs);
    assert_eq!(drain(&mut g, 0, &mut lrs), vec![48]);
}

#[test]
fn guest_clears_pending_of_in_flight_spi_on_other_vcpu() {
    let mut g = v3(2, 32);
    let mut lrs1 = FakeLrs::new(GicVersion::V3, 4);
    enable_spi(&mut g, 50, 0x20);
    wr(&mut g, 0, GICD + 0x6000 + 8 * 50, 8, 1);
    g.inject(50, None, None);
    g.flush_lrs(1, &mut lrs1);
    assert_eq!(
        rd(&mut g, 0, GICD + 0x204, 4),
        1 << 18,
        "in flight reads pending"
    );
    // vCPU 0 clears it while vCPU 1 runs with it loaded: vCPU 1 must exit.
    assert_eq!(wr(&mut g, 0, GICD + 0x284, 4, 1 << 18), VcpuMask::single(1));
    assert_eq!(rd(&mut g, 0, GICD + 0x204, 4), 0);
    g.sync_lrs(1, &mut lrs1);
    g.flush_lrs(1, &mut lrs1);
    assert!(lrs1.loaded().is_empty(), "the model won over the stale LR");
    g.sync_lrs(1, &mut lrs1);
}

#[test]
fn reroute_while_in_flight_is_a_deferred_kick() {
    let mut g = v3(2, 32);
    let mut lrs = FakeLrs::new(GicVersion::V3, 4);
    enable_spi(&mut g, 36, 0x20);
    g.inject(36, None, None);
    g.flush_lrs(0, &mut lrs);
    wr(&mut g, 0, GICD + 0x6000 + 8 * 36, 8, 1);
    // Fired again, and vCPU 1 flushes before vCPU 0 exits: it must not be in two LRs.
    assert_eq!(g.inject(36, None, None), VcpuMask(0b11));
    let mut lrs1 = FakeLrs::new(GicVersion::V3, 4);
    g.flush_lrs(1, &mut lrs1);
    assert!(lrs1.loaded().is_empty());
    g.sync_lrs(1, &mut lrs1);
    g.sync_lrs(0, &mut lrs);
    assert_eq!(g.take_deferred_kicks(), VcpuMask::single(1));
    assert!(g.take_deferred_kicks().is_empty());
    assert_eq!(drain(&mut g, 1, &mut lrs1), vec![36]);
}

#[test]
fn double_flush_does_not_lose_interrupts() {
    let mut g = v3(1, 32);
    let mut lrs = FakeLrs::new(GicVersion::V3, 4);
    enable_spi(&mut g, 33, 0x20);
    g.inject(33, None, None);
    g.flush_lrs(0, &mut lrs);
    g.flush_lrs(0, &mut lrs);
    assert_eq!(lrs.loaded(), vec![(33, LrState::Pending)]);
    g.sync_lrs(0, &mut lrs);
}

// ---- GICv2 ----

#[test]
fn gicd_v2_typer_ctlr_and_targets() {
    let mut g = v2(4, 64);
    let typer = rd(&mut g, 0, GICD + 4, 4);
    assert_eq!(typer & 0x1f, 2);
    assert_eq!((typer >> 5) & 7, 3, "CPUNumber = 4 CPUs");
    assert_eq!(rd(&mut g, 0, GICD + 0xfe8, 4) & 0xf0, 0x20);
    wr(&mut g, 0, GICD, 4, 1);
    assert_eq!(rd(&mut g, 0, GICD, 4), 1);
    // Banked ITARGETSR0..7 say "this CPU", read-only.
    assert_eq!(rd(&mut g, 2, GICD + 0x800, 4), 0x0404_0404);
    assert_eq!(rd(&mut g, 1, GICD + 0x81c, 1), 0x02);
    wr(&mut g, 1, GICD + 0x81c, 4, 0xffff_ffff);
    assert_eq!(rd(&mut g, 1, GICD + 0x81c, 4), 0x0202_0202);
    // SPI targets: byte access, masked to existing CPUs.
    wr(&mut g, 0, GICD + 0x800 + 33, 1, 0xfc);
    assert_eq!(rd(&mut g, 0, GICD + 0x820, 4), 0x0000_0c00);
}

#[test]
fn gicd_v2_spi_to_lowest_target() {
    let mut g = v2(4, 32);
    wr(&mut g, 0, GICD, 4, 1);
    wr(&mut g, 0, GICD + 0x104, 4, 1 << 3);
    assert!(
        g.inject(35, None, None).is_empty(),
        "ITARGETSR resets to no CPU"
    );
    assert_eq!(
        wr(&mut g, 0, GICD + 0x800 + 35, 1, 0b1100),
        VcpuMask::single(2)
    );
    let mut lrs = FakeLrs::new(GicVersion::V2, 4);
    assert_eq!(drain(&mut g, 2, &mut lrs), vec![35]);
}

#[test]
fn gicd_sgir_filters_and_source_in_lr() {
    let mut g = v2(4, 32);
    wr(&mut g, 0, GICD, 4, 1);
    for v in 0..4 {
        wr(&mut g, v, GICD + 0x100, 4, 0xffff);
    }
    // vCPU 1 sends SGI 5 to vCPUs 0 and 3 (list).
    assert_eq!(
        wr(&mut g, 1, GICD + 0xf00, 4, 0x0009_0005),
        VcpuMask(0b1001)
    );
    // vCPU 2 sends SGI 5 to everyone else (filter 1).
    assert_eq!(
        wr(&mut g, 2, GICD + 0xf00, 4, 0x0100_0005),
        VcpuMask(0b1011)
    );
    // vCPU 0 sends SGI 6 to itself (filter 2).
    assert_eq!(
        wr(&mut g, 0, GICD + 0xf00, 4, 0x0200_0006),
        VcpuMask(0b0001)
    );
    assert_eq!(
        rd(&mut g, 0, GICD + 0xf25, 1),
        0b0110,
        "SPENDSGIR5: sources 1 and 2"
    );
    assert_eq!(rd(&mut g, 0, GICD + 0xf26, 1), 0b0001);
    assert_eq!(rd(&mut g, 0, GICD + 0x200, 4), 0b110_0000);
    assert_eq!(rd(&mut g, 0, GICD + 0xf00, 4), 0, "SGIR is write-only");

    let mut lrs = FakeLrs::new(GicVersion::V2, 4);
    g.flush_lrs(0, &mut lrs);
    // One LR per SGI: SGI 5 from the lowest source first, SGI 6 from itself.
    let mut got: Vec<(u32, u8)> = (0..4)
        .map(|i| lrs.decode(i))
        .filter(|l| l.state != LrState::Invalid)
        .map(|l| (l.vintid, l.source))
        .collect();
    got.sort();
    assert_eq!(got, vec![(5, 1), (6, 0)]);
    let raw5 = (0..4)
        .map(|i| lrs.lrs[i])
        .find(|&r| r & 0x3ff == 5)
        .unwrap();
    assert_eq!((raw5 >> 10) & 7, 1, "GICH_LR.CPUID");
    assert_ne!(raw5 & (1 << 19), 0, "EOI maintenance: source 2 still waits");
    // The guest handles SGI 5 from CPU 1; the EOI maintenance brings source 2.
    let lr = lrs.ack().unwrap();
    lrs.eoi(lr.vintid);
    let lr = lrs.ack().unwrap();
    lrs.eoi(lr.vintid);
    assert!(lrs.maintenance());
    g.sync_lrs(0, &mut lrs);
    g.flush_lrs(0, &mut lrs);
    let l = lrs.decode(0);
    assert_eq!((l.vintid, l.source, l.state), (5, 2, LrState::Pending));
    g.sync_lrs(0, &mut lrs);
    // CPENDSGIR drops it.
    wr(&mut g, 0, GICD + 0xf15, 1, 0b100);
    assert_eq!(rd(&mut g, 0, GICD + 0x200, 4), 0);
    g.flush_lrs(0, &mut lrs);
    assert!(lrs.loaded().is_empty());
    g.sync_lrs(0, &mut lrs);
    // ISPENDR/ICPENDR cannot touch v2 SGIs.
    wr(&mut g, 3, GICD + 0x200, 4, 0xffff);
    assert_eq!(rd(&mut g, 3, GICD + 0x200, 4), 1 << 5);
}

#[test]
fn v2_hw_spi_lr_encoding() {
    let mut g = v2(1, 32);
    wr(&mut g, 0, GICD, 4, 1);
    wr(&mut g, 0, GICD + 0x104, 4, 1 << 15);
    wr(&mut g, 0, GICD + 0x800 + 47, 1, 1);
    wr(&mut g, 0, GICD + 0x400 + 47, 1, 0xa8);
    g.inject(47, Some(79), None);
    let mut lrs = FakeLrs::new(GicVersion::V2, 4);
    g.flush_lrs(0, &mut lrs);
    let raw = lrs.lrs[0];
    assert_eq!(raw, (1 << 31) | (1 << 28) | (0x15 << 23) | (79 << 10) | 47);
    lrs.ack();
    lrs.eoi(47);
    assert_eq!(lrs.hw_deactivated, vec![79]);
    g.sync_lrs(0, &mut lrs);
    assert!(!g.has_deliverable(0));
}

// ---- robustness ----

#[test]
fn invalid_accesses_are_errors_not_panics() {
    let mut g = v3(2, 32);
    assert_eq!(
        g.mmio_read(0, GICD + 2, 4),
        Err(VgicError::BadAccess {
            ipa: GICD + 2,
            size: 4
        })
    );
    assert!(g.mmio_read(0, GICD, 3).is_err());
    assert!(g.mmio_read(0, GICD, 8).is_err(), "CTLR is 32-bit");
    assert!(
        g.mmio_write(0, GICD + 0x100, 1, 1).is_err(),
        "ISENABLER is 32-bit"
    );
    assert!(g.mmio_read(0, gicr(0) + 0x14, 2).is_err());
    assert_eq!(
        g.mmio_read(0, GICD - 4, 4),
        Err(VgicError::NotMapped { ipa: GICD - 4 })
    );
    assert_eq!(g.mmio_read(5, GICD, 4), Err(VgicError::BadVcpu { vcpu: 5 }));
    assert!(g.inject(1020, None, None).is_empty());
    assert!(g.inject(5000, None, Some(0)).is_empty());
    assert!(g.inject(20, None, Some(7)).is_empty());
    assert!(
        g.inject(3, None, Some(0)).is_empty(),
        "SGIs are not injected"
    );
    let mut lrs = FakeLrs::new(GicVersion::V3, 4);
    g.flush_lrs(9, &mut lrs);
    g.sync_lrs(9, &mut lrs);
    assert!(VgicError::BadVcpu { vcpu: 5 }
        .to_string()
        .contains("no vCPU 5"));
}

#[test]
fn every_offset_and_size_is_handled() {
    // Sweep both GIC models' whole frames with every size and value pattern.
    for (mut g, frames) in [
        (v3(3, 64), vec![(GICD, 0x1_0000), (GICR, 3 * GICR_STRIDE)]),
        (v2(3, 64), vec![(GICD, 0x1000)]),
    ] {
        let mut lrs = FakeLrs::new(g.config().version, 4);
        for (base, len) in frames {
            for off in (0..len).step_by(4) {
                for size in [1u8, 2, 4, 8] {
                    let ipa = base + off;
                    let _ = g.mmio_read(off as usize % 3, ipa, size);
                    let _ = g.mmio_write(off as usize % 3, ipa, size, 0xffff_ffff_ffff_ffff);
                }
            }
        }
        for v in 0..3 {
            g.flush_lrs(v, &mut lrs);
            g.sync_lrs(v, &mut lrs);
        }
    }
}

#[test]
fn try_new_rejects_what_new_would_clamp() {
    let ok = VgicConfig {
        version: GicVersion::V3,
        nr_vcpus: 4,
        nr_spis: 64,
        dist_base: GICD,
        redist_base: GICR,
    };
    assert!(Vgic::try_new(ok).is_ok());
    assert!(Vgic::try_new(VgicConfig { nr_vcpus: 0, ..ok }).is_err());
    assert!(Vgic::try_new(VgicConfig { nr_vcpus: 65, ..ok }).is_err());
    assert!(Vgic::try_new(VgicConfig {
        version: GicVersion::V2,
        nr_vcpus: 9,
        ..ok
    })
    .is_err());
    assert!(Vgic::try_new(VgicConfig {
        nr_spis: 2000,
        ..ok
    })
    .is_err());
    assert!(Vgic::try_new(VgicConfig {
        redist_base: GICD,
        ..ok
    })
    .is_err());
    assert!(Vgic::try_new(VgicConfig {
        dist_base: GICD + 0x100,
        ..ok
    })
    .is_err());
    let g = Vgic::new(VgicConfig {
        nr_vcpus: 100,
        nr_spis: 5000,
        ..ok
    });
    assert_eq!((g.config().nr_vcpus, g.config().nr_spis), (64, 988));
    let mut g = g;
    assert_eq!(rd(&mut g, 0, GICD + 4, 4) & 0x1f, 31, "INTIDs up to 1019");
    wr(&mut g, 0, GICD + 0x100 + 31 * 4, 4, 0xffff_ffff);
    assert_eq!(
        rd(&mut g, 0, GICD + 0x100 + 31 * 4, 4),
        0x0fff_ffff,
        "1020..1023 reserved"
    );
    wr(&mut g, 0, GICD + 0x6000 + 8 * 1019, 8, 5);
    assert_eq!(rd(&mut g, 0, GICD + 0x6000 + 8 * 1019, 8), 5);
}

// ---- scripted Linux boots ----

/// Linux 6.1 `irq-gic-v3.c` boot on a 2-vCPU VM, access by access: probe, distributor
/// init, per-CPU redistributor init, the arch timer PPI, a device SPI moved to CPU 1, an
/// IPI; then the interrupts must come out of the right list registers.
#[test]
fn linux_gicv3_boot_sequence() {
    let mut g = v3(2, 64);
    // gic_validate_dist_version, gic_init_bases.
    assert_eq!(rd(&mut g, 0, GICD + 0xffe8, 4) & 0xf0, 0x30);
    let typer = rd(&mut g, 0, GICD + 0x4, 4);
    let lines = (((typer & 0x1f) + 1) * 32).min(1020);
    assert_eq!(lines, 96);
    assert_eq!(typer & (1 << 26), 0, "no RSS: SGI targets are Aff0 0..15");
    let _iidr = rd(&mut g, 0, GICD + 0x8, 4);
    assert_eq!(rd(&mut g, 0, GICD + 0xc, 4), 0, "TYPER2");
    // gic_update_rdist_properties: walk the redistributors until Last.
    assert_eq!(rd(&mut g, 0, GICR + 0xffe8, 4) & 0xf0, 0x30);
    let mut ptr = GICR;
    let mut found = 0;
    loop {
        let t = rd(&mut g, 0, ptr + 0x8, 8);
        let _ctlr = rd(&mut g, 0, ptr, 4);
        assert_eq!((t >> 27) & 0x1f, 0, "16 PPIs");
        assert_eq!(t & 0b11, 0, "no (v)LPIs: no extra frames");
        found += 1;
        ptr += 0x2_0000;
        if t & (1 << 4) != 0 {
            break;
        }
        assert!(found < 64, "Last never set");
    }
    assert_eq!(found, 2);
    // gic_dist_init.
    wr(&mut g, 0, GICD, 4, 0);
    assert_eq!(rd(&mut g, 0, GICD, 4) & (1 << 31), 0, "RWP");
    for i in (32..lines).step_by(32) {
        wr(&mut g, 0, GICD + 0x80 + i / 8, 4, 0xffff_ffff);
    }
    for i in (32..lines).step_by(16) {
        wr(&mut g, 0, GICD + 0xc00 + i / 4, 4, 0);
    }
    for i in (32..lines).step_by(4) {
        wr(&mut g, 0, GICD + 0x400 + i, 4, 0xa0a0_a0a0);
    }
    for i in (32..lines).step_by(32) {
        wr(&mut g, 0, GICD + 0x380 + i / 8, 4, 0xffff_ffff);
        wr(&mut g, 0, GICD + 0x180 + i / 8, 4, 0xffff_ffff);
    }
    assert_eq!(rd(&mut g, 0, GICD, 4) & (1 << 31), 0);
    wr(&mut g, 0, GICD, 4, 0x10 | 0x2 | 0x1);
    assert_eq!(rd(&mut g, 0, GICD, 4) & (1 << 31), 0);
    assert_ne!(
        rd(&mut g, 0, GICD, 4) & (1 << 6),
        0,
        "DS: security disabled"
    );
    for i in 32..lines {
        wr(&mut g, 0, GICD + 0x6000 + i * 8, 8, vcpu_affinity(0));
    }

    // gic_cpu_init on each CPU as it comes up (CPU 1 via PSCI CPU_ON).
    let cpu_init = |g: &mut Vgic, cpu: usize| {
        // gic_populate_rdist: find the frame whose TYPER affinity matches MPIDR.
        let aff = vmpidr(cpu) & 0xff_ffff;
        let mut rd_base = None;
        for k in 0..2u64 {
            let t = rd(g, cpu, GICR + k * 0x2_0000 + 8, 8);
            if t >> 32 == aff {
                rd_base = Some(GICR + k * 0x2_0000);
            }
        }
        let rbase = rd_base.expect("redistributor for this MPIDR");
        // gic_enable_redist(true).
        let w = rd(g, cpu, rbase + 0x14, 4);
        wr(g, cpu, rbase + 0x14, 4, w & !0x2);
        let mut polls = 0;
        while rd(g, cpu, rbase + 0x14, 4) & 0x4 != 0 {
            polls += 1;
            assert!(polls < 10, "ChildrenAsleep never clears");
        }
        let sgi = rbase + SGI;
        wr(g, cpu, sgi + 0x80, 4, 0xffff_ffff);
        // gic_cpu_config.
        wr(g, cpu, sgi + 0x380, 4, 0xffff_ffff);
        wr(g, cpu, sgi + 0x180, 4, 0xffff_ffff);
        assert_eq!(rd(g, cpu, rbase, 4) & (1 << 3), 0, "GICR RWP");
        for i in (0..32).step_by(4) {
            wr(g, cpu, sgi + 0x400 + i, 4, 0xa0a0_a0a0);
        }
        // IPIs 0..7 requested per CPU: enable_percpu_irq -> gic_unmask_irq.
        for ipi in 0..8 {
            wr(g, cpu, sgi + 0x100, 4, 1 << ipi);
        }
        // Arch timer (PPI 27, level): gic_set_type, then unmask.
        let cfg = rd(g, cpu, sgi + 0xc04, 4);
        wr(g, cpu, sgi + 0xc04, 4, cfg & !(2 << ((27 - 16) * 2)));
        wr(g, cpu, sgi + 0x100, 4, 1 << 27);
    };
    cpu_init(&mut g, 0);
    cpu_init(&mut g, 1);

    // A level-triggered device SPI (INTID 33): set type, move to CPU 1, unmask.
    let cfg = rd(&mut g, 0, GICD + 0xc08, 4);
    wr(&mut g, 0, GICD + 0xc08, 4, cfg & !(2 << 2));
    assert_eq!(rd(&mut g, 0, GICD + 0x104, 4) & 0b10, 0, "peek ISENABLER");
    wr(&mut g, 0, GICD + 0x6000 + 33 * 8, 8, vcpu_affinity(1));
    wr(&mut g, 0, GICD + 0x104, 4, 0b10);

    // Run: the timer fires on CPU 0, the device and an IPI from CPU 0 on CPU 1.
    assert_eq!(g.inject(27, Some(27), Some(0)), VcpuMask::single(0));
    assert_eq!(g.inject(33, None, None), VcpuMask::single(1));
    // gic_ipi_send_mask to CPU 1: cluster 0, tlist bit 1, IPI 1 (reschedule).
    assert_eq!(g.write_sgi1r(0, (1 << 24) | 0b10), VcpuMask::single(1));

    let mut l0 = FakeLrs::new(GicVersion::V3, 4);
    g.flush_lrs(0, &mut l0);
    let lr = l0.decode(0);
    assert_eq!(
        (lr.vintid, lr.pintid, lr.priority, lr.group1),
        (27, Some(27), 0xa0, true)
    );
    assert_eq!(l0.loaded().len(), 1);
    let mut l1 = FakeLrs::new(GicVersion::V3, 4);
    g.flush_lrs(1, &mut l1);
    let mut got: Vec<u32> = l1.loaded().iter().map(|l| l.0).collect();
    got.sort();
    assert_eq!(got, vec![1, 33]);
    // Equal priorities: the lower INTID is taken first.
    assert_eq!(l1.ack().unwrap().vintid, 1);
    l1.eoi(1);
    assert_eq!(l1.ack().unwrap().vintid, 33);
    l1.eoi(33);
    g.sync_lrs(1, &mut l1);
    g.sync_lrs(0, &mut l0);
    assert!(!g.has_deliverable(1));
}

/// Linux `irq-gic.c` (GICv2) boot on a 2-vCPU VM and an IPI through GICD_SGIR.
#[test]
fn linux_gicv2_boot_sequence() {
    let mut g = v2(2, 64);
    let typer = rd(&mut g, 0, GICD + 0x4, 4);
    let lines = (((typer & 0x1f) + 1) * 32).min(1020);
    assert_eq!(lines, 96);
    // gic_dist_init: disable, learn our CPU mask from the banked ITARGETSR, target all SPIs.
    wr(&mut g, 0, GICD, 4, 0);
    let mut mask = 0;
    for i in (0..32).step_by(4) {
        mask |= rd(&mut g, 0, GICD + 0x800 + i, 4);
        mask |= mask >> 16;
        mask |= mask >> 8;
    }
    let mask = mask & 0xff;
    assert_eq!(mask, 1);
    for i in (32..lines).step_by(4) {
        wr(&mut g, 0, GICD + 0x800 + i, 4, mask * 0x0101_0101);
    }
    for i in (32..lines).step_by(16) {
        wr(&mut g, 0, GICD + 0xc00 + i / 4, 4, 0);
    }
    for i in (32..lines).step_by(4) {
        wr(&mut g, 0, GICD + 0x400 + i, 4, 0xa0a0_a0a0);
    }
    for i in (32..lines).step_by(32) {
        wr(&mut g, 0, GICD + 0x380 + i / 8, 4, 0xffff_ffff);
        wr(&mut g, 0, GICD + 0x180 + i / 8, 4, 0xffff_ffff);
    }
    wr(&mut g, 0, GICD, 4, 1);
    // gic_cpu_init / gic_cpu_config on both CPUs (banked registers).
    for cpu in 0..2 {
        wr(&mut g, cpu, GICD + 0x380, 4, 0xffff_ffff);
        wr(&mut g, cpu, GICD + 0x180, 4, 0xffff_0000);
        wr(&mut g, cpu, GICD + 0x100, 4, 0x0000_ffff);
        for i in (0..32).step_by(4) {
            wr(&mut g, cpu, GICD + 0x400 + i, 4, 0xa0a0_a0a0);
        }
        wr(&mut g, cpu, GICD + 0x100, 4, 1 << 27);
    }
    // Device SPI 40 moved to CPU 1 and unmasked.
    wr(&mut g, 0, GICD + 0x800 + 40, 1, 0b10);
    wr(&mut g, 0, GICD + 0x104, 4, 1 << 8);

    // IPI 2 from CPU 1 to CPU 0 (target list), and the device.
    assert_eq!(
        wr(&mut g, 1, GICD + 0xf00, 4, (1 << 16) | 2),
        VcpuMask::single(0)
    );
    assert_eq!(g.inject(40, None, None), VcpuMask::single(1));
    assert_eq!(g.inject(27, Some(27), Some(0)), VcpuMask::single(0));

    let mut l0 = FakeLrs::new(GicVersion::V2, 4);
    g.flush_lrs(0, &mut l0);
    let mut got: Vec<(u32, u8, Option<u32>)> = (0..4)
        .map(|i| l0.decode(i))
        .filter(|l| l.state != LrState::Invalid)
        .map(|l| (l.vintid, l.source, l.pintid))
        .collect();
    got.sort();
    assert_eq!(got, vec![(2, 1, None), (27, 0, Some(27))]);
    let mut l1 = FakeLrs::new(GicVersion::V2, 4);
    assert_eq!(drain(&mut g, 1, &mut l1), vec![40]);
    g.sync_lrs(0, &mut l0);
}

// ---- level-sensitive device lines ----

/// SPI `id` enabled at 0x80, level-sensitive, on vCPU 0.
fn level_spi(g: &mut Vgic, id: u32) {
    enable_spi(g, id, 0x80);
    let reg = GICD + 0xc00 + u64::from(id / 16) * 4;
    let cfg = rd(g, 0, reg, 4);
    wr(g, 0, reg, 4, cfg & !(2 << ((id % 16) * 2)));
}

#[test]
fn level_line_is_resampled_at_eoi() {
    let mut g = v3(1, 32);
    let mut lrs = FakeLrs::new(GicVersion::V3, 4);
    level_spi(&mut g, 40);
    assert_eq!(g.set_level(40, None, true), VcpuMask::single(0));
    g.flush_lrs(0, &mut lrs);
    assert_ne!(
        lrs.lrs[0] & (1 << 41),
        0,
        "EOI maintenance requested to re-sample"
    );
    assert_eq!(lrs.ack().unwrap().vintid, 40);
    lrs.eoi(40);
    assert!(lrs.maintenance(), "EOI of a still-high line exits");
    g.sync_lrs(0, &mut lrs);
    g.flush_lrs(0, &mut lrs);
    assert_eq!(
        lrs.loaded(),
        vec![(40, LrState::Pending)],
        "line still high"
    );
    g.sync_lrs(0, &mut lrs);
    // The device deasserts (the guest serviced it): nothing more.
    g.set_level(40, None, false);
    assert_eq!(rd(&mut g, 0, GICD + 0x204, 4), 0);
    g.flush_lrs(0, &mut lrs);
    assert!(lrs.loaded().is_empty());
    g.sync_lrs(0, &mut lrs);
}

#[test]
fn level_line_lowered_while_loaded_is_withdrawn() {
    let mut g = v3(2, 32);
    let mut lrs = FakeLrs::new(GicVersion::V3, 4);
    level_spi(&mut g, 41);
    g.set_level(41, None, true);
    g.flush_lrs(0, &mut lrs);
    // The line drops while vCPU 0 runs with it loaded but not yet taken: kick it.
    assert_eq!(g.set_level(41, None, false), VcpuMask::single(0));
    g.sync_lrs(0, &mut lrs);
    g.flush_lrs(0, &mut lrs);
    assert!(lrs.loaded().is_empty());
    g.sync_lrs(0, &mut lrs);
    // ICPENDR cannot clear a level interrupt whose line is high.
    g.set_level(41, None, true);
    wr(&mut g, 0, GICD + 0x284, 4, 1 << 9);
    assert_eq!(rd(&mut g, 0, GICD + 0x204, 4), 1 << 9);
    assert!(
        g.set_level(3, Some(0), true).is_empty(),
        "SGIs have no line"
    );
    assert!(
        g.set_level(20, None, true).is_empty(),
        "a PPI needs its vCPU"
    );
}

#[test]
fn edge_line_latches_rising_edges_only() {
    let mut g = v3(1, 32);
    let mut lrs = FakeLrs::new(GicVersion::V3, 4);
    enable_spi(&mut g, 42, 0x80);
    wr(&mut g, 0, GICD + 0xc08, 4, 2 << 20);
    g.set_level(42, None, true);
    g.set_level(42, None, true); // no new edge
    assert_eq!(drain(&mut g, 0, &mut lrs), vec![42]);
    g.set_level(42, None, false);
    assert_eq!(rd(&mut g, 0, GICD + 0x204, 4), 0);
    g.set_level(42, None, true);
    assert_eq!(drain(&mut g, 0, &mut lrs), vec![42]);
}

// ---- randomized model check ----

/// xorshift64: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random injections, routing changes, entries, exits, acks and EOIs on 3 vCPUs with 4 LRs
/// each, for both GIC versions. Invariants: the guest never acknowledges an interrupt more
/// often than it was injected (an edge injected while the previous one sits pending in a
/// list register may be delivered twice, as with KVM: the hypervisor cannot tell whether
/// the guest took the first one already), and after draining every injection has been
/// followed by a delivery.
#[test]
fn random_schedules_lose_and_invent_nothing() {
    for version in [GicVersion::V3, GicVersion::V2] {
        for seed in 1..40u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut g = match version {
                GicVersion::V3 => v3(3, 32),
                GicVersion::V2 => v2(3, 32),
            };
            wr(&mut g, 0, GICD, 4, 0x3);
            for id in 32..64u32 {
                wr(&mut g, 0, GICD + 0x400 + u64::from(id), 1, rng.below(256));
                wr(
                    &mut g,
                    0,
                    GICD + 0x100 + u64::from(id / 32) * 4,
                    4,
                    1 << (id % 32),
                );
                route(&mut g, version, id, rng.below(3) as usize);
            }
            let mut lrs: Vec<FakeLrs> = (0..3).map(|_| FakeLrs::new(version, 4)).collect();
            let mut running = [false; 3];
            // Outstanding injections per SPI (edge: merged while pending, so a bool).
            let mut owed = [false; 64];
            let mut injected = [0u32; 64];
            let mut acked = [0u32; 64];
            let mut in_service = [false; 64];
            for _ in 0..400 {
                let v = rng.below(3) as usize;
                match rng.below(6) {
                    0 => {
                        let id = 32 + rng.below(32) as u32;
                        g.inject(id, None, None);
                        owed[id as usize] = true;
                        injected[id as usize] += 1;
                    }
                    1 => {
                        let id = 32 + rng.below(32) as u32;
                        route(&mut g, version, id, rng.below(3) as usize);
                    }
                    2 if !running[v] => {
                        g.flush_lrs(v, &mut lrs[v]);
                        running[v] = true;
                    }
                    3 if running[v] => {
                        g.sync_lrs(v, &mut lrs[v]);
                        running[v] = false;
                    }
                    4 if running[v] => {
                        if let Some(lr) = lrs[v].ack() {
                            let id = lr.vintid as usize;
                            acked[id] += 1;
                            assert!(acked[id] <= injected[id], "seed {seed}: {id} invented");
                            owed[id] = false;
                            in_service[id] = true;
                        }
                    }
                    5 if running[v] => {
                        let active: Vec<u32> = lrs[v]
                            .loaded()
                            .iter()
                            .filter(|l| l.1.active())
                            .map(|l| l.0)
                            .collect();
                        if let Some(&id) = active.first() {
                            lrs[v].eoi(id);
                            in_service[id as usize] = false;
                        }
                    }
                    _ => {}
                }
            }
            // Drain: run every vCPU until nothing is left.
            for v in 0..3 {
                if running[v] {
                    g.sync_lrs(v, &mut lrs[v]);
                }
            }
            for _ in 0..4 {
                for v in 0..3 {
                    let mut l = FakeLrs::new(version, 4);
                    // Finish what the guest had in service there first.
                    for id in drain(&mut g, v, &mut l) {
                        owed[id as usize] = false;
                        acked[id as usize] += 1;
                        assert!(acked[id as usize] <= injected[id as usize], "{id} invented");
                    }
                    let _ = g.take_deferred_kicks();
                }
            }
            if let Some(id) = owed.iter().position(|&o| o) {
                panic!("{version:?} seed {seed}: SPI {id} never delivered");
            }
            for v in 0..3 {
                assert!(
                    !g.has_deliverable(v),
                    "seed {seed}: vCPU {v} still has work"
                );
            }
        }
    }
}

fn route(g: &mut Vgic, version: GicVersion, id: u32, vcpu: usize) {
    match version {
        GicVersion::V3 => {
            wr(
                g,
                0,
                GICD + 0x6000 + 8 * u64::from(id),
                8,
                vcpu_affinity(vcpu),
            );
        }
        GicVersion::V2 => {
            wr(g, 0, GICD + 0x800 + u64::from(id), 1, 1 << vcpu);
        }
    }
}

#[test]
fn guest_dropping_a_hw_interrupt_releases_the_physical_one() {
    let mut g = v3(2, 32);
    let mut lrs = FakeLrs::new(GicVersion::V3, 4);
    enable_spi(&mut g, 48, 0x20);
    // Pending in the model, cleared by the guest before it is ever loaded.
    g.inject(48, Some(80), None);
    wr(&mut g, 0, GICD + 0x284, 4, 1 << 16);
    assert_eq!(g.take_hw_deactivation(), Some(80));
    assert_eq!(g.take_hw_deactivation(), None);
    // Loaded on vCPU 0, cleared by vCPU 1 before vCPU 0's guest takes it.
    g.inject(48, Some(80), None);
    g.flush_lrs(0, &mut lrs);
    wr(&mut g, 1, GICD + 0x284, 4, 1 << 16);
    assert_eq!(g.take_hw_deactivation(), None, "still in the LR");
    g.sync_lrs(0, &mut lrs);
    assert_eq!(g.take_hw_deactivation(), Some(80));
    // Taken by the guest, then deactivated through ICACTIVER instead of an EOI.
    g.inject(48, Some(80), None);
    g.flush_lrs(0, &mut lrs);
    lrs.ack();
    g.sync_lrs(0, &mut lrs);
    wr(&mut g, 0, GICD + 0x384, 4, 1 << 16);
    assert_eq!(g.take_hw_deactivation(), Some(80));
    // A software interrupt never asks for a physical deactivation.
    g.inject(49, None, None);
    wr(&mut g, 0, GICD + 0x284, 4, 1 << 17);
    assert_eq!(g.take_hw_deactivation(), None);
    // Taken and EOI'd by the guest: the HW bit did it, nothing to do.
    g.inject(48, Some(80), None);
    assert_eq!(drain(&mut g, 0, &mut lrs), vec![48]);
    assert_eq!(g.take_hw_deactivation(), None);
}

/// Host cost of the hot paths, for the record (no assertion on time):
/// `cargo test -p minos-payload --release -- --ignored --nocapture vgic_cost`.
#[test]
#[ignore]
fn vgic_cost() {
    use std::time::Instant;
    const N: u32 = 200_000;
    let mut g = v3(4, 256);
    let mut lrs = FakeLrs::new(GicVersion::V3, 4);
    for id in 32..288 {
        enable_spi(&mut g, id, (id % 200) as u8);
    }
    let t = Instant::now();
    for _ in 0..N {
        g.flush_lrs(0, &mut lrs);
        g.sync_lrs(0, &mut lrs);
    }
    let idle = t.elapsed().as_nanos() / u128::from(N);
    let t = Instant::now();
    for i in 0..N {
        g.inject(32 + i % 256, None, None);
        g.flush_lrs(0, &mut lrs);
        let lr = lrs.ack().unwrap();
        lrs.eoi(lr.vintid);
        g.sync_lrs(0, &mut lrs);
    }
    let one = t.elapsed().as_nanos() / u128::from(N);
    for id in 32..42 {
        g.inject(id, None, None);
    }
    let t = Instant::now();
    for _ in 0..N {
        g.flush_lrs(0, &mut lrs);
        g.sync_lrs(0, &mut lrs);
    }
    let ten = t.elapsed().as_nanos() / u128::from(N);
    let t = Instant::now();
    for _ in 0..N {
        std::hint::black_box(g.mmio_read(0, GICD + 8, 4).unwrap());
    }
    let iidr = t.elapsed().as_nanos() / u128::from(N);
    let t = Instant::now();
    for _ in 0..N {
        std::hint::black_box(g.write_sgi1r(0, (1 << 24) | 0b10));
        g.flush_lrs(1, &mut lrs);
        g.sync_lrs(1, &mut lrs);
    }
    let sgi = t.elapsed().as_nanos() / u128::from(N);
    println!("vgic cost (ns, 256 SPIs, 4 LRs): flush+sync idle {idle}, inject+flush+ack+eoi+sync {one}, flush+sync with 10 pending {ten}, GICD_IIDR read {iidr}, SGI1R+flush+sync {sgi}");
}

#[test]
fn reset_restores_power_on_state() {
    for mut g in [v3(2, 64), v2(2, 64)] {
        let v3 = g.config().version == GicVersion::V3;
        let fresh: Vec<u64> = probe_regs(&mut g, v3);
        wr(&mut g, 0, GICD, 4, 0x3);
        wr(&mut g, 0, GICD + 0x104, 4, 0xffff_ffff);
        wr(&mut g, 0, GICD + 0x420, 4, 0xa0a0_a0a0);
        if v3 {
            wr(&mut g, 0, gicr(1) + 0x14, 4, 0);
            wr(&mut g, 0, GICD + 0x6000 + 8 * 40, 8, 1);
            g.write_sgi1r(0, 0b10);
        } else {
            wr(&mut g, 0, GICD + 0x828, 4, 0x0202_0202);
            wr(&mut g, 1, GICD + 0xf00, 4, 0x0001_0003);
        }
        g.inject(40, Some(70), None);
        assert_ne!(probe_regs(&mut g, v3), fresh);
        g.reset();
        assert_eq!(probe_regs(&mut g, v3), fresh);
        assert!(!g.has_deliverable(0) && !g.has_deliverable(1));
    }
}

/// A handful of registers that every test above changes.
fn probe_regs(g: &mut Vgic, v3: bool) -> Vec<u64> {
    let mut v = vec![
        rd(g, 0, GICD, 4),
        rd(g, 0, GICD + 0x104, 4),
        rd(g, 0, GICD + 0x204, 4),
        rd(g, 0, GICD + 0x420, 4),
    ];
    if v3 {
        v.push(rd(g, 0, gicr(1) + 0x14, 4));
        v.push(rd(g, 0, GICD + 0x6000 + 8 * 40, 8));
        v.push(rd(g, 0, gicr(1) + SGI + 0x200, 4));
    } else {
        v.push(rd(g, 0, GICD + 0x828, 4));
        v.push(rd(g, 0, GICD + 0xf20, 4));
        v.push(rd(g, 0, GICD + 0x200, 4));
    }
    v
}

#[test]
fn random_mmio_never_panics_and_stays_consistent() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for mut g in [v3(3, 96), v2(3, 96)] {
        let version = g.config().version;
        let mut lrs: Vec<FakeLrs> = (0..3).map(|_| FakeLrs::new(version, 4)).collect();
        let span = if version == GicVersion::V3 {
            0x1_0000 + 3 * GICR_STRIDE
        } else {
            0x1000
        };
        for _ in 0..20_000 {
            let v = rng.below(3) as usize;
            let size = [1u8, 2, 4, 8][rng.below(4) as usize];
            // Mostly the interesting low registers, sometimes anywhere.
            let off = if rng.below(4) == 0 {
                rng.below(span)
            } else {
                rng.below(0x1000)
            };
            let ipa = if version == GicVersion::V3 && off >= 0x1_0000 {
                GICR + off - 0x1_0000
            } else {
                GICD + off
            };
            let _ = g.mmio_read(v, ipa, size);
            let _ = g.mmio_write(v, ipa, size, rng.next());
            match rng.below(8) {
                0 => {
                    g.inject(16 + rng.below(112) as u32, None, Some(v));
                }
                1 => {
                    g.set_level(32 + rng.below(96) as u32, None, rng.below(2) == 0);
                }
                2 => {
                    g.write_sgi1r(v, rng.next());
                }
                3 => {
                    g.flush_lrs(v, &mut lrs[v]);
                    if let Some(lr) = lrs[v].ack() {
                        lrs[v].eoi(lr.vintid);
                    }
                    g.sync_lrs(v, &mut lrs[v]);
                }
                _ => {}
            }
            while g.take_hw_deactivation().is_some() {}
        }
        // The SPI bookkeeping agrees with the interrupts' state.
        for s in 0..g.spis.len() {
            let live = g.spi_live[s / 64] & (1 << (s % 64)) != 0;
            assert_eq!(live, g.spis[s].live(), "{version:?} SPI {}", s + 32);
            assert!(!g.spis[s].in_lr, "nothing in flight after sync");
        }
    }
}

// ---- a real Linux boot, replayed ----

/// Every GIC access of a Linux 6.1 boot on QEMU's GICv3 and GICv2 (see the files' headers).
const LINUX_BOOT_OPS: &str = include_str!("testdata/linux-6.1-gicv3-boot.ops");
const LINUX_V2_UP_BOOT_OPS: &str = include_str!("testdata/linux-6.1-gicv2-up-boot.ops");

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or_else(|_| panic!("bad hex {s}"))
}

/// Bits of a read where this vGIC must agree with QEMU's GIC: all of them except where the
/// two implementations legitimately differ (identification, LPI support).
fn must_agree(version: GicVersion, dist: bool, off: u64) -> u64 {
    if version == GicVersion::V2 {
        return if off == 0x8 { 0 } else { u64::MAX }; // GICD_IIDR
    }
    match (dist, off) {
        (true, 0x4) => 0x1f, // GICD_TYPER: ITLinesNumber (QEMU also has LPIs, 16 ID bits)
        (true, 0x8) | (false, 0x4) => 0, // GICD_IIDR / GICR_IIDR
        (false, 0x0) => (1 << 3) | (1 << 31), // GICR_CTLR: RWP, UWP (QEMU also shows CES)
        (false, 0x8) => 0xffff_ffff_00ff_ff10, // GICR_TYPER: affinity, CPU number, Last
        _ => u64::MAX,
    }
}

/// Replays `ops` on `g` (sized as QEMU virt's GIC): every access must succeed, every read
/// must return what QEMU's GIC returned to Linux (within [`must_agree`]), and every SGI
/// must reach exactly its targets' list registers. Returns (reads, writes, SGIs).
fn replay_linux(ops: &str, mut g: Vgic) -> (usize, usize, usize) {
    let version = g.config().version;
    let nr = g.config().nr_vcpus;
    let mut lrs: Vec<FakeLrs> = (0..nr).map(|_| FakeLrs::new(version, 4)).collect();
    let (mut reads, mut writes, mut sgis) = (0, 0, 0);
    for (n, line) in ops.lines().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.is_empty() || f[0].starts_with('#') {
            continue;
        }
        let at = |what: &str| format!("line {}: {line}: {what}", n + 1);
        if f[0] == "sgi" {
            let sender = vcpu_of_affinity(hex(f[1]), nr).expect("sender is a vCPU");
            let (intid, irm, aff, list) = (hex(f[2]), hex(f[3]), hex(f[4]), hex(f[5]));
            let val = list
                | ((aff & 0xff) << 16)
                | (intid << 24)
                | (((aff >> 8) & 0xff) << 32)
                | (irm << 40)
                | ((aff >> 16) << 48);
            let kick = g.write_sgi1r(sender, val);
            let all = (1u64 << nr) - 1;
            let want = if irm == 1 {
                VcpuMask(all & !(1 << sender))
            } else {
                VcpuMask(list & all)
            };
            assert_eq!(kick, want, "{}", at("SGI targets"));
            for t in kick.iter() {
                assert_eq!(
                    drain(&mut g, t, &mut lrs[t]),
                    vec![intid as u32],
                    "{}",
                    at("delivery")
                );
            }
            sgis += 1;
            continue;
        }
        let (vcpu, base, dist) = match f[1] {
            "D" => (0, GICD, true),
            r => {
                let cpu = hex(r.trim_start_matches('R')) as usize;
                (cpu, gicr(cpu), false)
            }
        };
        let off = hex(f[2]);
        let size: u8 = f[3].parse().expect("size");
        match f[0] {
            "rd" => {
                let ours = g
                    .mmio_read(vcpu, base + off, size)
                    .unwrap_or_else(|e| panic!("{}", at(&e.to_string())));
                let mask = must_agree(version, dist, off);
                assert_eq!(
                    ours & mask,
                    hex(f[4]) & mask,
                    "{}",
                    at(&format!("we read {ours:#x}"))
                );
                reads += 1;
            }
            "wr" => {
                g.mmio_write(vcpu, base + off, size, hex(f[4]))
                    .unwrap_or_else(|e| panic!("{}", at(&e.to_string())));
                writes += 1;
            }
            // QEMU refused these (reserved registers): here they are RAZ/WI.
            "bad" => assert_eq!(g.mmio_read(vcpu, base + off, size), Ok(0), "{}", at("RAZ")),
            "badwr" => assert!(
                g.mmio_write(vcpu, base + off, size, hex(f[4])).is_ok(),
                "{}",
                at("WI")
            ),
            other => panic!("{}", at(&format!("unknown operation {other}"))),
        }
    }
    // What Linux left configured: distributor on (v3: affinity routing, every CPU awake).
    if version == GicVersion::V3 {
        assert_eq!(rd(&mut g, 0, GICD, 4) & 0x13, 0x13);
        for v in 0..nr {
            assert_eq!(rd(&mut g, v, gicr(v) + 0x14, 4), 0);
        }
    } else {
        assert_eq!(rd(&mut g, 0, GICD, 4) & 1, 1);
    }
    (reads, writes, sgis)
}

/// The recorded trace, or the one in `$var` (scripts/tests.d/51-vgic-linux-trace records
/// a fresh one).
fn trace(var: &str, recorded: &str) -> String {
    match std::env::var(var) {
        Ok(path) => std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")),
        Err(_) => recorded.to_string(),
    }
}

#[test]
fn linux_boot_trace_replays() {
    let ops = trace("VGIC_LINUX_TRACE", LINUX_BOOT_OPS);
    // QEMU virt: 2 CPUs as recorded, GICD_TYPER.ITLinesNumber 7 = 224 SPIs.
    let (reads, writes, sgis) = replay_linux(&ops, v3(2, 224));
    println!("GICv3: replayed {reads} reads, {writes} writes, {sgis} SGIs");
    assert!(
        reads > 20 && writes > 300 && sgis > 10,
        "a whole boot: {reads}/{writes}/{sgis}"
    );
}

#[test]
fn linux_gicv2_up_boot_trace_replays() {
    let ops = trace("VGIC_LINUX_TRACE_V2", LINUX_V2_UP_BOOT_OPS);
    // QEMU virt GICv2: ITLinesNumber 8 = 256 SPIs, one CPU.
    let (reads, writes, _) = replay_linux(&ops, v2(1, 256));
    println!("GICv2: replayed {reads} reads, {writes} writes");
    assert!(reads > 10 && writes > 150, "a whole boot: {reads}/{writes}");
}

#[test]
fn gicv2_uniprocessor_itargetsr_raz_wi() {
    let mut g = v2(1, 32);
    assert_eq!(rd(&mut g, 0, GICD + 0x800, 4), 0);
    wr(&mut g, 0, GICD + 0x820, 4, 0x0101_0101);
    assert_eq!(rd(&mut g, 0, GICD + 0x820, 4), 0);
    // Every SPI goes to the one CPU anyway.
    wr(&mut g, 0, GICD, 4, 1);
    wr(&mut g, 0, GICD + 0x104, 4, 1 << 2);
    assert_eq!(g.inject(34, None, None), VcpuMask::single(0));
}

/// Random SGIs between 3 vCPUs (ICC_SGI1R_EL1 target lists and IRM on v3; GICD_SGIR lists
/// and filters on v2) interleaved with entries, exits, acks and EOIs. Per (target, SGI,
/// source): never more deliveries than sends, and after draining none left undelivered.
/// On GICv2 each source is its own pending state, delivered with its CPU id.
#[test]
fn random_sgis_lose_and_invent_nothing() {
    for version in [GicVersion::V3, GicVersion::V2] {
        for seed in 1..30u64 {
            let mut rng = Rng(seed.wrapping_mul(0xd1b5_4a32_d192_ed03));
            let mut g = match version {
                GicVersion::V3 => v3(3, 32),
                GicVersion::V2 => v2(3, 32),
            };
            wr(&mut g, 0, GICD, 4, 0x3);
            for v in 0..3 {
                let base = match version {
                    GicVersion::V3 => gicr(v) + SGI,
                    GicVersion::V2 => GICD,
                };
                wr(&mut g, v, base + 0x80, 4, 0xffff);
                wr(&mut g, v, base + 0x100, 4, 0xffff);
                for sgi in 0..16 {
                    wr(&mut g, v, base + 0x400 + sgi, 1, rng.below(256));
                }
            }
            let v2 = version == GicVersion::V2;
            let key = |t: usize, sgi: u32, src: usize| (t * 16 + sgi as usize) * 8 + src;
            let (mut sent, mut got, mut owed) = ([0u32; 384], [0u32; 384], [false; 384]);
            let mut lrs: Vec<FakeLrs> = (0..3).map(|_| FakeLrs::new(version, 4)).collect();
            let mut running = [false; 3];
            let take = |lr: super::lr::Lr,
                        t: usize,
                        got: &mut [u32; 384],
                        sent: &[u32; 384],
                        owed: &mut [bool; 384]| {
                let src = if v2 { usize::from(lr.source) } else { 0 };
                let k = key(t, lr.vintid, src);
                got[k] += 1;
                assert!(
                    got[k] <= sent[k],
                    "{version:?} seed {seed}: SGI {} on {t} from {src} invented",
                    lr.vintid
                );
                owed[k] = false;
            };
            for _ in 0..500 {
                let v = rng.below(3) as usize;
                match rng.below(6) {
                    0 => {
                        let sgi = rng.below(16) as u32;
                        let targets = if v2 {
                            let filter = rng.below(3) as u32;
                            let list = rng.below(8) as u32;
                            let val = (filter << 24) | (list << 16) | sgi;
                            wr(&mut g, v, GICD + 0xf00, 4, val.into());
                            match filter {
                                0 => VcpuMask(u64::from(list)),
                                1 => VcpuMask(0b111 & !(1 << v)),
                                _ => VcpuMask::single(v),
                            }
                        } else {
                            let irm = rng.below(4) == 0;
                            let list = rng.below(8);
                            let val = (u64::from(irm) << 40) | (u64::from(sgi) << 24) | list;
                            let kick = g.write_sgi1r(v, val);
                            let want = if irm {
                                VcpuMask(0b111 & !(1 << v))
                            } else {
                                VcpuMask(list)
                            };
                            assert_eq!(kick, want, "seed {seed}");
                            want
                        };
                        for t in targets.iter() {
                            let k = key(t, sgi, if v2 { v } else { 0 });
                            sent[k] += 1;
                            owed[k] = true;
                        }
                    }
                    1 | 2 if !running[v] => {
                        g.flush_lrs(v, &mut lrs[v]);
                        running[v] = true;
                    }
                    3 if running[v] => {
                        g.sync_lrs(v, &mut lrs[v]);
                        running[v] = false;
                    }
                    4 if running[v] => {
                        if let Some(lr) = lrs[v].ack() {
                            take(lr, v, &mut got, &sent, &mut owed);
                        }
                    }
                    5 if running[v] => {
                        let active = lrs[v].loaded().iter().find(|l| l.1.active()).map(|l| l.0);
                        if let Some(id) = active {
                            lrs[v].eoi(id);
                        }
                    }
                    _ => {}
                }
            }
            for v in 0..3 {
                if running[v] {
                    g.sync_lrs(v, &mut lrs[v]);
                }
                let mut l = FakeLrs::new(version, 4);
                for lr in drain_lrs(&mut g, v, &mut l) {
                    take(lr, v, &mut got, &sent, &mut owed);
                }
            }
            if let Some(k) = owed.iter().position(|&o| o) {
                panic!(
                    "{version:?} seed {seed}: SGI {} to vCPU {} from {} never delivered",
                    (k / 8) % 16,
                    k / 128,
                    k % 8
                );
            }
        }
    }
}

/// The register properties kvm-unit-tests' `gic mmio` and `irq` groups check on a virtual
/// GIC (read-only identification, full 8-bit priorities, byte access, RAZ/WI beyond the
/// implemented INTIDs, target masking, single security state, group enables that stick).
#[test]
fn conformance_register_properties() {
    for mut g in [v3(2, 224), v2(2, 224)] {
        let v2 = g.config().version == GicVersion::V2;
        let nr_irqs = ((rd(&mut g, 0, GICD + 4, 4) & 0x1f) + 1) * 32;
        assert_eq!(nr_irqs, 256);
        let pidr2 = if v2 { GICD + 0xfe8 } else { GICD + 0xffe8 };
        for reg in [GICD + 0x4, GICD + 0x8, pidr2] {
            let orig = rd(&mut g, 0, reg, 4);
            for pattern in [0xffff_ffff, 0xa5a5_5a5a, 0] {
                wr(&mut g, 0, reg, 4, pattern);
                assert_eq!(rd(&mut g, 0, reg, 4), orig, "{reg:#x} is read-only");
            }
        }
        let prio = GICD + 0x400;
        wr(&mut g, 0, prio + 32, 4, 0xffff_ffff);
        assert_eq!(rd(&mut g, 0, prio + 32, 4), 0xffff_ffff, "8 priority bits");
        wr(&mut g, 0, prio + nr_irqs, 4, 0xffff_ffff);
        assert_eq!(
            rd(&mut g, 0, prio + nr_irqs, 4),
            0,
            "beyond the last INTID: RAZ/WI"
        );
        wr(&mut g, 0, prio + nr_irqs - 4, 4, 0x1234_5678);
        assert_eq!(
            rd(&mut g, 0, prio + nr_irqs - 4, 4),
            0x1234_5678,
            "last SPIs"
        );
        wr(&mut g, 0, prio + 32, 4, 0xff7f_bf3f);
        assert_eq!(rd(&mut g, 0, prio + 33, 1), 0xbf, "byte read");
        wr(&mut g, 0, prio + 34, 1, 0x1f);
        assert_eq!(rd(&mut g, 0, prio + 32, 4), 0xff1f_bf3f, "byte write");
        if v2 {
            let t = GICD + 0x800;
            wr(&mut g, 0, t + 32, 4, 0xffff_ffff);
            assert_eq!(
                rd(&mut g, 0, t + 32, 4),
                0x0303_0303,
                "non-existent CPUs masked"
            );
            wr(&mut g, 0, t + 32, 4, 0x0103_020f);
            assert_eq!(rd(&mut g, 0, t + 32, 4), 0x0103_0203);
            wr(&mut g, 0, t + nr_irqs, 4, 0xffff_ffff);
            assert_eq!(rd(&mut g, 0, t + nr_irqs, 4), 0);
        } else {
            // One security state only: DS cannot be cleared.
            wr(&mut g, 0, GICD, 4, 0x0);
            assert_ne!(rd(&mut g, 0, GICD, 4) & (1 << 6), 0);
        }
        for enables in [0, 2, 1, 3] {
            wr(&mut g, 0, GICD, 4, enables | if v2 { 0 } else { 0x50 });
            assert_eq!(rd(&mut g, 0, GICD, 4) & 3, enables, "group enables stick");
        }
        // INTID 62 is bit 30 of the second register of each bank.
        let grp = GICD + 0x84;
        wr(&mut g, 0, grp, 4, 1 << 30);
        assert_eq!(rd(&mut g, 0, grp, 4), 1 << 30, "IGROUPR writable");
        // An SPI made pending by the guest fires only while enabled.
        if v2 {
            wr(&mut g, 0, GICD + 0x800 + 62, 1, 1);
        }
        wr(&mut g, 0, GICD + 0x204, 4, 1 << 30);
        assert!(!g.has_deliverable(0), "disabled SPI does not fire");
        assert_eq!(
            wr(&mut g, 0, GICD + 0x100 + 4, 4, 1 << 30),
            VcpuMask::single(0)
        );
        let mut lrs = FakeLrs::new(g.config().version, 4);
        assert_eq!(
            drain(&mut g, 0, &mut lrs),
            vec![62],
            "now enabled SPI fires"
        );
    }
}

#[test]
fn no_spis_at_all() {
    for mut g in [v3(1, 0), v2(1, 0)] {
        assert_eq!(
            rd(&mut g, 0, GICD + 4, 4) & 0x1f,
            0,
            "32 INTIDs: SGIs and PPIs only"
        );
        assert!(g.inject(32, None, None).is_empty());
        wr(&mut g, 0, GICD + 0x104, 4, 0xffff_ffff);
        assert_eq!(rd(&mut g, 0, GICD + 0x104, 4), 0);
        let mut lrs = FakeLrs::new(g.config().version, 4);
        assert!(drain(&mut g, 0, &mut lrs).is_empty());
    }
}

#[test]
fn software_deactivation_mode() {
    for mut g in [v3(1, 32), v2(1, 32)] {
        let version = g.config().version;
        g.set_software_deactivation(true);
        let mut lrs = FakeLrs::new(version, 4);
        enable_spi(&mut g, 40, 0x20);
        if version == GicVersion::V2 {
            wr(&mut g, 0, GICD, 4, 0x3);
        }
        g.inject(40, Some(72), None);
        g.flush_lrs(0, &mut lrs);
        let lr = lrs.decode(0);
        assert_eq!(
            (lr.vintid, lr.pintid, lr.eoi_maint),
            (40, None, true),
            "{version:?}"
        );
        lrs.ack();
        g.sync_lrs(0, &mut lrs);
        assert_eq!(g.take_hw_deactivation(), None, "still active in the guest");
        g.flush_lrs(0, &mut lrs);
        lrs.eoi(40);
        assert!(
            lrs.maintenance(),
            "the EOI comes back as a maintenance interrupt"
        );
        assert!(lrs.hw_deactivated.is_empty(), "no HW bit");
        g.sync_lrs(0, &mut lrs);
        assert_eq!(
            g.take_hw_deactivation(),
            Some(72),
            "the hypervisor deactivates it"
        );
        assert!(!g.has_deliverable(0));
    }
}

/// List registers that count every access: the fast paths must not touch the hardware.
struct Counting<'a> {
    lrs: &'a mut FakeLrs,
    accesses: usize,
}

impl ListRegs for Counting<'_> {
    fn count(&self) -> usize {
        self.lrs.count()
    }
    fn read(&self, i: usize) -> u64 {
        self.lrs.read(i)
    }
    fn write(&mut self, i: usize, v: u64) {
        self.accesses += 1;
        self.lrs.write(i, v);
    }
    fn elrsr(&self) -> u64 {
        self.lrs.elrsr()
    }
    fn set_underflow_irq(&mut self, on: bool) {
        self.accesses += 1;
        self.lrs.set_underflow_irq(on);
    }
}

fn flush_writes(g: &mut Vgic, vcpu: usize, lrs: &mut FakeLrs) -> usize {
    let mut c = Counting { lrs, accesses: 0 };
    g.flush_lrs(vcpu, &mut c);
    c.accesses
}

#[test]
fn flush_after_nothing_changed_touches_nothing_and_every_change_is_seen() {
    for version in [GicVersion::V3, GicVersion::V2] {
        let mut g = match version {
            GicVersion::V3 => v3(2, 64),
            GicVersion::V2 => v2(2, 64),
        };
        let mut lrs = FakeLrs::new(version, 4);
        enable_spi(&mut g, 40, 0x80);
        route(&mut g, version, 40, 0);
        // A first flush looks (the model is new), finds nothing, and the next one is free.
        assert!(flush_writes(&mut g, 0, &mut lrs) > 0);
        assert_eq!(flush_writes(&mut g, 0, &mut lrs), 0);
        g.sync_lrs(0, &mut lrs);
        rd(&mut g, 0, GICD + 4, 4);
        assert_eq!(
            flush_writes(&mut g, 0, &mut lrs),
            0,
            "{version:?}: a read changes nothing"
        );

        // An injection, an MMIO write, a level change: each makes the next flush look.
        assert!(!g.inject(40, None, None).is_empty());
        assert_eq!(drain(&mut g, 0, &mut lrs), vec![40]);
        assert_eq!(flush_writes(&mut g, 0, &mut lrs), 0);
        wr(&mut g, 1, GICD + 0x200 + 4, 4, 1 << 8); // ISPENDR1: SPI 40
        assert_eq!(drain(&mut g, 0, &mut lrs), vec![40]);
        g.set_level(40, None, true);
        g.flush_lrs(0, &mut lrs);
        assert_eq!(lrs.loaded(), vec![(40, LrState::Pending)]);
        g.set_level(40, None, false);
        g.sync_lrs(0, &mut lrs);
        g.flush_lrs(0, &mut lrs);
        assert!(
            lrs.loaded().is_empty(),
            "{version:?}: a lowered line is withdrawn"
        );
        assert_eq!(flush_writes(&mut g, 0, &mut lrs), 0);

        // A clean vCPU 1 must still see what vCPU 0's activity made pending for it.
        if version == GicVersion::V3 {
            wr(&mut g, 1, gicr(1) + SGI + 0x80, 4, 1 << 5);
            wr(&mut g, 1, gicr(1) + SGI + 0x100, 4, 1 << 5);
        } else {
            wr(&mut g, 1, GICD + 0x80, 4, 1 << 5);
            wr(&mut g, 1, GICD + 0x100, 4, 1 << 5);
        }
        assert_eq!(flush_writes(&mut g, 1, &mut lrs), 1);
        assert_eq!(flush_writes(&mut g, 1, &mut lrs), 0);
        if version == GicVersion::V3 {
            g.write_sgi1r(0, (5 << 24) | 0b10);
        } else {
            wr(&mut g, 0, GICD + 0xf00, 4, (0b10 << 16) | 5);
        }
        assert_eq!(drain(&mut g, 1, &mut lrs), vec![5]);
    }
}

#[test]
fn hw_deactivations_come_out_in_order_and_only_once() {
    let mut g = v3(1, 64);
    assert_eq!(g.take_hw_deactivation(), None);
    for p in [1019u16, 27, 64, 63, 27] {
        g.queue_hw_deactivation(p);
    }
    let got: Vec<u32> = core::iter::from_fn(|| g.take_hw_deactivation()).collect();
    assert_eq!(got, vec![27, 63, 64, 1019]);
    assert_eq!(g.take_hw_deactivation(), None);
}
