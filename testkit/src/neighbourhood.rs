//! A neighbourhood of bridges in one process, with no hardware: bridges linked over iroh on
//! loopback, over emulated LoRa modules (real drivers on pseudo-terminals, or the SX126x
//! driver on an emulated SX1262, or the SX127x driver on an emulated SX1276; one shared
//! simulated channel), or both. The demo and the
//! end-to-end tests are built on it.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lorabridge_emulators::{Emulator, Hub, LinkQuality, Medium, Sx1262, Sx1276};
use lorabridge_hardware::{Modulation, RegionPlan};
use lorabridge_proto::engine::TrickleConfig;
use lorabridge_radio::{
    DriverConfig, ModuleKind, Radio, SerialConnector, SerialRadio, Sx126xSettings, Sx127xSettings,
    shared,
};
use p2panda_core::SigningKey;

use lorabridge::bridge::{Bridge, BridgeSpec, RadioSpec};
use lorabridge::lores::{AppBindings, Carried};
use lorabridge::node::NodeSpec;
use lorabridge::reticulum::ReticulumConfig;

/// One bridge of the neighbourhood and how it is connected.
#[derive(Clone, Debug)]
pub struct Member {
    pub name: String,
    pub iroh: bool,
    pub radio: bool,
    /// An rnsd `TCPServerInterface` ("host:port") to join Reticulum through.
    pub reticulum: Option<String>,
    /// Also find iroh peers by mDNS (as LoRes nodes do), besides the members' addresses.
    pub mdns: bool,
    /// When summaries are sent: [`QUICK_TRICKLE`] unless changed; `None` is the schedule
    /// `lorabridge run` uses.
    pub trickle: Option<TrickleConfig>,
    /// What its radio sends with: [`demo_modulation`] unless changed.
    pub modulation: Modulation,
    /// Its radio is an SX1262 on (emulated) SPI instead of a RAK3172 on a (pseudo) serial
    /// port.
    pub sx1262: bool,
    /// Its radio is an SX1276 on (emulated) SPI (ignored when `sx1262` is set).
    pub sx1276: bool,
    /// Its radio is an RNode on a (pseudo) serial port (ignored when a chip is set).
    pub rnode: bool,
    /// Its radio (not an RNode) sends in RNode framing, to share the channel with RNodes.
    pub rnode_framing: bool,
}

impl Member {
    pub fn new(name: &str, iroh: bool, radio: bool) -> Self {
        Self {
            name: name.into(),
            iroh,
            radio,
            reticulum: None,
            mdns: false,
            trickle: Some(QUICK_TRICKLE),
            modulation: demo_modulation(),
            sx1262: false,
            sx1276: false,
            rnode: false,
            rnode_framing: false,
        }
    }

    /// Its radio is an RNode (the KISS driver on an emulated RNode).
    pub fn with_rnode(mut self) -> Self {
        self.rnode = true;
        self
    }

    /// Its radio sends in RNode framing (`rnode_framing = true` in `[radio]`), so that it
    /// shares the channel with the RNode members.
    pub fn with_rnode_framing(mut self) -> Self {
        self.rnode_framing = true;
        self
    }

    /// Its radio is an SX1262 HAT on SPI (the SX126x driver on an emulated chip), which
    /// hears the RAK3172s of the others on the same modulation.
    pub fn with_sx1262(mut self) -> Self {
        self.sx1262 = true;
        self
    }

    /// Its radio is an SX1276 HAT on SPI (the SX127x driver on an emulated chip), which
    /// hears the SX1262 and RAK3172 members set to the same modulation.
    pub fn with_sx1276(mut self) -> Self {
        self.sx1276 = true;
        self
    }

    /// Sends with `modulation`, e.g. on a sub-band with another duty cycle.
    pub fn with_modulation(mut self, modulation: Modulation) -> Self {
        self.modulation = modulation;
        self
    }

    /// Sends summaries on the schedule of `lorabridge run`, not the quick one: for what a
    /// steward sees, such as how soon a mesh that has just started carries operations.
    pub fn with_field_trickle(mut self) -> Self {
        self.trickle = None;
        self
    }

    /// Also finds iroh peers by mDNS.
    pub fn with_mdns(mut self) -> Self {
        self.mdns = true;
        self
    }

    /// Also connected to Reticulum through the rnsd at `rnsd`.
    pub fn with_reticulum(mut self, rnsd: String) -> Self {
        self.reticulum = Some(rnsd);
        self
    }
}

pub struct Neighbourhood {
    pub bridges: Vec<(String, Bridge)>,
    /// The channel the members' emulated modules share.
    pub medium: Arc<dyn Medium>,
    network_id: [u8; 32],
    topics: Vec<Carried>,
    members: Vec<Identity>,
    emulators: Vec<Emulator>,
    chips: Vec<Sx1262>,
    sx1276_chips: Vec<Sx1276>,
    dir: PathBuf,
}

