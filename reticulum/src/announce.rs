//! Announces: a destination makes its public key known, signed, with a random blob whose last
//! five bytes are the emission time, and optional application data.
//!
//! For lorabridge the application data names the carried topics' tags (see
//! [`BridgeAppData`]), so a bridge learns which peers share which topics before it sends
//! them anything.

use lorabridge_proto::message::MAX_SUMMARY_TOPICS;
use lorabridge_proto::tags::TopicTag;

use super::identity::{
    Identity, KeyError, NAME_HASH_LEN, PUBLIC_KEY_LEN, PublicIdentity, SIGNATURE_LEN,
    destination_hash,
};
use super::packet::{DestinationType, Hash16, Packet, PacketType, context};

/// Five random bytes and five bytes of big-endian emission time (unix seconds).
pub const RANDOM_HASH_LEN: usize = 10;
pub const RATCHET_LEN: usize = 32;
/// Announce data before the optional ratchet and the signature.
const FIXED_LEN: usize = PUBLIC_KEY_LEN + NAME_HASH_LEN + RANDOM_HASH_LEN;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AnnounceError {
    #[error("not an announce to a SINGLE destination")]
    NotAnnounce,
    #[error("announce data of {0} bytes is too short")]
    Length(usize),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("announce signature does not verify")]
    Signature,
    #[error("destination hash does not match the announced key and name")]
    Destination,
}

/// A validated announce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announce {
    pub destination: Hash16,
    pub identity: PublicIdentity,
    pub name_hash: [u8; NAME_HASH_LEN],
    pub random_hash: [u8; RANDOM_HASH_LEN],
    /// A ratchet key to encrypt to instead of the identity key (forward secrecy).
    pub ratchet: Option<[u8; RATCHET_LEN]>,
    pub app_data: Vec<u8>,
}

impl Announce {
    /// When the announce was made (unix seconds), as its author claims: newer announces
    /// replace older paths.
    pub fn emitted(&self) -> u64 {
        self.random_hash[5..]
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    }

    /// Builds a signed announce packet (HEADER_1, hop 0) for `identity`'s SINGLE destination
    /// named by `name_hash`, with the public `ratchet` key senders should encrypt to, if
    /// any. `random` must be fresh random bytes.
    pub fn build(
        identity: &Identity,
        name_hash: &[u8; NAME_HASH_LEN],
        random: [u8; 5],
        unix_secs: u64,
        ratchet: Option<&[u8; RATCHET_LEN]>,
        app_data: &[u8],
    ) -> Packet {
        let destination = destination_hash(name_hash, &identity.hash());
        let mut random_hash = [0u8; RANDOM_HASH_LEN];
        random_hash[..5].copy_from_slice(&random);
        random_hash[5..].copy_from_slice(&unix_secs.to_be_bytes()[3..]);
        let public = identity.public().to_bytes();
        let keys_len = FIXED_LEN + ratchet.map_or(0, |r| r.len());
        let mut signed = Vec::with_capacity(16 + keys_len + app_data.len());
        signed.extend_from_slice(&destination.0);
        signed.extend_from_slice(&public);
        signed.extend_from_slice(name_hash);
        signed.extend_from_slice(&random_hash);
        if let Some(ratchet) = ratchet {
            signed.extend_from_slice(ratchet);
        }
        signed.extend_from_slice(app_data);
        let signature = identity.sign(&signed);
        let mut data = Vec::with_capacity(keys_len + SIGNATURE_LEN + app_data.len());
        data.extend_from_slice(&signed[16..16 + keys_len]);
        data.extend_from_slice(&signature);
        data.extend_from_slice(app_data);
        let mut packet = Packet::new(
            PacketType::Announce,
            DestinationType::Single,
            destination,
            context::NONE,
            data,
        );
        // The context flag says a ratchet follows the random blob.
        packet.context_flag = ratchet.is_some();
        packet
    }

    /// Checks an announce's signature and that its destination hash follows from its key and
    /// name. Costs one Ed25519 verification; callers filter by name hash first.
    pub fn validate(packet: &Packet) -> Result<Self, AnnounceError> {
        if packet.packet_type != PacketType::Announce
            || packet.destination_type != DestinationType::Single
        {
            return Err(AnnounceError::NotAnnounce);
        }
        let data = &packet.data;
        let ratchet_len = if packet.context_flag { RATCHET_LEN } else { 0 };
        let sig_at = FIXED_LEN + ratchet_len;
        if data.len() < sig_at + SIGNATURE_LEN {
            return Err(AnnounceError::Length(data.len()));
        }
        let identity = PublicIdentity::from_bytes(&data[..PUBLIC_KEY_LEN])?;
        let mut name_hash = [0; NAME_HASH_LEN];
        name_hash.copy_from_slice(&data[PUBLIC_KEY_LEN..PUBLIC_KEY_LEN + NAME_HASH_LEN]);
        let mut random_hash = [0; RANDOM_HASH_LEN];
        random_hash.copy_from_slice(&data[PUBLIC_KEY_LEN + NAME_HASH_LEN..FIXED_LEN]);
        let ratchet = packet.context_flag.then(|| {
            let mut r = [0; RATCHET_LEN];
            r.copy_from_slice(&data[FIXED_LEN..sig_at]);
            r
        });
        let signature = &data[sig_at..sig_at + SIGNATURE_LEN];
        let app_data = &data[sig_at + SIGNATURE_LEN..];
        let mut signed = Vec::with_capacity(16 + sig_at + app_data.len());
        signed.extend_from_slice(&packet.destination.0);
        signed.extend_from_slice(&data[..sig_at]);
        signed.extend_from_slice(app_data);
        if !identity.verify(&signed, signature) {
            return Err(AnnounceError::Signature);
        }
        if destination_hash(&name_hash, &identity.hash()) != packet.destination {
            return Err(AnnounceError::Destination);
        }
        Ok(Self {
            destination: packet.destination,
            identity,
            name_hash,
            random_hash,
            ratchet,
            app_data: app_data.to_vec(),
        })
    }
}

