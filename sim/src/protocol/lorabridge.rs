//! The project's protocol: the real sans-IO sync engine of `lorabridge-proto`, one LoRa link.
//! The engine's clock is the simulator's virtual time since the run began.

use std::time::Duration;

use lorabridge_hardware::OnAir;
use lorabridge_proto::engine::{
    Budget, Engine, EngineConfig, EngineTime, Event, LinkConfig, LinkId, MemoryStore,
};
use lorabridge_proto::operation::RawOp;

use super::{NodeSetup, Protocol};

pub struct Lorabridge {
    engine: Engine<MemoryStore>,
    link: LinkId,
    delivered: Vec<[u8; 32]>,
}

impl Lorabridge {
    pub fn new(setup: &NodeSetup, now: Duration, store: MemoryStore) -> Self {
        let config = EngineConfig::new(setup.network_id, setup.key, setup.seed);
        Self::with_config(setup, now, store, config)
    }

    /// With engine constants other than the defaults (for tuning experiments).
    pub fn with_config(
        setup: &NodeSetup,
        now: Duration,
        store: MemoryStore,
        config: EngineConfig,
    ) -> Self {
        let mut engine = Engine::new(config, store);
        let link = engine
            .add_link(
                EngineTime::from_start(now),
                LinkConfig {
                    mtu: setup.mtu,
                    budget: Some(Budget {
                        on_air: OnAir::plain(setup.modulation),
                        plan: setup.plan.clone(),
                    }),
                    topics: setup.topics.clone(),
                },
            )
            .expect("scenario validated the mtu and topics");
        Self {
            engine,
            link,
            delivered: Vec::new(),
        }
    }

    fn drain(&mut self) {
        while let Some(event) = self.engine.poll_event() {
            if let Event::Received { op, .. } = event {
                self.delivered.push(op.id());
            }
        }
    }

    pub fn engine(&self) -> &Engine<MemoryStore> {
        &self.engine
    }
}

impl Protocol for Lorabridge {
    fn publish(&mut self, now: Duration, topic: &[u8; 32], op: &RawOp) {
        // The op was signed by the traffic generator, so it always decodes.
        let _ = self
            .engine
            .handle_local_op(EngineTime::from_start(now), topic, op.clone());
        self.drain();
    }

    fn receive(&mut self, now: Duration, frame: &[u8], rssi: f32, snr: f32) {
        self.engine.handle_frame(
            EngineTime::from_start(now),
            self.link,
            frame,
            Some((rssi, snr)),
        );
        self.drain();
    }

    fn timeout(&mut self, now: Duration) {
        self.engine.handle_timeout(EngineTime::from_start(now));
        self.drain();
    }

    fn transmit(&mut self, now: Duration) -> Option<Vec<u8>> {
        let now = EngineTime::from_start(now);
        let frame = self.engine.poll_transmit(now, self.link)?;
        // The frame goes on air at once, and the simulated radio never fails to send it.
        self.engine.handle_transmitted(now, self.link, true);
        Some(frame)
    }

    fn next_timeout(&self) -> Option<Duration> {
        self.engine.poll_timeout().map(EngineTime::since_start)
    }

    fn take_delivered(&mut self, into: &mut Vec<[u8; 32]>) {
        into.append(&mut self.delivered);
    }

    fn store(&self) -> &MemoryStore {
        self.engine.store()
    }

    fn duplicates(&self) -> u64 {
        self.engine.stats(self.link).duplicates
    }

    fn frames_by_kind(&self) -> Vec<(&'static str, u64)> {
        let s = self.engine.stats(self.link);
        let control = [
            ("summary", s.summaries_sent),
            ("vector", s.vectors_sent),
            ("want", s.wants_sent),
            ("hello", s.hellos_sent),
            ("key_want", s.key_wants_sent),
            ("fragment", s.fragments_sent),
        ];
        // Every other frame carries one whole operation.
        let whole_ops = s.frames_sent - control.iter().map(|(_, n)| n).sum::<u64>();
        let mut kinds = control.to_vec();
        kinds.push(("op", whole_ops));
        kinds
    }
}
