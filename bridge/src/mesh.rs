//! Drives the sync engine in real time over a radio: the daemon's side of the sans-IO engine.
//! Frames heard and local operations go in; frames to send and operations to import come out.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use lorabridge_proto::RawOp;
use lorabridge_proto::engine::{Engine, Event, LinkId, MemoryStore, Neighbour, Stats};
use lorabridge_radio::Radio;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::state::State;
use crate::topic::{Command, TopicHandle};

/// The transport name operations from the radio are recorded under.
pub const LORA: &str = "lora";

/// What the status API shows of the radio transport.
#[derive(Clone, Debug, Default)]
pub struct MeshStatus {
    pub stats: Stats,
    pub neighbours: Vec<(Neighbour, Duration)>,
    pub queue_depth: usize,
    pub airtime: Vec<lorabridge_hardware::SubBandUsage>,
    pub ops_per_topic: HashMap<[u8; 32], u64>,
    pub radio_state: String,
}

pub struct Mesh {
    pub engine: Engine<MemoryStore>,
    pub link: LinkId,
    pub radio: Arc<dyn Radio>,
    pub topics: HashMap<[u8; 32], TopicHandle>,
    pub state: State,
}

impl Mesh {
    /// Runs until `shutdown` flips; `local` carries new local and iroh operations.
    pub async fn run(
        mut self,
        mut local: mpsc::Receiver<([u8; 32], RawOp)>,
        status: watch::Sender<MeshStatus>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let start = Instant::now();
        let mut next_status = start;
        loop {
            let now = start.elapsed();
            while let Some(frame) = self.engine.poll_transmit(now, self.link) {
                if let Err(e) = self.radio.send(&frame).await {
                    tracing::warn!("radio send failed: {e}");
                }
            }
            while let Some(event) = self.engine.poll_event() {
                self.on_event(event).await;
            }
            if Instant::now() >= next_status {
                let _ = status.send(self.status(start.elapsed()));
                next_status = Instant::now() + Duration::from_secs(1);
            }
            let wake = self
                .engine
                .poll_timeout()
                .map_or(next_status, |t| (start + t).min(next_status));
            tokio::select! {
                frame = self.radio.recv() => match frame {
                    Some(frame) => {
                        let signal = frame.rssi_dbm.map(|r| (f32::from(r), frame.snr_db.unwrap_or(0.0)));
                        self.engine.handle_frame(start.elapsed(), self.link, &frame.payload, signal);
                    }
                    None => {
                        tracing::error!("the radio closed");
                        break;
                    }
                },
                Some((topic, op)) = local.recv() => {
                    if let Err(e) = self.engine.handle_local_op(start.elapsed(), &topic, op) {
                        tracing::warn!("cannot offer a local operation to the mesh: {e}");
                    }
                }
                () = tokio::time::sleep_until(wake) => self.engine.handle_timeout(start.elapsed()),
                _ = shutdown.changed() => break,
            }
        }
        if let Err(e) = self.radio.shutdown().await {
            tracing::warn!("radio shutdown: {e}");
        }
    }

    async fn on_event(&mut self, event: Event) {
        match event {
            Event::Received { topic, op, .. } => {
                let id = op.id();
                if let Err(e) = self.state.record_heard(LORA, &id).await {
                    tracing::warn!("cannot record a heard operation: {e}");
                }
                if let Some(handle) = self.topics.get(&topic) {
                    let _ = handle
                        .commands
                        .send(Command::Import { op, via: LORA })
                        .await;
                }
            }
            Event::Rejected { reason, .. } => {
                tracing::debug!("rejected from the radio: {reason:?}")
            }
        }
    }

    fn status(&self, now: Duration) -> MeshStatus {
        use lorabridge_proto::engine::OpStore;
        MeshStatus {
            stats: self.engine.stats(self.link),
            neighbours: self
                .engine
                .neighbours(self.link)
                .iter()
                .map(|n| (*n, now.saturating_sub(n.last_heard)))
                .collect(),
            queue_depth: self.engine.queue_depth(self.link),
            airtime: self
                .engine
                .ledger(self.link)
                .map(|l| l.summary(now))
                .unwrap_or_default(),
            ops_per_topic: self
                .topics
                .keys()
                .map(|t| {
                    (
                        *t,
                        self.engine.store().heights(t).iter().map(|(_, h)| h).sum(),
                    )
                })
                .collect(),
            radio_state: format!("{:?}", self.radio.state()).to_lowercase(),
        }
    }
}
