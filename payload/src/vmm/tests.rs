use super::*;
use crate::virtio_mmio::reg;
use crate::vuart::ring::{LogRing, RingRead};
use minos_abi::types::{set_name, VM_FLAG_GICV2};
use std::collections::{BTreeMap, BTreeSet};

const POOL_BASE: u64 = 0x1_0000_0000;
const POOL_BLOCKS: u64 = 64;
const VM0_RAM: u64 = 0x4400_0000;
const VM0_RAM_SIZE: u64 = 0x10_0000;
const BUF: u64 = VM0_RAM + 0x1000;
const WIN: Range<u64> = 0x2_0000_0000..0x2_1000_0000;

/// Which step of VM creation fails next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fail {
    None,
    Stage2,
    Vm0Map,
    Vgic,
    Vcpus,
}

struct Fake {
    pool: BlockPool,
    /// A pool that hands out a block it should not (a bug the Vmm must catch).
    rogue: Option<u64>,
    fail: Option<Fail>,
    stage2: BTreeMap<u32, (u64, Vec<u64>)>,
    vm0_maps: BTreeMap<u64, Vec<u64>>,
    vgic: BTreeMap<u32, GicSpec>,
    vcpus: BTreeMap<u32, u32>,
    running: BTreeSet<u32>,
    irqs: Vec<(u32, u32, IrqLevel)>,
    completed: Vec<(u32, u32, u64)>,
    reruns: Vec<(u32, u32)>,
    notify: bool,
    ram: Vec<u8>,
    /// Each early UART's log (small, so tests can overrun it).
    early: BTreeMap<u32, LogRing<64>>,
}

impl Fake {
    fn new() -> Self {
        let pool_ram = POOL_BASE..POOL_BASE + POOL_BLOCKS * MEM_ALIGN;
        Fake {
            pool: BlockPool::carve(&[pool_ram], &[]),
            rogue: None,
            fail: None,
            stage2: BTreeMap::new(),
            vm0_maps: BTreeMap::new(),
            vgic: BTreeMap::new(),
            vcpus: BTreeMap::new(),
            running: BTreeSet::new(),
            irqs: Vec::new(),
            completed: Vec::new(),
            reruns: Vec::new(),
            notify: false,
            ram: vec![0; VM0_RAM_SIZE as usize],
            early: BTreeMap::new(),
        }
    }

    fn ram_range(&self, ipa: u64, len: usize) -> Result<Range<usize>, HvcError> {
        let off = ipa.checked_sub(VM0_RAM).ok_or(HvcError::BadAddress)? as usize;
        if off + len > self.ram.len() {
            return Err(HvcError::BadAddress);
        }
        Ok(off..off + len)
    }

    fn step(&mut self, f: Fail) -> Result<(), HvcError> {
        if self.fail == Some(f) {
            return Err(HvcError::NoMemory);
        }
        Ok(())
    }
}

impl Platform for Fake {
    fn pool_total(&self) -> u64 {
        self.pool.total()
    }
    fn pool_free(&self) -> u64 {
        self.pool.free()
    }
    fn alloc_block(&mut self) -> Option<u64> {
        if let Some(r) = self.rogue.take() {
            return Some(r);
        }
        self.pool.alloc()
    }
    fn free_block(&mut self, pa: u64) {
        self.pool.release(pa).unwrap();
    }
    fn stage2_create(&mut self, vmid: u32, base: u64, blocks: &[u64]) -> Result<(), HvcError> {
        self.step(Fail::Stage2)?;
        assert!(self.stage2.insert(vmid, (base, blocks.to_vec())).is_none());
        Ok(())
    }
    fn stage2_destroy(&mut self, vmid: u32) {
        assert!(self.stage2.remove(&vmid).is_some());
    }
    fn vm0_map(&mut self, ipa: u64, blocks: &[u64]) -> Result<(), HvcError> {
        self.step(Fail::Vm0Map)?;
        assert!(self.vm0_maps.insert(ipa, blocks.to_vec()).is_none());
        Ok(())
    }
    fn vm0_unmap(&mut self, ipa: u64, len: u64) {
        let b = self.vm0_maps.remove(&ipa).expect("mapped");
        assert_eq!(b.len() as u64 * MEM_ALIGN, len);
    }
    fn vgic_create(&mut self, vmid: u32, gic: GicSpec) -> Result<(), HvcError> {
        self.step(Fail::Vgic)?;
        self.vgic.insert(vmid, gic);
        Ok(())
    }
    fn vgic_destroy(&mut self, vmid: u32) {
        assert!(self.vgic.remove(&vmid).is_some());
    }
    fn vcpus_create(
        &mut self,
        vmid: u32,
        count: u32,
        _aarch64: bool,
        early_uart: bool,
    ) -> Result<(), HvcError> {
        self.step(Fail::Vcpus)?;
        self.vcpus.insert(vmid, count);
        if early_uart {
            self.early.insert(vmid, LogRing::new());
        }
        Ok(())
    }
    fn vcpus_destroy(&mut self, vmid: u32) {
        assert!(!self.running.contains(&vmid), "vCPUs freed while running");
        assert!(self.vcpus.remove(&vmid).is_some());
        self.early.remove(&vmid);
    }
    fn vm_start(&mut self, vmid: u32, _entry: u64, _setup: u64) -> Result<(), HvcError> {
        self.running.insert(vmid);
        Ok(())
    }
    fn vm_stop(&mut self, vmid: u32) {
        self.running.remove(&vmid);
    }
    fn inject_irq(&mut self, vmid: u32, intid: u32, level: IrqLevel) -> Result<(), HvcError> {
        self.irqs.push((vmid, intid, level));
        Ok(())
    }
    fn complete_mmio(&mut self, vmid: u32, vcpu: u32, value: u64) {
        self.completed.push((vmid, vcpu, value));
    }
    fn rerun_mmio(&mut self, vmid: u32, vcpu: u32) {
        self.reruns.push((vmid, vcpu));
    }
    fn vm0_notify(&mut self, pending: bool) {
        self.notify = pending;
    }
    fn vm0_read(&mut self, ipa: u64, buf: &mut [u8]) -> Result<(), HvcError> {
        let r = self.ram_range(ipa, buf.len())?;
        buf.copy_from_slice(&self.ram[r]);
        Ok(())
    }
    fn vm0_write(&mut self, ipa: u64, buf: &[u8]) -> Result<(), HvcError> {
        let r = self.ram_range(ipa, buf.len())?;
        self.ram[r].copy_from_slice(buf);
        Ok(())
    }
    fn console_read(
        &mut self,
        vmid: u32,
        cursor: u64,
        out: &mut [u8],
    ) -> Result<RingRead, HvcError> {
        let ring = self.early.get(&vmid).ok_or(HvcError::BadState)?;
        ring.read_from(cursor, out)
            .ok_or(HvcError::InvalidParameter)
    }
}

