//! Summaries of a run: what the JSON report says for each protocol, side by side.
//!
//! Everything here is computed from virtual-time data only (no wall clock), and written from
//! `Vec`s and `BTreeMap`s, so the same seed and scenario give byte-identical JSON.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::bound::{RelayBound, relay_bound};
use crate::physics::Geometry;
use crate::scenario::Scenario;
use crate::world::{RunData, Send};

const HOUR: Duration = Duration::from_secs(3600);
/// Idle windows shorter than this say too little to report.
const MIN_IDLE_WINDOW: Duration = Duration::from_secs(600);

/// Rounds for readable, stable JSON.
fn r(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn secs(d: Duration) -> f64 {
    r(d.as_secs_f64())
}

#[derive(Serialize, Debug)]
pub struct Report {
    pub scenario: String,
    pub description: String,
    pub seed: u64,
    pub duration_s: f64,
    pub nodes: usize,
    pub topology: TopologyReport,
    pub ops_published: usize,
    pub duty_cycle_budget_s_per_hour: f64,
    pub protocols: Vec<ProtocolReport>,
    /// Our protocol's transmissions over each baseline's (lower is better).
    pub transmissions_vs_lorabridge: Vec<Ratio>,
}

#[derive(Serialize, Debug)]
pub struct Ratio {
    pub baseline: String,
    pub lorabridge_over_baseline: Option<f64>,
    /// The same per delivered (op, node) pair: the fair comparison when deliveries differ.
    pub per_delivery_lorabridge_over_baseline: Option<f64>,
    pub baseline_delivery_ratio: f64,
    pub lorabridge_delivery_ratio: f64,
}

#[derive(Serialize, Debug)]
pub struct TopologyReport {
    pub positions_m: Vec<[f64; 2]>,
    /// Pairs that hear each other (RSSI ≥ sensitivity), with their RSSI in dBm.
    pub links: Vec<(usize, usize, f64)>,
    pub mean_neighbours: f64,
    /// Longest shortest path in hops; `None` if not connected.
    pub diameter_hops: Option<usize>,
    pub sensitivity_dbm: f64,
    /// The fewest transmissions that carry an operation to everyone, estimated (see
    /// [`crate::bound`]); `None` if the topology is not connected.
    pub relay_bound: Option<RelayBound>,
}

#[derive(Serialize, Debug)]
pub struct ProtocolReport {
    pub protocol: String,
    pub delivery: Delivery,
    pub latency_s: Latency,
    pub transmissions: Totals<u64>,
    pub airtime_s: Totals<f64>,
    pub bytes_on_air: Totals<u64>,
    pub duty_cycle: DutyCycle,
    pub duplicates: Totals<u64>,
    /// Frames sent by kind of message (only for protocols that tell them apart).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub frames_by_kind: BTreeMap<String, u64>,
    pub idle: Option<Idle>,
    pub idle_last_hour: Option<Idle>,
    pub medium: MediumReport,
    /// Transmissions per (operation, node) pair delivered.
    pub transmissions_per_delivery: Option<f64>,
    /// Frames that carried a whole operation, per operation published (for protocols that
    /// tell frames apart): what `topology.relay_bound` is the yardstick for.
    pub op_frames_per_op: Option<f64>,
    /// The scenario's attacker's own airtime (it is also in the totals): what the honest
    /// nodes' extra airtime under attack is measured against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attacker_airtime_s: Option<f64>,
}

#[derive(Serialize, Debug)]
pub struct Delivery {
    pub ops: usize,
    /// (op, node) pairs that should arrive: every op at every node but its origin.
    pub pairs: u64,
    /// Pairs that arrived at some point.
    pub delivered: u64,
    pub ratio: f64,
    /// Pairs that could arrive at all, given who was powered and who heard whom when (see
    /// [`crate::reach`]): the rest no protocol can deliver.
    pub reachable: u64,
    /// Delivered pairs over reachable pairs: the share of what was possible.
    pub reachable_ratio: f64,
    /// Share of pairs held at the end by nodes powered at the end.
    pub held_at_end_ratio: f64,
    /// When the last pair arrived, if all did.
    pub converged_at_s: Option<f64>,
}

#[derive(Serialize, Debug)]
pub struct Latency {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Serialize, Debug)]
pub struct Totals<T> {
    pub total: T,
    pub per_node: Vec<T>,
}

