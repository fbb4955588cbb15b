//! One task per carried topic owns the topic's only p2panda stream (a second stream on the
//! same topic would close the first): it publishes for the gRPC API, imports operations that
//! arrived over the mesh, fans processed operations out to gRPC subscribers, and hands new
//! local and iroh operations to the mesh.

use std::time::Duration;

use futures_util::StreamExt;
use lorabridge_proto::RawOp;
use p2panda::Node;
use p2panda::operation::{Header, LogId, Operation};
use p2panda::streams::{Source, StreamEvent};
use p2panda_core::{Body, Topic};
use tokio::sync::{broadcast, mpsc, oneshot};

/// An operation as gRPC subscribers see it.
#[derive(Clone, Debug)]
pub struct AppEvent {
    pub topic: [u8; 32],
    pub author: [u8; 32],
    pub id: [u8; 32],
    pub timestamp: u64,
    pub payload: Vec<u8>,
    /// How it reached this bridge: "local", "iroh" or a mesh transport ("lora", "reticulum").
    pub via: &'static str,
}

pub enum Command {
    Publish {
        payload: Vec<u8>,
        reply: oneshot::Sender<Result<[u8; 32], String>>,
    },
    /// An operation decoded from a mesh transport, to import into the node.
    Import { op: RawOp, via: &'static str },
}

/// Subscribers that fall this far behind are dropped (and told so) rather than slowing others.
const SUBSCRIBER_BUFFER: usize = 1024;
/// Imports are batched this long before the stream is renewed for iroh (see `renew_for_iroh`).
const IROH_RENEW_DELAY: Duration = Duration::from_millis(200);

#[derive(Clone)]
pub struct TopicHandle {
    pub commands: mpsc::Sender<Command>,
    pub events: broadcast::Sender<AppEvent>,
}

/// The running task; it ends (and lets go of the node) once every `TopicHandle` is dropped.
pub type TopicTask = tokio::task::JoinHandle<()>;

/// Starts the topic's task. New local and iroh operations go to `to_mesh`.
pub async fn spawn(
    node: std::sync::Arc<Node>,
    topic: [u8; 32],
    to_mesh: Option<mpsc::Sender<([u8; 32], RawOp)>>,
) -> Result<(TopicHandle, TopicTask), String> {
    let (commands, mut command_rx) = mpsc::channel(64);
    let (events, _) = broadcast::channel(SUBSCRIBER_BUFFER);
    let handle = TopicHandle {
        commands,
        events: events.clone(),
    };
    let p2p_topic = Topic::from(topic);
    let (mut publisher, mut subscription) = node
        .stream::<Vec<u8>>(p2p_topic)
        .await
        .map_err(|e| format!("cannot open topic stream: {e}"))?;
    let task = tokio::spawn(async move {
        let mut imported_via: std::collections::HashMap<[u8; 32], &'static str> =
            Default::default();
        let mut renew_at: Option<tokio::time::Instant> = None;
        loop {
            let renew = async {
                match renew_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                command = command_rx.recv() => match command {
                    None => break,
                    Some(Command::Publish { payload, reply }) => {
                        let result = match publisher.publish(payload).await {
                            Ok(future) => {
                                let id = *future.hash().as_bytes();
                                future.await.map(|_| id).map_err(|e| format!("publish was not processed: {e}"))
                            }
                            Err(e) => Err(format!("cannot publish: {e}")),
                        };
                        let _ = reply.send(result);
                    }
                    Some(Command::Import { op, via }) => match checked(&op, p2p_topic) {
                        Ok(operation) => {
                            imported_via.insert(*operation.hash.as_bytes(), via);
                            match publisher.import(futures_util::stream::iter([operation])).await {
                                Ok(done) => {
                                    let _ = done.await;
                                    renew_at.get_or_insert(tokio::time::Instant::now() + IROH_RENEW_DELAY);
                                }
                                Err(e) => tracing::warn!(topic = %hex::encode(topic), "import failed: {e}"),
                            }
                        }
                        Err(reason) => tracing::warn!(topic = %hex::encode(topic), "refused a {via} operation: {reason}"),
                    },
                },
                event = subscription.next() => match event {
                    None => break,
                    Some(StreamEvent::Processed { operation, source }) => {
                        let id = *operation.id().as_bytes();
                        let via = match source {
                            Source::LocalStore => "local",
                            Source::SyncSession { .. } => "iroh",
                            Source::ExternalStream { .. } => imported_via.remove(&id).unwrap_or("mesh"),
                        };
                        let event = operation.processed();
                        let raw = RawOp { header: event.header().to_bytes(), body: event.body().map(|b| b.to_bytes()) };
                        let _ = events.send(AppEvent {
                            topic,
                            author: *operation.author().as_bytes(),
                            id,
                            timestamp: operation.timestamp(),
                            payload: operation.message().clone(),
                            via,
                        });
                        if !matches!(source, Source::ExternalStream { .. }) && let Some(mesh) = &to_mesh {
                            let _ = mesh.send((topic, raw)).await;
                        }
                    }
                    Some(_) => {}
                },
                () = renew => {
                    renew_at = None;
                    // Workaround for p2panda 0.7 not pushing imported operations to live iroh
                    // sessions (facts/p2panda.md): a new stream starts a new sync round.
                    drop((publisher, subscription));
                    match node.stream::<Vec<u8>>(p2p_topic).await {
                        Ok((p, s)) => (publisher, subscription) = (p, s),
                        Err(e) => {
                            tracing::error!(topic = %hex::encode(topic), "cannot renew topic stream: {e}");
                            break;
                        }
                    }
                }
            }
        }
    });
    Ok((handle, task))
}

/// Checks an operation from the mesh before it goes near the node: canonical header,
/// signature, the topic's log, body matching the header.
fn checked(op: &RawOp, topic: Topic) -> Result<Operation, String> {
    lorabridge_proto::header::check(&op.header).map_err(|e| format!("bad header: {e}"))?;
    let header: Header = p2panda_core::cbor::decode_cbor(&op.header[..])
        .map_err(|e| format!("not a p2panda Node API header: {e}"))?;
    if header.extensions.log_id() != LogId::from_topic(topic) {
        return Err("operation belongs to another topic".into());
    }
    let operation = Operation {
        hash: p2panda_core::Hash::digest(&op.header),
        header,
        body: op.body.as_deref().map(Body::new),
    };
    p2panda_core::validate_operation(&operation).map_err(|e| format!("invalid operation: {e}"))?;
    Ok(operation)
}
