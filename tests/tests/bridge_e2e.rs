//! Real bridges (p2panda nodes on SQLite, gRPC servers, the sync engine over real serial
//! drivers talking to emulated LoRa modules) in one process: A and B share iroh on loopback,
//! B and C share only the radio.

use std::time::Duration;

use std::sync::Arc;

mod common;
use common::{NETWORK, arrival, arrival_any, chat_topic, publish, status, subscribe, transport};

use lorabridge::grpc::status::TransportStatus;
use lorabridge_proto::message::Message;
use lorabridge_proto::{FrameCodec, NetworkTag, NodeTag, compact};
use lorabridge_sim::Scenario;
use lorabridge_sim::air::PhysicalHub;
use lorabridge_testkit::neighbourhood::{Member, Neighbourhood, demo_modulation};

/// A and B share iroh on loopback; B and C share only the radio.
async fn iroh_a_b_radio_b_c() -> Neighbourhood {
    let members = [
        Member::new("A", true, false),
        Member::new("B", true, true),
        Member::new("C", false, true),
    ];
    Neighbourhood::start(NETWORK, &members, &[chat_topic()])
        .await
        .expect("neighbourhood starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_cross_iroh_and_radio_both_ways() {
    let n = iroh_a_b_radio_b_c().await;
    let mut at_a = subscribe(n.bridge("A").grpc_addr).await;
    let mut at_c = subscribe(n.bridge("C").grpc_addr).await;

    publish(n.bridge("A").grpc_addr, b"hello from A", b"").await;
    let seen_at_a = arrival(&mut at_a, b"hello from A").await;
    let seen_at_c = arrival(&mut at_c, b"hello from A").await;
    assert_eq!(seen_at_c.author, seen_at_a.author, "same author");
    assert_eq!(
        seen_at_c.operation_id, seen_at_a.operation_id,
        "same operation id"
    );
    assert_eq!(seen_at_c.topic_id, chat_topic().topic.to_vec());
    assert_eq!(
        seen_at_a.author,
        n.bridge("A").node.id().as_bytes().to_vec()
    );

    publish(n.bridge("C").grpc_addr, b"hello from C", b"").await;
    let back_at_c = arrival(&mut at_c, b"hello from C").await;
    let back_at_a = arrival(&mut at_a, b"hello from C").await;
    assert_eq!(back_at_a.operation_id, back_at_c.operation_id);
    assert_eq!(
        back_at_a.author,
        n.bridge("C").node.id().as_bytes().to_vec()
    );
    n.stop().await;
}

/// A bridge on an SX1262 HAT (the SX126x driver over SPI, on an emulated chip) and a bridge
/// on a RAK3172 (the RUI3 driver on its emulated module) share only the air, and carry
/// operations both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sx1262_bridge_and_a_rak3172_bridge_carry_operations_both_ways() {
    let members = [
        Member::new("SPI", false, true).with_sx1262(),
        Member::new("RAK", false, true),
    ];
    let n = Neighbourhood::start(NETWORK, &members, &[chat_topic()])
        .await
        .expect("neighbourhood starts");
    assert!(n.chip("SPI").is_some() && n.modem("SPI").is_none());
    let mut at_spi = subscribe(n.bridge("SPI").grpc_addr).await;
    let mut at_rak = subscribe(n.bridge("RAK").grpc_addr).await;

    publish(n.bridge("SPI").grpc_addr, b"from the SX1262", b"").await;
    let there = arrival(&mut at_rak, b"from the SX1262").await;
    assert_eq!(there.author, n.bridge("SPI").node.id().as_bytes().to_vec());

    publish(n.bridge("RAK").grpc_addr, b"from the RAK3172", b"").await;
    let back = arrival(&mut at_spi, b"from the RAK3172").await;
    assert_eq!(back.author, n.bridge("RAK").node.id().as_bytes().to_vec());
    let chip = n.chip("SPI").expect("chip").view();
    assert!(chip.transmitted >= 1, "{chip:?}");
    assert_eq!(n.chip("SPI").expect("chip").busy_violations(), 0);
    n.stop().await;
}

