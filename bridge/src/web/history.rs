//! What the status remembers beyond the present moment, in rings of fixed size, so that the
//! page can show a little of the past without the bridge keeping more than a few kilobytes:
//!
//! - the [`RECENT_OPERATIONS`] operations the node processed last (ids, sizes and how they
//!   came, never payloads: the page is no window into residents' messages);
//! - per neighbour, the signal of the last [`SIGNAL_SAMPLES`] seconds in which it was heard,
//!   for at most [`MAX_TRACKED_NEIGHBOURS`] neighbours;
//! - per sub-band of the region plan, [`AIRTIME_SAMPLES`] samples of the airtime used in the
//!   rolling hour, one every [`AIRTIME_EVERY`]: the last hour, as a steward plans by it.
//!
//! The [`Recorder`] task fills them from the actor's status (refreshed every second) and from
//! every topic's event channel; [`super::snapshot`] reads them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_stream::StreamMap;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::actor::status::{TransportView, Transports};
use crate::actor::topics::AppEvent;
use crate::actor::{LORA, RETICULUM};
use crate::grpc::status::{RecentOperation, SignalSample, TransportStatus};
use crate::lores::Carried;

/// Operations kept for "recent operations".
pub const RECENT_OPERATIONS: usize = 50;
/// Signal samples kept per neighbour.
pub const SIGNAL_SAMPLES: usize = 30;
/// Neighbours whose signal is followed; the engine already bounds its neighbours per link,
/// this bounds the sum over Reticulum's many links.
pub const MAX_TRACKED_NEIGHBOURS: usize = 256;
/// Airtime samples kept per sub-band...
pub const AIRTIME_SAMPLES: usize = 60;
/// ...one this often: the last hour.
pub const AIRTIME_EVERY: Duration = Duration::from_secs(60);

/// The rings; see the module docs.
#[derive(Default)]
pub struct History {
    rings: Mutex<Rings>,
}

#[derive(Default)]
struct Rings {
    /// Newest last.
    recent: VecDeque<Recent>,
    /// Operations that arrived over iroh since start: p2panda counts nothing of its sync, so
    /// this is the one count of iroh's traffic there is.
    iroh_received: u64,
    signals: HashMap<(&'static str, [u8; 2]), Signal>,
    /// Per sub-band, in the order first seen.
    airtime: Vec<(String, VecDeque<f64>)>,
    next_airtime: Option<Instant>,
}

struct Recent {
    operation: RecentOperation,
    at: Instant,
}

struct Signal {
    /// The neighbour's frame count when last sampled: a new sample only when it moved.
    frames: u64,
    samples: VecDeque<Sample>,
}

struct Sample {
    at: Instant,
    rssi_dbm: Option<f32>,
    snr_db: Option<f32>,
}

/// Pushes to a ring, dropping its oldest entry when full.
fn push_bounded<T>(ring: &mut VecDeque<T>, item: T, bound: usize) {
    if ring.len() == bound {
        ring.pop_front();
    }
    ring.push_back(item);
}

impl History {
    fn rings(&self) -> MutexGuard<'_, Rings> {
        self.rings
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Notes what the actor's status shows at `now`: a signal sample for each neighbour heard
    /// since the last look, and an airtime sample when one is due.
    pub fn observe(&self, now: Instant, transports: &Transports) {
        let mut rings = self.rings();
        let mut present = HashSet::new();
        let views = [(LORA, &transports.lora), (RETICULUM, &transports.reticulum)];
        for (name, view) in views {
            for (neighbour, ago) in view.iter().flat_map(|v| &v.neighbours) {
                let key = (name, neighbour.tag.0);
                present.insert(key);
                let tracked = rings.signals.len();
                let signal = match rings.signals.get_mut(&key) {
                    Some(signal) if signal.frames == neighbour.frames => continue,
                    Some(signal) => signal,
                    None if tracked >= MAX_TRACKED_NEIGHBOURS => continue,
                    None => rings.signals.entry(key).or_insert(Signal {
                        frames: 0,
                        samples: VecDeque::new(),
                    }),
                };
                signal.frames = neighbour.frames;
                let sample = Sample {
                    at: now.checked_sub(*ago).unwrap_or(now),
                    rssi_dbm: neighbour.rssi_dbm,
                    snr_db: neighbour.snr_db,
                };
                push_bounded(&mut signal.samples, sample, SIGNAL_SAMPLES);
            }
        }
        rings.signals.retain(|key, _| present.contains(key));
        if let Some(lora) = &transports.lora
            && rings.next_airtime.is_none_or(|due| now >= due)
        {
            rings.next_airtime = Some(now + AIRTIME_EVERY);
            rings.sample_airtime(lora);
        }
    }

