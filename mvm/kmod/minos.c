// SPDX-License-Identifier: GPL-2.0-only
/*
 * minos.ko - VM0's device for managing guest VMs on the Minos hypervisor.
 *
 * /dev/minos turns ioctls into Minos hypercalls (see minos_abi.h, generated from the
 * minos-abi crate), maps one VM's RAM into the caller with mmap, forwards virtio queue
 * notifications to eventfds, reads a VM's early console, and destroys the VMs an open file
 * created when it is closed.
 *
 * Module init refuses to load unless a Minos hypervisor with the same ABI major answers.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/arm-smccc.h>
#include <linux/eventfd.h>
#include <linux/fs.h>
#include <linux/interrupt.h>
#include <linux/list.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/of.h>
#include <linux/of_irq.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "minos_abi.h"

/* A VM created through this driver. */
struct minos_vm {
	struct list_head node;
	struct file *owner;
	pid_t owner_pid;
	u32 vmid;
	/* Live user mappings of its RAM: destroy waits for them to go. */
	atomic_t maps;
	struct eventfd_ctx *notify[MINOS_MAX_DEVICES];
};

/* Blocking virtio requests of one open file's VMs, waiting for its read(). */
#define MINOS_REQ_RING 64

struct minos_file {
	spinlock_t lock;
	wait_queue_head_t wait;
	unsigned int head, tail;
	struct minos_virtio_request ring[MINOS_REQ_RING];
};

static LIST_HEAD(minos_vms);
static DEFINE_MUTEX(minos_lock);
static int minos_notify_irq;

static long minos_hvc(u32 fid, unsigned long a1, unsigned long a2,
		      unsigned long a3, unsigned long a4,
		      struct arm_smccc_res *res)
{
	arm_smccc_1_1_hvc(fid, a1, a2, a3, a4, res);
	return (long)res->a0;
}

static int minos_errno(long status)
{
	switch (status) {
	case MINOS_E_NOT_SUPPORTED:
		return -EOPNOTSUPP;
	case MINOS_E_INVALID_PARAMETER:
		return -EINVAL;
	case MINOS_E_DENIED:
		return -EPERM;
	case MINOS_E_NO_MEMORY:
		return -ENOMEM;
	case MINOS_E_NO_SUCH_VM:
		return -ENOENT;
	case MINOS_E_BAD_STATE:
		return -EBUSY;
	case MINOS_E_BAD_ADDRESS:
		return -EFAULT;
	case MINOS_E_VERSION_MISMATCH:
		return -EPROTO;
	case MINOS_E_BUSY:
		return -EAGAIN;
	default:
		return status < 0 ? -EIO : 0;
	}
}

/* A simple call with a VM id: 0 or a negative errno. */
static int minos_vm_call(u32 fid, u32 vmid)
{
	struct arm_smccc_res res;

	return minos_errno(minos_hvc(fid, vmid, 0, 0, 0, &res));
}

/* Caller holds minos_lock. */
static struct minos_vm *minos_find(u32 vmid)
{
	struct minos_vm *vm;

	list_for_each_entry(vm, &minos_vms, node)
		if (vm->vmid == vmid)
			return vm;
	return NULL;
}

/* Caller holds minos_lock; the VM must be destroyable (no mappings). */
static void minos_forget(struct minos_vm *vm)
{
	int i;

	for (i = 0; i < MINOS_MAX_DEVICES; i++)
		if (vm->notify[i])
			eventfd_ctx_put(vm->notify[i]);
	list_del(&vm->node);
	kfree(vm);
}

/*
 * Hypercall buffers live in a page of their own: the hypervisor accepts only buffers that
 * do not cross a page.
 */
static void *minos_buf_alloc(void)
{
	return (void *)get_zeroed_page(GFP_KERNEL);
}

static void minos_buf_free(void *buf)
{
	free_page((unsigned long)buf);
}

