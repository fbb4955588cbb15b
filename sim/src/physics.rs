//! The physics of the radio medium in virtual time: who hears whom, how loud, and which frames
//! survive.
//!
//! * Path loss: log-distance with log-normal shadowing, `PL(d) = PL(d0) + 10·γ·log10(d/d0) + X`,
//!   `X ~ N(0, σ)` drawn once per node pair and run (shadowing comes from buildings and
//!   terrain between two places, which do not change between frames and are the same both
//!   ways). An explicit link table overrides pairs, or is the whole topology.
//! * A frame is received if its RSSI reaches the spreading factor's sensitivity
//!   ([`Modulation::sensitivity_dbm`]) and nothing destroyed it on the way.
//! * Half-duplex: a node that starts transmitting loses every frame it was receiving, and
//!   hears nothing while it transmits.
//! * Collisions (one channel and SF for the whole scenario): frame `p` at a receiver is hurt by
//!   an overlapping frame `q` if `q` overlaps `p`'s critical section, which starts
//!   `N_pre − 5` preamble symbols after `p` began (the receiver needs the last five preamble
//!   symbols clean to lock; Meshtasticator's rule). A hurt `p` still survives if it is at least
//!   `capture_db` stronger than `q` and arrived before `q`'s preamble ended, so the receiver
//!   locked onto (or re-synchronised to) `p`; a stronger frame arriving during a weaker one's
//!   payload destroys it without being received itself.
//! * Frames weaker than `sensitivity − capture_db` are ignored entirely: they can neither be
//!   received nor harm a frame above sensitivity.
//!
//! Pure logic: times are inputs, randomness is drawn at construction only.

use std::collections::BTreeMap;
use std::time::Duration;

use lorabridge_hardware::Modulation;

use crate::rng;
use crate::scenario::{Scenario, Topology};

/// Fixed properties of the medium for one run.
#[derive(Clone, Debug)]
pub struct Geometry {
    pub positions: Vec<[f64; 2]>,
    /// `rssi[from * n + to]` in dBm; `None` where the pair is out of interference range.
    rssi: Vec<Option<f64>>,
    /// For each sender, the nodes within interference range, ascending.
    reach: Vec<Vec<usize>>,
    pub n: usize,
}

impl Geometry {
    /// Places the nodes and draws the shadowing from the scenario's seed.
    pub fn build(s: &Scenario) -> Self {
        let mut place = rng::stream(s.seed, "placement", 0);
        let positions: Vec<[f64; 2]> = match &s.topology {
            Topology::Line { n, spacing_m } => {
                (0..*n).map(|i| [i as f64 * spacing_m, 0.0]).collect()
            }
            Topology::Grid {
                rows,
                cols,
                spacing_m,
            } => (0..rows * cols)
                .map(|i| [(i % cols) as f64 * spacing_m, (i / cols) as f64 * spacing_m])
                .collect(),
            Topology::Random {
                n,
                width_m,
                height_m,
            } => (0..*n)
                .map(|_| {
                    [
                        rng::unit(&mut place) * width_m,
                        rng::unit(&mut place) * height_m,
                    ]
                })
                .collect(),
            Topology::Positions { nodes } => nodes.clone(),
            Topology::Table { n } => (0..*n)
                .map(|i| {
                    let angle = std::f64::consts::TAU * i as f64 / *n as f64;
                    [100.0 * angle.cos(), 100.0 * angle.sin()]
                })
                .collect(),
        };
        Self::from_positions(s, positions)
    }

    /// The medium for nodes at `positions`, with the scenario's radio, path loss, link table
    /// and seed (the topology section is not used).
    pub fn from_positions(s: &Scenario, positions: Vec<[f64; 2]>) -> Self {
        let n = positions.len();
        let m = s.radio.modulation();
        let tx = f64::from(m.tx_power_dbm) + s.radio.antenna_gain_db;
        let floor = m.sensitivity_dbm() - s.radio.capture_db;
        let pl = &s.path_loss;
        let mut shadow = rng::stream(s.seed, "shadowing", 0);
        let mut rssi = vec![None; n * n];
        let geometric = !matches!(s.topology, Topology::Table { .. });
        for a in 0..n {
            for b in a + 1..n {
                // Drawn for every pair, in a fixed order, so one link's value never depends
                // on whether another is in range.
                let x = rng::normal(&mut shadow) * pl.sigma_db;
                if !geometric {
                    continue;
                }
                let [xa, ya] = positions[a];
                let [xb, yb] = positions[b];
                let d = ((xa - xb).powi(2) + (ya - yb).powi(2)).sqrt().max(1.0);
                let loss = pl.pl_d0_db + 10.0 * pl.exponent * (d / pl.d0_m).log10() + x;
                let value = tx - loss;
                rssi[a * n + b] = Some(value);
                rssi[b * n + a] = Some(value);
            }
        }
        for link in s.links.iter().filter(|l| l.a < n && l.b < n) {
            let value = match (link.loss_db, link.rssi_dbm) {
                (Some(loss), _) => tx - loss,
                (_, Some(r)) => r,
                _ => unreachable!("validated"),
            };
            rssi[link.a * n + link.b] = Some(value);
            rssi[link.b * n + link.a] = Some(value);
        }
        for value in &mut rssi {
            if value.is_some_and(|v| v < floor) {
                *value = None;
            }
        }
        let reach = (0..n)
            .map(|a| (0..n).filter(|&b| rssi[a * n + b].is_some()).collect())
            .collect();
        Self {
            positions,
            rssi,
            reach,
            n,
        }
    }

