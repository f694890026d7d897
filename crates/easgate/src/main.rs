//! The `easgate` binary: parses the command line, opens the store and hands over to the
//! operations in `easgate-ops`. Exit codes: 0 success, 1 failure (`error:` line on stderr),
//! 2 usage error (clap).

mod access_commands;
mod cli;
mod commands;
mod migrate_command;
mod output;
mod profile_commands;
mod provision_commands;
mod token_commands;

use std::process::ExitCode;

/// mimalloc rather than glibc's malloc: serving a page of the API allocates per record, and
/// glibc's allocator took about a fifth of the server's time there (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{CommandFactory, Parser};

/// `easgate … | head`: once the reader is gone, printing fails with a broken pipe, which
/// `println!` turns into a panic. That is the end of the output the reader wanted, not an
/// error: exit 0 quietly. Any other panic keeps the standard report.
fn end_quietly_on_broken_pipe() {
    let standard = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.contains("failed printing to std") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        standard(info);
    }));
}

fn main() -> ExitCode {
    end_quietly_on_broken_pipe();
    let cli = cli::Cli::parse();
    if let Some(why) = migrate_command::usage_error(&cli) {
        cli::Cli::command()
            .error(clap::error::ErrorKind::ValueValidation, why)
            .exit();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::from(1)
        }
    }
}