static int minos_create(struct file *file, void __user *argp)
{
	struct minos_vm_create *req;
	struct arm_smccc_res res;
	struct minos_vm *vm;
	long ret;

	vm = kzalloc(sizeof(*vm), GFP_KERNEL);
	req = minos_buf_alloc();
	if (!vm || !req) {
		ret = -ENOMEM;
		goto out;
	}
	if (copy_from_user(req, argp, sizeof(*req))) {
		ret = -EFAULT;
		goto out;
	}
	req->name[MINOS_VM_NAME_LEN - 1] = 0;

	ret = minos_hvc(MINOS_HVC_VM_CREATE, virt_to_phys(req), 0, 0, 0, &res);
	if (ret < 0) {
		ret = minos_errno(ret);
		goto out;
	}
	req->vmid = ret;
	vm->vmid = ret;
	vm->owner = file;
	vm->owner_pid = task_tgid_nr(current);
	atomic_set(&vm->maps, 0);
	if (copy_to_user(argp, req, sizeof(*req))) {
		minos_vm_call(MINOS_HVC_VM_DESTROY, vm->vmid);
		ret = -EFAULT;
		goto out;
	}
	mutex_lock(&minos_lock);
	list_add_tail(&vm->node, &minos_vms);
	mutex_unlock(&minos_lock);
	vm = NULL;
	ret = 0;
out:
	kfree(vm);
	minos_buf_free(req);
	return ret;
}

/* Destroys a VM this driver created, from any open file (the device is root-only). */
static int minos_destroy(u32 vmid)
{
	struct minos_vm *vm;
	int ret;

	mutex_lock(&minos_lock);
	vm = minos_find(vmid);
	if (vm && atomic_read(&vm->maps)) {
		ret = -EBUSY;
		goto out;
	}
	ret = minos_vm_call(MINOS_HVC_VM_DESTROY, vmid);
	if (vm && (!ret || ret == -ENOENT))
		minos_forget(vm);
out:
	mutex_unlock(&minos_lock);
	return ret;
}

static int minos_info(void __user *argp)
{
	struct minos_vm_info *info;
	struct arm_smccc_res res;
	struct minos_vm *vm;
	u32 vmid;
	long ret;

	if (get_user(vmid, (u32 __user *)argp))
		return -EFAULT;
	info = minos_buf_alloc();
	if (!info)
		return -ENOMEM;
	ret = minos_hvc(MINOS_HVC_VM_INFO, vmid, virt_to_phys(info), 0, 0,
			&res);
	if (ret < 0) {
		ret = minos_errno(ret);
		goto out;
	}
	info->vmid = vmid;
	info->name[MINOS_VM_NAME_LEN - 1] = 0;
	mutex_lock(&minos_lock);
	vm = minos_find(vmid);
	info->owner_pid = vm ? vm->owner_pid : 0;
	mutex_unlock(&minos_lock);
	ret = copy_to_user(argp, info, sizeof(*info)) ? -EFAULT : 0;
out:
	minos_buf_free(info);
	return ret;
}

/* The VM must be owned by @file; returns it with minos_lock held, or NULL unlocked. */
static struct minos_vm *minos_owned(struct file *file, u32 vmid)
{
	struct minos_vm *vm;

	mutex_lock(&minos_lock);
	vm = minos_find(vmid);
	if (vm && vm->owner == file)
		return vm;
	mutex_unlock(&minos_lock);
	return NULL;
}

static int minos_map_info(struct file *file, void __user *argp)
{
	struct minos_map_info info;
	struct arm_smccc_res res;
	long ret;

	if (copy_from_user(&info, argp, sizeof(info)))
		return -EFAULT;
	if (!minos_owned(file, info.vmid))
		return -EPERM;
	mutex_unlock(&minos_lock);
	ret = minos_hvc(MINOS_HVC_VM_MAP_INFO, info.vmid, 0, 0, 0, &res);
	if (ret < 0)
		return minos_errno(ret);
	info.size = res.a2;
	info.guest_base = res.a3;
	info.mmap_offset = (u64)info.vmid << MINOS_MMAP_VMID_SHIFT;
	return copy_to_user(argp, &info, sizeof(info)) ? -EFAULT : 0;
}

