//! A neighbour that forges, replays or floods frames, against engines in the test medium.
//! Each test names the finding of the security review it checks (issue #13).

mod common;

use std::time::Duration;

use common::medium::{Fate, Medium, NETWORK, keyed_engine, modulation, node_key};
use common::{key, log};
use lorabridge_proto::engine::EngineTime;
use lorabridge_proto::message::{Hello, Message, Vector};
use lorabridge_proto::operation::RawOp;
use lorabridge_proto::{AuthorTag, FrameCodec, NetworkTag, NodeTag, TopicTag};

const TOPIC: [u8; 32] = [0x42; 32];
const MINUTE: Duration = Duration::from_secs(60);

fn chat(author: u8, n: usize) -> Vec<RawOp> {
    let payloads: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("message {i} from {author}: hello neighbours").into_bytes())
        .collect();
    log(&key(author), &TOPIC, &payloads)
}

/// A frame as a stranger with tag `sender` would send it, without a region key.
fn forged(sender: [u8; 2], message: &Message) -> Vec<u8> {
    FrameCodec::new(NetworkTag::from_network_id(&NETWORK), None)
        .encode(NodeTag(sender), message, [9; 12], 255)
        .expect("encodes")
}

/// "I hold nothing in this topic": every honest hearer would push what it holds.
fn empty_vector() -> Message {
    Message::Vector(Vector {
        topic: TopicTag::from_topic(&TOPIC),
        from: AuthorTag([0, 0]),
        to: AuthorTag([0xff, 0xff]),
        heights: Default::default(),
    })
}

/// Airtime of all frames node `i` sent from `since` on.
fn airtime_since(medium: &Medium, i: usize, since: EngineTime) -> Duration {
    medium.nodes[i]
        .sends
        .iter()
        .filter(|(at, _)| *at >= since)
        .map(|(_, airtime)| *airtime)
        .sum()
}

/// Four nodes that all hear each other in EU868's 1 % sub-band (36 s of air an hour) and
/// hold the same 40 operations.
fn converged_clique() -> Medium {
    let mut medium = Medium::new(4, &[TOPIC], |_, _| true, true);
    for op in chat(1, 40) {
        medium.publish(0, &TOPIC, op);
        medium.run_for(Duration::from_secs(5));
    }
    medium.run_for(60 * MINUTE);
    for i in 0..4 {
        assert_eq!(medium.held(i), 40);
    }
    medium
}

/// Finding 1: a forged (or replayed) empty Vector, heard by everyone, made every hearer
/// queue up to 32 pushes, and about 17 an hour used up a bridge's whole budget. Answers are
/// now bounded (a back-off per operation and link, half the budget at most), and the last
/// tenth of the budget stays for anti-entropy: under the attack, a new operation and its
/// repair still get through.
#[test]
fn forged_vectors_cannot_use_up_the_budget() {
    let mut medium = converged_clique();
    let frame = forged([0xde, 0xad], &empty_vector());
    let attacker_per_frame = modulation(true).time_on_air(frame.len());
    let start = medium.now;
    const REPLAYS: u32 = 17;
    for replay in 0..REPLAYS {
        for i in 0..4 {
            medium.inject(i, &frame);
        }
        if replay == 8 {
            // Half-way through the attack node 3 publishes.
            medium.publish(3, &TOPIC, chat(2, 1).remove(0));
        }
        medium.run_for(Duration::from_secs(210));
    }
    let attacker = attacker_per_frame * REPLAYS;
    let answers: Duration = (0..4).map(|i| airtime_since(&medium, i, start)).sum();
    println!(
        "{{\"test\": \"forged_vector_amplification\", \"attacker_s\": {:.2}, \"answers_s\": {:.2}, \"amplification\": {:.1}}}",
        attacker.as_secs_f64(),
        answers.as_secs_f64(),
        answers.as_secs_f64() / attacker.as_secs_f64()
    );
    for i in 0..4 {
        assert_eq!(
            medium.held(i),
            41,
            "node {i} got the op published during the attack"
        );
        let used = airtime_since(&medium, i, start);
        assert!(
            used <= Duration::from_secs(36) / 2 + Duration::from_secs(4),
            "node {i} spent {used:?} of its 36 s in the attack hour"
        );
    }
}

