//! The sync engine in a small deterministic medium: convergence, multi-hop, late joiners,
//! partitions, hostile frames, the airtime budget and Trickle's idle cost.

mod common;

use std::time::Duration;

use common::medium::{Fate, LINK, Medium, engine, modulation};
use common::{key, log};
use lorabridge_proto::engine::{EngineTime, MemoryStore, OpStore};
use lorabridge_proto::operation::RawOp;

const TOPIC: [u8; 32] = [0x42; 32];
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// `n` seconds on the engines' clock.
fn secs(n: u64) -> EngineTime {
    EngineTime::from_start(Duration::from_secs(n))
}

fn chat(author: u8, n: usize) -> Vec<RawOp> {
    let payloads: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("message {i} from {author}: hello neighbours").into_bytes())
        .collect();
    log(&key(author), &TOPIC, &payloads)
}

fn assert_converged(medium: &Medium, ops: usize) {
    for (i, node) in medium.nodes.iter().enumerate() {
        assert_eq!(
            medium.held(i),
            ops,
            "node {i} holds {} of {ops}",
            medium.held(i)
        );
        assert_eq!(
            node.engine.store().heights(&TOPIC).len(),
            medium.nodes[0].engine.store().heights(&TOPIC).len()
        );
    }
}

#[test]
fn two_nodes_converge_and_nothing_echoes() {
    let mut medium = Medium::line(2, &[TOPIC]);
    // Past the first Trickle interval: until then a link relays even to no one it knows of
    // (see `a_fresh_mesh_relays_past_a_lost_greeting`).
    medium.run_for(2 * MINUTE);
    for op in chat(1, 5) {
        medium.publish(0, &TOPIC, op);
        medium.run_for(Duration::from_secs(5));
    }
    medium.run_for(MINUTE);
    assert_converged(&medium, 5);
    assert_eq!(medium.nodes[1].received.len(), 5, "each op reported once");
    // B heard every op on the link, so it never sent one back.
    assert_eq!(medium.nodes[1].engine.stats(*LINK).ops_sent, 0);
    assert_eq!(
        medium.nodes[0].engine.stats(*LINK).ops_sent,
        5,
        "A pushed each fresh op once"
    );
}

/// Three nodes start at once in a line. The end node's greeting is lost at the middle one
/// (in the field: it collided with the other end's frame, which the end node cannot hear),
/// so the middle node knows no one but the publisher when the first op arrives. It relays
/// anyway, because its link has just started, and the op crosses both hops in seconds
/// instead of waiting 45-90 s for the end node's first Trickle summary.
#[test]
fn a_fresh_mesh_relays_past_a_lost_greeting() {
    let mut medium = Medium::line(3, &[TOPIC]);
    let mut lost = false;
    medium.fate = Box::new(move |from, to, _| {
        if (from, to) == (2, 1) && !lost {
            lost = true;
            return Fate::Drop;
        }
        Fate::Deliver
    });
    medium.run_for(Duration::from_secs(5));
    medium.publish(0, &TOPIC, chat(1, 1).remove(0));
    medium.run_for(Duration::from_secs(15));
    assert_eq!(
        medium.held(2),
        1,
        "the first op crossed two hops within 15 s"
    );
}

#[test]
fn line_of_five_converges_over_four_hops_both_ways() {
    let mut medium = Medium::line(5, &[TOPIC]);
    for op in chat(1, 3) {
        medium.publish(0, &TOPIC, op);
    }
    for op in chat(2, 3) {
        medium.publish(4, &TOPIC, op);
    }
    medium.run_for(10 * MINUTE);
    assert_converged(&medium, 6);
    for node in &medium.nodes[1..4] {
        assert_eq!(node.received.len(), 6, "relays report each op once");
    }
}

#[test]
fn late_joiner_catches_up() {
    let mut medium = Medium::line(2, &[TOPIC]);
    for op in chat(1, 20) {
        medium.publish(0, &TOPIC, op);
    }
    medium.run_for(10 * MINUTE);
    assert_converged(&medium, 20);
    // C appears next to B after an hour of quiet.
    medium.run_for(HOUR);
    let now = medium.now;
    let mut late = engine(2, &[TOPIC], MemoryStore::default(), modulation(false));
    late.handle_timeout(now);
    medium.add_node(late, |j| j == 1);
    medium.run_for(15 * MINUTE);
    assert_converged(&medium, 20);
}

