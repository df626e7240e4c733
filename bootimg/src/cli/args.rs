//! Command-line definition. abootimg's first-argument flags are rewritten to subcommands before
//! clap sees them, so both spellings share one definition.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

const ABOUT: &str = "Android boot images, abootimg-compatible: create, update, extract, inspect";

const LONG_ABOUT: &str = "\
Android boot images, abootimg-compatible: create, update, extract, inspect.

abootimg's command line works unchanged (the first argument picks the operation):
  bootimg --create <img> [-c key=value]... [-f bootimg.cfg] -k kernel -r ramdisk [-s second]
  bootimg -u <img> [-c key=value]... [-f bootimg.cfg] [-k kernel] [-r ramdisk] [-s second]
  bootimg -x <img> [cfg [kernel [ramdisk [second]]]]
  bootimg -i <img>
and the same operations exist as subcommands: create, update, extract, info.

Config keys (-c and bootimg.cfg, one `key = value` per line, as abootimg): bootsize, pagesize,
kerneladdr, ramdiskaddr, secondaddr, tagsaddr, name (15 bytes kept), cmdline (max 511 bytes).
-f is applied first, then each -c in order. Numbers: 0x hex, leading 0 octal, else decimal.
Unlike abootimg, a malformed number is an error instead of silently becoming 0.

`--create` writes the same bytes as `abootimg --create` for the same inputs: header v0, id zero
(unless --id sha1), no default addresses, 2048-byte pages unless pagesize is set; bootsize pads
the file up to that size and is an error if the image does not fit.

Differences from abootimg 0.6:
  * page size: bootimg accepts (and reads) only powers of two from 2048 up; abootimg also writes
    e.g. 1000-byte pages, which bootimg refuses.
  * -x extracts the second stage from its real offset, and also the recovery dtbo and dtb of
    v1/v2 images; -i prints the real second-stage size and the v1-v4 header fields.
  * a failed create or update leaves the target untouched (output goes through a temporary file
    in the same directory, then a rename); block devices are not written.
  * -u on v1/v2 images keeps their extra fields, recovery dtbo and dtb (abootimg corrupts them);
    -u re-lays the image out when pagesize changes; it keeps the file size like abootimg (unless
    bootsize is given) but zero-fills the end of the file past the last component instead of
    leaving stale bytes there; it works with only -c arguments (abootimg 0.6 segfaults).
  * --no-ramdisk builds an image without a ramdisk (mvm accepts it; abootimg refuses it).";

#[derive(Parser, Debug)]
// abootimg takes the last of repeated -k/-r/-s/-f; -c still accumulates.
#[command(name = "bootimg", version, about = ABOUT, long_about = LONG_ABOUT, args_override_self = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new v0 image (abootimg: --create)
    Create(CreateArgs),
    /// Update an image in place (abootimg: -u)
    Update(UpdateArgs),
    /// Extract bootimg.cfg and the components (abootimg: -x)
    Extract(ExtractArgs),
    /// Print the header (abootimg: -i)
    Info(InfoArgs),
}

/// What to store in the header's 32-byte id.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdArg {
    /// create: zero; update: recompute if the old id was mkbootimg's SHA-1, else keep it
    Auto,
    /// Keep the current id (abootimg -u)
    Keep,
    /// All zero (abootimg --create)
    Zero,
    /// mkbootimg's SHA-1 over the components and their sizes
    Sha1,
}

