//! Running `dtc`: compiling the project's `.dts` sources and decoding blobs for tests.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::{DtsError, Tree};

fn run(args: &[&str], input: &[u8]) -> Result<Vec<u8>, DtsError> {
    let mut child = Command::new("dtc")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            DtsError::Dtc(format!(
                "cannot run dtc ({e}); install device-tree-compiler"
            ))
        })?;
    let mut stdin = child.stdin.take().expect("piped");
    let data = input.to_vec();
    // Feed stdin from a thread so a large output cannot deadlock against a full pipe.
    let feeder = std::thread::spawn(move || stdin.write_all(&data));
    let out = child
        .wait_with_output()
        .map_err(|e| DtsError::Dtc(e.to_string()))?;
    let _ = feeder.join();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("failed");
        return Err(DtsError::Dtc(first.trim().to_string()));
    }
    Ok(out.stdout)
}

/// Compiles DTS source text to a DTB; `include_dir` resolves `/include/`.
pub fn compile_source(src: &[u8], include_dir: Option<&Path>) -> Result<Vec<u8>, DtsError> {
    let mut args = vec!["-q", "-I", "dts", "-O", "dtb"];
    let inc;
    if let Some(d) = include_dir {
        inc = d.to_string_lossy().into_owned();
        args.extend(["-i", &inc]);
    }
    args.push("-");
    run(&args, src)
}

/// Compiles a `.dts` file into a [`Tree`] (dtc reads the file itself, so its messages name it
/// and `/include/` resolves next to it).
pub fn compile_file(path: &Path) -> Result<Tree, DtsError> {
    if !path.is_file() {
        return Err(DtsError::Dtc(format!("{}: no such file", path.display())));
    }
    let p = path.to_string_lossy();
    let blob = run(&["-q", "-I", "dts", "-O", "dtb", &p], &[])?;
    Tree::from_dtb(&blob)
}

/// Decodes a DTB to DTS text (`dtc -I dtb -O dts`).
pub fn decompile(dtb: &[u8]) -> Result<String, DtsError> {
    let out = run(&["-q", "-I", "dtb", "-O", "dts", "-"], dtb)?;
    String::from_utf8(out).map_err(|e| DtsError::Dtc(e.to_string()))
}
