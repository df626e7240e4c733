//! `ticks`: guest-side measurements in generic-timer ticks (`CNTVCT_EL0`) for the mvm
//! benchmarks. A static aarch64 program run by a guest's init: when it started (its virtual
//! count starts near 0 when the VM starts), what one access to an emulated register costs
//! (the round trip through the hypervisor, and through mvm for the blocking ones), and how
//! fast bytes move through a console.

mod counter;
mod devmem;
mod stats;
mod stream;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::stats::{bytes_per_second, Summary};

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Prints the virtual count (CNTVCT_EL0) now.
    Now,
    /// Prints the counter frequency in Hz (CNTFRQ_EL0).
    Freq,
    /// Times 32-bit accesses to the register at physical address ADDR, mapped through
    /// /dev/mem (before a driver claims it): prints `median M min A max B n N` in ticks, each
    /// sample from just before one access to just after it.
    Mmio {
        /// Physical address (0x... or decimal), 4-byte aligned.
        #[arg(value_parser = parse_u64)]
        addr: u64,
        /// Write this value instead of reading.
        #[arg(long, value_parser = parse_u32)]
        write: Option<u32>,
        /// Number of accesses.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
        rounds: u32,
    },
    /// Writes BYTES bytes of 'x' to PATH (a terminal is set raw and drained), then prints
    /// `bytes B ticks T rate R` (R in bytes per second of counter time).
    Write {
        path: String,
        #[arg(long, value_parser = parse_u64)]
        bytes: u64,
        /// Bytes per write(2).
        #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=1 << 20))]
        chunk: u32,
    },
    /// Prints `ready` on standard error, reads BYTES bytes from PATH (a terminal is set raw),
    /// then prints `bytes B ticks T rate R`: the ticks from the first read's return to the
    /// last one's and the bytes that arrived in between.
    Read {
        path: String,
        #[arg(long, value_parser = parse_u64)]
        bytes: u64,
    },
}

fn parse_u64(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("`{s}`: {e} (expected a number, 0x... for hex)"))
}

fn parse_u32(s: &str) -> Result<u32, String> {
    u32::try_from(parse_u64(s)?).map_err(|_| format!("`{s}` does not fit in 32 bits"))
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("ticks: {e:#}");
        std::process::exit(1);
    }
}

fn transfer_line(t: stream::Transfer) -> anyhow::Result<String> {
    let rate = bytes_per_second(t.bytes, t.ticks, counter::frequency()?)
        .context("no counter ticks passed: nothing to rate")?;
    Ok(format!("bytes {} ticks {} rate {rate}", t.bytes, t.ticks))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Now => println!("{}", counter::now()?),
        Command::Freq => println!("{}", counter::frequency()?),
        Command::Mmio {
            addr,
            write,
            rounds,
        } => {
            let reg = devmem::Register::map(addr)?;
            let mut samples = Vec::with_capacity(rounds as usize);
            for _ in 0..rounds {
                let t0 = counter::now()?;
                match write {
                    Some(v) => reg.write(v),
                    None => {
                        std::hint::black_box(reg.read());
                    }
                }
                samples.push(counter::now()? - t0);
            }
            let s = Summary::of(&samples).context("no samples")?;
            println!("{s}");
        }
        Command::Write { path, bytes, chunk } => {
            let t = stream::write(&path, bytes, chunk as usize, b'x')?;
            println!("{}", transfer_line(t)?);
        }
        Command::Read { path, bytes } => {
            // `ready` goes apart from the result, which a script often captures.
            let t = stream::read(&path, bytes, &mut std::io::stderr())?;
            println!("{}", transfer_line(t)?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn numbers_in_hex_or_decimal() {
        assert_eq!(parse_u64("0x40000100"), Ok(0x4000_0100));
        assert_eq!(parse_u64("4096"), Ok(4096));
        assert!(parse_u64("0xzz").unwrap_err().contains("0xzz"));
        assert!(parse_u32("0x100000000").is_err());
    }

    #[test]
    fn zero_rounds_are_refused() {
        assert!(Cli::try_parse_from(["ticks", "mmio", "0x40000000", "--rounds", "0"]).is_err());
    }

    #[test]
    fn unaligned_registers_are_refused_before_opening_anything() {
        let e = devmem::Register::map(0x4000_0002).err().unwrap();
        assert_eq!(
            e.to_string(),
            "0x40000002: register accesses must be 4-byte aligned"
        );
    }

    #[test]
    fn a_missing_device_is_a_clear_error() {
        let e = stream::write("/nonexistent/tty", 1, 1, b'x').unwrap_err();
        assert!(
            e.to_string().starts_with("cannot open /nonexistent/tty: "),
            "{e}"
        );
    }

    #[test]
    fn a_short_read_is_an_error_not_a_figure() {
        // /dev/null reads end of file at once.
        let mut sink = Vec::new();
        let e = stream::read("/dev/null", 10, &mut sink).unwrap_err();
        assert!(
            e.to_string().contains("end of file after 0 of 10 bytes"),
            "{e}"
        );
        assert_eq!(sink, b"ready\n");
    }
}
