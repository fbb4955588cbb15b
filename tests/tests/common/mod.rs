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
