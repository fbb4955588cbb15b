//! The topics' p2panda streams, owned by the actor: one stream per topic (a second stream on
//! the same topic would close the first), drained on every turn of the actor's loop.
//!
//! Nothing here awaits p2panda in the loop. Publishes, imports, acks and stream renewals are
//! futures that the actor runs beside its loop ([`super::Work`]); their results come back as
//! [`super::Done`]. This matters because p2panda's stream task delivers every event into a
//! 16-slot channel, and a publish or an import completes only after the task has moved on:
//! a loop that awaited an import while not draining events deadlocked after a few imports.
//!
//! Imports go in batches, one batch in flight per topic, so that a log's operations reach
//! p2panda in order. Events are acknowledged (the node runs with `AckPolicy::Explicit`) only
//! once they have been handed to subscribers: an event lost on the way (a stream renewed
//! under it, a crash) is replayed by the next stream, and a replay of something already
//! delivered is recognised by id and not delivered twice.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use lorabridge_proto::RawOp;
use lorabridge_proto::recent::RecentIds;
use p2panda::Node;
use p2panda::operation::{Header, LogId, Operation};
use p2panda::streams::{ProcessedOperation, StreamEvent, StreamPublisher};
use p2panda_core::{Body, Topic};
use tokio::sync::{broadcast, oneshot};
use tokio::time::Instant;
use tokio_stream::StreamMap;

use super::sessions::Sessions;
use super::store::OpKey;
use super::{Done, Work};
use crate::error::PublishError;

mod events;

/// An operation as gRPC subscribers see it.
#[derive(Clone, Debug)]
pub struct AppEvent {
    pub topic: [u8; 32],
    pub author: [u8; 32],
    pub id: [u8; 32],
    /// Microseconds since the Unix epoch, as p2panda stamps operations (and LoRes sends them).
    pub timestamp: u64,
    pub payload: Vec<u8>,
    /// How it reached this bridge: "local" (published here), "iroh", a mesh transport ("lora",
    /// "reticulum"), or "stored" (replayed from the node's database).
    pub via: &'static str,
}

/// Subscribers that fall this far behind miss events and are told so (gRPC DATA_LOSS).
pub const SUBSCRIBER_BUFFER: usize = 1024;
/// Operations from the mesh handed to p2panda in one import.
const IMPORT_BATCH: usize = 64;
/// Publishes held while a topic's stream is reopened; more are refused as busy.
const MAX_HELD_PUBLISHES: usize = 1024;
/// Ids of operations delivered to subscribers, remembered per topic to deliver each once
/// (a stream renewal replays what was not acknowledged yet, and iroh and the mesh may bring
/// the same operation at once).
const DELIVERED_MEMORY: usize = 8192;
/// A renewal for iroh waits this long after an import, so that one renewal carries a burst.
const RENEW_DELAY: Duration = Duration::from_millis(200);
/// ...and renewals of one topic are at least this far apart during a long catch-up.
const RENEW_GAP: Duration = Duration::from_secs(1);
/// After a stream failed to open, the next try.
const REOPEN_DELAY: Duration = Duration::from_secs(1);

/// An operation from the mesh to import, with where it came from.
#[derive(Clone, Debug)]
pub struct Import {
    pub key: OpKey,
    pub op: RawOp,
    pub via: &'static str,
}

/// What an event of a topic's stream means for the rest of the actor.
#[derive(Debug)]
pub enum News {
    /// The node holds this operation now. `from_mesh` is false for operations published here,
    /// synced over iroh or replayed: those are new to the engine.
    Persisted {
        key: OpKey,
        op: RawOp,
        from_mesh: bool,
    },
    /// The node refused an operation the mesh brought.
    Refused { key: OpKey, reason: String },
    /// An iroh peer synced with us (`reachable`), or its sync session failed.
    IrohPeer { peer: [u8; 32], reachable: bool },
}

struct Publish {
    payload: Vec<u8>,
    reply: oneshot::Sender<Result<[u8; 32], PublishError>>,
}

type Subscription = p2panda::streams::StreamSubscription<Vec<u8>>;
type Events = futures_util::stream::BoxStream<'static, Option<StreamEvent<Vec<u8>>>>;

