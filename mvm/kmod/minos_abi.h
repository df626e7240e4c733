/* SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0 */
/*
 * The Minos hypercall and /dev/minos ioctl ABI.
 *
 * GENERATED from the minos-abi crate (abi/src) by
 * `cargo run -q -p minos-abi --bin minos-abi-header`: do not edit.
 */
#ifndef _MINOS_ABI_H
#define _MINOS_ABI_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define MINOS_ABI_MAJOR 1
#define MINOS_ABI_MINOR 1
#define MINOS_ABI_VERSION 0x00010001
#define MINOS_DT_COMPATIBLE "minos,hypervisor"
#define MINOS_DEVICE_NAME "minos"
#define MINOS_VM_NAME_LEN 32
#define MINOS_MAX_VCPUS 8
#define MINOS_MAX_VMS 64
#define MINOS_MAX_DEVICES 8
#define MINOS_MEM_ALIGN 0x200000ULL
#define MINOS_MMAP_VMID_SHIFT 32

/* Guest address map. */
#define MINOS_GUEST_VIRTIO_MMIO_BASE 0x40000000ULL
#define MINOS_GUEST_VIRTIO_MMIO_STRIDE 0x200
#define MINOS_GUEST_VIRTIO_FIRST_INTID 32
#define MINOS_GUEST_POWER_GPIO_BASE 0x40100000ULL
#define MINOS_GUEST_POWER_GPIO_INTID 40
#define MINOS_GUEST_POWER_GPIO_PIN 3
#define MINOS_GUEST_EARLY_UART_BASE 0x40101000ULL

/* SMCCC calls the driver makes before any Minos call. */
#define MINOS_SMCCC_VERSION 0x80000000
#define MINOS_VENDOR_HYP_CALL_UID 0x8600ff01
#define MINOS_UID_0 0x6f6e696d
#define MINOS_UID_1 0x75722d73
#define MINOS_UID_2 0x682d7473
#define MINOS_UID_3 0x21707679

/* Hypercall function ids: HVC #0, SMCCC fast call, SMC64, owner 6. */
#define MINOS_HVC_VERSION 0xc6000000
#define MINOS_HVC_HYP_INFO 0xc6000001
#define MINOS_HVC_MEM_INFO 0xc6000002
#define MINOS_HVC_VM_CREATE 0xc6000003
#define MINOS_HVC_VM_DESTROY 0xc6000004
#define MINOS_HVC_VM_START 0xc6000005
#define MINOS_HVC_VM_STOP 0xc6000006
#define MINOS_HVC_VM_SHUTDOWN 0xc6000007
#define MINOS_HVC_VM_INFO 0xc6000008
#define MINOS_HVC_VM_MAP_INFO 0xc6000009
#define MINOS_HVC_VIRTIO_ADD 0xc600000a
#define MINOS_HVC_VIRTIO_FETCH 0xc600000b
#define MINOS_HVC_VIRTIO_ACK 0xc600000c
#define MINOS_HVC_VM_IRQ 0xc600000d
#define MINOS_HVC_VIRTIO_QUEUE 0xc600000e
#define MINOS_HVC_VM_CONSOLE_READ 0xc600000f

/* Status codes in x0 (>= 0: success). */
#define MINOS_E_NOT_SUPPORTED (-1)
#define MINOS_E_NOT_REQUIRED (-2)
#define MINOS_E_INVALID_PARAMETER (-3)
#define MINOS_E_DENIED (-4)
#define MINOS_E_NO_MEMORY (-5)
#define MINOS_E_NO_SUCH_VM (-6)
#define MINOS_E_BAD_STATE (-7)
#define MINOS_E_BAD_ADDRESS (-8)
#define MINOS_E_VERSION_MISMATCH (-9)
#define MINOS_E_BUSY (-10)

/* VM flags. */
#define MINOS_VM_FLAG_64BIT 0x1
#define MINOS_VM_FLAG_GICV2 0x2
#define MINOS_VM_FLAG_GICV3 0x4
#define MINOS_VM_FLAG_EARLYPRINTK 0x8

