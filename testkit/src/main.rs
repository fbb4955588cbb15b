//! `lorabridge-demo`: four bridges in one process, no hardware and no config.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// Run a small simulated neighbourhood of four bridges in one process (no hardware, no
/// config) and show where each published message arrives, and by which transport.
///
/// A and B share iroh on loopback; B, C and D share only a simulated LoRa channel, through
/// emulated RAK3172 modules driven by the daemon's real serial driver. Exit status: 0 when
/// every message reached every bridge in time, 1 when one did not, 2 when the demo could not
/// start.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// How long to wait for every message to reach every bridge, in seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo drops its in-process nodes at the end, which iroh and p2panda-sync report as
    // errors; they are not.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                "warn,lorabridge=info,iroh::socket=off,p2panda_sync=error".into()
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(lorabridge_testkit::demo::run(Duration::from_secs(
        cli.seconds,
    ))) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => fail(e),
    }
}

fn fail(message: String) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}
