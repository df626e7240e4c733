//! `bootimg`: abootimg's command line (`--create`, `-u`, `-x`, `-i`) and the same operations
//! as subcommands, over the `bootimg` library.

mod cli;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::args::Cli::parse_from(cli::args::normalize(
        std::env::args_os().collect::<Vec<OsString>>(),
    ));
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` puts the whole context chain on one line. A closed stderr is no reason
            // to panic: the exit code still tells.
            let _ = writeln!(std::io::stderr(), "bootimg: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