fn vmm() -> Vmm<Fake> {
    let cfg = Config {
        nr_pcpus: 4,
        ipa_bits: 40,
        static_vmids: 0,
        reserved: vec![0x4000_0000..0x4400_0000, VM0_RAM..0x6000_0000],
        vm0_window: WIN,
    };
    Vmm::new(cfg, Fake::new()).unwrap()
}

fn params(mb: u64) -> VmCreate {
    let mut c = VmCreate {
        nr_vcpus: 2,
        flags: VM_FLAG_64BIT | VM_FLAG_GICV3,
        mem_base: 0x8000_0000,
        mem_size: mb << 20,
        entry: 0x8008_0000,
        setup_data: 0x8010_0000,
        gic_dist: 0x0800_0000,
        gic_cpu: 0x080a_0000,
        ..VmCreate::default()
    };
    set_name(&mut c.name, "guest");
    c
}

fn call(v: &mut Vmm<Fake>, fid: u32, a: [u64; 4]) -> [u64; 4] {
    v.hvc(0, [u64::from(fid), a[0], a[1], a[2], a[3]])
        .expect("a Minos call")
}

fn ok(r: [u64; 4]) -> u64 {
    match minos_abi::error::decode(r[0]) {
        Ok(x) => x,
        Err(e) => panic!("call failed: {e:?}"),
    }
}

fn fails(r: [u64; 4]) -> HvcError {
    HvcError::from_code(r[0] as i64).unwrap_or_else(|| panic!("succeeded: {r:x?}"))
}

fn put<T: Copy>(v: &mut Vmm<Fake>, val: &T) {
    v.platform_mut().vm0_write(BUF, as_bytes(val)).unwrap();
}

fn create(v: &mut Vmm<Fake>, c: &VmCreate) -> [u64; 4] {
    put(v, c);
    call(v, hvc::VM_CREATE, [BUF, 0, 0, 0])
}

fn device(vmid: u32, n: u32) -> VirtioDevice {
    VirtioDevice {
        vmid,
        device_id: 2,
        base: 0x4000_0000 + u64::from(n) * 0x200,
        intid: 32 + n,
        index: 0,
        features: 1 << 32,
        num_queues: 2,
        queue_max: 128,
    }
}

fn add(v: &mut Vmm<Fake>, d: &VirtioDevice) -> [u64; 4] {
    put(v, d);
    call(v, hvc::VIRTIO_ADD, [BUF, 0, 0, 0])
}

fn fetch(v: &mut Vmm<Fake>, cap: u64) -> Vec<VirtioRequest> {
    let n = ok(call(v, hvc::VIRTIO_FETCH, [BUF, cap, 0, 0]));
    let mut b = vec![0u8; n as usize * 32];
    v.platform_mut().vm0_read(BUF, &mut b).unwrap();
    b.chunks(32).map(from_bytes).collect()
}

fn w32(offset: u32, value: u32) -> Access {
    Access {
        offset,
        width: 4,
        write: true,
        value: u64::from(value),
    }
}

fn r32(offset: u32) -> Access {
    Access {
        offset,
        width: 4,
        write: false,
        value: 0,
    }
}

#[test]
fn smccc_and_uid_and_version() {
    let mut v = vmm();
    for caller in [0, 3] {
        assert_eq!(
            v.hvc(caller, [0x8000_0000, 0, 0, 0, 0]).unwrap()[0],
            0x1_0001
        );
        assert_eq!(
            v.hvc(caller, [0x8400_000a, 0x8000_0000, 0, 0, 0]),
            Some([0; 4])
        );
        let uid = v.hvc(caller, [0x8600_ff01, 0, 0, 0, 0]).unwrap();
        assert_eq!(uid, hvc::MINOS_UID.map(u64::from));
        let ver = v.hvc(caller, [u64::from(hvc::VERSION), 0x1_0000, 0, 0, 0]);
        assert_eq!(ver.unwrap()[0], u64::from(ABI_VERSION));
    }
    // SMCCC 1.1's mandatory ARCH_FEATURES: only itself exists (no arch workaround).
    assert_eq!(v.hvc(0, [0x8000_0001, 0x8000_0001, 0, 0, 0]), Some([0; 4]));
    assert_eq!(
        v.hvc(0, [0x8000_0001, 0x8000_8000, 0, 0, 0]).unwrap()[0],
        u64::MAX
    );
    // The trap path's answers without a Vmm are the Vmm's.
    for x in [
        [0x8000_0000, 0, 0, 0, 0],
        [0x8400_000a, 0x8000_0000, 0, 0, 0],
        [0x8600_ff01, 0, 0, 0, 0],
        [u64::from(hvc::VERSION), 0x1_0000, 0, 0, 0],
        [u64::from(hvc::VERSION), u64::MAX, 0, 0, 0],
        [0x8400_0050, 0, 0, 0, 0],
    ] {
        assert!(handshake(x).is_some());
        assert_eq!(handshake(x), v.hvc(0, x));
    }
    assert_eq!(
        handshake([u64::from(hvc::VERSION), u64::MAX, 0, 0, 0]).unwrap()[0],
        HvcError::InvalidParameter.reg()
    );
    assert_eq!(handshake([0x8400_0050, 0, 0, 0, 0]).unwrap()[0], u64::MAX);
    for fid in [hvc::VM_CREATE, hvc::MEM_INFO, hvc::HYP_INFO] {
        assert_eq!(handshake([u64::from(fid), 0, 0, 0, 0]), None);
    }
    // Not ours: PSCI answers them.
    assert_eq!(v.hvc(0, [0x8400_000a, 0x8400_0008, 0, 0, 0]), None);
    assert_eq!(v.hvc(0, [0xc400_0003, 0, 0, 0, 0]), None);
    assert_eq!(v.hvc(0, [0x8400_0000, 0, 0, 0, 0]), None);
    // Ours but unknown.
    assert_eq!(
        fails(call(&mut v, hvc::BASE + 0x80, [0; 4])),
        HvcError::NotSupported
    );
    let info = call(&mut v, hvc::HYP_INFO, [0; 4]);
    assert_eq!(info, [0, 8, 64, 4]);
}

#[test]
fn guests_are_denied_vm0_calls() {
    let mut v = vmm();
    let id = ok(create(&mut v, &params(8)));
    for (_, fid) in hvc::ALL {
        if hvc::allowed_for_any_vm(fid) {
            continue;
        }
        let r = v.hvc(id as u32, [u64::from(fid), id, BUF, 0, 0]).unwrap();
        assert_eq!(fails(r), HvcError::Denied, "{fid:#x}");
    }
    assert_eq!(v.state(id as u32), Some(VmState::Created), "untouched");
}

