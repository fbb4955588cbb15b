//! What the end-to-end tests do as an app would: talk to a bridge's LoRes gRPC API (publish,
//! subscribe, wait for an operation) and read its status API.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use lorabridge::grpc::panda::panda_client::PandaClient;
use lorabridge::grpc::panda::{OperationEvent, PublishRequest, SubscribeRequest};
use lorabridge::grpc::status::status_client::StatusClient;
use lorabridge::grpc::status::{StatusReply, StatusRequest, TransportStatus};
use tonic::Streaming;

pub const APP: &str = "chat";
/// The network and region of the in-process neighbourhoods.
pub const NETWORK: [u8; 32] = [0x5e; 32];
pub const REGION: [u8; 32] = [0x2a; 32];

/// A chat operation genuinely signed by a key no bridge knows, as a rogue transmitter on the
/// channel would send it.
pub fn stranger_op() -> lorabridge_proto::RawOp {
    use lorabridge_proto::operation::{NewOp, lores_body, sign};
    let topic = chat_topic().topic;
    let body = lores_body(b"forged");
    sign(
        &p2panda_core::SigningKey::generate(),
        &NewOp {
            topic: &topic,
            seq: 0,
            backlink: None,
            timestamp: 1_795_000_000_000_000,
            prune: false,
            body: Some(&body),
        },
    )
}

/// The chat app's topic in `REGION`, carried over the radio too.
pub fn chat_topic() -> lorabridge::lores::Carried {
    lorabridge::lores::Carried {
        lora: true,
        ..lorabridge::lores::Carried::app(REGION, APP)
    }
}

/// The bridges' logs on stderr, as `RUST_LOG` asks (e.g. `RUST_LOG=lorabridge=debug`); none
/// by default.
pub fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
/// Generous: only to stop a broken build from hanging CI.
pub const LIMIT: Duration = Duration::from_secs(120);

async fn client(grpc: SocketAddr) -> PandaClient<tonic::transport::Channel> {
    PandaClient::connect(format!("http://{grpc}"))
        .await
        .expect("gRPC connects")
}

/// A subscription. A task reads the gRPC stream into a queue, so that a caller's timeout
/// never interrupts a read half-way; dropping the subscription ends the stream.
pub struct Subscription {
    events: tokio::sync::mpsc::UnboundedReceiver<Result<OperationEvent, tonic::Status>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Subscription {
    fn new(
        client: PandaClient<tonic::transport::Channel>,
        mut stream: Streaming<OperationEvent>,
    ) -> Self {
        let (tx, events) = tokio::sync::mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            let _client = client;
            loop {
                match stream.message().await {
                    Ok(Some(event)) => {
                        if tx.send(Ok(event)).is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(status) => {
                        let _ = tx.send(Err(status));
                        return;
                    }
                }
            }
        });
        Self { events, reader }
    }

    /// The next event; panics if the stream ended.
    pub async fn next(&mut self) -> OperationEvent {
        match self.events.recv().await {
            Some(Ok(event)) => event,
            Some(Err(status)) => panic!("the subscription ended: {status}"),
            None => panic!("the subscription ended"),
        }
    }
}

/// Subscribes to the chat app at the bridge serving gRPC on `grpc`.
pub async fn subscribe(grpc: SocketAddr) -> Subscription {
    let request = SubscribeRequest {
        app_id: APP.into(),
        instance_id: "test".into(),
    };
    let mut client = client(grpc).await;
    let stream = client
        .subscribe(request)
        .await
        .expect("subscribes")
        .into_inner();
    Subscription::new(client, stream)
}

/// Publishes to the chat app; `key` is the idempotency key (empty for none).
pub async fn publish(grpc: SocketAddr, payload: &[u8], key: &[u8]) {
    let request = PublishRequest {
        app_id: APP.into(),
        instance_id: "test".into(),
        payload: payload.to_vec(),
        idempotency_key: key.to_vec(),
    };
    client(grpc)
        .await
        .publish(request)
        .await
        .expect("publishes");
}

