//! The LoRa radio as the actor drives it: one broadcast link of the engine, with at most one
//! frame in flight. A send takes as long as the frame's airtime and the module's answer
//! (seconds at high spreading factors, up to the driver's queue timeout while the port is
//! unplugged), so it runs as a future beside the loop, and its outcome goes back to the
//! engine.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use lorabridge_hardware::OnAir;
use lorabridge_proto::engine::{Engine, EngineTime, LinkId, OpStore};
use lorabridge_radio::{Radio, RadioError};
use tokio::time::Instant;

use super::{Done, Work};
use crate::bridge_db::BridgeDbWriter;

/// After a failed send, the radio is given this long before the next frame: a driver that has
/// given up fails every send at once, and the loop must not spin on it.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

pub struct RadioPort {
    pub link: LinkId,
    pub radio: Arc<dyn Radio>,
    /// What the engine charges each frame's airtime with; sends are recorded with the same.
    on_air: OnAir,
    sending: bool,
    retry_at: Option<Instant>,
}

impl RadioPort {
    pub fn new(link: LinkId, radio: Arc<dyn Radio>, on_air: OnAir) -> Self {
        Self {
            link,
            radio,
            on_air,
            sending: false,
            retry_at: None,
        }
    }

    /// Hands the engine's next frame to the radio, if the radio is free. Returns when to try
    /// again if a failure holds the radio back.
    pub fn transmit<S: OpStore>(
        &mut self,
        engine: &mut Engine<S>,
        elapsed: EngineTime,
        now: Instant,
        work: &mut Work,
        bridge_db: &BridgeDbWriter,
    ) -> Option<Instant> {
        if let Some(at) = self.retry_at {
            if now < at {
                return Some(at);
            }
            self.retry_at = None;
        }
        if self.sending {
            return None;
        }
        if let Some(frame) = engine.poll_transmit(elapsed, self.link) {
            // On disk before it is on air, so that a restart keeps the duty cycle.
            bridge_db.airtime(self.on_air.time_on_air(frame.len()));
            self.sending = true;
            let radio = self.radio.clone();
            work.push(async move { Done::RadioSent(radio.send(&frame).await) }.boxed());
        }
        None
    }

    /// The frame in flight was sent, or failed.
    pub fn on_sent<S: OpStore>(
        &mut self,
        engine: &mut Engine<S>,
        elapsed: EngineTime,
        now: Instant,
        result: Result<(), RadioError>,
    ) {
        self.sending = false;
        if let Err(e) = &result {
            tracing::warn!("radio send failed: {e}");
            self.retry_at = Some(now + RETRY_AFTER_FAILURE);
        }
        engine.handle_transmitted(elapsed, self.link, result.is_ok());
    }
}
