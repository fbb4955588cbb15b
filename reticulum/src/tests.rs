//! Two endpoints talking directly (no transport node), hostile input, and properties.

use std::time::Duration;

use lorabridge_proto::tags::{NetworkTag, TopicTag};
use proptest::prelude::*;

use super::announce::AnnounceError;
use super::endpoint::{Endpoint, EndpointConfig, Event, Handled, Rejection, SendError};
use super::hdlc::Deframer;
use super::identity::{DecryptError, Identity};
use super::packet::{Hash16, Packet, PacketError};
use super::path::PathUpdate;
use super::token::TokenError;
use super::{MAX_FRAME, hdlc};

const T0: Duration = Duration::from_secs(1_795_000_000);
const SEC: Duration = Duration::from_secs(1);

fn endpoint(seed: u8, network: [u8; 2]) -> Endpoint {
    let identity = Identity::from_key_file(&[seed; 64]).unwrap();
    let config = EndpointConfig::new(NetworkTag(network), vec![TopicTag([seed, 0xee])]);
    Endpoint::new(identity, config, [seed; 32])
}

/// Moves every queued packet from `from` into `to`, returning what `to` made of each.
fn deliver(
    from: &mut Endpoint,
    to: &mut Endpoint,
    now: Duration,
) -> Vec<Result<Handled, Rejection>> {
    let mut out = Vec::new();
    while let Some(p) = from.poll_transmit() {
        out.push(to.handle_packet(now, &p));
    }
    out
}

fn pair() -> (Endpoint, Endpoint) {
    let mut a = endpoint(1, [0xab, 0xcd]);
    let mut b = endpoint(2, [0xab, 0xcd]);
    a.handle_timeout(T0);
    b.handle_timeout(T0);
    assert_eq!(
        deliver(&mut a, &mut b, T0),
        [Ok(Handled::BridgeAnnounce(PathUpdate::New))]
    );
    deliver(&mut b, &mut a, T0);
    (a, b)
}

#[test]
fn announce_send_receive_and_prove() {
    let (mut a, mut b) = pair();
    assert_eq!(
        b.poll_event(),
        Some(Event::PeerAnnounced {
            peer: a.destination(),
            topics: vec![TopicTag([1, 0xee])],
            hops: 1
        })
    );
    let hash = a.send(T0, &b.destination(), b"a mesh frame").unwrap();
    assert_eq!(deliver(&mut a, &mut b, T0), [Ok(Handled::Data)]);
    assert_eq!(
        b.poll_event(),
        Some(Event::Received {
            from: a.destination(),
            frame: b"a mesh frame".to_vec()
        })
    );
    let proof = b.poll_transmit().unwrap();
    assert_eq!(proof.len(), 83, "implicit proof size measured against rnsd");
    assert_eq!(a.handle_packet(T0, &proof), Ok(Handled::Proof));
    let _announced = a.poll_event();
    assert_eq!(
        a.poll_event(),
        Some(Event::Delivered {
            to: b.destination(),
            packet: hash
        })
    );
    assert_eq!(a.stats().proofs_valid, 1);
}

#[test]
fn other_networks_and_our_own_echo_are_ignored() {
    let mut a = endpoint(1, [0xab, 0xcd]);
    let mut other = endpoint(3, [0x12, 0x34]);
    a.handle_timeout(T0);
    other.handle_timeout(T0);
    let own = a.poll_transmit().unwrap();
    let mut again = endpoint(1, [0xab, 0xcd]);
    assert_eq!(again.handle_packet(T0, &own), Ok(Handled::Ignored));
    assert_eq!(deliver(&mut other, &mut a, T0), [Ok(Handled::Ignored)]);
    assert!(a.peers(T0).is_empty());
}

