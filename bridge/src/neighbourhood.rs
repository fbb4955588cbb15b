//! A neighbourhood of bridges in one process, with no hardware: bridges linked over iroh on
//! loopback, over emulated LoRa modules (real drivers on pseudo-terminals, one shared
//! simulated channel), or both. The demo and the end-to-end tests are built on it.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lorabridge_hardware::{Modulation, RegionPlan};
use lorabridge_proto::engine::TrickleConfig;
use lorabridge_radio::{DriverConfig, ModuleKind, SerialConnector, SerialRadio};
use lorabridge_sim::modem::{Emulator, Hub, LinkQuality};
use p2panda_core::SigningKey;

use crate::bridge::{Bridge, BridgeSpec, Carried, RadioSpec};
use crate::node::NodeSpec;

/// One bridge of the neighbourhood and how it is connected.
#[derive(Clone, Debug)]
pub struct Member {
    pub name: String,
    pub iroh: bool,
    pub radio: bool,
}

pub struct Neighbourhood {
    pub bridges: Vec<(String, Bridge)>,
    pub hub: Hub,
    emulators: Vec<Emulator>,
    dir: PathBuf,
}

/// SF7/BW125 at 869.525 MHz, EU868's 10 % sub-band: fast enough for a lively demo.
pub fn demo_modulation() -> Modulation {
    Modulation {
        spreading_factor: 7,
        ..Modulation::eu868_default()
    }
}

/// Summaries every few seconds, so a demo or test converges within a minute.
pub const QUICK_TRICKLE: TrickleConfig = TrickleConfig {
    imin: Duration::from_secs(2),
    doublings: 4,
    k: 1,
};

impl Neighbourhood {
    /// Starts every member; iroh members all know each other's loopback address.
    pub async fn start(
        network_id: [u8; 32],
        members: &[Member],
        topics: &[Carried],
    ) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!(
            "lorabridge-neighbourhood-{}-{}",
            std::process::id(),
            unique()
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let hub = Hub::new();
        hub.set_default_quality(LinkQuality {
            rssi_dbm: -97,
            snr_db: 4.5,
        });
        let keys: Vec<SigningKey> = members.iter().map(|_| SigningKey::generate()).collect();
        let ports: Vec<u16> = members
            .iter()
            .map(|_| free_udp_port())
            .collect::<Result<_, _>>()?;
        let mut emulators = Vec::new();
        let mut bridges = Vec::new();
        for (i, member) in members.iter().enumerate() {
            let direct_peers = members
                .iter()
                .enumerate()
                .filter(|(j, other)| *j != i && member.iroh && other.iroh)
                .map(|(j, _)| {
                    (
                        keys[j].verifying_key(),
                        SocketAddr::from((Ipv4Addr::LOCALHOST, ports[j])),
                    )
                })
                .collect();
            let radio = if member.radio {
                let emulator = Emulator::rui3(Arc::new(hub.clone()), &dir, &member.name)
                    .map_err(|e| format!("cannot start the emulated modem: {e}"))?;
                let connector = SerialConnector::new(emulator.link_path().to_path_buf(), 115_200);
                let radio = SerialRadio::open(ModuleKind::Rui3, connector, DriverConfig::default())
                    .await
                    .map_err(|e| format!("cannot open the emulated modem: {e}"))?;
                emulators.push(emulator);
                Some(RadioSpec {
                    radio: Arc::new(radio),
                    modulation: demo_modulation(),
                    plan: RegionPlan::builtin("EU868").map_err(|e| e.to_string())?,
                    mtu: 250,
                })
            } else {
                None
            };
            let spec = BridgeSpec {
                node: NodeSpec {
                    key: keys[i].clone(),
                    database: Some(dir.join(format!("{}.sqlite", member.name))),
                    network_id,
                    mdns: false,
                    bind: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, ports[i]))),
                    direct_peers,
                    relay: None,
                },
                topics: topics
                    .iter()
                    .map(|t| Carried {
                        lora: member.radio,
                        ..t.clone()
                    })
                    .collect(),
                grpc: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
                status: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
                radio,
                region_key: None,
                trickle: Some(QUICK_TRICKLE),
            };
            bridges.push((member.name.clone(), Bridge::start(spec).await?));
        }
        Ok(Self {
            bridges,
            hub,
            emulators,
            dir,
        })
    }

    pub fn bridge(&self, name: &str) -> &Bridge {
        &self
            .bridges
            .iter()
            .find(|(n, _)| n == name)
            .expect("a member of this neighbourhood")
            .1
    }

    pub async fn stop(self) {
        for (_, bridge) in self.bridges {
            bridge.stop().await;
        }
        drop(self.emulators);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_udp_port() -> Result<u16, String> {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
    socket
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