static void minos_vma_open(struct vm_area_struct *vma)
{
	struct minos_vm *vm = vma->vm_private_data;

	atomic_inc(&vm->maps);
}

static void minos_vma_close(struct vm_area_struct *vma)
{
	struct minos_vm *vm = vma->vm_private_data;

	atomic_dec(&vm->maps);
}

static const struct vm_operations_struct minos_vm_ops = {
	.open = minos_vma_open,
	.close = minos_vma_close,
};

/*
 * Maps part of one owned VM's RAM: the file offset selects the VM (vmid << 32) and the
 * offset inside its RAM; the range must lie inside the window the hypervisor reports.
 * The default page protection keeps it normal cacheable memory, as the hypervisor maps it.
 */
static int minos_mmap(struct file *file, struct vm_area_struct *vma)
{
	u64 off = (u64)vma->vm_pgoff << PAGE_SHIFT;
	u64 len = vma->vm_end - vma->vm_start;
	u32 vmid = off >> MINOS_MMAP_VMID_SHIFT;
	u64 in_vm = off & ((1ULL << MINOS_MMAP_VMID_SHIFT) - 1);
	struct arm_smccc_res res;
	struct minos_vm *vm;
	long ret;

	vm = minos_owned(file, vmid);
	if (!vm)
		return -EPERM;
	ret = minos_hvc(MINOS_HVC_VM_MAP_INFO, vmid, 0, 0, 0, &res);
	if (ret < 0) {
		ret = minos_errno(ret);
		goto out;
	}
	if (in_vm >= res.a2 || len > res.a2 - in_vm ||
	    !PAGE_ALIGNED(res.a1)) {
		ret = -EINVAL;
		goto out;
	}
	ret = remap_pfn_range(vma, vma->vm_start, (res.a1 + in_vm) >> PAGE_SHIFT,
			      len, vma->vm_page_prot);
	if (ret)
		goto out;
	vma->vm_private_data = vm;
	vma->vm_ops = &minos_vm_ops;
	atomic_inc(&vm->maps);
out:
	mutex_unlock(&minos_lock);
	return ret;
}

static int minos_virtio_add(struct file *file, void __user *argp)
{
	struct minos_virtio_device *dev;
	struct arm_smccc_res res;
	long ret;

	dev = minos_buf_alloc();
	if (!dev)
		return -ENOMEM;
	if (copy_from_user(dev, argp, sizeof(*dev))) {
		ret = -EFAULT;
		goto out;
	}
	if (!minos_owned(file, dev->vmid)) {
		ret = -EPERM;
		goto out;
	}
	ret = minos_hvc(MINOS_HVC_VIRTIO_ADD, virt_to_phys(dev), 0, 0, 0, &res);
	mutex_unlock(&minos_lock);
	if (ret < 0) {
		ret = minos_errno(ret);
		goto out;
	}
	if (ret >= MINOS_MAX_DEVICES) {
		ret = -EIO;
		goto out;
	}
	dev->index = ret;
	ret = copy_to_user(argp, dev, sizeof(*dev)) ? -EFAULT : 0;
out:
	minos_buf_free(dev);
	return ret;
}

static int minos_virtio_queue(struct file *file, void __user *argp)
{
	struct minos_virtio_queue q;
	struct arm_smccc_res res;
	long ret;

	if (copy_from_user(&q, argp, sizeof(q)))
		return -EFAULT;
	if (!minos_owned(file, q.vmid))
		return -EPERM;
	ret = minos_hvc(MINOS_HVC_VIRTIO_QUEUE, q.vmid, q.device, q.queue, 0, &res);
	mutex_unlock(&minos_lock);
	if (ret < 0)
		return minos_errno(ret);
	q.size = ret & 0xffff;
	q.ready = (ret >> 16) & 1;
	q.desc = res.a1;
	q.driver = res.a2;
	q.device_ring = res.a3;
	return copy_to_user(argp, &q, sizeof(q)) ? -EFAULT : 0;
}

