//! One bridge's Reticulum endpoint, sans IO: its identity and SINGLE destination, the peers
//! learned from announces, encrypted packets in and out, proofs, and announce timing.
//!
//! The owner feeds it packets (already un-framed) and the time, and drains packets to write
//! to every connected interface, plus events. `now` is wall-clock time since the UNIX epoch,
//! because announces carry their emission time in seconds.
//!
//! Payload convention between bridges: the plaintext of every SINGLE packet is the sender's
//! destination hash (16 bytes), a tag that proves it ([`super::sender`], 16 bytes), then one
//! mesh frame. SINGLE packets are anonymous in Reticulum, and the sync engine needs to know
//! which peer (which link) a frame came from; without the tag anyone could speak on any
//! peer's link.

mod path_request;
mod receive;

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use lorabridge_proto::tags::{NetworkTag, TopicTag};
use rand_chacha::ChaCha12Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

use super::announce::{Announce, AnnounceError, AppDataError, BridgeAppData};
use super::dedup::DuplicateFilter;
use super::identity::{
    DecryptError, EPHEMERAL_LEN, Identity, NAME_HASH_LEN, PublicIdentity, destination_hash,
    name_hash, plain_destination_hash,
};
use super::packet::{
    DestinationType, HASH_LEN, HEADER_2_LEN, Hash16, MTU, Packet, PacketError, PacketType, context,
};
use super::path::{PathTable, PathUpdate};
use super::ratchet::Ratchets;
use super::sender::TAG_LEN;
use super::token;
use path_request::PATH_REQUEST_NAME;

/// Largest plaintext in one SINGLE packet sent through a transport node (HEADER_2).
pub const MAX_PLAINTEXT: usize = 383;
/// Largest mesh frame per packet: the plaintext less the sender's destination hash and its
/// tag. This is the `mtu` of an engine link to a Reticulum peer.
pub const MAX_FRAME: usize = MAX_PLAINTEXT - HASH_LEN - TAG_LEN;

const _: () = assert!(
    token::max_plaintext(MTU - HEADER_2_LEN - EPHEMERAL_LEN) == MAX_PLAINTEXT,
    "MAX_PLAINTEXT follows from the MTU"
);

#[derive(Clone, Debug)]
pub struct EndpointConfig {
    pub network: NetworkTag,
    /// Tags of the topics this bridge carries, announced to peers.
    pub topics: Vec<TopicTag>,
    /// Time between our announces (each jittered down by up to a tenth so that bridges started
    /// together drift apart).
    pub announce_interval: Duration,
    /// A peer not heard announcing for this long is forgotten.
    pub path_lifetime: Duration,
    /// Answer every packet we receive with an implicit proof (83 bytes): the sender learns
    /// delivery. Off saves airtime on slow Reticulum media.
    pub prove: bool,
    /// A sent packet without a proof after this long counts as undelivered.
    pub receipt_timeout: Duration,
    /// Bounds: peers remembered, receipts outstanding, packet hashes remembered, packets
    /// queued for the interfaces.
    pub max_peers: usize,
    pub max_receipts: usize,
    pub duplicate_window: usize,
    pub max_queued: usize,
}

impl EndpointConfig {
    pub fn new(network: NetworkTag, topics: Vec<TopicTag>) -> Self {
        Self {
            network,
            topics,
            announce_interval: Duration::from_secs(15 * 60),
            path_lifetime: Duration::from_secs(2 * 3600),
            prove: true,
            receipt_timeout: Duration::from_secs(60),
            max_peers: 256,
            max_receipts: 512,
            duplicate_window: 8192,
            max_queued: 1024,
        }
    }
}

