//! The virtio network backend (`-V virtio_net,TAP[,mac=XX:XX:XX:XX:XX:XX]`, Minos' syntax):
//! frames move between the guest's queues and a tap interface of VM0 named TAP (created if
//! it does not exist). Queue 0 (receiveq) carries frames from the tap to the guest, queue 1
//! (transmitq) the guest's frames to the tap.
//!
//! Offered: `VIRTIO_F_VERSION_1` and `VIRTIO_NET_F_MAC` (the MAC given with `mac=`, else
//! 02:4d:4e:00:VMID:INDEX, locally administered and stable across runs). No offloads, so
//! every frame is whole and checksummed and the 12-byte `virtio_net_hdr` carries nothing
//! but `num_buffers` = 1 on receive.
//!
//! A frame read from the tap waits while the guest has no receive buffer: at most one frame
//! is held, and the tap is not read (nor polled, see [`Net::wants_input`]) until the guest
//! gives buffers back; meanwhile the kernel queues further frames on the tap. A frame larger
//! than the guest's buffer is dropped and counted, and that buffer takes the next frame.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{fence, Ordering};

use minos_abi::types::{RequestKind, VirtioRequest};

use crate::driver::Driver;
use crate::log::{debug, info, warn};
use crate::virtqueue::{fill, gather, Chain, GuestMem, Queue};

/// `VIRTIO_NET_F_MAC`: the config space holds the device's MAC address.
pub const F_MAC: u64 = 1 << 5;
/// `virtio_net_hdr` with `VIRTIO_F_VERSION_1`: `num_buffers` is always there.
pub const HDR_LEN: usize = 12;
/// Largest frame a tap hands out: a 65535-byte MTU plus the Ethernet and VLAN headers.
const MAX_FRAME: usize = 65535 + 18;
const DRIVER_OK: u64 = 4;
const RECEIVEQ: usize = 0;
const TRANSMITQ: usize = 1;
/// `VRING_AVAIL_F_NO_INTERRUPT`: the driver is polling this queue and wants no interrupt.
const AVAIL_F_NO_INTERRUPT: u16 = 1;
/// Frames taken from the tap per event: a flood must not keep the loop from the other
/// devices and from blocking requests (a vCPU waits on those); the tap stays readable, so
/// the next poll comes straight back for the rest.
const RX_BUDGET: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("virtio_net,{0}: the tap name must be 1 to 15 bytes of letters, digits, '-', '_', '.' (or '%d')")]
    Name(String),
    #[error("virtio_net,{0}: unknown option `{1}` (only mac=XX:XX:XX:XX:XX:XX)")]
    Option(String, String),
    #[error("virtio_net,{0}: `{1}` is not a unicast MAC address (XX:XX:XX:XX:XX:XX)")]
    Mac(String, String),
    #[error("virtio_net: cannot open /dev/net/tun: {0} (is the tun module loaded?)")]
    OpenTun(io::Error),
    #[error("virtio_net: cannot attach to tap `{0}`: {1}")]
    Attach(String, io::Error),
}

/// What `-V virtio_net,ARG` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetArgs {
    pub tap: String,
    pub mac: Option<[u8; 6]>,
}

impl NetArgs {
    pub fn parse(arg: &str) -> Result<NetArgs, NetError> {
        let mut parts = arg.split(',');
        let tap = parts.next().unwrap_or_default();
        let name_ok = (1..libc::IFNAMSIZ).contains(&tap.len())
            && tap
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.%".contains(&b));
        if !name_ok {
            return Err(NetError::Name(arg.into()));
        }
        let mut mac = None;
        for opt in parts {
            match opt.split_once('=') {
                Some(("mac", m)) => {
                    mac = Some(parse_mac(m).ok_or_else(|| NetError::Mac(arg.into(), m.into()))?)
                }
                _ => return Err(NetError::Option(arg.into(), opt.into())),
            }
        }
        Ok(NetArgs {
            tap: tap.into(),
            mac,
        })
    }
}

/// `XX:XX:XX:XX:XX:XX`, unicast and not all zeros.
fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    let unicast = mac[0] & 1 == 0 && mac != [0; 6];
    (parts.next().is_none() && unicast).then_some(mac)
}

/// The MAC of device `index` of VM `vmid` when none is given: locally administered (0x02),
/// "MN", then the VM and the device, so a guest keeps its address across runs.
pub fn default_mac(vmid: u32, index: u32) -> [u8; 6] {
    let v = vmid.to_be_bytes();
    [0x02, 0x4d, 0x4e, v[2], v[3], index as u8]
}

