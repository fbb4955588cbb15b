//! The bridge as LoRes apps and LoRes nodes see it: the official LoRes client crate
//! (`lores-p2panda-client`) drives a bridge's gRPC API, and a p2panda 0.7.0 node set up the way
//! LoRes Node sets up its own (network id, signing key, database, mDNS, `stream_from(..,
//! Frontier)` of `Vec<u8>`) exchanges operations with a radio-only bridge through a bridge
//! that has iroh and a radio.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{APP, LIMIT};
use futures_util::StreamExt;
use lorabridge::lores::Carried;
use lorabridge_testkit::neighbourhood::{Member, Neighbourhood};
use lores_p2panda_client::proto::OperationEvent;
use lores_p2panda_client::{PandaClient, PandaError};
use p2panda::streams::{StreamEvent, StreamFrom};
use p2panda_core::{SigningKey, Topic};

const NETWORK: [u8; 32] = [0x8c; 32];
const REGION: [u8; 32] = [0x5d; 32];

fn chat(lora: bool) -> Carried {
    Carried {
        lora,
        ..Carried::app(REGION, APP)
    }
}

/// One bridge with no mesh, and an official client on its gRPC API.
async fn one_bridge() -> (Neighbourhood, PandaClient) {
    let n = Neighbourhood::start(NETWORK, &[Member::new("A", false, false)], &[chat(false)])
        .await
        .expect("bridge starts");
    let client = PandaClient::connect_lazy(format!("http://{}", n.bridge("A").grpc_addr))
        .expect("a valid address");
    (n, client)
}

type Events = tonic::Streaming<OperationEvent>;

async fn subscribe(client: &mut PandaClient, instance: &str) -> Events {
    client
        .subscribe(APP, instance)
        .await
        .expect("subscribes")
        .into_inner()
}

