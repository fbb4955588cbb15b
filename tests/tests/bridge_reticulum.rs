//! Whole bridges (p2panda nodes on SQLite, gRPC servers, the sync engine) connected to one real
//! `rnsd`: with no iroh peers and no radio, operations published through either bridge's gRPC
//! API reach the other bridge's apps over Reticulum; and a bridge with both a radio and
//! Reticulum carries operations from one medium to the other.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use common::{APP, LIMIT, arrival, publish, subscribe, transport};
use lorabridge::actor::topics::AppEvent;
use lorabridge::bridge::{Bridge, BridgeSpec};
use lorabridge::lores::{AppBindings, Carried};
use lorabridge::node::NodeSpec;
use lorabridge::reticulum::ReticulumConfig;
use lorabridge::status_report;
use lorabridge_testkit::neighbourhood::{Member, Neighbourhood, QUICK_TRICKLE};
use lorabridge_testkit::rns::Rnsd;
use p2panda_core::SigningKey;

const NETWORK: [u8; 32] = [0x6f; 32];
const REGION: [u8; 32] = [0x3b; 32];

fn loopback() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

fn chat() -> Carried {
    Carried {
        reticulum: true,
        ..Carried::app(REGION, APP)
    }
}

/// A bridge whose only mesh transport is Reticulum through `rnsd` (an address).
async fn start(dir: &Path, name: &str, rnsd: String) -> Bridge {
    let spec = BridgeSpec {
        node: NodeSpec {
            key: SigningKey::generate(),
            database: Some(dir.join(format!("{name}.sqlite"))),
            network_id: NETWORK,
            mdns: false,
            bind: Some(loopback()),
            relay: None,
            bootstrap: Vec::new(),
        },
        topics: vec![chat()],
        bindings: AppBindings::of_apps(&[chat()]),
        grpc: loopback(),
        status: Some(loopback()),
        radio: None,
        reticulum: Some(ReticulumConfig {
            servers: vec![rnsd],
            identity_path: dir.join(format!("{name}.reticulum")),
            // Longer than the test: peers meet through the announce sent on connecting.
            announce_interval: Duration::from_secs(600),
            prove: false,
        }),
        region_key: None,
        trickle: Some(QUICK_TRICKLE),
    };
    Bridge::start(spec).await.expect("bridge starts")
}

/// Waits for the bridge's own processed event carrying `payload` and says how it came.
async fn via(events: &mut tokio::sync::broadcast::Receiver<AppEvent>, payload: &[u8]) -> String {
    tokio::time::timeout(LIMIT, async {
        loop {
            let event = events.recv().await.expect("events flow");
            if event.payload == payload {
                return event.via.to_string();
            }
        }
    })
    .await
    .expect("the event in time")
}

/// Publishes `payload` at `from` and checks that `to`'s apps get the same operation, by
/// Reticulum.
async fn crosses(from: &Bridge, to: &Bridge, payload: &[u8]) {
    let mut to_events = to.watch(&chat().topic).expect("carried");
    let mut at_from = subscribe(from.grpc_addr).await;
    let mut at_to = subscribe(to.grpc_addr).await;
    publish(from.grpc_addr, payload, b"").await;
    let sent = arrival(&mut at_from, payload).await;
    let got = arrival(&mut at_to, payload).await;
    assert_eq!(got.operation_id, sent.operation_id);
    assert_eq!(got.author, from.node.id().as_bytes().to_vec());
    assert_eq!(via(&mut to_events, payload).await, "reticulum");
}

async fn reticulum_state(bridge: &Bridge) -> String {
    transport(bridge.status_addr.expect("status served"), "reticulum")
        .await
        .state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_bridges_sync_through_rnsd_both_ways() {
    let rnsd = Rnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let a = start(dir.path(), "A", rnsd.address()).await;
    // A is connected (and has announced) before B starts: B's announce reaches A, and B
    // learns A's path when A's first frame arrives.
    tokio::time::timeout(LIMIT, async {
        while reticulum_state(&a).await != "connected" {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("A connects to rnsd");
    let b = start(dir.path(), "B", rnsd.address()).await;
    crosses(&a, &b, b"from A over Reticulum").await;
    crosses(&b, &a, b"from B over Reticulum").await;

    // The status is refreshed once a second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for (bridge, name) in [(&a, "A"), (&b, "B")] {
        let status = transport(bridge.status_addr.unwrap(), "reticulum").await;
        assert_eq!(status.state, "connected", "{name}");
        assert_eq!(status.neighbours.len(), 1, "{name} has one peer bridge");
        assert_eq!(
            status.ops_received, 1,
            "{name} received the other's op once (a second copy is a duplicate, not a receipt)"
        );
        // Its own op, and once more at most: a summary the other sent before the op reached
        // it can cross the op on the way and ask for it again (seen once in CI, under load).
        assert!(
            (1..=2).contains(&status.ops_sent),
            "{name} sent its op {} times",
            status.ops_sent
        );
        assert_eq!(status.frames_rejected, 0, "{name}");
        // What a steward sees with `lorabridge status`.
        let reply = status_report::fetch(bridge.status_addr.unwrap())
            .await
            .unwrap();
        let text = status_report::render(&reply);
        assert!(text.contains("  reticulum  connected\n"), "{text}");
        assert!(text.contains("operations 1 sent, 1 received"), "{text}");
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_whose_rnsd_is_down_still_serves_its_apps() {
    let closed = std::net::TcpListener::bind(loopback()).unwrap();
    let address = closed.local_addr().unwrap().to_string();
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let a = start(dir.path(), "A", address).await;
    let mut at_a = subscribe(a.grpc_addr).await;
    publish(a.grpc_addr, b"while rnsd is down", b"").await;
    arrival(&mut at_a, b"while rnsd is down").await;
    assert_eq!(reticulum_state(&a).await, "connecting");
    a.stop().await;
}

/// A has only a radio, C only Reticulum; B has both. Operations cross from one medium to the
/// other through B's single engine, both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_cross_between_radio_and_reticulum() {
    let rnsd = Rnsd::start();
    let members = [
        Member::new("A", false, true),
        Member::new("B", false, true).with_reticulum(rnsd.address()),
        Member::new("C", false, false).with_reticulum(rnsd.address()),
    ];
    let n = Neighbourhood::start(NETWORK, &members, &[chat()])
        .await
        .expect("neighbourhood starts");
    let (a, b, c) = (n.bridge("A"), n.bridge("B"), n.bridge("C"));
    let mut b_events = b.watch(&chat().topic).expect("carried");

    let mut at_c = subscribe(c.grpc_addr).await;
    publish(a.grpc_addr, b"from the radio", b"").await;
    assert_eq!(via(&mut b_events, b"from the radio").await, "lora");
    arrival(&mut at_c, b"from the radio").await;

    let mut at_a = subscribe(a.grpc_addr).await;
    crosses(c, b, b"from Reticulum").await;
    arrival(&mut at_a, b"from Reticulum").await;
    n.stop().await;
}