#define MINOS_VM_STATE_CREATED 0
#define MINOS_VM_STATE_RUNNING 1
#define MINOS_VM_STATE_OFF 2
#define MINOS_VM_STATE_SHUTTING_DOWN 3

#define MINOS_VIRTIO_REQ_QUEUE_NOTIFY 1
#define MINOS_VIRTIO_REQ_STATUS_WRITE 2
#define MINOS_VIRTIO_REQ_CONFIG_READ 3
#define MINOS_VIRTIO_REQ_CONFIG_WRITE 4

#define MINOS_IRQ_LOW 0
#define MINOS_IRQ_HIGH 1
#define MINOS_IRQ_EDGE 2

/*
 * Parameters of a new VM (`VM_CREATE` buffer and `MINOS_IOC_VM_CREATE` argument).
 */
struct minos_vm_create {
	/* NUL-terminated name (for `mvm list`). */
	__u8 name[32];
	/* 1..=`MAX_VCPUS`. */
	__u32 nr_vcpus;
	/* `VM_FLAG_*`. */
	__u32 flags;
	/* Guest IPA of RAM, `MEM_ALIGN`-aligned. */
	__u64 mem_base;
	/* RAM bytes, a non-zero multiple of `MEM_ALIGN`. */
	__u64 mem_size;
	/* Guest IPA vCPU 0 starts at (inside RAM). */
	__u64 entry;
	/* Guest IPA handed to the kernel in `x0` (the DTB; inside RAM). */
	__u64 setup_data;
	/* Guest IPA of the virtual GIC distributor (as the guest DTB places it; 64 KiB). */
	__u64 gic_dist;
	/* Guest IPA of the GICv3 redistributors (128 KiB per vCPU) or of the GICv2 CPU interface (8 KiB), as the guest DTB places them. */
	__u64 gic_cpu;
	/* Out (ioctl only): the VM id the hypervisor returned. */
	__u32 vmid;
	__u32 reserved;
};

/*
 * One VM's state (`VM_INFO` buffer and `MINOS_IOC_VM_INFO` argument; `vmid` is the input).
 */
struct minos_vm_info {
	__u32 vmid;
	/* `VmState`. */
	__u32 state;
	__u32 nr_vcpus;
	__u32 flags;
	__u64 mem_base;
	__u64 mem_size;
	__u64 entry;
	__u64 setup_data;
	/* Filled by the driver: the process that created the VM (0 if unknown). */
	__u32 owner_pid;
	__u32 reserved;
	__u8 name[32];
};

/*
 * The hypervisor's memory pool (`MINOS_IOC_MEM_INFO`).
 */
struct minos_mem_info {
	__u64 total;
	__u64 free;
};

/*
 * How to map a VM's RAM (`MINOS_IOC_MAP_INFO`; `vmid` is the input): `mmap` the device
 * with `size` bytes at file offset `mmap_offset`, and byte 0 of the mapping is guest IPA
 * `guest_base`.
 */
struct minos_map_info {
	__u32 vmid;
	__u32 reserved;
	__u64 guest_base;
	__u64 size;
	__u64 mmap_offset;
};

/*
 * A virtio-mmio device of a VM (`VIRTIO_ADD` buffer, `MINOS_IOC_VIRTIO_ADD` argument).
 * The hypervisor answers the identification registers, `DeviceFeatures` and
 * `QueueNumMax` from it; config-space and `Status` accesses go to mvm.
 */
struct minos_virtio_device {
	__u32 vmid;
	/* Virtio device id (1 net, 2 block, 3 console). */
	__u32 device_id;
	/* Guest IPA of the 0x200-byte register window. */
	__u64 base;
	/* SPI INTID the device raises. */
	__u32 intid;
	/* Out: the device index in the VM. */
	__u32 index;
	/* Feature bits the device offers (`VIRTIO_F_VERSION_1` included). */
	__u64 features;
	/* Number of virtqueues, 1..=`MAX_QUEUES`. */
	__u32 num_queues;
	/* `QueueNumMax` of every queue (a power of two, at most 32768). */
	__u32 queue_max;
};

/*
 * Where the guest put one virtqueue (`MINOS_IOC_VIRTIO_QUEUE`; `vmid`, `device` and
 * `queue` are the input), as the guest wrote it into the register file.
 */