    /// RSSI at `to` of a frame from `from`, if within interference range.
    pub fn rssi(&self, from: usize, to: usize) -> Option<f64> {
        self.rssi[from * self.n + to]
    }

    /// Whether `to` can receive `from` at all (RSSI at or above sensitivity).
    pub fn hears(&self, from: usize, to: usize, m: &Modulation) -> bool {
        self.rssi(from, to)
            .is_some_and(|r| r >= m.sensitivity_dbm())
    }

    /// Links above sensitivity, each pair once (a < b).
    pub fn links(&self, m: &Modulation) -> Vec<(usize, usize, f64)> {
        let mut out = Vec::new();
        for a in 0..self.n {
            for b in a + 1..self.n {
                if self.hears(a, b, m) {
                    out.push((a, b, self.rssi(a, b).unwrap_or_default()));
                }
            }
        }
        out
    }

    /// Hop distances from `from` over links above sensitivity (`None`: unreachable).
    pub fn hops_from(&self, from: usize, m: &Modulation) -> Vec<Option<usize>> {
        let mut hops = vec![None; self.n];
        hops[from] = Some(0);
        let mut frontier = vec![from];
        let mut depth = 0;
        while !frontier.is_empty() {
            depth += 1;
            let mut next = Vec::new();
            for &a in &frontier {
                for (b, hop) in hops.iter_mut().enumerate() {
                    if hop.is_none() && self.hears(a, b, m) {
                        *hop = Some(depth);
                        next.push(b);
                    }
                }
            }
            frontier = next;
        }
        hops
    }

    /// The longest shortest path in hops, or `None` if the graph is not connected.
    pub fn diameter(&self, m: &Modulation) -> Option<usize> {
        let mut worst = 0;
        for a in 0..self.n {
            for h in self.hops_from(a, m) {
                worst = worst.max(h?);
            }
        }
        Some(worst)
    }
}

/// Why a frame was not received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    Collision,
    HalfDuplex,
}

#[derive(Clone, Debug)]
struct Reception {
    tx: u64,
    start: Duration,
    end: Duration,
    rssi: f64,
    lost: Option<Loss>,
}

#[derive(Clone, Debug)]
struct Transmission {
    from: usize,
    receivers: Vec<usize>,
}

/// A frame that reached a receiver intact.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Arrival {
    pub to: usize,
    pub rssi: f64,
    pub snr: f64,
}

/// Counters of the medium.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MediumStats {
    /// Receptions (above sensitivity) destroyed by an overlapping frame.
    pub collisions: u64,
    /// Receptions lost because the receiver was transmitting.
    pub half_duplex: u64,
    /// Receptions that survived physics.
    pub arrivals: u64,
    /// Collisions a stronger frame survived by capture.
    pub captures: u64,
}

/// The frames on air and being received. Memory: one entry per receiver per frame on air.
#[derive(Clone, Debug)]
pub struct Physics {
    modulation: Modulation,
    sensitivity: f64,
    noise_floor: f64,
    capture_db: f64,
    /// From frame start to the start of its critical section.
    lock_offset: Duration,
    /// From frame start to the end of its preamble.
    preamble: Duration,
    active: Vec<Vec<Reception>>,
    transmitting_until: Vec<Duration>,
    on_air: BTreeMap<u64, Transmission>,
    next_tx: u64,
    pub stats: MediumStats,
}

impl Physics {
    pub fn new(n: usize, modulation: Modulation, capture_db: f64, noise_figure_db: f64) -> Self {
        let symbol = modulation.symbol_time();
        let pre = u32::from(modulation.preamble_symbols);
        Self {
            sensitivity: modulation.sensitivity_dbm(),
            noise_floor: -174.0
                + 10.0 * f64::from(modulation.bandwidth_hz).log10()
                + noise_figure_db,
            capture_db,
            lock_offset: symbol * pre.saturating_sub(5),
            preamble: symbol * pre + symbol / 4 * 17,
            modulation,
            active: vec![Vec::new(); n],
            transmitting_until: vec![Duration::ZERO; n],
            on_air: BTreeMap::new(),
            next_tx: 0,
            stats: MediumStats::default(),
        }
    }