/// The name of the bridges' SINGLE destination in a network: `p2panda.bridge.<tag hex>`.
pub fn bridge_destination_name(network: lorabridge_proto::tags::NetworkTag) -> String {
    format!("p2panda.bridge.{:02x}{:02x}", network.0[0], network.0[1])
}

/// What a bridge says in its announce: the topics it carries, as tags.
///
/// Layout: version byte `0x01`, then 2-byte topic tags (at most `MAX_SUMMARY_TOPICS`, the
/// topics one link carries). Unknown versions are refused so the format can change.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct BridgeAppData {
    pub topics: Vec<TopicTag>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AppDataError {
    #[error("empty app data")]
    Empty,
    #[error("unknown app data version {0}")]
    Version(u8),
    #[error("topic tags are not whole 2-byte tags, or more than the maximum")]
    Tags,
}

impl BridgeAppData {
    pub const VERSION: u8 = 1;

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![Self::VERSION];
        for tag in self.topics.iter().take(MAX_SUMMARY_TOPICS) {
            out.extend_from_slice(&tag.0);
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, AppDataError> {
        let (&version, tags) = bytes.split_first().ok_or(AppDataError::Empty)?;
        if version != Self::VERSION {
            return Err(AppDataError::Version(version));
        }
        if !tags.len().is_multiple_of(2) || tags.len() / 2 > MAX_SUMMARY_TOPICS {
            return Err(AppDataError::Tags);
        }
        Ok(Self {
            topics: tags.chunks(2).map(|c| TopicTag([c[0], c[1]])).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::identity::name_hash;
    use super::*;

    fn announce(app_data: &[u8]) -> (Identity, Packet) {
        let id = Identity::from_key_file(&[4; 64]).unwrap();
        let p = Announce::build(
            &id,
            &name_hash("p2panda.bridge.abcd"),
            [1, 2, 3, 4, 5],
            1_795_000_000,
            None,
            app_data,
        );
        (id, p)
    }

    #[test]
    fn build_validate_round_trip_and_size() {
        let (id, p) = announce(&[]);
        assert_eq!(
            p.encode().unwrap().len(),
            167,
            "the size measured against rnsd"
        );
        let a = Announce::validate(&p).unwrap();
        assert_eq!(&a.identity, id.public());
        assert_eq!(a.emitted(), 1_795_000_000);
        assert!(a.app_data.is_empty());
        let (_, p) = announce(b"topics");
        assert_eq!(Announce::validate(&p).unwrap().app_data, b"topics");
    }

    #[test]
    fn a_ratchet_rides_signed_between_the_blob_and_the_signature() {
        let id = Identity::from_key_file(&[4; 64]).unwrap();
        let name = name_hash("p2panda.bridge.abcd");
        let p = Announce::build(&id, &name, [1; 5], 1_795_000_000, Some(&[9; 32]), b"t");
        assert!(p.context_flag);
        assert_eq!(p.encode().unwrap().len(), 167 + 32 + 1);
        let a = Announce::validate(&p).unwrap();
        assert_eq!((a.ratchet, &a.app_data[..]), (Some([9; 32]), &b"t"[..]));
        // The ratchet is signed: another one in its place does not verify.
        let mut swapped = p.clone();
        swapped.data[FIXED_LEN] ^= 1;
        assert_eq!(Announce::validate(&swapped), Err(AnnounceError::Signature));
        // Without the flag, the ratchet would be read as the signature.
        let mut unflagged = p;
        unflagged.context_flag = false;
        assert_eq!(
            Announce::validate(&unflagged),
            Err(AnnounceError::Signature)
        );
    }

    #[test]
    fn tampering_is_rejected_with_the_right_error() {
        let (_, p) = announce(&[7; 40]);
        let mut bad = p.clone();
        *bad.data.last_mut().unwrap() ^= 1;
        assert_eq!(Announce::validate(&bad), Err(AnnounceError::Signature));
        let mut bad = p.clone();
        bad.destination.0[0] ^= 1;
        assert_eq!(Announce::validate(&bad), Err(AnnounceError::Signature));
        let mut bad = p.clone();
        bad.data.truncate(100);
        assert_eq!(Announce::validate(&bad), Err(AnnounceError::Length(100)));
        let mut bad = p.clone();
        bad.context_flag = true;
        assert_eq!(Announce::validate(&bad), Err(AnnounceError::Signature));
        let mut bad = p;
        bad.packet_type = PacketType::Data;
        assert_eq!(Announce::validate(&bad), Err(AnnounceError::NotAnnounce));
    }

    #[test]
    fn app_data_round_trip_and_refusals() {
        let d = BridgeAppData {
            topics: vec![TopicTag([1, 2]), TopicTag([3, 4])],
        };
        assert_eq!(d.encode(), [1, 1, 2, 3, 4]);
        assert_eq!(BridgeAppData::decode(&d.encode()), Ok(d));
        assert_eq!(BridgeAppData::decode(&[]), Err(AppDataError::Empty));
        assert_eq!(BridgeAppData::decode(&[2]), Err(AppDataError::Version(2)));
        assert_eq!(BridgeAppData::decode(&[1, 5]), Err(AppDataError::Tags));
    }
}
