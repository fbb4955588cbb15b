//! Compiles the gRPC definitions without a system `protoc`: protox parses the .proto files
//! in Rust and tonic's generator writes the service code.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/lores_panda_v2.proto",
        "proto/lorabridge_status.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