/// A subscription's events, then `None` when it ends.
fn events(subscription: Subscription) -> Events {
    use futures_util::StreamExt;
    subscription
        .map(Some)
        .chain(futures_util::stream::once(async { None }))
        .boxed()
}

/// One topic's stream and the work around it.
struct TopicStream {
    events: broadcast::Sender<AppEvent>,
    /// `None` while the stream is being opened or renewed.
    publisher: Option<StreamPublisher<Vec<u8>>>,
    backlog: VecDeque<Import>,
    /// The import p2panda is processing: each operation's key and transport, by id.
    batch: Option<HashMap<[u8; 32], Import>>,
    publishing: usize,
    held: VecDeque<Publish>,
    renew_at: Option<Instant>,
    last_renewal: Instant,
    /// The sync sessions the current stream started: it is renewed after too many.
    sessions: Sessions,
    delivered: RecentIds,
    /// Whether the stream is replaying what the node processed but did not see acknowledged.
    replaying: bool,
    /// Whether this is the stream opened at start: its replay is of operations that arrived
    /// before the bridge stopped (or crashed), and a subscription only sees what arrives after
    /// it starts, so they are not delivered (an app subscribing again after a restart would
    /// see them twice). A renewed stream's replay is delivered: it brings what the renewal
    /// cut off.
    at_start: bool,
    /// The newest processed operation per log, waiting to be acknowledged (acknowledging an
    /// operation acknowledges the log up to it), and whether an ack is running.
    to_ack: HashMap<[u8; 32], ProcessedOperation<Vec<u8>>>,
    acking: bool,
}

impl TopicStream {
    /// Renews the stream at `at` or later, at least [`RENEW_GAP`] after the last renewal,
    /// unless a renewal is already due.
    fn renew_after(&mut self, at: Instant) {
        let at = at.max(self.last_renewal + RENEW_GAP);
        self.renew_at.get_or_insert(at);
    }
}

/// Every topic's stream. See the module docs.
pub struct Topics {
    node: Arc<Node>,
    streams: HashMap<[u8; 32], TopicStream>,
    /// Each topic's events, ending with `None` if the stream ends by itself.
    subscriptions: StreamMap<[u8; 32], Events>,
    /// Whether imported operations must be pushed to iroh peers by renewing the stream.
    renew_for_iroh: bool,
}

impl Topics {
    /// Opens a stream for each topic; `renew_for_iroh` when iroh is on (see
    /// [`Topics::on_import_ended`]).
    pub async fn open(
        node: Arc<Node>,
        topics: &[[u8; 32]],
        renew_for_iroh: bool,
    ) -> Result<Self, String> {
        let mut this = Self {
            node,
            streams: HashMap::new(),
            subscriptions: StreamMap::new(),
            renew_for_iroh,
        };
        for topic in topics {
            let (publisher, subscription) = this
                .node
                .stream::<Vec<u8>>(Topic::from(*topic))
                .await
                .map_err(|e| {
                    format!(
                        "cannot open the stream of topic {}: {e}",
                        hex::encode(topic)
                    )
                })?;
            this.subscriptions.insert(*topic, events(subscription));
            this.streams.insert(
                *topic,
                TopicStream {
                    events: broadcast::channel(SUBSCRIBER_BUFFER).0,
                    publisher: Some(publisher),
                    backlog: VecDeque::new(),
                    batch: None,
                    publishing: 0,
                    held: VecDeque::new(),
                    renew_at: None,
                    last_renewal: Instant::now(),
                    sessions: Sessions::default(),
                    delivered: RecentIds::new(DELIVERED_MEMORY),
                    replaying: false,
                    at_start: true,
                    to_ack: HashMap::new(),
                    acking: false,
                },
            );
        }
        Ok(this)
    }

    /// The senders subscribers subscribe to, per topic.
    pub fn event_senders(&self) -> HashMap<[u8; 32], broadcast::Sender<AppEvent>> {
        self.streams
            .iter()
            .map(|(t, s)| (*t, s.events.clone()))
            .collect()
    }

    /// The next event of any topic's stream (`None`: that stream ended); pending while there
    /// is no stream.
    pub async fn next_event(&mut self) -> ([u8; 32], Option<StreamEvent<Vec<u8>>>) {
        use futures_util::StreamExt;
        if self.subscriptions.is_empty() {
            std::future::pending::<()>().await;
        }
        match self.subscriptions.next().await {
            Some(next) => next,
            None => std::future::pending().await,
        }
    }