#[test]
fn bad_signature_bad_hmac_unknown_sender_and_garbage_are_rejected_and_counted() {
    let mut a = endpoint(1, [0xab, 0xcd]);
    let mut b = endpoint(2, [0xab, 0xcd]);
    a.handle_timeout(T0);
    let mut announce = a.poll_transmit().unwrap();
    let last = announce.len() - 1;
    announce[last] ^= 1;
    assert_eq!(
        b.handle_packet(T0, &announce),
        Err(Rejection::Announce(AnnounceError::Signature))
    );
    announce[last] ^= 1;
    assert!(b.handle_packet(T0, &announce).is_ok());
    assert_eq!(b.handle_packet(T0, &announce), Err(Rejection::Duplicate));
    // b knows a; a learns b too, then sends a frame with a flipped ciphertext bit.
    b.handle_timeout(T0);
    deliver(&mut b, &mut a, T0);
    a.send(T0, &b.destination(), b"frame").unwrap();
    let mut data = a.poll_transmit().unwrap();
    data[60] ^= 0x40;
    assert_eq!(
        b.handle_packet(T0, &data),
        Err(Rejection::Decrypt(DecryptError::Token(TokenError::Hmac)))
    );
    // A stranger (not announced to b) sends to b.
    let mut stranger = endpoint(9, [0xab, 0xcd]);
    stranger.handle_timeout(T0);
    b.handle_timeout(T0 + 3600 * SEC);
    deliver(&mut b, &mut stranger, T0);
    stranger.poll_transmit();
    stranger.send(T0, &b.destination(), b"hi").unwrap();
    assert_eq!(
        deliver(&mut stranger, &mut b, T0),
        [Err(Rejection::UnknownSender(stranger.destination()))]
    );
    // b asks for the stranger's path; the stranger answers such a request with an announce,
    // which b then learns.
    let _proof = b.poll_transmit();
    let request = b.poll_transmit().expect("a path request");
    assert_eq!(
        Packet::decode(&request).unwrap().destination_type,
        super::packet::DestinationType::Plain
    );
    assert_eq!(
        stranger.handle_packet(T0, &request),
        Ok(Handled::PathRequest)
    );
    assert_eq!(
        deliver(&mut stranger, &mut b, T0),
        [Ok(Handled::BridgeAnnounce(PathUpdate::New))]
    );
    stranger.send(T0, &b.destination(), b"hi again").unwrap();
    assert_eq!(deliver(&mut stranger, &mut b, T0), [Ok(Handled::Data)]);
    assert_eq!(
        b.handle_packet(T0, &[0x80; 40]),
        Err(Rejection::Packet(PacketError::HeaderType(0x80)))
    );
    let s = b.stats();
    assert_eq!(s.path_requests_sent, 1);
    assert_eq!(
        (
            s.announces_rejected,
            s.duplicates,
            s.decrypt_failed,
            s.unknown_sender,
            s.malformed
        ),
        (1, 1, 1, 1, 1)
    );
}

/// Encrypts `plaintext` to `to` as a SINGLE data packet, the way anyone who heard `to`'s
/// announce can: to the ratchet of a fresh announce, no key of ours involved.
fn packet_to(to: &mut Endpoint, now: Duration, plaintext: &[u8]) -> Vec<u8> {
    to.announce(now);
    let announce = Packet::decode(&to.poll_transmit().unwrap()).unwrap();
    let announce = super::announce::Announce::validate(&announce).unwrap();
    let data =
        announce
            .identity
            .encrypt(plaintext, [0x42; 32], [0x24; 16], announce.ratchet.as_ref());
    Packet::new(
        super::packet::PacketType::Data,
        super::packet::DestinationType::Single,
        to.destination(),
        super::packet::context::NONE,
        data,
    )
    .encode()
    .unwrap()
}

#[test]
fn a_neighbour_cannot_send_frames_in_another_peers_name() {
    // a and b are peers; the forger f is a bridge of the network that b knows too.
    let (mut a, mut b) = pair();
    let mut f = endpoint(9, [0xab, 0xcd]);
    f.handle_timeout(T0);
    deliver(&mut f, &mut b, T0);
    while b.poll_event().is_some() {}
    // f writes a frame that names a as its sender, encrypted to b.
    let mut plaintext = a.destination().0.to_vec();
    plaintext.extend_from_slice(&[0u8; 16]);
    plaintext.extend_from_slice(b"forged frame");
    let packet = packet_to(&mut b, T0, &plaintext);
    let forged = b.handle_packet(T0, &packet);
    assert_eq!(forged, Err(Rejection::ForgedSender(a.destination())));
    assert_eq!(b.poll_event(), None, "nothing reaches the engine");
    assert_eq!(b.stats().forged_sender, 1);
    // The same frame from a itself arrives.
    a.send(T0, &b.destination(), b"honest frame").unwrap();
    deliver(&mut a, &mut b, T0);
    assert_eq!(
        b.poll_event(),
        Some(Event::Received {
            from: a.destination(),
            frame: b"honest frame".to_vec()
        })
    );
}

