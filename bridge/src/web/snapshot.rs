//! The one builder of the bridge's status: the gRPC status service, the JSON endpoint, the
//! live page and `/metrics` all show what [`StatusSource::snapshot`] returns, so each fact is
//! worked out in one place and they can never disagree.

use std::sync::Arc;
use std::time::Duration;

use p2panda_store::SqliteStore;
use tokio::sync::watch;
use tokio::time::Instant;

use super::history::History;
use crate::actor::status::{TransportView, Transports};
use crate::actor::{LORA, RETICULUM};
use crate::grpc::status::{Neighbour, StatusReply, SubBandAirtime, TopicStatus, TransportStatus};
use crate::lores::Carried;

/// The state of a transport the config does not ask for.
pub const DISABLED: &str = "disabled";
/// The state of a configured mesh transport whose driver ended (the log says why).
pub const STOPPED: &str = "stopped";

/// The node's database could not be read for the topics' counts.
#[derive(Debug, thiserror::Error)]
#[error("cannot count the operations of topic {topic}: {reason}")]
pub struct SnapshotError {
    topic: String,
    reason: String,
}

/// Which mesh transports the bridge was started with: an absent transport is "disabled"
/// when it was never configured and "stopped" when its driver ended.
#[derive(Clone, Copy, Debug)]
pub struct Configured {
    pub lora: bool,
    pub reticulum: bool,
}

/// Everything the status is made of.
#[derive(Clone)]
pub struct StatusSource {
    pub node_id: [u8; 32],
    pub network_id: [u8; 32],
    pub topics: Arc<[Carried]>,
    /// The node's database: topic counts come from it, whatever transport brought the ops.
    pub db: SqliteStore,
    pub transports: watch::Receiver<Transports>,
    pub history: Arc<History>,
    pub configured: Configured,
    /// The topics' counts and when they were read: shared by every viewer (see
    /// [`StatusSource::topic_counts`]).
    pub counts: Arc<tokio::sync::Mutex<Option<(Instant, Vec<TopicStatus>)>>>,
}

/// How long the topics' counts are reused: the actor refreshes the status once a second.
const COUNTS_FRESH: Duration = Duration::from_secs(1);

impl StatusSource {
    /// The bridge's status now.
    pub async fn snapshot(&self) -> Result<StatusReply, SnapshotError> {
        let topics = self.topic_counts().await?;
        let now = Instant::now();
        let transports = self.transports.borrow().clone();
        let iroh = TransportStatus {
            name: "iroh".into(),
            state: match (transports.iroh.enabled, transports.iroh.peers.is_empty()) {
                (false, _) => DISABLED,
                (true, true) => "ready",
                (true, false) => "connected",
            }
            .into(),
            peers: transports.iroh.peers.iter().map(|p| p.to_vec()).collect(),
            ops_received: self.history.iroh_received(),
            ..Default::default()
        };
        let mesh = [
            (LORA, transports.lora, self.configured.lora),
            (RETICULUM, transports.reticulum, self.configured.reticulum),
        ];
        let mut all = vec![iroh];
        for (name, view, configured) in mesh {
            let mut status = match (view, configured) {
                (Some(view), _) => transport_status(name, view),
                (None, configured) => TransportStatus {
                    name: name.into(),
                    state: if configured { STOPPED } else { DISABLED }.into(),
                    ..Default::default()
                },
            };
            self.history.annotate(now, &mut status);
            all.push(status);
        }
        Ok(StatusReply {
            node_id: self.node_id.to_vec(),
            network_id: self.network_id.to_vec(),
            topics,
            transports: all,
            import_backlog: transports.import_backlog as u64,
            recent_operations: self.history.recent(now),
        })
    }

    /// Each topic's operation count, read from the node's database at most once per
    /// `COUNTS_FRESH`: a count reads every log of the topic, and up to 8 live views and any
    /// number of status requests ask every second.
    async fn topic_counts(&self) -> Result<Vec<TopicStatus>, SnapshotError> {
        let mut cached = self.counts.lock().await;
        if let Some((at, topics)) = cached.as_ref()
            && at.elapsed() < COUNTS_FRESH
        {
            return Ok(topics.clone());
        }
        let mut topics = Vec::with_capacity(self.topics.len());
        for t in self.topics.iter() {
            let operations = crate::actor::store::count(&self.db, &t.topic)
                .await
                .map_err(|reason| SnapshotError {
                    topic: hex::encode(t.topic),
                    reason,
                })?;
            topics.push(TopicStatus {
                topic_id: t.topic.to_vec(),
                app_id: t.app_id.clone().unwrap_or_default(),
                region_id: t.region.to_vec(),
                operations,
            });
        }
        *cached = Some((Instant::now(), topics.clone()));
        Ok(topics)
    }

    /// Changes once per refresh of the actor's status (every second): when a live view
    /// should look again.
    pub fn refreshes(&self) -> watch::Receiver<Transports> {
        self.transports.clone()
    }
}

fn transport_status(name: &str, view: TransportView) -> TransportStatus {
    let c = view.counters;
    TransportStatus {
        name: name.into(),
        state: view.state,
        neighbours: view
            .neighbours
            .iter()
            .map(|(n, ago)| Neighbour {
                tag: hex::encode(n.tag.0),
                last_heard_secs_ago: ago.as_secs_f64(),
                rssi_dbm: n.rssi_dbm,
                snr_db: n.snr_db,
                frames: n.frames,
                history: Vec::new(),
            })
            .collect(),
        airtime: view
            .airtime
            .iter()
            .map(|a| SubBandAirtime {
                sub_band: a.sub_band.clone(),
                used_secs: a.duty_cycle_used.as_secs_f64(),
                budget_secs: a.duty_cycle_budget.map_or(0.0, |b| b.as_secs_f64()),
                used_secs_history: Vec::new(),
            })
            .collect(),
        queue_depth: view.queue_depth as u64,
        frames_sent: c.frames_sent,
        frames_heard: c.frames_heard,
        frames_rejected: c.frames_rejected,
        ops_received: c.ops_received,
        ops_sent: c.ops_sent,
        peers: view.peers,
        ops_rejected: view.ops_rejected,
        airtime_sent_secs: c.airtime_sent.as_secs_f64(),
        send_failures: c.send_failures,
    }
}