/// Why a packet was not taken. Every variant is also counted in [`EndpointStats`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("malformed packet: {0}")]
    Packet(#[from] PacketError),
    #[error("duplicate packet")]
    Duplicate,
    #[error("bad announce: {0}")]
    Announce(#[from] AnnounceError),
    #[error("bridge announce with bad app data: {0}")]
    AppData(#[from] AppDataError),
    #[error("cannot decrypt: {0}")]
    Decrypt(#[from] DecryptError),
    #[error("payload too short to name its sender")]
    NoSender,
    #[error("sender {0} is not a known peer")]
    UnknownSender(Hash16),
    #[error("the packet names {0} as its sender but its tag does not prove it")]
    ForgedSender(Hash16),
    #[error("proof signature does not verify")]
    BadProof,
}

/// What a packet did, when it was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// An announce of a bridge in our network, with what it did to the path table.
    BridgeAnnounce(PathUpdate),
    /// Data for us, decrypted and queued as [`Event::Received`].
    Data,
    /// A valid proof of a packet we sent.
    Proof,
    /// A path request for our destination, answered with an announce.
    PathRequest,
    /// Not for us (other destinations, other announces, our own announce echoed back).
    Ignored,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A bridge announced (first time, or with changed topics).
    PeerAnnounced {
        peer: Hash16,
        topics: Vec<TopicTag>,
        hops: u8,
    },
    /// A peer's path expired.
    PeerExpired { peer: Hash16 },
    /// A mesh frame from a peer.
    Received { from: Hash16, frame: Vec<u8> },
    /// A peer proved it received our packet.
    Delivered { to: Hash16, packet: [u8; 32] },
    /// No proof came in time.
    Undelivered { to: Hash16, packet: [u8; 32] },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("no path to {0}")]
    NoPath(Hash16),
    #[error("frame of {0} bytes exceeds {MAX_FRAME}")]
    TooLarge(usize),
    /// Its announced encryption key is a low-order point: no secret can be shared with it.
    #[error("{0} announced a key that shares no secret")]
    WeakKey(Hash16),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointStats {
    pub packets_in: u64,
    pub bytes_in: u64,
    pub packets_out: u64,
    pub bytes_out: u64,
    pub malformed: u64,
    pub duplicates: u64,
    pub announces_sent: u64,
    pub announces_accepted: u64,
    pub announces_stale: u64,
    pub announces_rejected: u64,
    pub ignored: u64,
    pub data_sent: u64,
    pub data_received: u64,
    pub decrypt_failed: u64,
    pub unknown_sender: u64,
    /// Data packets whose sender tag did not prove the sender they named.
    pub forged_sender: u64,
    pub proofs_sent: u64,
    pub proofs_valid: u64,
    pub proofs_invalid: u64,
    pub undelivered: u64,
    pub queue_dropped: u64,
    pub path_requests_sent: u64,
    pub path_requests_answered: u64,
}

#[derive(Clone)]
struct Receipt {
    to: Hash16,
    hash: [u8; 32],
    deadline: Duration,
}

/// See the module docs. Cloning copies the whole state (tests and fuzzing start from one).
#[derive(Clone)]
pub struct Endpoint {
    identity: Identity,
    /// The keys peers encrypt to; packets to the identity key itself are refused.
    ratchets: Ratchets,
    config: EndpointConfig,
    name_hash: [u8; NAME_HASH_LEN],
    destination: Hash16,
    app_data: Vec<u8>,
    paths: PathTable,
    seen: DuplicateFilter,
    receipts: HashMap<Hash16, Receipt>,
    out: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
    next_announce: Duration,
    /// When an interface coming up last made us announce.
    last_interface_announce: Option<Duration>,
    last_emitted: u64,
    path_request_destination: Hash16,
    path_requests: HashMap<Hash16, Duration>,
    last_path_answer: Option<Duration>,
    rng: ChaCha12Rng,
    stats: EndpointStats,
}

/// Events waiting for the owner; the oldest is dropped past this.
const MAX_EVENTS: usize = 4096;
/// Interfaces coming up announce at most this often, so a flapping rnsd connection does not
/// make an announce a second.
const INTERFACE_ANNOUNCE_SPACING: Duration = Duration::from_secs(10);

impl Endpoint {
    /// `seed` drives every random choice (ephemeral keys, IVs, announce blobs, jitter): pass
    /// fresh OS randomness in the daemon. The first announce is due at once.
    pub fn new(identity: Identity, config: EndpointConfig, seed: [u8; 32]) -> Self {
        let name_hash = name_hash(&super::bridge_destination_name(config.network));
        let destination = destination_hash(&name_hash, &identity.hash());
        let app_data = BridgeAppData {
            topics: config.topics.clone(),
        }
        .encode();
        let mut rng = ChaCha12Rng::from_seed(seed);
        let mut fresh = [0u8; 32];
        rng.fill_bytes(&mut fresh);
        Self {
            ratchets: Ratchets::new(fresh),
            paths: PathTable::new(config.max_peers, config.path_lifetime),
            seen: DuplicateFilter::new(config.duplicate_window),
            identity,
            name_hash,
            destination,
            app_data,
            receipts: HashMap::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            next_announce: Duration::ZERO,
            last_interface_announce: None,
            last_emitted: 0,
            path_request_destination: plain_destination_hash(PATH_REQUEST_NAME),
            path_requests: HashMap::new(),
            last_path_answer: None,
            rng,
            stats: EndpointStats::default(),
            config,
        }
    }

    /// Our SINGLE destination's address.
    pub fn destination(&self) -> Hash16 {
        self.destination
    }

    pub fn identity(&self) -> &PublicIdentity {
        self.identity.public()
    }

    pub fn stats(&self) -> EndpointStats {
        self.stats
    }

    /// Live peers: destination, hops, announced topics.
    pub fn peers(&self, now: Duration) -> Vec<(Hash16, u8, Vec<TopicTag>)> {
        self.paths
            .iter()
            .filter(|(_, e)| e.expires > now)
            .map(|(k, e)| {
                let topics = BridgeAppData::decode(&e.app_data)
                    .map(|d| d.topics)
                    .unwrap_or_default();
                (*k, e.hops, topics)
            })
            .collect()
    }

    /// An interface came up: the peers behind it learn us from an announce, at once unless
    /// an interface coming up made one less than `INTERFACE_ANNOUNCE_SPACING` ago, else when
    /// that spacing ends.
    pub fn interface_up(&mut self, now: Duration) {
        match self.last_interface_announce {
            Some(last) if now >= last && now < last + INTERFACE_ANNOUNCE_SPACING => {
                self.next_announce = self.next_announce.min(last + INTERFACE_ANNOUNCE_SPACING);
            }
            _ => {
                self.last_interface_announce = Some(now);
                self.announce(now);
            }
        }
    }

    /// Queues an announce now and restarts the announce timer.
    pub fn announce(&mut self, now: Duration) {
        let mut random = [0u8; 5];
        self.rng.fill_bytes(&mut random);
        // Strictly increasing emission times: transport nodes ignore an announce not newer
        // than the one they hold.
        let emitted = now.as_secs().max(self.last_emitted + 1);
        self.last_emitted = emitted;
        let mut fresh = [0u8; 32];
        self.rng.fill_bytes(&mut fresh);
        let ratchet = self.ratchets.for_announce(now, fresh);
        let packet = Announce::build(
            &self.identity,
            &self.name_hash,
            random,
            emitted,
            Some(ratchet),
            &self.app_data,
        );
        self.stats.announces_sent += 1;
        self.queue(packet);
        let interval = self.config.announce_interval;
        let jitter = interval.as_nanos() as u64 / 10;
        let jitter = Duration::from_nanos(self.rng.next_u64() % jitter.max(1));
        self.next_announce = now + interval.saturating_sub(jitter);
    }

    /// Encrypts `frame` for `to` and queues it. Returns the packet hash (a proof names it).
    pub fn send(
        &mut self,
        now: Duration,
        to: &Hash16,
        frame: &[u8],
    ) -> Result<[u8; 32], SendError> {
        if frame.len() > MAX_FRAME {
            return Err(SendError::TooLarge(frame.len()));
        }
        let path = self.paths.get(now, to).ok_or(SendError::NoPath(*to))?;
        let tag = path
            .sender_key
            .as_ref()
            .ok_or(SendError::WeakKey(*to))?
            .tag(&self.destination, to, frame);
        let mut plaintext = Vec::with_capacity(HASH_LEN + TAG_LEN + frame.len());
        plaintext.extend_from_slice(&self.destination.0);
        plaintext.extend_from_slice(&tag);
        plaintext.extend_from_slice(frame);
        let mut ephemeral = [0u8; 32];
        self.rng.fill_bytes(&mut ephemeral);
        let mut iv = [0u8; 16];
        self.rng.fill_bytes(&mut iv);
        let data = path
            .identity
            .encrypt(&plaintext, ephemeral, iv, path.ratchet.as_ref());
        let mut packet = Packet::new(
            PacketType::Data,
            DestinationType::Single,
            *to,
            context::NONE,
            data,
        );
        if let Some(next) = path.next_hop {
            packet.transport_id = Some(next);
            packet.transport = true;
        }
        let hash = packet.hash();
        if self.receipts.len() >= self.config.max_receipts {
            self.expire_receipts(Duration::MAX);
        }
        self.receipts.insert(
            packet.truncated_hash(),
            Receipt {
                to: *to,
                hash,
                deadline: now + self.config.receipt_timeout,
            },
        );
        self.stats.data_sent += 1;
        self.queue(packet);
        Ok(hash)
    }

    /// Announces when due, forgets expired paths and receipts.
    ///
    /// `now` is the wall clock (announces carry it). Set back (NTP correcting a Pi without a
    /// real-time clock), it would leave the next announce far ahead; an announce is due
    /// within one interval whatever the clock did.
    pub fn handle_timeout(&mut self, now: Duration) {
        if now >= self.next_announce || self.next_announce > now + self.config.announce_interval {
            self.announce(now);
        }
        for peer in self.paths.expire(now) {
            self.emit(Event::PeerExpired { peer });
        }
        self.expire_receipts(now);
    }

    /// When `handle_timeout` should next run.
    pub fn poll_timeout(&self) -> Duration {
        let receipts = self.receipts.values().map(|r| r.deadline).min();
        [Some(self.next_announce), self.paths.next_expiry(), receipts]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.next_announce)
    }

    /// The next packet to write to every connected interface (not yet HDLC-framed).
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Drops receipts due at `now`, or the oldest one when called to make room.
    fn expire_receipts(&mut self, now: Duration) {
        let due: Vec<Hash16> = if now == Duration::MAX {
            self.receipts
                .iter()
                .min_by_key(|(_, r)| r.deadline)
                .map(|(k, _)| *k)
                .into_iter()
                .collect()
        } else {
            self.receipts
                .iter()
                .filter(|(_, r)| r.deadline <= now)
                .map(|(k, _)| *k)
                .collect()
        };
        for key in due {
            if let Some(r) = self.receipts.remove(&key) {
                self.stats.undelivered += 1;
                self.emit(Event::Undelivered {
                    to: r.to,
                    packet: r.hash,
                });
            }
        }
    }

    fn queue(&mut self, packet: Packet) {
        let Ok(bytes) = packet.encode() else {
            return;
        };
        // Our own packets must not come back to us as new (rnsd echoes announces).
        self.seen.insert(packet.hash());
        if self.out.len() >= self.config.max_queued {
            self.out.pop_front();
            self.stats.queue_dropped += 1;
        }
        self.stats.packets_out += 1;
        self.stats.bytes_out += bytes.len() as u64;
        self.out.push_back(bytes);
    }

    fn emit(&mut self, event: Event) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }
}