#[test]
fn create_maps_pool_memory_and_reports_it() {
    let mut v = vmm();
    let total = POOL_BLOCKS * MEM_ALIGN;
    assert_eq!(call(&mut v, hvc::MEM_INFO, [0; 4]), [0, total, total, 0]);
    let id = ok(create(&mut v, &params(8))) as u32;
    assert_eq!(id, 1);
    let mem = call(&mut v, hvc::MEM_INFO, [0; 4]);
    assert_eq!(mem[2], total - (8 << 20));
    let f = v.platform();
    let (base, blocks) = &f.stage2[&id];
    assert_eq!(*base, 0x8000_0000);
    assert_eq!(blocks.len(), 4);
    assert!(blocks
        .iter()
        .all(|b| (POOL_BASE..POOL_BASE + total).contains(b)));
    assert_eq!(f.vgic[&id].version, 3);
    assert_eq!(f.vcpus[&id], 2);
    let map = call(&mut v, hvc::VM_MAP_INFO, [u64::from(id), 0, 0, 0]);
    assert_eq!(map, [0, WIN.start, 8 << 20, 0x8000_0000]);
    assert_eq!(
        v.platform().vm0_maps[&WIN.start],
        v.platform().stage2[&id].1
    );

    let mut c = params(4);
    c.flags = VM_FLAG_GICV2;
    c.gic_cpu = 0x0801_0000;
    let id2 = ok(create(&mut v, &c)) as u32;
    assert_eq!(id2, 2);
    assert_eq!(v.platform().vgic[&id2].version, 2);
    let map2 = call(&mut v, hvc::VM_MAP_INFO, [u64::from(id2), 0, 0, 0]);
    assert_eq!(map2[1], WIN.start + (8 << 20), "windows do not overlap");
    let b1: BTreeSet<u64> = v.platform().stage2[&id].1.iter().copied().collect();
    assert!(v.platform().stage2[&id2].1.iter().all(|b| !b1.contains(b)));
}

#[test]
fn vm_info_is_written_to_vm0() {
    let mut v = vmm();
    let id = ok(create(&mut v, &params(8)));
    let at = BUF + 0x200;
    ok(call(&mut v, hvc::VM_INFO, [id, at, 0, 0]));
    let mut b = [0u8; 88];
    v.platform_mut().vm0_read(at, &mut b).unwrap();
    let info: VmInfo = from_bytes(&b);
    assert_eq!(info.vmid, 1);
    assert_eq!(info.state, VmState::Created as u32);
    assert_eq!(info.mem_size, 8 << 20);
    assert_eq!(minos_abi::types::name_str(&info.name), Some("guest"));
    assert_eq!(
        fails(call(&mut v, hvc::VM_INFO, [id, BUF + 0xfc0, 0, 0])),
        HvcError::BadAddress,
        "crosses a page"
    );
    assert_eq!(
        fails(call(&mut v, hvc::VM_INFO, [id, 0x1000, 0, 0])),
        HvcError::BadAddress,
        "not VM0 RAM"
    );
    assert_eq!(
        fails(call(&mut v, hvc::VM_INFO, [5, at, 0, 0])),
        HvcError::NoSuchVm
    );
}

#[test]
fn create_refuses_bad_parameters_without_allocating() {
    let mut v = vmm();
    let free = v.platform().pool_free();
    let mut over_gpio = params(8);
    over_gpio.mem_base = 0x4000_0000;
    over_gpio.entry = 0x4000_0000;
    over_gpio.setup_data = 0x4000_1000;
    let mut zero = params(8);
    zero.nr_vcpus = 0;
    let mut too_high = params(8);
    too_high.mem_base = (1 << 40) - (6 << 20);
    too_high.entry = too_high.mem_base;
    too_high.setup_data = too_high.mem_base;
    let mut gic_too_high = params(8);
    gic_too_high.gic_dist = 1 << 40;
    for c in [over_gpio, zero, too_high, gic_too_high] {
        assert_eq!(fails(create(&mut v, &c)), HvcError::InvalidParameter);
    }
    assert_eq!(
        fails(call(&mut v, hvc::VM_CREATE, [0x1000, 0, 0, 0])),
        HvcError::BadAddress
    );
    assert_eq!(
        fails(call(&mut v, hvc::VM_CREATE, [BUF + 4, 0, 0, 0])),
        HvcError::BadAddress
    );
    // Bigger than the pool: nothing stays allocated.
    assert_eq!(
        fails(create(&mut v, &params(2 * POOL_BLOCKS + 2))),
        HvcError::NoMemory
    );
    // Bigger than the VM0 window.
    assert_eq!(fails(create(&mut v, &params(258 << 1))), HvcError::NoMemory);
    assert_eq!(v.platform().pool_free(), free);
    assert_eq!(v.vmids().count(), 0);
}

#[test]
fn each_failed_creation_step_is_rolled_back() {
    for f in [Fail::Stage2, Fail::Vm0Map, Fail::Vgic, Fail::Vcpus] {
        let mut v = vmm();
        let free = v.platform().pool_free();
        v.platform_mut().fail = Some(f);
        assert_eq!(fails(create(&mut v, &params(8))), HvcError::NoMemory);
        let p = v.platform();
        assert_eq!(p.pool_free(), free, "{f:?}");
        assert!(p.stage2.is_empty() && p.vm0_maps.is_empty(), "{f:?}");
        assert!(p.vgic.is_empty() && p.vcpus.is_empty(), "{f:?}");
        v.platform_mut().fail = None;
        assert_eq!(ok(create(&mut v, &params(8))), 1, "{f:?}: id not burnt");
    }
    assert_eq!(Fail::None, Fail::None);
}

#[test]
fn a_pool_block_inside_vm0_or_another_vm_is_never_used() {
    let mut v = vmm();
    let id = ok(create(&mut v, &params(4))) as u32;
    let theirs = v.platform().stage2[&id].1[0];
    for rogue in [VM0_RAM, theirs, POOL_BASE + 0x1000] {
        let free = v.platform().pool_free();
        v.platform_mut().rogue = Some(rogue);
        assert_eq!(fails(create(&mut v, &params(4))), HvcError::NoMemory);
        assert_eq!(v.platform().pool_free(), free);
        assert_eq!(v.platform().stage2.len(), 1);
    }
}

#[test]
fn create_destroy_50_times_returns_every_block() {
    let mut v = vmm();
    let free = v.platform().pool_free();
    for i in 0..50u64 {
        let a = ok(create(&mut v, &params(2 + (i % 5) * 2)));
        let b = ok(create(&mut v, &params(6)));
        if i % 2 == 0 {
            ok(call(&mut v, hvc::VM_START, [a, 0, 0, 0]));
        }
        ok(call(&mut v, hvc::VM_DESTROY, [a, 0, 0, 0]));
        ok(call(&mut v, hvc::VM_DESTROY, [b, 0, 0, 0]));
        assert_eq!(
            fails(call(&mut v, hvc::VM_DESTROY, [a, 0, 0, 0])),
            HvcError::NoSuchVm
        );
    }
    let p = v.platform();
    assert_eq!(p.pool_free(), free);
    assert!(p.stage2.is_empty() && p.vm0_maps.is_empty() && p.vgic.is_empty());
    assert!(p.vcpus.is_empty() && p.running.is_empty());
}

