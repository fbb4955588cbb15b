//! The bridge's Reticulum transport against the reference implementation: a real `rnsd`
//! (rns 1.5.7) on loopback and a Python RNS peer (tests/reticulum/peer.py).
//!
//! Needs the venv from `tests/reticulum/setup.sh`.

use lorabridge::reticulum;

use std::time::Duration;

use lorabridge_proto::{NetworkTag, TopicTag};
use lorabridge_reticulum::{Event, Hash16};
use lorabridge_testkit::driven_rns::DrivenRns;
use lorabridge_testkit::rns::{PythonPeer, Rnsd, hex};
use reticulum::{Reticulum, ReticulumConfig, ReticulumEvent};
use tempfile::TempDir;
use tokio::sync::mpsc::UnboundedReceiver as Receiver;

const NETWORK: NetworkTag = NetworkTag([0xab, 0xcd]);
const LONG: Duration = Duration::from_secs(60);

/// Our transport's settings: one server, the identity kept in `dir`, announces only on connect
/// (and when a test asks: the interval is longer than any test), proofs on.
fn our_config(server: String, dir: &TempDir) -> ReticulumConfig {
    ReticulumConfig {
        servers: vec![server],
        identity_path: dir.path().join("id"),
        announce_interval: Duration::from_secs(600),
        prove: true,
    }
}

/// Starts our transport on topic 0102, on a task of its own: the test blocks on the Python
/// peer meanwhile.
fn start(config: ReticulumConfig) -> (DrivenRns, Receiver<ReticulumEvent>) {
    DrivenRns::spawn(Reticulum::start(config, NETWORK, vec![TopicTag([1, 2])]).unwrap())
}

/// Whether the event says that we learned `peer`'s announce.
fn announced_by(peer: Hash16) -> impl Fn(&ReticulumEvent) -> bool {
    move |e| matches!(e, ReticulumEvent::Endpoint(Event::PeerAnnounced { peer: p, .. }) if *p == peer)
}

/// Whether a peer proved that one of our frames reached it.
fn is_delivered(e: &ReticulumEvent) -> bool {
    matches!(e, ReticulumEvent::Endpoint(Event::Delivered { .. }))
}

/// Whether we lost the connection to the server.
fn is_disconnected(e: &ReticulumEvent) -> bool {
    matches!(e, ReticulumEvent::Disconnected { .. })
}