/// The empty Vector again, now under a sender tag invented for each frame, as an attacker
/// that knows the network would send it: no bound per requester can hold it, so the answers
/// that strangers draw come from one pool per link, 32 operations an hour. Before the pool,
/// each node answered every forged Vector that found an operation past its back-off, and
/// spent the answers' whole share of the hour: 72 operation frames per node here.
/// A neighbour whose operations checked out is no stranger: its request is still met in full.
#[test]
fn forged_vectors_under_invented_tags_draw_one_pool_an_hour() {
    use common::medium::LINK;
    let mut medium = converged_clique();
    let ops_before: Vec<u64> = (0..4)
        .map(|i| medium.nodes[i].engine.stats(*LINK).ops_sent)
        .collect();
    for minute in 0..60u16 {
        let frame = forged((0x8000 + minute).to_be_bytes(), &empty_vector());
        for i in 0..4 {
            medium.inject(i, &frame);
        }
        medium.run_for(MINUTE);
    }
    let answered: Vec<u64> = (0..4)
        .map(|i| medium.nodes[i].engine.stats(*LINK).ops_sent - ops_before[i])
        .collect();
    println!(
        "{{\"test\": \"forged_vectors_invented_tags\", \"forged\": 60, \"ops_sent\": {answered:?}}}"
    );
    for (i, ops) in answered.iter().enumerate() {
        assert!(*ops >= 1, "node {i} answered a stranger at all");
        assert!(
            *ops <= 32,
            "node {i} sent {ops} operations for strangers in an hour"
        );
    }
}

/// An attacker that keeps one tag for ten minutes is no stranger any more, but until an
/// operation it sends checks out it draws on an allowance of its own, 128 operations an
/// hour. Before, a node holding 200 operations on a 10 % band answered each forged Vector
/// with every operation past its back-off, 32 at a time: 288 in the hour here.
#[test]
fn a_tag_kept_for_ten_minutes_draws_its_own_allowance() {
    use common::medium::LINK;
    let mut medium = Medium::new(1, &[TOPIC], |_, _| false, false);
    for op in chat(1, 200) {
        medium.publish(0, &TOPIC, op);
    }
    medium.run_for(10 * MINUTE);
    let before = medium.nodes[0].engine.stats(*LINK).ops_sent;
    let frame = forged([0xde, 0xad], &empty_vector());
    for _ in 0..60 {
        medium.inject(0, &frame);
        medium.run_for(MINUTE);
    }
    let answered = medium.nodes[0].engine.stats(*LINK).ops_sent - before;
    println!("{{\"test\": \"kept_tag\", \"forged\": 60, \"ops_sent\": {answered}}}");
    // 32 from the strangers' pool in its first ten minutes, then its own 128.
    assert!(
        answered <= 32 + 128,
        "{answered} operations for one forged tag in an hour"
    );
    assert!(
        answered > 32,
        "an acquaintance is answered beyond the strangers' pool"
    );
}

/// The strangers' pool must not starve an honest newcomer: a bridge that joins late, holds
/// nothing and publishes nothing is a stranger at first, but once its tag has been heard for
/// `ACQUAINTANCE` it is known, and the rest of its catch-up is answered in full.
#[test]
fn a_quiet_newcomer_catches_up_beyond_the_strangers_pool() {
    use common::medium::engine;
    use lorabridge_proto::engine::{ACQUAINTANCE, MemoryStore};
    let mut medium = Medium::new(1, &[TOPIC], |_, _| true, false);
    for op in chat(1, 100) {
        medium.publish(0, &TOPIC, op);
        medium.run_for(Duration::from_secs(2));
    }
    let m = medium.modulation;
    medium.add_node(engine(1, &[TOPIC], MemoryStore::default(), m), |_| true);
    medium.run_for(ACQUAINTANCE / 2);
    let early = medium.held(1);
    medium.run_for(ACQUAINTANCE * 3);
    println!(
        "{{\"test\": \"quiet_newcomer\", \"held_at_5_min\": {early}, \"held_at_35_min\": {}}}",
        medium.held(1)
    );
    assert!(early <= 32 + 1, "a stranger draws from the pool: {early}");
    assert_eq!(
        medium.held(1),
        100,
        "known after ten minutes, it gets everything"
    );
}

