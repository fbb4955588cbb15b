//! `/metrics`: the status in Prometheus' text exposition format (version 0.0.4), named by
//! Prometheus' conventions: a `lorabridge_` prefix, `_total` on counters, base units in the
//! name (`_seconds`), one family per fact with the transport or sub-band as a label.
//!
//! Counters exist only for what is counted: a disabled transport has its state and nothing
//! else, and iroh has no frame counts and no sent operations (p2panda's sync reports neither;
//! what arrives over it is counted as the node processes it).

use std::fmt::{Display, Write};

use crate::grpc::status::{StatusReply, TransportStatus};
use crate::web::snapshot::DISABLED;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metrics of `status`.
pub fn render(status: &StatusReply) -> String {
    let mut out = Exposition::default();
    let node = hex::encode(&status.node_id);
    let network = hex::encode(&status.network_id);
    out.family(
        "lorabridge_info",
        "gauge",
        "The bridge's node and network (always 1).",
    );
    out.sample(
        "lorabridge_info",
        &[("node_id", &node), ("network_id", &network)],
        1,
    );

    out.family(
        "lorabridge_topic_operations",
        "gauge",
        "Operations the node holds per carried topic.",
    );
    for t in &status.topics {
        let topic = hex::encode(&t.topic_id);
        let region = hex::encode(&t.region_id);
        let labels = [
            ("topic", &*topic),
            ("app", &*t.app_id),
            ("region", &*region),
        ];
        out.sample("lorabridge_topic_operations", &labels, t.operations);
    }

    out.family(
        "lorabridge_transport_state",
        "gauge",
        "Each transport's current state (1); \"disabled\" when not configured.",
    );
    for t in &status.transports {
        let labels = [("transport", &*t.name), ("state", &*t.state)];
        out.sample("lorabridge_transport_state", &labels, 1);
    }

    let enabled: Vec<&TransportStatus> = status
        .transports
        .iter()
        .filter(|t| t.state != DISABLED)
        .collect();
    let mesh: Vec<&TransportStatus> = enabled
        .iter()
        .copied()
        .filter(|t| t.name != "iroh")
        .collect();
    for family in PER_TRANSPORT {
        out.family(family.name, family.kind, family.help);
        let has = if family.iroh_too { &enabled } else { &mesh };
        for t in has {
            out.sample(family.name, &[("transport", &t.name)], (family.value)(t));
        }
    }

    let peers = |name: &str| {
        status
            .transports
            .iter()
            .find(|t| t.name == name)
            .map_or(0, |t| t.peers.len())
    };
    out.family(
        "lorabridge_iroh_peers",
        "gauge",
        "iroh peers seen syncing lately.",
    );
    out.sample("lorabridge_iroh_peers", &[], peers("iroh"));
    out.family(
        "lorabridge_reticulum_peers",
        "gauge",
        "Reticulum peer bridges learned from announces.",
    );
    out.sample("lorabridge_reticulum_peers", &[], peers("reticulum"));

    let radio: Vec<&TransportStatus> = mesh.iter().copied().filter(|t| t.name == "lora").collect();
    out.family(
        "lorabridge_airtime_seconds_total",
        "counter",
        "Time on air of every frame the radio sent.",
    );
    for t in &radio {
        out.sample(
            "lorabridge_airtime_seconds_total",
            &[("transport", &t.name)],
            t.airtime_sent_secs,
        );
    }
    out.family(
        "lorabridge_airtime_used_seconds",
        "gauge",
        "Airtime used per sub-band in the rolling hour of the duty cycle.",
    );
    for band in radio.iter().flat_map(|t| &t.airtime) {
        out.sample(
            "lorabridge_airtime_used_seconds",
            &[("sub_band", &band.sub_band)],
            band.used_secs,
        );
    }
    out.family(
        "lorabridge_airtime_budget_seconds",
        "gauge",
        "Airtime allowed per sub-band in the rolling hour (sub-bands with a duty cycle).",
    );
    for band in radio
        .iter()
        .flat_map(|t| &t.airtime)
        .filter(|b| b.budget_secs > 0.0)
    {
        out.sample(
            "lorabridge_airtime_budget_seconds",
            &[("sub_band", &band.sub_band)],
            band.budget_secs,
        );
    }

    out.family(
        "lorabridge_import_backlog_operations",
        "gauge",
        "Operations from the mesh waiting to be stored by the node (catch-up backlog).",
    );
    out.sample(
        "lorabridge_import_backlog_operations",
        &[],
        status.import_backlog,
    );
    out.text
}