#[test]
fn a_flood_of_fresh_identities_cannot_push_a_peer_that_talks_out_of_the_path_table() {
    // Announces cost an attacker only a fresh key each. b remembers 256 peers.
    let (mut a, mut b) = pair();
    a.send(T0, &b.destination(), b"hello").unwrap();
    assert_eq!(deliver(&mut a, &mut b, T0), [Ok(Handled::Data)]);
    for n in 0..300u16 {
        let mut key = [0x33; 64];
        key[..2].copy_from_slice(&n.to_be_bytes());
        let mut fake = Endpoint::new(
            Identity::from_key_file(&key).unwrap(),
            EndpointConfig::new(NetworkTag([0xab, 0xcd]), vec![TopicTag([1, 0xee])]),
            [7; 32],
        );
        let later = T0 + u32::from(n) * SEC;
        fake.handle_timeout(later);
        deliver(&mut fake, &mut b, later);
    }
    let later = T0 + 301 * SEC;
    assert_eq!(b.stats().announces_accepted, 301);
    a.send(later, &b.destination(), b"still here").unwrap();
    assert_eq!(deliver(&mut a, &mut b, later), [Ok(Handled::Data)]);
}

#[test]
fn packets_recorded_before_a_restart_do_not_decrypt_after_it() {
    let (mut a, mut b) = pair();
    a.send(T0, &b.destination(), b"once").unwrap();
    let recorded = a.poll_transmit().unwrap();
    assert_eq!(b.handle_packet(T0, &recorded), Ok(Handled::Data));
    assert_eq!(b.handle_packet(T0, &recorded), Err(Rejection::Duplicate));
    // b restarts on its identity file: a fresh duplicate filter, and fresh ratchets.
    let mut b = Endpoint::new(
        Identity::from_key_file(&[2; 64]).unwrap(),
        EndpointConfig::new(NetworkTag([0xab, 0xcd]), vec![TopicTag([2, 0xee])]),
        [0x99; 32],
    );
    let later = T0 + 60 * SEC;
    b.handle_timeout(later);
    deliver(&mut b, &mut a, later);
    a.announce(later);
    deliver(&mut a, &mut b, later);
    assert!(matches!(
        b.handle_packet(later, &recorded),
        Err(Rejection::Decrypt(_))
    ));
    // a, having heard b's new announce, reaches it.
    a.send(later, &b.destination(), b"after the restart")
        .unwrap();
    assert_eq!(deliver(&mut a, &mut b, later), [Ok(Handled::Data)]);
}

#[test]
fn a_peer_that_missed_a_few_rotations_still_reaches_us_and_an_old_packet_does_not() {
    let (mut a, mut b) = pair();
    a.send(T0, &b.destination(), b"early").unwrap();
    let early = a.poll_transmit().unwrap();
    // b rotates its ratchet at each announce half an hour apart; a hears none of them.
    for n in 1..=3u32 {
        b.announce(T0 + n * 31 * 60 * SEC);
        while b.poll_transmit().is_some() {}
    }
    let late = T0 + 100 * 60 * SEC;
    a.send(late, &b.destination(), b"late").unwrap();
    assert_eq!(deliver(&mut a, &mut b, late), [Ok(Handled::Data)]);
    // One more rotation and the ratchet a used for both is gone: a recording of the
    // first packet, held back until now, no longer decrypts.
    b.announce(T0 + 4 * 31 * 60 * SEC);
    assert!(matches!(
        b.handle_packet(late, &early),
        Err(Rejection::Decrypt(_))
    ));
}