    /// Notes an operation the node processed.
    pub fn operation(&self, now: Instant, app_id: &str, event: &AppEvent) {
        let operation = RecentOperation {
            topic_id: event.topic.to_vec(),
            app_id: app_id.to_string(),
            operation_id: event.id.to_vec(),
            author: event.author.to_vec(),
            timestamp: event.timestamp,
            payload_bytes: event.payload.len() as u64,
            via: event.via.to_string(),
            secs_ago: 0.0,
        };
        let mut rings = self.rings();
        if event.via == "iroh" {
            rings.iroh_received += 1;
        }
        let recent = Recent { operation, at: now };
        push_bounded(&mut rings.recent, recent, RECENT_OPERATIONS);
    }

    /// The recent operations, newest first, aged as of `now`.
    pub fn recent(&self, now: Instant) -> Vec<RecentOperation> {
        self.rings()
            .recent
            .iter()
            .rev()
            .map(|r| RecentOperation {
                secs_ago: now.duration_since(r.at).as_secs_f64(),
                ..r.operation.clone()
            })
            .collect()
    }

    /// Operations that arrived over iroh since start.
    pub fn iroh_received(&self) -> u64 {
        self.rings().iroh_received
    }

    /// Adds the signal history of `status`' neighbours and the airtime history of its
    /// sub-bands, aged as of `now`.
    pub fn annotate(&self, now: Instant, status: &mut TransportStatus) {
        let rings = self.rings();
        let name = match status.name.as_str() {
            LORA => LORA,
            RETICULUM => RETICULUM,
            _ => return,
        };
        for neighbour in &mut status.neighbours {
            let Some(tag) = tag_bytes(&neighbour.tag) else {
                continue;
            };
            neighbour.history = match rings.signals.get(&(name, tag)) {
                Some(signal) => signal
                    .samples
                    .iter()
                    .map(|s| SignalSample {
                        secs_ago: now.duration_since(s.at).as_secs_f64(),
                        rssi_dbm: s.rssi_dbm,
                        snr_db: s.snr_db,
                    })
                    .collect(),
                // Heard so lately that the recorder has not looked yet: its one reading.
                None => vec![SignalSample {
                    secs_ago: neighbour.last_heard_secs_ago,
                    rssi_dbm: neighbour.rssi_dbm,
                    snr_db: neighbour.snr_db,
                }],
            };
        }
        for band in &mut status.airtime {
            if let Some((_, samples)) = rings.airtime.iter().find(|(b, _)| *b == band.sub_band) {
                band.used_secs_history = samples.iter().copied().collect();
            }
        }
    }
}

impl Rings {
    fn sample_airtime(&mut self, lora: &TransportView) {
        for usage in &lora.airtime {
            let used = usage.duty_cycle_used.as_secs_f64();
            let at = match self.airtime.iter().position(|(b, _)| *b == usage.sub_band) {
                Some(at) => at,
                None => {
                    self.airtime.push((usage.sub_band.clone(), VecDeque::new()));
                    self.airtime.len() - 1
                }
            };
            push_bounded(&mut self.airtime[at].1, used, AIRTIME_SAMPLES);
        }
    }
}

/// A neighbour's tag as the status writes it (4 hex digits) back to its two bytes.
fn tag_bytes(tag: &str) -> Option<[u8; 2]> {
    hex::decode(tag).ok()?.try_into().ok()
}

/// The task that fills a [`History`]: it subscribes to every topic at once (so it must be
/// made before the actor runs, to miss nothing) and runs until `shutdown` flips.
pub struct Recorder {
    history: Arc<History>,
    transports: watch::Receiver<Transports>,
    events: StreamMap<[u8; 32], BroadcastStream<AppEvent>>,
    apps: HashMap<[u8; 32], String>,
}

impl Recorder {
    pub fn new(
        transports: watch::Receiver<Transports>,
        senders: &HashMap<[u8; 32], broadcast::Sender<AppEvent>>,
        topics: &[Carried],
    ) -> Self {
        let mut events = StreamMap::new();
        for (topic, sender) in senders {
            events.insert(*topic, BroadcastStream::new(sender.subscribe()));
        }
        let apps = topics
            .iter()
            .map(|t| (t.topic, t.app_id.clone().unwrap_or_default()))
            .collect();
        Self {
            history: Arc::default(),
            transports,
            events,
            apps,
        }
    }

    /// The history this recorder fills.
    pub fn history(&self) -> Arc<History> {
        self.history.clone()
    }

    pub fn spawn(mut self, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = self.transports.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        let transports = self.transports.borrow_and_update();
                        self.history.observe(Instant::now(), &transports);
                    }
                    Some((topic, event)) = self.events.next() => match event {
                        Ok(event) => {
                            let app = self.apps.get(&topic).map_or("", String::as_str);
                            self.history.operation(Instant::now(), app, &event);
                        }
                        Err(BroadcastStreamRecvError::Lagged(missed)) => tracing::warn!(
                            missed,
                            "the status history fell behind; recent operations and the iroh \
                             count miss some"
                        ),
                    },
                    _ = shutdown.changed() => return,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::status::TransportView;
    use crate::grpc::status::Neighbour as NeighbourStatus;
    use lorabridge_hardware::SubBandUsage;
    use lorabridge_proto::NodeTag;
    use lorabridge_proto::engine::{EngineTime, Neighbour};