#[test]
fn vm_ids_skip_static_vms_and_run_out_cleanly() {
    let cfg = Config {
        nr_pcpus: 1,
        ipa_bits: 40,
        static_vmids: 0b101,
        reserved: vec![],
        vm0_window: WIN,
    };
    let mut v = Vmm::new(cfg, Fake::new()).unwrap();
    assert_eq!(ok(create(&mut v, &params(2))), 2);
    assert_eq!(ok(create(&mut v, &params(2))), 4);
    assert_eq!(
        fails(call(&mut v, hvc::VM_DESTROY, [1, 0, 0, 0])),
        HvcError::NoSuchVm,
        "a static VM is not managed here"
    );
    assert_eq!(call(&mut v, hvc::HYP_INFO, [0; 4])[2], 62);
    // 62 VMs fit the ids, then the ids run out (the pool has 64 blocks).
    for _ in 2..62 {
        ok(create(&mut v, &params(2)));
    }
    assert_eq!(fails(create(&mut v, &params(2))), HvcError::NoMemory);
    assert_eq!(v.platform().pool_free(), 2 * MEM_ALIGN);
}

#[test]
fn bad_configs_are_refused() {
    let bad = |w: Range<u64>, reserved: Vec<Range<u64>>| {
        let cfg = Config {
            nr_pcpus: 1,
            ipa_bits: 40,
            static_vmids: 0,
            reserved,
            vm0_window: w,
        };
        Vmm::new(cfg, Fake::new()).err()
    };
    assert_eq!(
        bad(WIN.start..WIN.start, vec![]),
        Some(ConfigError::BadWindow)
    );
    assert_eq!(
        bad(WIN.start + 4096..WIN.end, vec![]),
        Some(ConfigError::BadWindow)
    );
    assert_eq!(
        bad(
            WIN,
            vec![Range {
                start: WIN.end - 1,
                end: WIN.end
            }]
        ),
        Some(ConfigError::BadWindow)
    );
    assert_eq!(
        bad(
            WIN,
            vec![Range {
                start: WIN.end,
                end: WIN.end + 1
            }]
        ),
        None
    );
}

#[test]
fn ipa_sizes_outside_what_stage2_builds_are_refused() {
    for (bits, ok) in [(31, false), (32, true), (48, true), (49, false)] {
        let cfg = Config {
            nr_pcpus: 1,
            ipa_bits: bits,
            static_vmids: 0,
            reserved: vec![],
            vm0_window: WIN,
        };
        let r = Vmm::new(cfg, Fake::new()).err();
        assert_eq!(r, (!ok).then_some(ConfigError::BadIpaBits), "{bits}");
    }
}

#[test]
fn lifecycle_states() {
    let mut v = vmm();
    let id = ok(create(&mut v, &params(4)));
    let st = |v: &Vmm<Fake>| v.state(id as u32).unwrap();
    assert_eq!(
        fails(call(&mut v, hvc::VM_STOP, [id, 0, 0, 0])),
        HvcError::BadState
    );
    assert_eq!(
        fails(call(&mut v, hvc::VM_SHUTDOWN, [id, 0, 0, 0])),
        HvcError::BadState
    );
    ok(call(&mut v, hvc::VM_START, [id, 0, 0, 0]));
    assert_eq!(st(&v), VmState::Running);
    assert_eq!(
        fails(call(&mut v, hvc::VM_START, [id, 0, 0, 0])),
        HvcError::BadState
    );
    ok(call(&mut v, hvc::VM_SHUTDOWN, [id, 0, 0, 0]));
    assert_eq!(st(&v), VmState::ShuttingDown);
    v.platform_mut().vm_stop(id as u32);
    v.guest_off(id as u32);
    assert_eq!(st(&v), VmState::Off);
    ok(call(&mut v, hvc::VM_START, [id, 0, 0, 0]));
    ok(call(&mut v, hvc::VM_STOP, [id, 0, 0, 0]));
    assert_eq!(st(&v), VmState::Off);
    assert!(v.platform().running.is_empty());
    assert_eq!(
        fails(call(&mut v, hvc::VM_START, [9, 0, 0, 0])),
        HvcError::NoSuchVm
    );
}

#[test]
fn release_owner_destroys_its_vms() {
    let mut v = vmm();
    let free = v.platform().pool_free();
    for _ in 0..3 {
        ok(create(&mut v, &params(4)));
    }
    ok(call(&mut v, hvc::VM_START, [2, 0, 0, 0]));
    v.release_owner(7);
    assert_eq!(v.vmids().count(), 3, "another owner's VMs stay");
    v.release_owner(0);
    assert_eq!(v.vmids().count(), 0);
    assert_eq!(v.platform().pool_free(), free);
}

#[test]
fn virtio_add_checks_the_window_and_state() {
    let mut v = vmm();
    let id = ok(create(&mut v, &params(8))) as u32;
    assert_eq!(ok(add(&mut v, &device(id, 0))), 0);
    assert_eq!(ok(add(&mut v, &device(id, 1))), 1);
    let same_window = VirtioDevice {
        intid: 50,
        ..device(id, 1)
    };
    let same_intid = VirtioDevice {
        intid: 33,
        ..device(id, 2)
    };
    let on_gic = VirtioDevice {
        base: 0x080a_0000,
        ..device(id, 3)
    };
    let in_ram = VirtioDevice {
        base: 0x8000_0000,
        ..device(id, 3)
    };
    let on_gpio = VirtioDevice {
        base: POWER_GPIO_BASE,
        intid: 60,
        ..device(id, 3)
    };
    let gpio_intid = VirtioDevice {
        intid: POWER_GPIO_INTID,
        ..device(id, 3)
    };
    let past_ipa = VirtioDevice {
        base: 1 << 40,
        ..device(id, 3)
    };
    let wrapping = VirtioDevice {
        base: u64::MAX - 0x1ff,
        ..device(id, 3)
    };
    for d in [
        same_window,
        same_intid,
        on_gic,
        in_ram,
        on_gpio,
        gpio_intid,
        wrapping,
        past_ipa,
    ] {
        assert_eq!(fails(add(&mut v, &d)), HvcError::InvalidParameter, "{d:x?}");
    }
    assert_eq!(fails(add(&mut v, &device(9, 3))), HvcError::NoSuchVm);
    for n in 2..8 {
        ok(add(&mut v, &device(id, n)));
    }
    let ninth = VirtioDevice {
        base: 0x5000_0000,
        intid: 100,
        ..device(id, 0)
    };
    assert_eq!(fails(add(&mut v, &ninth)), HvcError::NoMemory);
    ok(call(&mut v, hvc::VM_START, [u64::from(id), 0, 0, 0]));
    let id2 = ok(create(&mut v, &params(2))) as u32;
    ok(call(&mut v, hvc::VM_START, [u64::from(id2), 0, 0, 0]));
    assert_eq!(fails(add(&mut v, &device(id2, 0))), HvcError::BadState);
}

