//! What the examples share: their arguments, an app's Publish, and the memory they use.

#![allow(dead_code)]

use std::fmt::Display;
use std::net::SocketAddr;
use std::str::FromStr;

use lorabridge::grpc::panda::PublishRequest;
use lorabridge::grpc::panda::panda_client::PandaClient;

/// The app the examples publish as.
pub const APP: &str = "chat";

/// The positional argument at `position` (1 is the first), or `default` without it.
pub fn arg<T: FromStr>(position: usize, name: &str, default: T) -> Result<T, String>
where
    T::Err: Display,
{
    match std::env::args().nth(position) {
        Some(value) => value.parse().map_err(|e| format!("{name} {value:?}: {e}")),
        None => Ok(default),
    }
}

/// One Publish by the app `APP` through the bridge's gRPC API at `grpc`.
pub async fn publish(grpc: SocketAddr, instance: &str, payload: Vec<u8>) -> Result<(), String> {
    let mut client = PandaClient::connect(format!("http://{grpc}"))
        .await
        .map_err(|e| e.to_string())?;
    client
        .publish(PublishRequest {
            app_id: APP.into(),
            instance_id: instance.into(),
            payload,
            idempotency_key: Vec::new(),
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Resident memory (VmRSS), its peak (VmHWM) and the thread count of the process `pid`
/// ("self" for this one), from /proc. Threads are counted because a leaked actor pool shows
/// there before it shows in memory.
pub fn memory(pid: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map_or("?".to_string(), |v| v.trim().to_string())
    };
    format!(
        "RSS {} (peak {}), {} threads",
        field("VmRSS:"),
        field("VmHWM:"),
        field("Threads:")
    )
}
