//! The register file of one virtio-mmio (version 2) device: what the hypervisor answers itself
//! and which accesses become requests to mvm.
//!
//! The identification registers, `DeviceFeatures` and `QueueNumMax` come from `VIRTIO_ADD`'s
//! [`VirtioDevice`]; the feature selectors, driver features and every queue register are kept
//! here (mvm reads a queue back with `VIRTIO_QUEUE`). Three accesses leave the hypervisor:
//!
//! - a `QueueNotify` write is [`Effect::Notify`]: mvm is told asynchronously, the vCPU goes on;
//! - a `Status` write and every config-space access are [`Effect::Block`]: the vCPU waits until
//!   mvm answers (`VIRTIO_ACK`), then [`MmioDevice::complete`] gives the value a read returns;
//! - a second blocking access while one is outstanding is [`Effect::Retry`] (the ABI allows one
//!   per device): the vCPU re-executes the access later.
//!
//! A `Status` write of 0 resets the device here at once (queues, features, interrupt status)
//! and still goes to mvm, which drops its queues. Bad accesses (unknown offsets, a width other
//! than 4 outside config space, misaligned config accesses, writes to read-only registers)
//! read as zero and ignore writes; nothing here panics.

#[cfg(test)]
mod tests;

use minos_abi::types::{RequestKind, VirtioDevice};
use minos_abi::MAX_QUEUES;

/// `MagicValue`: "virt" little-endian.
pub const MAGIC: u32 = 0x7472_6976;
/// `Version` of the (non-legacy) virtio-mmio interface.
pub const VERSION: u32 = 2;
/// `VendorID`: "MNOS" little-endian.
pub const VENDOR_ID: u32 = 0x534f_4e4d;
/// Bytes of one device's register window.
pub const WINDOW: u64 = 0x200;
/// Offset of the device-specific configuration space.
pub const CONFIG: u32 = 0x100;

/// Register offsets (virtio 1.2, 4.2.2).
pub mod reg {
    pub const MAGIC: u32 = 0x000;
    pub const VERSION: u32 = 0x004;
    pub const DEVICE_ID: u32 = 0x008;
    pub const VENDOR_ID: u32 = 0x00c;
    pub const DEVICE_FEATURES: u32 = 0x010;
    pub const DEVICE_FEATURES_SEL: u32 = 0x014;
    pub const DRIVER_FEATURES: u32 = 0x020;
    pub const DRIVER_FEATURES_SEL: u32 = 0x024;
    pub const QUEUE_SEL: u32 = 0x030;
    pub const QUEUE_NUM_MAX: u32 = 0x034;
    pub const QUEUE_NUM: u32 = 0x038;
    pub const QUEUE_READY: u32 = 0x044;
    pub const QUEUE_NOTIFY: u32 = 0x050;
    pub const INTERRUPT_STATUS: u32 = 0x060;
    pub const INTERRUPT_ACK: u32 = 0x064;
    pub const STATUS: u32 = 0x070;
    pub const QUEUE_DESC_LOW: u32 = 0x080;
    pub const QUEUE_DESC_HIGH: u32 = 0x084;
    pub const QUEUE_DRIVER_LOW: u32 = 0x090;
    pub const QUEUE_DRIVER_HIGH: u32 = 0x094;
    pub const QUEUE_DEVICE_LOW: u32 = 0x0a0;
    pub const QUEUE_DEVICE_HIGH: u32 = 0x0a4;
    pub const CONFIG_GENERATION: u32 = 0x0fc;
}

/// `Status` bit the driver sets once it accepted features; cleared by the device when the
/// driver asked for features it does not offer.
pub const STATUS_FEATURES_OK: u32 = 8;
/// `InterruptStatus` bit: the device used buffers.
pub const INT_USED_BUFFER: u32 = 1;

/// One guest access to the window: `offset` from its base, `width` in bytes (1, 2, 4 or 8),
/// `value` for writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    pub offset: u32,
    pub width: u32,
    pub write: bool,
    pub value: u64,
}

/// What the vCPU that made an access does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Finished: a read returns this value (0 for writes); the vCPU continues.
    Done(u64),
    /// A `QueueNotify` of this queue: tell mvm, the vCPU continues.
    Notify(u32),
    /// mvm must answer first: the vCPU waits until [`MmioDevice::complete`].
    Block(Blocking),
    /// Another vCPU's blocking access is outstanding: re-execute this access later.
    Retry,
}

