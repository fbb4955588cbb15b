//! A running bridge: the p2panda node, one task per topic, the radio mesh and the gRPC
//! servers, started together and stopped gracefully.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use lorabridge_hardware::{Modulation, RegionPlan};
use lorabridge_proto::engine::{
    Budget, Engine, EngineConfig, LinkConfig, LinkId, MemoryStore, OpStore, TrickleConfig,
};
use lorabridge_proto::{NetworkTag, RawOp, TopicTag};
use lorabridge_radio::Radio;
use p2panda::operation::{LogId, Operation};
use p2panda::{Node, Topic};
use p2panda_core::{Hash, SeqNum, VerifyingKey};
use p2panda_store::SqliteStore;
use p2panda_store::logs::LogStore;
use p2panda_store::topics::TopicStore;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;

use crate::grpc::panda::panda_server::PandaServer;
use crate::grpc::status::status_server::StatusServer;
use crate::mesh::{LORA, Mesh, MeshStatus, RadioPort, ReticulumPort};
use crate::node::NodeSpec;
use crate::reticulum::{Reticulum, ReticulumConfig};
use crate::service::{AppTopic, PandaService, StatusService};
use crate::state::State;
use crate::topic::{self, AppEvent};

/// A topic the bridge carries.
#[derive(Clone, Debug)]
pub struct Carried {
    pub topic: [u8; 32],
    pub region: [u8; 32],
    /// `None` for a region's admin topic.
    pub app_id: Option<String>,
    pub lora: bool,
    pub reticulum: bool,
}

impl Carried {
    /// An app's topic in a region (as LoRes derives it), on iroh only; set `lora` and
    /// `reticulum` for the mesh.
    pub fn app(region: [u8; 32], app_id: &str) -> Self {
        Self {
            topic: crate::config::app_topic(&region, app_id),
            region,
            app_id: Some(app_id.into()),
            lora: false,
            reticulum: false,
        }
    }
}

/// The radio and the rules it transmits under.
pub struct RadioSpec {
    pub radio: Arc<dyn Radio>,
    pub modulation: Modulation,
    pub plan: RegionPlan,
    pub mtu: usize,
}

pub struct BridgeSpec {
    pub node: NodeSpec,
    pub topics: Vec<Carried>,
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
    topics: HashMap<[u8; 32], topic::TopicHandle>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    topic_tasks: Vec<topic::TopicTask>,
}

impl Bridge {
    pub async fn start(spec: BridgeSpec) -> Result<Bridge, String> {
        let state = State::open(spec.node.database.as_deref()).await?;
        let (node, store) = crate::node::spawn(&spec.node).await?;
        let node = Arc::new(node);
        let (shutdown, _) = watch::channel(false);
        let mut tasks = Vec::new();

        let (to_mesh, from_topics) = mpsc::channel(256);
        let lora_topics = carried_over(&spec.topics, spec.radio.is_some(), |t| t.lora);
        let rns_topics = carried_over(&spec.topics, spec.reticulum.is_some(), |t| t.reticulum);
        let mut handles = HashMap::new();
        let mut topic_tasks = Vec::new();
        let mut app_topics = Vec::new();
        for carried in &spec.topics {
            let on_mesh =
                lora_topics.contains(&carried.topic) || rns_topics.contains(&carried.topic);
            let mesh = on_mesh.then(|| to_mesh.clone());
            let (handle, task) = topic::spawn(node.clone(), carried.topic, mesh).await?;
            topic_tasks.push(task);
            app_topics.push(AppTopic {
                topic: carried.topic,
                region: carried.region,
                app_id: carried.app_id.clone(),
                handle: handle.clone(),
            });
            handles.insert(carried.topic, handle);
        }

        let mut mesh_status = None;
        if spec.radio.is_some() || spec.reticulum.is_some() {
            let mut mesh_topics = lora_topics.clone();
            mesh_topics.extend(rns_topics.iter().filter(|t| !lora_topics.contains(t)));
            let mut engine = Engine::new(
                EngineConfig {
                    region_key: spec.region_key,
                    trickle: spec
                        .trickle
                        .unwrap_or(EngineConfig::new([0; 32], [0; 32], [0; 32]).trickle),
                    ..EngineConfig::new(spec.node.network_id, *node.id().as_bytes(), fresh_seed())
                },
                preload(&store, &mesh_topics).await?,
            );
            let radio = match spec.radio {
                Some(radio) => {
                    let link = add_radio(&mut engine, &radio, lora_topics).await?;
                    for id in state.heard(LORA).await? {
                        engine.mark_heard(link, id);
                    }
                    Some(RadioPort {
                        link,
                        radio: radio.radio,
                    })
                }
                None => None,
            };
            let reticulum = match spec.reticulum {
                Some(config) => {
                    let tags = rns_topics.iter().map(TopicTag::from_topic).collect();
                    let network = NetworkTag::from_network_id(&spec.node.network_id);
                    let (rns, events) =
                        Reticulum::start(config, network, tags).map_err(|e| e.to_string())?;
                    Some(ReticulumPort::new(rns, events, rns_topics))
                }
                None => None,
            };
            let (status_tx, status_rx) = watch::channel(MeshStatus::default());
            mesh_status = Some(status_rx);
            let mesh = Mesh {
                engine,
                radio,
                reticulum,
                topics: handles.clone(),
                state: state.clone(),
            };
            tasks.push(tokio::spawn(mesh.run(
                from_topics,
                status_tx,
                shutdown.subscribe(),
            )));
        }

        let mut apps = HashMap::new();
        for app in &app_topics {
            if let Some(id) = &app.app_id {
                apps.entry(id.clone()).or_insert_with(|| app.clone());
            }
        }
        let panda = PandaServer::new(PandaService {
            apps: Arc::new(apps),
            state,
            shutdown: shutdown.subscribe(),
        });
        let (grpc_addr, task) = serve(spec.grpc, shutdown.subscribe(), move |router| {
            router.add_service(panda);
        })
        .await?;
        tasks.push(task);
        let mut status_addr = None;
        if let Some(addr) = spec.status {
            let service = StatusServer::new(StatusService {
                node_id: *node.id().as_bytes(),
                network_id: spec.node.network_id,
                topics: app_topics,
                mesh: mesh_status,
            });
            let (addr, task) = serve(addr, shutdown.subscribe(), move |router| {
                router.add_service(service);
            })
            .await?;
            status_addr = Some(addr);
            tasks.push(task);
        }
        Ok(Bridge {
            node,
            grpc_addr,
            status_addr,
            topics: handles,
            shutdown,
            tasks,
            topic_tasks,
        })
    }

