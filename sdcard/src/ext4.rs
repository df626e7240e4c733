//! An ext4 partition populated from a directory by e2fsprogs' `mke2fs -d`, written in place at
//! the partition's offset of the card image.
//!
//! No Rust ext4 writer is mature enough to trust with a root filesystem; `mke2fs -d` is what
//! genimage and the Yocto tools use. Reproducibility comes from `E2FSPROGS_FAKE_TIME`, a fixed
//! UUID and a fixed directory hash seed; `mke2fs -d` copies each file's access and change
//! times, which merely reading or copying the folder moves, so [`crate::ext4_times`] then sets
//! them to the build's timestamp (and clamps modification times to it).

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ext4Spec {
    pub dir: PathBuf,
    pub label: String,
    pub uuid: [u8; 16],
}

/// `8-4-4-4-12` text form, what `-U` and `hash_seed=` take.
pub fn uuid_string(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Sets the RFC 4122 version (4, random-style) and variant bits on bytes derived from a hash,
/// so tools that validate UUIDs accept it.
pub fn uuid_from_hash(h: &[u8]) -> [u8; 16] {
    let mut u = [0u8; 16];
    u.copy_from_slice(&h[..16]);
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

/// A running `mke2fs`: started before the FAT partition is written, so the two overlap.
pub(crate) struct Pending {
    child: Option<Child>,
    image: PathBuf,
    offset: u64,
    dir: PathBuf,
    epoch: i64,
}

impl Drop for Pending {
    fn drop(&mut self) {
        // Only reached unfinished when the card failed: stop writing into it.
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts `mke2fs -d` for the partition at `offset` of `image`.
pub(crate) fn start(
    image: &Path,
    offset: u64,
    size: u64,
    spec: &Ext4Spec,
    epoch: i64,
) -> Result<Pending> {
    let meta = std::fs::metadata(&spec.dir).map_err(|source| Error::Input {
        path: spec.dir.clone(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(Error::Input {
            path: spec.dir.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a directory"),
        });
    }
    let uuid = uuid_string(&spec.uuid);
    let child = Command::new("mke2fs")
        .env("E2FSPROGS_FAKE_TIME", epoch.max(0).to_string())
        // mke2fs reads /etc/mke2fs.conf; a user's MKE2FS_CONFIG must not change our bytes.
        .env_remove("MKE2FS_CONFIG")
        .args([
            "-q",
            "-F",
            "-t",
            "ext4",
            "-b",
            "4096",
            "-L",
            &spec.label,
            "-U",
            &uuid,
        ])
        .arg("-E")
        .arg(format!("offset={offset},hash_seed={uuid},root_owner=0:0"))
        .arg("-d")
        .arg(&spec.dir)
        .arg(image)
        .arg(format!("{}k", size / 1024))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Mke2fs {
            dir: spec.dir.clone(),
            message: format!("cannot run mke2fs (install e2fsprogs): {e}"),
        })?;
    Ok(Pending {
        child: Some(child),
        image: image.to_path_buf(),
        offset,
        dir: spec.dir.clone(),
        epoch,
    })
}

impl Pending {
    /// Waits for `mke2fs`, then pins the copied timestamps.
    pub(crate) fn finish(mut self) -> Result<()> {
        let fail = |message: String| Error::Mke2fs {
            dir: self.dir.clone(),
            message,
        };
        let child = self.child.take().expect("finished once");
        let out = child
            .wait_with_output()
            .map_err(|e| fail(format!("mke2fs: {e}")))?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stderr);
            let last = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no message");
            let hint = if text.contains("Could not allocate") || text.contains("No space left") {
                " (the directory does not fit its partition: give a bigger --size)"
            } else {
                ""
            };
            return Err(fail(format!("{}{hint}", last.trim())));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.image)
            .map_err(|e| fail(format!("reopening the image: {e}")))?;
        let epoch = u32::try_from(self.epoch.max(0)).unwrap_or(u32::MAX);
        crate::ext4_times::pin(&file, self.offset, epoch)
            .map_err(|e| fail(format!("pinning timestamps: {e}")))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_text_and_bits() {
        let u = uuid_from_hash(&[0xffu8; 32]);
        assert_eq!(uuid_string(&u), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let z = uuid_from_hash(&[0u8; 32]);
        assert_eq!(uuid_string(&z), "00000000-0000-4000-8000-000000000000");
    }
}
