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
/// Generous: only to stop a broken build from hanging CI.
pub const LIMIT: Duration = Duration::from_secs(120);

async fn client(grpc: SocketAddr) -> PandaClient<tonic::transport::Channel> {
    PandaClient::connect(format!("http://{grpc}"))
        .await
        .expect("gRPC connects")
}

/// A subscription, with the client that carries it (dropping the client ends the stream).
pub struct Subscription {
    _client: PandaClient<tonic::transport::Channel>,
    stream: Streaming<OperationEvent>,
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
    Subscription {
        _client: client,
        stream,
    }
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
    subscription
        .stream
        .message()
        .await
        .expect("stream stays open")
        .expect("stream does not end")
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
    while !missing.is_empty() {
        match tokio::time::timeout_at(deadline, subscription.stream.message()).await {
            Ok(Ok(Some(event))) => {
                if want.contains(&event.payload) {
                    missing.remove(&event.payload);
                    *seen.entry(event.operation_id).or_default() += 1;
                }
            }
            Ok(other) => panic!("the subscription ended: {other:?}"),
            Err(_) => return Err(missing.into_iter().collect()),
        }
    }
    // Anything already on its way (a duplicate would follow its first copy closely).
    while let Ok(Ok(Some(event))) =
        tokio::time::timeout(Duration::from_millis(500), subscription.stream.message()).await
    {
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
