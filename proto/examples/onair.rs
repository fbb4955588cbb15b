//! Prints, as one JSON object, what one LoRes chat operation (a 40-byte payload published as
//! `Vec<u8>`, the author's second message) costs on air: canonical p2panda bytes versus our
//! compact encoding in frames, and its LoRa time-on-air.
//!
//! `cargo run --release --ignore-rust-version -p lorabridge-proto --example onair`

use lorabridge_hardware::Modulation;
use lorabridge_proto::fragment::split;
use lorabridge_proto::operation::{NewOp, RawOp, lores_body, sign};
use lorabridge_proto::{FrameCodec, NetworkTag, NodeTag, OpTag, RegionKey, compact};
use p2panda_core::SigningKey;

/// The largest LoRa PHY payload: one frame.
const LORA_MTU: usize = 255;

fn modulation(spreading_factor: u8) -> Modulation {
    Modulation {
        frequency_hz: 869_525_000,
        spreading_factor,
        bandwidth_hz: 125_000,
        coding_rate: 5,
        preamble_symbols: 8,
        tx_power_dbm: 14,
        sync_word: 0x12,
    }
}

/// Frames (each ≤ 255 bytes) that carry `op` once encoded, and their total time-on-air.
fn on_air(op: &[u8], codec: &FrameCodec, sf: u8) -> (Vec<usize>, f64) {
    let messages =
        split(op, OpTag([0; 4]), LORA_MTU - codec.overhead()).expect("op fits fragments");
    let sizes: Vec<usize> = messages
        .iter()
        .map(|m| {
            codec
                .encode(NodeTag([0; 2]), m, [0; 12], LORA_MTU)
                .expect("fits the MTU")
                .len()
        })
        .collect();
    let airtime = sizes
        .iter()
        .map(|n| modulation(sf).time_on_air(*n).as_secs_f64() * 1e3)
        .sum();
    (sizes, airtime)
}

fn main() {
    let author = SigningKey::from_bytes(&[7; 32]);
    let topic = *blake3::hash(b"region id || chat").as_bytes();
    let payload = [b'x'; 40];
    let body = lores_body(&payload);
    let timestamp = 1_795_000_000_000_000;
    let first = sign(
        &author,
        &NewOp {
            topic: &topic,
            seq: 0,
            backlink: None,
            timestamp,
            prune: false,
            body: Some(&body),
        },
    );
    let op = sign(
        &author,
        &NewOp {
            topic: &topic,
            seq: 1,
            backlink: Some(first.id()),
            timestamp: timestamp + 61_000_000,
            prune: false,
            body: Some(&body),
        },
    );
    let known = compact::encode(&op, &topic, true).expect("encodes");
    let first_contact = compact::encode(&op, &topic, false).expect("encodes");

    let plain = FrameCodec::new(NetworkTag::from_network_id(&[1; 32]), None);
    let sealed = FrameCodec::new(
        NetworkTag::from_network_id(&[1; 32]),
        Some(RegionKey::new(&[2; 32])),
    );
    let canonical = [op.header.clone(), op.body.clone().unwrap_or_default()].concat();
    let (canonical_frames, canonical_ms_sf9) = on_air(&canonical, &plain, 9);
    let (known_frames, known_ms_sf9) = on_air(&known, &plain, 9);
    let (first_frames, first_ms_sf9) = on_air(&first_contact, &plain, 9);
    let (sealed_frames, sealed_ms_sf9) = on_air(&known, &sealed, 9);
    let (sf7_frames, known_ms_sf7) = on_air(&known, &plain, 7);
    let round = |ms: f64| (ms * 1000.0).round() / 1000.0;

    let report = serde_json::json!({
        "payload_bytes": payload.len(),
        "canonical_bytes": RawOp::canonical_len(&op),
        "canonical_header_bytes": op.header.len(),
        "canonical_body_bytes": body.len(),
        "compact_bytes_first_contact": first_contact.len(),
        "compact_bytes_known_author": known.len(),
        "frame_bytes_first_contact": first_frames,
        "frame_bytes_known_author": known_frames,
        "frame_bytes_known_author_region_key": sealed_frames,
        "frames_sf7_bw125": sf7_frames.len(),
        "frames_canonical_sf7_bw125": canonical_frames.len(),
        "airtime_ms_sf7_bw125": round(known_ms_sf7),
        "airtime_ms_sf9_bw125": round(known_ms_sf9),
        "airtime_ms_sf9_bw125_first_contact": round(first_ms_sf9),
        "airtime_ms_sf9_bw125_region_key": round(sealed_ms_sf9),
        "airtime_ms_sf9_bw125_canonical": round(canonical_ms_sf9),
        "frame_overhead_bytes": plain.overhead(),
        "frame_overhead_bytes_region_key": sealed.overhead(),
    });
    println!("{report}");
}