    pub fn modulation(&self) -> &Modulation {
        &self.modulation
    }

    /// Whether `node` is transmitting at `now`.
    pub fn transmitting(&self, node: usize, now: Duration) -> bool {
        self.transmitting_until[node] > now
    }

    /// When the frames `node` is receiving (above sensitivity) end: what listen-before-talk
    /// sees. `None` if the channel is clear at the node.
    pub fn busy_until(&self, node: usize, now: Duration) -> Option<Duration> {
        self.active[node]
            .iter()
            .filter(|r| r.rssi >= self.sensitivity && r.end > now)
            .map(|r| r.end)
            .max()
    }

    /// `from` starts sending a frame of `airtime` at `now`; `link_up(from, to)` says whether
    /// the path exists at all now (partitions). Returns the frame's id for [`Physics::end`].
    pub fn begin(
        &mut self,
        now: Duration,
        from: usize,
        airtime: Duration,
        geometry: &Geometry,
        link_up: impl Fn(usize, usize) -> bool,
    ) -> u64 {
        let id = self.next_tx;
        self.next_tx += 1;
        // Half-duplex: whatever `from` was receiving is lost.
        for r in &mut self.active[from] {
            if r.lost.is_none() && r.rssi >= self.sensitivity {
                r.lost = Some(Loss::HalfDuplex);
                self.stats.half_duplex += 1;
            }
        }
        self.transmitting_until[from] = now + airtime;
        let end = now + airtime;
        let mut receivers = Vec::new();
        for &to in &geometry.reach[from] {
            if !link_up(from, to) {
                continue;
            }
            let rssi = geometry.rssi(from, to).expect("in reach");
            let mut new = Reception {
                tx: id,
                start: now,
                end,
                rssi,
                lost: None,
            };
            if self.transmitting(to, now) {
                new.lost = Some(Loss::HalfDuplex);
                if rssi >= self.sensitivity {
                    self.stats.half_duplex += 1;
                }
            }
            let (lock_offset, preamble, capture, sens) = (
                self.lock_offset,
                self.preamble,
                self.capture_db,
                self.sensitivity,
            );
            // (hurt at all, survives): see the module docs.
            let judge = |p: &Reception, q: &Reception| {
                let critical = p.start + lock_offset;
                let hurt = q.start < p.end && q.end > critical;
                let captured = p.rssi >= q.rssi + capture && p.start < q.start + preamble;
                (hurt, !hurt || captured)
            };
            let mut stats = self.stats;
            let mut settle = |p: &mut Reception, (hurt, ok): (bool, bool)| {
                if p.lost.is_some() || p.rssi < sens {
                    if !ok {
                        p.lost.get_or_insert(Loss::Collision);
                    }
                    return;
                }
                if !ok {
                    p.lost = Some(Loss::Collision);
                    stats.collisions += 1;
                } else if hurt {
                    stats.captures += 1;
                }
            };
            for old in &mut self.active[to] {
                let verdict_old = judge(old, &new);
                let verdict_new = judge(&new, old);
                settle(old, verdict_old);
                settle(&mut new, verdict_new);
            }
            self.stats = stats;
            self.active[to].push(new);
            receivers.push(to);
        }
        self.on_air.insert(id, Transmission { from, receivers });
        id
    }

    /// The frame `id` ends at `now`: the receivers that got it intact, ascending.
    pub fn end(&mut self, id: u64) -> (usize, Vec<Arrival>) {
        let Some(tx) = self.on_air.remove(&id) else {
            return (usize::MAX, Vec::new());
        };
        let mut arrivals = Vec::new();
        for to in tx.receivers {
            let active = &mut self.active[to];
            let Some(index) = active.iter().position(|r| r.tx == id) else {
                continue;
            };
            let r = active.swap_remove(index);
            if r.lost.is_none() && r.rssi >= self.sensitivity {
                self.stats.arrivals += 1;
                arrivals.push(Arrival {
                    to,
                    rssi: r.rssi,
                    snr: r.rssi - self.noise_floor,
                });
            }
        }
        (tx.from, arrivals)
    }

    /// `node` lost power: what it was receiving is gone.
    pub fn power_off(&mut self, node: usize) {
        for r in &mut self.active[node] {
            r.lost.get_or_insert(Loss::HalfDuplex);
        }
    }
}