    /// Everything processed on `topic` from now on (for the demo's live view and tests).
    pub fn watch(&self, topic: &[u8; 32]) -> Option<broadcast::Receiver<AppEvent>> {
        self.topics.get(topic).map(|h| h.events.subscribe())
    }

    /// Stops serving, lets the radio finish the frame in flight, and closes the node. Returns
    /// once the topic tasks have let go of the node, so the database is free. The node's UDP
    /// socket closes a few seconds later (p2panda stops its actors in the background, and it
    /// has no call to wait for that): a bridge restarted in-process on the same port must wait
    /// for it, as `Neighbourhood::restart` does. Waiting here would slow every shutdown.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        // The servers and the mesh held the other handles; with these gone the tasks end.
        drop(self.topics);
        for task in self.topic_tasks {
            if tokio::time::timeout(std::time::Duration::from_secs(10), task)
                .await
                .is_err()
            {
                tracing::warn!("a topic task did not stop within 10 s");
            }
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
    engine: &mut Engine<MemoryStore>,
    radio: &RadioSpec,
    topics: Vec<[u8; 32]>,
) -> Result<LinkId, String> {
    radio
        .radio
        .configure(&radio.modulation)
        .await
        .map_err(|e| format!("cannot configure the radio: {e}"))?;
    let budget = Budget {
        modulation: radio.modulation,
        plan: radio.plan.clone(),
    };
    engine
        .add_link(
            std::time::Duration::ZERO,
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

/// The operations the node holds in `topics`, for the engine's view of what it can offer.
async fn preload(store: &SqliteStore, topics: &[[u8; 32]]) -> Result<MemoryStore, String> {
    let mut memory = MemoryStore::default();
    for topic in topics {
        let logs = TopicStore::<Topic, VerifyingKey, LogId>::resolve(store, &Topic::from(*topic))
            .await
            .map_err(|e| e.to_string())?;
        for (author, log_ids) in logs {
            for log_id in log_ids {
                let entries =
                    LogStore::<Operation, VerifyingKey, LogId, SeqNum, Hash>::get_log_entries(
                        store, &author, &log_id, None, None,
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                for (operation, _) in entries.unwrap_or_default() {
                    let op = RawOp {
                        header: operation.header.to_bytes(),
                        body: operation.body.as_ref().map(|b| b.to_bytes()),
                    };
                    memory.insert(
                        topic,
                        author.as_bytes(),
                        u64::from(operation.header.seq_num),
                        op,
                    );
                }
            }
        }
    }
    Ok(memory)
}

/// 32 bytes from the operating system's random source (through a throwaway key, which
/// p2panda generates from it), to seed the engine's Trickle timing, hold-offs and nonces.
fn fresh_seed() -> [u8; 32] {
    *p2panda_core::SigningKey::generate().as_bytes()
}