static int minos_virtio_ack(struct file *file, void __user *argp)
{
	struct minos_virtio_ack ack;
	struct arm_smccc_res res;
	long ret;

	if (copy_from_user(&ack, argp, sizeof(ack)))
		return -EFAULT;
	if (!minos_owned(file, ack.vmid))
		return -EPERM;
	ret = minos_hvc(MINOS_HVC_VIRTIO_ACK, ack.vmid, ack.device, ack.value, 0,
			&res);
	mutex_unlock(&minos_lock);
	return minos_errno(ret);
}

/* The hypervisor copies at most this much early-console output per call. */
#define MINOS_CONSOLE_CHUNK 4096

/*
 * Copies an owned VM's early-console output after req.cursor into the caller's buffer,
 * through a page of ours (the hypervisor writes only to VM0 RAM it can check).
 */
static int minos_console_read(struct file *file, void __user *argp)
{
	struct minos_console_read req;
	struct arm_smccc_res res;
	void *buf;
	long ret;

	if (copy_from_user(&req, argp, sizeof(req)))
		return -EFAULT;
	if (!req.count)
		return -EINVAL;
	buf = minos_buf_alloc();
	if (!buf)
		return -ENOMEM;
	if (!minos_owned(file, req.vmid)) {
		ret = -EPERM;
		goto out;
	}
	ret = minos_hvc(MINOS_HVC_VM_CONSOLE_READ, req.vmid, virt_to_phys(buf),
			min_t(u32, req.count, MINOS_CONSOLE_CHUNK), req.cursor, &res);
	mutex_unlock(&minos_lock);
	if (ret < 0) {
		ret = minos_errno(ret);
		goto out;
	}
	if (ret > req.count || ret > MINOS_CONSOLE_CHUNK) {
		ret = -EIO;
		goto out;
	}
	if (copy_to_user(u64_to_user_ptr(req.buf), buf, ret)) {
		ret = -EFAULT;
		goto out;
	}
	req.count = ret;
	req.cursor = res.a1;
	req.lost = res.a2;
	ret = copy_to_user(argp, &req, sizeof(req)) ? -EFAULT : 0;
out:
	minos_buf_free(buf);
	return ret;
}

static int minos_ioeventfd(struct file *file, void __user *argp)
{
	struct eventfd_ctx *ctx = NULL, *old;
	struct minos_ioeventfd req;
	struct minos_vm *vm;

	if (copy_from_user(&req, argp, sizeof(req)))
		return -EFAULT;
	if (req.device >= MINOS_MAX_DEVICES || req.reserved)
		return -EINVAL;
	if (req.fd >= 0) {
		ctx = eventfd_ctx_fdget(req.fd);
		if (IS_ERR(ctx))
			return PTR_ERR(ctx);
	}
	vm = minos_owned(file, req.vmid);
	if (!vm) {
		if (ctx)
			eventfd_ctx_put(ctx);
		return -EPERM;
	}
	old = vm->notify[req.device];
	vm->notify[req.device] = ctx;
	mutex_unlock(&minos_lock);
	if (old)
		eventfd_ctx_put(old);
	return 0;
}

static int minos_irq(struct file *file, void __user *argp)
{
	struct minos_irq_line line;
	struct arm_smccc_res res;
	long ret;

	if (copy_from_user(&line, argp, sizeof(line)))
		return -EFAULT;
	if (line.level > MINOS_IRQ_EDGE || line.reserved)
		return -EINVAL;
	if (!minos_owned(file, line.vmid))
		return -EPERM;
	ret = minos_hvc(MINOS_HVC_VM_IRQ, line.vmid, line.intid, line.level, 0,
			&res);
	mutex_unlock(&minos_lock);
	return minos_errno(ret);
}

