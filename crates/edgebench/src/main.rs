use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = edgebench::cli::Cli::parse();
    match edgebench::cli::execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edgebench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
