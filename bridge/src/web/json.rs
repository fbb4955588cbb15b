//! How the status messages' ids are written in JSON: lowercase hex, as `lorabridge status`
//! and the logs print them, so a steward can compare them by eye. (Proto3's canonical JSON
//! writes bytes in base64, which no steward reads.)
//!
//! `build.rs` names these functions in the generated status types.

use serde::Serializer;
use serde::ser::SerializeSeq;

/// One id.
pub fn hex<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&hex::encode(bytes))
}

/// A list of ids.
pub fn hex_list<S: Serializer>(list: &[Vec<u8>], serializer: S) -> Result<S::Ok, S::Error> {
    let mut seq = serializer.serialize_seq(Some(list.len()))?;
    for bytes in list {
        seq.serialize_element(&hex::encode(bytes))?;
    }
    seq.end()
}

#[cfg(test)]
mod tests {
    use crate::grpc::status::{StatusReply, TransportStatus};

    #[test]
    fn ids_are_hex_and_the_field_names_are_the_protos() {
        let reply = StatusReply {
            node_id: vec![0xab, 0x01],
            transports: vec![TransportStatus {
                name: "iroh".into(),
                peers: vec![vec![0xff], vec![0x00, 0x10]],
                ..Default::default()
            }],
            ..Default::default()
        };
        let json = serde_json::to_value(&reply).unwrap();
        assert_eq!(json["node_id"], "ab01");
        assert_eq!(json["transports"][0]["peers"][1], "0010");
        assert_eq!(json["import_backlog"], 0);
    }
}