#[test]
fn queue_notify_is_forwarded_without_blocking() {
    let mut v = vmm();
    let id = ok(create(&mut v, &params(8))) as u32;
    ok(add(&mut v, &device(id, 0)));
    ok(add(&mut v, &device(id, 1)));
    ok(call(&mut v, hvc::VM_START, [u64::from(id), 0, 0, 0]));
    let dev1 = 0x4000_0200;
    assert_eq!(v.mmio(id, 0, 0x4000_0400, r32(0)), MmioOutcome::NotMine);
    assert_eq!(v.mmio(id + 1, 0, dev1, r32(0)), MmioOutcome::NotMine);
    assert_eq!(v.mmio(id, 0, dev1, r32(0)), MmioOutcome::Done(0x7472_6976));
    assert!(!v.platform().notify);
    for _ in 0..3 {
        let n = v.mmio(id, 1, dev1 + u64::from(reg::QUEUE_NOTIFY), w32(0x50, 1));
        assert_eq!(n, MmioOutcome::Done(0));
    }
    assert!(v.platform().notify, "VM0 is told");
    let reqs = fetch(&mut v, 16);
    assert_eq!(reqs.len(), 1, "coalesced: one notification until fetched");
    assert_eq!(
        (reqs[0].vmid, reqs[0].device, reqs[0].kind, reqs[0].offset),
        (id, 1, RequestKind::QueueNotify as u32, 1)
    );
    assert!(!v.platform().notify, "drained");
    assert!(fetch(&mut v, 16).is_empty());
}

#[test]
fn status_and_config_block_until_mvm_acks() {
    let mut v = vmm();
    let id = ok(create(&mut v, &params(8))) as u32;
    ok(add(&mut v, &device(id, 0)));
    ok(call(&mut v, hvc::VM_START, [u64::from(id), 0, 0, 0]));
    let base = 0x4000_0000;
    let vid = u64::from(id);
    assert_eq!(
        fails(call(&mut v, hvc::VIRTIO_ACK, [vid, 0, 0, 0])),
        HvcError::BadState,
        "nothing to answer"
    );
    let cfg = Access {
        offset: 0,
        width: 2,
        write: false,
        value: 0,
    };
    assert_eq!(v.mmio(id, 1, base + 0x108, cfg), MmioOutcome::Blocked);
    assert!(v.platform().notify);
    assert_eq!(
        v.mmio(id, 0, base + 0x70, w32(0, 1)),
        MmioOutcome::Retry,
        "one blocking request per device"
    );
    let reqs = fetch(&mut v, 4);
    assert_eq!(reqs.len(), 1);
    let r = reqs[0];
    assert_eq!(
        (r.kind, r.offset, r.width),
        (RequestKind::ConfigRead as u32, 8, 2)
    );
    assert!(!v.platform().notify, "fetched, not pending any more");
    assert!(fetch(&mut v, 4).is_empty(), "handed out once");
    assert!(v.platform().reruns.is_empty(), "vCPU 0 waits, not spins");
    ok(call(&mut v, hvc::VIRTIO_ACK, [vid, 0, 0x1_2345, 0]));
    assert_eq!(v.platform().completed, [(id, 1, 0x2345)]);
    assert_eq!(v.platform().reruns, [(id, 0)], "vCPU 0 tries again");
    assert_eq!(
        fails(call(&mut v, hvc::VIRTIO_ACK, [vid, 0, 0, 0])),
        HvcError::BadState,
        "answered once"
    );
    assert_eq!(
        fails(call(&mut v, hvc::VIRTIO_ACK, [vid, 5, 0, 0])),
        HvcError::InvalidParameter
    );

    assert_eq!(v.mmio(id, 0, base + 0x70, w32(0, 1)), MmioOutcome::Blocked);
    let r = fetch(&mut v, 4)[0];
    assert_eq!((r.kind, r.value), (RequestKind::StatusWrite as u32, 1));
    ok(call(&mut v, hvc::VIRTIO_ACK, [vid, 0, 99, 0]));
    assert_eq!(
        v.platform().completed[1],
        (id, 0, 0),
        "writes return nothing"
    );
}

#[test]
fn virtio_queue_reads_back_the_guest_registers() {
    let mut v = vmm();
    let id = ok(create(&mut v, &params(8))) as u32;
    ok(add(&mut v, &device(id, 0)));
    let b = 0x4000_0000;
    for (o, val) in [
        (reg::QUEUE_SEL, 1),
        (reg::QUEUE_NUM, 64),
        (reg::QUEUE_DESC_LOW, 0x8010_0000),
        (reg::QUEUE_DRIVER_LOW, 0x8010_1000),
        (reg::QUEUE_DEVICE_LOW, 0x8010_2000),
        (reg::QUEUE_READY, 1),
    ] {
        assert_eq!(
            v.mmio(id, 0, b + u64::from(o), w32(0, val)),
            MmioOutcome::Done(0)
        );
    }
    let q = call(&mut v, hvc::VIRTIO_QUEUE, [u64::from(id), 0, 1, 0]);
    assert_eq!(q, [64 | 1 << 16, 0x8010_0000, 0x8010_1000, 0x8010_2000]);
    assert_eq!(
        fails(call(&mut v, hvc::VIRTIO_QUEUE, [u64::from(id), 0, 2, 0])),
        HvcError::InvalidParameter
    );
    assert_eq!(
        fails(call(&mut v, hvc::VIRTIO_QUEUE, [u64::from(id), 1, 0, 0])),
        HvcError::InvalidParameter
    );
}

#[test]
fn used_buffer_irq_sets_interrupt_status() {
    let mut v = vmm();
    let id = ok(create(&mut v, &params(8))) as u32;
    ok(add(&mut v, &device(id, 0)));
    ok(add(&mut v, &device(id, 1)));
    ok(call(&mut v, hvc::VM_IRQ, [u64::from(id), 33, 2, 0]));
    assert_eq!(v.platform().irqs, [(id, 33, IrqLevel::Edge)]);
    assert_eq!(v.mmio(id, 0, 0x4000_0260, r32(0)), MmioOutcome::Done(1));
    assert_eq!(v.mmio(id, 0, 0x4000_0060, r32(0)), MmioOutcome::Done(0));
    ok(call(&mut v, hvc::VM_IRQ, [u64::from(id), 70, 1, 0]));
    assert_eq!(
        fails(call(&mut v, hvc::VM_IRQ, [9, 33, 2, 0])),
        HvcError::NoSuchVm
    );
}

