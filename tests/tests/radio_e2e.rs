//! Real serial drivers against modem emulators on pseudo-terminals, joined by one medium.
//!
//! Timeouts here only stop a broken test from hanging; nothing asserts on speed.

use std::sync::Arc;
use std::time::Duration;

use lorabridge_hardware::Modulation;
use lorabridge_radio::{
    DriverConfig, ModuleKind, Radio, RadioError, RadioState, RnodeFraming, RxFrame,
    SerialConnector, SerialRadio,
};
use lorabridge_sim::modem::{Emulator, Hub, LinkQuality, Medium};
use tempfile::TempDir;

const LIMIT: Duration = Duration::from_secs(20);

fn eu868() -> Modulation {
    Modulation {
        frequency_hz: 869_525_000,
        spreading_factor: 7,
        bandwidth_hz: 125_000,
        coding_rate: 5,
        preamble_symbols: 8,
        tx_power_dbm: 14,
        sync_word: 0x12,
    }
}

fn config() -> DriverConfig {
    DriverConfig {
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
        ..DriverConfig::default()
    }
}

struct Bench {
    dir: TempDir,
    hub: Hub,
}

impl Bench {
    fn new() -> Self {
        let hub = Hub::new();
        hub.set_default_quality(LinkQuality {
            rssi_dbm: -71,
            snr_db: 6.0,
        });
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            hub,
        }
    }

    fn medium(&self) -> Arc<dyn Medium> {
        Arc::new(self.hub.clone())
    }

    fn emulator(&self, kind: ModuleKind, name: &str) -> Emulator {
        let dir = self.dir.path();
        match kind {
            ModuleKind::Rui3 => Emulator::rui3(self.medium(), dir, name),
            ModuleKind::Rak811 => Emulator::rak811(self.medium(), dir, name),
            ModuleKind::Rnode => Emulator::rnode(self.medium(), dir, name),
        }
        .expect("emulator starts")
    }
}

async fn driver(kind: ModuleKind, emu: &Emulator) -> SerialRadio {
    let radio = within(SerialRadio::open(
        kind,
        SerialConnector::new(emu.link_path(), 115_200),
        config(),
    ))
    .await
    .expect("driver opens");
    within(radio.configure(&eu868())).await.expect("configure");
    radio
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("did not finish within the test's hang guard")
}

async fn recv(radio: &SerialRadio) -> RxFrame {
    within(radio.recv()).await.expect("driver still running")
}

async fn exchange(a: &SerialRadio, b: &SerialRadio, tag: &str) {
    let ab = format!("{tag}: a to b").into_bytes();
    within(a.send(&ab)).await.expect("a sends");
    let got = recv(b).await;
    assert_eq!(got.payload, ab);
    assert_eq!(got.rssi_dbm, Some(-71));
    assert_eq!(got.snr_db, Some(6.0));
    let ba = format!("{tag}: b to a").into_bytes();
    within(b.send(&ba)).await.expect("b sends");
    assert_eq!(recv(a).await.payload, ba);
}