/// A metric family with one series per enabled transport that has it.
struct PerTransport {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    /// Whether iroh has it too (otherwise only the mesh transports do).
    iroh_too: bool,
    value: fn(&TransportStatus) -> u64,
}

const PER_TRANSPORT: [PerTransport; 9] = [
    PerTransport {
        name: "lorabridge_frames_sent_total",
        kind: "counter",
        help: "Mesh frames sent.",
        iroh_too: false,
        value: |t| t.frames_sent,
    },
    PerTransport {
        name: "lorabridge_frames_received_total",
        kind: "counter",
        help: "Mesh frames heard from other bridges.",
        iroh_too: false,
        value: |t| t.frames_heard,
    },
    PerTransport {
        name: "lorabridge_frames_rejected_total",
        kind: "counter",
        help: "Mesh frames refused: undecodable, foreign, or carrying a bad operation.",
        iroh_too: false,
        value: |t| t.frames_rejected,
    },
    PerTransport {
        name: "lorabridge_send_failures_total",
        kind: "counter",
        help: "Mesh frames the module or rnsd did not take; each was queued again.",
        iroh_too: false,
        value: |t| t.send_failures,
    },
    PerTransport {
        name: "lorabridge_operations_sent_total",
        kind: "counter",
        help: "Operations sent over a mesh transport.",
        iroh_too: false,
        value: |t| t.ops_sent,
    },
    PerTransport {
        name: "lorabridge_operations_received_total",
        kind: "counter",
        help: "New operations that arrived over the transport.",
        iroh_too: true,
        value: |t| t.ops_received,
    },
    PerTransport {
        name: "lorabridge_operations_rejected_total",
        kind: "counter",
        help: "Operations heard that failed to decode or forked a log.",
        iroh_too: false,
        value: |t| t.ops_rejected,
    },
    PerTransport {
        name: "lorabridge_send_queue_frames",
        kind: "gauge",
        help: "Frames waiting to be sent.",
        iroh_too: false,
        value: |t| t.queue_depth,
    },
    PerTransport {
        name: "lorabridge_neighbours",
        kind: "gauge",
        help: "Bridges heard on the transport lately.",
        iroh_too: false,
        value: |t| t.neighbours.len() as u64,
    },
];

#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{label}=\"{}\"", escape(value));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }
}

/// A label value as the format needs it: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::status::{Neighbour, SubBandAirtime};

    #[test]
    fn counters_per_transport_and_nothing_for_a_disabled_one() {
        let status = StatusReply {
            node_id: vec![0xab; 2],
            transports: vec![
                TransportStatus {
                    name: "iroh".into(),
                    state: "connected".into(),
                    peers: vec![vec![1; 32]],
                    ops_received: 4,
                    ..Default::default()
                },
                TransportStatus {
                    name: "lora".into(),
                    state: "ready".into(),
                    frames_sent: 9,
                    ops_rejected: 1,
                    send_failures: 2,
                    neighbours: vec![Neighbour::default()],
                    airtime: vec![SubBandAirtime {
                        sub_band: "g3".into(),
                        used_secs: 1.5,
                        budget_secs: 360.0,
                        used_secs_history: Vec::new(),
                    }],
                    airtime_sent_secs: 1.5,
                    ..Default::default()
                },
                TransportStatus {
                    name: "reticulum".into(),
                    state: "disabled".into(),
                    ..Default::default()
                },
            ],
            import_backlog: 3,
            ..Default::default()
        };
        let text = render(&status);
        for line in [
            "# TYPE lorabridge_frames_sent_total counter",
            "lorabridge_frames_sent_total{transport=\"lora\"} 9",
            "lorabridge_operations_received_total{transport=\"iroh\"} 4",
            "lorabridge_operations_rejected_total{transport=\"lora\"} 1",
            "lorabridge_send_failures_total{transport=\"lora\"} 2",
            "lorabridge_neighbours{transport=\"lora\"} 1",
            "lorabridge_transport_state{transport=\"reticulum\",state=\"disabled\"} 1",
            "lorabridge_iroh_peers 1",
            "lorabridge_reticulum_peers 0",
            "lorabridge_airtime_used_seconds{sub_band=\"g3\"} 1.5",
            "lorabridge_airtime_budget_seconds{sub_band=\"g3\"} 360",
            "lorabridge_airtime_seconds_total{transport=\"lora\"} 1.5",
            "lorabridge_import_backlog_operations 3",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing from\n{text}"
            );
        }
        assert!(
            !text.contains("transport=\"reticulum\"}"),
            "no counters of a disabled transport"
        );
        assert!(!text.contains("frames_sent_total{transport=\"iroh\""));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