static int minos_mem_info(void __user *argp)
{
	struct minos_mem_info info;
	struct arm_smccc_res res;
	long ret;

	ret = minos_hvc(MINOS_HVC_MEM_INFO, 0, 0, 0, 0, &res);
	if (ret < 0)
		return minos_errno(ret);
	info.total = res.a1;
	info.free = res.a2;
	return copy_to_user(argp, &info, sizeof(info)) ? -EFAULT : 0;
}

static long minos_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *argp = (void __user *)arg;
	u32 vmid;

	switch (cmd) {
	case MINOS_IOC_VERSION:
		return put_user((u32)MINOS_ABI_VERSION, (u32 __user *)argp);
	case MINOS_IOC_MEM_INFO:
		return minos_mem_info(argp);
	case MINOS_IOC_VM_CREATE:
		return minos_create(file, argp);
	case MINOS_IOC_VM_INFO:
		return minos_info(argp);
	case MINOS_IOC_MAP_INFO:
		return minos_map_info(file, argp);
	case MINOS_IOC_VIRTIO_ADD:
		return minos_virtio_add(file, argp);
	case MINOS_IOC_IOEVENTFD:
		return minos_ioeventfd(file, argp);
	case MINOS_IOC_IRQ:
		return minos_irq(file, argp);
	case MINOS_IOC_VIRTIO_QUEUE:
		return minos_virtio_queue(file, argp);
	case MINOS_IOC_VIRTIO_ACK:
		return minos_virtio_ack(file, argp);
	case MINOS_IOC_CONSOLE_READ:
		return minos_console_read(file, argp);
	case MINOS_IOC_VM_DESTROY:
	case MINOS_IOC_VM_START:
	case MINOS_IOC_VM_STOP:
	case MINOS_IOC_VM_SHUTDOWN:
		break;
	default:
		return -ENOTTY;
	}

	if (get_user(vmid, (u32 __user *)argp))
		return -EFAULT;
	switch (cmd) {
	case MINOS_IOC_VM_DESTROY:
		return minos_destroy(vmid);
	case MINOS_IOC_VM_START:
		if (!minos_owned(file, vmid))
			return -EPERM;
		mutex_unlock(&minos_lock);
		return minos_vm_call(MINOS_HVC_VM_START, vmid);
	case MINOS_IOC_VM_STOP:
		return minos_vm_call(MINOS_HVC_VM_STOP, vmid);
	default:
		return minos_vm_call(MINOS_HVC_VM_SHUTDOWN, vmid);
	}
}

static int minos_open(struct inode *inode, struct file *file)
{
	struct minos_file *mf;

	mf = kzalloc(sizeof(*mf), GFP_KERNEL);
	if (!mf)
		return -ENOMEM;
	spin_lock_init(&mf->lock);
	init_waitqueue_head(&mf->wait);
	file->private_data = mf;
	return nonseekable_open(inode, file);
}

/* Hands out whole request records; blocks until one is there unless O_NONBLOCK. */
static ssize_t minos_read(struct file *file, char __user *buf, size_t len,
			  loff_t *ppos)
{
	struct minos_file *mf = file->private_data;
	struct minos_virtio_request req;
	size_t done = 0;
	bool got;
	int ret;

	if (len < sizeof(req))
		return -EINVAL;
	for (;;) {
		spin_lock_irq(&mf->lock);
		got = mf->head != mf->tail;
		spin_unlock_irq(&mf->lock);
		if (got)
			break;
		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		ret = wait_event_interruptible(mf->wait, READ_ONCE(mf->head) != READ_ONCE(mf->tail));
		if (ret)
			return ret;
	}
	while (done + sizeof(req) <= len) {
		spin_lock_irq(&mf->lock);
		got = mf->head != mf->tail;
		if (got) {
			req = mf->ring[mf->tail % MINOS_REQ_RING];
			mf->tail++;
		}
		spin_unlock_irq(&mf->lock);
		if (!got)
			break;
		if (copy_to_user(buf + done, &req, sizeof(req)))
			return done ? done : -EFAULT;
		done += sizeof(req);
	}
	return done;
}