#[test]
fn partition_heals() {
    let mut medium = Medium::line(4, &[TOPIC]);
    medium.hears[1][2] = false;
    medium.hears[2][1] = false;
    for op in chat(1, 4) {
        medium.publish(0, &TOPIC, op);
    }
    for op in chat(2, 4) {
        medium.publish(3, &TOPIC, op);
    }
    medium.run_for(20 * MINUTE);
    assert_eq!(
        (medium.held(1), medium.held(2)),
        (4, 4),
        "each side synced within itself"
    );
    medium.hears[1][2] = true;
    medium.hears[2][1] = true;
    // Idle intervals have grown; the next summary heard across the gap restarts repair.
    medium.run_for(HOUR);
    assert_converged(&medium, 8);
}

#[test]
fn duplicated_and_reordered_frames_change_nothing_wrong() {
    let mut medium = Medium::line(3, &[TOPIC]);
    // Every frame arrives twice; frames to node 2 are held back and delivered in reverse.
    let mut held: Vec<Vec<u8>> = Vec::new();
    medium.fate = Box::new(move |_, to, frame| {
        if to == 2 {
            held.push(frame.to_vec());
            if held.len() < 3 {
                return Fate::Drop;
            }
            let mut burst: Vec<Vec<u8>> = held.drain(..).rev().collect();
            burst.extend(burst.clone());
            return Fate::Replace(burst);
        }
        Fate::Replace(vec![frame.to_vec(), frame.to_vec()])
    });
    for op in chat(1, 6) {
        medium.publish(0, &TOPIC, op);
    }
    medium.run_for(30 * MINUTE);
    assert_converged(&medium, 6);
    for node in &medium.nodes {
        let mut ids: Vec<_> = node.received.iter().map(RawOp::id).collect();
        ids.dedup();
        assert_eq!(ids.len(), node.received.len(), "no op reported twice");
    }
}

#[test]
fn truncated_and_forged_frames_are_rejected_and_not_relayed() {
    let mut medium = Medium::line(3, &[TOPIC]);
    let ops = chat(1, 2);
    // Capture the frame that carries op 0 from node 0.
    let captured = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let sink = captured.clone();
    medium.fate = Box::new(move |from, _, frame| {
        if from == 0 {
            sink.borrow_mut().push(frame.to_vec());
        }
        Fate::Drop
    });
    medium.publish(0, &TOPIC, ops[0].clone());
    medium.run_for(Duration::from_secs(5));
    let frame = captured
        .borrow()
        .first()
        .cloned()
        .expect("node 0 sent its op");
    medium.fate = Box::new(|_, _, _| Fate::Deliver);

    // Truncated: every prefix is refused.
    for len in 0..frame.len() {
        medium.inject(1, &frame[..len]);
    }
    assert_eq!(medium.held(1), 0);
    assert_eq!(medium.nodes[1].rejected, frame.len());

    // Forged: a bit flipped inside the signature, checksum recomputed so it passes the CRC.
    let mut forged = frame.clone();
    forged[20] ^= 0x01;
    let body = forged.len() - 2;
    let crc = crc::Crc::<u16>::new(&crc::CRC_16_IBM_3740).checksum(&forged[..body]);
    forged[body..].copy_from_slice(&crc.to_be_bytes());
    medium.inject(1, &forged);
    medium.run_for(Duration::from_secs(1));
    assert_eq!(
        (medium.held(1), medium.held(2)),
        (0, 0),
        "nothing forged was stored or relayed"
    );
    medium.run_for(10 * MINUTE);
    for node in &medium.nodes[1..] {
        let ids: Vec<_> = node.received.iter().map(RawOp::id).collect();
        assert_eq!(
            ids,
            vec![ops[0].id()],
            "only the genuine op arrived, by repair"
        );
    }

    // The genuine frame, repeated, is a duplicate and changes nothing.
    let before = medium.nodes[1].received.len();
    medium.inject(1, &frame);
    assert_eq!(medium.nodes[1].received.len(), before);
}

