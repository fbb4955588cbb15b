//! The real E22 driver against the E22 emulator: pty for the UART, emulated M0/M1/AUX pins,
//! one medium.
//!
//! Timeouts here only stop a broken test from hanging; nothing asserts on speed. Every test
//! ends by checking that the driver never wrote to a module whose AUX was low.

// Binary register values are grouped by register field (baud · parity · air rate), not by nibble.
#![allow(clippy::unusual_byte_groupings)]

use std::sync::Arc;
use std::time::Duration;

use lorabridge_emulators::{E22Pins, Emulator, Hub, LinkQuality, Medium};
use lorabridge_hardware::Modulation;
use lorabridge_radio::e22::{E22Settings, Mode, SubPacket};
use lorabridge_radio::{
    DriverConfig, ModuleKind, Radio, RadioError, RadioState, RxFrame, SerialConnector, SerialRadio,
    probe_e22,
};
use tempfile::TempDir;

const LIMIT: Duration = Duration::from_secs(20);

/// 868.125 MHz (channel 18), the 62.5k air rate's stand-in (short airtime keeps tests quick),
/// 14 dBm (the module's 13 dBm level).
fn fast() -> Modulation {
    Modulation {
        frequency_hz: 868_125_000,
        spreading_factor: 5,
        bandwidth_hz: 500_000,
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

/// An emulated E22, its pins (the test's handle), and the driver on them.
struct Module {
    emu: Emulator,
    pins: E22Pins,
    radio: SerialRadio,
}

impl Drop for Module {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert_eq!(
                self.pins.busy_writes(),
                0,
                "the driver wrote while AUX was low"
            );
        }
    }
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

    fn emulator(&self, name: &str) -> (Emulator, E22Pins) {
        let medium: Arc<dyn Medium> = Arc::new(self.hub.clone());
        Emulator::e22(medium, self.dir.path(), name).expect("emulator starts")
    }

    /// A driven module configured for [`fast`].
    async fn module(&self, name: &str) -> Module {
        self.module_with(name, E22Settings::default(), config())
            .await
    }

    async fn module_with(&self, name: &str, settings: E22Settings, cfg: DriverConfig) -> Module {
        let (emu, pins) = self.emulator(name);
        let radio = open(&emu, pins.clone(), settings, cfg).await;
        within(radio.configure(&fast())).await.expect("configure");
        Module { emu, pins, radio }
    }
}

async fn open(
    emu: &Emulator,
    pins: E22Pins,
    settings: E22Settings,
    cfg: DriverConfig,
) -> SerialRadio {
    let port = SerialConnector::new(emu.link_path(), 9600);
    within(SerialRadio::open_e22(port, pins, settings, cfg))
        .await
        .expect("driver opens")
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("did not finish within the test's hang guard")
}

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

async fn exchange(a: &impl Radio, b: &impl Radio, tag: &str) {
    let got = crosses(a, b, format!("{tag}: a to b").as_bytes()).await;
    assert_eq!((got.rssi_dbm, got.snr_db), (Some(-71), None));
    crosses(b, a, format!("{tag}: b to a").as_bytes()).await;
}

/// Nothing arrives for a while (a negative check; the wait is not a measurement).
async fn hears_nothing(radio: &impl Radio) {
    let heard = tokio::time::timeout(Duration::from_millis(500), radio.recv()).await;
    assert!(heard.is_err(), "heard {heard:?}");
}

async fn reaches(radio: &SerialRadio, want: RadioState) {
    let mut state = radio.watch_state();
    within(state.wait_for(|s| *s == want))
        .await
        .unwrap_or_else(|_| panic!("the driver stopped before it was {want:?}"));
}

