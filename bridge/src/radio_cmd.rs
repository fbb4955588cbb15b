//! `lorabridge radio ...`: commands for stewards setting up radio hardware.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use lorabridge_radio::{DriverConfig, ModuleInfo, ModuleKind, SerialConnector, probe};

#[derive(Args)]
pub struct RadioArgs {
    #[command(subcommand)]
    command: RadioCommand,
}

#[derive(Subcommand)]
enum RadioCommand {
    /// Detect the LoRa module on a serial port and report what it is.
    ///
    /// Opens the port, speaks the chosen driver's protocol to the module, and prints its
    /// firmware version, the largest frame lorabridge will send through it (MTU), and the
    /// radio settings it reports. Nothing on the module is changed, so it is safe to run while
    /// setting up: if the module does not answer, check the port, the baud rate (RUI3 and
    /// RAK811 default to 115200; RAK3172 firmware older than RUI3 uses 9600), the driver, and
    /// that no other program (the daemon, a serial console) has the port open.
    ///
    /// Exit status: 0 when the module answered, 1 when it did not.
    Probe(ProbeArgs),
}

#[derive(Args)]
struct ProbeArgs {
    /// Serial port of the module, e.g. /dev/ttyUSB0, /dev/ttyACM0 or /dev/serial0.
    #[arg(long)]
    port: String,
    /// Module firmware: rui3 (RAK3172 and other RUI3 modules), rak811 (RAK811 with AT firmware
    /// v3) or rnode (boards flashed with RNode firmware).
    #[arg(long)]
    driver: ModuleKind,
    /// Serial speed in baud.
    #[arg(long, default_value_t = 115_200)]
    baud: u32,
    /// Seconds to wait for each answer.
    #[arg(long, default_value_t = 2.0)]
    timeout: f64,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: RadioArgs) -> ExitCode {
    match args.command {
        RadioCommand::Probe(p) => run_probe(p),
    }
}

fn run_probe(args: ProbeArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cfg = DriverConfig {
        command_timeout: Duration::from_secs_f64(args.timeout.clamp(0.05, 60.0)),
        ..DriverConfig::default()
    };
    let connector = SerialConnector::new(&args.port, args.baud);
    let result = runtime.block_on(probe(args.driver, &connector, &cfg));
    match result {
        Ok(info) => {
            if args.json {
                match serde_json::to_string_pretty(&info) {
                    Ok(text) => println!("{text}"),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                print!("{}", describe(&info));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({ "driver": args.driver, "port": args.port, "error": e.to_string() })
                );
            }
            eprintln!(
                "no {} module answered on {} at {} baud: {e}",
                args.driver, args.port, args.baud
            );
            ExitCode::FAILURE
        }
    }
}

/// The human-readable report.
fn describe(info: &ModuleInfo) -> String {
    let mut out = String::new();
    let name = match info.driver {
        ModuleKind::Rui3 => "RUI3 AT module (RAK3172 family)",
        ModuleKind::Rak811 => "RAK811 AT v3 module",
        ModuleKind::Rnode => "RNode (KISS)",
        ModuleKind::E22 => "Ebyte E22 (UART)",
        ModuleKind::Sx126x => "SX126x (SPI)",
        ModuleKind::Sx127x => "SX127x (SPI)",
    };
    out.push_str(&format!("Module:    {name} on {}\n", info.port));
    out.push_str(&format!(
        "Firmware:  {}\n",
        info.firmware.as_deref().unwrap_or("(not reported)")
    ));
    out.push_str(&format!("MTU:       {} bytes per frame\n", info.mtu));
    if info.settings.is_empty() {
        out.push_str("Settings:  (none reported)\n");
    } else {
        out.push_str("Settings:\n");
        let width = info.settings.keys().map(String::len).max().unwrap_or(0);
        for (k, v) in &info.settings {
            out.push_str(&format!("  {k:width$}  {v}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Top {
        #[command(subcommand)]
        radio: Sub,
    }

    #[derive(clap::Subcommand)]
    enum Sub {
        Radio(RadioArgs),
    }

    #[test]
    fn parses_probe_arguments() {
        let Top {
            radio: Sub::Radio(args),
        } = Top::try_parse_from([
            "lorabridge",
            "radio",
            "probe",
            "--port",
            "/dev/ttyUSB0",
            "--driver",
            "RAK811",
            "--json",
        ])
        .expect("valid");
        let RadioCommand::Probe(p) = args.command;
        assert_eq!(
            (p.port.as_str(), p.driver, p.baud, p.json),
            ("/dev/ttyUSB0", ModuleKind::Rak811, 115_200, true)
        );
        assert!(
            Top::try_parse_from([
                "lorabridge",
                "radio",
                "probe",
                "--port",
                "/dev/x",
                "--driver",
                "sx1262"
            ])
            .is_err()
        );
    }

    #[test]
    fn text_report_lists_every_setting() {
        let mut info = ModuleInfo::new(ModuleKind::Rnode, 508);
        info.port = "/dev/ttyACM0".into();
        info.firmware = Some("1.74".into());
        info.settings.insert("radio".into(), "off".into());
        assert_eq!(
            describe(&info),
            "Module:    RNode (KISS) on /dev/ttyACM0\nFirmware:  1.74\nMTU:       508 bytes per frame\nSettings:\n  radio  off\n"
        );
    }
}
