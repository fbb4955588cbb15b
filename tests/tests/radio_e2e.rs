//! Real serial drivers against modem emulators on pseudo-terminals, joined by one medium.
//!
//! Timeouts here only stop a broken test from hanging; nothing asserts on speed.

use std::sync::Arc;
use std::time::Duration;

use lorabridge_emulators::{Emulator, Hub, LinkQuality, Medium};
use lorabridge_hardware::Modulation;
use lorabridge_radio::{
    DriverConfig, ModuleKind, Radio, RadioError, RadioState, RnodeFraming, RxFrame,
    SerialConnector, SerialRadio,
};
use tempfile::TempDir;
use tokio::task::JoinHandle;

const LIMIT: Duration = Duration::from_secs(20);

/// Declares one test per module kind, each running the same scenario: `scenario(kind)`.
macro_rules! each_kind {
    ($scenario:ident { $($kind:ident => $test:ident),+ $(,)? }) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                $scenario(ModuleKind::$kind).await;
            }
        )+
    };
}

fn eu868() -> Modulation {
    Modulation {
        spreading_factor: 7,
        ..Modulation::eu868_default()
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
            ModuleKind::E22 => {
                panic!("the E22 needs emulated mode pins: see emulators/tests/e22.rs")
            }
            ModuleKind::Sx126x => {
                panic!("the SX126x is on SPI, not a pty: see emulators/tests/sx126x.rs")
            }
            ModuleKind::Sx127x => {
                panic!("the SX127x is on SPI, not a pty: see emulators/tests/sx127x.rs")
            }
        }
        .expect("emulator starts")
    }

    /// An emulated module and, on its port, a driver with the usual settings configured for
    /// [`eu868`]. The emulator is returned too: dropping it unplugs the module for good.
    async fn radio(&self, kind: ModuleKind, name: &str) -> Module {
        self.radio_with(kind, name, config()).await
    }

    /// Like [`Bench::radio`], with the driver settings `cfg`.
    async fn radio_with(&self, kind: ModuleKind, name: &str, cfg: DriverConfig) -> Module {
        let emu = self.emulator(kind, name);
        let radio = open(kind, &emu, cfg).await;
        within(radio.configure(&eu868())).await.expect("configure");
        (emu, radio)
    }
}

/// An emulated module and the driver that talks to it.
type Module = (Emulator, SerialRadio);

/// A fresh bench with two modules on it, named "a" and "b", each driven and configured for
/// [`eu868`]. The bench and emulators must be kept as long as the radios are used.
async fn two(a: ModuleKind, b: ModuleKind) -> (Bench, Module, Module) {
    let bench = Bench::new();
    let a = bench.radio(a, "a").await;
    let b = bench.radio(b, "b").await;
    (bench, a, b)
}

/// Opens a driver with `cfg` on `emu`'s port; the module is not configured yet.
async fn open(kind: ModuleKind, emu: &Emulator, cfg: DriverConfig) -> SerialRadio {
    let port = SerialConnector::new(emu.link_path(), 115_200);
    within(SerialRadio::open(kind, port, cfg))
        .await
        .expect("driver opens")
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("did not finish within the test's hang guard")
}

/// Sends one frame, which the driver must accept.
async fn send(radio: &impl Radio, frame: &[u8]) {
    within(radio.send(frame)).await.expect("send");
}

async fn recv(radio: &impl Radio) -> RxFrame {
    within(radio.recv()).await.expect("driver still running")
}

/// Sends `frame` from one radio and checks that the other receives exactly it.
async fn crosses(from: &impl Radio, to: &impl Radio, frame: &[u8]) -> RxFrame {
    send(from, frame).await;
    let got = recv(to).await;
    assert_eq!(got.payload, frame);
    got
}

/// One frame each way; the first arrives with the bench's link quality.
async fn exchange(a: &impl Radio, b: &impl Radio, tag: &str) {
    let got = crosses(a, b, format!("{tag}: a to b").as_bytes()).await;
    assert_eq!((got.rssi_dbm, got.snr_db), (Some(-71), Some(6.0)));
    crosses(b, a, format!("{tag}: b to a").as_bytes()).await;
}