/// What stays the same when a member restarts: its key, address, database and modem.
struct Identity {
    member: Member,
    key: SigningKey,
    addr: SocketAddr,
    peers: Vec<(p2panda::NodeId, SocketAddr)>,
    /// Index into `emulators`, into `chips` for an SX1262 member, or into `sx1276_chips` for
    /// an SX1276 member.
    emulator: Option<usize>,
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
    /// Starts every member on one ideal channel where every radio hears every other (at
    /// −97 dBm, SNR 4.5 dB); iroh members all know each other's loopback address.
    pub async fn start(
        network_id: [u8; 32],
        members: &[Member],
        topics: &[Carried],
    ) -> Result<Self, String> {
        let hub = Hub::new();
        hub.set_default_quality(LinkQuality {
            rssi_dbm: -97,
            snr_db: 4.5,
        });
        Self::start_on(Arc::new(hub), network_id, members, topics).await
    }

    /// Like [`Neighbourhood::start`], with the radios on `medium` (e.g. the simulator's
    /// physics, `lorabridge_sim::air::PhysicalHub`, where radio members take the scenario's
    /// positions in order). Each radio uses its member's modulation.
    pub async fn start_on(
        medium: Arc<dyn Medium>,
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
        let keys: Vec<SigningKey> = members.iter().map(|_| SigningKey::generate()).collect();
        let addrs: Vec<SocketAddr> = members
            .iter()
            .map(|_| free_udp_port().map(|p| SocketAddr::from((Ipv4Addr::LOCALHOST, p))))
            .collect::<Result<_, _>>()?;
        let mut hood = Self {
            bridges: Vec::new(),
            medium,
            network_id,
            topics: topics.to_vec(),
            members: Vec::new(),
            emulators: Vec::new(),
            chips: Vec::new(),
            sx1276_chips: Vec::new(),
            dir,
        };
        for (i, member) in members.iter().enumerate() {
            let peers = members
                .iter()
                .enumerate()
                .filter(|(j, other)| *j != i && member.iroh && other.iroh)
                .map(|(j, _)| (keys[j].verifying_key(), addrs[j]))
                .collect();
            let emulator = if member.radio && member.sx1262 {
                hood.chips
                    .push(Sx1262::new(hood.medium.clone(), &member.name));
                Some(hood.chips.len() - 1)
            } else if member.radio && member.sx1276 {
                hood.sx1276_chips
                    .push(Sx1276::new(hood.medium.clone(), &member.name));
                Some(hood.sx1276_chips.len() - 1)
            } else if member.radio {
                let emulator = match member.rnode {
                    true => Emulator::rnode(hood.medium.clone(), &hood.dir, &member.name),
                    false => Emulator::rui3(hood.medium.clone(), &hood.dir, &member.name),
                }
                .map_err(|e| format!("cannot start the emulated modem: {e}"))?;
                hood.emulators.push(emulator);
                Some(hood.emulators.len() - 1)
            } else {
                None
            };
            hood.members.push(Identity {
                member: member.clone(),
                key: keys[i].clone(),
                addr: addrs[i],
                peers,
                emulator,
            });
            let bridge = hood.start_member(i).await?;
            hood.bridges.push((member.name.clone(), bridge));
        }
        Ok(hood)
    }