pub fn mac_string(mac: &[u8; 6]) -> String {
    let hex: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    hex.join(":")
}

/// A tap interface in VM0: one frame per read or write, never blocking.
pub struct Tap {
    file: File,
    pub name: String,
}

impl Tap {
    /// Creates (or attaches to) tap `name`; a `%d` in it lets the kernel pick the number.
    pub fn open(name: &str) -> Result<Tap, NetError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .map_err(NetError::OpenTun)?;
        // SAFETY: ifreq is plain data; all zeros is a valid value.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, s) in ifr.ifr_name.iter_mut().zip(name.bytes()) {
            *d = libc::c_char::from_ne_bytes([s]);
        }
        ifr.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: TUNSETIFF reads and writes the ifreq we own, on the descriptor we own.
        if unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut ifr) } < 0 {
            return Err(NetError::Attach(name.into(), io::Error::last_os_error()));
        }
        // The kernel writes back the name it used (it differs when `%d` was given).
        let name: Vec<u8> = ifr
            .ifr_name
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c.to_ne_bytes()[0])
            .collect();
        Ok(Tap {
            file,
            name: String::from_utf8_lossy(&name).into_owned(),
        })
    }

    /// Any non-blocking descriptor that keeps frame boundaries (a SOCK_SEQPACKET socket in
    /// the tests) stands in for a tap.
    #[cfg(test)]
    pub fn from_file(file: File, name: &str) -> Tap {
        Tap {
            file,
            name: name.into(),
        }
    }

    pub fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

/// What moved and what was dropped, reported when the device goes away.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub tx_frames: u64,
    /// Frames the tap refused (e.g. it is down: EIO).
    pub tx_refused: u64,
    /// Transmit chains shorter than the header.
    pub tx_malformed: u64,
    pub rx_frames: u64,
    /// Frames larger than the guest's receive buffer.
    pub rx_oversize: u64,
    /// Frames that arrived before the guest's driver set the receive queue up.
    pub rx_not_ready: u64,
}

pub struct Net {
    pub vmid: u32,
    pub index: u32,
    pub intid: u32,
    tap: Tap,
    mac: [u8; 6],
    queues: [Option<Queue>; 2],
    /// The header then room for one frame; `rx_len` > 0: a frame waits in it for a buffer.
    rx_buf: Vec<u8>,
    rx_len: usize,
    /// A receive chain whose frame was dropped (too big): it takes the next frame.
    spare: Option<Chain>,
    /// The tap failed for good (deleted under us): no more reads, writes are dropped.
    tap_dead: bool,
    warned_tx: bool,
    warned_oversize: bool,
    pub stats: Stats,
}

impl Net {
    /// Opens the backend for `-V virtio_net,ARG`.
    pub fn open(vmid: u32, index: u32, intid: u32, arg: &str) -> Result<Net, NetError> {
        let args = NetArgs::parse(arg)?;
        let tap = Tap::open(&args.tap)?;
        let mac = args.mac.unwrap_or_else(|| default_mac(vmid, index));
        Ok(Net::new(vmid, index, intid, tap, mac))
    }

    pub fn new(vmid: u32, index: u32, intid: u32, tap: Tap, mac: [u8; 6]) -> Net {
        let mut rx_buf = vec![0u8; HDR_LEN + MAX_FRAME];
        // num_buffers: without VIRTIO_NET_F_MRG_RXBUF every frame takes exactly one chain.
        rx_buf[10..12].copy_from_slice(&1u16.to_le_bytes());
        Net {
            vmid,
            index,
            intid,
            tap,
            mac,
            queues: [None, None],
            rx_buf,
            rx_len: 0,
            spare: None,
            tap_dead: false,
            warned_tx: false,
            warned_oversize: false,
            stats: Stats::default(),
        }
    }

    pub fn tap_name(&self) -> &str {
        &self.tap.name
    }

    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// The descriptor the event loop polls for frames to the guest.
    pub fn tap_fd(&self) -> RawFd {
        self.tap.raw_fd()
    }

    /// Whether the event loop should poll the tap: not while a frame already waits for a
    /// receive buffer (the tap stays readable, so polling it would spin).
    pub fn wants_input(&self) -> bool {
        !self.tap_dead && self.rx_len == 0
    }