/// Finding 7: the duty-cycle ledger started empty at every start, so a bridge restarting
/// (systemd's Restart=always after a crash) got a fresh hourly budget each time. The daemon
/// keeps its sends on disk and restores them; here each restart restores the sends of the
/// last hour. Three restarts within an hour, each followed by a neighbour wanting every op:
/// the hour's airtime stays within the 1 % band's 36 s.
#[test]
fn restarts_do_not_renew_the_duty_cycle_budget() {
    let mut medium = Medium::new(2, &[TOPIC], |_, _| true, true);
    let ops = chat(1, 300);
    let mut store = lorabridge_proto::engine::MemoryStore::default();
    for (seq, op) in ops.iter().enumerate() {
        use lorabridge_proto::engine::OpStore;
        store.insert(
            &TOPIC,
            key(1).verifying_key().as_bytes(),
            seq as u64,
            op.clone(),
        );
    }
    let start = medium.now;
    for restart in 0..4 {
        // Node 0 starts (again) on its store, with the sends of the last hour restored.
        let mut engine = common::medium::engine(0, &[TOPIC], store.clone(), modulation(true));
        let hour_ago = medium.now.saturating_sub(Duration::from_secs(3600));
        let past: Vec<_> = medium.nodes[0]
            .sends
            .iter()
            .filter(|(at, _)| *at >= hour_ago)
            .copied()
            .collect();
        engine.restore_airtime(*common::medium::LINK, past);
        medium.nodes[0].engine = engine;
        // A neighbour that holds nothing asks for everything, twice a minute.
        for _ in 0..20 {
            medium.inject(0, &forged([0xbe, 0xef], &empty_vector()));
            medium.run_for(Duration::from_secs(30));
        }
        let _ = restart;
        store = medium.nodes[0].engine.store().clone();
    }
    let used = airtime_since(&medium, 0, start);
    println!(
        "{{\"test\": \"restarts_and_duty_cycle\", \"span_s\": {}, \"airtime_s\": {:.1}}}",
        medium.now.duration_since(start).as_secs(),
        used.as_secs_f64()
    );
    // Four starts in 40 minutes: every hour-long window starting at a send is within budget.
    for (from, _) in &medium.nodes[0].sends {
        let until = *from + Duration::from_secs(3600);
        let in_window: Duration = medium.nodes[0]
            .sends
            .iter()
            .map(|(s, a)| (*s + *a).min(until).duration_since((*s).max(*from)))
            .sum();
        assert!(
            in_window <= Duration::from_secs(36),
            "{in_window:?} of air in the hour from {from:?}"
        );
    }
}

/// Two nodes sharing a region key, node 0 holding 40 ops and node 1 none.
fn sealed_pair(key_bytes: [u8; 32]) -> Medium {
    use lorabridge_proto::engine::{Budget, Engine, EngineConfig, LinkConfig};
    let mut medium = Medium::new(2, &[TOPIC], |_, _| true, false);
    for i in 0..2 {
        let mut config = EngineConfig::new(NETWORK, common::medium::node_key(i), [i as u8; 32]);
        config.region_key = Some(key_bytes);
        config.epoch = 7;
        let mut engine = Engine::new(config, lorabridge_proto::engine::MemoryStore::default());
        engine
            .add_link(
                medium.now,
                LinkConfig {
                    mtu: 255,
                    budget: Some(Budget {
                        on_air: lorabridge_hardware::OnAir::plain(modulation(false)),
                        plan: lorabridge_hardware::RegionPlan::builtin("EU868").unwrap(),
                    }),
                    topics: vec![TOPIC],
                },
            )
            .unwrap();
        medium.nodes[i].engine = engine;
    }
    medium
}

