use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = edgebench::cli::Cli::parse();
    let result = edgebench::cli::execute(cli);
    if let Err(e) = &result {
        eprintln!("edgebench: {e:#}");
    }
    ExitCode::from(edgebench::cli::exit_code(&result))
}
