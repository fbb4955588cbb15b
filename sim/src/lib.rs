//! A LoRa mesh simulator in virtual time, and its physics in real time for the modem
//! emulators ([`air::PhysicalHub`]).
//!
//! [`run`] plays a [`Scenario`] once per protocol (the project's sync engine and the
//! baselines) on the same medium, traffic and faults, and summarises each run into a
//! [`report::Report`]. Runs are pure functions of the scenario and its seed.

pub mod air;
pub mod bound;
pub mod physics;
pub mod plot;
pub mod protocol;
pub mod reach;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod traffic;
pub mod world;

use std::time::Duration;

use lorabridge_proto::engine::MemoryStore;

use protocol::announce::AnnounceRepeat;
use protocol::flood::ManagedFlood;
use protocol::lorabridge::Lorabridge;
use protocol::{NodeSetup, Protocol};
pub use scenario::Scenario;

/// Everything a run produced: the report and the raw data behind the plots.
pub struct Outcome {
    pub report: report::Report,
    pub runs: Vec<world::RunData>,
    pub geometry: physics::Geometry,
}

/// Runs every protocol the scenario names; `progress(protocol, virtual time)` hears progress.
pub fn run(s: &Scenario, progress: &mut dyn FnMut(&str, Duration)) -> Outcome {
    let geometry = physics::Geometry::build(s);
    let traffic = traffic::Traffic::generate(s);
    let mut runs = Vec::new();
    for name in &s.protocols.run {
        let flood = s.protocols.managed_flood.clone();
        let announce = s.protocols.announce_repeat.clone();
        let factory: Box<protocol::Factory> = match name.as_str() {
            "lorabridge" => Box::new(|setup: &NodeSetup, now: Duration, store: MemoryStore| {
                Box::new(Lorabridge::new(setup, now, store)) as Box<dyn Protocol>
            }),
            "managed-flood" => Box::new(move |setup: &NodeSetup, _now, store| {
                Box::new(ManagedFlood::new(setup, store, flood.clone())) as Box<dyn Protocol>
            }),
            "announce-repeat" => Box::new(move |setup: &NodeSetup, now, store| {
                Box::new(AnnounceRepeat::new(setup, now, store, announce.clone()))
                    as Box<dyn Protocol>
            }),
            other => unreachable!("validated protocol {other}"),
        };
        let factory = with_attacker(s, factory);
        let world = world::World::new(s, &geometry, &traffic, name, factory.as_ref());
        let data = world.run(&mut |t| progress(name, t));
        runs.push(data);
    }
    let report = build_report(s, &geometry, &traffic, &runs);
    Outcome {
        report,
        runs,
        geometry,
    }
}

/// The scenario's attacker, if any, in place of the protocol on its node.
fn with_attacker<'a>(
    s: &'a Scenario,
    protocol: Box<protocol::Factory<'a>>,
) -> Box<protocol::Factory<'a>> {
    let Some(attacker) = &s.attacker else {
        return protocol;
    };
    Box::new(
        move |setup: &NodeSetup, now: Duration, store: MemoryStore| {
            if setup.index == attacker.node {
                Box::new(protocol::attacker::Attacker::new(
                    setup,
                    now,
                    attacker.interval.0,
                )) as Box<dyn Protocol>
            } else {
                protocol(setup, now, store)
            }
        },
    )
}

fn build_report(
    s: &Scenario,
    geometry: &physics::Geometry,
    traffic: &traffic::Traffic,
    runs: &[world::RunData],
) -> report::Report {
    let m = s.radio.modulation();
    let budget = s
        .plan()
        .sub_band(m.frequency_hz, m.bandwidth_hz)
        .and_then(|b| b.duty_budget())
        .unwrap_or(Duration::from_secs(3600));
    let protocols: Vec<report::ProtocolReport> = runs
        .iter()
        .map(|d| {
            let reachable = reach::reachable(s, geometry, &d.published, &d.origin);
            report::summarise(d, budget, &reachable, s.attacker.as_ref().map(|a| a.node))
        })
        .collect();
    let ours = protocols.iter().find(|p| p.protocol == "lorabridge");
    let ratios = protocols
        .iter()
        .filter(|p| p.protocol != "lorabridge")
        .filter_map(|b| {
            let ours = ours?;
            Some(report::Ratio {
                baseline: b.protocol.clone(),
                lorabridge_over_baseline: (b.transmissions.total > 0).then(|| {
                    (ours.transmissions.total as f64 / b.transmissions.total as f64 * 1e4).round()
                        / 1e4
                }),
                per_delivery_lorabridge_over_baseline: ours
                    .transmissions_per_delivery
                    .zip(b.transmissions_per_delivery)
                    .map(|(o, b)| (o / b * 1e4).round() / 1e4),
                baseline_delivery_ratio: b.delivery.ratio,
                lorabridge_delivery_ratio: ours.delivery.ratio,
            })
        })
        .collect();
    report::Report {
        scenario: s.name.clone(),
        description: s.description.clone(),
        seed: s.seed,
        duration_s: s.duration.0.as_secs_f64(),
        nodes: s.node_count(),
        topology: report::topology(s, geometry),
        ops_published: traffic.planned.len(),
        duty_cycle_budget_s_per_hour: budget.as_secs_f64(),
        protocols,
        transmissions_vs_lorabridge: ratios,
    }
}