/// Finding 2: with a region key, frames were authenticated but could be replayed (random
/// nonces, no counter, no window). A recorded Vector of node 1's ("I hold nothing") made
/// node 0 answer again, every time it was played back.
#[test]
fn replayed_sealed_frames_are_refused() {
    let key_bytes = [0x5a; 32];
    let mut medium = sealed_pair(key_bytes);
    // Record what node 1 sends.
    let recorded = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let tap = recorded.clone();
    medium.fate = Box::new(move |from, _to, frame| {
        if from == 1 {
            tap.borrow_mut().push(frame.to_vec());
        }
        common::medium::Fate::Deliver
    });
    for op in chat(1, 40) {
        medium.publish(0, &TOPIC, op);
    }
    medium.run_for(30 * MINUTE);
    assert_eq!(medium.held(1), 40, "the pair converged");
    let frames = recorded.borrow().clone();
    assert!(!frames.is_empty());
    let rejected_before = medium.nodes[0]
        .engine
        .stats(*common::medium::LINK)
        .frames_rejected;
    let sent_before = medium.nodes[0].engine.stats(*common::medium::LINK).ops_sent;
    // An eavesdropper plays everything node 1 said back to node 0, an hour later.
    medium.run_for(60 * MINUTE);
    for frame in &frames {
        medium.inject(0, frame);
    }
    medium.run_for(10 * MINUTE);
    let stats = medium.nodes[0].engine.stats(*common::medium::LINK);
    assert_eq!(
        stats.frames_rejected - rejected_before,
        frames.len() as u64,
        "every replayed frame is refused"
    );
    assert_eq!(stats.ops_sent, sent_before, "and draws no answer");
}

/// Finding 4: an operation over the mesh's 8 KiB was never sent, and the same author's
/// later operations then never reached radio-only bridges: they waited for its backlink.
/// Now it crosses without its body (the header keeps the log whole).
#[test]
fn an_oversized_operation_does_not_stall_its_log() {
    let mut medium = Medium::line(2, &[TOPIC]);
    let ops = log(
        &key(3),
        &TOPIC,
        &[vec![7; 20_000], b"small, after the big one".to_vec()],
    );
    for op in &ops {
        medium.publish(0, &TOPIC, op.clone());
    }
    medium.run_for(30 * MINUTE);
    assert_eq!(medium.held(1), 2, "both crossed");
    let received = &medium.nodes[1].received;
    let big = received
        .iter()
        .find(|op| op.id() == ops[0].id())
        .expect("the big one");
    assert_eq!(big.body, None, "its body stays behind");
    let small = received
        .iter()
        .find(|op| op.id() == ops[1].id())
        .expect("the small one");
    assert_eq!(small.body, ops[1].body, "with its body");
}

/// An author's log of `n` chained operations in `TOPIC`, op `prune_at` prune-flagged.
fn log_pruned_at(author: u8, n: u32, prune_at: u32) -> Vec<RawOp> {
    use lorabridge_proto::operation::{NewOp, lores_body, sign};
    let mut backlink = None;
    (0..n)
        .map(|seq| {
            let body = lores_body(format!("entry {seq}").as_bytes());
            let op = sign(
                &key(author),
                &NewOp {
                    topic: &TOPIC,
                    seq,
                    backlink,
                    timestamp: common::TIMESTAMP + u64::from(seq),
                    prune: seq == prune_at,
                    body: Some(&body),
                },
            );
            backlink = Some(op.id());
            op
        })
        .collect()
}

