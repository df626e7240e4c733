//! An ext4 partition populated from a directory by e2fsprogs' `mke2fs -d`, written in place at
//! the partition's offset of the card image.
//!
//! No Rust ext4 writer is mature enough to trust with a root filesystem; `mke2fs -d` is what
//! genimage and the Yocto tools use. Reproducibility comes from `E2FSPROGS_FAKE_TIME`, a fixed
//! UUID and a fixed directory hash seed; `mke2fs -d` copies each file's access and change
//! times, which merely reading or copying the folder moves, so a `debugfs` pass then sets them
//! to the build's timestamp (and clamps modification times to it, as reproducible builds do).

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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

pub(crate) fn write(
    image: &Path,
    offset: u64,
    size: u64,
    spec: &Ext4Spec,
    epoch: i64,
) -> Result<()> {
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
    let out = Command::new("mke2fs")
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
        .output()
        .map_err(|e| Error::Mke2fs {
            dir: spec.dir.clone(),
            message: format!("cannot run mke2fs (install e2fsprogs): {e}"),
        })?;
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
        return Err(Error::Mke2fs {
            dir: spec.dir.clone(),
            message: format!("{}{hint}", last.trim()),
        });
    }
    pin_times(image, offset, spec, epoch)
}

/// `debugfs` commands giving every inode copied from `spec.dir` the times of the build.
fn time_commands(dir: &Path, epoch: i64) -> Result<String> {
    let mut cmds = String::new();
    let mut stack = vec![(dir.to_path_buf(), String::from("/"))];
    let input = |path: &Path, source| Error::Input {
        path: path.to_path_buf(),
        source,
    };
    while let Some((host, name)) = stack.pop() {
        let meta = host.symlink_metadata().map_err(|e| input(&host, e))?;
        if name.contains(['"', '\n', '\\']) {
            return Err(Error::BadName(name));
        }
        let mtime = meta.mtime().min(epoch);
        cmds.push_str(&format!(
            "sif \"{name}\" atime @{epoch}\nsif \"{name}\" ctime @{epoch}\nsif \"{name}\" mtime @{mtime}\n"
        ));
        if meta.is_dir() {
            let mut kids: Vec<_> = std::fs::read_dir(&host)
                .map_err(|e| input(&host, e))?
                .collect::<std::io::Result<_>>()
                .map_err(|e| input(&host, e))?;
            kids.sort_by_key(|e| e.file_name());
            for k in kids {
                let Some(n) = k.file_name().to_str().map(str::to_string) else {
                    return Err(Error::BadName(k.path().display().to_string()));
                };
                let child = if name == "/" {
                    format!("/{n}")
                } else {
                    format!("{name}/{n}")
                };
                stack.push((k.path(), child));
            }
        }
    }
    Ok(cmds)
}

fn pin_times(image: &Path, offset: u64, spec: &Ext4Spec, epoch: i64) -> Result<()> {
    let epoch = epoch.max(0);
    let cmds = time_commands(&spec.dir, epoch)?;
    let fail = |message: String| Error::Mke2fs {
        dir: spec.dir.clone(),
        message,
    };
    // `?offset=` is e2fsprogs' I/O option syntax: debugfs opens the partition inside the card.
    let mut target = image.as_os_str().to_owned();
    target.push(format!("?offset={offset}"));
    let mut child = Command::new("debugfs")
        .args(["-w", "-f", "-"])
        .arg(&target)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run debugfs (install e2fsprogs): {e}")))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let written = stdin.write_all(cmds.as_bytes());
    drop(stdin);
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("debugfs: {e}")))?;
    let err = String::from_utf8_lossy(&out.stderr);
    // debugfs reports a failed command on stderr but still exits 0.
    let bad = err
        .lines()
        .find(|l| !l.starts_with("debugfs ") && !l.trim().is_empty());
    match (written, out.status.success(), bad) {
        (Ok(()), true, None) => Ok(()),
        (_, _, Some(l)) => Err(fail(format!("debugfs: {l}"))),
        (Err(e), _, None) => Err(fail(format!("debugfs: {e}"))),
        (Ok(()), false, None) => Err(fail(format!("debugfs exited with {}", out.status))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_commands_cover_the_tree_and_clamp_mtime() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(d.path().join("etc/hostname"), "x").unwrap();
        std::os::unix::fs::symlink("hostname", d.path().join("etc/link")).unwrap();
        let c = time_commands(d.path(), 1000).unwrap();
        for p in ["/", "/etc", "/etc/hostname", "/etc/link"] {
            assert!(
                c.contains(&format!("sif \"{p}\" atime @1000\n")),
                "{p}: {c}"
            );
            assert!(
                c.contains(&format!("sif \"{p}\" mtime @1000\n")),
                "{p}: {c}"
            );
        }
        std::fs::write(d.path().join("etc/bad\"name"), "x").unwrap();
        assert!(matches!(
            time_commands(d.path(), 1000),
            Err(Error::BadName(_))
        ));
    }

    #[test]
    fn uuid_text_and_bits() {
        let u = uuid_from_hash(&[0xffu8; 32]);
        assert_eq!(uuid_string(&u), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let z = uuid_from_hash(&[0u8; 32]);
        assert_eq!(uuid_string(&z), "00000000-0000-4000-8000-000000000000");
    }
}