/// Waits for the event carrying `payload`, skipping others.
pub async fn arrival(subscription: &mut Subscription, payload: &[u8]) -> OperationEvent {
    tokio::time::timeout(LIMIT, async {
        loop {
            let event = next(subscription).await;
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

/// The next event, whatever it carries.
pub async fn arrival_any(subscription: &mut Subscription) -> OperationEvent {
    tokio::time::timeout(LIMIT, next(subscription))
        .await
        .expect("an event in time")
}

async fn next(subscription: &mut Subscription) -> OperationEvent {
    subscription.next().await
}

/// The bridge's status, or `None` while nothing answers at `status_addr`.
pub async fn try_status(status_addr: SocketAddr) -> Option<StatusReply> {
    let mut client = StatusClient::connect(format!("http://{status_addr}"))
        .await
        .ok()?;
    Some(client.get_status(StatusRequest {}).await.ok()?.into_inner())
}

/// The bridge's whole status reply.
pub async fn status(status_addr: SocketAddr) -> StatusReply {
    StatusClient::connect(format!("http://{status_addr}"))
        .await
        .expect("status connects")
        .get_status(StatusRequest {})
        .await
        .expect("status")
        .into_inner()
}

/// One transport's status (`"lora"`, `"reticulum"`, `"iroh"`).
pub async fn transport(status_addr: SocketAddr, name: &str) -> TransportStatus {
    status(status_addr)
        .await
        .transports
        .into_iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no {name} transport in the status"))
}

/// An app that keeps one connection to a bridge's gRPC API, as a real app does.
pub struct App {
    client: PandaClient<tonic::transport::Channel>,
}

impl App {
    pub async fn connect(grpc: SocketAddr) -> Self {
        Self {
            client: client(grpc).await,
        }
    }

    /// Publishes to the chat app; the time Publish took, or its error.
    pub async fn publish(&mut self, payload: &[u8]) -> Result<Duration, tonic::Status> {
        let request = PublishRequest {
            app_id: APP.into(),
            instance_id: "test".into(),
            payload: payload.to_vec(),
            idempotency_key: Vec::new(),
        };
        let started = std::time::Instant::now();
        self.client.publish(request).await?;
        Ok(started.elapsed())
    }
}

/// Collects events from `subscription` until every payload of `want` has arrived, within
/// `limit`. Returns how many events carried each operation id (so callers can check that
/// each arrived once), or the payloads still missing when the time ran out.
pub async fn collect(
    subscription: &mut Subscription,
    want: &std::collections::HashSet<Vec<u8>>,
    limit: Duration,
) -> Result<std::collections::HashMap<Vec<u8>, usize>, Vec<Vec<u8>>> {
    let mut seen: std::collections::HashMap<Vec<u8>, usize> = Default::default();
    let mut missing: std::collections::HashSet<Vec<u8>> = want.clone();
    let deadline = tokio::time::Instant::now() + limit;
    let mut next_report = tokio::time::Instant::now() + Duration::from_secs(10);
    while !missing.is_empty() {
        if tokio::time::Instant::now() >= next_report {
            let mut some: Vec<String> = missing
                .iter()
                .take(8)
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            some.sort();
            eprintln!(
                "{} of {} arrived; missing e.g. {some:?}",
                want.len() - missing.len(),
                want.len()
            );
            next_report += Duration::from_secs(10);
        }
        let wait = deadline.min(next_report);
        match tokio::time::timeout_at(wait, subscription.next()).await {
            Ok(event) => {
                if want.contains(&event.payload) {
                    missing.remove(&event.payload);
                    *seen.entry(event.operation_id).or_default() += 1;
                }
            }
            Err(_) if tokio::time::Instant::now() >= deadline => {
                return Err(missing.into_iter().collect());
            }
            Err(_) => {}
        }
    }
    // A second of what else is on its way (a duplicate would follow its first copy closely).
    let until = tokio::time::Instant::now() + Duration::from_secs(1);
    while let Ok(event) = tokio::time::timeout_at(until, subscription.next()).await {
        if want.contains(&event.payload) {
            *seen.entry(event.operation_id).or_default() += 1;
        }
    }
    Ok(seen)
}

/// p50 and p99 of some durations, in milliseconds, for the notes.
pub fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    (at(0.5), at(0.99))
}

/// With `LORABRIDGE_TEST_STATUS` set, prints each bridge's mesh counters every 10 s until
/// the returned task is dropped: to see where a long test stands.
pub fn print_status(
    bridges: Vec<(&'static str, SocketAddr)>,
) -> Option<tokio::task::JoinHandle<()>> {
    std::env::var_os("LORABRIDGE_TEST_STATUS")?;
    Some(tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            for (name, addr) in &bridges {
                let Ok(mut client) = StatusClient::connect(format!("http://{addr}")).await else {
                    continue;
                };
                let Ok(reply) = client.get_status(StatusRequest {}).await else {
                    continue;
                };
                let reply = reply.into_inner();
                let ops: Vec<u64> = reply.topics.iter().map(|t| t.operations).collect();
                let mesh: Vec<String> = reply
                    .transports
                    .iter()
                    .filter(|t| t.name != "iroh")
                    .map(|t| {
                        format!(
                            "{} {} sent {}/{} heard {} rejected {} ops in {} queue {}",
                            t.name,
                            t.state,
                            t.frames_sent,
                            t.ops_sent,
                            t.frames_heard,
                            t.frames_rejected,
                            t.ops_received,
                            t.queue_depth
                        )
                    })
                    .collect();
                eprintln!(
                    "STATUS {name}: ops {ops:?} backlog {} | {}",
                    reply.import_backlog,
                    mesh.join(" | ")
                );
            }
        }
    }))
}