/// Waits until the driver says it is in state `want`.
async fn reaches(radio: &SerialRadio, want: RadioState) {
    let mut state = radio.watch_state();
    within(state.wait_for(|s| *s == want))
        .await
        .unwrap_or_else(|_| panic!("the driver stopped before it was {want:?}"));
}

/// Sends from a task of its own, so that the test can go on while the send waits.
fn spawn_send(radio: &Arc<SerialRadio>, frame: Vec<u8>) -> JoinHandle<Result<(), RadioError>> {
    let radio = radio.clone();
    tokio::spawn(async move { radio.send(&frame).await })
}

async fn pair(kind: ModuleKind) {
    let (_bench, (_ea, a), (_eb, b)) = two(kind, kind).await;
    assert_eq!(a.state(), RadioState::Ready);
    for round in 0..3 {
        exchange(&a, &b, &format!("{kind} round {round}")).await;
    }
    // A full-MTU frame crosses too.
    let big: Vec<u8> = (0..a.mtu()).map(|i| i as u8).collect();
    crosses(&a, &b, &big).await;
    within(a.shutdown()).await.expect("shutdown");
    assert_eq!(a.state(), RadioState::Closed);
    assert_eq!(within(a.send(b"late")).await, Err(RadioError::Closed));
}

each_kind!(pair {
    Rui3 => rui3_pair_exchanges_frames,
    Rak811 => rak811_pair_exchanges_frames,
    // The RNode MTU (508) is above one LoRa packet: the emulated firmware splits it in two.
    Rnode => rnode_pair_exchanges_frames_including_split_ones,
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rui3_and_rak811_interoperate() {
    let (_bench, (_ea, a), (_eb, b)) = two(ModuleKind::Rui3, ModuleKind::Rak811).await;
    exchange(&a, &b, "rui3-rak811").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rui3_and_rnode_share_a_channel_but_rnode_adds_its_header_byte() {
    let (_bench, (_ea, rui3), (_eb, rnode)) = two(ModuleKind::Rui3, ModuleKind::Rnode).await;

    // RNode firmware puts one header byte (sequence nibble, split bit 0) before every packet;
    // a bare AT module delivers it as payload.
    send(&rnode, b"from rnode").await;
    let got = recv(&rui3).await;
    assert_eq!(got.payload.len(), b"from rnode".len() + 1);
    assert_eq!(got.payload[0] & 0x01, 0, "not a split packet");
    assert_eq!(&got.payload[1..], b"from rnode");

    // With `RnodeFraming` on the AT side, frames cross unchanged in both directions.
    let rui3 = RnodeFraming::new(rui3);
    assert_eq!(rui3.mtu(), 249);
    // The ledger is charged for the header byte the wrapper puts on air.
    let m = eu868();
    assert_eq!(
        rui3.on_air(&m).time_on_air(100),
        rui3.inner().on_air(&m).time_on_air(101)
    );
    for i in 0..3 {
        exchange(&rui3, &rnode, &format!("framed {i}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mismatched_modulation_is_not_heard() {
    let (_bench, (_ea, a), (_eb, b)) = two(ModuleKind::Rui3, ModuleKind::Rui3).await;
    within(b.configure(&Modulation {
        spreading_factor: 9,
        ..eu868()
    }))
    .await
    .expect("reconfigure");
    send(&a, b"lost").await;
    assert!(
        tokio::time::timeout(Duration::from_millis(500), b.recv())
            .await
            .is_err()
    );
    within(b.configure(&eu868())).await.expect("back");
    crosses(&a, &b, b"heard").await;
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
    send(a, text.as_bytes()).await;
    recv_skipping(b, text.as_bytes()).await;
}

async fn garbage_and_busy(kind: ModuleKind) {
    let (_bench, (ea, a), (eb, b)) = two(kind, kind).await;
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
    let traffic = async {
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
    tokio::join!(traffic, inject);
    assert!(a.stats().noise > 0, "garbage was counted: {:?}", a.stats());
    if kind != ModuleKind::Rnode {
        assert!(
            a.stats().busy_retries >= 2,
            "busy answers were retried: {:?}",
            a.stats()
        );
    }
}

each_kind!(garbage_and_busy {
    Rui3 => rui3_survives_garbage_and_busy,
    Rak811 => rak811_survives_garbage_and_busy,
    Rnode => rnode_survives_garbage,
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rui3_early_two_line_receive_format() {
    let (_bench, (_ea, a), (eb, b)) = two(ModuleKind::Rui3, ModuleKind::Rui3).await;
    eb.set_two_line_rx(true);
    let got = crosses(&a, &b, b"two lines").await;
    assert_eq!(got.rssi_dbm, Some(-71));
}

async fn unplug_replug(kind: ModuleKind) {
    let (_bench, (ea, a), (_eb, b)) = two(kind, kind).await;
    exchange(&a, &b, "before unplug").await;
    assert!(ea.tty_path().is_some());

    ea.unplug().await;
    reaches(&a, RadioState::Reconnecting).await;

    // Queued while the module is away; must go out after the replug, not vanish.
    let a = Arc::new(a);
    let sender = spawn_send(&a, b"queued during unplug".to_vec());
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
    exchange(&*a, &b, "after replug").await;
}

each_kind!(unplug_replug {
    Rui3 => rui3_unplug_replug_keeps_queued_frame,
    Rak811 => rak811_unplug_replug_keeps_queued_frame,
    Rnode => rnode_unplug_replug_keeps_queued_frame,
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_frames_are_refused_with_size_and_mtu() {
    let bench = Bench::new();
    for (kind, mtu) in [
        (ModuleKind::Rui3, 250),
        (ModuleKind::Rak811, 118),
        (ModuleKind::Rnode, 508),
    ] {
        let (_emu, radio) = bench.radio(kind, kind.name()).await;
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
    let quick = DriverConfig {
        command_timeout: Duration::from_millis(300),
        ..config()
    };
    let (ea, a) = bench.radio_with(ModuleKind::Rui3, "a", quick).await;
    let (_eb, b) = bench.radio(ModuleKind::Rui3, "b").await;

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
    let (_emu, radio) = bench.radio(ModuleKind::Rak811, "rak811").await;
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
        let fresh = open(ModuleKind::Rui3, &emu2, config()).await;
        within(fresh.send(b"x")).await
    };
    assert_eq!(not_configured, Err(RadioError::NotConfigured));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_frame_is_failed_not_dropped_when_the_module_stays_away() {
    let bench = Bench::new();
    let impatient = DriverConfig {
        queue_timeout: Duration::from_millis(500),
        max_reconnect_attempts: Some(8),
        ..config()
    };
    let (emu, radio) = bench.radio_with(ModuleKind::Rui3, "a", impatient).await;
    emu.unplug().await;
    reaches(&radio, RadioState::Reconnecting).await;

    let err = within(radio.send(b"nobody home"))
        .await
        .expect_err("reported, not dropped");
    assert!(matches!(err, RadioError::Unavailable { .. }), "{err}");

    // After the configured number of attempts the driver gives up, and says so.
    reaches(&radio, RadioState::Failed).await;
    let err = within(radio.send(b"still nobody"))
        .await
        .expect_err("failed driver");
    assert!(matches!(err, RadioError::Failed(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_is_bounded_and_shutdown_answers_every_waiting_send() {
    let bench = Bench::new();
    let small_queue = DriverConfig {
        queue_capacity: 2,
        command_timeout: Duration::from_secs(3),
        ..config()
    };
    let (emu, radio) = bench.radio_with(ModuleKind::Rui3, "a", small_queue).await;
    let radio = Arc::new(radio);
    emu.set_silent(true);

    // One send in flight (the module is silent, so it waits for its command timeout) ...
    let first = spawn_send(&radio, vec![0]);
    reaches(&radio, RadioState::Busy).await;
    // ... then three more while the driver is stuck: two fit, one is refused at once.
    let more: Vec<_> = (1..=3u8).map(|i| spawn_send(&radio, vec![i])).collect();
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
