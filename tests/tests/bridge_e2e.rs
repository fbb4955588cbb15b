//! Real bridges (p2panda nodes on SQLite, gRPC servers, the sync engine over real serial
//! drivers talking to emulated LoRa modules) in one process: A and B share iroh on loopback,
//! B and C share only the radio.

use std::time::Duration;

use lorabridge::bridge::Carried;
use lorabridge::grpc::panda::panda_client::PandaClient;
use lorabridge::grpc::panda::{OperationEvent, PublishRequest, SubscribeRequest};
use lorabridge::neighbourhood::{Member, Neighbourhood};
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
