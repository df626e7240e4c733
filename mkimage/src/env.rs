//! `mkimage env`: the U-Boot environment image (`uboot.env`), byte-identical to `mkenvimage`.
//!
//! Layout: CRC32 (IEEE) of everything after the header, then (redundant environments only) a
//! flag byte 1, then `key=value\0` entries, one more `\0`, and padding up to the size.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::board::Board;

#[derive(clap::Args)]
#[command(
    after_long_help = "Build a U-Boot environment image from key=value lines, byte for byte what \
    `mkenvimage` writes for the same options. Empty lines are skipped, lines with `#` in the \
    first column are comments, a line ending in a backslash continues on the next line (the \
    value keeps the newline). With --board, the size and redundancy come from the board, and \
    without INPUT the board's own environment (bootdelay, bootcmd) is used."
)]
pub struct Args {
    /// key=value lines; `-` reads standard input
    input: Option<PathBuf>,
    /// Output file (`-` writes standard output)
    #[arg(short, long)]
    output: PathBuf,
    /// Size of the environment in bytes (CONFIG_ENV_SIZE), e.g. 0x4000
    #[arg(short, long, value_parser = parse_c_number)]
    size: Option<u64>,
    /// Redundant environment: a flag byte after the CRC (CONFIG_SYS_REDUNDAND_ENVIRONMENT)
    #[arg(short, long)]
    redundant: bool,
    /// Padding byte after the entries
    #[arg(short, long, default_value = "0xff", value_parser = parse_byte)]
    pad: u8,
    /// Store the CRC big-endian (for big-endian targets)
    #[arg(short, long)]
    big_endian: bool,
    /// Take size and redundancy (and, without INPUT, the entries) from this board
    #[arg(long)]
    board: Option<String>,
    /// With --board and no INPUT: make the boot command load VM0's initrd too
    #[arg(long, requires = "board")]
    with_initrd: bool,
}

/// Shape of an environment image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvOptions {
    pub size: usize,
    pub redundant: bool,
    pub pad: u8,
    pub big_endian: bool,
}

impl EnvOptions {
    /// The shape a board's U-Boot expects (padding 0xff, little-endian, as mkenvimage).
    pub fn for_board(board: &Board) -> Result<EnvOptions, crate::board::BoardError> {
        let ub = board.uboot()?;
        Ok(EnvOptions {
            size: ub.env_size,
            redundant: ub.env_redundant,
            pad: 0xff,
            big_endian: false,
        })
    }

    fn header(&self) -> usize {
        4 + usize::from(self.redundant)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    #[error("environment size {size:#x} leaves no room for entries")]
    SizeTooSmall { size: usize },
    #[error("the environment is too large for {size:#x} bytes (needs at least {need:#x})")]
    TooLarge { size: usize, need: usize },
}

/// Builds the image from mkenvimage-style text.
pub fn build(text: &[u8], opts: &EnvOptions) -> Result<Vec<u8>, EnvError> {
    pack(parse(text), opts)
}

/// Builds the image from `key=value` entries, kept as they are (newlines included).
pub fn build_from_entries<S: AsRef<str>>(
    entries: &[S],
    opts: &EnvOptions,
) -> Result<Vec<u8>, EnvError> {
    let mut data = Vec::new();
    for e in entries {
        data.extend_from_slice(e.as_ref().as_bytes());
        data.push(0);
    }
    pack(data, opts)
}

/// Lays the NUL-terminated entries into an image: header, entries, the list's final NUL, pad.
fn pack(data: Vec<u8>, opts: &EnvOptions) -> Result<Vec<u8>, EnvError> {
    let header = opts.header();
    if opts.size < header + 2 {
        return Err(EnvError::SizeTooSmall { size: opts.size });
    }
    let need = header + data.len() + 1;
    if need > opts.size {
        return Err(EnvError::TooLarge {
            size: opts.size,
            need,
        });
    }
    let mut img = vec![opts.pad; opts.size];
    img[header..header + data.len()].copy_from_slice(&data);
    img[header + data.len()] = 0;
    let crc = crc32fast::hash(&img[header..]);
    let crc = if opts.big_endian {
        crc.to_be_bytes()
    } else {
        crc.to_le_bytes()
    };
    img[..4].copy_from_slice(&crc);
    if opts.redundant {
        img[4] = 1;
    }
    Ok(img)
}

/// mkenvimage's input rules, byte by byte (each rule looks only at the byte before): a newline
/// ends a variable, except at the start of the input or after another newline (a blank line,
/// skipped) or after a backslash (which becomes a newline inside the value); a `#` at the
/// start of a line skips the line with its newline. The last variable is always terminated.
fn parse(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 1);
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        let prev = i.checked_sub(1).map(|p| text[p]);
        let line_start = matches!(prev, None | Some(b'\n'));
        if c == b'\n' {
            if line_start {
                // blank line
            } else if prev == Some(b'\\') {
                if let Some(last) = out.last_mut() {
                    *last = b'\n';
                }
            } else {
                out.push(0);
            }
        } else if line_start && c == b'#' {
            while i < text.len() && text[i] != b'\n' {
                i += 1;
            }
        } else {
            out.push(c);
        }
        i += 1;
    }
    if out.last().is_some_and(|&b| b != 0) {
        out.push(0);
    }
    out
}

/// Parses a number the way C's `strtol(s, NULL, 0)` does (`0x` hex, leading `0` octal), as
/// mkenvimage does for `-s` and `-p`.
pub fn parse_c_number(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, radix) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (h, 16)
    } else if t.len() > 1 && t.starts_with('0') {
        (&t[1..], 8)
    } else {
        (t, 10)
    };
    u64::from_str_radix(digits, radix).map_err(|_| format!("`{s}` is not a number"))
}

