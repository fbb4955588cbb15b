//! A running bridge: the p2panda node, the actor that owns its topic streams, the sync
//! engine and the mesh transports, and the gRPC servers, started together and stopped
//! gracefully.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;

use lorabridge_hardware::{Modulation, OnAir, RegionPlan};
use lorabridge_proto::engine::{
    Budget, Engine, EngineConfig, LinkConfig, LinkId, MAX_RECENT_IDS, TrickleConfig,
};
use lorabridge_proto::{NetworkTag, TopicTag};
use lorabridge_radio::Radio;
use p2panda::Node;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::Routes;

use crate::actor::radio::RadioPort;
use crate::actor::reticulum::ReticulumPort;
use crate::actor::status::Transports;
use crate::actor::store::NodeStore;
use crate::actor::topics::{AppEvent, Topics};
use crate::actor::{Actor, ENGINE_EPOCH, LORA};
use crate::bridge_db::{BridgeDb, KeyLocks};
use crate::grpc::panda::panda_server::PandaServer;
use crate::grpc::status::status_server::StatusServer;
use crate::lores::{AppBindings, Carried};
use crate::node::NodeSpec;
use crate::reticulum::{Reticulum, ReticulumConfig};
use crate::service::{PandaService, StatusService};
use crate::web::{self, Configured, Recorder, StatusSource};

/// The radio and the rules it transmits under.
pub struct RadioSpec {
    pub radio: Arc<dyn Radio>,
    pub modulation: Modulation,
    pub plan: RegionPlan,
    pub mtu: usize,
}

impl RadioSpec {
    /// What the module puts on air per frame: what the engine's ledger and the airtime kept
    /// on disk are charged with.
    fn on_air(&self) -> OnAir {
        self.radio.on_air(&self.modulation)
    }
}

pub struct BridgeSpec {
    pub node: NodeSpec,
    pub topics: Vec<Carried>,
    /// Which topic each app instance publishes to and subscribes from.
    pub bindings: AppBindings,
    /// Port 0 picks a free port; `Bridge::grpc_addr` tells which.
    pub grpc: SocketAddr,
    pub status: Option<SocketAddr>,
    pub radio: Option<RadioSpec>,
    /// The Reticulum transport, for topics with `Carried::reticulum`.
    pub reticulum: Option<ReticulumConfig>,
    pub region_key: Option<[u8; 32]>,
    /// Summary pacing; `None` keeps the engine's LoRa defaults.
    pub trickle: Option<TrickleConfig>,
}