/// Finding 3: repair walked every log from seq 0, so a log whose held seqs start at 32 or
/// more (pruned) never got repaired: the budget of each answer went to seqs not held. Node 0
/// holds 40..45 of a log pruned at 40; node 1 holds nothing of it, or 0..10 from before the
/// prune.
#[test]
fn a_pruned_log_is_repaired() {
    use lorabridge_proto::engine::{MemoryStore, OpStore};
    let author = *key(4).verifying_key().as_bytes();
    let ops = log_pruned_at(4, 45, 40);
    for held_before in [0, 10] {
        let mut medium = Medium::line(2, &[TOPIC]);
        let mut pruned = MemoryStore::default();
        let mut old = MemoryStore::default();
        for (seq, op) in ops.iter().enumerate() {
            if seq >= 40 {
                pruned.insert(&TOPIC, &author, seq as u64, op.clone());
            } else if seq < held_before {
                old.insert(&TOPIC, &author, seq as u64, op.clone());
            }
        }
        medium.nodes[0].engine = common::medium::engine(0, &[TOPIC], pruned, modulation(false));
        medium.nodes[1].engine = common::medium::engine(1, &[TOPIC], old, modulation(false));
        medium.run_for(30 * MINUTE);
        let store = medium.nodes[1].engine.store();
        assert_eq!(
            store.heights(&TOPIC),
            vec![(author, 45)],
            "holding {held_before} before"
        );
        assert_eq!(store.len(), 5, "the prune dropped what came before");
        for seq in 40..45 {
            assert_eq!(store.op(&TOPIC, &author, seq), Some(&ops[seq as usize]));
        }
    }
}