    async fn start_member(&self, i: usize) -> Result<Bridge, String> {
        let identity = &self.members[i];
        let radio = match identity.emulator {
            Some(e) => {
                let framing = identity.member.rnode_framing;
                let radio: Arc<dyn Radio> = if identity.member.sx1262 {
                    let bus = self.chips[e].bus(true);
                    let radio = lorabridge_radio::sx126x::open(
                        bus,
                        Sx126xSettings::default(),
                        DriverConfig::default(),
                    )
                    .await
                    .map_err(|e| format!("cannot open the emulated SX1262: {e}"))?;
                    shared(radio, framing)
                } else if identity.member.sx1276 {
                    let bus = self.sx1276_chips[e].bus();
                    let radio = lorabridge_radio::sx127x::open(
                        bus,
                        Sx127xSettings::default(),
                        DriverConfig::default(),
                    )
                    .await
                    .map_err(|e| format!("cannot open the emulated SX1276: {e}"))?;
                    shared(radio, framing)
                } else {
                    let connector =
                        SerialConnector::new(self.emulators[e].link_path().to_path_buf(), 115_200);
                    let kind = match identity.member.rnode {
                        true => ModuleKind::Rnode,
                        false => ModuleKind::Rui3,
                    };
                    let radio = SerialRadio::open(kind, connector, DriverConfig::default())
                        .await
                        .map_err(|e| format!("cannot open the emulated modem: {e}"))?;
                    shared(radio, framing)
                };
                let plan = RegionPlan::builtin("EU868").map_err(|e| e.to_string())?;
                // 250 B, the RAK3172's limit, for the SX1262 and the RNode too (they could take
                // more): one frame size that every radio of the neighbourhood sends and
                // receives; one less in RNode framing.
                let mtu = radio.mtu().min(250);
                Some(RadioSpec {
                    radio,
                    modulation: identity.member.modulation,
                    plan,
                    mtu,
                })
            }
            None => None,
        };
        let name = &identity.member.name;
        let reticulum = identity
            .member
            .reticulum
            .as_ref()
            .map(|rnsd| ReticulumConfig {
                servers: vec![rnsd.clone()],
                identity_path: self.dir.join(format!("{name}.reticulum")),
                // Peers meet through the announce each sends on connecting.
                announce_interval: Duration::from_secs(600),
                prove: false,
            });
        let spec = BridgeSpec {
            node: NodeSpec {
                key: identity.key.clone(),
                database: Some(self.dir.join(format!("{name}.sqlite"))),
                network_id: self.network_id,
                mdns: identity.member.mdns,
                bind: Some(identity.addr),
                relay: None,
                bootstrap: identity
                    .peers
                    .iter()
                    .map(|(id, a)| (*id, Some(*a)))
                    .collect(),
            },
            topics: self
                .topics
                .iter()
                .map(|t| Carried {
                    lora: identity.member.radio,
                    reticulum: reticulum.is_some(),
                    ..t.clone()
                })
                .collect(),
            bindings: AppBindings::of_apps(&self.topics),
            grpc: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            status: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
            radio,
            reticulum,
            region_key: None,
            trickle: identity.member.trickle,
        };
        Bridge::start(spec).await
    }

    pub fn bridge(&self, name: &str) -> &Bridge {
        &self
            .bridges
            .iter()
            .find(|(n, _)| n == name)
            .expect("a member of this neighbourhood")
            .1
    }

    /// A radio member's emulated module (to unplug it, say); `None` for an SX1262 member.
    pub fn modem(&self, name: &str) -> Option<&Emulator> {
        let member = self.members.iter().find(|m| m.member.name == name)?;
        match member.member.sx1262 || member.member.sx1276 {
            true => None,
            false => member.emulator.map(|e| &self.emulators[e]),
        }
    }

    /// An SX1262 member's emulated chip.
    pub fn chip(&self, name: &str) -> Option<&Sx1262> {
        let member = self.members.iter().find(|m| m.member.name == name)?;
        match member.member.sx1262 {
            true => member.emulator.map(|e| &self.chips[e]),
            false => None,
        }
    }

    /// An SX1276 member's emulated chip.
    pub fn sx1276_chip(&self, name: &str) -> Option<&Sx1276> {
        let member = self.members.iter().find(|m| m.member.name == name)?;
        match (member.member.sx1262, member.member.sx1276) {
            (false, true) => member.emulator.map(|e| &self.sx1276_chips[e]),
            _ => None,
        }
    }

    /// Stops one member; its key, address, database and modem stay, for [`Self::resume`].
    pub async fn pause(&mut self, name: &str) -> Result<(), String> {
        let i = self
            .bridges
            .iter()
            .position(|(n, _)| n == name)
            .ok_or_else(|| format!("{name} is not running"))?;
        let (_, bridge) = self.bridges.remove(i);
        bridge.stop().await;
        Ok(())
    }

    /// Starts a paused member again on the same key, database and modem.
    pub async fn resume(&mut self, name: &str) -> Result<(), String> {
        let i = self
            .members
            .iter()
            .position(|m| m.member.name == name)
            .ok_or_else(|| format!("{name} is not a member"))?;
        wait_until_free(self.members[i].addr).await?;
        let bridge = self.start_member(i).await?;
        self.bridges.push((name.to_string(), bridge));
        Ok(())
    }

    /// Stops one member and starts it again on the same key, database and modem.
    pub async fn restart(&mut self, name: &str) -> Result<(), String> {
        self.pause(name).await?;
        self.resume(name).await
    }

    pub async fn stop(self) {
        for (_, bridge) in self.bridges {
            bridge.stop().await;
        }
        drop(self.emulators);
        drop(self.chips);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// p2panda stops a dropped node's actors in the background, so its UDP socket closes a moment
/// after `Bridge::stop` returns; a node started on the same port before then fails to start.
async fn wait_until_free(addr: SocketAddr) -> Result<(), String> {
    for _ in 0..100 {
        if UdpSocket::bind(addr).is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "{addr} is still in use 10 s after the bridge stopped"
    ))
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
