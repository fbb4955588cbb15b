//! What the endpoint does with a packet heard on an interface: duplicates dropped, bridge
//! announces learned into the path table, data decrypted and its sender checked, proofs
//! given for data and taken for what we sent. Apart from the endpoint's top module, which
//! keeps its state and what it sends.

use std::time::Duration;

use super::{Endpoint, Event, Handled, Rejection};
use crate::announce::{Announce, BridgeAppData};
use crate::identity::{DecryptError, NAME_HASH_LEN, PUBLIC_KEY_LEN, SIGNATURE_LEN};
use crate::packet::{DestinationType, HASH_LEN, Hash16, Packet, PacketType, context};
use crate::path::PathUpdate;
use crate::sender::{SenderKey, TAG_LEN};
use crate::token;

impl Endpoint {
    /// Takes one packet heard on an interface.
    pub fn handle_packet(&mut self, now: Duration, raw: &[u8]) -> Result<Handled, Rejection> {
        self.stats.packets_in += 1;
        self.stats.bytes_in += raw.len() as u64;
        let packet = Packet::decode(raw).inspect_err(|_| self.stats.malformed += 1)?;
        if !self.seen.insert(packet.hash()) {
            self.stats.duplicates += 1;
            return Err(Rejection::Duplicate);
        }
        let handled = match packet.packet_type {
            PacketType::Announce => self.on_announce(now, &packet),
            PacketType::Data
                if packet.destination == self.destination
                    && packet.destination_type == DestinationType::Single
                    && packet.context == context::NONE =>
            {
                self.on_data(now, &packet)
            }
            PacketType::Data
                if packet.destination == self.path_request_destination
                    && packet.destination_type == DestinationType::Plain =>
            {
                Ok(self.on_path_request(now, &packet))
            }
            PacketType::Proof
                if packet.destination_type == DestinationType::Single
                    && packet.context == context::NONE
                    && self.receipts.contains_key(&packet.destination) =>
            {
                self.on_proof(now, &packet)
            }
            _ => Ok(Handled::Ignored),
        };
        if handled == Ok(Handled::Ignored) {
            self.stats.ignored += 1;
        }
        handled
    }

    fn on_announce(&mut self, now: Duration, packet: &Packet) -> Result<Handled, Rejection> {
        // Cheap checks first: only bridges of our network are worth a signature check.
        let name = packet
            .data
            .get(PUBLIC_KEY_LEN..PUBLIC_KEY_LEN + NAME_HASH_LEN);
        if packet.destination == self.destination || name != Some(&self.name_hash[..]) {
            return Ok(Handled::Ignored);
        }
        let announce = Announce::validate(packet).inspect_err(|_| {
            self.stats.announces_rejected += 1;
        })?;
        let app = BridgeAppData::decode(&announce.app_data).inspect_err(|_| {
            self.stats.announces_rejected += 1;
        })?;
        let previous_topics = self
            .paths
            .get(now, &announce.destination)
            .map(|e| e.app_data.clone());
        let hops = packet.hops.saturating_add(1);
        let identity = &self.identity;
        let update = self
            .paths
            .learn(now, &announce, hops, packet.transport_id, || {
                let shared = identity.shared_with(&announce.identity)?;
                Some(SenderKey::derive(&shared))
            });
        if update == PathUpdate::Ignored {
            self.stats.announces_stale += 1;
        } else {
            self.stats.announces_accepted += 1;
            if previous_topics.as_deref() != Some(&announce.app_data[..]) {
                self.emit(Event::PeerAnnounced {
                    peer: announce.destination,
                    topics: app.topics,
                    hops,
                });
            }
        }
        Ok(Handled::BridgeAnnounce(update))
    }

    fn on_data(&mut self, now: Duration, packet: &Packet) -> Result<Handled, Rejection> {
        let plaintext = self
            .open(&packet.data)
            .inspect_err(|_| self.stats.decrypt_failed += 1)?;
        self.stats.data_received += 1;
        if self.config.prove {
            self.prove(packet);
        }
        if plaintext.len() < HASH_LEN + TAG_LEN {
            self.stats.unknown_sender += 1;
            return Err(Rejection::NoSender);
        }
        let (from, rest) = plaintext.split_at(HASH_LEN);
        let (tag, frame) = rest.split_at(TAG_LEN);
        let from = Hash16(from.try_into().expect("split at HASH_LEN"));
        let Some(path) = self.paths.get(now, &from) else {
            // A bridge that heard our announce before we heard its own: ask the transport
            // nodes for its announce, so the next frame finds a link.
            self.stats.unknown_sender += 1;
            self.request_path(now, &from);
            return Err(Rejection::UnknownSender(from));
        };
        let proven = path
            .sender_key
            .as_ref()
            .is_some_and(|key| key.verify(&from, &self.destination, frame, tag));
        if !proven {
            self.stats.forged_sender += 1;
            return Err(Rejection::ForgedSender(from));
        }
        self.paths.prove(now, &from);
        self.emit(Event::Received {
            from,
            frame: frame.to_vec(),
        });
        Ok(Handled::Data)
    }

    /// Decrypts a packet to us with one of our ratchets.
    fn open(&self, data: &[u8]) -> Result<Vec<u8>, DecryptError> {
        let mut failed = DecryptError::Token(token::TokenError::Hmac);
        for secret in self.ratchets.secrets() {
            match self.identity.decrypt_with(secret, data) {
                Ok(plaintext) => return Ok(plaintext),
                // Another ratchet may be the one.
                Err(e @ DecryptError::Token(_)) => failed = e,
                // The same for every key.
                Err(e) => return Err(e),
            }
        }
        Err(failed)
    }

    /// An implicit proof: the signature of the packet hash, addressed to its truncation.
    /// Transport nodes route it back along the path the packet came.
    fn prove(&mut self, packet: &Packet) {
        let proof = Packet::new(
            PacketType::Proof,
            DestinationType::Single,
            packet.truncated_hash(),
            context::NONE,
            self.identity.sign(&packet.hash()).to_vec(),
        );
        self.stats.proofs_sent += 1;
        self.queue(proof);
    }

    fn on_proof(&mut self, now: Duration, packet: &Packet) -> Result<Handled, Rejection> {
        let receipt = &self.receipts[&packet.destination];
        // Implicit proofs are the signature alone; explicit ones prefix the packet hash.
        let signature = match packet.data.len() {
            SIGNATURE_LEN => &packet.data[..],
            n if n == 32 + SIGNATURE_LEN && packet.data[..32] == receipt.hash => &packet.data[32..],
            _ => &[][..],
        };
        let valid = self
            .paths
            .iter()
            .find(|(k, _)| **k == receipt.to)
            .is_some_and(|(_, e)| e.identity.verify(&receipt.hash, signature));
        if !valid {
            self.stats.proofs_invalid += 1;
            return Err(Rejection::BadProof);
        }
        let receipt = self
            .receipts
            .remove(&packet.destination)
            .expect("checked above");
        self.paths.prove(now, &receipt.to);
        self.stats.proofs_valid += 1;
        self.emit(Event::Delivered {
            to: receipt.to,
            packet: receipt.hash,
        });
        Ok(Handled::Proof)
    }
}
