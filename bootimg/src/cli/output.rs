//! Writing files so that a failure never leaves a half-written or empty target behind.

use std::fs::{self, Permissions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Resolves the file to replace: symlinks are followed (abootimg writes through them), and
/// anything but a regular file (a block device, a directory) is refused.
fn target(path: &Path) -> Result<(PathBuf, Option<Permissions>)> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_file() => {
            let real = fs::canonicalize(path)
                .with_context(|| format!("cannot resolve {}", path.display()))?;
            Ok((real, Some(meta.permissions())))
        }
        Ok(_) => bail!("{} is not a regular file", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((path.to_path_buf(), None)),
        Err(e) => Err(e).with_context(|| format!("cannot stat {}", path.display())),
    }
}

/// Writes `bytes` to a temporary file next to `path`, then renames it over `path`. A new file
/// gets mode 0666 minus the umask, like abootimg's `fopen`; a replaced one keeps its mode.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let (real, old_perm) = target(path)?;
    let dir = match real.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".bootimg-")
        .suffix(".tmp")
        .permissions(Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    if let Some(perm) = old_perm {
        fs::set_permissions(tmp.path(), perm)
            .with_context(|| format!("cannot set the mode of {}", tmp.path().display()))?;
    }
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(&real)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}
