//! Two sync engines whose only link is Reticulum: each bridge's transport connects to the same
//! real `rnsd`, they find each other by announce, and operations published on either side
//! reach the other (standing in for two daemons until the gRPC-level test exists).
//!
//! Also measures bytes on the wire per synced operation: the mesh frames the engines sent
//! (what a LoRa channel would carry) against the HDLC-framed Reticulum packets that carried
//! them, proofs and announces included.

use lorabridge::reticulum;

use std::time::{Duration, Instant};

use lorabridge_proto::engine::{
    Engine, EngineConfig, EngineTime, Event as EngineEvent, MemoryStore, OpStore,
};
use lorabridge_proto::operation::{NewOp, RawOp, lores_body, sign};
use lorabridge_proto::{NetworkTag, TopicTag};
use lorabridge_reticulum::Event;
use lorabridge_testkit::driven_rns::DrivenRns;
use lorabridge_testkit::rns::Rnsd;
use p2panda_core::SigningKey;
use reticulum::{PeerLinks, Reticulum, ReticulumConfig, ReticulumEvent};
use tokio::sync::mpsc::UnboundedReceiver as Receiver;

const TOPIC: [u8; 32] = [0x42; 32];
const NETWORK_ID: [u8; 32] = [7; 32];

/// A LoRes chat log: `n` operations with 40-byte payloads (the onair example's op).
fn chat(author: u8, n: u32) -> Vec<RawOp> {
    let key = SigningKey::from_bytes(&[author; 32]);
    let body = lores_body(&[b'x'; 40]);
    let mut ops: Vec<RawOp> = Vec::new();
    for seq in 0..n {
        let op = sign(
            &key,
            &NewOp {
                topic: &TOPIC,
                seq,
                backlink: ops.last().map(RawOp::id),
                timestamp: 1_795_000_000_000_000 + u64::from(seq) * 61_000_000,
                prune: false,
                body: Some(&body),
            },
        );
        ops.push(op);
    }
    ops
}

struct Bridge {
    rns: DrivenRns,
    events: Receiver<ReticulumEvent>,
    engine: Engine<MemoryStore>,
    links: PeerLinks,
    received: usize,
    _dir: tempfile::TempDir,
}

impl Bridge {
    fn start(rnsd: &Rnsd, node: u8, prove: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = ReticulumConfig {
            servers: vec![rnsd.address()],
            identity_path: dir.path().join("id"),
            announce_interval: Duration::from_secs(600),
            prove,
        };
        let network = NetworkTag::from_network_id(&NETWORK_ID);
        let (rns, events) = DrivenRns::spawn(
            Reticulum::start(config, network, vec![TopicTag::from_topic(&TOPIC)]).unwrap(),
        );
        let mut engine_config = EngineConfig::new(NETWORK_ID, [node; 32], [node; 32]);
        engine_config.trickle.imin = Duration::from_secs(1);
        engine_config.answer_holdoff = Duration::from_millis(300);
        Self {
            rns,
            events,
            engine: Engine::new(engine_config, MemoryStore::default()),
            links: PeerLinks::new(16),
            received: 0,
            _dir: dir,
        }
    }

    /// One turn of what the daemon's loop does for this transport.
    async fn step(&mut self, now: EngineTime) {
        while let Ok(event) = self.events.try_recv() {
            match event {
                ReticulumEvent::Endpoint(Event::PeerAnnounced { peer, topics, .. }) => {
                    self.links
                        .on_peer(&mut self.engine, now, peer, &topics, &[TOPIC])
                        .unwrap();
                }
                ReticulumEvent::Endpoint(Event::Received { from, frame }) => {
                    if let Some(link) = self.links.link(&from) {
                        self.engine.handle_frame(now, link, &frame, None);
                    }
                }
                _ => {}
            }
        }
        if self.engine.poll_timeout().is_some_and(|t| t <= now) {
            self.engine.handle_timeout(now);
        }
        let links: Vec<_> = self.links.iter().collect();
        for (peer, link) in links {
            while let Some(frame) = self.engine.poll_transmit(now, link) {
                assert!(
                    self.rns.send(peer, frame).await,
                    "the transport took the frame"
                );
                self.engine.handle_transmitted(now, link, true);
            }
        }
        while let Some(event) = self.engine.poll_event() {
            match event {
                EngineEvent::Received { .. } => self.received += 1,
                EngineEvent::Rejected { reason, .. } => panic!("engine rejected {reason:?}"),
                EngineEvent::Retagged { from, to } => panic!("retagged {from:?} -> {to:?}"),
            }
        }
    }

