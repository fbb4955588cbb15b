//! `lorabridge`: the daemon a neighbourhood server steward runs.

mod radio_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Carry p2panda operations between neighbourhood servers over iroh, LoRa radio and Reticulum.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Check and inspect the LoRa radio module.
    Radio(radio_cmd::RadioArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Radio(args)) => radio_cmd::run(args),
        None => ExitCode::SUCCESS,
    }
}