#[derive(Serialize, Debug)]
pub struct DutyCycle {
    /// Most airtime a node used in any sliding hour.
    pub max_hour_airtime_s: Vec<f64>,
    /// Budget minus that, per node: never negative unless a node broke the law.
    pub headroom_s: Vec<f64>,
    pub min_headroom_s: f64,
    /// Sends an independent ledger in the simulator refused.
    pub violations: u64,
}

#[derive(Serialize, Debug)]
pub struct Idle {
    pub from_s: f64,
    pub to_s: f64,
    /// Airtime in the window over its length, percent, per node.
    pub airtime_percent_per_node: Vec<f64>,
    pub max_percent: f64,
    pub mean_percent: f64,
}

#[derive(Serialize, Debug)]
pub struct MediumReport {
    pub collisions: u64,
    pub captures: u64,
    pub half_duplex_losses: u64,
    pub receptions: u64,
    pub dropped_by_loss_or_power: u64,
}

pub fn topology(s: &Scenario, geo: &Geometry) -> TopologyReport {
    let m = s.radio.modulation();
    let links: Vec<(usize, usize, f64)> = geo
        .links(&m)
        .into_iter()
        .map(|(a, b, rssi)| (a, b, r(rssi)))
        .collect();
    TopologyReport {
        positions_m: geo.positions.iter().map(|p| [r(p[0]), r(p[1])]).collect(),
        mean_neighbours: r(2.0 * links.len() as f64 / geo.n as f64),
        links,
        diameter_hops: geo.diameter(&m),
        sensitivity_dbm: m.sensitivity_dbm(),
        relay_bound: relay_bound(geo, &m),
    }
}