/// The mixed-radio mesh at the bridge level: a bridge on an SX1276 HAT (the SX127x driver on
/// an emulated chip), one on an SX1262 HAT and one on a RAK3172 share only the air; an
/// operation from the SX1276 reaches both others, and theirs reach it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sx1276_bridge_carries_operations_with_sx1262_and_rak3172_bridges() {
    let members = [
        Member::new("RFM", false, true).with_sx1276(),
        Member::new("SPI", false, true).with_sx1262(),
        Member::new("RAK", false, true),
    ];
    let n = Neighbourhood::start(NETWORK, &members, &[chat_topic()])
        .await
        .expect("neighbourhood starts");
    assert!(n.sx1276_chip("RFM").is_some() && n.modem("RFM").is_none());
    let mut at_rfm = subscribe(n.bridge("RFM").grpc_addr).await;
    let mut at_spi = subscribe(n.bridge("SPI").grpc_addr).await;
    let mut at_rak = subscribe(n.bridge("RAK").grpc_addr).await;

    publish(n.bridge("RFM").grpc_addr, b"from the SX1276", b"").await;
    let rfm = n.bridge("RFM").node.id().as_bytes().to_vec();
    assert_eq!(arrival(&mut at_spi, b"from the SX1276").await.author, rfm);
    assert_eq!(arrival(&mut at_rak, b"from the SX1276").await.author, rfm);

    publish(n.bridge("RAK").grpc_addr, b"from the RAK3172", b"").await;
    let back = arrival(&mut at_rfm, b"from the RAK3172").await;
    assert_eq!(back.author, n.bridge("RAK").node.id().as_bytes().to_vec());
    publish(n.bridge("SPI").grpc_addr, b"from the SX1262", b"").await;
    let back = arrival(&mut at_rfm, b"from the SX1262").await;
    assert_eq!(back.author, n.bridge("SPI").node.id().as_bytes().to_vec());
    let chip = n.sx1276_chip("RFM").expect("chip").view();
    assert!(chip.transmitted >= 1, "{chip:?}");
    n.stop().await;
}

/// A bridge on an RNode shares the channel with a RAK3172 bridge and an SX1262 bridge once
/// those send in RNode framing (`rnode_framing = true`): the RNode firmware's header byte is
/// added and taken off on their side, and operations cross every way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rnode_bridge_carries_operations_with_bridges_in_rnode_framing() {
    let members = [
        Member::new("RNODE", false, true).with_rnode(),
        Member::new("RAK", false, true).with_rnode_framing(),
        Member::new("SPI", false, true)
            .with_sx1262()
            .with_rnode_framing(),
    ];
    let n = Neighbourhood::start(NETWORK, &members, &[chat_topic()])
        .await
        .expect("neighbourhood starts");
    let mut at_rnode = subscribe(n.bridge("RNODE").grpc_addr).await;
    let mut at_rak = subscribe(n.bridge("RAK").grpc_addr).await;
    let mut at_spi = subscribe(n.bridge("SPI").grpc_addr).await;

    publish(n.bridge("RNODE").grpc_addr, b"from the RNode", b"").await;
    let rnode = n.bridge("RNODE").node.id().as_bytes().to_vec();
    assert_eq!(arrival(&mut at_rak, b"from the RNode").await.author, rnode);
    assert_eq!(arrival(&mut at_spi, b"from the RNode").await.author, rnode);

    publish(n.bridge("RAK").grpc_addr, b"from the RAK3172", b"").await;
    let back = arrival(&mut at_rnode, b"from the RAK3172").await;
    assert_eq!(back.author, n.bridge("RAK").node.id().as_bytes().to_vec());
    publish(n.bridge("SPI").grpc_addr, b"from the SX1262", b"").await;
    let back = arrival(&mut at_rnode, b"from the SX1262").await;
    assert_eq!(back.author, n.bridge("SPI").node.id().as_bytes().to_vec());
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_publish_once() {
    let n = Neighbourhood::start(NETWORK, &[Member::new("A", true, false)], &[chat_topic()])
        .await
        .expect("starts");
    let mut at_a = subscribe(n.bridge("A").grpc_addr).await;
    for _ in 0..3 {
        publish(n.bridge("A").grpc_addr, b"once", b"key-1").await;
    }
    publish(n.bridge("A").grpc_addr, b"twice", b"key-2").await;
    publish(n.bridge("A").grpc_addr, b"marker", b"").await;
    let mut seen = Vec::new();
    loop {
        let event = arrival_any(&mut at_a).await;
        let done = event.payload == b"marker";
        seen.push(event.payload);
        if done {
            break;
        }
    }
    assert_eq!(
        seen,
        vec![b"once".to_vec(), b"twice".to_vec(), b"marker".to_vec()],
        "a repeated key publishes nothing"
    );
    n.stop().await;
}