    fn lora(frames: u64, rssi: f32, used_secs: u64) -> Transports {
        Transports {
            lora: Some(TransportView {
                neighbours: vec![(
                    Neighbour {
                        tag: NodeTag([0xbe, 0xef]),
                        first_heard: EngineTime::ZERO,
                        last_heard: EngineTime::ZERO,
                        rssi_dbm: Some(rssi),
                        snr_db: Some(4.5),
                        frames,
                        ops: 0,
                    },
                    Duration::from_secs(1),
                )],
                airtime: vec![SubBandUsage {
                    sub_band: "g3".into(),
                    duty_cycle_used: Duration::from_secs(used_secs),
                    duty_cycle_budget: Some(Duration::from_secs(360)),
                    dwell_used: Duration::ZERO,
                    dwell_limit: None,
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn annotated(history: &History, now: Instant) -> TransportStatus {
        let mut status = TransportStatus {
            name: LORA.into(),
            neighbours: vec![NeighbourStatus {
                tag: "beef".into(),
                ..Default::default()
            }],
            airtime: vec![crate::grpc::status::SubBandAirtime {
                sub_band: "g3".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        history.annotate(now, &mut status);
        status
    }

    #[tokio::test(start_paused = true)]
    async fn a_sample_per_second_heard_and_per_minute_of_airtime_in_fixed_rings() {
        let history = History::default();
        let start = Instant::now();
        for second in 0..100u64 {
            let now = start + Duration::from_secs(second);
            // Heard in even seconds only: the frame count moves every other second.
            history.observe(now, &lora(second / 2, -90.0 - second as f32, second));
        }
        let status = annotated(&history, start + Duration::from_secs(100));
        let signal = &status.neighbours[0].history;
        assert_eq!(signal.len(), SIGNAL_SAMPLES.min(50));
        assert_eq!(signal.last().unwrap().rssi_dbm, Some(-188.0));
        assert_eq!(
            signal.last().unwrap().secs_ago,
            3.0,
            "heard a second before seen"
        );
        assert_eq!(status.airtime[0].used_secs_history, vec![0.0, 60.0]);

        for minute in 2..200u64 {
            history.observe(
                start + Duration::from_secs(minute * 60),
                &lora(0, -90.0, minute),
            );
        }
        let status = annotated(&history, start + Duration::from_secs(12_000));
        assert_eq!(status.airtime[0].used_secs_history.len(), AIRTIME_SAMPLES);
        assert_eq!(status.airtime[0].used_secs_history.last(), Some(&199.0));

        history.observe(start + Duration::from_secs(12_001), &Transports::default());
        let status = annotated(&history, start + Duration::from_secs(12_001));
        assert_eq!(
            status.neighbours[0].history.len(),
            1,
            "a neighbour gone from the engine is forgotten: only the reading shown is left"
        );
    }

    #[test]
    fn a_neighbour_heard_before_the_recorder_looked_shows_its_reading() {
        let mut status = TransportStatus {
            name: LORA.into(),
            neighbours: vec![NeighbourStatus {
                tag: "beef".into(),
                last_heard_secs_ago: 0.5,
                rssi_dbm: Some(-97.0),
                snr_db: Some(4.0),
                frames: 1,
                ..Default::default()
            }],
            ..Default::default()
        };
        History::default().annotate(Instant::now(), &mut status);
        let history = &status.neighbours[0].history;
        assert_eq!(history.len(), 1);
        assert_eq!(
            (history[0].secs_ago, history[0].rssi_dbm, history[0].snr_db),
            (0.5, Some(-97.0), Some(4.0))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn recent_operations_keep_the_newest_and_count_iroh() {
        let history = History::default();
        let now = Instant::now();
        for i in 0..(RECENT_OPERATIONS as u8 + 10) {
            let event = AppEvent {
                topic: [1; 32],
                author: [2; 32],
                id: [i; 32],
                timestamp: 7,
                payload: vec![0; 5],
                via: if i % 2 == 0 { "iroh" } else { "lora" },
            };
            history.operation(now, "chat", &event);
        }
        let recent = history.recent(now + Duration::from_secs(2));
        assert_eq!(recent.len(), RECENT_OPERATIONS);
        assert_eq!(
            recent[0].operation_id,
            vec![RECENT_OPERATIONS as u8 + 9; 32]
        );
        assert_eq!(
            (recent[0].payload_bytes, recent[0].secs_ago, &*recent[0].via),
            (5, 2.0, "lora")
        );
        assert_eq!(history.iroh_received(), 30);
    }
}
