//! `lorabridge-sim`: run a scenario in virtual time and report our protocol beside the
//! baselines.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use lorabridge_sim::{Scenario, plot, scenario};

#[derive(Parser)]
#[command(
    name = "lorabridge-sim",
    version,
    about = "Simulate a LoRa mesh of lorabridge nodes in virtual time",
    long_about = "Simulates a LoRa mesh in virtual time: the real lorabridge sync engine, \
                  Meshtastic-style managed flooding and p2panda-style announce-and-repeat \
                  flooding, on the same medium, traffic and faults, from one seed.\n\n\
                  Run `lorabridge-sim scenario-help` for the scenario file format."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario and report every protocol side by side.
    Run {
        /// The scenario file (TOML; see `scenario-help`).
        scenario: PathBuf,
        /// Write the JSON report here (default: standard output).
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write SVG plots (delivery.svg, airtime.svg, map.svg) into this directory.
        #[arg(long)]
        plots: Option<PathBuf>,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Override the scenario's duration (e.g. "1h").
        #[arg(long)]
        duration: Option<String>,
        /// Run only these protocols (comma-separated).
        #[arg(long, value_delimiter = ',')]
        protocols: Option<Vec<String>>,
    },
    /// Check a scenario file and print what it describes.
    Check { scenario: PathBuf },
    /// Print the scenario file format.
    ScenarioHelp,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::ScenarioHelp => {
            print!("{}", scenario::FORMAT);
            Ok(())
        }
        Command::Check { scenario } => {
            let s = load(&scenario)?;
            let geometry = lorabridge_sim::physics::Geometry::build(&s);
            let m = s.radio.modulation();
            println!(
                "{}: {} nodes, {} links, diameter {:?} hops, {} ops",
                s.name,
                s.node_count(),
                geometry.links(&m).len(),
                geometry.diameter(&m),
                lorabridge_sim::traffic::Traffic::generate(&s).planned.len()
            );
            Ok(())
        }
        Command::Run {
            scenario,
            json,
            plots,
            seed,
            duration,
            protocols,
        } => {
            let mut s = load(&scenario)?;
            if let Some(seed) = seed {
                s.seed = seed;
            }
            if let Some(d) = duration {
                s.duration = scenario::Dur(
                    scenario::parse_duration(&d).map_err(|e| format!("--duration: {e}"))?,
                );
            }
            if let Some(p) = protocols {
                s.protocols.run = p;
            }
            s.validate().map_err(|e| e.to_string())?;
            let outcome = simulate(&s);
            let text = serde_json::to_string_pretty(&outcome.report).map_err(|e| e.to_string())?;
            match json {
                Some(path) => std::fs::write(&path, text + "\n")
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
                None => println!("{text}"),
            }
            if let Some(dir) = plots {
                plot::write_all(&outcome, &dir)
                    .map_err(|e| format!("cannot write plots to {}: {e}", dir.display()))?;
            }
            summary(&outcome.report);
            Ok(())
        }
    }
}

fn load(path: &std::path::Path) -> Result<Scenario, String> {
    Scenario::load(&path.to_string_lossy()).map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs with a progress bar on a terminal.
fn simulate(s: &Scenario) -> lorabridge_sim::Outcome {
    if !std::io::stderr().is_terminal() {
        return lorabridge_sim::run(s, &mut |_, _| {});
    }
    let per = s.duration.0.as_secs().max(1);
    let bar = indicatif::ProgressBar::new(per * s.protocols.run.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg:>16} [{bar:40}] {percent}% {elapsed}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let names = s.protocols.run.clone();
    let outcome = lorabridge_sim::run(s, &mut |name, t: Duration| {
        let index = names.iter().position(|n| n == name).unwrap_or(0) as u64;
        bar.set_message(name.to_string());
        bar.set_position(index * per + t.as_secs().min(per));
    });
    bar.finish_and_clear();
    outcome
}

/// A short side-by-side table on standard error.
fn summary(r: &lorabridge_sim::report::Report) {
    eprintln!(
        "{} ({} nodes, diameter {:?} hops, {} ops, seed {})",
        r.scenario, r.nodes, r.topology.diameter_hops, r.ops_published, r.seed
    );
    if let Some(bound) = r.topology.relay_bound {
        eprintln!(
            "relay bound: {} dominating nodes, {:.1} transmissions per op without loss",
            bound.dominating_nodes, bound.transmissions_per_op
        );
    }
    eprintln!(
        "{:<16} {:>9} {:>9} {:>9} {:>7} {:>10} {:>11} {:>10} {:>8} {:>9} {:>9}",
        "protocol",
        "delivery",
        "p50 s",
        "p95 s",
        "tx",
        "airtime s",
        "headroom s",
        "idle %max",
        "op tx/op",
        "reachable",
        "of those"
    );
    for p in &r.protocols {
        eprintln!(
            "{:<16} {:>9.4} {:>9} {:>9} {:>7} {:>10.1} {:>11.1} {:>10} {:>8} {:>9} {:>9.4}",
            p.protocol,
            p.delivery.ratio,
            p.latency_s.p50.map_or("-".into(), |v| format!("{v:.1}")),
            p.latency_s.p95.map_or("-".into(), |v| format!("{v:.1}")),
            p.transmissions.total,
            p.airtime_s.total,
            p.duty_cycle.min_headroom_s,
            p.idle
                .as_ref()
                .map_or("-".into(), |i| format!("{:.4}", i.max_percent)),
            p.op_frames_per_op.map_or("-".into(), |v| format!("{v:.1}")),
            format!("{}/{}", p.delivery.reachable, p.delivery.pairs),
            p.delivery.reachable_ratio,
        );
    }
}