static __poll_t minos_poll(struct file *file, poll_table *wait)
{
	struct minos_file *mf = file->private_data;

	poll_wait(file, &mf->wait, wait);
	return READ_ONCE(mf->head) != READ_ONCE(mf->tail) ? EPOLLIN | EPOLLRDNORM : 0;
}

/* The process is gone: its VMs go too, so their RAM returns to the pool. */
static int minos_release(struct inode *inode, struct file *file)
{
	struct minos_vm *vm, *tmp;
	int ret;

	mutex_lock(&minos_lock);
	list_for_each_entry_safe(vm, tmp, &minos_vms, node) {
		if (vm->owner != file)
			continue;
		ret = minos_vm_call(MINOS_HVC_VM_DESTROY, vm->vmid);
		if (ret && ret != -ENOENT)
			pr_err("vm %u: destroy on close failed (%d), its memory stays allocated\n",
			       vm->vmid, ret);
		minos_forget(vm);
	}
	mutex_unlock(&minos_lock);
	kfree(file->private_data);
	return 0;
}

static const struct file_operations minos_fops = {
	.owner = THIS_MODULE,
	.open = minos_open,
	.read = minos_read,
	.poll = minos_poll,
	.unlocked_ioctl = minos_ioctl,
	.mmap = minos_mmap,
	.release = minos_release,
	.llseek = noop_llseek,
};

static struct miscdevice minos_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = MINOS_DEVICE_NAME,
	.fops = &minos_fops,
	.mode = 0600,
};

/* Queues a blocking request for the VM owner's read(); false when its ring is full. */
static bool minos_queue_request(struct minos_vm *vm,
				const struct minos_virtio_request *r)
{
	struct minos_file *mf = vm->owner->private_data;
	unsigned long flags;
	bool queued;

	spin_lock_irqsave(&mf->lock, flags);
	queued = mf->head - mf->tail < MINOS_REQ_RING;
	if (queued) {
		mf->ring[mf->head % MINOS_REQ_RING] = *r;
		mf->head++;
	}
	spin_unlock_irqrestore(&mf->lock, flags);
	if (queued)
		wake_up_interruptible(&mf->wait);
	return queued;
}

/*
 * Signals the eventfd bound to each queue notification the hypervisor hands over and
 * queues the blocking requests (status, config) for the owning mvm to read and answer.
 */
static irqreturn_t minos_notify_thread(int irq, void *data)
{
	struct minos_virtio_request *reqs = data;
	unsigned long cap = PAGE_SIZE / sizeof(*reqs);
	struct arm_smccc_res res;
	struct minos_vm *vm;
	long n, i;

	for (;;) {
		n = minos_hvc(MINOS_HVC_VIRTIO_FETCH, virt_to_phys(reqs), cap, 0, 0,
			      &res);
		if (n <= 0)
			break;
		mutex_lock(&minos_lock);
		for (i = 0; i < n && i < cap; i++) {
			struct minos_virtio_request *r = &reqs[i];

			vm = minos_find(r->vmid);
			if (r->kind != MINOS_VIRTIO_REQ_QUEUE_NOTIFY) {
				if (!vm || !minos_queue_request(vm, r)) {
					/* Nobody can answer: do not leave the vCPU waiting. */
					pr_warn_ratelimited("vm %u dev %u: request kind %u dropped, answered with 0\n",
							    r->vmid, r->device, r->kind);
					minos_hvc(MINOS_HVC_VIRTIO_ACK, r->vmid, r->device, 0, 0,
						  &res);
				}
				continue;
			}
			if (vm && r->device < MINOS_MAX_DEVICES && vm->notify[r->device])
				eventfd_signal(vm->notify[r->device], 1);
		}
		mutex_unlock(&minos_lock);
	}
	return IRQ_HANDLED;
}

static void *minos_notify_buf;

