use super::*;

fn dev() -> MmioDevice {
    MmioDevice::new(&VirtioDevice {
        vmid: 1,
        device_id: 3,
        base: 0x4000_0000,
        intid: 32,
        index: 0,
        features: 1 << 32 | 1 << 1,
        num_queues: 2,
        queue_max: 256,
    })
}

fn rd(d: &mut MmioDevice, offset: u32) -> u64 {
    match d.access(Access {
        offset,
        width: 4,
        write: false,
        value: 0,
    }) {
        Effect::Done(v) => v,
        e => panic!("read {offset:#x}: {e:?}"),
    }
}

fn wr(d: &mut MmioDevice, offset: u32, value: u32) -> Effect {
    d.access(Access {
        offset,
        width: 4,
        write: true,
        value: u64::from(value),
    })
}

#[test]
fn identifies_as_a_version_2_device() {
    let mut d = dev();
    assert_eq!(rd(&mut d, reg::MAGIC), 0x7472_6976);
    assert_eq!(rd(&mut d, reg::VERSION), 2);
    assert_eq!(rd(&mut d, reg::DEVICE_ID), 3);
    assert_eq!(rd(&mut d, reg::VENDOR_ID), u64::from(VENDOR_ID));
}

#[test]
fn features_are_read_and_written_through_the_selectors() {
    let mut d = dev();
    assert_eq!(rd(&mut d, reg::DEVICE_FEATURES), 2);
    wr(&mut d, reg::DEVICE_FEATURES_SEL, 1);
    assert_eq!(rd(&mut d, reg::DEVICE_FEATURES), 1);
    wr(&mut d, reg::DEVICE_FEATURES_SEL, 7);
    assert_eq!(rd(&mut d, reg::DEVICE_FEATURES), 0);
    wr(&mut d, reg::DRIVER_FEATURES, 2);
    wr(&mut d, reg::DRIVER_FEATURES_SEL, 1);
    wr(&mut d, reg::DRIVER_FEATURES, 1);
    assert_eq!(d.driver_features(), 1 << 32 | 2);
    assert_eq!(rd(&mut d, reg::DRIVER_FEATURES), 0, "write-only");
}

#[test]
fn features_ok_is_refused_for_features_not_offered() {
    let mut d = dev();
    wr(&mut d, reg::DRIVER_FEATURES, 1 << 5);
    let e = wr(&mut d, reg::STATUS, 1 | 2 | STATUS_FEATURES_OK);
    assert!(matches!(e, Effect::Block(b) if b.value == 3));
    d.complete(0);
    assert_eq!(rd(&mut d, reg::STATUS), 3);

    let mut d = dev();
    wr(&mut d, reg::DRIVER_FEATURES, 2);
    wr(&mut d, reg::STATUS, 1 | 2 | STATUS_FEATURES_OK);
    d.complete(0);
    assert_eq!(rd(&mut d, reg::STATUS), 11);
    wr(&mut d, reg::DRIVER_FEATURES, 0);
    assert_eq!(d.driver_features(), 2, "fixed after FEATURES_OK");
}

#[test]
fn queue_registers_follow_queue_sel() {
    let mut d = dev();
    wr(&mut d, reg::QUEUE_SEL, 1);
    assert_eq!(rd(&mut d, reg::QUEUE_NUM_MAX), 256);
    wr(&mut d, reg::QUEUE_NUM, 128);
    wr(&mut d, reg::QUEUE_DESC_LOW, 0x8010_0000);
    wr(&mut d, reg::QUEUE_DESC_HIGH, 1);
    wr(&mut d, reg::QUEUE_DRIVER_LOW, 0x8010_1000);
    wr(&mut d, reg::QUEUE_DEVICE_LOW, 0x8010_2000);
    wr(&mut d, reg::QUEUE_READY, 1);
    assert_eq!(rd(&mut d, reg::QUEUE_READY), 1);
    assert_eq!(
        d.queue(1),
        Some(&Queue {
            num: 128,
            ready: true,
            desc: 0x1_8010_0000,
            driver: 0x8010_1000,
            device: 0x8010_2000,
        })
    );
    assert_eq!(d.queue(0), Some(&Queue::default()));
    assert_eq!(d.queue(2), None);
    // A live queue does not move.
    wr(&mut d, reg::QUEUE_DESC_LOW, 0);
    wr(&mut d, reg::QUEUE_NUM, 2);
    assert_eq!(d.queue(1).unwrap().desc, 0x1_8010_0000);
    assert_eq!(d.queue(1).unwrap().num, 128);
}

#[test]
fn bad_queue_selection_and_sizes_are_ignored() {
    let mut d = dev();
    wr(&mut d, reg::QUEUE_NUM, 512);
    assert_eq!(d.queue(0).unwrap().num, 0, "above QueueNumMax");
    wr(&mut d, reg::QUEUE_SEL, 5);
    assert_eq!(rd(&mut d, reg::QUEUE_NUM_MAX), 0, "no such queue");
    wr(&mut d, reg::QUEUE_NUM, 16);
    wr(&mut d, reg::QUEUE_READY, 1);
    assert_eq!(rd(&mut d, reg::QUEUE_READY), 0);
    assert!(d.queue(0).unwrap() == &Queue::default());
    wr(&mut d, reg::QUEUE_SEL, u32::MAX);
    assert_eq!(rd(&mut d, reg::QUEUE_NUM_MAX), 0);
}