#[test]
fn sends_never_exceed_the_duty_cycle() {
    // EU868 1 % sub-band: 36 s of airtime in any hour. Publish far more than fits: at SF7
    // an op takes about 0.12 s, so 400 at each end need more than an hour of budget.
    let mut medium = Medium::new(3, &[TOPIC], |i, j| i.abs_diff(j) == 1, true);
    for op in chat(1, 400) {
        medium.publish(0, &TOPIC, op);
    }
    for op in chat(2, 400) {
        medium.publish(2, &TOPIC, op);
    }
    medium.run_for(3 * HOUR);
    for (i, node) in medium.nodes.iter().enumerate() {
        // The busiest hour starts with some send: check every such window, counting only
        // the airtime inside it.
        for (from, _) in &node.sends {
            let until = *from + HOUR;
            let used: Duration = node
                .sends
                .iter()
                .map(|(s, a)| (*s + *a).min(until).duration_since((*s).max(*from)))
                .sum();
            assert!(
                used <= Duration::from_secs(36),
                "node {i} used {used:?} in the hour from {from:?}"
            );
        }
        assert!(
            node.engine.stats(*LINK).budget_refusals > 0,
            "the budget was the limit at node {i}"
        );
    }
    // The budget bounded the rate, but it kept moving ops.
    assert!(medium.held(1) > 100, "node 1 holds {}", medium.held(1));
}

/// Summaries sent by all three nodes of a line, hour by hour, when they start out holding
/// the same `ops` operations.
fn idle_summaries(ops: usize) -> Vec<u64> {
    let author = *key(9).verifying_key().as_bytes();
    let mut store = MemoryStore::default();
    for (seq, op) in chat(9, ops).into_iter().enumerate() {
        store.insert(&TOPIC, &author, seq as u64, op);
    }
    let mut medium = Medium::line(3, &[TOPIC]);
    for (i, node) in medium.nodes.iter_mut().enumerate() {
        node.engine = engine(i, &[TOPIC], store.clone(), modulation(false));
    }
    let mut per_hour = Vec::new();
    let mut before = 0;
    for _ in 0..4 {
        medium.run_for(HOUR);
        let total: u64 = medium
            .nodes
            .iter()
            .map(|n| n.engine.stats(*LINK).summaries_sent)
            .sum();
        per_hour.push(total - before);
        before = total;
    }
    per_hour
}

#[test]
fn idle_summaries_fall_as_trickle_predicts_whatever_is_stored() {
    let small = idle_summaries(1);
    let large = idle_summaries(10_000);
    // Imin 8 s, Imax 8 s × 2^8 = 34 min: after the first hour each node's interval is at its
    // maximum, so at most ⌈3600 / 2048⌉ = 2 intervals per hour, and with k = 1 a neighbour's
    // consistent summary silences the others: 3 nodes send at most 6 per hour.
    for hours in [&small, &large] {
        assert!(hours[0] >= hours[3], "summaries fall over time: {hours:?}");
        assert!(
            hours[2] <= 6 && hours[3] <= 6,
            "idle summaries per hour: {hours:?}"
        );
    }
    assert_eq!(
        small[3], large[3],
        "10 000 stored ops cost no more than one: {small:?} vs {large:?}"
    );
}