    /// A topic's stream ended by itself (p2panda's task stopped): it is reopened.
    pub fn on_stream_ended(&mut self, topic: &[u8; 32], now: Instant) {
        tracing::warn!(topic = %hex::encode(topic), "the topic's stream ended; reopening it");
        if let Some(stream) = self.streams.get_mut(topic) {
            stream.renew_at = Some(now);
        }
    }

    /// Operations waiting to be imported, over all topics.
    pub fn backlog(&self) -> usize {
        self.streams
            .values()
            .map(|s| s.backlog.len() + s.batch.as_ref().map_or(0, HashMap::len))
            .sum()
    }

    /// Queues an operation from the mesh for import.
    pub fn import(&mut self, topic: &[u8; 32], import: Import) {
        if let Some(stream) = self.streams.get_mut(topic) {
            stream.backlog.push_back(import);
        }
    }

    /// Publishes `payload` in `topic` as soon as its stream is open; the reply comes from the
    /// publish's future (a [`Done::Published`]).
    pub fn publish(
        &mut self,
        topic: &[u8; 32],
        payload: Vec<u8>,
        reply: oneshot::Sender<Result<[u8; 32], PublishError>>,
        work: &mut Work,
    ) {
        let Some(stream) = self.streams.get_mut(topic) else {
            let _ = reply.send(Err(PublishError::NotCarried));
            return;
        };
        let job = Publish { payload, reply };
        match &stream.publisher {
            Some(publisher) => start_publish(*topic, stream, publisher.clone(), job, work),
            None if stream.held.len() < MAX_HELD_PUBLISHES => stream.held.push_back(job),
            None => {
                let _ = job.reply.send(Err(PublishError::Busy));
            }
        }
    }

    /// A publish's future finished.
    pub fn on_published(&mut self, topic: &[u8; 32]) {
        if let Some(stream) = self.streams.get_mut(topic) {
            stream.publishing -= 1;
        }
    }

    /// Starts what is due: import batches, acks, renewals. Returns the earliest instant at
    /// which something else becomes due.
    pub fn poll(&mut self, now: Instant, work: &mut Work, news: &mut Vec<News>) -> Option<Instant> {
        let mut next = None;
        for (topic, stream) in &mut self.streams {
            if !stream.acking && !stream.to_ack.is_empty() {
                stream.acking = true;
                let ops: Vec<_> = stream.to_ack.drain().map(|(_, op)| op).collect();
                let topic = *topic;
                work.push(
                    async move {
                        for op in ops {
                            if let Err(e) = op.ack().await {
                                tracing::warn!(topic = %hex::encode(topic), "cannot acknowledge an operation: {e}");
                            }
                        }
                        Done::Acked { topic }
                    }
                    .boxed(),
                );
            }
            let Some(publisher) = &stream.publisher else {
                continue;
            };
            if let Some(at) = stream.renew_at {
                if at > now {
                    next = earliest(next, Some(at));
                } else if stream.batch.is_none() && stream.publishing == 0 {
                    // Dropping both halves closes the stream, so that the new one starts new
                    // sync sessions; what was in flight in the old one is replayed by the new.
                    stream.publisher = None;
                    stream.renew_at = None;
                    stream.last_renewal = now;
                    stream.sessions.reset();
                    stream.at_start = false;
                    self.subscriptions.remove(topic);
                    work.push(open_stream(self.node.clone(), *topic, Duration::ZERO));
                    continue;
                }
                // Else due but waiting for the import or publishes in flight: their results
                // wake the loop.
            }
            if stream.batch.is_none() && !stream.backlog.is_empty() {
                let take = stream.backlog.len().min(IMPORT_BATCH);
                let mut batch = HashMap::new();
                let mut operations = Vec::new();
                for import in stream.backlog.drain(..take) {
                    match operation(&import.op, topic) {
                        Ok(operation) => {
                            batch.insert(*operation.hash.as_bytes(), import);
                            operations.push(operation);
                        }
                        Err(reason) => news.push(News::Refused {
                            key: import.key,
                            reason,
                        }),
                    }
                }
                if operations.is_empty() {
                    continue;
                }
                tracing::debug!(topic = %hex::encode(topic), operations = batch.len(), "importing");
                stream.batch = Some(batch);
                let (publisher, topic) = (publisher.clone(), *topic);
                work.push(
                    async move {
                        let result = publisher
                            .import(futures_util::stream::iter(operations))
                            .await
                            .map(|_| ())
                            .map_err(|e| e.to_string());
                        Done::ImportStarted { topic, result }
                    }
                    .boxed(),
                );
            }
        }
        next
    }

