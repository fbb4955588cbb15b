//! Real bridges (p2panda nodes on SQLite, gRPC servers, the sync engine over real serial
//! drivers talking to emulated LoRa modules) in one process: A and B share iroh on loopback,
//! B and C share only the radio.

use std::time::Duration;

use std::sync::Arc;

use lorabridge::bridge::Carried;
use lorabridge::grpc::panda::panda_client::PandaClient;
use lorabridge::grpc::panda::{OperationEvent, PublishRequest, SubscribeRequest};
use lorabridge::grpc::status::status_client::StatusClient;
use lorabridge::grpc::status::{StatusRequest, TransportStatus};
use lorabridge::neighbourhood::{Member, Neighbourhood, demo_modulation};
use lorabridge_proto::message::Message;
use lorabridge_proto::operation::{NewOp, lores_body, sign};
use lorabridge_proto::{FrameCodec, NetworkTag, NodeTag, compact};
use lorabridge_sim::modem::Medium;
use p2panda_core::SigningKey;
use tonic::Streaming;

const NETWORK: [u8; 32] = [0x5e; 32];
const REGION: [u8; 32] = [0x2a; 32];
const APP: &str = "chat";
/// Generous: only to stop a broken build from hanging CI.
const LIMIT: Duration = Duration::from_secs(120);

fn chat_topic() -> Carried {
    let mut input = REGION.to_vec();
    input.extend_from_slice(APP.as_bytes());
    Carried {
        topic: *blake3::hash(&input).as_bytes(),
        region: REGION,
        app_id: Some(APP.into()),
        lora: true,
    }
}

fn member(name: &str, iroh: bool, radio: bool) -> Member {
    Member {
        name: name.into(),
        iroh,
        radio,
    }
}

async fn client(n: &Neighbourhood, name: &str) -> PandaClient<tonic::transport::Channel> {
    PandaClient::connect(format!("http://{}", n.bridge(name).grpc_addr))
        .await
        .expect("gRPC connects")
}

/// A subscription, with the client that carries it (dropping the client ends the stream).
struct Subscription {
    _client: PandaClient<tonic::transport::Channel>,
    stream: Streaming<OperationEvent>,
}

async fn subscribe(n: &Neighbourhood, name: &str) -> Subscription {
    let request = SubscribeRequest {
        app_id: APP.into(),
        instance_id: "test".into(),
    };
    let mut client = client(n, name).await;
    let stream = client
        .subscribe(request)
        .await
        .expect("subscribes")
        .into_inner();
    Subscription {
        _client: client,
        stream,
    }
}

async fn publish(n: &Neighbourhood, name: &str, payload: &[u8], key: &[u8]) {
    let request = PublishRequest {
        app_id: APP.into(),
        instance_id: "test".into(),
        payload: payload.to_vec(),
        idempotency_key: key.to_vec(),
    };
    client(n, name)
        .await
        .publish(request)
        .await
        .expect("publishes");
}

