//! The simulator's own guarantees: reproducible runs, sane physics, and a short scenario
//! meeting its delivery target.

use std::time::Duration;

use lorabridge_hardware::Modulation;
use lorabridge_sim::physics::{Geometry, Physics};
use lorabridge_sim::report::max_hour_airtime;
use lorabridge_sim::world::Send;
use lorabridge_sim::{Scenario, run};

fn short_line() -> Scenario {
    Scenario::parse(
        r#"
name = "ci-line"
seed = 7
duration = "20m"
[radio]
extra_loss = 0.1
[path_loss]
sigma_db = 0.0
[topology]
kind = "line"
n = 4
spacing_m = 180.0
[traffic]
[[traffic.publish]]
node = 0
at = "30s"
count = 3
interval = "1m"
[[traffic.publish]]
node = 3
at = "45s"
count = 2
interval = "1m"
"#,
    )
    .unwrap()
}

fn json(s: &Scenario) -> String {
    serde_json::to_string(&run(s, &mut |_, _| {}).report).unwrap()
}

#[test]
fn same_seed_gives_a_byte_identical_report_and_another_seed_does_not() {
    let s = short_line();
    let first = json(&s);
    assert_eq!(first, json(&s));
    let mut other = s.clone();
    other.seed = 8;
    assert_ne!(first, json(&other));
}

#[test]
fn a_short_scenario_meets_its_delivery_target_within_the_duty_cycle() {
    let outcome = run(&short_line(), &mut |_, _| {});
    let ours = &outcome.report.protocols[0];
    assert_eq!(ours.protocol, "lorabridge");
    assert_eq!(ours.delivery.ratio, 1.0, "{:?}", ours.delivery);
    assert_eq!(ours.delivery.pairs, 15);
    assert_eq!(ours.delivery.reachable, 15);
    for p in &outcome.report.protocols {
        assert_eq!(p.duty_cycle.violations, 0, "{}", p.protocol);
        assert!(p.duty_cycle.min_headroom_s > 0.0, "{}", p.protocol);
    }
}

#[test]
fn a_relay_lost_for_good_makes_pairs_unreachable_and_no_protocol_delivers_them() {
    // Node 1 of the line dies before the second burst: node 0's later ops cannot cross it,
    // nor node 3's. The report must say so, and no protocol may beat that bound.
    let mut s = short_line();
    s.faults.crash.push(lorabridge_sim::scenario::Crash {
        node: 1,
        at: lorabridge_sim::scenario::Dur(Duration::from_secs(100)),
        restart: None,
        keep_state: true,
    });
    let outcome = run(&s, &mut |_, _| {});
    for p in &outcome.report.protocols {
        let d = &p.delivery;
        assert!(d.reachable < d.pairs, "{}: {d:?}", p.protocol);
        // Every delivered pair is among the reachable ones.
        let delivered_reachable = (d.reachable_ratio * d.reachable as f64).round() as u64;
        assert_eq!(delivered_reachable, d.delivered, "{}: {d:?}", p.protocol);
    }
}

fn two_nodes(distance_m: f64) -> (Scenario, Geometry) {
    placed(&format!(
        "[[0.0, 0.0], [{distance_m}, 0.0], [{distance_m}, 10.0]]"
    ))
}

/// A scenario without shadowing whose nodes stand at `nodes` (a TOML array of [x, y] metres).
fn placed(nodes: &str) -> (Scenario, Geometry) {
    let s = Scenario::parse(&format!(
        "name = \"x\"\nduration = \"1m\"\n[path_loss]\nsigma_db = 0.0\n\
         [topology]\nkind = \"positions\"\nnodes = {nodes}\n"
    ))
    .unwrap();
    let g = Geometry::build(&s);
    (s, g)
}

#[test]
fn rssi_follows_the_log_distance_model() {
    let (s, g) = two_nodes(400.0);
    // 14 dBm − (127.41 + 20.8·log10(400/40)) = −134.21 dBm.
    let rssi = g.rssi(0, 1).unwrap();
    assert!((rssi - -134.21).abs() < 1e-9, "{rssi}");
    assert!(
        !g.hears(0, 1, &s.radio.modulation()),
        "below SF9 sensitivity"
    );
}

#[test]
fn a_node_out_of_range_hears_nothing() {
    let (s, g) = two_nodes(2000.0);
    let m = s.radio.modulation();
    let mut physics = Physics::new(3, m, 6.0, 6.0);
    let id = physics.begin(Duration::ZERO, 0, m.time_on_air(50), &g, |_, _| true);
    let (from, arrivals) = physics.end(id);
    assert_eq!(from, 0);
    assert!(arrivals.iter().all(|a| a.to == 2), "{arrivals:?}");
    assert!(arrivals.is_empty(), "node 1 and 2 are 2 km away");
}

#[test]
fn a_lone_frame_arrives_after_exactly_its_airtime() {
    let (s, g) = two_nodes(100.0);
    let m = s.radio.modulation();
    let airtime = m.time_on_air(60);
    assert_eq!(airtime, Modulation::eu868_default().time_on_air(60));
    let mut physics = Physics::new(3, m, 6.0, 6.0);
    let id = physics.begin(Duration::ZERO, 0, airtime, &g, |_, _| true);
    assert!(physics.transmitting(0, airtime - Duration::from_micros(1)));
    assert!(!physics.transmitting(0, airtime));
    assert_eq!(physics.busy_until(1, Duration::ZERO), Some(airtime));
    let (_, arrivals) = physics.end(id);
    assert_eq!(
        arrivals.iter().map(|a| a.to).collect::<Vec<_>>(),
        vec![1, 2]
    );
}