/// A module that answers "busy" through all its retries fails the send: the bridge counts the
/// failure in its status and metrics (`send_failures`), queues the frame again, and the
/// operation still crosses once the channel is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_the_module_refuses_is_counted_and_goes_out_later() {
    let members = [Member::new("A", false, true), Member::new("B", false, true)];
    let n = Neighbourhood::start(NETWORK, &members, &[chat_topic()])
        .await
        .expect("neighbourhood starts");
    let mut at_b = subscribe(n.bridge("B").grpc_addr).await;
    assert_eq!(lora(&n, "A").await.send_failures, 0);
    // The RUI3 driver tries a busy channel 5 times before it gives up on a send.
    n.modem("A").expect("a modem").inject_busy(5);
    publish(n.bridge("A").grpc_addr, b"through a busy channel", b"").await;
    arrival(&mut at_b, b"through a busy channel").await;
    let mut failures = 0;
    for _ in 0..50 {
        failures = lora(&n, "A").await.send_failures;
        if failures > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(failures, 1, "one send gave up after its busy retries");
    n.stop().await;
}

/// Status of the bridge's LoRa transport.
async fn lora(n: &Neighbourhood, name: &str) -> TransportStatus {
    transport(n.bridge(name).status_addr.expect("status served"), "lora").await
}