async fn next_matching(
    events: &mut Receiver<ReticulumEvent>,
    timeout: Duration,
    mut pred: impl FnMut(&ReticulumEvent) -> bool,
) -> Option<ReticulumEvent> {
    tokio::time::timeout(timeout, async {
        while let Some(e) = events.recv().await {
            if pred(&e) {
                return Some(e);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announces_data_and_proofs_cross_rnsd_both_ways() {
    let rnsd = Rnsd::start();
    let mut peer = PythonPeer::start(rnsd.port, "abcd", &["0102", "0304"]);
    // The Python peer announces before the bridge connects: the bridge will have to ask rnsd
    // for that announce with a path request. Wait out rnsd's rebroadcast of it (one retry
    // about 5 s later) so that the bridge cannot overhear it instead.
    peer.command("announce");
    tokio::time::sleep(Duration::from_secs(8)).await;

    let dir = tempfile::tempdir().unwrap();
    let config = our_config(rnsd.address(), &dir);
    let (rns, mut events) = start(config.clone());
    let ours = rns.destination().to_hex();

    // 1. The Python peer hears and validates our announce (we announce on connect; again
    //    every few seconds until heard, in case the peer's link came up after rnsd relayed).
    let heard = loop {
        if let Some(e) = peer.poll_for(Duration::from_secs(3), |e| {
            e["event"] == "announce" && e["dest"] == ours.as_str()
        }) {
            break e;
        }
        rns.announce().await;
    };
    assert_eq!(heard["hash_ok"], true);
    assert_eq!(heard["app_data_ok"], true);
    assert_eq!(heard["topics"], serde_json::json!(["0102"]));
    assert_eq!(heard["hops"], 2, "through rnsd");
    assert_eq!(
        heard["ratchet"], true,
        "RNS took our ratchet: it encrypts to it from now on"
    );

    // 2. Python → Rust before we know Python: the frame is refused (unknown sender), we ask
    //    rnsd for the sender's path and learn its announce, with its topics.
    let theirs = Hash16::from_hex(&peer.dest).unwrap();
    peer.command(&format!("send {ours} {}", hex(b"too early")));
    let announced = next_matching(&mut events, LONG, announced_by(theirs)).await;
    let Some(ReticulumEvent::Endpoint(Event::PeerAnnounced { topics, hops, .. })) = announced
    else {
        panic!("never learned the Python peer: {announced:?}")
    };
    assert_eq!(topics, vec![TopicTag([1, 2]), TopicTag([3, 4])]);
    assert_eq!(hops, 2);
    let s = rns.stats().await.endpoint;
    assert_eq!((s.unknown_sender, s.path_requests_sent), (1, 1));

    // 3. Python → Rust again: received, and our proof goes back (the first one was proved
    //    too: proofs say "received", not "accepted").
    let frame = b"and one from python".to_vec();
    peer.command(&format!("send {ours} {}", hex(&frame)));
    let received = next_matching(&mut events, LONG, |e| {
        matches!(e, ReticulumEvent::Endpoint(Event::Received { .. }))
    })
    .await;
    assert_eq!(
        received,
        Some(ReticulumEvent::Endpoint(Event::Received {
            from: theirs,
            frame
        }))
    );
    peer.wait_count(2, LONG, |e| e["event"] == "delivered");

    // 4. Rust → Python: an encrypted SINGLE packet through rnsd; Python proves it.
    let frame = b"a mesh frame from rust".to_vec();
    assert!(rns.send(theirs, frame.clone()).await);
    let data = peer.wait_for(LONG, |e| e["event"] == "data");
    assert_eq!(data["frame"], hex(&frame));
    assert_eq!(data["sender"], ours.as_str());
    assert_eq!(data["sender_proven"], true, "Python checked our sender tag");
    let delivered = next_matching(&mut events, LONG, is_delivered).await;
    assert!(
        matches!(delivered, Some(ReticulumEvent::Endpoint(Event::Delivered { to, .. })) if to == theirs),
        "Python's proof came back: {delivered:?}"
    );

    let stats = rns.stats().await;
    let s = stats.endpoint;
    assert_eq!(
        (
            s.malformed,
            s.decrypt_failed,
            s.proofs_invalid,
            s.forged_sender
        ),
        (0, 0, 0, 0)
    );
    assert_eq!((s.data_received, s.proofs_sent, s.proofs_valid), (2, 2, 1));
    drop(rns);

    // 5. The identity persisted: a restart keeps the destination.
    let (again, _events) = start(config);
    assert_eq!(again.destination().to_hex(), ours);
}

/// A peer whose announces carry a ratchet key and that refuses packets not encrypted to it:
/// our announce parser must take the ratchet, and our sends must use it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_to_a_ratcheted_peer_use_its_ratchet_key() {
    let rnsd = Rnsd::start();
    let mut peer = PythonPeer::start_with(rnsd.port, "abcd", &["0102"], &["--ratchets"]);
    let dir = tempfile::tempdir().unwrap();
    let (rns, mut events) = start(our_config(rnsd.address(), &dir));
    let theirs = Hash16::from_hex(&peer.dest).unwrap();
    loop {
        peer.command("announce");
        let learned =
            next_matching(&mut events, Duration::from_secs(3), announced_by(theirs)).await;
        if learned.is_some() {
            break;
        }
    }
    assert!(rns.send(theirs, b"for the ratchet".to_vec()).await);
    let data = peer.wait_for(LONG, |e| e["event"] == "data");
    assert_eq!(data["frame"], hex(b"for the ratchet"));
    assert_eq!(data["sender_proven"], true);
    let delivered = next_matching(&mut events, LONG, is_delivered).await;
    assert!(delivered.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_and_reannounces_after_rnsd_restarts() {
    let rnsd = Rnsd::start();
    let port = rnsd.port;
    let dir = tempfile::tempdir().unwrap();
    let (rns, mut events) = start(our_config(rnsd.address(), &dir));
    let connected = |e: &ReticulumEvent| matches!(e, ReticulumEvent::Connected { .. });
    assert!(next_matching(&mut events, LONG, connected).await.is_some());
    let before = rns.stats().await.endpoint.announces_sent;
    drop(rnsd);
    let down = next_matching(&mut events, LONG, is_disconnected).await;
    assert!(down.is_some(), "the loss of rnsd is reported");
    let _rnsd = Rnsd::start_on(port);
    assert!(
        next_matching(&mut events, LONG, connected).await.is_some(),
        "reconnected after backoff"
    );
    let stats = rns.stats().await;
    assert_eq!(stats.connected, 1);
    // Announced on reconnect: at once, or when 10 s have passed since the last announce (a
    // flapping connection must not announce every second).
    let deadline = std::time::Instant::now() + LONG;
    let announced = loop {
        let sent = rns.stats().await.endpoint.announces_sent;
        if sent > before || std::time::Instant::now() > deadline {
            break sent;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(announced, before + 1, "announced on reconnect");
}

/// A misbehaving server (not rnsd) that sends junk: every frame is refused and counted, the
/// connection and the transport live on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_the_server_is_counted_not_fatal() {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = listener.local_addr().unwrap().to_string();
    let (rns, mut events) = start(our_config(server, &dir));
    let (mut conn, _) = listener.accept().unwrap();
    let mut junk = Vec::new();
    for len in [1usize, 5, 19, 40, 300, 499, 2000] {
        let packet: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8 | 0x80).collect();
        junk.extend(lorabridge_reticulum::hdlc::encode(&packet));
    }
    junk.extend([0x7d, 0x7d, 0x7e, 0x7e, 0x00]);
    conn.write_all(&junk).unwrap();
    conn.flush().unwrap();
    let deadline = std::time::Instant::now() + LONG;
    let stats = loop {
        let stats = rns.stats().await;
        if stats.endpoint.malformed >= 7 {
            break stats;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "junk not seen: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Six frames fit the MTU (all with the reserved top flag bit), the stray escapes make a
    // one-byte seventh; the 2000-byte frame is cut by the deframer before it is buffered.
    assert_eq!(stats.endpoint.malformed, 7);
    assert_eq!(stats.connected, 1);
    assert!(
        next_matching(&mut events, Duration::from_millis(200), is_disconnected)
            .await
            .is_none()
    );
}

#[test]
fn identity_file_is_created_once_and_bad_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/id");
    let first = reticulum::load_or_create(&path).unwrap();
    let second = reticulum::load_or_create(&path).unwrap();
    assert_eq!(first.public(), second.public());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    std::fs::write(&path, [0u8; 10]).unwrap();
    let err = reticulum::load_or_create(&path).unwrap_err();
    assert!(
        matches!(err, reticulum::IdentityFileError::Invalid { len: 10, .. }),
        "{err}"
    );
}