fn parse_byte(s: &str) -> Result<u8, String> {
    let n = parse_c_number(s)?;
    u8::try_from(n).map_err(|_| format!("`{s}` does not fit in a byte"))
}

/// A temporary file in `dir` for an output that is renamed into place when complete. Created
/// with mode 0666 less the umask, as a plain `File::create` would be (tempfile's default
/// 0600 would survive the rename).
pub fn output_tempfile(dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
}

/// Writes `bytes` to `out` through a temporary file in the same folder and a rename, so a
/// failure never leaves a half-written output. `-` is standard output.
pub fn write_output(out: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if out == Path::new("-") {
        std::io::stdout().lock().write_all(bytes)?;
        return Ok(());
    }
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = crate::env::output_tempfile(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .with_context(|| format!("cannot write {}", out.display()))?;
    tmp.persist(out)
        .with_context(|| format!("cannot write {}", out.display()))?;
    Ok(())
}

/// Reads a file, or standard input for `-`.
pub fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin().lock().read_to_end(&mut buf)?;
        return Ok(buf);
    }
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let board = args.board.as_deref().map(Board::load).transpose()?;
    let mut opts = match &board {
        Some(b) => EnvOptions::for_board(b)?,
        None => EnvOptions {
            size: 0,
            redundant: false,
            pad: 0xff,
            big_endian: false,
        },
    };
    if let Some(s) = args.size {
        opts.size = usize::try_from(s).context("--size is too large")?;
    } else if board.is_none() {
        anyhow::bail!("give the environment size with --size (or a board with --board)");
    }
    opts.redundant |= args.redundant;
    opts.pad = args.pad;
    opts.big_endian = args.big_endian;
    let img = match (&args.input, &board) {
        (Some(input), _) => build(&read_input(input)?, &opts)?,
        (None, Some(b)) => build_from_entries(&b.env_lines(args.with_initrd)?, &opts)?,
        (None, None) => anyhow::bail!("give an INPUT file (or `-` for standard input)"),
    };
    write_output(&args.output, &img)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(size: usize) -> EnvOptions {
        EnvOptions {
            size,
            redundant: false,
            pad: 0xff,
            big_endian: false,
        }
    }

    #[test]
    fn entries_comments_and_blank_lines() {
        assert_eq!(parse(b"a=1\n\n#c=2\nb=x y\n"), b"a=1\0b=x y\0");
        assert_eq!(parse(b"\n\na=1"), b"a=1\0");
        // `#` only counts in the first column.
        assert_eq!(parse(b"a=#1\n #b\n"), b"a=#1\0 #b\0");
        // Backslash-newline keeps a newline in the value.
        assert_eq!(parse(b"a=1\\\n2\nb=3\n"), b"a=1\n2\0b=3\0");
        // ...and each rule looks at one byte only, as in mkenvimage: a blank line or a
        // comment inside a continued value is dropped.
        assert_eq!(parse(b"a=1\\\n#2\nb\n"), b"a=1\nb\0");
        assert_eq!(parse(b"a=1\\\n\nb\n"), b"a=1\nb\0");
        assert_eq!(parse(b"a=1\\\n"), b"a=1\n\0");
        assert_eq!(parse(b"#only\n"), b"");
    }

    #[test]
    fn layout_and_crc() {
        let img = build(b"bootdelay=1\n", &opts(0x20)).unwrap();
        assert_eq!(img.len(), 0x20);
        assert_eq!(&img[4..17], b"bootdelay=1\0\0");
        assert!(img[17..].iter().all(|&b| b == 0xff));
        let crc = u32::from_le_bytes(img[..4].try_into().unwrap());
        assert_eq!(crc, crc32fast::hash(&img[4..]));
        let red = build(
            b"bootdelay=1\n",
            &EnvOptions {
                redundant: true,
                pad: 0,
                ..opts(0x20)
            },
        )
        .unwrap();
        assert_eq!(red[4], 1);
        assert_eq!(&red[5..18], b"bootdelay=1\0\0");
        assert!(red[18..].iter().all(|&b| b == 0));
        let crc = u32::from_le_bytes(red[..4].try_into().unwrap());
        assert_eq!(crc, crc32fast::hash(&red[5..]));
    }

    #[test]
    fn size_limits() {
        // 4 CRC + "a=1\0" + final NUL = 9 bytes.
        assert!(build(b"a=1\n", &opts(9)).is_ok());
        assert_eq!(
            build(b"a=1\n", &opts(8)),
            Err(EnvError::TooLarge { size: 8, need: 9 })
        );
        assert!(build(b"a=1", &opts(9)).is_ok());
        assert!(matches!(
            build(b"", &opts(5)),
            Err(EnvError::SizeTooSmall { .. })
        ));
    }

    #[test]
    fn entries_match_text() {
        let a = build_from_entries(&["a=1\n2", "b=3"], &opts(0x40)).unwrap();
        let b = build(b"a=1\\\n2\nb=3\n", &opts(0x40)).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn c_numbers() {
        assert_eq!(parse_c_number("0x4000"), Ok(0x4000));
        assert_eq!(parse_c_number("16384"), Ok(16384));
        assert_eq!(parse_c_number("010"), Ok(8));
        assert_eq!(parse_c_number("0"), Ok(0));
        assert!(parse_c_number("4k").is_err());
        assert!(parse_byte("256").is_err());
    }
}
