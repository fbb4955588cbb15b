//! Any bytes from an rnsd connection: the HDLC deframer, the packet decoder and the endpoint
//! must not panic, and every packet the decoder accepts must encode back to the same bytes.
//! Each input is also tried as the data of an announce carrying our destination name and of
//! a packet addressed to our destination, so the fuzzer reaches announce validation and
//! decryption, and as the data of a proof of a packet we sent.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use lorabridge_proto::{NetworkTag, TopicTag};
use lorabridge_reticulum::hdlc::Deframer;
use lorabridge_reticulum::identity::name_hash;
use lorabridge_reticulum::packet::{DestinationType, PacketType};
use lorabridge_reticulum::{Endpoint, EndpointConfig, Identity, Packet, bridge_destination_name};

const NOW: Duration = Duration::from_secs(1_795_000_000);
const NETWORK: NetworkTag = NetworkTag([0xab, 0xcd]);

fn endpoint(seed: u8) -> Endpoint {
    let identity = Identity::from_key_file(&[seed; 64]).unwrap();
    Endpoint::new(
        identity,
        EndpointConfig::new(NETWORK, vec![TopicTag([1, 2])]),
        [seed; 32],
    )
}

/// Our endpoint after it learned a peer and sent it one packet (so proofs are awaited), and
/// the truncated hash that packet's proof is addressed to.
fn paired() -> (Endpoint, lorabridge_reticulum::Hash16) {
    let mut ours = endpoint(1);
    let mut peer = endpoint(2);
    peer.handle_timeout(NOW);
    let announce = peer.poll_transmit().unwrap();
    ours.handle_packet(NOW, &announce).unwrap();
    ours.send(NOW, &peer.destination(), b"frame").unwrap();
    let sent = Packet::decode(&ours.poll_transmit().unwrap()).unwrap();
    (ours, sent.truncated_hash())
}

fuzz_target!(|data: &[u8]| {
    static NAME: OnceLock<[u8; 10]> = OnceLock::new();
    static PAIRED: OnceLock<(Endpoint, lorabridge_reticulum::Hash16)> = OnceLock::new();
    let name = NAME.get_or_init(|| name_hash(&bridge_destination_name(NETWORK)));
    let (template, proof_to) = PAIRED.get_or_init(paired);
    let (mut ours, proof_to) = (template.clone(), *proof_to);

    if let Ok(packet) = Packet::decode(data) {
        assert_eq!(packet.encode().expect("re-encodes"), data);
    }
    let mut deframer = Deframer::new(500);
    let mut frames = Vec::new();
    deframer.push(data, |f| frames.push(f.to_vec()));

    let mut announce_data = vec![0u8; 64];
    announce_data.extend_from_slice(name);
    announce_data.extend_from_slice(data);
    let mut shaped = vec![
        Packet::new(
            PacketType::Announce,
            DestinationType::Single,
            Default::default(),
            0,
            announce_data,
        ),
        Packet::new(
            PacketType::Data,
            DestinationType::Single,
            ours.destination(),
            0,
            data.to_vec(),
        ),
        Packet::new(
            PacketType::Proof,
            DestinationType::Single,
            proof_to,
            0,
            data.to_vec(),
        ),
    ];
    if data.len() >= 16 {
        shaped[0].destination.0.copy_from_slice(&data[..16]);
    }
    let now = NOW + Duration::from_secs(1);
    let _ = ours.handle_packet(now, data);
    for frame in frames {
        let _ = ours.handle_packet(now, &frame);
    }
    for packet in shaped {
        if let Ok(bytes) = packet.encode() {
            let _ = ours.handle_packet(now, &bytes);
        }
    }
    ours.handle_timeout(now + Duration::from_secs(3600));
    while ours.poll_event().is_some() {}
    while ours.poll_transmit().is_some() {}
});