/// The radio neighbours `name`'s status lists, sorted, once it lists at least `count` (or
/// after 10 s). The status is rebuilt once a second, so right after an operation arrived it
/// may not show the neighbour that carried it yet.
async fn neighbour_tags(n: &Neighbourhood, name: &str, count: usize) -> Vec<String> {
    let mut tags = Vec::new();
    for _ in 0..50 {
        tags = lora(n, name)
            .await
            .neighbours
            .into_iter()
            .map(|nb| nb.tag)
            .collect();
        if tags.len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tags.sort();
    tags
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_and_foreign_frames_are_rejected_and_not_relayed() {
    let n = iroh_a_b_radio_b_c().await;
    let mut at_a = subscribe(n.bridge("A").grpc_addr).await;
    let mut at_c = subscribe(n.bridge("C").grpc_addr).await;

    // A rogue transmitter on the same channel, with a genuinely signed op.
    let topic = chat_topic().topic;
    let op = common::stranger_op();
    let mut tampered = compact::encode(&op, &topic, false).unwrap();
    *tampered.last_mut().unwrap() ^= 0x01; // the body no longer matches the signature
    let honest = compact::encode(&op, &topic, false).unwrap();
    let ours = FrameCodec::new(NetworkTag::from_network_id(&NETWORK), None);
    let foreign = FrameCodec::new(NetworkTag::from_network_id(&[0x99; 32]), None);
    let frame = |codec: &FrameCodec, bytes: &[u8]| {
        codec
            .encode(
                NodeTag([0xee, 0xee]),
                &Message::Op(bytes.iter().copied().collect()),
                [0; 12],
                250,
            )
            .unwrap()
    };
    let rogue_medium = n.medium.clone();
    let (rogue, _rx) = rogue_medium.attach("rogue");
    let before = lora(&n, "C").await.frames_rejected;
    for bytes in [frame(&ours, &tampered), frame(&foreign, &honest)] {
        let airtime = rogue_medium.transmit(rogue, &demo_modulation(), &bytes);
        tokio::time::sleep(airtime + Duration::from_millis(300)).await;
    }
    let after = lora(&n, "C").await;
    assert!(
        after.frames_rejected >= before + 2,
        "both frames rejected at C: {} -> {}",
        before,
        after.frames_rejected
    );

    // Nothing of it reached any app; a genuine message sent afterwards is the next event.
    publish(n.bridge("A").grpc_addr, b"genuine", b"").await;
    assert_eq!(arrival_any(&mut at_c).await.payload, b"genuine");
    assert_eq!(arrival_any(&mut at_a).await.payload, b"genuine");
    n.stop().await;
}

/// A hostile radio on the channel, for a minute: every 2 s an empty Vector ("I hold nothing,
/// send me all"), an operation whose author no one knows (it asks for a KeyWant) and a KeyWant
/// of its own, each under a sender tag invented for that frame. B and C hold 30 operations.
/// Answers to strangers come from one pool per link, 32 operations an hour: without it each
/// Vector drew every operation past its back-off: 90 operation frames at each of B and C in
/// that minute. Nothing of the junk reaches an app, and a genuine message still crosses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_neighbours_forgeries_cost_the_bridges_one_pool() {
    use lorabridge_proto::message::Vector;
    use lorabridge_proto::{AuthorTag, TopicTag};
    let n = iroh_a_b_radio_b_c().await;
    let mut at_c = subscribe(n.bridge("C").grpc_addr).await;
    for i in 0..30 {
        publish(
            n.bridge("A").grpc_addr,
            format!("before {i}").as_bytes(),
            b"",
        )
        .await;
    }
    for i in 0..30 {
        arrival(&mut at_c, format!("before {i}").as_bytes()).await;
    }
    // Let the catch-up's last answers and summaries settle.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let topic = chat_topic().topic;
    let codec = FrameCodec::new(NetworkTag::from_network_id(&NETWORK), None);
    let forge = |tag: u16, message: &Message| {
        codec
            .encode(NodeTag(tag.to_be_bytes()), message, [0; 12], 250)
            .unwrap()
    };
    let empty_vector = Message::Vector(Vector {
        topic: TopicTag::from_topic(&topic),
        from: AuthorTag([0, 0]),
        to: AuthorTag([0xff, 0xff]),
        heights: Default::default(),
    });
    let (b0, c0) = (lora(&n, "B").await.ops_sent, lora(&n, "C").await.ops_sent);
    let medium = n.medium.clone();
    let (rogue, _rx) = medium.attach("rogue");
    for round in 0..30u16 {
        let junk = compact::encode(&common::stranger_op(), &topic, true).unwrap();
        let key_want = Message::KeyWant([AuthorTag(round.to_be_bytes())].into_iter().collect());
        for (k, message) in [
            empty_vector.clone(),
            Message::Op(junk.into_iter().collect()),
            key_want,
        ]
        .iter()
        .enumerate()
        {
            let airtime = medium.transmit(
                rogue,
                &demo_modulation(),
                &forge(0x9000 + round * 3 + k as u16, message),
            );
            tokio::time::sleep(airtime + Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (b1, c1) = (lora(&n, "B").await.ops_sent, lora(&n, "C").await.ops_sent);
    println!(
        "{{\"test\": \"hostile_neighbour\", \"ops_sent_b\": {}, \"ops_sent_c\": {}}}",
        b1 - b0,
        c1 - c0
    );
    assert!(b1 - b0 <= 32, "B sent {} operations for strangers", b1 - b0);
    assert!(c1 - c0 <= 32, "C sent {} operations for strangers", c1 - c0);
    // The junk reached no app; a genuine message is the next event at C.
    publish(n.bridge("A").grpc_addr, b"after the attack", b"").await;
    assert_eq!(arrival_any(&mut at_c).await.payload, b"after the attack");
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_bridge_loses_nothing_and_resends_nothing() {
    let mut n = iroh_a_b_radio_b_c().await;
    let mut at_a = subscribe(n.bridge("A").grpc_addr).await;
    publish(n.bridge("C").grpc_addr, b"before the restart", b"").await;
    arrival(&mut at_a, b"before the restart").await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    n.restart("C").await.expect("C starts again");
    let heard_at_b = lora(&n, "B").await.ops_received;
    // Several summary rounds (Trickle Imin 2 s): C and B compare and agree.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        lora(&n, "C").await.ops_sent,
        0,
        "the restarted bridge re-sent an operation"
    );
    assert_eq!(
        lora(&n, "B").await.ops_received,
        heard_at_b,
        "B received something again"
    );
    let status = status(n.bridge("C").status_addr.expect("status served")).await;
    assert_eq!(
        status.topics[0].operations, 1,
        "C still holds its operation"
    );

    // And it carries new operations as before.
    let mut at_c = subscribe(n.bridge("C").grpc_addr).await;
    publish(n.bridge("A").grpc_addr, b"after the restart", b"").await;
    arrival(&mut at_c, b"after the restart").await;
    n.stop().await;
}

/// Whole bridges on the simulator's physics (path loss, sensitivity, collisions): A, B and C
/// stand 100 m apart in a row at SF7, so A and C cannot hear each other (200 m: about −128 dBm,
/// below SF7's sensitivity) and every operation between them must be relayed by B over the air.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_hop_across_the_simulated_air() {
    let scenario = Scenario::parse(
        "name = \"row\"\nduration = \"1h\"\n[radio]\nspreading_factor = 7\n\
         [path_loss]\nsigma_db = 0.0\n[topology]\nkind = \"line\"\nn = 3\nspacing_m = 100\n",
    )
    .expect("scenario");
    let air = PhysicalHub::new(&scenario, vec![[0.0, 0.0], [100.0, 0.0], [200.0, 0.0]]);
    let members = ["A", "B", "C"].map(|name| Member::new(name, false, true));
    let n = Neighbourhood::start_on(Arc::new(air), NETWORK, &members, &[chat_topic()])
        .await
        .expect("neighbourhood starts");
    let mut at_a = subscribe(n.bridge("A").grpc_addr).await;
    let mut at_c = subscribe(n.bridge("C").grpc_addr).await;
    publish(n.bridge("A").grpc_addr, b"two hops east", b"").await;
    arrival(&mut at_c, b"two hops east").await;
    publish(n.bridge("C").grpc_addr, b"two hops west", b"").await;
    arrival(&mut at_a, b"two hops west").await;

    let tag = |name: &str| {
        let id = n.bridge(name).node.id();
        format!("{:02x}{:02x}", id.as_bytes()[0], id.as_bytes()[1])
    };
    for (name, expected) in [("A", vec![tag("B")]), ("C", vec![tag("B")])] {
        let heard = neighbour_tags(&n, name, 1).await;
        assert_eq!(heard, expected, "{name} hears only B");
    }
    let heard_by_b = neighbour_tags(&n, "B", 2).await;
    let mut a_and_c = vec![tag("A"), tag("C")];
    a_and_c.sort();
    assert_eq!(heard_by_b, a_and_c, "B hears both ends");
    n.stop().await;
}

/// The status says what iroh is doing: disabled on a bridge that cannot find peers, and the
/// peers it syncs with on one that can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_tells_the_truth_about_iroh() {
    let n = iroh_a_b_radio_b_c().await;
    let iroh = |name: &'static str| {
        let addr = n.bridge(name).status_addr.expect("status served");
        async move { transport(addr, "iroh").await }
    };
    let c = iroh("C").await;
    assert_eq!(c.state, "disabled", "C has no way to find iroh peers");
    assert!(c.peers.is_empty());
    // A and B open sync sessions once they meet; the status is refreshed every second.
    let b_id = n.bridge("B").node.id().as_bytes().to_vec();
    let mut a = iroh("A").await;
    for _ in 0..120 {
        if a.peers.contains(&b_id) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        a = iroh("A").await;
    }
    assert_eq!(a.state, "connected");
    assert_eq!(a.peers, vec![b_id], "A syncs with B, and only B");
    n.stop().await;
}

/// The duty cycle holds across restarts: a restarted bridge starts with the airtime it
/// used in the last hour, not with a fresh budget (#13, finding 7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_bridge_keeps_its_airtime_of_the_hour() {
    let mut n = iroh_a_b_radio_b_c().await;
    for i in 0..5 {
        publish(
            n.bridge("C").grpc_addr,
            format!("on air {i}").as_bytes(),
            b"",
        )
        .await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let used = |t: &TransportStatus| t.airtime.iter().map(|a| a.used_secs).sum::<f64>();
    let before = used(&lora(&n, "C").await);
    assert!(before > 0.0, "C has transmitted");
    n.restart("C").await.expect("C starts again");
    let after = used(&lora(&n, "C").await);
    assert!(
        after >= before,
        "C used {before:.3} s before the restart and starts with {after:.3} s"
    );
    n.stop().await;
}
