//! The Reticulum packet: one flags byte, a hop count, one or two 16-byte addresses, a context
//! byte and the data. Layout and field values are in `facts/reticulum.md`.

use sha2::{Digest, Sha256};

/// Largest packet on the wire (Reticulum's MTU).
pub const MTU: usize = 500;
/// Length of destination hashes, identity hashes and transport ids.
pub const HASH_LEN: usize = 16;
/// Header of a packet with one address (HEADER_1).
pub const HEADER_1_LEN: usize = 2 + HASH_LEN + 1;
/// Header of a packet with a transport id and a destination (HEADER_2).
pub const HEADER_2_LEN: usize = 2 + 2 * HASH_LEN + 1;
/// A packet is refused at this hop count (Reticulum's maximum is 128 hops).
pub const MAX_HOPS: u8 = 128;

/// Context byte values used here.
pub mod context {
    pub const NONE: u8 = 0x00;
    pub const RESOURCE: u8 = 0x01;
    pub const PATH_RESPONSE: u8 = 0x0B;
    pub const KEEPALIVE: u8 = 0xFA;
    pub const LINK_PROOF: u8 = 0xFF;
}

/// A 16-byte truncated SHA-256: destination hashes, identity hashes, transport ids.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash16(pub [u8; HASH_LEN]);

impl Hash16 {
    /// SHA-256 of `bytes`, truncated to 16 bytes.
    pub fn truncated(bytes: &[u8]) -> Self {
        let full = Sha256::digest(bytes);
        let mut out = [0; HASH_LEN];
        out.copy_from_slice(&full[..HASH_LEN]);
        Self(out)
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses 32 hex digits.
    pub fn from_hex(hex: &str) -> Option<Self> {
        let hex = hex.as_bytes();
        if hex.len() != 2 * HASH_LEN {
            return None;
        }
        let mut out = [0; HASH_LEN];
        for (i, pair) in hex.chunks(2).enumerate() {
            let s = std::str::from_utf8(pair).ok()?;
            out[i] = u8::from_str_radix(s, 16).ok()?;
        }
        Some(Self(out))
    }
}

impl std::fmt::Debug for Hash16 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{}>", self.to_hex())
    }
}

impl std::fmt::Display for Hash16 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketType {
    Data = 0,
    Announce = 1,
    LinkRequest = 2,
    Proof = 3,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DestinationType {
    Single = 0,
    Group = 1,
    Plain = 2,
    Link = 3,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("packet of {0} bytes is shorter than its header")]
    TooShort(usize),
    #[error("packet of {0} bytes exceeds the {MTU}-byte MTU")]
    TooLong(usize),
    #[error("unknown header type in flags {0:#04x}")]
    HeaderType(u8),
    #[error("hop count {0} at or above the maximum")]
    Hops(u8),
}

/// One Reticulum packet, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub packet_type: PacketType,
    pub destination_type: DestinationType,
    /// Announces: a ratchet key is present. Other packets: application-defined.
    pub context_flag: bool,
    /// Transport type TRANSPORT (1) rather than BROADCAST (0).
    pub transport: bool,
    pub hops: u8,
    /// Present in HEADER_2 packets: the transport node that must forward the packet (or, in
    /// an announce, the node that rebroadcast it).
    pub transport_id: Option<Hash16>,
    pub destination: Hash16,
    pub context: u8,
    pub data: Vec<u8>,
}

impl Packet {
    /// A HEADER_1 broadcast packet with hop count 0.
    pub fn new(
        packet_type: PacketType,
        destination_type: DestinationType,
        destination: Hash16,
        context: u8,
        data: Vec<u8>,
    ) -> Self {
        Self {
            packet_type,
            destination_type,
            context_flag: false,
            transport: false,
            hops: 0,
            transport_id: None,
            destination,
            context,
            data,
        }
    }

    /// The low nibble of the flags (destination and packet type): the only header bits that
    /// are hashed, because transport nodes rewrite the others.
    fn type_nibble(&self) -> u8 {
        ((self.destination_type as u8) << 2) | self.packet_type as u8
    }

    pub fn flags(&self) -> u8 {
        (u8::from(self.transport_id.is_some()) << 6)
            | (u8::from(self.context_flag) << 5)
            | (u8::from(self.transport) << 4)
            | self.type_nibble()
    }

    pub fn header_len(&self) -> usize {
        if self.transport_id.is_some() {
            HEADER_2_LEN
        } else {
            HEADER_1_LEN
        }
    }

    pub fn wire_len(&self) -> usize {
        self.header_len() + self.data.len()
    }

    /// The bytes on the wire. Fails if the packet exceeds the MTU.
    pub fn encode(&self) -> Result<Vec<u8>, PacketError> {
        let len = self.wire_len();
        if len > MTU {
            return Err(PacketError::TooLong(len));
        }
        let mut out = Vec::with_capacity(len);
        out.push(self.flags());
        out.push(self.hops);
        if let Some(id) = &self.transport_id {
            out.extend_from_slice(&id.0);
        }
        out.extend_from_slice(&self.destination.0);
        out.push(self.context);
        out.extend_from_slice(&self.data);
        Ok(out)
    }