static int minos_setup_notify(void)
{
	struct device_node *np;
	int irq, ret;

	np = of_find_compatible_node(NULL, NULL, MINOS_DT_COMPATIBLE);
	if (!np) {
		pr_warn("no \"%s\" node in the device tree: virtio notifications are off\n",
			MINOS_DT_COMPATIBLE);
		return 0;
	}
	irq = irq_of_parse_and_map(np, 0);
	of_node_put(np);
	if (!irq) {
		pr_err("the \"%s\" node has no usable interrupt\n", MINOS_DT_COMPATIBLE);
		return -EINVAL;
	}
	minos_notify_buf = minos_buf_alloc();
	if (!minos_notify_buf)
		return -ENOMEM;
	ret = request_threaded_irq(irq, NULL, minos_notify_thread, IRQF_ONESHOT,
				   "minos-notify", minos_notify_buf);
	if (ret) {
		minos_buf_free(minos_notify_buf);
		return ret;
	}
	minos_notify_irq = irq;
	return 0;
}

/*
 * A Minos hypervisor must be underneath: SMCCC 1.1 over HVC, the Minos UID, and an ABI
 * version with our major. The HVC conduit check comes first so no HVC is ever issued on
 * a machine without EL2 (where HVC is undefined).
 */
static int minos_handshake(void)
{
	struct arm_smccc_res res;
	u32 major, minor;
	long ver;

	if (arm_smccc_1_1_get_conduit() != SMCCC_CONDUIT_HVC) {
		pr_err("no Minos hypervisor: no SMCCC 1.1 HVC conduit (bare hardware or another firmware)\n");
		return -ENODEV;
	}
	minos_hvc(MINOS_VENDOR_HYP_CALL_UID, 0, 0, 0, 0, &res);
	if ((u32)res.a0 != MINOS_UID_0 || (u32)res.a1 != MINOS_UID_1 ||
	    (u32)res.a2 != MINOS_UID_2 || (u32)res.a3 != MINOS_UID_3) {
		pr_err("no Minos hypervisor: the vendor hypervisor UID is %08x-%08x-%08x-%08x\n",
		       (u32)res.a0, (u32)res.a1, (u32)res.a2, (u32)res.a3);
		return -ENODEV;
	}
	ver = minos_hvc(MINOS_HVC_VERSION, MINOS_ABI_VERSION, 0, 0, 0, &res);
	if (ver < 0) {
		pr_err("no Minos hypervisor: the VERSION call failed (%ld)\n", ver);
		return -ENODEV;
	}
	major = (u32)ver >> 16;
	minor = (u32)ver & 0xffff;
	if (major != MINOS_ABI_MAJOR) {
		pr_err("hypervisor ABI %u.%u, driver ABI %u.%u: versions differ, refusing to load\n",
		       major, minor, MINOS_ABI_MAJOR, MINOS_ABI_MINOR);
		return -EPROTO;
	}
	pr_info("Minos hypervisor ABI %u.%u (driver %u.%u)\n", major, minor,
		MINOS_ABI_MAJOR, MINOS_ABI_MINOR);
	return 0;
}

static int __init minos_init(void)
{
	int ret;

	ret = minos_handshake();
	if (ret)
		return ret;
	ret = minos_setup_notify();
	if (ret)
		return ret;
	ret = misc_register(&minos_dev);
	if (ret && minos_notify_irq) {
		free_irq(minos_notify_irq, minos_notify_buf);
		minos_buf_free(minos_notify_buf);
	}
	return ret;
}

static void __exit minos_exit(void)
{
	misc_deregister(&minos_dev);
	if (minos_notify_irq) {
		free_irq(minos_notify_irq, minos_notify_buf);
		minos_buf_free(minos_notify_buf);
	}
}

module_init(minos_init);
module_exit(minos_exit);
MODULE_DESCRIPTION("VM0 device for managing guest VMs on the Minos hypervisor");
MODULE_LICENSE("GPL");
