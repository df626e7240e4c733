//! The operations behind the command line.

/// Progress lines on stdout, like abootimg's. Unlike `println!`, a closed stdout (`| head`) is not
/// a panic: the message is dropped and the operation finishes.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Warnings on stderr, with the same reasoning.
macro_rules! tell {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod args;
mod create;
mod extract;
mod output;
mod update;

use std::ffi::OsString;
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{Context, Result};
use bootimg::config::{self, Entry};
use bootimg::{BootImage, LegacyHeader};

use args::{Cli, Command, HeaderArgs};

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Create(a) => create::run(&a),
        Command::Update(a) => update::run(&a),
        Command::Extract(a) => extract::run(&a),
        Command::Info(a) => {
            // Only the header is read, so -i is instant on large images and block devices.
            let mut file = fs::File::open(&a.image)
                .with_context(|| format!("cannot open image {}", a.image.display()))?;
            let len = file
                .seek(SeekFrom::End(0))
                .and_then(|len| file.rewind().map(|()| len))
                .with_context(|| format!("cannot read image {}", a.image.display()))?;
            let (header, layout) = bootimg::read_header(&mut file, len)
                .with_context(|| format!("{}", a.image.display()))?;
            let report = bootimg::info::describe(&header, &layout, &a.image.to_string_lossy(), len);
            std::io::stdout().write_all(&report)?;
            Ok(())
        }
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

fn parse<'a>(path: &Path, data: &'a [u8]) -> Result<BootImage<'a>> {
    BootImage::parse(data).with_context(|| format!("{}", path.display()))
}

fn arg_bytes(arg: &OsString) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    arg.as_bytes().to_vec()
}

/// Applies `-f` then every `-c` to `header` and `bootsize`, in abootimg's order.
fn apply_config(args: &HeaderArgs, header: &mut LegacyHeader, bootsize: &mut u64) -> Result<()> {
    let mut entries: Vec<Entry> = Vec::new();
    if let Some(path) = &args.config_file {
        let text = read(path, "config file")?;
        entries.extend(config::parse_config(&text).with_context(|| format!("{}", path.display()))?);
    }
    for c in &args.config {
        entries.extend(
            config::parse_arg(&arg_bytes(c))
                .with_context(|| format!("-c {:?}", shorten(&c.to_string_lossy())))?,
        );
    }
    for e in &entries {
        config::apply(e, header, bootsize);
    }
    Ok(())
}

/// Keeps error messages short when an argument is long (a 600-byte cmdline).
fn shorten(s: &str) -> String {
    const MAX: usize = 40;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// Writes a built image (create and update end the same way), warning first when it has no
/// ramdisk, which only mvm-style loaders accept.
fn write_image(path: &std::path::Path, bytes: &[u8], has_ramdisk: bool) -> anyhow::Result<()> {
    if !has_ramdisk {
        tell!(
            "bootimg: warning: the image has no ramdisk (ramdisk size 0): abootimg rejects it \
             (\"ramdisk size is null\"); mvm and U-Boot accept it"
        );
    }
    output::write_atomic(path, bytes)?;
    say!(
        "Writing Boot Image {} ({} bytes)",
        path.display(),
        bytes.len()
    );
    Ok(())
}
