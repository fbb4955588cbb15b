//! `lorabridge-demo`: a neighbourhood of four bridges in one process, with no hardware and no
//! config. A and B share iroh on loopback; B, C and D share only a simulated LoRa channel
//! (emulated RUI3 modules driven by the real serial driver). Messages published through the
//! gRPC API at A and at D are followed live to every bridge, with the transport that
//! delivered them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use crate::neighbourhood::{Member, Neighbourhood};
use lorabridge::actor::topics::AppEvent;
use lorabridge::grpc::panda::PublishRequest;
use lorabridge::grpc::panda::panda_client::PandaClient;
use lorabridge::lores::Carried;

const NETWORK: [u8; 32] = [0x1d; 32];
const REGION: [u8; 32] = [0x7e; 32];
const APP: &str = "chat";

/// Runs the demo; returns a non-zero exit status if a message did not reach every bridge.
pub async fn run(wait: Duration) -> Result<bool, String> {
    let carried = Carried {
        lora: true,
        ..Carried::app(REGION, APP)
    };
    let topic = carried.topic;
    let members = [
        Member::new("A", true, false),
        Member::new("B", true, true),
        Member::new("C", false, true),
        Member::new("D", false, true),
    ];
    println!(
        "Starting four bridges: A and B linked by iroh on loopback; B, C and D by a simulated LoRa channel"
    );
    println!(
        "(SF7/BW125 at 869.525 MHz, emulated RAK3172 modules on pseudo-terminals). C and D have no iroh.\n"
    );
    let hood = Neighbourhood::start(NETWORK, &members, &[carried]).await?;
    for (name, bridge) in &hood.bridges {
        println!(
            "  {name}: node {}…, gRPC on {}",
            &bridge.node.id().to_hex()[..8],
            bridge.grpc_addr
        );
    }
    let mut watchers: Vec<(String, broadcast::Receiver<AppEvent>)> = hood
        .bridges
        .iter()
        .map(|(name, b)| (name.clone(), b.watch(&topic).expect("carried topic")))
        .collect();

    let start = Instant::now();
    let messages = [
        ("A", "Water point open at the school until 6pm"),
        ("D", "Bread at the bakery on Elm St, bring a bag"),
    ];
    println!();
    for (at, text) in messages {
        let mut client = PandaClient::connect(format!("http://{}", hood.bridge(at).grpc_addr))
            .await
            .map_err(|e| e.to_string())?;
        let request = PublishRequest {
            app_id: APP.into(),
            instance_id: "demo".into(),
            payload: text.as_bytes().to_vec(),
            idempotency_key: vec![],
        };
        client.publish(request).await.map_err(|e| e.to_string())?;
        println!(
            "[{:>6.2}s] published at {at} through gRPC: {text:?}",
            start.elapsed().as_secs_f64()
        );
    }

    // (message, bridge) -> (transport, seconds after start)
    let mut arrivals: BTreeMap<(String, String), (&'static str, f64)> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + wait;
    while arrivals.len() < messages.len() * members.len() && tokio::time::Instant::now() < deadline
    {
        for (name, rx) in &mut watchers {
            while let Ok(event) = rx.try_recv() {
                let text = String::from_utf8_lossy(&event.payload).into_owned();
                let seconds = start.elapsed().as_secs_f64();
                if arrivals
                    .insert((text.clone(), name.clone()), (event.via, seconds))
                    .is_none()
                {
                    println!("[{seconds:>6.2}s] {name} has {text:?} via {}", event.via);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    println!("\nSummary: where each message arrived, by which transport, after how long");
    print!("{:<46}", "message");
    for m in &members {
        print!("{:>16}", m.name);
    }
    println!();
    let mut complete = true;
    for (_, text) in messages {
        print!("{:<46}", text);
        for m in &members {
            match arrivals.get(&(text.to_string(), m.name.clone())) {
                Some((via, s)) => print!("{:>16}", format!("{via} {s:.2}s")),
                None => {
                    complete = false;
                    print!("{:>16}", "missing");
                }
            }
        }
        println!();
    }
    hood.stop().await;
    println!(
        "\n{}",
        if complete {
            "Every message reached every bridge."
        } else {
            "Some messages did not arrive in time."
        }
    );
    Ok(complete)
}