    fn frame_bytes(&self) -> u64 {
        self.links
            .iter()
            .map(|(_, l)| self.engine.stats(l).bytes_sent)
            .sum()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_sync_both_ways_through_rnsd() {
    sync(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_sync_without_proofs() {
    sync(false).await;
}

/// Publishes ten operations on each side and runs both bridges until they hold all twenty.
async fn sync(prove: bool) {
    let rnsd = Rnsd::start();
    // A connects (and announces) first; B's announce then reaches A, and B learns A when
    // A's first frame makes it ask rnsd for A's path. No test-side re-announcing.
    let mut a = Bridge::start(&rnsd, 1, prove);
    while !matches!(
        a.events.recv().await,
        Some(ReticulumEvent::Connected { .. })
    ) {}
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut b = Bridge::start(&rnsd, 2, prove);
    let start = Instant::now();
    let (ops_a, ops_b) = (chat(0xa1, 10), chat(0xb2, 10));
    // Half published before the bridges meet (caught up by summaries), half after (pushed).
    for op in &ops_a[..5] {
        a.engine
            .handle_local_op(EngineTime::from_start(start.elapsed()), &TOPIC, op.clone())
            .unwrap();
    }
    for op in &ops_b[..5] {
        b.engine
            .handle_local_op(EngineTime::from_start(start.elapsed()), &TOPIC, op.clone())
            .unwrap();
    }
    let deadline = start + Duration::from_secs(180);
    let mut published_rest = false;
    loop {
        let now = EngineTime::from_start(start.elapsed());
        a.step(now).await;
        b.step(now).await;
        if !published_rest && !a.links.is_empty() && !b.links.is_empty() {
            for op in &ops_a[5..] {
                a.engine.handle_local_op(now, &TOPIC, op.clone()).unwrap();
            }
            for op in &ops_b[5..] {
                b.engine.handle_local_op(now, &TOPIC, op.clone()).unwrap();
            }
            published_rest = true;
        }
        if a.engine.store().len() == 20 && b.engine.store().len() == 20 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no convergence: a holds {}, b holds {}",
            a.engine.store().len(),
            b.engine.store().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!((a.received, b.received), (10, 10), "each op imported once");
    for op in ops_a.iter().chain(&ops_b) {
        assert!(a.engine.store().contains(&op.id()) && b.engine.store().contains(&op.id()));
    }
    assert_eq!(a.engine.store().heights(&TOPIC).len(), 2);

    let (sa, sb) = (a.rns.stats().await, b.rns.stats().await);
    for s in [sa.endpoint, sb.endpoint] {
        assert_eq!((s.malformed, s.decrypt_failed), (0, 0));
        assert!(s.data_received > 0);
        assert_eq!(s.proofs_valid > 0, prove);
        assert_eq!(s.proofs_sent > 0, prove);
    }
    let frames = a.frame_bytes() + b.frame_bytes();
    let wire = sa.wire_bytes_out + sb.wire_bytes_out;
    let packets = sa.endpoint.data_sent + sb.endpoint.data_sent;
    println!(
        "{}",
        serde_json::json!({
            "proofs": prove,
            "synced_ops": 20,
            "mesh_frames_sent": packets,
            "mesh_frame_bytes": frames,
            "mesh_frame_bytes_per_op": frames as f64 / 20.0,
            "reticulum_wire_bytes": wire,
            "reticulum_wire_bytes_per_op": wire as f64 / 20.0,
            "proofs_sent": sa.endpoint.proofs_sent + sb.endpoint.proofs_sent,
            "announces_sent": sa.endpoint.announces_sent + sb.endpoint.announces_sent,
            "path_requests_sent": sa.endpoint.path_requests_sent + sb.endpoint.path_requests_sent,
        })
    );
    assert!(
        wire > frames,
        "Reticulum adds headers, encryption and proofs"
    );
}