#[test]
fn overlapping_frames_of_equal_strength_collide() {
    // Nodes 0 and 2 both 100 m from node 1, 200 m apart: equal power at 1.
    let (s, g) = placed("[[0.0, 0.0], [100.0, 0.0], [200.0, 0.0]]");
    let m = s.radio.modulation();
    let airtime = m.time_on_air(100);
    let mut physics = Physics::new(3, m, 6.0, 6.0);
    let a = physics.begin(Duration::ZERO, 0, airtime, &g, |_, _| true);
    let b = physics.begin(Duration::from_millis(200), 2, airtime, &g, |_, _| true);
    let (_, got_a) = physics.end(a);
    let (_, got_b) = physics.end(b);
    assert!(got_a.iter().all(|x| x.to != 1) && got_b.iter().all(|x| x.to != 1));
    assert_eq!(physics.stats.collisions, 2);
    // Far apart in time: no collision.
    let c = physics.begin(Duration::from_secs(10), 0, airtime, &g, |_, _| true);
    let (_, got_c) = physics.end(c);
    assert!(got_c.iter().any(|x| x.to == 1));
}

#[test]
fn a_much_stronger_frame_that_locked_first_is_captured() {
    // Node 0 is 30 m from receiver 1, node 2 is 200 m away: > 6 dB apart.
    let (s, g) = placed("[[0.0, 0.0], [30.0, 0.0], [230.0, 0.0]]");
    let m = s.radio.modulation();
    assert!(g.rssi(0, 1).unwrap() - g.rssi(2, 1).unwrap() > 6.0);
    let airtime = m.time_on_air(100);
    let mut physics = Physics::new(3, m, 6.0, 6.0);
    // The strong frame first: it survives, the weak one is lost at 1.
    let strong = physics.begin(Duration::ZERO, 0, airtime, &g, |_, _| true);
    let weak = physics.begin(Duration::from_millis(300), 2, airtime, &g, |_, _| true);
    let (_, got_strong) = physics.end(strong);
    let (_, got_weak) = physics.end(weak);
    assert!(got_strong.iter().any(|x| x.to == 1));
    assert!(got_weak.iter().all(|x| x.to != 1));
    assert_eq!(physics.stats.captures, 1);
    // The weak frame first and already past its preamble: the strong one destroys it and is
    // not received either (the receiver was locked onto the weak one).
    let t = Duration::from_secs(10);
    let weak = physics.begin(t, 2, airtime, &g, |_, _| true);
    let strong = physics.begin(t + airtime / 2, 0, airtime, &g, |_, _| true);
    let (_, got_weak) = physics.end(weak);
    let (_, got_strong) = physics.end(strong);
    assert!(got_weak.iter().all(|x| x.to != 1));
    assert!(got_strong.iter().all(|x| x.to != 1));
}

#[test]
fn a_transmitting_node_hears_nothing() {
    let (s, g) = two_nodes(100.0);
    let m = s.radio.modulation();
    let airtime = m.time_on_air(100);
    let mut physics = Physics::new(3, m, 6.0, 6.0);
    let a = physics.begin(Duration::ZERO, 0, airtime, &g, |_, _| true);
    let b = physics.begin(
        Duration::from_millis(10),
        1,
        m.time_on_air(10),
        &g,
        |_, _| true,
    );
    let (_, got_a) = physics.end(a);
    assert!(got_a.iter().all(|x| x.to != 1), "1 was transmitting");
    let (_, got_b) = physics.end(b);
    assert!(got_b.iter().all(|x| x.to != 0), "0 was transmitting");
    assert_eq!(physics.stats.half_duplex, 2);
}

#[test]
fn the_sliding_hour_is_exact() {
    let send = |s: u64, a: u64| Send {
        start: Duration::from_secs(s),
        airtime: Duration::from_secs(a),
        bytes: 10,
    };
    // 10 s at 0, 10 s at 3595 (window [3605−3600, 3605] holds 5 s of the first), 10 s at 7300.
    let sends = [send(0, 10), send(3595, 10), send(7300, 10)];
    assert_eq!(max_hour_airtime(&sends), Duration::from_secs(15));
    assert_eq!(max_hour_airtime(&[]), Duration::ZERO);
}

#[test]
fn every_shipped_scenario_parses() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let s = Scenario::load(&path.to_string_lossy()).unwrap();
        names.push(s.name);
    }
    names.sort();
    assert_eq!(
        names,
        [
            "dense-40",
            "grid-25",
            "grid-25-attacked",
            "line-5",
            "partition-heal",
            "random-30-faults",
            "village-12"
        ]
    );
}

#[test]
fn every_shipped_scenario_delivers_every_reachable_pair_within_the_duty_cycle() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");
    let scenarios: Vec<Scenario> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| Scenario::load(&entry.unwrap().path().to_string_lossy()).unwrap())
        .collect();
    // One thread per scenario: each run is a pure function of its scenario.
    std::thread::scope(|scope| {
        for mut s in scenarios {
            scope.spawn(move || {
                s.protocols.run = vec!["lorabridge".into()];
                let report = run(&s, &mut |_, _| {}).report;
                let ours = &report.protocols[0];
                assert_eq!(
                    ours.delivery.reachable_ratio, 1.0,
                    "{}: {:?}",
                    s.name, ours.delivery
                );
                assert_eq!(ours.duty_cycle.violations, 0, "{}", s.name);
            });
        }
    });
}

#[test]
fn grid_25_has_at_least_five_hops() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/grid-25.toml");
    let s = Scenario::load(path).unwrap();
    let g = Geometry::build(&s);
    assert_eq!(s.node_count(), 25);
    assert!(g.diameter(&s.radio.modulation()).unwrap() >= 5);
}