    /// Parses a packet. Never panics; refuses what no conforming node sends.
    pub fn decode(raw: &[u8]) -> Result<Self, PacketError> {
        if raw.len() > MTU {
            return Err(PacketError::TooLong(raw.len()));
        }
        let (&flags, rest) = raw.split_first().ok_or(PacketError::TooShort(0))?;
        if flags & 0x80 != 0 {
            return Err(PacketError::HeaderType(flags));
        }
        let two = flags & 0x40 != 0;
        let header = if two { HEADER_2_LEN } else { HEADER_1_LEN };
        if raw.len() < header {
            return Err(PacketError::TooShort(raw.len()));
        }
        let hops = rest[0];
        if hops >= MAX_HOPS {
            return Err(PacketError::Hops(hops));
        }
        let mut at = 2;
        let mut take16 = || {
            let mut h = [0; HASH_LEN];
            h.copy_from_slice(&raw[at..at + HASH_LEN]);
            at += HASH_LEN;
            Hash16(h)
        };
        let transport_id = two.then(&mut take16);
        let destination = take16();
        let packet_type = match flags & 0x03 {
            0 => PacketType::Data,
            1 => PacketType::Announce,
            2 => PacketType::LinkRequest,
            _ => PacketType::Proof,
        };
        let destination_type = match (flags >> 2) & 0x03 {
            0 => DestinationType::Single,
            1 => DestinationType::Group,
            2 => DestinationType::Plain,
            _ => DestinationType::Link,
        };
        Ok(Self {
            packet_type,
            destination_type,
            context_flag: flags & 0x20 != 0,
            transport: flags & 0x10 != 0,
            hops,
            transport_id,
            destination,
            context: raw[header - 1],
            data: raw[header..].to_vec(),
        })
    }

    /// The packet hash: SHA-256 over the type nibble and everything after the addresses a
    /// transport node may rewrite (hops, transport id). It names the packet end to end: the
    /// duplicate filter and proofs use it.
    pub fn hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update([self.type_nibble()]);
        h.update(self.destination.0);
        h.update([self.context]);
        h.update(&self.data);
        h.finalize().into()
    }

    /// The first 16 bytes of [`Packet::hash`]: where a proof of this packet is addressed.
    pub fn truncated_hash(&self) -> Hash16 {
        truncate(&self.hash())
    }
}

/// The first 16 bytes of a 32-byte hash.
pub fn truncate(full: &[u8; 32]) -> Hash16 {
    let mut out = [0; HASH_LEN];
    out.copy_from_slice(&full[..HASH_LEN]);
    Hash16(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Packet {
        Packet::new(
            PacketType::Data,
            DestinationType::Single,
            Hash16([7; 16]),
            context::NONE,
            vec![1, 2, 3],
        )
    }

    #[test]
    fn header_1_layout_and_round_trip() {
        let p = sample();
        let wire = p.encode().unwrap();
        assert_eq!(wire.len(), HEADER_1_LEN + 3);
        assert_eq!(wire[0], 0x00);
        assert_eq!(Packet::decode(&wire).unwrap(), p);
    }

    #[test]
    fn header_2_flags_and_hash_ignores_transport_fields() {
        let p = sample();
        let mut q = p.clone();
        q.transport_id = Some(Hash16([9; 16]));
        q.transport = true;
        q.hops = 3;
        let wire = q.encode().unwrap();
        assert_eq!(wire[0], 0x50);
        assert_eq!(&wire[2..18], &[9; 16]);
        assert_eq!(Packet::decode(&wire).unwrap(), q);
        assert_eq!(p.hash(), q.hash());
    }

    #[test]
    fn refuses_short_long_bad_flags_and_hops() {
        assert_eq!(Packet::decode(&[]), Err(PacketError::TooShort(0)));
        assert_eq!(Packet::decode(&[0; 18]), Err(PacketError::TooShort(18)));
        assert_eq!(Packet::decode(&[0x40; 34]), Err(PacketError::TooShort(34)));
        assert_eq!(Packet::decode(&[0; 501]), Err(PacketError::TooLong(501)));
        assert_eq!(
            Packet::decode(&[0x80; 40]),
            Err(PacketError::HeaderType(0x80))
        );
        let mut wire = sample().encode().unwrap();
        wire[1] = MAX_HOPS;
        assert_eq!(Packet::decode(&wire), Err(PacketError::Hops(MAX_HOPS)));
    }

    #[test]
    fn hex_round_trip() {
        let h = Hash16([0xab; 16]);
        assert_eq!(Hash16::from_hex(&h.to_hex()), Some(h));
        assert_eq!(Hash16::from_hex("zz"), None);
    }
}
