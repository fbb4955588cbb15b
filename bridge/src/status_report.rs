//! `lorabridge status`: a running bridge's status API, as a steward reads it.

use std::fmt::Write;
use std::net::SocketAddr;

use crate::grpc::status::status_client::StatusClient;
use crate::grpc::status::{StatusReply, StatusRequest, TransportStatus};

/// Asks the bridge whose status service listens on `addr`.
pub async fn fetch(addr: SocketAddr) -> Result<StatusReply, String> {
    let mut client = StatusClient::connect(format!("http://{addr}"))
        .await
        .map_err(|e| {
            format!("no bridge status service at {addr} ({e}); is `lorabridge run` running?")
        })?;
    client
        .get_status(StatusRequest {})
        .await
        .map(tonic::Response::into_inner)
        .map_err(|e| format!("status request to {addr} failed: {}", e.message()))
}

/// The status as text: node, topics, then each transport with its counters, airtime and
/// neighbours.
pub fn render(status: &StatusReply) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "node     {}", hex::encode(&status.node_id));
    let _ = writeln!(out, "network  {}", hex::encode(&status.network_id));
    let _ = writeln!(out, "topics");
    for t in &status.topics {
        let app = if t.app_id.is_empty() {
            "(region admin)"
        } else {
            &t.app_id
        };
        let _ = writeln!(
            out,
            "  {app:<20} region {}…  {} operations",
            short(&t.region_id),
            t.operations
        );
    }
    let _ = writeln!(out, "transports");
    for t in &status.transports {
        render_transport(&mut out, t);
    }
    if status.import_backlog > 0 {
        let _ = writeln!(
            out,
            "catching up: {} operations from the mesh waiting to be stored",
            status.import_backlog
        );
    }
    out
}

fn render_transport(out: &mut String, t: &TransportStatus) {
    let _ = writeln!(out, "  {:<10} {}", t.name, t.state);
    if t.state == crate::web::snapshot::DISABLED {
        return;
    }
    if t.name == "iroh" {
        for peer in &t.peers {
            let _ = writeln!(out, "    peer     {}", hex::encode(peer));
        }
        return;
    }
    let _ = writeln!(
        out,
        "    frames   {} sent, {} heard, {} rejected; operations {} sent, {} received; {} queued",
        t.frames_sent, t.frames_heard, t.frames_rejected, t.ops_sent, t.ops_received, t.queue_depth
    );
    if t.send_failures > 0 {
        let _ = writeln!(
            out,
            "    failed   {} frames not taken by the {} (each queued again)",
            t.send_failures,
            if t.name == "reticulum" {
                "rnsd"
            } else {
                "module"
            }
        );
    }
    for a in &t.airtime {
        let _ = if a.budget_secs > 0.0 {
            writeln!(
                out,
                "    airtime  {}: {:.1} s used of {:.1} s in the duty-cycle window ({:.1} %)",
                a.sub_band,
                a.used_secs,
                a.budget_secs,
                100.0 * a.used_secs / a.budget_secs
            )
        } else {
            writeln!(out, "    airtime  {}: {:.1} s", a.sub_band, a.used_secs)
        };
    }
    if t.neighbours.is_empty() {
        let _ = writeln!(out, "    no neighbours heard yet");
    }
    for n in &t.neighbours {
        let mut line = format!(
            "    neighbour {}  heard {:.0} s ago, {} frames",
            n.tag, n.last_heard_secs_ago, n.frames
        );
        if let Some(rssi) = n.rssi_dbm {
            let _ = write!(line, ", RSSI {rssi:.0} dBm");
        }
        if let Some(snr) = n.snr_db {
            let _ = write!(line, ", SNR {snr:.1} dB");
        }
        let _ = writeln!(out, "{line}");
    }
}

fn short(id: &[u8]) -> String {
    hex::encode(&id[..id.len().min(4)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::status::{Neighbour, SubBandAirtime, TopicStatus};

    #[test]
    fn shows_topics_transports_airtime_and_neighbours() {
        let status = StatusReply {
            node_id: vec![0xab; 32],
            network_id: vec![0x11; 32],
            topics: vec![TopicStatus {
                topic_id: vec![1; 32],
                app_id: "chat".into(),
                region_id: vec![0x22; 32],
                operations: 7,
            }],
            transports: vec![
                TransportStatus {
                    name: "iroh".into(),
                    state: "ready".into(),
                    ..Default::default()
                },
                TransportStatus {
                    name: "lora".into(),
                    state: "ready".into(),
                    neighbours: vec![Neighbour {
                        tag: "beef".into(),
                        last_heard_secs_ago: 3.2,
                        rssi_dbm: Some(-97.0),
                        snr_db: Some(4.5),
                        frames: 12,
                        history: Vec::new(),
                    }],
                    airtime: vec![SubBandAirtime {
                        sub_band: "g3".into(),
                        used_secs: 36.0,
                        budget_secs: 360.0,
                        used_secs_history: Vec::new(),
                    }],
                    frames_sent: 5,
                    ops_received: 2,
                    send_failures: 3,
                    ..Default::default()
                },
                TransportStatus {
                    name: "reticulum".into(),
                    state: "connecting".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let text = render(&status);
        for expected in [
            "chat                 region 22222222…  7 operations",
            "  lora       ready",
            "frames   5 sent, 0 heard, 0 rejected; operations 0 sent, 2 received",
            "g3: 36.0 s used of 360.0 s in the duty-cycle window (10.0 %)",
            "    failed   3 frames not taken by the module (each queued again)",
            "neighbour beef  heard 3 s ago, 12 frames, RSSI -97 dBm, SNR 4.5 dB",
            "  reticulum  connecting\n    frames",
            "no neighbours heard yet",
        ] {
            assert!(text.contains(expected), "{expected:?} missing from\n{text}");
        }
    }
}
