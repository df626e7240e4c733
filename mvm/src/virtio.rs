//! `-V TYPE,ARG` virtio device specs, and where each device sits in the guest.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VirtioError {
    #[error("{0}: expected TYPE,ARG (e.g. virtio_console,@pty: or virtio_blk,/path/disk.img)")]
    Syntax(String),
    #[error("{0}: unknown virtio device type `{1}` (virtio_console, virtio_blk or virtio_net)")]
    UnknownType(String, String),
    #[error("{0}: virtio_console supports only the @pty: backend")]
    ConsoleBackend(String),
    #[error("{0}: needs a non-empty argument")]
    EmptyArg(String),
}

/// One virtio device and its backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VirtioSpec {
    /// A console whose backend is a new pseudo-terminal.
    ConsolePty,
    /// A block device backed by a file.
    Block(String),
    /// A network device backed by a tap interface.
    Net(String),
}

/// `VIRTIO_F_VERSION_1`: every device is a modern (1.0) virtio-mmio device.
pub const F_VERSION_1: u64 = 1 << 32;
/// `QueueNumMax` of every queue.
pub const QUEUE_MAX: u32 = 256;

impl VirtioSpec {
    /// Virtqueues: console and net have a receive and a transmit queue, block one queue.
    pub fn num_queues(&self) -> u32 {
        match self {
            VirtioSpec::Block(_) => 1,
            VirtioSpec::ConsolePty | VirtioSpec::Net(_) => 2,
        }
    }

    /// Feature bits offered to the driver.
    pub fn features(&self) -> u64 {
        match self {
            VirtioSpec::Net(_) => F_VERSION_1 | crate::net::F_MAC,
            VirtioSpec::Block(_) | VirtioSpec::ConsolePty => F_VERSION_1,
        }
    }

    /// Virtio device id.
    pub fn device_id(&self) -> u32 {
        match self {
            VirtioSpec::Net(_) => 1,
            VirtioSpec::Block(_) => 2,
            VirtioSpec::ConsolePty => 3,
        }
    }
}

pub fn parse_virtio(s: &str) -> Result<VirtioSpec, VirtioError> {
    let (ty, arg) = s
        .split_once(',')
        .ok_or_else(|| VirtioError::Syntax(s.into()))?;
    if arg.is_empty() {
        return Err(VirtioError::EmptyArg(s.into()));
    }
    match ty {
        "virtio_console" => match arg {
            "@pty:" => Ok(VirtioSpec::ConsolePty),
            _ => Err(VirtioError::ConsoleBackend(s.into())),
        },
        "virtio_blk" => Ok(VirtioSpec::Block(arg.into())),
        "virtio_net" => Ok(VirtioSpec::Net(arg.into())),
        other => Err(VirtioError::UnknownType(s.into(), other.into())),
    }
}

pub use minos_abi::guest::VIRTIO_MMIO_STRIDE as MMIO_STRIDE;
use minos_abi::guest::{VIRTIO_FIRST_INTID, VIRTIO_MMIO_BASE};

/// (register window, INTID) of the `n`-th device (the ABI's guest map).
pub fn slot(n: usize) -> (u64, u32) {
    (
        VIRTIO_MMIO_BASE + n as u64 * MMIO_STRIDE,
        VIRTIO_FIRST_INTID + n as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(
            parse_virtio("virtio_console,@pty:"),
            Ok(VirtioSpec::ConsolePty)
        );
        assert_eq!(
            parse_virtio("virtio_blk,/x/sd.img"),
            Ok(VirtioSpec::Block("/x/sd.img".into()))
        );
        assert_eq!(
            parse_virtio("virtio_net,tap0"),
            Ok(VirtioSpec::Net("tap0".into()))
        );
        assert!(
            matches!(parse_virtio("virtio_gpu,x"), Err(VirtioError::UnknownType(_, t)) if t == "virtio_gpu")
        );
        assert!(matches!(
            parse_virtio("virtio_console"),
            Err(VirtioError::Syntax(_))
        ));
        assert!(matches!(
            parse_virtio("virtio_blk,"),
            Err(VirtioError::EmptyArg(_))
        ));
        assert!(matches!(
            parse_virtio("virtio_console,file"),
            Err(VirtioError::ConsoleBackend(_))
        ));
    }

    #[test]
    fn slots_follow_each_other() {
        assert_eq!(slot(0), (0x4000_0000, 32));
        assert_eq!(slot(2), (0x4000_0400, 34));
    }
}
