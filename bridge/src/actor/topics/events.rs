//! What each event of a topic's stream means: operations delivered to subscribers (once
//! each), imports settled, renewals scheduled, and the [`News`] the rest of the actor hears.
//!
//! Kept apart from the parent module, which opens streams and starts the work around them,
//! because this is one long match over p2panda's [`StreamEvent`]s that reads on its own.

use lorabridge_proto::RawOp;
use p2panda::operation::Header;
use p2panda::streams::{Source, StreamEvent};
use p2panda_core::traits::Digest;
use tokio::time::Instant;

use super::{AppEvent, News, RENEW_DELAY, Topics};
use crate::actor::store::OpKey;

impl Topics {
    /// An event of `topic`'s stream: delivers operations to subscribers and says what the
    /// rest of the actor must know.
    pub fn on_event(
        &mut self,
        topic: [u8; 32],
        event: StreamEvent<Vec<u8>>,
        now: Instant,
        news: &mut Vec<News>,
    ) {
        let Some(stream) = self.streams.get_mut(&topic) else {
            return;
        };
        match event {
            StreamEvent::Processed { operation, source } => {
                let header = operation.processed().header();
                let id = *operation.id().as_bytes();
                let key = key_of(&topic, header);
                let raw = RawOp {
                    header: header.to_bytes(),
                    body: operation.processed().body().map(|b| b.to_bytes()),
                };
                let from_mesh = match source {
                    Source::ExternalStream { .. } => {
                        stream.batch.as_mut().and_then(|b| b.remove(&id))
                    }
                    _ => None,
                };
                let via = match (&source, &from_mesh) {
                    (_, Some(import)) => import.via,
                    (Source::SyncSession { .. }, _) => "iroh",
                    (Source::LocalStore, _) if operation.author() == self.node.id() => "local",
                    _ => "stored",
                };
                let replayed_from_before =
                    stream.replaying && stream.at_start && matches!(source, Source::LocalStore);
                if stream.delivered.insert(id) && !replayed_from_before {
                    let _ = stream.events.send(AppEvent {
                        topic,
                        author: *operation.author().as_bytes(),
                        id,
                        timestamp: operation.timestamp(),
                        payload: operation.message().clone(),
                        via,
                    });
                }
                stream
                    .to_ack
                    .insert(*operation.author().as_bytes(), operation);
                news.push(News::Persisted {
                    key,
                    op: raw,
                    from_mesh: from_mesh.is_some(),
                });
            }
            StreamEvent::DecodeFailed { event, error } => {
                // Stored by the node, but not an app payload (`Vec<u8>`): not delivered to
                // subscribers, still carried over the mesh.
                tracing::debug!(topic = %hex::encode(topic), "an operation's body is not an app payload: {error}");
                let id = *event.hash().as_bytes();
                let from_mesh = stream.batch.as_mut().and_then(|b| b.remove(&id)).is_some();
                news.push(News::Persisted {
                    key: key_of(&topic, event.header()),
                    op: RawOp {
                        header: event.header().to_bytes(),
                        body: event.body().map(|b| b.to_bytes()),
                    },
                    from_mesh,
                });
            }
            StreamEvent::ProcessingFailed {
                event,
                error,
                source,
            } => {
                let id = *event.hash().as_bytes();
                let import = match source {
                    Source::ExternalStream { .. } => {
                        stream.batch.as_mut().and_then(|b| b.remove(&id))
                    }
                    _ => None,
                };
                let reason = error.to_string();
                match import {
                    Some(import) => news.push(News::Refused {
                        key: import.key,
                        reason,
                    }),
                    None => tracing::debug!(
                        topic = %hex::encode(topic), "p2panda refused an operation: {reason}"
                    ),
                }
            }
            StreamEvent::ImportEnded { .. } => {
                tracing::debug!(topic = %hex::encode(topic), left = stream.batch.as_ref().map(|b| b.len()), backlog = stream.backlog.len(), "import ended");
                // Operations without a body are persisted without an event of their own.
                for import in stream.batch.take().unwrap_or_default().into_values() {
                    news.push(News::Persisted {
                        key: import.key,
                        op: import.op,
                        from_mesh: true,
                    });
                }
                // Workaround: p2panda 0.7 does not push imported operations to live iroh
                // sessions (facts/p2panda.md); a new stream starts new sync sessions.
                if self.renew_for_iroh {
                    stream.renew_after(now + RENEW_DELAY);
                }
            }
            StreamEvent::SyncStarted { remote_node_id, .. } => {
                let peer = *remote_node_id.as_bytes();
                if stream.sessions.started(peer) {
                    tracing::debug!(topic = %hex::encode(topic), "renewing the stream to free its past sync sessions");
                    stream.renew_after(now);
                }
                news.push(News::IrohPeer {
                    peer,
                    reachable: true,
                });
            }
            // Without an error the session goes on in live mode.
            StreamEvent::SyncEnded {
                remote_node_id,
                error,
                ..
            } => news.push(News::IrohPeer {
                peer: *remote_node_id.as_bytes(),
                reachable: error.is_none(),
            }),
            StreamEvent::AckFailed { error, .. } => tracing::warn!(
                topic = %hex::encode(topic), "p2panda could not acknowledge an operation: {error}"
            ),
            StreamEvent::ReplayFailed { error } => {
                stream.replaying = false;
                tracing::warn!(topic = %hex::encode(topic), "p2panda could not replay the topic: {error}")
            }
            StreamEvent::ReplayStarted { .. } => stream.replaying = true,
            StreamEvent::ReplayEnded => stream.replaying = false,
            StreamEvent::ImportStarted { session_id } => {
                tracing::debug!(session_id, "import started")
            }
        }
    }
}

fn key_of(topic: &[u8; 32], header: &Header) -> OpKey {
    (
        *topic,
        *header.verifying_key.as_bytes(),
        u64::from(header.seq_num),
    )
}