/// Registers 00..=06 for [`fast`] with the default settings, from the fact sheet's layout.
const FAST_REGISTERS: [u8; 7] = [
    0xFF,          // ADDH: broadcast
    0xFF,          // ADDL
    0x00,          // NETID
    0b011_00_111,  // 9600 baud, 8N1, 62.5k
    0b00_0_000_10, // 240 B sub-packets, noise RSSI off, 13 dBm
    18,            // 850.125 + 18 = 868.125 MHz
    0b1001_0000,   // RSSI byte, transparent, no relay, LBT, no WOR
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_is_written_volatile_and_read_back() {
    let bench = Bench::new();
    let (emu, pins) = bench.emulator("probe");
    let port = SerialConnector::new(emu.link_path(), 9600);
    let info = within(probe_e22(&port, pins.clone(), &config()))
        .await
        .expect("probe");
    assert_eq!(info.driver, ModuleKind::E22);
    assert_eq!(info.mtu, 235);
    assert!(info.settings["air_rate"].starts_with("2.4k"), "{info:?}");
    assert!(
        info.settings["channel"].starts_with("18 (868125000 Hz"),
        "{info:?}"
    );
    assert_eq!(
        pins.mode(),
        Mode::Normal,
        "probe leaves the module in normal mode"
    );
    drop(emu);

    let a = bench.module("a").await;
    assert_eq!(a.pins.registers(), FAST_REGISTERS);
    assert_eq!(a.pins.mode(), Mode::Normal);
    assert_eq!(a.radio.mtu(), 235);
    // C2 is volatile: the flash still holds the factory values.
    assert_ne!(a.pins.saved_registers(), FAST_REGISTERS);

    let saving = E22Settings {
        save_to_flash: true,
        net_id: 7,
        address: 0x0102,
        sub_packet: SubPacket::B64,
        listen_before_talk: false,
        ..E22Settings::default()
    };
    let b = bench.module_with("b", saving, config()).await;
    let want = [0x01, 0x02, 7, 0b011_00_111, 0b10_0_000_10, 18, 0b1000_0000];
    assert_eq!((b.pins.registers(), b.pins.saved_registers()), (want, want));
    assert_eq!(b.radio.mtu(), 59);

    within(a.radio.shutdown()).await.expect("shutdown");
    assert_eq!(a.pins.mode(), Mode::Sleep);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_register_the_module_does_not_take_fails_the_read_back() {
    let bench = Bench::new();
    let (emu, pins) = bench.emulator("stubborn");
    // Register 03 holds the air rate: factory 2.4k, the driver writes 62.5k.
    pins.freeze_register(3);
    let radio = open(&emu, pins.clone(), E22Settings::default(), config()).await;
    let err = within(radio.configure(&fast()))
        .await
        .expect_err("air rate not taken");
    assert!(
        matches!(&err, RadioError::Protocol(text) if text.contains("after writing")),
        "{err}"
    );
    assert_eq!(
        within(radio.send(b"x")).await,
        Err(RadioError::NotConfigured)
    );
    assert_eq!(pins.busy_writes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_cross_both_ways_with_rssi() {
    let bench = Bench::new();
    let a = bench.module("a").await;
    let b = bench.module("b").await;
    for round in 0..3 {
        exchange(&a.radio, &b.radio, &format!("round {round}")).await;
    }
    // A full-MTU frame fills one 240 B sub-packet exactly.
    let big: Vec<u8> = (0..a.radio.mtu()).map(|i| i as u8).collect();
    crosses(&a.radio, &b.radio, &big).await;
    let err = within(a.radio.send(&vec![0; 236]))
        .await
        .expect_err("too big");
    assert_eq!(
        err,
        RadioError::FrameTooLarge {
            size: 236,
            mtu: 235
        }
    );
    assert_eq!(a.radio.stats().tx_frames, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_air_rate_carries_frames_too() {
    let bench = Bench::new();
    let default_rate = Modulation {
        spreading_factor: 11,
        ..fast()
    };
    let a = bench.module("a").await;
    let b = bench.module("b").await;
    for m in [&a, &b] {
        within(m.radio.configure(&default_rate))
            .await
            .expect("2.4k");
        assert_eq!(m.pins.registers()[3], 0b011_00_010);
    }
    exchange(&a.radio, &b.radio, "2.4k").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_e22s_on_the_same_network_hear_each_other() {
    let bench = Bench::new();
    let a = bench.module("a").await;
    let other_net = E22Settings {
        net_id: 1,
        ..E22Settings::default()
    };
    let b = bench.module_with("b", other_net, config()).await;
    send(&a.radio, b"net 0").await;
    hears_nothing(&b.radio).await;

    // A RAK3172 set to the very stand-in settings of the E22's air rate hears nothing, and is
    // not heard: E22s speak only to E22s.
    let medium: Arc<dyn Medium> = Arc::new(bench.hub.clone());
    let rui3_emu = Emulator::rui3(medium, bench.dir.path(), "rui3").expect("emulator");
    let port = SerialConnector::new(rui3_emu.link_path(), 115_200);
    let rui3 = within(SerialRadio::open(ModuleKind::Rui3, port, config()))
        .await
        .expect("rui3");
    within(rui3.configure(&fast()))
        .await
        .expect("rui3 takes it");
    send(&a.radio, b"to the rak").await;
    hears_nothing(&rui3).await;
    send(&rui3, b"to the e22").await;
    hears_nothing(&a.radio).await;

    // Same network, and a frame crosses.
    let c = bench.module("c").await;
    crosses(&a.radio, &c.radio, b"net 0 again").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_module_is_waited_for() {
    let bench = Bench::new();
    let a = Arc::new(bench.module("a").await);
    let b = bench.module("b").await;

    a.pins.hold_aux_low(true);
    let sender = {
        let a = a.clone();
        tokio::spawn(async move { a.radio.send(b"after the busy spell").await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!sender.is_finished(), "the send waits while AUX is low");
    assert_eq!(a.radio.state(), RadioState::Busy);
    a.pins.hold_aux_low(false);
    within(sender)
        .await
        .expect("task")
        .expect("sent once AUX rose");
    assert_eq!(recv(&b.radio).await.payload, b"after the busy spell");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_stuck_busy_times_out_and_the_driver_recovers() {
    let bench = Bench::new();
    let impatient = DriverConfig {
        tx_timeout: Duration::from_millis(400),
        ..config()
    };
    let a = bench
        .module_with("a", E22Settings::default(), impatient)
        .await;
    let b = bench.module("b").await;

    a.pins.hold_aux_low(true);
    let err = within(a.radio.send(b"stuck"))
        .await
        .expect_err("AUX stays low");
    assert!(
        matches!(&err, RadioError::Timeout { command, .. } if command.contains("AUX high")),
        "{err}"
    );
    a.pins.hold_aux_low(false);
    // The driver may be reopening the port after repeated timeouts; a later send goes through.
    let mut delivered = false;
    for _ in 0..20 {
        if within(a.radio.send(b"unstuck")).await.is_ok() {
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(delivered, "driver recovered");
    assert_eq!(recv(&b.radio).await.payload, b"unstuck");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_module_times_out_then_recovers() {
    let bench = Bench::new();
    let quick = DriverConfig {
        command_timeout: Duration::from_millis(300),
        ..config()
    };
    let a = bench.module_with("a", E22Settings::default(), quick).await;
    let b = bench.module("b").await;

    a.emu.set_silent(true);
    let err = within(a.radio.configure(&fast()))
        .await
        .expect_err("no reply");
    assert!(matches!(err, RadioError::Timeout { .. }), "{err}");
    a.emu.set_silent(false);
    let mut configured = false;
    for _ in 0..20 {
        if within(a.radio.configure(&fast())).await.is_ok() {
            configured = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(configured, "driver recovered");
    exchange(&a.radio, &b.radio, "after silence").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_line_is_skipped() {
    let bench = Bench::new();
    let a = bench.module("a").await;
    let b = bench.module("b").await;
    exchange(&a.radio, &b.radio, "before").await;

    // Frame lookalikes: a false marker claiming 200 bytes, a frame with a broken CRC, a
    // register reply, a refusal and binary noise. None may come out as a frame, and the
    // frames after them must.
    let mut broken = b"LB\x05hello\x00\x00".to_vec();
    broken.push(0xB0);
    let mut garbage = b"\x00\xffLB\xc8".to_vec();
    garbage.extend_from_slice(&broken);
    garbage.extend_from_slice(b"\xc1\x00\x07\x01\x02\x03\x04\x05\x06\x07\xff\xff\xff");
    garbage.extend((0..=255u8).rev());
    let noise = b.radio.stats().noise;
    for i in 0..3 {
        b.emu.inject_garbage(&garbage).await;
        crosses(&a.radio, &b.radio, format!("after garbage {i}").as_bytes()).await;
    }
    assert!(b.radio.stats().noise > noise, "{:?}", b.radio.stats());
    assert_eq!(b.radio.stats().rx_frames, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unplug_and_replug_keep_the_queued_frame_and_the_settings() {
    let bench = Bench::new();
    let a = bench.module("a").await;
    let b = bench.module("b").await;
    exchange(&a.radio, &b.radio, "before unplug").await;

    a.emu.unplug().await;
    reaches(&a.radio, RadioState::Reconnecting).await;
    let radio = Arc::new(a);
    let sender = {
        let a = radio.clone();
        tokio::spawn(async move { a.radio.send(b"queued during unplug").await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!sender.is_finished(), "the send waits for the module");
    radio.emu.replug().await.expect("replug");

    within(sender)
        .await
        .expect("task")
        .expect("queued frame sent after reconnect");
    assert_eq!(recv(&b.radio).await.payload, b"queued during unplug");
    assert!(radio.radio.stats().reconnects >= 1);
    // The power cycle lost the volatile registers; the driver wrote them again.
    assert_eq!(radio.pins.registers(), FAST_REGISTERS);
    exchange(&radio.radio, &b.radio, "after replug").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_aux_the_driver_waits_fixed_times() {
    let bench = Bench::new();
    let (emu, pins) = bench.emulator("a");
    let settings = E22Settings {
        listen_before_talk: false,
        ..E22Settings::default()
    };
    let a = open(&emu, pins.without_aux(), settings, config()).await;
    within(a.configure(&fast())).await.expect("configure");
    assert_eq!(pins.registers()[6], 0b1000_0000);
    let b = bench.module("b").await;
    exchange(&a, &b.radio, "no aux").await;
}