#[test]
fn stopping_or_destroying_drops_outstanding_requests() {
    let mut v = vmm();
    let a = ok(create(&mut v, &params(4))) as u32;
    let b = ok(create(&mut v, &params(4))) as u32;
    for id in [a, b] {
        ok(add(&mut v, &device(id, 0)));
        ok(call(&mut v, hvc::VM_START, [u64::from(id), 0, 0, 0]));
        assert_eq!(v.mmio(id, 0, 0x4000_0070, w32(0, 1)), MmioOutcome::Blocked);
    }
    ok(call(&mut v, hvc::VM_STOP, [u64::from(a), 0, 0, 0]));
    ok(call(&mut v, hvc::VM_DESTROY, [u64::from(b), 0, 0, 0]));
    assert!(!v.platform().notify);
    assert!(fetch(&mut v, 8).is_empty());
    assert_eq!(
        fails(call(&mut v, hvc::VIRTIO_ACK, [u64::from(a), 0, 0, 0])),
        HvcError::BadState
    );
    assert!(v.platform().completed.is_empty());
}

#[test]
fn fetch_respects_capacity_page_and_takes_turns() {
    let mut v = vmm();
    let ids: Vec<u32> = (0..3)
        .map(|_| ok(create(&mut v, &params(2))) as u32)
        .collect();
    for &id in &ids {
        ok(add(&mut v, &device(id, 0)));
        ok(call(&mut v, hvc::VM_START, [u64::from(id), 0, 0, 0]));
        v.mmio(id, 0, 0x4000_0050, w32(0, 0));
        v.mmio(id, 0, 0x4000_0050, w32(0, 1));
    }
    let first = fetch(&mut v, 2);
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|r| r.vmid == ids[0]));
    assert!(v.platform().notify, "more pending");
    let second = fetch(&mut v, 3);
    assert_eq!(second.len(), 3);
    assert_eq!(second[0].vmid, ids[1], "the next VM's turn");
    assert_eq!(fetch(&mut v, 100).len(), 1);
    assert!(!v.platform().notify);
    assert_eq!(
        fails(call(&mut v, hvc::VIRTIO_FETCH, [BUF, 0, 0, 0])),
        HvcError::InvalidParameter
    );
    // Near the end of a page only what fits is written.
    v.mmio(ids[0], 0, 0x4000_0050, w32(0, 0));
    v.mmio(ids[1], 0, 0x4000_0050, w32(0, 0));
    let n = ok(call(&mut v, hvc::VIRTIO_FETCH, [BUF + 4096 - 32, 10, 0, 0]));
    assert_eq!(n, 1);
    assert_eq!(
        fails(call(&mut v, hvc::VIRTIO_FETCH, [0x1000, 10, 0, 0])),
        HvcError::BadAddress
    );
    assert!(v.platform().notify, "a failed fetch loses nothing");
    assert_eq!(fetch(&mut v, 10).len(), 1);
}

/// mvm's side as its backends behave: a block device's config space and the queue it read at
/// `DRIVER_OK`.
struct MvmModel {
    capacity: u64,
    queue: Option<[u64; 4]>,
}

impl MvmModel {
    /// One pass of mvm's loop: fetch, answer each blocking request; the queues notified.
    fn serve(&mut self, v: &mut Vmm<Fake>) -> Vec<u32> {
        let mut notified = Vec::new();
        for r in fetch(v, 16) {
            let value = match RequestKind::from_u32(r.kind).unwrap() {
                RequestKind::QueueNotify => {
                    notified.push(r.offset);
                    continue;
                }
                RequestKind::ConfigRead => {
                    let cfg = self.capacity.to_le_bytes();
                    let (o, w) = (r.offset as usize, r.width as usize);
                    let mut b = [0u8; 8];
                    b[..w].copy_from_slice(&cfg[o..o + w]);
                    u64::from_le_bytes(b)
                }
                RequestKind::StatusWrite => {
                    if r.value & 4 != 0 {
                        let q = call(v, hvc::VIRTIO_QUEUE, [u64::from(r.vmid), 0, 0, 0]);
                        self.queue = Some(q);
                    }
                    0
                }
                RequestKind::ConfigWrite => 0,
            };
            let a = [u64::from(r.vmid), u64::from(r.device), value, 0];
            ok(call(v, hvc::VIRTIO_ACK, a));
        }
        notified
    }

    /// A guest access to device 0 of VM 1 by vCPU 0; a blocking one completes only through
    /// mvm.
    fn guest(&mut self, v: &mut Vmm<Fake>, offset: u32, width: u32, write: Option<u64>) -> u64 {
        let a = Access {
            offset: 0,
            width,
            write: write.is_some(),
            value: write.unwrap_or(0),
        };
        match v.mmio(1, 0, 0x4000_0000 + u64::from(offset), a) {
            MmioOutcome::Done(x) => x,
            MmioOutcome::Blocked => {
                assert!(v.platform().notify, "VM0 is told about {offset:#x}");
                let before = v.platform().completed.len();
                assert!(self.serve(v).is_empty());
                let done = &v.platform().completed;
                assert_eq!(done.len(), before + 1, "{offset:#x} answered");
                done[before].2
            }
            o => panic!("{offset:#x}: {o:?}"),
        }
    }
}

/// A guest driver's probe as Linux's virtio_mmio does it, against mvm's way of answering.
#[test]
fn a_linux_style_probe_against_an_mvm_style_loop() {
    let mut v = vmm();
    let id = ok(create(&mut v, &params(8))) as u32;
    let blk = VirtioDevice {
        features: 1 << 32 | 1 << 6,
        num_queues: 1,
        ..device(id, 0)
    };
    ok(add(&mut v, &blk));
    ok(call(&mut v, hvc::VM_START, [u64::from(id), 0, 0, 0]));
    let capacity = 0x20_0000;
    let mut m = MvmModel {
        capacity,
        queue: None,
    };
    let v = &mut v;

    assert_eq!(m.guest(v, 0x000, 4, None), 0x7472_6976);
    assert_eq!(m.guest(v, 0x004, 4, None), 2);
    assert_eq!(m.guest(v, 0x008, 4, None), 2);
    m.guest(v, 0x070, 4, Some(0));
    m.guest(v, 0x070, 4, Some(1));
    m.guest(v, 0x070, 4, Some(3));
    m.guest(v, 0x014, 4, Some(1));
    let hi = m.guest(v, 0x010, 4, None);
    m.guest(v, 0x014, 4, Some(0));
    let lo = m.guest(v, 0x010, 4, None);
    assert_eq!(hi << 32 | lo, blk.features);
    m.guest(v, 0x024, 4, Some(1));
    m.guest(v, 0x020, 4, Some(1));
    m.guest(v, 0x024, 4, Some(0));
    m.guest(v, 0x020, 4, Some(1 << 6));
    m.guest(v, 0x070, 4, Some(11));
    assert_eq!(m.guest(v, 0x070, 4, None), 11, "FEATURES_OK kept");
    // Capacity read as two 32-bit halves, the way Linux reads a 64-bit field.
    let lo = m.guest(v, 0x100, 4, None);
    let hi = m.guest(v, 0x104, 4, None);
    assert_eq!(hi << 32 | lo, capacity);
    assert_eq!(m.guest(v, 0x102, 1, None), 0x20, "one byte of it");
    m.guest(v, 0x030, 4, Some(0));
    assert_eq!(m.guest(v, 0x034, 4, None), 128);
    m.guest(v, 0x038, 4, Some(128));
    m.guest(v, 0x080, 4, Some(0x8020_0000));
    m.guest(v, 0x090, 4, Some(0x8020_0800));
    m.guest(v, 0x0a0, 4, Some(0x8020_1000));
    m.guest(v, 0x044, 4, Some(1));
    assert!(m.queue.is_none());
    m.guest(v, 0x070, 4, Some(15));
    assert_eq!(
        m.queue,
        Some([128 | 1 << 16, 0x8020_0000, 0x8020_0800, 0x8020_1000]),
        "mvm saw the queue at DRIVER_OK"
    );

    // I/O: the notify does not block; mvm's used-buffer interrupt sets InterruptStatus.
    m.guest(v, 0x050, 4, Some(0));
    assert_eq!(m.serve(v), [0]);
    ok(call(v, hvc::VM_IRQ, [u64::from(id), 32, 2, 0]));
    assert_eq!(v.platform().irqs, [(id, 32, IrqLevel::Edge)]);
    assert_eq!(m.guest(v, 0x060, 4, None), 1);
    m.guest(v, 0x064, 4, Some(1));
    assert_eq!(m.guest(v, 0x060, 4, None), 0);
    assert!(!v.platform().notify, "nothing left for VM0");
}

