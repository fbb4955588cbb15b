//! One TCP connection to an rnsd `TCPServerInterface`: HDLC frames both ways, reconnecting
//! with exponential backoff (1 s doubling to 60 s, reset after a successful connect).

use std::time::Duration;

use lorabridge_reticulum::MTU;
use lorabridge_reticulum::hdlc::{self, Deframer};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// What a connection tells the driver.
pub(super) enum ConnEvent {
    Up {
        server: usize,
        writer: mpsc::Sender<Vec<u8>>,
    },
    Down {
        server: usize,
        error: String,
    },
    Packet {
        packet: Vec<u8>,
    },
}

const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Packets waiting to be written to one connection; more are dropped (the peer resends
/// summaries), so a stalled rnsd cannot grow our memory.
pub(super) const WRITE_QUEUE: usize = 256;

/// Runs until the driver goes away.
pub(super) async fn run(server: usize, address: String, events: mpsc::Sender<ConnEvent>) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let error = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&address)).await
        {
            Ok(Ok(stream)) => {
                backoff = BACKOFF_MIN;
                let _ = stream.set_nodelay(true);
                let (writer, outgoing) = mpsc::channel(WRITE_QUEUE);
                if events.send(ConnEvent::Up { server, writer }).await.is_err() {
                    return;
                }
                serve(&stream, outgoing, &events).await
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => "connect timed out".to_owned(),
        };
        if events
            .send(ConnEvent::Down { server, error })
            .await
            .is_err()
        {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Moves bytes until the connection fails; returns why.
async fn serve(
    stream: &TcpStream,
    mut outgoing: mpsc::Receiver<Vec<u8>>,
    events: &mpsc::Sender<ConnEvent>,
) -> String {
    let mut deframer = Deframer::new(MTU);
    let mut buf = vec![0u8; 4096];
    loop {
        tokio::select! {
            ready = stream.readable() => {
                if let Err(e) = ready {
                    return e.to_string();
                }
                match stream.try_read(&mut buf) {
                    Ok(0) => return "closed by rnsd".to_owned(),
                    Ok(n) => {
                        let mut packets = Vec::new();
                        deframer.push(&buf[..n], |p| packets.push(p.to_vec()));
                        for packet in packets {
                            if events.send(ConnEvent::Packet { packet }).await.is_err() {
                                return "driver stopped".to_owned();
                            }
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return e.to_string(),
                }
            }
            packet = outgoing.recv() => {
                let Some(packet) = packet else {
                    return "driver stopped".to_owned();
                };
                if let Err(e) = write_all(stream, &hdlc::encode(&packet)).await {
                    return e.to_string();
                }
            }
        }
    }
}

async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
