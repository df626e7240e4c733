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

/// Lays DTS source over `base` the way dtc merges a second `/ { ... };`: the base is decompiled,
/// the fragment included after it, and dtc compiles the whole. Unlike [`Tree::merge`], labels
/// inside the fragment work (dtc gives their nodes phandles no base node uses) and the fragment
/// may point at base nodes by path (`<&{/soc/serial@7e215040}>`). `name` is the fragment's file
/// name in dtc's messages; `/include/` resolves in `include_dir`.
pub fn overlay_source(
    base: &Tree,
    fragment: &str,
    name: &Path,
    include_dir: Option<&Path>,
) -> Result<Tree, DtsError> {
    let tmp = tempfile::tempdir().map_err(|e| DtsError::Dtc(format!("temporary folder: {e}")))?;
    // `/dts-v1/;` may only open a file, so the fragment's is blanked (same length, so dtc's
    // line and column numbers still match the original).
    let body = fragment.replace("/dts-v1/;", "         ");
    let frag_path = tmp.path().join("fragment.dts");
    let base_path = tmp.path().join("base.dts");
    let mut base_src = decompile(&base.to_dtb()?)?;
    base_src.push_str("\n/include/ \"fragment.dts\"\n");
    let io = |e: std::io::Error| DtsError::Dtc(format!("temporary file: {e}"));
    std::fs::write(&frag_path, body).map_err(io)?;
    std::fs::write(&base_path, base_src).map_err(io)?;
    let base_arg = base_path.to_string_lossy().into_owned();
    let inc = include_dir.map(|d| d.to_string_lossy().into_owned());
    let mut args = vec!["-q", "-I", "dts", "-O", "dtb"];
    if let Some(i) = &inc {
        args.extend(["-i", i]);
    }
    args.push(&base_arg);
    let blob = run(&args, &[]).map_err(|e| match e {
        DtsError::Dtc(m) => DtsError::Dtc(
            m.replace(&*frag_path.to_string_lossy(), &name.to_string_lossy())
                .replace(&*tmp.path().to_string_lossy(), "<base>"),
        ),
        e => e,
    })?;
    Tree::from_dtb(&blob)
}

/// [`overlay_source`] for a `.dts` file.
pub fn overlay_file(base: &Tree, path: &Path) -> Result<Tree, DtsError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| DtsError::Dtc(format!("cannot read {}: {e}", path.display())))?;
    overlay_source(base, &text, path, path.parent())
}