/// A request that blocks the vCPU until mvm answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocking {
    pub kind: RequestKind,
    /// `Status` offset for status writes, offset into the config space for config accesses.
    pub offset: u32,
    pub value: u64,
    pub width: u32,
}

/// One virtqueue as the guest configured it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Queue {
    pub num: u32,
    pub ready: bool,
    pub desc: u64,
    pub driver: u64,
    pub device: u64,
}

/// The register file of one device.
#[derive(Clone, Debug)]
pub struct MmioDevice {
    device_id: u32,
    features: u64,
    num_queues: u32,
    queue_max: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    queues: [Queue; MAX_QUEUES as usize],
    interrupt_status: u32,
    status: u32,
    outstanding: Option<Blocking>,
}

fn set_half(field: &mut u64, high: bool, v: u32) {
    *field = if high {
        (*field & 0xffff_ffff) | u64::from(v) << 32
    } else {
        (*field & !0xffff_ffff) | u64::from(v)
    };
}

impl MmioDevice {
    /// A device as `VIRTIO_ADD` described it (already checked with
    /// `minos_abi::call::check_virtio_device`; the queue count is clamped anyway).
    pub fn new(d: &VirtioDevice) -> Self {
        Self::powered_on(
            d.device_id,
            d.features,
            d.num_queues.min(MAX_QUEUES),
            d.queue_max,
        )
    }

    /// A device with this identity in its power-on state.
    fn powered_on(device_id: u32, features: u64, num_queues: u32, queue_max: u32) -> Self {
        MmioDevice {
            device_id,
            features,
            num_queues,
            queue_max,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            queues: [Queue::default(); MAX_QUEUES as usize],
            interrupt_status: 0,
            status: 0,
            outstanding: None,
        }
    }

    /// The queue `index` as the guest configured it (`None` past the device's queues).
    pub fn queue(&self, index: u32) -> Option<&Queue> {
        (index < self.num_queues).then(|| &self.queues[index as usize])
    }

    /// The driver's `Status`.
    pub fn status(&self) -> u32 {
        self.status
    }

    /// Features the driver accepted.
    pub fn driver_features(&self) -> u64 {
        self.driver_features
    }

    pub fn interrupt_status(&self) -> u32 {
        self.interrupt_status
    }

    /// The blocking request a vCPU waits on, if any.
    pub fn outstanding(&self) -> Option<Blocking> {
        self.outstanding
    }

    /// mvm used buffers: sets `InterruptStatus` bit 0 (the caller raises the interrupt).
    pub fn raise_used(&mut self) {
        self.interrupt_status |= INT_USED_BUFFER;
    }

    /// mvm answered the outstanding request: the value the waiting access returns (a read's
    /// value cut to its width, 0 for writes), `None` when nothing was outstanding.
    pub fn complete(&mut self, value: u64) -> Option<u64> {
        let b = self.outstanding.take()?;
        Some(match b.kind {
            RequestKind::ConfigRead => value & width_mask(b.width),
            _ => 0,
        })
    }

    /// Forgets the outstanding request without an answer (its vCPU was stopped).
    pub fn cancel(&mut self) {
        self.outstanding = None;
    }

    /// Power-on state for a new boot of its VM: a restarted guest must not find the last
    /// boot's queues, status or pending interrupt in the registers.
    pub fn power_on_reset(&mut self) {
        *self = Self::powered_on(
            self.device_id,
            self.features,
            self.num_queues,
            self.queue_max,
        );
    }

    /// Handles one access.
    pub fn access(&mut self, a: Access) -> Effect {
        if a.offset >= CONFIG && u64::from(a.offset) < WINDOW {
            return self.config(a);
        }
        if a.width != 4 || !a.offset.is_multiple_of(4) {
            return Effect::Done(0);
        }
        let v = a.value as u32;
        if a.write {
            self.write(a.offset, v)
        } else {
            Effect::Done(u64::from(self.read(a.offset)))
        }
    }

    fn config(&mut self, a: Access) -> Effect {
        let in_window = u64::from(a.offset) + u64::from(a.width) <= WINDOW;
        if !matches!(a.width, 1 | 2 | 4) || !a.offset.is_multiple_of(a.width) || !in_window {
            return Effect::Done(0);
        }
        let (kind, value) = if a.write {
            (RequestKind::ConfigWrite, a.value & width_mask(a.width))
        } else {
            (RequestKind::ConfigRead, 0)
        };
        self.block(Blocking {
            kind,
            offset: a.offset - CONFIG,
            value,
            width: a.width,
        })
    }

