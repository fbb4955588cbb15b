//! `lorabridge`: the daemon a neighbourhood server steward runs.

use clap::Parser;

/// Carry p2panda operations between neighbourhood servers over iroh, LoRa radio and Reticulum.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {}

fn main() {
    Cli::parse();
}