/// Waits for the event carrying `payload`, skipping others.
async fn arrival(subscription: &mut Subscription, payload: &[u8]) -> OperationEvent {
    tokio::time::timeout(LIMIT, async {
        loop {
            let event = subscription
                .stream
                .message()
                .await
                .expect("stream stays open")
                .expect("stream does not end");
            if event.payload == payload {
                return event;
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "{:?} did not arrive within {LIMIT:?}",
            String::from_utf8_lossy(payload)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_cross_iroh_and_radio_both_ways() {
    let members = [
        member("A", true, false),
        member("B", true, true),
        member("C", false, true),
    ];
    let n = Neighbourhood::start(NETWORK, &members, &[chat_topic()])
        .await
        .expect("neighbourhood starts");
    let mut at_a = subscribe(&n, "A").await;
    let mut at_c = subscribe(&n, "C").await;

    publish(&n, "A", b"hello from A", b"").await;
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

    publish(&n, "C", b"hello from C", b"").await;
    let back_at_c = arrival(&mut at_c, b"hello from C").await;
    let back_at_a = arrival(&mut at_a, b"hello from C").await;
    assert_eq!(back_at_a.operation_id, back_at_c.operation_id);
    assert_eq!(
        back_at_a.author,
        n.bridge("C").node.id().as_bytes().to_vec()
    );
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_publish_once() {
    let n = Neighbourhood::start(NETWORK, &[member("A", true, false)], &[chat_topic()])
        .await
        .expect("starts");
    let mut at_a = subscribe(&n, "A").await;
    for _ in 0..3 {
        publish(&n, "A", b"once", b"key-1").await;
    }
    publish(&n, "A", b"twice", b"key-2").await;
    publish(&n, "A", b"marker", b"").await;
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

async fn arrival_any(subscription: &mut Subscription) -> OperationEvent {
    tokio::time::timeout(LIMIT, subscription.stream.message())
        .await
        .expect("an event in time")
        .expect("stream open")
        .expect("stream not ended")
}

/// Status counters of the bridge's LoRa transport.
async fn lora_status(n: &Neighbourhood, name: &str) -> TransportStatus {
    let addr = n.bridge(name).status_addr.expect("status served");
    let mut client = StatusClient::connect(format!("http://{addr}"))
        .await
        .expect("status connects");
    let reply = client
        .get_status(StatusRequest {})
        .await
        .expect("status")
        .into_inner();
    reply
        .transports
        .into_iter()
        .find(|t| t.name == "lora")
        .expect("a lora transport")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_and_foreign_frames_are_rejected_and_not_relayed() {
    let members = [
        member("A", true, false),
        member("B", true, true),
        member("C", false, true),
    ];
    let n = Neighbourhood::start(NETWORK, &members, &[chat_topic()])
        .await
        .expect("starts");
    let mut at_a = subscribe(&n, "A").await;
    let mut at_c = subscribe(&n, "C").await;

    // A rogue transmitter on the same channel, with a genuinely signed op.
    let topic = chat_topic().topic;
    let body = lores_body(b"forged");
    let op = sign(
        &SigningKey::generate(),
        &NewOp {
            topic: &topic,
            seq: 0,
            backlink: None,
            timestamp: 1_795_000_000_000_000,
            prune: false,
            body: Some(&body),
        },
    );
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
    let rogue_medium: Arc<dyn Medium> = Arc::new(n.hub.clone());
    let (rogue, _rx) = rogue_medium.attach("rogue");
    let before = lora_status(&n, "C").await.frames_rejected;
    for bytes in [frame(&ours, &tampered), frame(&foreign, &honest)] {
        let airtime = rogue_medium.transmit(rogue, &demo_modulation(), &bytes);
        tokio::time::sleep(airtime + Duration::from_millis(300)).await;
    }
    let after = lora_status(&n, "C").await;
    assert!(
        after.frames_rejected >= before + 2,
        "both frames rejected at C: {} -> {}",
        before,
        after.frames_rejected
    );

    // Nothing of it reached any app; a genuine message sent afterwards is the next event.
    publish(&n, "A", b"genuine", b"").await;
    assert_eq!(arrival_any(&mut at_c).await.payload, b"genuine");
    assert_eq!(arrival_any(&mut at_a).await.payload, b"genuine");
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_bridge_loses_nothing_and_resends_nothing() {
    let members = [
        member("A", true, false),
        member("B", true, true),
        member("C", false, true),
    ];
    let mut n = Neighbourhood::start(NETWORK, &members, &[chat_topic()])
        .await
        .expect("starts");
    let mut at_a = subscribe(&n, "A").await;
    publish(&n, "C", b"before the restart", b"").await;
    arrival(&mut at_a, b"before the restart").await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    n.restart("C").await.expect("C starts again");
    let heard_at_b = lora_status(&n, "B").await.ops_received;
    // Several summary rounds (Trickle Imin 2 s): C and B compare and agree.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        lora_status(&n, "C").await.ops_sent,
        0,
        "the restarted bridge re-sent an operation"
    );
    assert_eq!(
        lora_status(&n, "B").await.ops_received,
        heard_at_b,
        "B received something again"
    );
    let addr = n.bridge("C").status_addr.expect("status served");
    let status = StatusClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
        .get_status(StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.topics[0].operations, 1,
        "C still holds its operation"
    );

    // And it carries new operations as before.
    let mut at_c = subscribe(&n, "C").await;
    publish(&n, "A", b"after the restart", b"").await;
    arrival(&mut at_c, b"after the restart").await;
    n.stop().await;
}