#[test]
fn shutdown_presses_the_power_button_the_guest_listens_to() {
    let mut v = vmm();
    let id = ok(create(&mut v, &params(4))) as u32;
    ok(call(&mut v, hvc::VM_START, [u64::from(id), 0, 0, 0]));
    let gpio = |o: u64| POWER_GPIO_BASE + o;
    let w8 = |value: u64| Access {
        offset: 0,
        width: 1,
        write: true,
        value,
    };
    let r8 = Access {
        offset: 0,
        width: 1,
        write: false,
        value: 0,
    };
    assert_eq!(v.mmio(id, 0, gpio(0xfe0), r8), MmioOutcome::Done(0x61));
    // gpio-keys on pin 3: both edges, unmasked.
    assert_eq!(v.mmio(id, 0, gpio(0x408), w8(1 << 3)), MmioOutcome::Done(0));
    v.mmio(id, 0, gpio(0x410), w8(1 << 3));
    assert!(v.platform().irqs.is_empty());
    ok(call(&mut v, hvc::VM_SHUTDOWN, [u64::from(id), 0, 0, 0]));
    assert_eq!(v.platform().irqs, [(id, POWER_GPIO_INTID, IrqLevel::High)]);
    assert_eq!(v.mmio(id, 0, gpio(0x20), r8), MmioOutcome::Done(1 << 3));
    v.mmio(id, 0, gpio(0x41c), w8(1 << 3));
    assert_eq!(v.platform().irqs[1], (id, POWER_GPIO_INTID, IrqLevel::Low));
    assert_eq!(
        v.mmio(id, 0, gpio(0x411), r8),
        MmioOutcome::Done(0),
        "unknown offset"
    );
    let wide = Access { width: 8, ..r8 };
    assert_eq!(v.mmio(id, 0, gpio(0x410), wide), MmioOutcome::Done(0));
    // The guest powers off; a restart finds the button released.
    v.platform_mut().vm_stop(id);
    v.guest_off(id);
    ok(call(&mut v, hvc::VM_START, [u64::from(id), 0, 0, 0]));
    assert_eq!(v.mmio(id, 0, gpio(0x20), r8), MmioOutcome::Done(0));
    assert_eq!(v.mmio(id, 0, gpio(0x410), r8), MmioOutcome::Done(0));
    assert_eq!(v.platform().irqs.len(), 2, "the line was already low");
}

/// xorshift64*: a fixed sequence, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// An argument: small, a VM0 buffer, the plausible `n`, or anything.
    fn arg(&mut self, n: u64) -> u64 {
        match self.next() % 4 {
            0 => self.next() % 4,
            1 => BUF + (self.next() % 64) * 8,
            2 => n,
            _ => self.next(),
        }
    }
}

/// Random calls from random callers and random accesses to the device windows: nothing
/// panics, and the pool's accounting always matches the VMs that exist.
#[test]
fn random_calls_and_accesses_never_panic_or_leak() {
    let mut v = vmm();
    let total = v.platform().pool_total();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for i in 0..20_000u32 {
        match rng.next() % 5 {
            0 => {
                // A well-formed create now and then keeps VMs around to poke at.
                let mut c = params(2 + (rng.next() % 4) * 2);
                c.flags = [VM_FLAG_64BIT | VM_FLAG_GICV3, VM_FLAG_GICV2][(rng.next() % 2) as usize];
                c.gic_cpu = 0x0810_0000;
                create(&mut v, &c);
                let d = device((rng.next() % 4) as u32, (rng.next() % 8) as u32);
                add(&mut v, &d);
            }
            1 | 2 => {
                let fid = hvc::BASE + (rng.next() % 17) as u32;
                let caller = (rng.next() % 3) as u32;
                let x = [
                    u64::from(fid),
                    rng.arg(1),
                    rng.arg(0),
                    rng.arg(2),
                    rng.arg(3),
                ];
                let _ = v.hvc(caller, x);
            }
            _ => {
                let vmid = (rng.next() % 5) as u32;
                let ipa = match rng.next() % 3 {
                    0 => 0x4000_0000 + rng.next() % 0x1000,
                    1 => POWER_GPIO_BASE + rng.next() % 0x1100,
                    _ => rng.next(),
                };
                let a = Access {
                    offset: 0,
                    width: [1, 2, 4, 8, 3][(rng.next() % 5) as usize],
                    write: rng.next().is_multiple_of(2),
                    value: rng.next(),
                };
                let vcpu = (rng.next() % 9) as u32;
                let _ = v.mmio(vmid, vcpu, ipa, a);
            }
        }
        if i % 1000 == 0 {
            // Let mvm catch up, as the driver's interrupt thread would.
            for _ in 0..8 {
                let _ = call(&mut v, hvc::VIRTIO_FETCH, [BUF, 128, 0, 0]);
            }
        }
        let used: u64 = v
            .vmids()
            .map(|id| v.guest(id).unwrap().params.mem_size)
            .sum();
        assert_eq!(v.platform().pool_free() + used, total, "step {i}");
    }
    assert!(v.vmids().count() > 0, "the run created VMs");
    v.release_owner(0);
    assert_eq!(v.platform().pool_free(), total);
}