/// Finding 3, its other half: an operation at a high seq with no prune flag (here a
/// self-signed one in the full form, which carries its whole header) was stored with
/// nothing below it, a log no repair could ever fill. It now waits for its predecessors.
#[test]
fn an_operation_far_ahead_of_its_log_is_not_stored() {
    use lorabridge_proto::operation::{NewOp, sign};
    let mut medium = Medium::line(2, &[TOPIC]);
    let far = sign(
        &key(5),
        &NewOp {
            topic: &TOPIC,
            seq: 1000,
            backlink: Some([0xab; 32]),
            timestamp: common::TIMESTAMP,
            prune: false,
            body: None,
        },
    );
    // The full form: flags (full, no body) | topic tag | header length | header.
    let mut bytes = vec![0x80];
    bytes.extend_from_slice(&TopicTag::from_topic(&TOPIC).0);
    let mut len = far.header.len();
    while len >= 0x80 {
        bytes.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    bytes.push(len as u8);
    bytes.extend_from_slice(&far.header);
    let message = Message::Op(bytes.into_iter().collect());
    medium.inject(1, &forged([0xfa, 0x11], &message));
    medium.run_for(5 * MINUTE);
    assert_eq!(medium.held(1), 0, "seq 1000 stands alone: not stored");
    // Its log's first operations, published later, are stored as usual.
    medium.publish(0, &TOPIC, log_pruned_at(5, 1, u32::MAX).remove(0));
    medium.run_for(5 * MINUTE);
    assert_eq!(medium.held(1), 1);
}

/// Finding 8: node tags are two bytes of the node key, and frames with our own tag were
/// dropped as our own, so two bridges sharing a tag never synced. Now only frames we sent are
/// ours; a neighbour with our tag makes us take another, and both then sync.
#[test]
fn bridges_that_share_a_tag_still_sync() {
    let mut medium = Medium::new(0, &[TOPIC], |_, _| true, false);
    let m = modulation(false);
    let a = node_key(1);
    let mut b = a;
    b[31] ^= 1;
    assert_eq!(NodeTag::from_key(&a), NodeTag::from_key(&b));
    medium.add_node(keyed_engine(a, 0, &[TOPIC], Default::default(), m), |_| {
        true
    });
    medium.add_node(keyed_engine(b, 1, &[TOPIC], Default::default(), m), |_| {
        true
    });
    for op in chat(1, 5) {
        medium.publish(0, &TOPIC, op);
    }
    for op in chat(2, 5) {
        medium.publish(1, &TOPIC, op);
    }
    medium.run_for(10 * MINUTE);
    assert_eq!(
        (medium.held(0), medium.held(1)),
        (10, 10),
        "both hold both logs"
    );
    let retagged = medium.nodes[0].retagged + medium.nodes[1].retagged;
    assert!((1..=2).contains(&retagged), "{retagged} changes of tag");
}

/// Delivers every frame, keeping a copy of each that node 0 sends.
fn record_frames_of_node_0(medium: &mut Medium) -> std::rc::Rc<std::cell::RefCell<Vec<Vec<u8>>>> {
    let sent = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let record = sent.clone();
    medium.fate = Box::new(move |from, _, frame| {
        if from == 0 {
            record.borrow_mut().push(frame.to_vec());
        }
        Fate::Deliver
    });
    sent
}

/// A replay of a frame of ours from long ago changes no tag either: a tag taken anew is a
/// stranger's at every neighbour (answered only from the strangers' pool), so an attacker
/// replaying each bridge's old frames could otherwise keep every tag new. With the last 32
/// frames remembered, the replay of the first of 100 made node 0 take a new tag.
#[test]
fn an_old_frame_of_ours_replayed_changes_no_tag() {
    let mut medium = Medium::line(2, &[TOPIC]);
    let sent = record_frames_of_node_0(&mut medium);
    for op in chat(1, 100) {
        medium.publish(0, &TOPIC, op);
        medium.run_for(MINUTE);
    }
    let sent = sent.borrow().clone();
    assert!(sent.len() >= 100, "node 0 sent {} frames", sent.len());
    medium.inject(0, &sent[0]);
    assert_eq!(medium.nodes[0].retagged, 0, "no change of tag");
}

/// Our own latest frames heard back (a replay, or an echo) change nothing.
#[test]
fn our_own_frames_heard_back_are_ignored() {
    let mut medium = Medium::line(2, &[TOPIC]);
    let sent = record_frames_of_node_0(&mut medium);
    for op in chat(1, 3) {
        medium.publish(0, &TOPIC, op);
    }
    medium.run_for(MINUTE);
    let sent = sent.borrow().clone();
    assert!(sent.len() >= 2, "node 0 sent {} frames", sent.len());
    let (rejected, held) = (medium.nodes[0].rejected, medium.held(0));
    for frame in sent.iter().rev().take(8).rev() {
        medium.inject(0, frame);
    }
    assert_eq!(medium.nodes[0].retagged, 0, "no change of tag");
    assert_eq!(medium.nodes[0].rejected, rejected);
    assert_eq!(medium.held(0), held);
}

/// Finding 6: Hello frames carry any keys. 683 Hellos of 6 keys evicted every known key,
/// and keys claimed under a known author's tag came before it among the 4 the decoder tries,
/// so that author's ops failed their signature check. Keys that Hellos claim are now kept
/// apart from the keys of operations that checked out, and never come before them.
#[test]
fn hellos_cannot_poison_a_known_authors_key() {
    let mut medium = Medium::line(2, &[TOPIC]);
    let ops = chat(1, 6);
    for op in &ops[..3] {
        medium.publish(0, &TOPIC, op.clone());
    }
    medium.run_for(10 * MINUTE);
    assert_eq!(medium.held(1), 3);
    let author = *key(1).verifying_key().as_bytes();
    for i in 0..700u32 {
        let mut keys = heapless::Vec::new();
        for j in 0..6u32 {
            let mut junk = [0u8; 32];
            junk[..2].copy_from_slice(&AuthorTag::from_key(&author).0);
            junk[2..6].copy_from_slice(&i.to_be_bytes());
            junk[6..10].copy_from_slice(&j.to_be_bytes());
            keys.push(junk).unwrap();
        }
        medium.inject(1, &forged([0xee, 0xee], &Message::Hello(Hello { keys })));
    }
    for op in &ops[3..] {
        medium.publish(0, &TOPIC, op.clone());
    }
    medium.run_for(10 * MINUTE);
    assert_eq!(medium.held(1), 6, "the author's later ops still decode");
}

/// A node stays quiet while a neighbour sends operations, so that it does not talk into an
/// answer it is receiving (issue 11). A stranger sending a short junk "operation" every half
/// second would then keep it quiet for as long as it likes, at a few percent of its own
/// airtime: a jammer needs all of it. The quiet is capped, so a new operation still gets out
/// and across during such an attack.
#[test]
fn junk_operations_cannot_keep_a_node_quiet() {
    let mut medium = Medium::line(2, &[TOPIC]);
    medium.run_for(2 * MINUTE);
    let junk = forged([0xde, 0xad], &Message::Op([0x55; 24].into_iter().collect()));
    let op = chat(1, 1).remove(0);
    let attack = Duration::from_millis(500);
    for tick in 0..(5 * 60 * 2) {
        for i in 0..2 {
            medium.inject(i, &junk);
        }
        if tick == 60 {
            medium.publish(0, &TOPIC, op.clone());
        }
        medium.run_for(attack);
    }
    assert_eq!(
        medium.held(1),
        1,
        "the operation published 30 s into the attack crossed before it ended"
    );
}

/// An operation as its author's neighbour sends it: compact, the author key elided or not.
fn op_frame(sender: [u8; 2], op: &RawOp, elide_author: bool) -> Vec<u8> {
    let bytes = lorabridge_proto::compact::encode(op, &TOPIC, elide_author).expect("encodes");
    forged(sender, &Message::Op(bytes.into_iter().collect()))
}

/// Operations of authors nobody here knows, their keys left out: what a stranger sends to
/// make every hearer hold them and ask for the keys. Each is signed by some key, as junk
/// would be; it cannot be checked before the key is known.
fn unkeyed_junk(n: u8) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| op_frame([0xde, 0xad], &chat(100 + i, 1).remove(0), true))
        .collect()
}