pub struct Bridge {
    pub node: Arc<Node>,
    pub grpc_addr: SocketAddr,
    pub status_addr: Option<SocketAddr>,
    events: HashMap<[u8; 32], broadcast::Sender<AppEvent>>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Commands from the gRPC API waiting for the actor; a Publish waits for room (within its
/// deadline) rather than failing.
const COMMAND_QUEUE: usize = 256;

impl Bridge {
    pub async fn start(spec: BridgeSpec) -> Result<Bridge, String> {
        let bridge_db = BridgeDb::open(spec.node.database.as_deref())
            .await
            .map_err(|e| e.to_string())?;
        let iroh = spec.node.finds_peers();
        let configured = Configured {
            lora: spec.radio.is_some(),
            reticulum: spec.reticulum.is_some(),
        };
        let (node, db) = crate::node::spawn(&spec.node).await?;
        let node = Arc::new(node);
        let (shutdown, _) = watch::channel(false);
        let mut tasks = Vec::new();

        let all: Vec<[u8; 32]> = spec.topics.iter().map(|t| t.topic).collect();
        let topics = Topics::open(node.clone(), &all, iroh).await?;
        let events = topics.event_senders();
        let lora_topics = carried_over(&spec.topics, spec.radio.is_some(), |t| t.lora);
        let rns_topics = carried_over(&spec.topics, spec.reticulum.is_some(), |t| t.reticulum);
        let mesh_topics: HashSet<[u8; 32]> =
            lora_topics.iter().chain(&rns_topics).copied().collect();
        let mesh_list: Vec<[u8; 32]> = mesh_topics.iter().copied().collect();
        let epoch = bridge_db.next_epoch().await.map_err(|e| e.to_string())?;
        let mut engine = Engine::new(
            EngineConfig {
                region_key: spec.region_key,
                epoch,
                trickle: spec
                    .trickle
                    .unwrap_or(EngineConfig::new([0; 32], [0; 32], [0; 32]).trickle),
                ..EngineConfig::new(spec.node.network_id, *node.id().as_bytes(), fresh_seed())
            },
            NodeStore::load(&db, &mesh_list).await?,
        );
        let radio = match spec.radio {
            Some(radio) => {
                let link = add_radio(&mut engine, &radio, lora_topics).await?;
                let heard = bridge_db
                    .heard(LORA, MAX_RECENT_IDS)
                    .await
                    .map_err(|e| e.to_string())?;
                for id in heard {
                    engine.mark_heard(link, id);
                }
                // The last hour's sends, so that a restart does not renew the duty cycle.
                let sends = bridge_db
                    .airtime_last_hour()
                    .await
                    .map_err(|e| e.to_string())?;
                engine.restore_airtime(
                    link,
                    sends
                        .into_iter()
                        .map(|(ago, airtime)| (ENGINE_EPOCH.saturating_sub(ago), airtime)),
                );
                let on_air = radio.on_air();
                Some(RadioPort::new(link, radio.radio, on_air))
            }
            None => None,
        };
        let reticulum = match spec.reticulum {
            Some(config) => {
                let tags = rns_topics.iter().map(TopicTag::from_topic).collect();
                let network = NetworkTag::from_network_id(&spec.node.network_id);
                let rns = Reticulum::start(config, network, tags).map_err(|e| e.to_string())?;
                Some(ReticulumPort::new(rns, rns_topics))
            }
            None => None,
        };
        let discovery = match iroh {
            true => {
                use futures_util::StreamExt;
                let events = node
                    .event_stream()
                    .await
                    .map_err(|e| format!("cannot watch the node's discovery: {e}"))?;
                Some(events.boxed())
            }
            false => None,
        };
        let (status_tx, status_rx) = watch::channel(Transports::default());
        // Subscribed to the topics before the actor runs, so it misses no operation.
        let recorder = Recorder::new(status_rx.clone(), &events, &spec.topics);
        let history = recorder.history();
        tasks.push(recorder.spawn(shutdown.subscribe()));
        let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let actor = Actor {
            node: node.clone(),
            db: db.clone(),
            engine,
            mesh_topics,
            topics,
            radio,
            reticulum,
            bridge_db: bridge_db.writer(),
            iroh,
            discovery,
        };
        tasks.push(tokio::spawn(actor.run(
            command_rx,
            status_tx,
            shutdown.subscribe(),
        )));

        let panda = PandaServer::new(PandaService {
            bindings: Arc::new(spec.bindings),
            events: Arc::new(events.clone()),
            actor: commands,
            bridge_db,
            keys: KeyLocks::default(),
            shutdown: shutdown.subscribe(),
        });
        let (grpc_addr, task) = serve(spec.grpc, shutdown.subscribe(), move |router| {
            router.add_service(panda);
        })
        .await?;
        tasks.push(task);
        let mut status_addr = None;
        if let Some(addr) = spec.status {
            let source = StatusSource {
                node_id: *node.id().as_bytes(),
                network_id: spec.node.network_id,
                topics: spec.topics.into(),
                db,
                transports: status_rx,
                history,
                configured,
                counts: Default::default(),
            };
            let grpc = StatusServer::new(StatusService {
                source: source.clone(),
            })
            .max_decoding_message_size(web::server::MAX_GRPC_REQUEST);
            let (addr, task) = web::serve(addr, Routes::new(grpc), source, shutdown.subscribe())
                .await
                .map_err(|e| e.to_string())?;
            status_addr = Some(addr);
            tasks.push(task);
        }
        Ok(Bridge {
            node,
            grpc_addr,
            status_addr,
            events,
            shutdown,
            tasks,
        })
    }

    /// Everything processed on `topic` from now on (for the demo's live view and tests).
    pub fn watch(&self, topic: &[u8; 32]) -> Option<broadcast::Receiver<AppEvent>> {
        self.events.get(topic).map(|e| e.subscribe())
    }

    /// Stops serving, lets the radio finish the frame in flight and the acks in flight
    /// finish, and closes the node. The node's UDP socket closes a few seconds later (p2panda
    /// stops its actors in the background, and it has no call to wait for that): a bridge
    /// restarted in-process on the same port must wait for it, as `Neighbourhood::restart`
    /// does. Waiting here would slow every shutdown.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        drop(self.node);
    }
}

/// The topics carried over a transport: none when the transport is not configured.
fn carried_over(
    topics: &[Carried],
    configured: bool,
    over: impl Fn(&Carried) -> bool,
) -> Vec<[u8; 32]> {
    topics
        .iter()
        .filter(|t| configured && over(t))
        .map(|t| t.topic)
        .collect()
}

/// Configures the radio and adds its broadcast link, held to the regional duty cycle.
async fn add_radio(
    engine: &mut Engine<NodeStore>,
    radio: &RadioSpec,
    topics: Vec<[u8; 32]>,
) -> Result<LinkId, String> {
    radio
        .radio
        .configure(&radio.modulation)
        .await
        .map_err(|e| format!("cannot configure the radio: {e}"))?;
    let budget = Budget {
        on_air: radio.on_air(),
        plan: radio.plan.clone(),
    };
    engine
        .add_link(
            ENGINE_EPOCH,
            LinkConfig {
                mtu: radio.mtu,
                budget: Some(budget),
                topics,
            },
        )
        .map_err(|e| e.to_string())
}

/// Serves gRPC on `addr` until shutdown; returns the bound address.
async fn serve(
    addr: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
    add: impl FnOnce(&mut tonic::service::RoutesBuilder),
) -> Result<(SocketAddr, JoinHandle<()>), String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let mut routes = tonic::service::RoutesBuilder::default();
    add(&mut routes);
    let routes = routes.routes();
    let task = tokio::spawn(async move {
        let stopped = async move {
            let _ = shutdown.changed().await;
        };
        let server = tonic::transport::Server::builder().add_routes(routes);
        if let Err(e) = server
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stopped)
            .await
        {
            tracing::error!("gRPC server on {bound} failed: {e}");
        }
    });
    Ok((bound, task))
}

/// 32 bytes from the operating system's random source (through a throwaway key, which
/// p2panda generates from it), to seed the engine's Trickle timing, hold-offs and nonces.
fn fresh_seed() -> [u8; 32] {
    *p2panda_core::SigningKey::generate().as_bytes()
}
