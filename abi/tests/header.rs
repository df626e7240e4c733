//! The committed C header must be exactly what the Rust definitions generate, and a C compiler
//! must agree with its size, offset and ioctl-number assertions.

use std::path::PathBuf;
use std::process::Command;

fn generated() -> String {
    let mut text = String::new();
    minos_abi::header::write_c_header(&mut text).unwrap();
    text
}

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(minos_abi::header::PATH)
}

#[test]
fn committed_header_is_up_to_date() {
    let path = committed_path();
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert!(
        committed == generated(),
        "{} is stale: run `cargo run -q -p minos-abi --bin minos-abi-header > {}`",
        minos_abi::header::PATH,
        minos_abi::header::PATH
    );
}

#[test]
fn host_c_compiler_accepts_the_header_assertions() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("check.c");
    std::fs::write(
        &src,
        format!("{}\nint main(void) {{ return 0; }}\n", generated()),
    )
    .unwrap();
    let out = Command::new("cc")
        .args(["-std=gnu11", "-Wall", "-Werror", "-fsyntax-only"])
        .arg(&src)
        .output()
        .expect("cc (the host C compiler) must be installed");
    assert!(
        out.status.success(),
        "the C compiler rejects the generated header:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