struct minos_virtio_queue {
	__u32 vmid;
	__u32 device;
	__u32 queue;
	/* `QueueNum`: the size the driver chose. */
	__u32 size;
	/* `QueueReady`: 1 once the driver enabled the queue. */
	__u32 ready;
	__u32 reserved;
	/* Guest IPA of the descriptor table. */
	__u64 desc;
	/* Guest IPA of the driver (available) ring. */
	__u64 driver;
	/* Guest IPA of the device (used) ring. */
	__u64 device_ring;
};

/*
 * Completes a blocking virtio request (`MINOS_IOC_VIRTIO_ACK`, `VIRTIO_ACK`).
 */
struct minos_virtio_ack {
	__u32 vmid;
	__u32 device;
	/* The value a config read returns (ignored for writes). */
	__u64 value;
};

/*
 * One pending virtio request (`VIRTIO_FETCH` array element).
 */
struct minos_virtio_request {
	__u32 vmid;
	/* Device index in the VM. */
	__u32 device;
	/* `RequestKind`. */
	__u32 kind;
	/* Queue index (`QueueNotify`), `0x70` (`Status` writes) or the offset into the device's config space (config accesses: register 0x100 is offset 0). */
	__u32 offset;
	/* Value written (writes). */
	__u64 value;
	/* Access width in bytes (1, 2 or 4; config space may be read in any of them). */
	__u32 width;
	__u32 reserved;
};

/*
 * Binds an eventfd to a device's queue notifications (`MINOS_IOC_IOEVENTFD`): the driver
 * signals `fd` for every `QueueNotify` of (`vmid`, `device`). `fd` = -1 unbinds.
 */
struct minos_ioeventfd {
	__u32 vmid;
	__u32 device;
	__s32 fd;
	__u32 reserved;
};

/*
 * Sets a guest interrupt line (`MINOS_IOC_IRQ`, `VM_IRQ`).
 */
struct minos_irq_line {
	__u32 vmid;
	__u32 intid;
	/* `IrqLevel`. */
	__u32 level;
	__u32 reserved;
};

/*
 * Reads a VM's early console (`MINOS_IOC_CONSOLE_READ`; see `VM_CONSOLE_READ`).
 */
struct minos_console_read {
	__u32 vmid;
	/* In: the buffer's size (the driver reads at most one page per call); out: bytes written to it. */
	__u32 count;
	/* In: where to read from (0 for the first call); out: where the next call reads. */
	__u64 cursor;
	/* Out: bytes overwritten before they could be read (skipped). */
	__u64 lost;
	/* In: user address of the buffer. */
	__u64 buf;
};

/* ioctls on /dev/minos. */
#define MINOS_IOC_MAGIC 0xb7
#define MINOS_IOC_VERSION _IOR(MINOS_IOC_MAGIC, 0, __u32)
#define MINOS_IOC_MEM_INFO _IOR(MINOS_IOC_MAGIC, 1, struct minos_mem_info)
#define MINOS_IOC_VM_CREATE _IOWR(MINOS_IOC_MAGIC, 2, struct minos_vm_create)
#define MINOS_IOC_VM_DESTROY _IOW(MINOS_IOC_MAGIC, 3, __u32)
#define MINOS_IOC_VM_START _IOW(MINOS_IOC_MAGIC, 4, __u32)
#define MINOS_IOC_VM_STOP _IOW(MINOS_IOC_MAGIC, 5, __u32)
#define MINOS_IOC_VM_SHUTDOWN _IOW(MINOS_IOC_MAGIC, 6, __u32)
#define MINOS_IOC_VM_INFO _IOWR(MINOS_IOC_MAGIC, 7, struct minos_vm_info)
#define MINOS_IOC_MAP_INFO _IOWR(MINOS_IOC_MAGIC, 8, struct minos_map_info)
#define MINOS_IOC_VIRTIO_ADD _IOWR(MINOS_IOC_MAGIC, 9, struct minos_virtio_device)
#define MINOS_IOC_IOEVENTFD _IOW(MINOS_IOC_MAGIC, 10, struct minos_ioeventfd)
#define MINOS_IOC_IRQ _IOW(MINOS_IOC_MAGIC, 11, struct minos_irq_line)
#define MINOS_IOC_VIRTIO_QUEUE _IOWR(MINOS_IOC_MAGIC, 12, struct minos_virtio_queue)
#define MINOS_IOC_VIRTIO_ACK _IOW(MINOS_IOC_MAGIC, 13, struct minos_virtio_ack)
#define MINOS_IOC_CONSOLE_READ _IOWR(MINOS_IOC_MAGIC, 14, struct minos_console_read)

