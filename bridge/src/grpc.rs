//! The gRPC services: LoRes' `lores.panda.v2.Panda` and our status service.

pub mod panda {
    tonic::include_proto!("lores.panda.v2");
}

pub mod status {
    tonic::include_proto!("lorabridge.status.v1");
}