    /// An import could not even start (the stream's task is gone): its operations go back to
    /// the front of the backlog, and the stream is reopened.
    pub fn on_import_failed(&mut self, topic: &[u8; 32], reason: &str, now: Instant) {
        tracing::warn!(topic = %hex::encode(topic), "import failed to start, reopening the stream: {reason}");
        if let Some(stream) = self.streams.get_mut(topic)
            && let Some(batch) = stream.batch.take()
        {
            for import in batch.into_values() {
                stream.backlog.push_front(import);
            }
            stream.renew_at = Some(now);
        }
    }

    pub fn on_acked(&mut self, topic: &[u8; 32]) {
        if let Some(stream) = self.streams.get_mut(topic) {
            stream.acking = false;
        }
    }

    /// A stream was (re)opened, or failed to open.
    pub fn on_opened(
        &mut self,
        topic: [u8; 32],
        result: Result<(StreamPublisher<Vec<u8>>, Subscription), String>,
        work: &mut Work,
    ) {
        let Some(stream) = self.streams.get_mut(&topic) else {
            return;
        };
        match result {
            Ok((publisher, subscription)) => {
                self.subscriptions.insert(topic, events(subscription));
                for job in stream.held.drain(..).collect::<Vec<_>>() {
                    start_publish(topic, stream, publisher.clone(), job, work);
                }
                stream.publisher = Some(publisher);
            }
            Err(reason) => {
                tracing::error!(topic = %hex::encode(topic), "cannot reopen the topic's stream: {reason}");
                for job in stream.held.drain(..) {
                    let _ = job
                        .reply
                        .send(Err(PublishError::StreamClosed(reason.clone())));
                }
                work.push(open_stream(self.node.clone(), topic, REOPEN_DELAY));
            }
        }
    }
}

fn start_publish(
    topic: [u8; 32],
    stream: &mut TopicStream,
    publisher: StreamPublisher<Vec<u8>>,
    job: Publish,
    work: &mut Work,
) {
    stream.publishing += 1;
    work.push(
        async move {
            let result = publish(publisher, job.payload).await;
            Done::Published {
                topic,
                reply: job.reply,
                result,
            }
        }
        .boxed(),
    );
}

/// Publishes and waits until the node has processed (persisted) the operation.
async fn publish(
    publisher: StreamPublisher<Vec<u8>>,
    payload: Vec<u8>,
) -> Result<[u8; 32], PublishError> {
    let pending = publisher
        .publish(payload)
        .await
        .map_err(|e| PublishError::Failed(e.to_string()))?;
    let id = *pending.hash().as_bytes();
    let event = pending
        .await
        .map_err(|_| PublishError::StreamClosed("the node stopped processing".into()))?;
    match event.failure_reason() {
        Some(reason) => Err(PublishError::Failed(reason.to_string())),
        None => Ok(id),
    }
}

/// Opens `topic`'s stream after `delay`.
fn open_stream(node: Arc<Node>, topic: [u8; 32], delay: Duration) -> super::WorkItem {
    async move {
        tokio::time::sleep(delay).await;
        let result = node
            .stream::<Vec<u8>>(Topic::from(topic))
            .await
            .map_err(|e| e.to_string());
        Done::Opened { topic, result }
    }
    .boxed()
}

/// An operation from the mesh as p2panda takes it, checked first: canonical header with a
/// valid signature, the topic's log, body matching the header.
fn operation(op: &RawOp, topic: &[u8; 32]) -> Result<Operation, String> {
    lorabridge_proto::header::check(&op.header).map_err(|e| format!("bad header: {e}"))?;
    let header: Header = p2panda_core::cbor::decode_cbor(&op.header[..])
        .map_err(|e| format!("not a p2panda Node API header: {e}"))?;
    if header.extensions.log_id() != LogId::from_topic(Topic::from(*topic)) {
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

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
