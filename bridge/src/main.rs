//! `lorabridge`: the daemon a neighbourhood server steward runs.

mod radio_cmd;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// Carry p2panda operations between neighbourhood servers over iroh, LoRa radio and Reticulum.
///
/// Apps talk to the bridge through the LoRes gRPC API (`PANDA_GRPC_ADDR=http://HOST:50051`),
/// exactly as they talk to a LoRes node. Logs go to stderr; set RUST_LOG (e.g. `debug`) for more.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the bridge with a config file (see bridge/bridge.example.toml), until Ctrl-C or SIGTERM.
    Run {
        /// The TOML config file. Every bad value stops start-up with a message naming the key.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check a config file and list the topics the bridge would carry; starts nothing, writes nothing.
    CheckConfig {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Show what a running bridge is doing: topics, transports, neighbours, airtime.
    ///
    /// Reads the status service of the bridge (`status_listen` in its config).
    Status {
        /// Take the status address from this config file.
        #[arg(long, short, conflicts_with = "addr")]
        config: Option<PathBuf>,
        /// The status address.
        #[arg(long, default_value = lorabridge::config::DEFAULT_STATUS_LISTEN)]
        addr: std::net::SocketAddr,
    },
    /// Check and inspect the LoRa radio module.
    Radio(radio_cmd::RadioArgs),
    /// Check that this Raspberry Pi is ready for its LoRa module, and print the fix for each
    /// failure.
    ///
    /// In order: the config (its channel and power are legal in its region), the service
    /// user, the UART or SPI switched on in config.txt, the kernel console off the UART, the
    /// device node and that the service user may open it, the GPIO lines free, and last that
    /// the module answers (nothing on it is changed). Run it with sudo and the bridge stopped:
    /// a running bridge holds the port and the lines.
    ///
    /// Exit status: 0 when no check failed, 1 when one did.
    Doctor {
        /// The config file whose radio to check.
        #[arg(long, short, default_value = lorabridge::doctor::DEFAULT_CONFIG)]
        config: PathBuf,
        /// Check the Pi for this board before there is a config, e.g. waveshare-sx1262-hat.
        #[arg(long, conflicts_with = "config")]
        board: Option<String>,
        /// The user the service runs as.
        #[arg(long, default_value = lorabridge::doctor::DEFAULT_USER)]
        user: String,
        /// Read /boot, /etc and /dev under this folder instead of / (an SD card mounted
        /// elsewhere); the GPIO lines and an E22 are then not checked.
        #[arg(long, default_value = "/")]
        root: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Radio(args) = cli.command {
        return radio_cmd::run(args);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,lorabridge=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run { config } => lorabridge::run::run(&config).await.map(|()| true),
            Command::CheckConfig { config } => check_config(&config),
            Command::Status { config, addr } => status(config.as_deref(), addr).await,
            Command::Doctor {
                config,
                board,
                user,
                root,
            } => Ok(doctor(config, board, user, root).await),
            Command::Radio(_) => unreachable!("handled above"),
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => fail(e),
    }
}

fn check_config(path: &std::path::Path) -> Result<bool, String> {
    let config = lorabridge::config::Config::load(path).map_err(|e| e.to_string())?;
    println!("{} is valid.", path.display());
    println!("Network id: {}", hex::encode(config.network_id));
    println!("iroh: {}", config.iroh.summary());
    if let Some(radio) = &config.radio {
        println!("Radio: {}", radio.summary());
        if let Some(caveat) = radio.caveat() {
            println!("Note: {caveat}.");
        }
    }
    println!("Topics carried:");
    for t in config.topics() {
        let app = t.app_id.as_deref().unwrap_or("(region admin topic)");
        let mut via = Vec::new();
        via.extend(config.iroh.enabled.then_some("iroh"));
        via.extend(t.lora.then_some("lora"));
        via.extend(t.reticulum.then_some("reticulum"));
        if via.is_empty() {
            via.push("nothing: local apps only");
        }
        println!(
            "  {} {app:<24} region {}… over {}",
            hex::encode(t.topic),
            &hex::encode(t.region)[..8],
            via.join(", ")
        );
    }
    Ok(true)
}

async fn status(
    config: Option<&std::path::Path>,
    addr: std::net::SocketAddr,
) -> Result<bool, String> {
    let addr = match config {
        Some(path) => {
            lorabridge::config::Config::load(path)
                .map_err(|e| e.to_string())?
                .status_listen
        }
        None => addr,
    };
    let reply = lorabridge::status_report::fetch(addr).await?;
    print!("{}", lorabridge::status_report::render(&reply));
    Ok(true)
}

async fn doctor(config: PathBuf, board: Option<String>, user: String, root: PathBuf) -> bool {
    use lorabridge::doctor::{Doctor, Outcome, Subject, SystemGpio};
    let subject = match board {
        Some(id) => Subject::Board(id),
        None => Subject::Config(config),
    };
    let gpio = SystemGpio;
    let doctor = Doctor {
        gpio: (root == std::path::Path::new("/")).then_some(&gpio as _),
        root,
        user,
        answer_timeout: Duration::from_secs(2),
    };
    let findings = doctor.examine(&subject).await;
    print!("{}", lorabridge::doctor::render(&findings));
    findings.iter().all(|f| f.outcome != Outcome::Fail)
}

fn fail(message: String) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}
