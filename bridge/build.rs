//! Compiles the gRPC definitions without a system `protoc`: protox parses the .proto files
//! in Rust and tonic's generator writes the service code.
//!
//! The status messages also derive `serde::Serialize`, so that the web window's JSON carries
//! exactly what the gRPC status service does (one set of types, no hand-kept copy). Ids are
//! written in hex, as the CLI and the logs show them.

const STATUS: &str = ".lorabridge.status.v1";

/// The status fields holding ids (bytes), and whether each is a list of them.
const ID_FIELDS: &[(&str, bool)] = &[
    ("StatusReply.node_id", false),
    ("StatusReply.network_id", false),
    ("TopicStatus.topic_id", false),
    ("TopicStatus.region_id", false),
    ("TransportStatus.peers", true),
    ("RecentOperation.topic_id", false),
    ("RecentOperation.operation_id", false),
    ("RecentOperation.author", false),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/lores_panda_v2.proto",
        "proto/lorabridge_status.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    let mut builder =
        tonic_prost_build::configure().type_attribute(STATUS, "#[derive(serde::Serialize)]");
    for (field, list) in ID_FIELDS {
        let with = match list {
            false => "crate::web::json::hex",
            true => "crate::web::json::hex_list",
        };
        builder = builder.field_attribute(
            format!("{STATUS}.{field}"),
            format!("#[serde(serialize_with = \"{with}\")]"),
        );
    }
    builder.compile_fds(descriptors)?;
    Ok(())
}