    /// `width` bytes of the config space at `offset`: the MAC, then zeros (no status field:
    /// `VIRTIO_NET_F_STATUS` is not offered, so the link is always up).
    fn config(&self, offset: u32, width: u32) -> u64 {
        let mut cfg = [0u8; 8];
        cfg[..6].copy_from_slice(&self.mac);
        let (o, w) = (offset as usize, width.min(8) as usize);
        let mut b = [0u8; 8];
        if o < cfg.len() {
            let n = w.min(cfg.len() - o);
            b[..n].copy_from_slice(&cfg[o..o + n]);
        }
        u64::from_le_bytes(b)
    }

    /// Answers a blocking request: status writes set the queues up (on `DRIVER_OK`) or drop
    /// them with whatever waited for them (on reset); config reads give the MAC.
    pub fn request(&mut self, dev: &dyn Driver, r: &VirtioRequest) -> anyhow::Result<()> {
        let value = match RequestKind::from_u32(r.kind) {
            Some(RequestKind::StatusWrite) => {
                if r.value == 0 {
                    self.reset();
                } else if r.value & DRIVER_OK != 0 {
                    for (i, slot) in self.queues.iter_mut().enumerate() {
                        *slot = dev.live_queue(self.vmid, self.index, i as u32)?;
                    }
                }
                0
            }
            Some(RequestKind::ConfigRead) => self.config(r.offset, r.width),
            // The MAC is read-only for a VERSION_1 driver: config writes are ignored.
            _ => 0,
        };
        dev.answer(self.vmid, self.index, value)?;
        Ok(())
    }

    /// Forgets the queues and what waited for them (a device reset, or a restart reloading
    /// the guest: the rings lie in memory the new boot reuses).
    pub fn reset(&mut self) {
        self.queues = [None, None];
        self.spare = None;
        self.rx_len = 0;
    }

    /// The guest notified a queue: send its frames to the tap, and hand a waiting frame (and
    /// what the tap holds behind it) to the receive buffers it may have added. With no frame
    /// waiting the tap is polled, so there is nothing to read here.
    pub fn notify(&mut self, dev: &dyn Driver, mem: &mut GuestMem) -> anyhow::Result<()> {
        let sent = self.transmit(mem)?;
        let received = self.rx_len > 0 && self.receive(mem)?;
        self.raise(dev, mem, sent, received)
    }

    /// The tap has frames: hand them to the guest.
    pub fn input(&mut self, dev: &dyn Driver, mem: &mut GuestMem) -> anyhow::Result<()> {
        let received = self.receive(mem)?;
        self.raise(dev, mem, false, received)
    }

    /// Raises the used-buffer interrupt (edge, as the console) unless every queue that got
    /// buffers back asked not to be interrupted (its driver is polling: Linux's NAPI).
    fn raise(
        &self,
        dev: &dyn Driver,
        mem: &GuestMem,
        sent: bool,
        received: bool,
    ) -> anyhow::Result<()> {
        // The used index is written; the driver's clearing of NO_INTERRUPT must be seen
        // after it, or a driver that re-enabled interrupts and found no work would sleep on
        // a buffer nobody tells it about (its side has the mirror barrier).
        fence(Ordering::SeqCst);
        let mut wanted = false;
        for (used, q) in [(received, RECEIVEQ), (sent, TRANSMITQ)] {
            if let (true, Some(q)) = (used, &self.queues[q]) {
                let mut flags = [0u8; 2];
                mem.read(q.avail, &mut flags)?;
                wanted |= u16::from_le_bytes(flags) & AVAIL_F_NO_INTERRUPT == 0;
            }
        }
        if wanted {
            dev.raise_used(self.vmid, self.intid)?;
        }
        Ok(())
    }

    /// Writes every frame the guest queued to the tap; returns whether any chain was used.
    fn transmit(&mut self, mem: &mut GuestMem) -> anyhow::Result<bool> {
        let Some(mut tx) = self.queues[TRANSMITQ].take() else {
            return Ok(false);
        };
        let mut used = false;
        let res = (|| -> anyhow::Result<()> {
            while let Some(chain) = tx.pop(mem)? {
                let data = gather(mem, &chain)?;
                match data.get(HDR_LEN..) {
                    Some(frame) => self.send(frame),
                    None => self.stats.tx_malformed += 1,
                }
                tx.push(mem, chain.head, 0)?;
                used = true;
            }
            Ok(())
        })();
        self.queues[TRANSMITQ] = Some(tx);
        res.map(|()| used)
    }

