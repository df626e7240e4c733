//! `mkimage config`: the Raspberry Pi `config.txt` from the board's lines plus overrides.
//!
//! The firmware silently ignores `key = value` with spaces, so every line is written and
//! checked as `key=value`.

use std::path::PathBuf;

use crate::board::Board;

#[derive(clap::Args)]
#[command(
    after_long_help = "Write a Raspberry Pi config.txt: the board's lines (64-bit mode, the UART, \
    U-Boot as the kernel) with --set overrides. A --set of an existing key replaces its \
    value; dtoverlay, dtparam and initramfs lines are added instead, since they repeat."
)]
pub struct Args {
    /// Board whose config.txt lines to start from
    #[arg(long, default_value = "rpi3")]
    board: String,
    /// Set a key (key=value, no spaces around `=`); may be repeated
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Output file (`-` writes standard output)
    #[arg(short, long)]
    output: PathBuf,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("config.txt line `{0}` is not key=value (no spaces around `=`)")]
    BadLine(String),
    #[error("board `{0}` has no [rpi] config.txt lines")]
    NotRpi(String),
    #[error("config.txt must keep {0}")]
    Required(String),
}

/// Keys that may appear more than once; a `--set` adds a line for them.
const REPEATED: [&str; 3] = ["dtoverlay", "dtparam", "initramfs"];

fn key_of(line: &str) -> Result<&str, ConfigError> {
    let bad = || ConfigError::BadLine(line.to_string());
    // `initramfs FILE ADDR` is the one directive without `=`.
    if let Some(rest) = line.strip_prefix("initramfs ") {
        return if rest.split(' ').filter(|s| !s.is_empty()).count() == 2 {
            Ok("initramfs")
        } else {
            Err(bad())
        };
    }
    let (k, v) = line.split_once('=').ok_or_else(bad)?;
    let key_ok = !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !key_ok || v.starts_with([' ', '\t']) || v.is_empty() || line.contains(['\n', '\r']) {
        return Err(bad());
    }
    Ok(k)
}

/// The config.txt text for `board` with `sets` applied.
pub fn render<S: AsRef<str>>(board: &Board, sets: &[S]) -> Result<String, ConfigError> {
    let rpi = board
        .rpi
        .as_ref()
        .ok_or_else(|| ConfigError::NotRpi(board.name.clone()))?;
    let mut lines: Vec<String> = Vec::new();
    for l in &rpi.config {
        key_of(l)?;
        lines.push(l.clone());
    }
    for s in sets {
        let s = s.as_ref();
        let key = key_of(s)?;
        let existing = lines.iter().position(|l| key_of(l).is_ok_and(|k| k == key));
        match existing {
            Some(i) if !REPEATED.contains(&key) => lines[i] = s.to_string(),
            _ => lines.push(s.to_string()),
        }
    }
    for need in ["arm_64bit=1", "enable_uart=1"] {
        if !lines.iter().any(|l| l == need) {
            return Err(ConfigError::Required(need.to_string()));
        }
    }
    if let Some(uboot) = &board.files.uboot {
        let want = format!("kernel={uboot}");
        if !lines.contains(&want) {
            return Err(ConfigError::Required(want));
        }
    }
    let mut out = format!(
        "# config.txt for {} (mkimage config --board {})\n",
        board.model, board.name
    );
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
    Ok(out)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let board = Board::load(&args.board)?;
    let text = render(&board, &args.sets)?;
    crate::env::write_output(&args.output, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rpi3() -> Board {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../boards");
        Board::load_from(&dir, "rpi3").unwrap()
    }

    #[test]
    fn rpi3_defaults() {
        let t = render::<&str>(&rpi3(), &[]).unwrap();
        let lines: Vec<&str> = t.lines().filter(|l| !l.starts_with('#')).collect();
        for want in ["arm_64bit=1", "enable_uart=1", "kernel=kernel8.img"] {
            assert!(lines.contains(&want), "{want} missing in {t}");
        }
        assert!(lines.iter().all(|l| !l.contains(" =") && !l.contains("= ")));
    }

    #[test]
    fn sets_replace_or_add() {
        let t = render(
            &rpi3(),
            &[
                "gpu_mem=16",
                "dtoverlay=miniuart-bt",
                "dtoverlay=disable-wifi",
                "initramfs initrd.gz followkernel",
            ],
        )
        .unwrap();
        assert_eq!(t.matches("gpu_mem=").count(), 1);
        assert!(t.contains("gpu_mem=16\n"));
        assert!(t.contains("dtoverlay=miniuart-bt\ndtoverlay=disable-wifi\n"));
        assert!(t.contains("initramfs initrd.gz followkernel\n"));
    }

    #[test]
    fn bad_lines_and_required_keys() {
        let b = rpi3();
        for bad in [
            "gpu_mem = 16",
            "gpu_mem= 16",
            "gpu_mem",
            "=1",
            "a b=1",
            "x=1\ny=2",
        ] {
            assert_eq!(
                render(&b, &[bad]),
                Err(ConfigError::BadLine(bad.into())),
                "{bad}"
            );
        }
        assert!(matches!(
            render(&b, &["arm_64bit=0"]),
            Err(ConfigError::Required(_))
        ));
        assert!(matches!(
            render(&b, &["kernel=Image"]),
            Err(ConfigError::Required(_))
        ));
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../boards");
        let fvp = Board::load_from(&dir, "fvp").unwrap();
        assert_eq!(
            render::<&str>(&fvp, &[]),
            Err(ConfigError::NotRpi("fvp".into()))
        );
    }
}