#[test]
fn forged_proof_is_rejected_and_missing_proof_times_out() {
    let (mut a, b) = pair();
    let hash = a.send(T0, &b.destination(), b"x").unwrap();
    let sent = Packet::decode(&a.poll_transmit().unwrap()).unwrap();
    let mut forged = Packet::new(
        super::packet::PacketType::Proof,
        super::packet::DestinationType::Single,
        sent.truncated_hash(),
        0,
        vec![7; 64],
    );
    assert_eq!(
        a.handle_packet(T0, &forged.encode().unwrap()),
        Err(Rejection::BadProof)
    );
    forged.data = vec![8; 64];
    assert_eq!(
        a.handle_packet(T0, &forged.encode().unwrap()),
        Err(Rejection::BadProof)
    );
    while a.poll_event().is_some() {}
    a.handle_timeout(T0 + 61 * SEC);
    assert_eq!(
        a.poll_event(),
        Some(Event::Undelivered {
            to: b.destination(),
            packet: hash
        })
    );
}

#[test]
fn send_checks_size_and_path_and_goes_through_the_announcing_transport_node() {
    let mut a = endpoint(1, [0xab, 0xcd]);
    let mut b = endpoint(2, [0xab, 0xcd]);
    b.handle_timeout(T0);
    let mut announce = Packet::decode(&b.poll_transmit().unwrap()).unwrap();
    // As rnsd rebroadcasts it: HEADER_2 with its transport id, one hop taken.
    announce.transport_id = Some(Hash16([0x77; 16]));
    announce.transport = true;
    announce.hops = 1;
    a.handle_packet(T0, &announce.encode().unwrap()).unwrap();
    assert_eq!(
        a.send(T0, &Hash16([1; 16]), b"x"),
        Err(SendError::NoPath(Hash16([1; 16])))
    );
    assert_eq!(
        a.send(T0, &b.destination(), &[0; MAX_FRAME + 1]),
        Err(SendError::TooLarge(MAX_FRAME + 1))
    );
    a.send(T0, &b.destination(), &[0; MAX_FRAME]).unwrap();
    let wire = a.poll_transmit().unwrap();
    assert_eq!(
        wire.len(),
        499,
        "a full frame fits the MTU (padding rounds to blocks)"
    );
    let p = Packet::decode(&wire).unwrap();
    assert_eq!(p.transport_id, Some(Hash16([0x77; 16])));
    assert_eq!(
        b.handle_packet(T0, &wire).unwrap_err(),
        Rejection::UnknownSender(a.destination())
    );
}

#[test]
fn announces_repeat_on_the_interval_with_increasing_emission_times() {
    let mut a = endpoint(1, [0xab, 0xcd]);
    a.handle_timeout(T0);
    a.announce(T0);
    let first = a.poll_transmit().unwrap();
    let second = a.poll_transmit().unwrap();
    let emitted = |raw: &[u8]| {
        let p = Packet::decode(raw).unwrap();
        super::Announce::validate(&p).unwrap().emitted()
    };
    assert_eq!(emitted(&second), emitted(&first) + 1);
    let due = a.poll_timeout();
    assert!(due > T0 + 13 * 60 * SEC && due <= T0 + 15 * 60 * SEC);
    a.handle_timeout(due - SEC);
    assert!(a.poll_transmit().is_none());
    a.handle_timeout(due);
    assert!(a.poll_transmit().is_some());
}

#[test]
fn a_flapping_interface_announces_at_most_every_ten_seconds() {
    let mut a = endpoint(1, [0xab, 0xcd]);
    for s in 0..60 {
        let now = T0 + s * SEC;
        a.interface_up(now);
        a.handle_timeout(now);
    }
    while a.poll_transmit().is_some() {}
    // Once on the first connection, then once per spacing of 10 s: at 0, 10, ..., 50 s.
    assert_eq!(a.stats().announces_sent, 6);
}