#[test]
fn queue_notify_is_asynchronous() {
    let mut d = dev();
    assert_eq!(wr(&mut d, reg::QUEUE_NOTIFY, 1), Effect::Notify(1));
    assert_eq!(
        wr(&mut d, reg::QUEUE_NOTIFY, 2),
        Effect::Done(0),
        "no queue 2"
    );
    assert_eq!(d.outstanding(), None);
}

#[test]
fn interrupt_status_is_set_by_used_buffers_and_cleared_by_ack() {
    let mut d = dev();
    d.raise_used();
    assert_eq!(rd(&mut d, reg::INTERRUPT_STATUS), 1);
    wr(&mut d, reg::INTERRUPT_ACK, 2);
    assert_eq!(rd(&mut d, reg::INTERRUPT_STATUS), 1);
    wr(&mut d, reg::INTERRUPT_ACK, 1);
    assert_eq!(rd(&mut d, reg::INTERRUPT_STATUS), 0);
}

#[test]
fn status_writes_block_and_one_at_a_time() {
    let mut d = dev();
    let e = wr(&mut d, reg::STATUS, 1);
    assert_eq!(
        e,
        Effect::Block(Blocking {
            kind: RequestKind::StatusWrite,
            offset: 0x70,
            value: 1,
            width: 4
        })
    );
    assert_eq!(wr(&mut d, reg::STATUS, 3), Effect::Retry);
    let cfg = d.access(Access {
        offset: 0x100,
        width: 4,
        write: false,
        value: 0,
    });
    assert_eq!(cfg, Effect::Retry);
    assert_eq!(d.complete(0xdead), Some(0), "a write returns nothing");
    assert_eq!(d.complete(0), None, "nothing outstanding");
    assert!(matches!(wr(&mut d, reg::STATUS, 3), Effect::Block(_)));
}

#[test]
fn reset_clears_the_device_and_still_reaches_mvm() {
    let mut d = dev();
    wr(&mut d, reg::DRIVER_FEATURES, 2);
    wr(&mut d, reg::QUEUE_NUM, 64);
    wr(&mut d, reg::QUEUE_READY, 1);
    wr(&mut d, reg::QUEUE_SEL, 1);
    d.raise_used();
    wr(&mut d, reg::STATUS, 15);
    d.complete(0);
    let e = wr(&mut d, reg::STATUS, 0);
    assert!(matches!(e, Effect::Block(b) if b.kind == RequestKind::StatusWrite && b.value == 0));
    d.complete(0);
    assert_eq!(rd(&mut d, reg::STATUS), 0);
    assert_eq!(rd(&mut d, reg::INTERRUPT_STATUS), 0);
    assert_eq!(d.driver_features(), 0);
    assert_eq!(d.queue(0), Some(&Queue::default()));
    assert_eq!(rd(&mut d, reg::QUEUE_NUM_MAX), 256, "QueueSel back to 0");
}

#[test]
fn config_accesses_block_with_config_relative_offsets() {
    let mut d = dev();
    let e = d.access(Access {
        offset: 0x104,
        width: 2,
        write: false,
        value: 0,
    });
    assert_eq!(
        e,
        Effect::Block(Blocking {
            kind: RequestKind::ConfigRead,
            offset: 4,
            value: 0,
            width: 2
        })
    );
    assert_eq!(d.complete(0x1234_5678), Some(0x5678), "cut to the width");
    let e = d.access(Access {
        offset: 0x108,
        width: 1,
        write: true,
        value: 0x1ff,
    });
    assert!(
        matches!(e, Effect::Block(b) if b.kind == RequestKind::ConfigWrite && b.value == 0xff && b.offset == 8)
    );
    assert_eq!(d.complete(7), Some(0));
}

#[test]
fn bad_accesses_read_as_zero_and_are_ignored() {
    let mut d = dev();
    let before = d.clone();
    for (offset, width) in [
        (reg::MAGIC, 2),
        (reg::MAGIC + 1, 4),
        (reg::STATUS, 8),
        (reg::STATUS, 1),
        (0x101, 2),
        (0x102, 4),
        (0x100, 8),
        (0x1fe, 4),
        (0x200, 4),
        (0x0f0, 4),
        (u32::MAX, 4),
        (u32::MAX - 3, 4),
    ] {
        for write in [false, true] {
            let e = d.access(Access {
                offset,
                width,
                write,
                value: u64::MAX,
            });
            assert_eq!(e, Effect::Done(0), "{offset:#x}/{width} write={write}");
        }
    }
    // Read-only registers ignore writes.
    for r in [
        reg::MAGIC,
        reg::DEVICE_ID,
        reg::DEVICE_FEATURES,
        reg::QUEUE_NUM_MAX,
        reg::INTERRUPT_STATUS,
        reg::CONFIG_GENERATION,
    ] {
        assert_eq!(wr(&mut d, r, 0xffff_ffff), Effect::Done(0));
    }
    assert_eq!(format!("{before:?}"), format!("{d:?}"));
}