#[derive(Args, Debug)]
pub struct HeaderArgs {
    /// Set a header entry, e.g. -c kerneladdr=0x80080000 (repeatable, applied after -f)
    #[arg(short = 'c', value_name = "KEY=VALUE", allow_hyphen_values = true)]
    pub config: Vec<OsString>,
    /// Read header entries from a bootimg.cfg file
    #[arg(short = 'f', value_name = "CFG")]
    pub config_file: Option<PathBuf>,
    /// What to put in the id field
    #[arg(long, value_enum, default_value_t = IdArg::Auto)]
    pub id: IdArg,
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("ramdisk-choice").required(true).args(["ramdisk", "no_ramdisk"])))]
pub struct CreateArgs {
    /// Image to write
    pub image: PathBuf,
    #[command(flatten)]
    pub header: HeaderArgs,
    /// Kernel image
    #[arg(short = 'k', value_name = "KERNEL")]
    pub kernel: PathBuf,
    /// Ramdisk image (must not be empty; see --no-ramdisk)
    #[arg(short = 'r', value_name = "RAMDISK")]
    pub ramdisk: Option<PathBuf>,
    /// Build without a ramdisk (mvm's -r case). abootimg rejects such images
    #[arg(long)]
    pub no_ramdisk: bool,
    /// Second stage (for Minos: the guest DTB)
    #[arg(short = 's', value_name = "SECOND")]
    pub second: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// Image to update
    pub image: PathBuf,
    #[command(flatten)]
    pub header: HeaderArgs,
    /// New kernel
    #[arg(short = 'k', value_name = "KERNEL")]
    pub kernel: Option<PathBuf>,
    /// New ramdisk (must not be empty; see --no-ramdisk)
    #[arg(short = 'r', value_name = "RAMDISK", conflicts_with = "no_ramdisk")]
    pub ramdisk: Option<PathBuf>,
    /// Drop the ramdisk. abootimg rejects images without one
    #[arg(long)]
    pub no_ramdisk: bool,
    /// New second stage
    #[arg(short = 's', value_name = "SECOND")]
    pub second: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ExtractArgs {
    /// Image to read
    pub image: PathBuf,
    /// Where to write the header entries (abootimg's 8-line format)
    #[arg(default_value = "bootimg.cfg")]
    pub config: PathBuf,
    /// Where to write the kernel
    #[arg(default_value = "zImage")]
    pub kernel: PathBuf,
    /// Where to write the ramdisk
    #[arg(default_value = "initrd.img")]
    pub ramdisk: PathBuf,
    /// Where to write the second stage, if the image has one
    #[arg(default_value = "stage2.img")]
    pub second: PathBuf,
    /// Written only if the image (v1/v2) has a recovery dtbo
    #[arg(long, value_name = "FILE", default_value = "recovery_dtbo.img")]
    pub recovery_dtbo: PathBuf,
    /// Written only if the image (v2) has a dtb
    #[arg(long, value_name = "FILE", default_value = "dtb.img")]
    pub dtb: PathBuf,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Image to read
    pub image: PathBuf,
}

/// Maps abootimg's operation flags, which it only accepts as the first argument, to subcommands.
pub fn normalize(mut args: Vec<OsString>) -> Vec<OsString> {
    if let Some(first) = args.get_mut(1) {
        let sub = match first.to_str() {
            Some("--create") => "create",
            Some("-u") => "update",
            Some("-x") => "extract",
            Some("-i") => "info",
            _ => return args,
        };
        *first = sub.into();
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(normalize(args.iter().map(OsString::from).collect()))
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn abootimg_spellings_map_to_subcommands() {
        let cli = parse(&[
            "bootimg",
            "--create",
            "b.img",
            "-c",
            "cmdline=-x",
            "-k",
            "k",
            "-r",
            "r",
        ])
        .unwrap();
        let Command::Create(c) = cli.command else {
            panic!()
        };
        assert_eq!(c.header.config, vec![OsString::from("cmdline=-x")]);
        let cli = parse(&["bootimg", "-x", "b.img", "c", "k"]).unwrap();
        let Command::Extract(x) = cli.command else {
            panic!()
        };
        assert_eq!(x.kernel, PathBuf::from("k"));
        assert_eq!(x.ramdisk, PathBuf::from("initrd.img"));
        assert!(matches!(
            parse(&["bootimg", "-i", "b.img"]).unwrap().command,
            Command::Info(_)
        ));
        assert!(matches!(
            parse(&["bootimg", "-u", "b.img", "-k", "k"])
                .unwrap()
                .command,
            Command::Update(_)
        ));
    }

    #[test]
    fn repeated_options_take_the_last_like_abootimg() {
        let cli = parse(&[
            "bootimg", "--create", "b", "-k", "k1", "-k", "k2", "-r", "r", "-c", "a=1", "-c", "b=2",
        ])
        .unwrap();
        let Command::Create(c) = cli.command else {
            panic!()
        };
        assert_eq!(c.kernel, PathBuf::from("k2"));
        assert_eq!(c.header.config.len(), 2);
    }

    #[test]
    fn create_needs_kernel_and_a_ramdisk_choice() {
        assert!(parse(&["bootimg", "create", "b.img", "-r", "r"]).is_err());
        assert!(parse(&["bootimg", "create", "b.img", "-k", "k"]).is_err());
        assert!(parse(&[
            "bootimg",
            "create",
            "b.img",
            "-k",
            "k",
            "-r",
            "r",
            "--no-ramdisk"
        ])
        .is_err());
        assert!(parse(&["bootimg", "create", "b.img", "-k", "k", "--no-ramdisk"]).is_ok());
    }
}