/// Finding 6: operations waiting for their author's key or their predecessor were kept in
/// 64 slots, the nearest to decodable first, and an unkeyed op counted as nearest of all:
/// 64 junk ops of unknown authors evicted an honest operation that waited for its
/// predecessor, so it had to be sent again. Operations of authors whose ops checked out
/// here now keep their slots.
#[test]
fn junk_cannot_evict_an_honest_operation_waiting_for_its_predecessor() {
    let mut medium = Medium::new(1, &[TOPIC], |_, _| true, true);
    let honest = chat(1, 3);
    medium.inject(0, &op_frame([0x0a, 0x01], &honest[0], false));
    assert_eq!(medium.held(0), 1);
    // Seq 2 comes before seq 1 (a loss in a burst): it waits.
    medium.inject(0, &op_frame([0x0a, 0x01], &honest[2], true));
    assert_eq!(medium.held(0), 1);
    for junk in unkeyed_junk(150) {
        medium.inject(0, &junk);
    }
    medium.inject(0, &op_frame([0x0a, 0x01], &honest[1], true));
    assert_eq!(medium.held(0), 3, "seq 2 was still held when seq 1 came");
}

/// Finding 6: every hearer of an unkeyed junk op queued a KeyWant for its tag, so a
/// stranger's junk cost every honest node a control frame each. KeyWants on a link are now
/// merged, and spaced by a gap that doubles from 30 s to at most 5 min while no Hello
/// answers them: at most 5 in the first 10 minutes.
#[test]
fn junk_from_unknown_authors_draws_few_key_wants() {
    let mut medium = Medium::new(1, &[TOPIC], |_, _| true, true);
    medium.run_for(MINUTE);
    let junk = unkeyed_junk(150);
    let before = medium.nodes[0]
        .engine
        .stats(*common::medium::LINK)
        .key_wants_sent;
    // One junk op every 4 s for 10 minutes.
    for frame in &junk {
        medium.inject(0, frame);
        medium.run_for(Duration::from_secs(4));
    }
    let sent = medium.nodes[0]
        .engine
        .stats(*common::medium::LINK)
        .key_wants_sent
        - before;
    println!(
        "{{\"test\": \"junk_key_wants\", \"junk_ops\": {}, \"key_wants\": {sent}}}",
        junk.len()
    );
    assert!(
        (1..=5).contains(&sent),
        "{sent} KeyWants for {} junk ops in 10 minutes",
        junk.len()
    );
}