fn console_read(v: &mut Vmm<Fake>, vmid: u32, buf: u64, cap: u64, cursor: u64) -> [u64; 4] {
    call(v, hvc::VM_CONSOLE_READ, [u64::from(vmid), buf, cap, cursor])
}

fn vm0_bytes(v: &mut Vmm<Fake>, ipa: u64, n: u64) -> Vec<u8> {
    let mut b = vec![0u8; n as usize];
    v.platform_mut().vm0_read(ipa, &mut b).unwrap();
    b
}

#[test]
fn early_console_is_read_from_a_cursor_into_vm0() {
    let mut v = vmm();
    let plain = ok(create(&mut v, &params(4))) as u32;
    let mut c = params(4);
    c.flags |= VM_FLAG_EARLYPRINTK;
    c.mem_base = 0x9000_0000;
    c.entry = 0x9008_0000;
    c.setup_data = 0x9010_0000;
    let id = ok(create(&mut v, &c)) as u32;
    assert!(
        !v.platform().early.contains_key(&plain),
        "no UART unless asked"
    );
    assert_eq!(
        fails(console_read(&mut v, plain, BUF, 64, 0)),
        HvcError::BadState
    );
    assert_eq!(
        fails(console_read(&mut v, 9, BUF, 64, 0)),
        HvcError::NoSuchVm
    );

    // Nothing written yet: an empty read.
    assert_eq!(console_read(&mut v, id, BUF, 64, 0), [0, 0, 0, 0]);
    v.platform_mut()
        .early
        .get_mut(&id)
        .unwrap()
        .extend(b"Booting Linux\n");
    // A small buffer takes the start; the next call goes on from its cursor.
    assert_eq!(console_read(&mut v, id, BUF, 8, 0), [8, 8, 0, 0]);
    assert_eq!(vm0_bytes(&mut v, BUF, 8), b"Booting ");
    assert_eq!(console_read(&mut v, id, BUF, 64, 8), [6, 14, 0, 0]);
    assert_eq!(vm0_bytes(&mut v, BUF, 6), b"Linux\n");
    assert_eq!(
        fails(console_read(&mut v, id, BUF, 64, 15)),
        HvcError::InvalidParameter,
        "a cursor past the output"
    );

    // 100 more bytes overrun the 64-byte ring: a reader at 14 lost 36 (14..50) and gets the last 64.
    let more: Vec<u8> = (0..100u8).collect();
    v.platform_mut().early.get_mut(&id).unwrap().extend(&more);
    assert_eq!(console_read(&mut v, id, BUF, 4096, 14), [64, 114, 36, 0]);
    assert_eq!(vm0_bytes(&mut v, BUF, 64), &more[36..]);

    // The buffer never crosses its page: the rest waits for the next call.
    let near_end = BUF + 4096 - 16;
    assert_eq!(console_read(&mut v, id, near_end, 4096, 50), [16, 66, 0, 0]);
    assert_eq!(vm0_bytes(&mut v, near_end, 16), &more[36..52]);
    // Outside VM0's RAM or misaligned: refused, nothing read.
    assert_eq!(
        fails(console_read(&mut v, id, 0x10, 64, 0)),
        HvcError::BadAddress
    );
    assert_eq!(
        fails(console_read(&mut v, id, BUF + 4, 64, 0)),
        HvcError::BadAddress
    );
    // Only VM0 reads a guest's console.
    let x = [u64::from(hvc::VM_CONSOLE_READ), u64::from(id), BUF, 64, 0];
    assert_eq!(fails(v.hvc(id, x).unwrap()), HvcError::Denied);

    ok(call(&mut v, hvc::VM_DESTROY, [u64::from(id), 0, 0, 0]));
    assert!(v.platform().early.is_empty(), "the UART goes with its VM");
}

#[test]
fn the_early_uart_window_is_the_vms_own() {
    let mut v = vmm();
    let mut c = params(4);
    c.flags |= VM_FLAG_EARLYPRINTK;
    let id = ok(create(&mut v, &c)) as u32;
    // A virtio window at or inside the UART is refused; one elsewhere is fine.
    let mut d = device(id, 0);
    d.base = EARLY_UART_BASE;
    assert_eq!(fails(add(&mut v, &d)), HvcError::InvalidParameter);
    d.base = EARLY_UART_BASE + EARLY_UART_SIZE - 0x200;
    assert_eq!(fails(add(&mut v, &d)), HvcError::InvalidParameter);
    d.base = 0x4000_0000;
    ok(add(&mut v, &d));
    // RAM over the UART's 2 MiB block is refused (it also holds the power button).
    let mut c = params(2);
    c.flags |= VM_FLAG_EARLYPRINTK;
    c.mem_base = 0x4000_0000;
    c.entry = 0x4000_0000;
    c.setup_data = 0x4000_0000;
    assert_eq!(fails(create(&mut v, &c)), HvcError::InvalidParameter);
}

#[test]
fn a_restart_finds_its_devices_reset() {
    let mut v = vmm();
    let id = ok(create(&mut v, &params(8))) as u32;
    ok(add(&mut v, &device(id, 0)));
    ok(call(&mut v, hvc::VM_START, [u64::from(id), 0, 0, 0]));
    let base = 0x4000_0000;
    let reg = |r: u32| base + u64::from(r);
    v.mmio(id, 0, reg(reg::QUEUE_SEL), w32(reg::QUEUE_SEL, 1));
    v.mmio(id, 0, reg(reg::QUEUE_NUM), w32(reg::QUEUE_NUM, 64));
    v.mmio(id, 0, reg(reg::QUEUE_READY), w32(reg::QUEUE_READY, 1));
    ok(call(
        &mut v,
        hvc::VM_IRQ,
        [u64::from(id), 32, IrqLevel::Edge as u64, 0],
    ));
    let status = v.mmio(
        id,
        0,
        reg(reg::INTERRUPT_STATUS),
        r32(reg::INTERRUPT_STATUS),
    );
    assert_eq!(status, MmioOutcome::Done(1), "a used buffer is pending");
    assert_eq!(
        v.mmio(id, 0, reg(reg::QUEUE_READY), r32(reg::QUEUE_READY)),
        MmioOutcome::Done(1)
    );
    v.platform_mut().vm_stop(id);
    v.guest_off(id);
    ok(call(&mut v, hvc::VM_START, [u64::from(id), 0, 0, 0]));
    // QueueSel went back to 0 with the reset: select queue 1 again.
    v.mmio(id, 0, reg(reg::QUEUE_SEL), w32(reg::QUEUE_SEL, 1));
    for (r, what) in [
        (reg::QUEUE_READY, "queue ready"),
        (reg::INTERRUPT_STATUS, "interrupt status"),
    ] {
        assert_eq!(
            v.mmio(id, 0, reg(r), r32(r)),
            MmioOutcome::Done(0),
            "{what}"
        );
    }
}