/// Summarises one protocol's run; `reachable[k * n + i]` says whether op `k` could reach
/// node `i` at all. Pairs at the `attacker` are not counted, and its airtime is reported
/// apart.
pub fn summarise(
    data: &RunData,
    budget: Duration,
    reachable: &[bool],
    attacker: Option<usize>,
) -> ProtocolReport {
    let n = data.n;
    let ops = data.published.len();
    let mut pairs = 0u64;
    let mut delivered = 0u64;
    let mut possible = 0u64;
    let mut delivered_possible = 0u64;
    let mut held = 0u64;
    let mut held_pairs = 0u64;
    let mut latencies = Vec::new();
    let mut last = Duration::ZERO;
    for k in 0..ops {
        let origin = Some(data.origin[k]);
        let Some(published) = data.published[k] else {
            // Never published (its origin stayed down): counts as undelivered everywhere.
            pairs += (0..n)
                .filter(|&i| Some(i) != origin && Some(i) != attacker)
                .count() as u64;
            continue;
        };
        for i in 0..n {
            if Some(i) == origin || Some(i) == attacker {
                continue;
            }
            pairs += 1;
            let could = reachable[k * n + i];
            possible += u64::from(could);
            if let Some(t) = data.first[k * n + i] {
                delivered += 1;
                delivered_possible += u64::from(could);
                latencies.push(t.saturating_sub(published));
                last = last.max(t);
            }
            if data.up[i] {
                held_pairs += 1;
                held += u64::from(data.held[k * n + i]);
            }
        }
    }
    latencies.sort();
    let pick = |q: f64| {
        (!latencies.is_empty()).then(|| {
            let rank = ((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
            secs(latencies[rank - 1])
        })
    };
    let converged = (pairs > 0 && delivered == pairs).then_some(last);
    let transmissions: Vec<u64> = data.sends.iter().map(|s| s.len() as u64).collect();
    let airtime: Vec<Duration> = data
        .sends
        .iter()
        .map(|s| s.iter().map(|x| x.airtime).sum())
        .collect();
    let bytes: Vec<u64> = data
        .sends
        .iter()
        .map(|s| s.iter().map(|x| u64::from(x.bytes)).sum())
        .collect();
    let max_hour: Vec<Duration> = data.sends.iter().map(|s| max_hour_airtime(s)).collect();
    let headroom: Vec<f64> = max_hour
        .iter()
        .map(|m| r(budget.as_secs_f64() - m.as_secs_f64()))
        .collect();
    let total_tx: u64 = transmissions.iter().sum();
    let idle_first = converged.and_then(|c| {
        let to = (c + HOUR).min(data.end);
        idle(data, c, to)
    });
    let idle_last_hour = converged.and_then(|c| {
        let from = data.end.saturating_sub(HOUR);
        (from >= c).then(|| idle(data, from, data.end)).flatten()
    });
    ProtocolReport {
        protocol: data.protocol.clone(),
        delivery: Delivery {
            ops,
            pairs,
            delivered,
            reachable: possible,
            reachable_ratio: if possible == 0 {
                1.0
            } else {
                r(delivered_possible as f64 / possible as f64)
            },
            ratio: if pairs == 0 {
                1.0
            } else {
                r(delivered as f64 / pairs as f64)
            },
            held_at_end_ratio: if held_pairs == 0 {
                1.0
            } else {
                r(held as f64 / held_pairs as f64)
            },
            converged_at_s: converged.map(secs),
        },
        latency_s: Latency {
            p50: pick(0.5),
            p95: pick(0.95),
            max: pick(1.0),
        },
        transmissions: Totals {
            total: total_tx,
            per_node: transmissions,
        },
        airtime_s: Totals {
            total: secs(airtime.iter().sum()),
            per_node: airtime.iter().map(|a| secs(*a)).collect(),
        },
        bytes_on_air: Totals {
            total: bytes.iter().sum(),
            per_node: bytes,
        },
        duty_cycle: DutyCycle {
            max_hour_airtime_s: max_hour.iter().map(|m| secs(*m)).collect(),
            min_headroom_s: headroom
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min)
                .min(budget.as_secs_f64()),
            headroom_s: headroom,
            violations: data.violations.iter().sum(),
        },
        duplicates: Totals {
            total: data.duplicates.iter().sum(),
            per_node: data.duplicates.clone(),
        },
        frames_by_kind: data.frames_by_kind.clone(),
        idle: idle_first,
        idle_last_hour,
        medium: MediumReport {
            collisions: data.medium.collisions,
            captures: data.medium.captures,
            half_duplex_losses: data.medium.half_duplex,
            receptions: data.medium.arrivals,
            dropped_by_loss_or_power: data.dropped,
        },
        transmissions_per_delivery: (delivered > 0).then(|| r(total_tx as f64 / delivered as f64)),
        op_frames_per_op: data
            .frames_by_kind
            .get("op")
            .filter(|_| ops > 0)
            .map(|frames| r(*frames as f64 / ops as f64)),
        attacker_airtime_s: attacker.map(|i| secs(airtime[i])),
    }
}

fn idle(data: &RunData, from: Duration, to: Duration) -> Option<Idle> {
    if to.saturating_sub(from) < MIN_IDLE_WINDOW {
        return None;
    }
    let window = (to - from).as_secs_f64();
    let per_node: Vec<f64> = data
        .sends
        .iter()
        .map(|sends| {
            let busy: Duration = sends.iter().map(|s| overlap(s, from, to)).sum();
            r(100.0 * busy.as_secs_f64() / window)
        })
        .collect();
    Some(Idle {
        from_s: secs(from),
        to_s: secs(to),
        max_percent: per_node.iter().copied().fold(0.0, f64::max),
        mean_percent: r(per_node.iter().sum::<f64>() / per_node.len().max(1) as f64),
        airtime_percent_per_node: per_node,
    })
}

fn overlap(s: &Send, from: Duration, to: Duration) -> Duration {
    let start = s.start.max(from);
    let end = (s.start + s.airtime).min(to);
    end.saturating_sub(start)
}

/// The most airtime in any window of one hour (the duty-cycle rule), exactly: the maximum is
/// reached by a window ending at the end of some send.
pub fn max_hour_airtime(sends: &[Send]) -> Duration {
    let mut prefix = vec![Duration::ZERO];
    for s in sends {
        prefix.push(*prefix.last().expect("non-empty") + s.airtime);
    }
    let mut best = Duration::ZERO;
    let mut j = 0;
    for k in 0..sends.len() {
        let end = sends[k].start + sends[k].airtime;
        let from = end.saturating_sub(HOUR);
        while sends[j].start + sends[j].airtime <= from {
            j += 1;
        }
        let clipped = from.saturating_sub(sends[j].start);
        let total = prefix[k + 1] - prefix[j] - clipped.min(sends[j].airtime);
        best = best.max(total);
    }
    best
}