    fn block(&mut self, b: Blocking) -> Effect {
        if self.outstanding.is_some() {
            return Effect::Retry;
        }
        self.outstanding = Some(b);
        Effect::Block(b)
    }

    fn selected(&self) -> Option<usize> {
        (self.queue_sel < self.num_queues).then_some(self.queue_sel as usize)
    }

    fn read(&self, offset: u32) -> u32 {
        let q = self.selected().map(|i| &self.queues[i]);
        match offset {
            reg::MAGIC => MAGIC,
            reg::VERSION => VERSION,
            reg::DEVICE_ID => self.device_id,
            reg::VENDOR_ID => VENDOR_ID,
            reg::DEVICE_FEATURES => match self.device_features_sel {
                0 => self.features as u32,
                1 => (self.features >> 32) as u32,
                _ => 0,
            },
            reg::QUEUE_NUM_MAX => q.map_or(0, |_| self.queue_max),
            reg::QUEUE_READY => q.map_or(0, |q| u32::from(q.ready)),
            reg::INTERRUPT_STATUS => self.interrupt_status,
            reg::STATUS => self.status,
            // No device-side config change exists in the ABI: the generation never moves.
            reg::CONFIG_GENERATION => 0,
            _ => 0,
        }
    }

    fn write(&mut self, offset: u32, v: u32) -> Effect {
        match offset {
            reg::DEVICE_FEATURES_SEL => self.device_features_sel = v,
            reg::DRIVER_FEATURES_SEL => self.driver_features_sel = v,
            reg::DRIVER_FEATURES => match self.driver_features_sel {
                // Features are fixed once the driver set FEATURES_OK.
                _ if self.status & STATUS_FEATURES_OK != 0 => {}
                0 => set_half(&mut self.driver_features, false, v),
                1 => set_half(&mut self.driver_features, true, v),
                _ => {}
            },
            reg::QUEUE_SEL => self.queue_sel = v,
            reg::QUEUE_NOTIFY => {
                return if v < self.num_queues {
                    Effect::Notify(v)
                } else {
                    Effect::Done(0)
                };
            }
            reg::INTERRUPT_ACK => self.interrupt_status &= !v,
            reg::STATUS => return self.write_status(v),
            _ => self.write_queue(offset, v),
        }
        Effect::Done(0)
    }

    fn write_status(&mut self, v: u32) -> Effect {
        if self.outstanding.is_some() {
            return Effect::Retry;
        }
        if v == 0 {
            self.reset();
        } else {
            let newly_ok = v & STATUS_FEATURES_OK != 0 && self.status & STATUS_FEATURES_OK == 0;
            // Asking for a feature the device does not offer fails feature negotiation: the
            // driver reads FEATURES_OK back as clear (virtio 1.2, 3.1.1 step 6).
            let refused = newly_ok && self.driver_features & !self.features != 0;
            self.status = if refused { v & !STATUS_FEATURES_OK } else { v };
        }
        self.block(Blocking {
            kind: RequestKind::StatusWrite,
            offset: reg::STATUS,
            value: u64::from(self.status),
            width: 4,
        })
    }

    fn write_queue(&mut self, offset: u32, v: u32) {
        let Some(i) = self.selected() else { return };
        let queue_max = self.queue_max;
        let q = &mut self.queues[i];
        if offset == reg::QUEUE_READY {
            q.ready = v & 1 != 0;
            return;
        }
        // The driver must not change a live queue (virtio 1.2, 4.2.3.2): ignore it.
        if q.ready {
            return;
        }
        match offset {
            reg::QUEUE_NUM if v <= queue_max => q.num = v,
            reg::QUEUE_DESC_LOW => set_half(&mut q.desc, false, v),
            reg::QUEUE_DESC_HIGH => set_half(&mut q.desc, true, v),
            reg::QUEUE_DRIVER_LOW => set_half(&mut q.driver, false, v),
            reg::QUEUE_DRIVER_HIGH => set_half(&mut q.driver, true, v),
            reg::QUEUE_DEVICE_LOW => set_half(&mut q.device, false, v),
            reg::QUEUE_DEVICE_HIGH => set_half(&mut q.device, true, v),
            _ => {}
        }
    }

    fn reset(&mut self) {
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.driver_features = 0;
        self.queue_sel = 0;
        self.queues = [Queue::default(); MAX_QUEUES as usize];
        self.interrupt_status = 0;
        self.status = 0;
    }
}

fn width_mask(width: u32) -> u64 {
    match width {
        1 => 0xff,
        2 => 0xffff,
        4 => 0xffff_ffff,
        _ => u64::MAX,
    }
}