/// The next event, or `None` if none comes within `wait`.
async fn next(events: &mut Events, wait: Duration) -> Option<OperationEvent> {
    match tokio::time::timeout(wait, events.message()).await {
        Ok(Ok(Some(event))) => Some(event),
        Ok(other) => panic!("the subscription ended: {other:?}"),
        Err(_) => None,
    }
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_micros() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_publishes_and_subscribes() {
    let (n, mut client) = one_bridge().await;
    let mut events = subscribe(&mut client, "web").await;
    client
        .publish(APP, "web", b"hello from the LoRes client".to_vec(), None)
        .await
        .expect("publishes");
    let event = next(&mut events, LIMIT).await.expect("the event arrives");
    assert_eq!(event.payload, b"hello from the LoRes client");
    assert_eq!(event.topic_id, chat(false).topic.to_vec());
    assert_eq!(event.author, n.bridge("A").node.id().as_bytes().to_vec());
    assert_eq!(event.operation_id.len(), 32);
    // p2panda's microseconds, as LoRes nodes send them (their proto comment says ms).
    let skew = now_micros().abs_diff(event.timestamp);
    assert!(
        skew < 60_000_000,
        "timestamp {} is not now in µs",
        event.timestamp
    );
    n.stop().await;
}

/// LoRes scopes a key to (the app's topic, key), whatever the instance: the same key from
/// another instance of the app publishes nothing either. Concurrent duplicates publish once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_are_scoped_as_lores_scopes_them() {
    let (n, mut client) = one_bridge().await;
    let mut events = subscribe(&mut client, "web").await;
    let key = Some(b"key-1".to_vec());
    for (instance, payload) in [
        ("web", "first"),
        ("web", "retry"),
        ("cli", "other instance"),
    ] {
        client
            .publish(APP, instance, payload.as_bytes().to_vec(), key.clone())
            .await
            .expect("a repeated key still succeeds");
    }
    let address = format!("http://{}", n.bridge("A").grpc_addr);
    let mut racing = Vec::new();
    for i in 0..4 {
        let mut client = PandaClient::connect_lazy(address.clone()).expect("a valid address");
        racing.push(tokio::spawn(async move {
            client
                .publish(
                    APP,
                    "web",
                    format!("race {i}").into_bytes(),
                    Some(b"key-2".to_vec()),
                )
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }));
    }
    for task in racing {
        task.await.unwrap().expect("each racing publish succeeds");
    }
    client
        .publish(APP, "web", b"new key".to_vec(), Some(b"key-3".to_vec()))
        .await
        .expect("publishes");
    let mut seen = Vec::new();
    while let Some(event) = next(&mut events, Duration::from_secs(3)).await {
        seen.push(String::from_utf8(event.payload).unwrap());
    }
    assert_eq!(seen.len(), 3, "one op per key: {seen:?}");
    assert_eq!(seen[0], "first");
    assert!(seen[1].starts_with("race "), "{seen:?}");
    assert_eq!(seen[2], "new key");
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unbound_app_is_region_not_bound_as_on_lores() {
    let (n, mut client) = one_bridge().await;
    let error = client
        .publish("no-such-app", "web", b"x".to_vec(), None)
        .await
        .expect_err("refused");
    let PandaError::RegionNotBound(message) = error else {
        panic!("expected RegionNotBound, got {error}");
    };
    assert!(message.contains("no-such-app"), "{message}");
    assert!(
        message.contains("[[regions]]"),
        "says how to fix it: {message}"
    );
    let error = client
        .subscribe("no-such-app", "web")
        .await
        .expect_err("refused");
    assert!(matches!(error, PandaError::RegionNotBound(_)), "{error}");
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_and_four_mebibyte_payloads_behave_as_on_lores() {
    let (n, mut client) = one_bridge().await;
    let mut events = subscribe(&mut client, "web").await;
    client
        .publish(APP, "web", Vec::new(), None)
        .await
        .expect("an empty payload is accepted");
    let event = next(&mut events, LIMIT)
        .await
        .expect("the empty op arrives");
    assert!(event.payload.is_empty());

    // tonic's 4 MiB limit is on the whole message: leave room for the other fields.
    let big = vec![0xa5; (4 << 20) - 1024];
    client
        .publish(APP, "web", big.clone(), None)
        .await
        .expect("just under 4 MiB is accepted");
    let event = next(&mut events, LIMIT).await.expect("the big op arrives");
    assert_eq!(event.payload, big);

    let error = client
        .publish(APP, "web", vec![0; (4 << 20) + 1], None)
        .await
        .expect_err("over 4 MiB is refused");
    let PandaError::Rpc(status) = error else {
        panic!("expected an RPC error, got {error}");
    };
    assert_eq!(status.code(), tonic::Code::OutOfRange, "{status}");
    n.stop().await;
}

/// A p2panda node set up as LoRes Node 0.22.2 sets up its own.
struct LoresNode {
    node: p2panda::Node,
    key: SigningKey,
    _dir: tempfile::TempDir,
}

impl LoresNode {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("lores.sqlite").display()
        );
        let key = SigningKey::generate();
        // LoRes' builder, minus the relay (tests stay on loopback); mDNS is p2panda's default.
        let node = p2panda::Node::builder()
            .network_id(NETWORK)
            .signing_key(key.clone())
            .database_url(&url)
            .bind_ip_v4(Ipv4Addr::LOCALHOST)
            .spawn()
            .await
            .expect("the LoRes-like node starts");
        Self {
            node,
            key,
            _dir: dir,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lores_node_and_a_radio_only_bridge_exchange_operations_both_ways() {
    let members = [
        Member::new("B", false, true).with_mdns(),
        Member::new("C", false, true),
    ];
    let n = Neighbourhood::start(NETWORK, &members, &[chat(true)])
        .await
        .expect("bridges start");
    let lores = LoresNode::start().await;
    let topic = Topic::from(chat(true).topic);
    let (publisher, mut subscription) = lores
        .node
        .stream_from::<Vec<u8>>(topic, StreamFrom::Frontier)
        .await
        .expect("the LoRes node subscribes");
    let (heard_tx, mut heard) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(event) = subscription.next().await {
            if let StreamEvent::Processed { operation, .. } = event {
                let _ =
                    heard_tx.send((operation.message().clone(), *operation.author().as_bytes()));
            }
        }
    });

    let mut at_c =
        PandaClient::connect_lazy(format!("http://{}", n.bridge("C").grpc_addr)).unwrap();
    let mut c_events = subscribe(&mut at_c, "web").await;
    let started = Instant::now();
    publisher
        .publish(b"from the LoRes node".to_vec())
        .await
        .expect("the LoRes node publishes")
        .await
        .expect("and processes it");
    let event = loop {
        let event = next(&mut c_events, LIMIT)
            .await
            .expect("reaches the radio-only bridge");
        if event.payload == b"from the LoRes node" {
            break event;
        }
    };
    let to_radio = started.elapsed();
    assert_eq!(
        event.author,
        lores.key.verifying_key().as_bytes().to_vec(),
        "author kept"
    );

    let started = Instant::now();
    at_c.publish(APP, "web", b"from the radio".to_vec(), None)
        .await
        .expect("publishes at C");
    let (message, author) = tokio::time::timeout(LIMIT, async {
        loop {
            let (message, author) = heard.recv().await.expect("the LoRes node's stream");
            if message == b"from the radio" {
                return (message, author);
            }
        }
    })
    .await
    .expect("reaches the LoRes node");
    let to_lores = started.elapsed();
    assert_eq!(message, b"from the radio");
    assert_eq!(author, *n.bridge("C").node.id().as_bytes(), "author kept");
    println!(
        "{{\"test\": \"lores_round_trip\", \"lores_to_radio_only_s\": {:.2}, \"radio_only_to_lores_s\": {:.2}}}",
        to_radio.as_secs_f64(),
        to_lores.as_secs_f64()
    );
    n.stop().await;
}
