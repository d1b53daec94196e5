//! The `switchboard` binary: parses arguments and hands them to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = switchboard_host::cli::Cli::parse();
    // Not `stdout().lock()`: `serve` runs threads that log, and a lock held for the whole
    // command would block them forever.
    match switchboard_host::cli::run(cli, &mut std::io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