/* The C compiler's reading of this file must match the Rust definitions. */
_Static_assert(sizeof(struct minos_vm_create) == 96, "struct minos_vm_create size");
_Static_assert(__builtin_offsetof(struct minos_vm_create, name) == 0, "minos_vm_create.name");
_Static_assert(__builtin_offsetof(struct minos_vm_create, nr_vcpus) == 32, "minos_vm_create.nr_vcpus");
_Static_assert(__builtin_offsetof(struct minos_vm_create, flags) == 36, "minos_vm_create.flags");
_Static_assert(__builtin_offsetof(struct minos_vm_create, mem_base) == 40, "minos_vm_create.mem_base");
_Static_assert(__builtin_offsetof(struct minos_vm_create, mem_size) == 48, "minos_vm_create.mem_size");
_Static_assert(__builtin_offsetof(struct minos_vm_create, entry) == 56, "minos_vm_create.entry");
_Static_assert(__builtin_offsetof(struct minos_vm_create, setup_data) == 64, "minos_vm_create.setup_data");
_Static_assert(__builtin_offsetof(struct minos_vm_create, gic_dist) == 72, "minos_vm_create.gic_dist");
_Static_assert(__builtin_offsetof(struct minos_vm_create, gic_cpu) == 80, "minos_vm_create.gic_cpu");
_Static_assert(__builtin_offsetof(struct minos_vm_create, vmid) == 88, "minos_vm_create.vmid");
_Static_assert(__builtin_offsetof(struct minos_vm_create, reserved) == 92, "minos_vm_create.reserved");
_Static_assert(sizeof(struct minos_vm_info) == 88, "struct minos_vm_info size");
_Static_assert(__builtin_offsetof(struct minos_vm_info, vmid) == 0, "minos_vm_info.vmid");
_Static_assert(__builtin_offsetof(struct minos_vm_info, state) == 4, "minos_vm_info.state");
_Static_assert(__builtin_offsetof(struct minos_vm_info, nr_vcpus) == 8, "minos_vm_info.nr_vcpus");
_Static_assert(__builtin_offsetof(struct minos_vm_info, flags) == 12, "minos_vm_info.flags");
_Static_assert(__builtin_offsetof(struct minos_vm_info, mem_base) == 16, "minos_vm_info.mem_base");
_Static_assert(__builtin_offsetof(struct minos_vm_info, mem_size) == 24, "minos_vm_info.mem_size");
_Static_assert(__builtin_offsetof(struct minos_vm_info, entry) == 32, "minos_vm_info.entry");
_Static_assert(__builtin_offsetof(struct minos_vm_info, setup_data) == 40, "minos_vm_info.setup_data");
_Static_assert(__builtin_offsetof(struct minos_vm_info, owner_pid) == 48, "minos_vm_info.owner_pid");
_Static_assert(__builtin_offsetof(struct minos_vm_info, reserved) == 52, "minos_vm_info.reserved");
_Static_assert(__builtin_offsetof(struct minos_vm_info, name) == 56, "minos_vm_info.name");
_Static_assert(sizeof(struct minos_mem_info) == 16, "struct minos_mem_info size");
_Static_assert(__builtin_offsetof(struct minos_mem_info, total) == 0, "minos_mem_info.total");
_Static_assert(__builtin_offsetof(struct minos_mem_info, free) == 8, "minos_mem_info.free");
_Static_assert(sizeof(struct minos_map_info) == 32, "struct minos_map_info size");
_Static_assert(__builtin_offsetof(struct minos_map_info, vmid) == 0, "minos_map_info.vmid");
_Static_assert(__builtin_offsetof(struct minos_map_info, reserved) == 4, "minos_map_info.reserved");
_Static_assert(__builtin_offsetof(struct minos_map_info, guest_base) == 8, "minos_map_info.guest_base");
_Static_assert(__builtin_offsetof(struct minos_map_info, size) == 16, "minos_map_info.size");
_Static_assert(__builtin_offsetof(struct minos_map_info, mmap_offset) == 24, "minos_map_info.mmap_offset");
_Static_assert(sizeof(struct minos_virtio_device) == 40, "struct minos_virtio_device size");
_Static_assert(__builtin_offsetof(struct minos_virtio_device, vmid) == 0, "minos_virtio_device.vmid");
_Static_assert(__builtin_offsetof(struct minos_virtio_device, device_id) == 4, "minos_virtio_device.device_id");
_Static_assert(__builtin_offsetof(struct minos_virtio_device, base) == 8, "minos_virtio_device.base");
_Static_assert(__builtin_offsetof(struct minos_virtio_device, intid) == 16, "minos_virtio_device.intid");
_Static_assert(__builtin_offsetof(struct minos_virtio_device, index) == 20, "minos_virtio_device.index");
_Static_assert(__builtin_offsetof(struct minos_virtio_device, features) == 24, "minos_virtio_device.features");
_Static_assert(__builtin_offsetof(struct minos_virtio_device, num_queues) == 32, "minos_virtio_device.num_queues");
_Static_assert(__builtin_offsetof(struct minos_virtio_device, queue_max) == 36, "minos_virtio_device.queue_max");
_Static_assert(sizeof(struct minos_virtio_queue) == 48, "struct minos_virtio_queue size");
_Static_assert(__builtin_offsetof(struct minos_virtio_queue, vmid) == 0, "minos_virtio_queue.vmid");
_Static_assert(__builtin_offsetof(struct minos_virtio_queue, device) == 4, "minos_virtio_queue.device");
_Static_assert(__builtin_offsetof(struct minos_virtio_queue, queue) == 8, "minos_virtio_queue.queue");
_Static_assert(__builtin_offsetof(struct minos_virtio_queue, size) == 12, "minos_virtio_queue.size");
_Static_assert(__builtin_offsetof(struct minos_virtio_queue, ready) == 16, "minos_virtio_queue.ready");
_Static_assert(__builtin_offsetof(struct minos_virtio_queue, reserved) == 20, "minos_virtio_queue.reserved");
_Static_assert(__builtin_offsetof(struct minos_virtio_queue, desc) == 24, "minos_virtio_queue.desc");
_Static_assert(__builtin_offsetof(struct minos_virtio_queue, driver) == 32, "minos_virtio_queue.driver");
_Static_assert(__builtin_offsetof(struct minos_virtio_queue, device_ring) == 40, "minos_virtio_queue.device_ring");
_Static_assert(sizeof(struct minos_virtio_ack) == 16, "struct minos_virtio_ack size");
_Static_assert(__builtin_offsetof(struct minos_virtio_ack, vmid) == 0, "minos_virtio_ack.vmid");
_Static_assert(__builtin_offsetof(struct minos_virtio_ack, device) == 4, "minos_virtio_ack.device");
_Static_assert(__builtin_offsetof(struct minos_virtio_ack, value) == 8, "minos_virtio_ack.value");
_Static_assert(sizeof(struct minos_virtio_request) == 32, "struct minos_virtio_request size");
_Static_assert(__builtin_offsetof(struct minos_virtio_request, vmid) == 0, "minos_virtio_request.vmid");
_Static_assert(__builtin_offsetof(struct minos_virtio_request, device) == 4, "minos_virtio_request.device");
_Static_assert(__builtin_offsetof(struct minos_virtio_request, kind) == 8, "minos_virtio_request.kind");
_Static_assert(__builtin_offsetof(struct minos_virtio_request, offset) == 12, "minos_virtio_request.offset");
_Static_assert(__builtin_offsetof(struct minos_virtio_request, value) == 16, "minos_virtio_request.value");
_Static_assert(__builtin_offsetof(struct minos_virtio_request, width) == 24, "minos_virtio_request.width");
_Static_assert(__builtin_offsetof(struct minos_virtio_request, reserved) == 28, "minos_virtio_request.reserved");
_Static_assert(sizeof(struct minos_ioeventfd) == 16, "struct minos_ioeventfd size");
_Static_assert(__builtin_offsetof(struct minos_ioeventfd, vmid) == 0, "minos_ioeventfd.vmid");
_Static_assert(__builtin_offsetof(struct minos_ioeventfd, device) == 4, "minos_ioeventfd.device");
_Static_assert(__builtin_offsetof(struct minos_ioeventfd, fd) == 8, "minos_ioeventfd.fd");
_Static_assert(__builtin_offsetof(struct minos_ioeventfd, reserved) == 12, "minos_ioeventfd.reserved");
_Static_assert(sizeof(struct minos_irq_line) == 16, "struct minos_irq_line size");
_Static_assert(__builtin_offsetof(struct minos_irq_line, vmid) == 0, "minos_irq_line.vmid");
_Static_assert(__builtin_offsetof(struct minos_irq_line, intid) == 4, "minos_irq_line.intid");
_Static_assert(__builtin_offsetof(struct minos_irq_line, level) == 8, "minos_irq_line.level");
_Static_assert(__builtin_offsetof(struct minos_irq_line, reserved) == 12, "minos_irq_line.reserved");
_Static_assert(sizeof(struct minos_console_read) == 32, "struct minos_console_read size");
_Static_assert(__builtin_offsetof(struct minos_console_read, vmid) == 0, "minos_console_read.vmid");
_Static_assert(__builtin_offsetof(struct minos_console_read, count) == 4, "minos_console_read.count");
_Static_assert(__builtin_offsetof(struct minos_console_read, cursor) == 8, "minos_console_read.cursor");
_Static_assert(__builtin_offsetof(struct minos_console_read, lost) == 16, "minos_console_read.lost");
_Static_assert(__builtin_offsetof(struct minos_console_read, buf) == 24, "minos_console_read.buf");
_Static_assert(MINOS_IOC_VERSION == 0x8004b700U, "MINOS_IOC_VERSION");
_Static_assert(MINOS_IOC_MEM_INFO == 0x8010b701U, "MINOS_IOC_MEM_INFO");
_Static_assert(MINOS_IOC_VM_CREATE == 0xc060b702U, "MINOS_IOC_VM_CREATE");
_Static_assert(MINOS_IOC_VM_DESTROY == 0x4004b703U, "MINOS_IOC_VM_DESTROY");
_Static_assert(MINOS_IOC_VM_START == 0x4004b704U, "MINOS_IOC_VM_START");
_Static_assert(MINOS_IOC_VM_STOP == 0x4004b705U, "MINOS_IOC_VM_STOP");
_Static_assert(MINOS_IOC_VM_SHUTDOWN == 0x4004b706U, "MINOS_IOC_VM_SHUTDOWN");
_Static_assert(MINOS_IOC_VM_INFO == 0xc058b707U, "MINOS_IOC_VM_INFO");
_Static_assert(MINOS_IOC_MAP_INFO == 0xc020b708U, "MINOS_IOC_MAP_INFO");
_Static_assert(MINOS_IOC_VIRTIO_ADD == 0xc028b709U, "MINOS_IOC_VIRTIO_ADD");
_Static_assert(MINOS_IOC_IOEVENTFD == 0x4010b70aU, "MINOS_IOC_IOEVENTFD");
_Static_assert(MINOS_IOC_IRQ == 0x4010b70bU, "MINOS_IOC_IRQ");
_Static_assert(MINOS_IOC_VIRTIO_QUEUE == 0xc030b70cU, "MINOS_IOC_VIRTIO_QUEUE");
_Static_assert(MINOS_IOC_VIRTIO_ACK == 0x4010b70dU, "MINOS_IOC_VIRTIO_ACK");
_Static_assert(MINOS_IOC_CONSOLE_READ == 0xc020b70eU, "MINOS_IOC_CONSOLE_READ");

#endif /* _MINOS_ABI_H */