/// Finding 6: a KeyWant naming a known author drew a Hello with the key from every hearer,
/// each time: a replayed 12-byte KeyWant bought about 50 bytes of every node's airtime. A
/// node now tells a key on a link at most once a minute (`KEY_RETELL`).
#[test]
fn replayed_key_wants_draw_a_key_at_most_once_a_minute() {
    let mut medium = Medium::line(2, &[TOPIC]);
    for op in chat(1, 3) {
        medium.publish(0, &TOPIC, op);
    }
    medium.run_for(10 * MINUTE);
    assert_eq!(medium.held(1), 3);
    let author = *key(1).verifying_key().as_bytes();
    let mut tags = heapless::Vec::new();
    tags.push(AuthorTag::from_key(&author)).unwrap();
    let ask = forged([0xde, 0xad], &Message::KeyWant(tags));
    let hellos = |m: &Medium| -> u64 {
        (0..2)
            .map(|i| m.nodes[i].engine.stats(*common::medium::LINK).hellos_sent)
            .sum()
    };
    let before = hellos(&medium);
    // A replay every 10 s for 20 minutes, heard by both nodes.
    for _ in 0..120 {
        for i in 0..2 {
            medium.inject(i, &ask);
        }
        medium.run_for(Duration::from_secs(10));
    }
    let sent = hellos(&medium) - before;
    println!("{{\"test\": \"replayed_key_wants\", \"replays\": 120, \"hellos\": {sent}}}");
    assert!(
        sent <= 2 * 21,
        "{sent} Hellos for 120 replayed KeyWants in 20 minutes"
    );
    assert!(sent >= 1, "an honest KeyWant is still answered");
}

/// Finding 6: sender tags are not authenticated, and 16 partial operations were kept in all,
/// the least recently heard dropped first: strangers starting 16 fragments under made-up tags
/// pushed out an honest neighbour's operation halfway through. Partials of senders whose
/// operations checked out now keep their slots.
#[test]
fn spoofed_senders_cannot_evict_an_honest_partial_operation() {
    use lorabridge_proto::OpTag;
    use lorabridge_proto::message::Fragment;
    let mut medium = Medium::new(1, &[TOPIC], |_, _| true, true);
    let honest = log(&key(1), &TOPIC, &[b"hello".to_vec(), vec![b'x'; 400]]);
    let neighbour = [0x0b, 0x01];
    medium.inject(0, &op_frame(neighbour, &honest[0], false));
    assert_eq!(medium.held(0), 1);
    let bytes = lorabridge_proto::compact::encode(&honest[1], &TOPIC, true).expect("encodes");
    let half = bytes.len().div_ceil(2);
    let fragment = |sender: [u8; 2], op: OpTag, index: u8, data: &[u8]| {
        forged(
            sender,
            &Message::Fragment(Fragment {
                op,
                index,
                count: 2,
                data: data.iter().copied().collect(),
            }),
        )
    };
    let tag = OpTag::from_id(&honest[1].id());
    medium.inject(0, &fragment(neighbour, tag, 0, &bytes[..half]));
    for stranger in 0..16u8 {
        let junk = OpTag::from_id(&[stranger; 32]);
        medium.inject(0, &fragment([0xe0, stranger], junk, 0, &[0x55; 100]));
    }
    medium.inject(0, &fragment(neighbour, tag, 1, &bytes[half..]));
    assert_eq!(medium.held(0), 2, "the neighbour's operation was completed");
}
