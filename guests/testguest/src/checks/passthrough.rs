//! A device the hypervisor passed through to this VM (the `devices` of its `/vms` node, found
//! by its memory range): the PL031 RTC's registers must be reachable (the seconds count goes
//! up) and its alarm SPI must arrive through the vGIC. Without such a device: SKIP.

use fdt::Fdt;

use crate::cpu;
use crate::gic;
use crate::report::Report;

const RTCDR: usize = 0x00;
const RTCMR: usize = 0x04;
const RTCIMSC: usize = 0x10;
const RTCICR: usize = 0x1c;

fn rd(a: usize) -> u32 {
    // SAFETY: a register of the RTC the DT names, in this guest's device mapping.
    unsafe { core::ptr::read_volatile(a as *const u32) }
}

fn wr(a: usize, v: u32) {
    // SAFETY: as in `rd`.
    unsafe { core::ptr::write_volatile(a as *mut u32, v) }
}

/// The RTC (base, SPI) passed through to the VM whose memory holds this code.
fn my_rtc(fdt: &Fdt) -> Option<(usize, u32)> {
    let here = run as *const () as usize as u64;
    let vms = fdt.find_node("/vms")?;
    let me = vms.children().find(|vm| {
        vm.property("memory").is_some_and(|p| {
            let v = p.value;
            let cell = |i: usize| -> u64 {
                u64::from(u32::from_be_bytes([v[i], v[i + 1], v[i + 2], v[i + 3]]))
            };
            v.len() == 16 && {
                let base = cell(0) << 32 | cell(4);
                let size = cell(8) << 32 | cell(12);
                (base..base + size).contains(&here)
            }
        })
    })?;
    let devices = me.property("devices")?.value;
    for path in devices.split(|&b| b == 0).filter(|p| !p.is_empty()) {
        let node = fdt.find_node(core::str::from_utf8(path).ok()?)?;
        if !node.compatible()?.all().any(|c| c == "arm,pl031") {
            continue;
        }
        let base = node.reg()?.next()?.starting_address as usize;
        let irqs = node.property("interrupts")?.value;
        let spi = u32::from_be_bytes(irqs.get(4..8)?.try_into().ok()?) + 32;
        return Some((base, spi));
    }
    None
}

pub fn run(r: &mut Report, dtb: usize, dist: Option<usize>) {
    const NAME: &str = "passthrough-rtc";
    // SAFETY: the DTB the hypervisor handed over, checked when the platform was read.
    let Ok(fdt) = (unsafe { Fdt::from_ptr(dtb as *const u8) }) else {
        r.skip(NAME, format_args!("no DTB"));
        return;
    };
    let Some((base, spi)) = my_rtc(&fdt) else {
        r.skip(NAME, format_args!("no PL031 passed through to this VM"));
        return;
    };
    let Some(dist) = dist else {
        r.result(NAME, false, format_args!("no GIC for the RTC's SPI {spi}"));
        return;
    };
    let second = cpu::counter_freq();
    let t0 = rd(base + RTCDR);
    let start = cpu::counter();
    while cpu::counter() - start < second + second / 5 {}
    let t1 = rd(base + RTCDR);
    if t1 <= t0 {
        r.result(
            NAME,
            false,
            format_args!("RTCDR {t0} then {t1}: not counting"),
        );
        return;
    }
    gic::enable_spi(dist, spi);
    wr(base + RTCICR, 1);
    wr(base + RTCMR, t1 + 1);
    wr(base + RTCIMSC, 1);
    let got = gic::poll_ack(3 * second);
    wr(base + RTCIMSC, 0);
    wr(base + RTCICR, 1);
    match got {
        Some(id) if id == spi => r.result(
            NAME,
            true,
            format_args!("{base:#x}: RTCDR {t0} -> {t1}, alarm SPI {spi} delivered"),
        ),
        other => r.result(
            NAME,
            false,
            format_args!("{base:#x}: RTCDR {t0} -> {t1}, alarm: got {other:?}, want SPI {spi}"),
        ),
    }
}