    /// One frame to the tap; a refusal is counted, never fatal.
    fn send(&mut self, frame: &[u8]) {
        if self.tap_dead {
            self.stats.tx_refused += 1;
            return;
        }
        // A tap takes a frame whole or not at all: a short count is a refusal too.
        let e = match self.tap.file.write(frame) {
            Ok(n) if n == frame.len() => {
                self.stats.tx_frames += 1;
                return;
            }
            Ok(_) => io::Error::new(io::ErrorKind::WriteZero, "short write"),
            Err(e) => e,
        };
        self.stats.tx_refused += 1;
        let msg = format!(
            "vm-{} virtio_net {}: the tap refused a {}-byte frame ({e}); such frames are dropped and counted",
            self.vmid,
            self.tap.name,
            frame.len()
        );
        // EIO: the tap is down, as it is until VM0 brings it up; anything else is news once.
        if e.raw_os_error() == Some(libc::EIO) {
            debug(&msg);
        } else if !self.warned_tx {
            warn(&msg);
            self.warned_tx = true;
        }
    }

    /// Moves frames from the tap into receive buffers until one side runs out (or the
    /// budget does); returns whether any chain was used.
    fn receive(&mut self, mem: &mut GuestMem) -> anyhow::Result<bool> {
        let mut used = false;
        let mut budget = RX_BUDGET;
        loop {
            if self.rx_len == 0 {
                if self.tap_dead || budget == 0 {
                    break;
                }
                budget -= 1;
                match self.tap.file.read(&mut self.rx_buf[HDR_LEN..]) {
                    Ok(0) => {
                        self.tap_gone("end of file");
                        break;
                    }
                    Ok(n) => self.rx_len = n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.tap_gone(&e.to_string());
                        break;
                    }
                }
            }
            let Some(rx) = self.queues[RECEIVEQ].as_mut() else {
                // Nobody to receive it yet, as on a cable with no link at the other end.
                self.stats.rx_not_ready += 1;
                self.rx_len = 0;
                continue;
            };
            let chain = match self.spare.take() {
                Some(c) => c,
                None => match rx.pop(mem)? {
                    Some(c) => c,
                    // The frame waits in rx_buf for the guest's next buffer.
                    None => break,
                },
            };
            let frame = &self.rx_buf[..HDR_LEN + self.rx_len];
            let room: u64 = chain.writable.iter().map(|&(_, l)| u64::from(l)).sum();
            if room < frame.len() as u64 {
                self.stats.rx_oversize += 1;
                if !self.warned_oversize {
                    warn(&format!(
                        "vm-{} virtio_net {}: a {}-byte frame does not fit the guest's {room}-byte receive buffer (header included); such frames are dropped and counted",
                        self.vmid, self.tap.name, self.rx_len
                    ));
                    self.warned_oversize = true;
                }
                self.spare = Some(chain);
                self.rx_len = 0;
                continue;
            }
            let n = fill(mem, &chain, frame)?;
            rx.push(mem, chain.head, n)?;
            self.rx_len = 0;
            self.stats.rx_frames += 1;
            used = true;
        }
        Ok(used)
    }

    fn tap_gone(&mut self, why: &str) {
        warn(&format!(
            "vm-{} virtio_net {}: reading the tap failed ({why}): the guest receives nothing more",
            self.vmid, self.tap.name
        ));
        self.tap_dead = true;
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let s = &self.stats;
        info(&format!(
            "vm-{} virtio_net {}: {} frames to the tap ({} refused by it, {} malformed), {} to the guest ({} too big for its buffers, {} before it was ready)",
            self.vmid,
            self.tap.name,
            s.tx_frames,
            s.tx_refused,
            s.tx_malformed,
            s.rx_frames,
            s.rx_oversize,
            s.rx_not_ready
        ));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::driver::fake::Fake;
    use crate::virtqueue::tests::{Guest, AVAIL, BASE, DESC, USED};
    use crate::virtqueue::QueueError;
    use minos_abi::types::VirtioQueue;
    use std::os::fd::FromRawFd;

    const RX_DESC: u64 = BASE + 0x400;
    const RX_AVAIL: u64 = BASE + 0x500;
    const RX_USED: u64 = BASE + 0x600;
    const TX_BUF: u64 = BASE + 0x1000;
    const RX_BUF: u64 = BASE + 0x1800;

    /// A connected pair of non-blocking SOCK_SEQPACKET sockets: one end is the "tap", the
    /// other plays VM0's network stack.
    pub(crate) fn tap_pair() -> (Tap, File) {
        let mut fds = [0; 2];
        // SAFETY: socketpair fills the two-element array we own.
        let rc = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        assert_eq!(rc, 0);
        // SAFETY: two new descriptors, each owned once.
        let (a, b) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
        (Tap::from_file(a, "tap0"), b)
    }

    fn queue(queue: u32, desc: u64, driver: u64, device_ring: u64) -> VirtioQueue {
        VirtioQueue {
            vmid: 1,
            device: 0,
            queue,
            size: 4,
            ready: 1,
            desc,
            driver,
            device_ring,
            ..VirtioQueue::default()
        }
    }

    fn req(kind: RequestKind, offset: u32, value: u64, width: u32) -> VirtioRequest {
        VirtioRequest {
            vmid: 1,
            device: 0,
            kind: kind as u32,
            offset,
            value,
            width,
            reserved: 0,
        }
    }

    /// A device whose driver set both queues up; the fake hypervisor and VM0's end.
    fn ready() -> (Net, Fake, File) {
        let fake = Fake::default();
        fake.queues.borrow_mut().extend([
            queue(0, RX_DESC, RX_AVAIL, RX_USED),
            queue(1, DESC, AVAIL, USED),
        ]);
        let (tap, peer) = tap_pair();
        let mut net = Net::new(1, 0, 34, tap, default_mac(1, 0));
        net.request(&fake, &req(RequestKind::StatusWrite, 0x70, 15, 4))
            .unwrap();
        (net, fake, peer)
    }

    /// The guest adds a `len`-byte receive buffer (descriptor `i` of the receive queue).
    fn add_rx_buffer(g: &mut Guest, i: u16, len: u32, avail_idx: u16) {
        let d = (RX_DESC - BASE) as usize + 16 * i as usize;
        g.ram[d..d + 8].copy_from_slice(&(RX_BUF + 0x100 * u64::from(i)).to_le_bytes());
        g.ram[d + 8..d + 12].copy_from_slice(&len.to_le_bytes());
        g.ram[d + 12..d + 14].copy_from_slice(&2u16.to_le_bytes());
        let a = (RX_AVAIL - BASE) as usize;
        let slot = a + 4 + 2 * (avail_idx as usize % 4);
        g.ram[slot..slot + 2].copy_from_slice(&i.to_le_bytes());
        g.ram[a + 2..a + 4].copy_from_slice(&(avail_idx + 1).to_le_bytes());
    }

    fn rx_used(g: &Guest, slot: usize) -> (u16, u32, u32) {
        let u = (RX_USED - BASE) as usize;
        let idx = u16::from_le_bytes([g.ram[u + 2], g.ram[u + 3]]);
        let e = u + 4 + 8 * slot;
        let id = u32::from_le_bytes(g.ram[e..e + 4].try_into().unwrap());
        let len = u32::from_le_bytes(g.ram[e + 4..e + 8].try_into().unwrap());
        (idx, id, len)
    }

    fn frame(len: usize, fill: u8) -> Vec<u8> {
        let mut f = vec![fill; len];
        f[..6].copy_from_slice(&[0x02, 0x4d, 0x4e, 0, 1, 0]);
        f
    }

    #[test]
    fn a_guest_frame_reaches_the_tap_without_its_header() {
        let (mut net, fake, mut peer) = ready();
        let mut g = Guest::new();
        // Linux puts the header and the frame in separate descriptors (or one): both work.
        let f = frame(60, 0x5a);
        g.ram[0x1000..0x1000 + HDR_LEN].fill(0);
        g.ram[0x1100..0x1100 + 60].copy_from_slice(&f);
        g.desc(0, TX_BUF, HDR_LEN as u32, 1, 1);
        g.desc(1, TX_BUF + 0x100, 60, 0, 0);
        g.publish(0, 4);
        let mut one = vec![0u8; HDR_LEN + 42];
        one[HDR_LEN..].copy_from_slice(&frame(42, 0x77));
        g.ram[0x1200..0x1200 + one.len()].copy_from_slice(&one);
        g.desc(2, TX_BUF + 0x200, one.len() as u32, 0, 0);
        g.publish(2, 4);
        net.notify(&fake, &mut g.mem()).unwrap();

        let mut got = [0u8; 256];
        let n = peer.read(&mut got).unwrap();
        assert_eq!(&got[..n], &f[..], "first frame, header stripped");
        let n = peer.read(&mut got).unwrap();
        assert_eq!(&got[..n], &frame(42, 0x77)[..]);
        assert_eq!(g.used_idx(), 2);
        assert_eq!(fake.irqs.borrow().len(), 1, "one interrupt for the batch");
        assert_eq!(fake.irqs.borrow()[0].intid, 34);
        assert_eq!(net.stats.tx_frames, 2);
    }

    #[test]
    fn a_tap_frame_lands_in_a_guest_buffer_behind_a_header() {
        let (mut net, fake, mut peer) = ready();
        let mut g = Guest::new();
        add_rx_buffer(&mut g, 0, 0x100, 0);
        let f = frame(98, 0xab);
        peer.write_all(&f).unwrap();
        net.input(&fake, &mut g.mem()).unwrap();

        let mut hdr = [0u8; HDR_LEN];
        hdr[10] = 1; // num_buffers
        assert_eq!(&g.ram[0x1800..0x1800 + HDR_LEN], &hdr);
        assert_eq!(&g.ram[0x1800 + HDR_LEN..0x1800 + HDR_LEN + 98], &f[..]);
        assert_eq!(rx_used(&g, 0), (1, 0, (HDR_LEN + 98) as u32));
        assert_eq!(fake.irqs.borrow().len(), 1);
        assert!(net.wants_input());
    }

    #[test]
    fn a_frame_without_a_buffer_waits_and_the_tap_is_not_polled_meanwhile() {
        let (mut net, fake, mut peer) = ready();
        let mut g = Guest::new();
        peer.write_all(&frame(60, 1)).unwrap();
        peer.write_all(&frame(61, 2)).unwrap();
        net.input(&fake, &mut g.mem()).unwrap();
        assert!(!net.wants_input(), "one frame held: stop polling the tap");
        assert!(fake.irqs.borrow().is_empty());

        // The guest adds two buffers and notifies: both frames arrive, in order.
        add_rx_buffer(&mut g, 0, 0x100, 0);
        add_rx_buffer(&mut g, 1, 0x100, 1);
        net.notify(&fake, &mut g.mem()).unwrap();
        assert_eq!(rx_used(&g, 0), (2, 0, (HDR_LEN + 60) as u32));
        assert_eq!(rx_used(&g, 1), (2, 1, (HDR_LEN + 61) as u32));
        assert_eq!(g.ram[0x1800 + HDR_LEN + 6], 1);
        assert_eq!(g.ram[0x1900 + HDR_LEN + 6], 2);
        assert!(net.wants_input());
        assert_eq!(fake.irqs.borrow().len(), 1);
    }

    #[test]
    fn an_oversize_frame_is_dropped_and_its_buffer_takes_the_next() {
        let (mut net, fake, mut peer) = ready();
        let mut g = Guest::new();
        add_rx_buffer(&mut g, 0, 0x80, 0);
        peer.write_all(&frame(0x80, 9)).unwrap(); // 12 + 128 > 128
        peer.write_all(&frame(0x40, 7)).unwrap();
        net.input(&fake, &mut g.mem()).unwrap();
        assert_eq!(net.stats.rx_oversize, 1);
        assert_eq!(net.stats.rx_frames, 1);
        assert_eq!(rx_used(&g, 0), (1, 0, (HDR_LEN + 0x40) as u32));
        assert_eq!(
            g.ram[0x1800 + HDR_LEN + 6],
            7,
            "the small frame, not the big one"
        );
    }

    #[test]
    fn interrupts_respect_no_interrupt_while_the_driver_polls() {
        let (mut net, fake, mut peer) = ready();
        let mut g = Guest::new();
        let flags = (RX_AVAIL - BASE) as usize;
        g.ram[flags..flags + 2].copy_from_slice(&AVAIL_F_NO_INTERRUPT.to_le_bytes());
        add_rx_buffer(&mut g, 0, 0x100, 0);
        peer.write_all(&frame(60, 1)).unwrap();
        net.input(&fake, &mut g.mem()).unwrap();
        assert_eq!(rx_used(&g, 0).0, 1, "delivered");
        assert!(fake.irqs.borrow().is_empty(), "but not interrupted");
    }

    #[test]
    fn config_space_holds_the_mac_and_reset_drops_everything() {
        let (mut net, fake, mut peer) = ready();
        for o in 0..8 {
            net.request(&fake, &req(RequestKind::ConfigRead, o, 0, 1))
                .unwrap();
        }
        net.request(&fake, &req(RequestKind::ConfigRead, 0, 0, 4))
            .unwrap();
        let acks: Vec<u64> = fake.acks.borrow().iter().map(|a| a.value).collect();
        assert_eq!(
            acks,
            [0, 0x02, 0x4d, 0x4e, 0, 1, 0, 0, 0, 0x004e_4d02],
            "status ack, then the MAC byte by byte, a zero past it, and 4 bytes at once"
        );

        // A frame waiting when the guest resets the device is dropped with the queues.
        let mut g = Guest::new();
        peer.write_all(&frame(60, 1)).unwrap();
        net.input(&fake, &mut g.mem()).unwrap();
        assert!(!net.wants_input());
        net.request(&fake, &req(RequestKind::StatusWrite, 0x70, 0, 4))
            .unwrap();
        assert!(net.wants_input());
        // Before the driver is ready again, frames are read and dropped, never held.
        peer.write_all(&frame(60, 2)).unwrap();
        net.input(&fake, &mut g.mem()).unwrap();
        assert_eq!(net.stats.rx_not_ready, 1);
        assert!(net.wants_input());
    }

    #[test]
    fn a_flood_is_taken_a_budget_at_a_time() {
        let (mut net, fake, mut peer) = ready();
        net.reset();
        for _ in 0..RX_BUDGET + 10 {
            peer.write_all(&frame(60, 3)).unwrap();
        }
        let mut g = Guest::new();
        net.input(&fake, &mut g.mem()).unwrap();
        assert_eq!(net.stats.rx_not_ready, RX_BUDGET as u64);
        net.input(&fake, &mut g.mem()).unwrap();
        assert_eq!(net.stats.rx_not_ready, RX_BUDGET as u64 + 10);
    }

    #[test]
    fn bad_guest_chains_are_counted_or_queue_errors() {
        let (mut net, fake, _peer) = ready();
        let mut g = Guest::new();
        g.desc(0, TX_BUF, 4, 0, 0); // shorter than the header
        g.publish(0, 4);
        net.notify(&fake, &mut g.mem()).unwrap();
        assert_eq!(net.stats.tx_malformed, 1);
        assert_eq!(g.used_idx(), 1, "still given back");

        g.desc(1, BASE + 0x1ff0, 0x100, 0, 0); // past the end of RAM
        g.publish(1, 4);
        let e = net.notify(&fake, &mut g.mem()).unwrap_err();
        assert!(matches!(
            e.downcast_ref::<QueueError>(),
            Some(QueueError::OutOfRam { .. })
        ));
    }

    #[test]
    fn a_closed_tap_stops_input_instead_of_spinning() {
        let (mut net, fake, peer) = ready();
        drop(peer);
        let mut g = Guest::new();
        net.input(&fake, &mut g.mem()).unwrap();
        assert!(!net.wants_input());
    }

    #[test]
    fn arguments() {
        assert_eq!(
            NetArgs::parse("tap0").unwrap(),
            NetArgs {
                tap: "tap0".into(),
                mac: None
            }
        );
        assert_eq!(
            NetArgs::parse("tap1,mac=52:54:00:ab:CD:0f").unwrap().mac,
            Some([0x52, 0x54, 0, 0xab, 0xcd, 0x0f])
        );
        let err = |a: &str| NetArgs::parse(a).unwrap_err().to_string();
        assert!(err("a/b").contains("tap name"));
        assert!(err("sixteen-bytes-xx").contains("1 to 15 bytes"));
        assert!(err("tap0,mtu=9000").contains("unknown option `mtu=9000`"));
        assert!(err("tap0,mac=01:00:00:00:00:01").contains("not a unicast MAC"));
        assert!(err("tap0,mac=00:00:00:00:00:00").contains("not a unicast MAC"));
        assert!(err("tap0,mac=52:54:00:ab:cd").contains("not a unicast MAC"));
        assert!(err("tap0,mac=52:54:00:ab:cd:ef:01").contains("not a unicast MAC"));
        assert_eq!(mac_string(&default_mac(3, 1)), "02:4d:4e:00:03:01");
    }
}