#[test]
fn a_node_that_missed_an_authors_key_asks_for_it() {
    let mut medium = Medium::line(3, &[TOPIC]);
    // Node 1 publishes; node 2 hears nothing for the first two minutes, so it misses the op
    // that carried the author's key in full, and node 1's later ops reach it with the key
    // elided.
    let deaf_until = secs(120);
    let clock = std::rc::Rc::new(std::cell::Cell::new(EngineTime::ZERO));
    let now = clock.clone();
    medium.fate = Box::new(move |_, to, _| {
        if to == 2 && now.get() < deaf_until {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    let ops = chat(1, 4);
    medium.publish(1, &TOPIC, ops[0].clone());
    while medium.now < deaf_until {
        medium.run_for(Duration::from_secs(10));
        clock.set(medium.now);
    }
    for op in &ops[1..] {
        medium.publish(1, &TOPIC, op.clone());
    }
    for _ in 0..60 {
        medium.run_for(Duration::from_secs(10));
        clock.set(medium.now);
    }
    assert_converged(&medium, 4);
    assert!(
        medium.nodes[2].engine.stats(*LINK).key_wants_sent >= 1,
        "node 2 asked for the key"
    );
    assert!(
        medium.nodes[1].engine.stats(*LINK).hellos_sent >= 1,
        "node 1 answered with a Hello"
    );
}

#[test]
fn a_bridge_forwards_between_links_but_never_echoes() {
    use lorabridge_proto::engine::LinkConfig;
    // B has the radio link shared with A, and a second link (say Reticulum, no airtime
    // budget) to C. Frames are passed by hand.
    let mut a = engine(0, &[TOPIC], MemoryStore::default(), modulation(false));
    let mut b = engine(1, &[TOPIC], MemoryStore::default(), modulation(false));
    let mut c = engine(2, &[TOPIC], MemoryStore::default(), modulation(false));
    let unicast = |topics: &[[u8; 32]]| LinkConfig {
        mtu: 383,
        budget: None,
        topics: topics.to_vec(),
    };
    let b_to_c = b.add_link(EngineTime::ZERO, unicast(&[TOPIC])).unwrap();
    let c_to_b = c.add_link(EngineTime::ZERO, unicast(&[TOPIC])).unwrap();
    assert_ne!(b_to_c, *LINK, "a second link, told apart from the radio's");
    assert_eq!(b_to_c, c_to_b, "each engine's second link");

    let op = chat(1, 1).remove(0);
    // Past the first Trickle interval, when a radio link relays only to neighbours it knows.
    let now = secs(100);
    a.handle_local_op(now, &TOPIC, op.clone()).unwrap();
    let frame = a.poll_transmit(now, *LINK).expect("A pushes its fresh op");
    a.handle_transmitted(now, *LINK, true);
    b.handle_frame(now, *LINK, &frame, None);
    assert!(matches!(
        b.poll_event(),
        Some(lorabridge_proto::engine::Event::Received { .. })
    ));

    // B passes it on over the other link at once, but not back over the radio.
    let later = now + Duration::from_secs(10);
    b.handle_timeout(later);
    let mut to_c = Vec::new();
    while let Some(frame) = b.poll_transmit(later, b_to_c) {
        b.handle_transmitted(later, b_to_c, true);
        to_c.push(frame);
    }
    for frame in &to_c {
        c.handle_frame(later, c_to_b, frame, None);
    }
    assert_eq!(c.store().len(), 1, "the op crossed to the other link");
    while b.poll_transmit(later, *LINK).is_some() {
        b.handle_transmitted(later, *LINK, true);
    }
    assert_eq!(
        b.stats(*LINK).ops_sent,
        0,
        "nothing echoed on the link it came from"
    );
    assert_eq!(b.stats(b_to_c).ops_sent, 1);
}

#[test]
fn a_missed_fresh_op_is_repaired_without_a_vector_round() {
    // Node 1 misses node 0's push of a fresh op. Each summary names the log that grew, so
    // whichever of the two hears the other's summary first knows exactly what is missing:
    // node 1 wants it from node 0, or node 0 pushes it. Neither needs to send its heights.
    let mut medium = Medium::line(2, &[TOPIC]);
    let clock = std::rc::Rc::new(std::cell::Cell::new(EngineTime::ZERO));
    let now = clock.clone();
    let deaf_until = secs(20);
    medium.fate = Box::new(move |_, to, _| {
        if to == 1 && now.get() < deaf_until {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    medium.publish(0, &TOPIC, chat(1, 1).remove(0));
    for _ in 0..60 {
        medium.run_for(Duration::from_secs(5));
        clock.set(medium.now);
    }
    assert_converged(&medium, 1);
    for node in &medium.nodes {
        assert_eq!(node.engine.stats(*LINK).vectors_sent, 0);
    }
}

#[test]
fn a_removed_link_is_forgotten_and_a_link_with_a_budget_is_never_removed() {
    use lorabridge_proto::compact;
    use lorabridge_proto::engine::{LinkConfig, LinkError};
    use lorabridge_proto::message::Message;
    let mut c = engine(2, &[TOPIC], MemoryStore::default(), modulation(false));
    assert_eq!(c.remove_link(*LINK), Err(LinkError::HasAirtime));
    let peer = LinkConfig {
        mtu: 383,
        budget: None,
        topics: vec![TOPIC],
    };
    let from_peer = c.add_link(EngineTime::ZERO, peer.clone()).unwrap();
    // The peer's seq 1 arrives before its seq 0: it waits on the peer's link for the gap.
    let ops = chat(1, 2);
    let op = |seq: usize| {
        let bytes = compact::encode(&ops[seq], &TOPIC, false).unwrap();
        Message::Op(bytes.iter().copied().collect())
    };
    let now = secs(10);
    c.handle_frame(now, from_peer, &frame_from(1, &op(1)), None);
    assert_eq!(c.poll_event(), None);
    assert_eq!(c.stats(from_peer).frames_heard, 1);

    let stats = c.remove_link(from_peer).unwrap();
    assert_eq!(stats.frames_heard, 1, "its counters come back to the owner");
    // The gap filled on the radio: the op that waited on the removed link went with it.
    c.handle_frame(now, *LINK, &frame_from(0, &op(0)), None);
    assert!(matches!(
        c.poll_event(),
        Some(lorabridge_proto::engine::Event::Received { seq: 0, .. })
    ));
    assert_eq!(c.poll_event(), None);
    assert_eq!(c.store().len(), 1);
    // The slot is reused for the next link, under a handle of its own.
    let next = c.add_link(now, peer).unwrap();
    assert_ne!(next, from_peer);
    assert_eq!(c.stats(next).frames_heard, 0);
    c.handle_timeout(now + MINUTE);
    while c.poll_transmit(now + MINUTE, next).is_some() {
        c.handle_transmitted(now + MINUTE, next, true);
    }
    assert!(c.stats(next).summaries_sent > 0, "the new link greets");
}

/// A frame carrying `message` as node `node` of the test network sends it.
fn frame_from(node: usize, message: &lorabridge_proto::message::Message) -> Vec<u8> {
    use lorabridge_proto::{FrameCodec, NetworkTag, NodeTag};
    let codec = FrameCodec::new(NetworkTag::from_network_id(&common::medium::NETWORK), None);
    let sender = NodeTag::from_key(&common::medium::node_key(node));
    codec.encode(sender, message, [0; 12], 255).unwrap()
}

/// A Want asking node 0 for seqs 0 to `to_seq` of `author`'s log in `TOPIC`.
fn want_from_node_0(author: &[u8; 32], to_seq: u64) -> lorabridge_proto::message::Message {
    use lorabridge_proto::message::{Message, Want, WantRange};
    use lorabridge_proto::{AuthorTag, NodeTag, TopicTag};
    Message::Want(Want {
        topic: TopicTag::from_topic(&TOPIC),
        responder: NodeTag::from_key(&common::medium::node_key(0)),
        ranges: [WantRange {
            author: AuthorTag::from_key(author),
            from_seq: 0,
            to_seq,
        }]
        .into_iter()
        .collect(),
    })
}

#[test]
fn only_the_neighbour_a_want_names_answers_it() {
    // Nodes 0 and 1 both hold the op; node 2 asks node 0 for it.
    let ops = chat(1, 1);
    let author = *key(1).verifying_key().as_bytes();
    let mut store = MemoryStore::default();
    store.insert(&TOPIC, &author, 0, ops[0].clone());
    let mut holders = [0, 1].map(|i| engine(i, &[TOPIC], store.clone(), modulation(false)));
    let want = want_from_node_0(&author, 0);
    let frame = frame_from(2, &want);
    let now = secs(1);
    let later = now + MINUTE;
    for holder in &mut holders {
        holder.handle_frame(now, *LINK, &frame, None);
        holder.handle_timeout(later);
        while holder.poll_transmit(later, *LINK).is_some() {
            holder.handle_transmitted(later, *LINK, true);
        }
    }
    assert_eq!(
        holders[0].stats(*LINK).ops_sent,
        1,
        "the named neighbour answers"
    );
    assert_eq!(
        holders[1].stats(*LINK).ops_sent,
        0,
        "the other stays silent"
    );
}

#[test]
fn a_summary_naming_odd_recent_logs_is_harmless() {
    use lorabridge_proto::message::{Message, RecentHeight, Summary, TopicSummary};
    use lorabridge_proto::{AuthorTag, TopicTag};
    let ops = chat(1, 2);
    let author = *key(1).verifying_key().as_bytes();
    let mut store = MemoryStore::default();
    for (seq, op) in ops.iter().enumerate() {
        store.insert(&TOPIC, &author, seq as u64, op.clone());
    }
    let mut node = engine(0, &[TOPIC], store, modulation(false));
    let topic = TopicTag::from_topic(&TOPIC);
    // A digest that matches nothing, and named logs that are empty, unknown, or claim fewer
    // ops than the whole summary: nothing of it may panic or make us want an empty range.
    let recent = [
        RecentHeight {
            topic,
            author: AuthorTag([0xee, 0xee]),
            ops: 0,
        },
        RecentHeight {
            topic,
            author: AuthorTag::from_key(&author),
            ops: 0,
        },
        RecentHeight {
            topic,
            author: AuthorTag([0xdd, 0xdd]),
            ops: u64::MAX,
        },
        RecentHeight {
            topic,
            author: AuthorTag([0xcc, 0xcc]),
            ops: u64::MAX,
        },
    ];
    let summary = Message::Summary(Summary {
        topics: [TopicSummary {
            topic,
            ops: 1,
            digest: [1, 2, 3, 4],
        }]
        .into_iter()
        .collect(),
        recent: recent.into_iter().collect(),
    });
    let frame = frame_from(2, &summary);
    let now = secs(1);
    node.handle_frame(now, *LINK, &frame, None);
    node.handle_timeout(now + MINUTE);
    while node.poll_transmit(now + MINUTE, *LINK).is_some() {
        node.handle_transmitted(now + MINUTE, *LINK, true);
    }
    assert_eq!(node.stats(*LINK).frames_rejected, 0);
}

/// The frames node 0 sends in answer to node 2's Want for `ops` of author 1: when each went
/// out and whether it carried an operation. Node 0 sends as soon as the engine lets it, as a
/// radio driver would.
fn answer_frames(ops: &[RawOp]) -> Vec<(EngineTime, Vec<u8>, bool)> {
    let author = *key(1).verifying_key().as_bytes();
    let mut store = MemoryStore::default();
    for (seq, op) in ops.iter().enumerate() {
        store.insert(&TOPIC, &author, seq as u64, op.clone());
    }
    let mut holder = engine(0, &[TOPIC], store, modulation(false));
    let want = want_from_node_0(&author, ops.len() as u64 - 1);
    let mut now = secs(1);
    holder.handle_frame(now, *LINK, &frame_from(2, &want), None);
    let mut frames = Vec::new();
    while holder.stats(*LINK).ops_sent < ops.len() as u64 && now < secs(120) {
        holder.handle_timeout(now);
        match holder.poll_transmit(now, *LINK) {
            Some(frame) => {
                let before = holder.stats(*LINK).ops_sent;
                holder.handle_transmitted(now, *LINK, true);
                frames.push((now, frame, holder.stats(*LINK).ops_sent > before));
            }
            None => now += Duration::from_millis(10),
        }
    }
    frames
}

/// An answer of many operations goes out in log order, whatever each operation's hold-off:
/// a receiver stores an operation only once it holds the one before, so each frame of an
/// in-order answer is stored as it arrives and nothing waits or is asked for again.
#[test]
fn an_answer_goes_out_in_log_order() {
    let ops = chat(1, 20);
    let frames = answer_frames(&ops);
    let mut receiver = engine(2, &[TOPIC], MemoryStore::default(), modulation(false));
    let mut op_frames = 0;
    for (at, frame, carries_op) in &frames {
        receiver.handle_frame(*at, *LINK, frame, None);
        op_frames += usize::from(*carries_op);
        assert_eq!(
            receiver.store().len(),
            op_frames,
            "op frame {op_frames} was stored on arrival, not held for a missing predecessor"
        );
    }
    assert_eq!(op_frames, 20, "the whole answer went out");
}

/// A receiver that lost one frame of an answer stays quiet while the rest of the answer
/// streams in, then asks once for what it lacks: a radio is deaf while it sends, so a Want
/// sent into the answer would lose the next frames of it.
#[test]
fn a_receiver_asks_for_a_gap_only_after_the_answer_ends() {
    let ops = chat(1, 20);
    let frames = answer_frames(&ops);
    let mut receiver = engine(2, &[TOPIC], MemoryStore::default(), modulation(false));
    let last = frames.last().expect("frames").0;
    // The sender's frames go out with its listening gap between them; the fourth
    // operation is lost.
    let mut op_frames = 0;
    for (at, frame, carries_op) in &frames {
        op_frames += usize::from(*carries_op);
        if op_frames != 4 || !carries_op {
            receiver.handle_frame(*at, *LINK, frame, None);
        }
        receiver.handle_timeout(*at);
        while receiver.poll_transmit(*at, *LINK).is_some() {
            receiver.handle_transmitted(*at, *LINK, true);
        }
    }
    let stats = receiver.stats(*LINK);
    assert_eq!(
        (stats.wants_sent, stats.vectors_sent, stats.summaries_sent),
        (0, 0, 0),
        "no repair traffic while the answer streams in"
    );
    assert_eq!(
        receiver.store().len(),
        3,
        "seqs 0-2 stored, the rest wait for seq 3"
    );
    let mut now = last;
    while receiver.stats(*LINK).wants_sent == 0 && now < last + MINUTE {
        now += Duration::from_millis(10);
        receiver.handle_timeout(now);
        while receiver.poll_transmit(now, *LINK).is_some() {
            receiver.handle_transmitted(now, *LINK, true);
        }
    }
    assert_eq!(
        receiver.stats(*LINK).wants_sent,
        1,
        "one Want after the answer"
    );
}
