//! The gRPC services: LoRes' Panda API (drop-in) and the bridge's status API.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use tokio::sync::{oneshot, watch};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tonic::{Request, Response, Status};

use crate::grpc::panda::panda_server::Panda;
use crate::grpc::panda::{OperationEvent, PublishRequest, PublishResponse, SubscribeRequest};
use crate::grpc::status::status_server;
use crate::grpc::status::{
    Neighbour, StatusReply, StatusRequest, SubBandAirtime, TopicStatus, TransportStatus,
};
use crate::mesh::{LORA, MeshStatus, RETICULUM, TransportView};
use crate::state::State;
use crate::topic::{AppEvent, Command, TopicHandle};

/// An app's topic, as carried by this bridge.
#[derive(Clone)]
pub struct AppTopic {
    pub topic: [u8; 32],
    pub region: [u8; 32],
    pub app_id: Option<String>,
    pub handle: TopicHandle,
}

pub struct PandaService {
    /// App id → its topic (the first configured region that carries the app).
    pub apps: Arc<HashMap<String, AppTopic>>,
    pub state: State,
    /// Flips when the bridge stops: open subscriptions end, so shutdown does not wait on them.
    pub shutdown: watch::Receiver<bool>,
}

impl PandaService {
    fn app(&self, app_id: &str) -> Result<&AppTopic, Status> {
        self.apps.get(app_id).ok_or_else(|| {
            Status::failed_precondition(format!(
                "app_id {app_id:?} is not carried by this bridge: add it to `apps` of a [[regions]] entry in the config"
            ))
        })
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
        let app = self.app(&request.app_id)?;
        let key = (!request.idempotency_key.is_empty()).then_some(&request.idempotency_key);
        if let Some(key) = key {
            let fresh = self
                .state
                .claim_key(&request.app_id, &request.instance_id, key)
                .await
                .map_err(Status::internal)?;
            if !fresh {
                return Ok(Response::new(PublishResponse {}));
            }
        }
        let (reply, done) = oneshot::channel();
        let sent = app
            .handle
            .commands
            .send(Command::Publish {
                payload: request.payload,
                reply,
            })
            .await;
        let result = match sent {
            Ok(()) => done
                .await
                .unwrap_or_else(|_| Err("the topic task stopped".into())),
            Err(_) => Err("the topic task stopped".into()),
        };
        if let Err(reason) = result {
            if let Some(key) = key {
                let _ = self
                    .state
                    .release_key(&request.app_id, &request.instance_id, key)
                    .await;
            }
            return Err(Status::unavailable(reason));
        }
        Ok(Response::new(PublishResponse {}))
    }

    type SubscribeStream = EventStream;

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let app = self.app(&request.get_ref().app_id)?;
        let mut shutdown = self.shutdown.clone();
        let stopped = async move {
            let _ = shutdown.wait_for(|stopped| *stopped).await;
        };
        let events = BroadcastStream::new(app.handle.events.subscribe())
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

pub struct StatusService {
    pub node_id: [u8; 32],
    pub network_id: [u8; 32],
    pub topics: Vec<AppTopic>,
    pub mesh: Option<watch::Receiver<MeshStatus>>,
}

#[tonic::async_trait]
impl status_server::Status for StatusService {
    async fn get_status(&self, _: Request<StatusRequest>) -> Result<Response<StatusReply>, Status> {
        let mesh = self.mesh.as_ref().map(|rx| rx.borrow().clone());
        let topics = self
            .topics
            .iter()
            .map(|t| TopicStatus {
                topic_id: t.topic.to_vec(),
                app_id: t.app_id.clone().unwrap_or_default(),
                region_id: t.region.to_vec(),
                operations: mesh
                    .as_ref()
                    .and_then(|s| s.ops_per_topic.get(&t.topic).copied())
                    .unwrap_or(0),
            })
            .collect();
        let mut transports = vec![TransportStatus {
            name: "iroh".into(),
            state: "ready".into(),
            ..Default::default()
        }];
        if let Some(mesh) = mesh {
            let views = [(LORA, mesh.lora), (RETICULUM, mesh.reticulum)];
            for (name, view) in views {
                transports.extend(view.map(|v| transport_status(name, v)));
            }
        }
        Ok(Response::new(StatusReply {
            node_id: self.node_id.to_vec(),
            network_id: self.network_id.to_vec(),
            topics,
            transports,
        }))
    }
}

fn transport_status(name: &str, view: TransportView) -> TransportStatus {
    let c = view.counters;
    TransportStatus {
        name: name.into(),
        state: view.state,
        neighbours: view
            .neighbours
            .iter()
            .map(|(n, ago)| Neighbour {
                tag: hex::encode(n.tag.0),
                last_heard_secs_ago: ago.as_secs_f64(),
                rssi_dbm: n.rssi_dbm,
                snr_db: n.snr_db,
                frames: n.frames,
            })
            .collect(),
        airtime: view
            .airtime
            .iter()
            .map(|a| SubBandAirtime {
                sub_band: a.sub_band.clone(),
                used_secs: a.duty_cycle_used.as_secs_f64(),
                budget_secs: a.duty_cycle_budget.map_or(0.0, |b| b.as_secs_f64()),
            })
            .collect(),
        queue_depth: view.queue_depth as u64,
        frames_sent: c.frames_sent,
        frames_heard: c.frames_heard,
        frames_rejected: c.frames_rejected,
        ops_received: c.ops_received,
        ops_sent: c.ops_sent,
    }
}
