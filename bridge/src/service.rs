//! The gRPC services: LoRes' Panda API (drop-in) and the bridge's status API.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tonic::{Request, Response, Status};

use crate::actor::Command;
use crate::actor::topics::AppEvent;
use crate::bridge_db::{BridgeDb, KeyLocks, MAX_IDEMPOTENCY_KEY};
use crate::error::PublishError;
use crate::grpc::panda::panda_server::Panda;
use crate::grpc::panda::{OperationEvent, PublishRequest, PublishResponse, SubscribeRequest};
use crate::grpc::status::status_server;
use crate::grpc::status::{StatusReply, StatusRequest};
use crate::lores::AppBindings;
use crate::web::StatusSource;

/// Longest a Publish waits for the node to persist its operation.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);

pub struct PandaService {
    /// Which topic each app instance uses.
    pub bindings: Arc<AppBindings>,
    /// Each carried topic's events, for subscribers.
    pub events: Arc<HashMap<[u8; 32], broadcast::Sender<AppEvent>>>,
    pub actor: mpsc::Sender<Command>,
    pub bridge_db: BridgeDb,
    pub keys: KeyLocks,
    /// Flips when the bridge stops: open subscriptions end, so shutdown does not wait on them.
    pub shutdown: watch::Receiver<bool>,
}

impl PandaService {
    /// The topic of an app instance; NOT_FOUND (as LoRes answers, and as its client reads as
    /// "region not bound") when no configured region binds it.
    fn topic(&self, app_id: &str, instance_id: &str) -> Result<[u8; 32], Status> {
        self.bindings
            .resolve(app_id, instance_id)
            .filter(|topic| self.events.contains_key(topic))
            .ok_or_else(|| {
                Status::not_found(format!(
                    "No region bound to app {app_id:?} instance {instance_id:?}: add the app to \
                     `apps` (or \"{app_id}:{instance_id}\" to `instances`) of a [[regions]] \
                     entry in the bridge's config"
                ))
            })
    }

    /// Publishes once per idempotency key: the key is recorded only after the node persisted
    /// the operation, and publishes with one key run one at a time.
    async fn publish_once(
        &self,
        topic: [u8; 32],
        payload: Vec<u8>,
        key: Option<&[u8]>,
    ) -> Result<(), PublishError> {
        let _lock = match key {
            Some(key) => Some(self.keys.lock(&topic, key).await),
            None => None,
        };
        if let Some(key) = key
            && self
                .bridge_db
                .key_used(&topic, key)
                .await
                .map_err(|e| PublishError::BridgeDb(e.to_string()))?
        {
            return Ok(());
        }
        let (reply, done) = oneshot::channel();
        self.actor
            .send(Command::Publish {
                topic,
                payload,
                reply,
            })
            .await
            .map_err(|_| PublishError::Stopped)?;
        done.await.map_err(|_| PublishError::Stopped)??;
        if let Some(key) = key
            && let Err(e) = self.bridge_db.record_key(&topic, key).await
        {
            // Published: a retry with this key will publish again, a duplicate, not a loss.
            tracing::warn!("cannot record an idempotency key: {e}");
        }
        Ok(())
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<OperationEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Panda for PandaService {
    async fn publish(
        &self,
        request: Request<PublishRequest>,
    ) -> Result<Response<PublishResponse>, Status> {
        let request = request.into_inner();
        let topic = self.topic(&request.app_id, &request.instance_id)?;
        if request.idempotency_key.len() > MAX_IDEMPOTENCY_KEY {
            return Err(Status::invalid_argument(format!(
                "idempotency_key is {} bytes; at most {MAX_IDEMPOTENCY_KEY} are accepted",
                request.idempotency_key.len()
            )));
        }
        let key = (!request.idempotency_key.is_empty()).then_some(&request.idempotency_key[..]);
        tokio::time::timeout(
            PUBLISH_TIMEOUT,
            self.publish_once(topic, request.payload, key),
        )
        .await
        .unwrap_or(Err(PublishError::TimedOut(PUBLISH_TIMEOUT)))?;
        Ok(Response::new(PublishResponse {}))
    }

    type SubscribeStream = EventStream;

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let request = request.get_ref();
        let topic = self.topic(&request.app_id, &request.instance_id)?;
        let mut shutdown = self.shutdown.clone();
        let stopped = async move {
            let _ = shutdown.wait_for(|stopped| *stopped).await;
        };
        let events = BroadcastStream::new(self.events[&topic].subscribe())
            .map(|event| match event {
                Ok(event) => Ok(operation_event(event)),
                Err(BroadcastStreamRecvError::Lagged(missed)) => Err(Status::data_loss(format!(
                    "subscriber fell {missed} operations behind; subscribe again"
                ))),
            })
            .take_until(stopped);
        Ok(Response::new(Box::pin(events)))
    }
}

fn operation_event(event: AppEvent) -> OperationEvent {
    OperationEvent {
        topic_id: event.topic.to_vec(),
        author: event.author.to_vec(),
        operation_id: event.id.to_vec(),
        timestamp: event.timestamp,
        payload: event.payload,
    }
}

/// The status service: what [`StatusSource::snapshot`] says, as the web window shows it too.
pub struct StatusService {
    pub source: StatusSource,
}

#[tonic::async_trait]
impl status_server::Status for StatusService {
    async fn get_status(&self, _: Request<StatusRequest>) -> Result<Response<StatusReply>, Status> {
        let status = self
            .source
            .snapshot()
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(status))
    }
}