async fn pair(kind: ModuleKind) {
    let bench = Bench::new();
    let (ea, eb) = (bench.emulator(kind, "a"), bench.emulator(kind, "b"));
    let (a, b) = (driver(kind, &ea).await, driver(kind, &eb).await);
    assert_eq!(a.state(), RadioState::Ready);
    for round in 0..3 {
        exchange(&a, &b, &format!("{kind} round {round}")).await;
    }
    // A full-MTU frame crosses too.
    let big: Vec<u8> = (0..a.mtu()).map(|i| i as u8).collect();
    within(a.send(&big)).await.expect("full-MTU send");
    assert_eq!(recv(&b).await.payload, big);
    within(a.shutdown()).await.expect("shutdown");
    assert_eq!(a.state(), RadioState::Closed);
    assert_eq!(within(a.send(b"late")).await, Err(RadioError::Closed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rui3_pair_exchanges_frames() {
    pair(ModuleKind::Rui3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rak811_pair_exchanges_frames() {
    pair(ModuleKind::Rak811).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rnode_pair_exchanges_frames_including_split_ones() {
    // The RNode MTU (508) is above one LoRa packet: the emulated firmware splits it in two.
    pair(ModuleKind::Rnode).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rui3_and_rak811_interoperate() {
    let bench = Bench::new();
    let (ea, eb) = (
        bench.emulator(ModuleKind::Rui3, "rui3"),
        bench.emulator(ModuleKind::Rak811, "rak811"),
    );
    let (a, b) = (
        driver(ModuleKind::Rui3, &ea).await,
        driver(ModuleKind::Rak811, &eb).await,
    );
    exchange(&a, &b, "rui3-rak811").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rui3_and_rnode_share_a_channel_but_rnode_adds_its_header_byte() {
    let bench = Bench::new();
    let (ea, eb) = (
        bench.emulator(ModuleKind::Rui3, "rui3"),
        bench.emulator(ModuleKind::Rnode, "rnode"),
    );
    let (rui3, rnode) = (
        driver(ModuleKind::Rui3, &ea).await,
        driver(ModuleKind::Rnode, &eb).await,
    );

    // RNode firmware puts one header byte (sequence nibble, split bit 0) before every packet;
    // a bare AT module delivers it as payload.
    within(rnode.send(b"from rnode"))
        .await
        .expect("rnode sends");
    let got = recv(&rui3).await;
    assert_eq!(got.payload.len(), b"from rnode".len() + 1);
    assert_eq!(got.payload[0] & 0x01, 0, "not a split packet");
    assert_eq!(&got.payload[1..], b"from rnode");

    // With `RnodeFraming` on the AT side, frames cross unchanged in both directions.
    let rui3 = RnodeFraming::new(rui3);
    assert_eq!(rui3.mtu(), 249);
    for i in 0..3 {
        let there = format!("rui3 to rnode {i}").into_bytes();
        within(rui3.send(&there)).await.expect("rui3 sends");
        let got = recv(&rnode).await;
        assert_eq!(got.payload, there);
        assert_eq!((got.rssi_dbm, got.snr_db), (Some(-71), Some(6.0)));

        let back = format!("rnode to rui3 {i}").into_bytes();
        within(rnode.send(&back)).await.expect("rnode sends");
        let got = within(rui3.recv()).await.expect("open");
        assert_eq!(got.payload, back);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mismatched_modulation_is_not_heard() {
    let bench = Bench::new();
    let (ea, eb) = (
        bench.emulator(ModuleKind::Rui3, "a"),
        bench.emulator(ModuleKind::Rui3, "b"),
    );
    let (a, b) = (
        driver(ModuleKind::Rui3, &ea).await,
        driver(ModuleKind::Rui3, &eb).await,
    );
    within(b.configure(&Modulation {
        spreading_factor: 9,
        ..eu868()
    }))
    .await
    .expect("reconfigure");
    within(a.send(b"lost")).await.expect("send");
    assert!(
        tokio::time::timeout(Duration::from_millis(500), b.recv())
            .await
            .is_err()
    );
    within(b.configure(&eu868())).await.expect("back");
    within(a.send(b"heard")).await.expect("send");
    assert_eq!(recv(&b).await.payload, b"heard");
}

/// Receives until `want` arrives; garbage may decode as extra frames (KISS cannot tell a
/// noise burst after FEND from a data frame; the mesh frame's CRC rejects those).
async fn recv_skipping(radio: &SerialRadio, want: &[u8]) -> usize {
    for skipped in 0..10 {
        if recv(radio).await.payload == want {
            return skipped;
        }
    }
    panic!("{want:?} did not arrive");
}

async fn send_and_expect(a: &SerialRadio, b: &SerialRadio, text: &str) {
    within(a.send(text.as_bytes())).await.expect("send");
    recv_skipping(b, text.as_bytes()).await;
}

async fn garbage_and_busy(kind: ModuleKind) {
    let bench = Bench::new();
    let (ea, eb) = (bench.emulator(kind, "a"), bench.emulator(kind, "b"));
    let (a, b) = (driver(kind, &ea).await, driver(kind, &eb).await);
    exchange(&a, &b, "before").await;

    // Reply-shaped garbage, while the drivers are idle between frames. Each dialect counts
    // the last piece it can recognise as noise; waiting for that count means all of it has
    // been read before the next command (otherwise a lookalike such as `ERROR: 999` arriving
    // during an exchange is indistinguishable from the module's answer).
    let lookalikes =
        b"\x00\xff\r\nAT_ERR\r\nERROR: 999\r\n\xc0\xdb\x01\xc0at+recv=1,2\r\n+EVT:RXP2P:x:y:zz\r\n"
            .to_vec();
    let (noise_a, noise_b) = (a.stats().noise, b.stats().noise);
    ea.inject_garbage(&lookalikes).await;
    eb.inject_garbage(&lookalikes).await;
    within(async {
        while a.stats().noise == noise_a || b.stats().noise == noise_b {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    send_and_expect(&a, &b, "after lookalikes").await;
    send_and_expect(&b, &a, "after lookalikes, back").await;

    // Binary noise and an overlong line, injected while frames are in flight, plus busy answers.
    let mut noise = vec![0xfe, 0x80, 0x81, 0x1b];
    noise.extend(std::iter::repeat_n(b'#', 3000));
    noise.extend_from_slice(b"\r\n\xc0\x9c");
    if kind != ModuleKind::Rnode {
        ea.inject_busy(2);
        eb.inject_busy(1);
    }
    let send = async {
        for i in 0..3 {
            send_and_expect(&a, &b, &format!("mid-stream {i}")).await;
            send_and_expect(&b, &a, &format!("mid-stream back {i}")).await;
        }
    };
    let inject = async {
        for _ in 0..3 {
            ea.inject_garbage(&noise).await;
            eb.inject_garbage(&noise).await;
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    };
    tokio::join!(send, inject);
    assert!(a.stats().noise > 0, "garbage was counted: {:?}", a.stats());
    if kind != ModuleKind::Rnode {
        assert!(
            a.stats().busy_retries >= 2,
            "busy answers were retried: {:?}",
            a.stats()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rui3_survives_garbage_and_busy() {
    garbage_and_busy(ModuleKind::Rui3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rak811_survives_garbage_and_busy() {
    garbage_and_busy(ModuleKind::Rak811).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rnode_survives_garbage() {
    garbage_and_busy(ModuleKind::Rnode).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rui3_early_two_line_receive_format() {
    let bench = Bench::new();
    let (ea, eb) = (
        bench.emulator(ModuleKind::Rui3, "a"),
        bench.emulator(ModuleKind::Rui3, "b"),
    );
    let (a, b) = (
        driver(ModuleKind::Rui3, &ea).await,
        driver(ModuleKind::Rui3, &eb).await,
    );
    eb.set_two_line_rx(true);
    within(a.send(b"two lines")).await.expect("send");
    let got = recv(&b).await;
    assert_eq!(
        (got.payload.as_slice(), got.rssi_dbm),
        (&b"two lines"[..], Some(-71))
    );
}

async fn unplug_replug(kind: ModuleKind) {
    let bench = Bench::new();
    let (ea, eb) = (bench.emulator(kind, "a"), bench.emulator(kind, "b"));
    let (a, b) = (driver(kind, &ea).await, driver(kind, &eb).await);
    exchange(&a, &b, "before unplug").await;
    assert!(ea.tty_path().is_some());

    ea.unplug().await;
    let mut state = a.watch_state();
    within(state.wait_for(|s| *s == RadioState::Reconnecting))
        .await
        .expect("driver notices");

    // Queued while the module is away; must go out after the replug, not vanish.
    let a = Arc::new(a);
    let sender = {
        let a = a.clone();
        tokio::spawn(async move { a.send(b"queued during unplug").await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!sender.is_finished(), "the send waits for the module");
    ea.replug().await.expect("replug");
    // A new pty (the kernel may reuse the number), found again through the link.
    assert!(ea.tty_path().expect("plugged").exists());

    within(sender)
        .await
        .expect("task")
        .expect("queued frame sent after reconnect");
    assert_eq!(recv(&b).await.payload, b"queued during unplug");
    assert!(a.stats().reconnects >= 1);
    // Re-configured after the module rebooted: traffic flows both ways again.
    exchange(&a, &b, "after replug").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rui3_unplug_replug_keeps_queued_frame() {
    unplug_replug(ModuleKind::Rui3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rak811_unplug_replug_keeps_queued_frame() {
    unplug_replug(ModuleKind::Rak811).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rnode_unplug_replug_keeps_queued_frame() {
    unplug_replug(ModuleKind::Rnode).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_frames_are_refused_with_size_and_mtu() {
    let bench = Bench::new();
    for (kind, mtu) in [
        (ModuleKind::Rui3, 250),
        (ModuleKind::Rak811, 118),
        (ModuleKind::Rnode, 508),
    ] {
        let emu = bench.emulator(kind, kind.name());
        let radio = driver(kind, &emu).await;
        assert_eq!(radio.mtu(), mtu);
        let err = within(radio.send(&vec![0u8; mtu + 1]))
            .await
            .expect_err("refused");
        assert_eq!(err, RadioError::FrameTooLarge { size: mtu + 1, mtu });
        let text = err.to_string();
        assert!(
            text.contains(&(mtu + 1).to_string()) && text.contains(&mtu.to_string()),
            "{text}"
        );
        assert_eq!(
            radio.state(),
            RadioState::Ready,
            "a refusal does not disturb the driver"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_module_times_out_then_recovers() {
    let bench = Bench::new();
    let (ea, eb) = (
        bench.emulator(ModuleKind::Rui3, "a"),
        bench.emulator(ModuleKind::Rui3, "b"),
    );
    let cfg = DriverConfig {
        command_timeout: Duration::from_millis(300),
        ..config()
    };
    let a = SerialRadio::open(
        ModuleKind::Rui3,
        SerialConnector::new(ea.link_path(), 115_200),
        cfg,
    )
    .await
    .expect("open");
    within(a.configure(&eu868())).await.expect("configure");
    let b = driver(ModuleKind::Rui3, &eb).await;

    ea.set_silent(true);
    let err = within(a.send(b"into the void"))
        .await
        .expect_err("no answer");
    assert!(matches!(err, RadioError::Timeout { .. }), "{err}");
    ea.set_silent(false);
    // The driver reopens the port and re-configures; a later send goes through.
    let mut delivered = false;
    for _ in 0..20 {
        if within(a.send(b"back")).await.is_ok() {
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(delivered, "driver recovered");
    assert_eq!(recv(&b).await.payload, b"back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_modulation_is_refused_before_the_port() {
    let bench = Bench::new();
    let emu = bench.emulator(ModuleKind::Rak811, "rak811");
    let radio = driver(ModuleKind::Rak811, &emu).await;
    let err = within(radio.configure(&Modulation {
        sync_word: 0x34,
        ..eu868()
    }))
    .await
    .expect_err("refused");
    assert!(
        matches!(
            err,
            RadioError::Unsupported {
                module: "RAK811",
                ..
            }
        ),
        "{err}"
    );
    let not_configured = {
        let emu2 = bench.emulator(ModuleKind::Rui3, "fresh");
        let fresh = SerialRadio::open(
            ModuleKind::Rui3,
            SerialConnector::new(emu2.link_path(), 115_200),
            config(),
        )
        .await
        .expect("open");
        within(fresh.send(b"x")).await
    };
    assert_eq!(not_configured, Err(RadioError::NotConfigured));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_frame_is_failed_not_dropped_when_the_module_stays_away() {
    let bench = Bench::new();
    let emu = bench.emulator(ModuleKind::Rui3, "a");
    let cfg = DriverConfig {
        queue_timeout: Duration::from_millis(500),
        max_reconnect_attempts: Some(8),
        ..config()
    };
    let radio = SerialRadio::open(
        ModuleKind::Rui3,
        SerialConnector::new(emu.link_path(), 115_200),
        cfg,
    )
    .await
    .expect("open");
    within(radio.configure(&eu868())).await.expect("configure");
    emu.unplug().await;
    let mut state = radio.watch_state();
    within(state.wait_for(|s| *s == RadioState::Reconnecting))
        .await
        .expect("driver notices");

    let err = within(radio.send(b"nobody home"))
        .await
        .expect_err("reported, not dropped");
    assert!(matches!(err, RadioError::Unavailable { .. }), "{err}");

    // After the configured number of attempts the driver gives up, and says so.
    within(state.wait_for(|s| *s == RadioState::Failed))
        .await
        .expect("gives up");
    let err = within(radio.send(b"still nobody"))
        .await
        .expect_err("failed driver");
    assert!(matches!(err, RadioError::Failed(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_is_bounded_and_shutdown_answers_every_waiting_send() {
    let bench = Bench::new();
    let emu = bench.emulator(ModuleKind::Rui3, "a");
    let cfg = DriverConfig {
        queue_capacity: 2,
        command_timeout: Duration::from_secs(3),
        ..config()
    };
    let radio = Arc::new(
        SerialRadio::open(
            ModuleKind::Rui3,
            SerialConnector::new(emu.link_path(), 115_200),
            cfg,
        )
        .await
        .expect("open"),
    );
    within(radio.configure(&eu868())).await.expect("configure");
    emu.set_silent(true);

    // One send in flight (the module is silent, so it waits for its command timeout) ...
    let first = {
        let r = radio.clone();
        tokio::spawn(async move { r.send(&[0]).await })
    };
    let mut state = radio.watch_state();
    within(state.wait_for(|s| *s == RadioState::Busy))
        .await
        .expect("in flight");
    // ... then three more while the driver is stuck: two fit, one is refused at once.
    let more: Vec<_> = (1..=3u8)
        .map(|i| {
            let r = radio.clone();
            tokio::spawn(async move { r.send(&[i]).await })
        })
        .collect();
    // Let the three reach the driver (or be refused) before shutting down.
    tokio::time::sleep(Duration::from_millis(300)).await;

    within(radio.shutdown()).await.expect("shutdown");
    let mut queue_full = 0;
    for w in std::iter::once(first).chain(more) {
        let answer = within(w).await.expect("task");
        queue_full += usize::from(matches!(answer, Err(RadioError::QueueFull { capacity: 2 })));
        assert!(
            matches!(
                answer,
                Err(RadioError::Timeout { .. }
                    | RadioError::Closed
                    | RadioError::QueueFull { capacity: 2 })
            ),
            "every waiting send is answered: {answer:?}"
        );
    }
    assert_eq!(queue_full, 1, "exactly one send found the queue full");
    assert_eq!(radio.state(), RadioState::Closed);
}