#[test]
fn announces_go_on_after_the_clock_is_set_back() {
    let mut a = endpoint(1, [0xab, 0xcd]);
    a.handle_timeout(T0);
    assert_eq!(a.stats().announces_sent, 1);
    let back = T0 - 3600 * SEC;
    a.handle_timeout(back);
    assert_eq!(
        a.stats().announces_sent,
        2,
        "announced at once after the jump"
    );
    let due = a.poll_timeout();
    assert!(due <= back + 15 * 60 * SEC, "the next within an interval");
    a.handle_timeout(due);
    assert_eq!(a.stats().announces_sent, 3);
    // The emission times still grow, or transport nodes would ignore the announces.
    let emitted: Vec<u64> = std::iter::from_fn(|| a.poll_transmit())
        .map(|raw| {
            let p = Packet::decode(&raw).unwrap();
            super::Announce::validate(&p).unwrap().emitted()
        })
        .collect();
    assert!(emitted.windows(2).all(|w| w[1] > w[0]), "{emitted:?}");
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Packet::decode(&bytes);
        let mut e = endpoint(1, [0xab, 0xcd]);
        let _ = e.handle_packet(T0, &bytes);
        let mut d = Deframer::new(500);
        d.push(&bytes, |_| {});
    }

    #[test]
    fn mutated_valid_packets_never_panic_and_never_deliver(
        flip in 0usize..500, bit in 0u8..8, kind in 0u8..3,
    ) {
        let (mut a, mut b) = pair();
        let raw = match kind {
            0 => { a.announce(T0 + SEC); a.poll_transmit().unwrap() }
            1 => { a.send(T0, &b.destination(), b"frame").unwrap(); a.poll_transmit().unwrap() }
            _ => {
                a.send(T0, &b.destination(), b"frame").unwrap();
                deliver(&mut a, &mut b, T0);
                b.poll_transmit().unwrap()
            }
        };
        let mut bad = raw.clone();
        let i = flip % bad.len();
        // Flipping hops or the header-type bit changes no authenticated content.
        prop_assume!(i != 1 && !(i == 0 && bit >= 4));
        bad[i] ^= 1 << bit;
        let (target, other) = if kind == 2 { (&mut a, &mut b) } else { (&mut b, &mut a) };
        let _ = other;
        while target.poll_event().is_some() {}
        let result = target.handle_packet(T0, &bad);
        let delivered = matches!(result, Ok(Handled::Data) | Ok(Handled::Proof));
        prop_assert!(!delivered, "a corrupted packet was accepted: {result:?}");
    }

    #[test]
    fn hdlc_round_trips(packets in proptest::collection::vec(
        proptest::collection::vec(any::<u8>(), 1..500), 1..5)) {
        let wire: Vec<u8> = packets.iter().flat_map(|p| hdlc::encode(p)).collect();
        let mut d = Deframer::new(500);
        let mut got = Vec::new();
        d.push(&wire, |f| got.push(f.to_vec()));
        prop_assert_eq!(got, packets);
    }
}

#[test]
fn wire_cost_of_one_pushed_operation() {
    // The onair example's operation (40-byte payload, known author) is a 127-byte mesh frame;
    // on LoRa that frame is the whole cost. Through rnsd it costs this per hop.
    let mut a = endpoint(1, [0xab, 0xcd]);
    let mut b = endpoint(2, [0xab, 0xcd]);
    b.handle_timeout(T0);
    let mut announce = Packet::decode(&b.poll_transmit().unwrap()).unwrap();
    announce.transport_id = Some(Hash16([0x77; 16]));
    announce.hops = 1;
    a.handle_packet(T0, &announce.encode().unwrap()).unwrap();
    a.send(T0, &b.destination(), &[0x55; 127]).unwrap();
    let wire = a.poll_transmit().unwrap();
    // 35 header + 32 ephemeral key + 16 IV + 160 ciphertext (16 sender + 16 sender tag + 127
    // frame, padded) + 32 HMAC.
    assert_eq!(wire.len(), 275);
    assert_eq!(hdlc::encode(&wire).len(), 277 + count_escapes(&wire));
}

fn count_escapes(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .filter(|b| **b == hdlc::FLAG || **b == hdlc::ESC)
        .count()
}
