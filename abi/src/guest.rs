//! Fixed facts of every guest VM's address map that mvm (which writes the guest DTB) and the
//! hypervisor (which emulates the devices) must agree on.

/// Guest IPA of the first virtio-mmio register window; device `n` sits at
/// `VIRTIO_MMIO_BASE + n * VIRTIO_MMIO_STRIDE` (as Minos places them).
pub const VIRTIO_MMIO_BASE: u64 = 0x4000_0000;
/// Size of one virtio-mmio register window.
pub const VIRTIO_MMIO_STRIDE: u64 = 0x200;
/// INTID of virtio device 0's SPI; device `n` uses `VIRTIO_FIRST_INTID + n`.
pub const VIRTIO_FIRST_INTID: u32 = 32;

/// Guest IPA of the emulated PL061 GPIO controller whose pin [`POWER_GPIO_PIN`] is the
/// power button (`gpio-keys`, `KEY_POWER`): `VM_SHUTDOWN` raises it, as QEMU's virt machine
/// does for `system_powerdown`.
pub const POWER_GPIO_BASE: u64 = 0x4010_0000;
/// Size of the PL061 register window.
pub const POWER_GPIO_SIZE: u64 = 0x1000;
/// The PL061's SPI (level, active high), just past the virtio devices'.
pub const POWER_GPIO_INTID: u32 = VIRTIO_FIRST_INTID + crate::MAX_DEVICES;
/// The power button's pin on that PL061.
pub const POWER_GPIO_PIN: u32 = 3;
/// Linux `KEY_POWER`.
pub const KEY_POWER: u32 = 116;

/// Guest IPA of the log-only PL011 a VM created with
/// [`VM_FLAG_EARLYPRINTK`](crate::types::VM_FLAG_EARLYPRINTK) gets, right after the power
/// button's PL061: mvm adds `earlycon=pl011,mmio32,<this>` to the guest's command line, and
/// what the kernel prints there before its own console exists is read back with
/// [`VM_CONSOLE_READ`](crate::hvc::VM_CONSOLE_READ). No DTB node describes it (no driver
/// binds it after boot) and it has no interrupt: earlycon polls.
pub const EARLY_UART_BASE: u64 = POWER_GPIO_BASE + POWER_GPIO_SIZE;
/// Size of its register window (one PL011 frame).
pub const EARLY_UART_SIZE: u64 = 0x1000;

// The device windows do not overlap, and a PL061 has 8 pins.
const _: () =
    assert!(VIRTIO_MMIO_BASE + crate::MAX_DEVICES as u64 * VIRTIO_MMIO_STRIDE <= POWER_GPIO_BASE);
const _: () = assert!(POWER_GPIO_PIN < 8);
const _: () = assert!(POWER_GPIO_BASE + POWER_GPIO_SIZE <= EARLY_UART_BASE);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_button_interrupt_follows_the_virtio_ones() {
        assert_eq!(POWER_GPIO_INTID, 40);
    }

    #[test]
    fn the_early_uart_follows_the_power_button() {
        assert_eq!(EARLY_UART_BASE, 0x4010_1000);
        assert_eq!(EARLY_UART_BASE % EARLY_UART_SIZE, 0);
    }
}
