//! The `switchboard` binary: parses arguments and hands them to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // A compile worker (started by this binary for each upload) is not a user command.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(switchboard_host::runtime::WORKER_SUBCOMMAND) {
        return switchboard_host::runtime::compile_worker_main(&args[1..]);
    }
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
