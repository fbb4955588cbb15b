//! The real SX127x driver against the SPI-level SX1276 emulator, on one medium; and an
//! SX1276, an SX1262 (the SX126x driver on its emulator) and a RAK3172 (the RUI3 driver on
//! its pty emulator) on the same medium: the mixed-radio mesh.
//!
//! Timeouts here only stop a broken test from hanging; nothing asserts on speed.

use std::sync::Arc;
use std::time::Duration;

use lorabridge_emulators::sx127x::ChipView;
use lorabridge_emulators::{Emulator, Hub, LinkQuality, Medium, Sx1262, Sx1276};
use lorabridge_hardware::Modulation;
use lorabridge_radio::SpiRadio;
use lorabridge_radio::sx126x::{self, Sx126xSettings};
use lorabridge_radio::sx127x::registers::{self as reg, Dio0, Mode};
use lorabridge_radio::sx127x::{self, Sx127xSettings};
use lorabridge_radio::{
    DriverConfig, ModuleKind, Radio, RadioError, RadioState, SerialConnector, SerialRadio,
};

mod common;
use common::{config, crosses, fast, hub, reaches, recv, send, within};

/// An emulated chip and the driver on it.
struct Station {
    chip: Sx1276,
    radio: SpiRadio,
}

async fn station_with(hub: &Hub, name: &str, settings: Sx127xSettings) -> Station {
    let medium: Arc<dyn Medium> = Arc::new(hub.clone());
    let chip = Sx1276::new(medium, name);
    let radio = within(sx127x::open(chip.bus(), settings, config()))
        .await
        .expect("driver opens");
    within(radio.configure(&fast())).await.expect("configure");
    Station { chip, radio }
}

async fn station(hub: &Hub, name: &str) -> Station {
    station_with(hub, name, Sx127xSettings::default()).await
}

fn receiving(view: &ChipView) {
    assert!(view.lora, "{view:?}");
    assert_eq!(view.mode, Some(Mode::RxContinuous), "{view:?}");
    assert_eq!(view.dio0, Some(Dio0::RxDone), "{view:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configuration_reaches_the_registers() {
    let hub = hub();
    let a = station(&hub, "a").await;
    let v = a.chip.view();
    assert_eq!(v.frequency_hz, 869_525_000);
    assert_eq!(
        v.modem,
        Some((7, 125_000, 5, true)),
        "explicit header, CRC on"
    );
    assert!(!v.low_data_rate_optimisation);
    assert_eq!((v.preamble_symbols, v.sync_word), (8, 0x12));
    assert!(v.pa_boost);
    assert_eq!(v.tx_power_dbm, 14);
    assert_eq!(v.irq_mask, !reg::irq::DRIVER);
    receiving(&v);
    assert_eq!(a.chip.modulation(), Some(fast()));

    // SF12 at +20 dBm, public sync word: LDRO on, the high-power DAC and current limit.
    let far = Modulation {
        spreading_factor: 12,
        tx_power_dbm: 20,
        sync_word: 0x34,
        ..fast()
    };
    within(a.radio.configure(&far)).await.expect("configure");
    let v = a.chip.view();
    assert_eq!(v.modem, Some((12, 125_000, 5, true)));
    assert!(v.low_data_rate_optimisation);
    assert_eq!((v.tx_power_dbm, v.sync_word), (20, 0x34));
    assert_eq!(a.chip.register(reg::REG_PA_DAC), reg::PA_DAC_HIGH_POWER);
    assert_eq!(a.chip.register(reg::REG_OCP), reg::OCP_140_MA);
    receiving(&v);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sf6_and_what_the_chip_lacks_are_refused_before_the_chip_is_touched() {
    let hub = hub();
    let a = station(&hub, "a").await;
    let sf6 = Modulation {
        spreading_factor: 6,
        ..fast()
    };
    let err = within(a.radio.configure(&sf6)).await.expect_err("SF6");
    match &err {
        RadioError::Unsupported { reason, .. } => {
            assert!(reason.contains("implicit header"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let loud = Modulation {
        tx_power_dbm: 22,
        ..fast()
    };
    assert!(matches!(
        within(a.radio.configure(&loud)).await,
        Err(RadioError::Unsupported { .. })
    ));
    // The chip kept the last good modulation and is still receiving with it.
    assert_eq!(a.chip.modulation(), Some(fast()));
    receiving(&a.chip.view());
    assert_eq!(a.radio.mtu(), 255);
    assert!(matches!(
        within(a.radio.send(&[0u8; 256])).await,
        Err(RadioError::FrameTooLarge { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_chips_hear_each_other_with_rssi_and_snr() {
    let hub = hub();
    let a = station(&hub, "a").await;
    let b = station(&hub, "b").await;
    let got = crosses(&a.radio, &b.radio, b"a to b").await;
    assert_eq!((got.rssi_dbm, got.snr_db), (Some(-71), Some(6.0)));
    // A full frame, then a second one: the FIFO read follows RegFifoRxCurrentAddr as
    // continuous reception moves on through the FIFO.
    crosses(&b.radio, &a.radio, &[0xA5; 255]).await;
    crosses(&b.radio, &a.radio, b"after a full FIFO").await;
    assert_eq!(a.radio.stats().tx_frames, 1);
    assert_eq!(a.radio.stats().rx_frames, 2);
    assert_eq!(b.chip.view().transmitted, 2);
    receiving(&a.chip.view());
    receiving(&b.chip.view());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packet_below_the_noise_reports_its_snr_in_the_rssi() {
    let hub = hub();
    let a = station(&hub, "a").await;
    let b = station(&hub, "b").await;
    hub.set_default_quality(LinkQuality {
        rssi_dbm: -118,
        snr_db: -5.0,
    });
    let got = crosses(&a.radio, &b.radio, b"faint").await;
    assert_eq!((got.rssi_dbm, got.snr_db), (Some(-118), Some(-5.0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_before_talk_defers_while_another_station_transmits() {
    let hub = hub();
    let a = station(&hub, "a").await;
    let b = station(&hub, "b").await;
    // A third station, straight on the medium, sends a long frame (about 400 ms at SF7).
    let (other, _rx) = hub.attach("other");
    let blocker = [0x42u8; 255];
    hub.transmit(other, &fast(), &blocker);
    send(&a.radio, b"after you").await;
    assert!(a.radio.stats().cad_busy >= 1, "{:?}", a.radio.stats());
    assert!(a.chip.view().cads >= 2, "looked again after backing off");
    // While it deferred, `a` kept receiving: it heard the frame it waited for, and `b`
    // heard the blocker before a's frame, not a collision.
    assert_eq!(recv(&a.radio).await.payload, blocker);
    let first = recv(&b.radio).await;
    let second = recv(&b.radio).await;
    assert_eq!(
        (first.payload.as_slice(), second.payload.as_slice()),
        (&blocker[..], &b"after you"[..])
    );

    // A quiet channel: one look, no deferral.
    let before = a.radio.stats().cad_busy;
    crosses(&a.radio, &b.radio, b"quiet").await;
    assert_eq!(a.radio.stats().cad_busy, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crc_errors_are_dropped_and_counted() {
    let hub = hub();
    let a = station(&hub, "a").await;
    let b = station(&hub, "b").await;
    b.chip.crc_errors(1);
    send(&a.radio, b"damaged").await;
    crosses(&a.radio, &b.radio, b"intact").await;
    assert_eq!(b.radio.stats().crc_errors, 1);
    assert_eq!(b.radio.stats().rx_frames, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_tx_done_irq_fails_the_send_and_resets_the_chip() {
    let hub = hub();
    // Without listen before talk: a muted DIO0 would fail the CAD first.
    let no_lbt = Sx127xSettings {
        listen_before_talk: false,
    };
    let a = station_with(&hub, "a", no_lbt).await;
    let b = station(&hub, "b").await;
    a.chip.mute_dio0(true);
    let err = within(a.radio.send(b"no irq"))
        .await
        .expect_err("no TxDone");
    assert!(
        matches!(&err, RadioError::Timeout { command, .. } if command.contains("TX done")),
        "{err}"
    );
    // The frame went on air: only the IRQ line is broken.
    assert_eq!(recv(&b.radio).await.payload, b"no irq");
    a.chip.mute_dio0(false);
    reaches(&a.radio, RadioState::Ready).await;
    crosses(&a.radio, &b.radio, b"irq back").await;
    assert!(a.radio.stats().reconnects >= 1, "{:?}", a.radio.stats());
    receiving(&a.chip.view());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_bus_resets_the_chip_and_the_frame_still_goes_out() {
    let hub = hub();
    let a = station(&hub, "a").await;
    let b = station(&hub, "b").await;
    a.chip.garbage(3);
    crosses(&a.radio, &b.radio, b"through the noise").await;
    assert!(a.radio.stats().reconnects >= 1, "{:?}", a.radio.stats());
    reaches(&a.radio, RadioState::Ready).await;
    receiving(&a.chip.view());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_or_missing_chip_is_reported_at_open_and_a_hang_later_recovers() {
    let hub = hub();
    let medium: Arc<dyn Medium> = Arc::new(hub.clone());
    let hung = Sx1276::new(medium.clone(), "hung");
    hung.hang(true);
    let err = within(sx127x::open(
        hung.bus(),
        Sx127xSettings::default(),
        config(),
    ))
    .await
    .err()
    .expect("hung chip");
    assert!(
        matches!(&err, RadioError::Protocol(m) if m.contains("RegVersion")),
        "{err}"
    );
    let gone = Sx1276::new(medium, "gone");
    gone.unplug();
    let err = within(sx127x::open(
        gone.bus(),
        Sx127xSettings::default(),
        config(),
    ))
    .await
    .err()
    .expect("no chip");
    assert!(matches!(err, RadioError::Port { .. }), "{err}");

    // A chip that hangs while running: the next exchange fails, the driver resets it until
    // it answers, and the send waiting meanwhile goes out.
    let a = Arc::new(station(&hub, "a").await);
    let b = station(&hub, "b").await;
    a.chip.hang(true);
    let sender = {
        let a = a.clone();
        tokio::spawn(async move { a.radio.send(b"after the hang").await })
    };
    reaches(&a.radio, RadioState::Reconnecting).await;
    a.chip.hang(false);
    within(sender).await.expect("task").expect("sent");
    assert_eq!(recv(&b.radio).await.payload, b"after the hang");
    assert_eq!(
        a.chip.modulation(),
        Some(fast()),
        "re-applied after the reset"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unplug_waits_and_replug_recovers_with_the_frame() {
    let hub = hub();
    let a = Arc::new(station(&hub, "a").await);
    let b = station(&hub, "b").await;
    a.chip.unplug();
    let sender = {
        let a = a.clone();
        tokio::spawn(async move { a.radio.send(b"held while unplugged").await })
    };
    reaches(&a.radio, RadioState::Reconnecting).await;
    assert!(!sender.is_finished(), "the send waits for the chip");
    a.chip.replug();
    within(sender)
        .await
        .expect("task")
        .expect("sent after the replug");
    assert_eq!(recv(&b.radio).await.payload, b"held while unplugged");
    assert_eq!(a.radio.stats().reconnects, 1);
    receiving(&a.chip.view());
    crosses(&b.radio, &a.radio, b"and back").await;
}

/// The mixed-radio mesh: an SX1276 (SX127x driver), an SX1262 (SX126x driver) and a RAK3172
/// (RUI3 driver on a pty) on one medium, with the same frequency, SF, bandwidth, coding
/// rate, preamble and sync word, hear each other every way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sx1276_an_sx1262_and_a_rak3172_hear_each_other() {
    let hub = hub();
    let dir = tempfile::tempdir().expect("temp dir");
    let sx1276 = station(&hub, "sx1276").await;
    let medium: Arc<dyn Medium> = Arc::new(hub.clone());
    let sx1262_chip = Sx1262::new(medium.clone(), "sx1262");
    let sx1262 = within(sx126x::open(
        sx1262_chip.bus(true),
        Sx126xSettings::default(),
        config(),
    ))
    .await
    .expect("sx126x opens");
    within(sx1262.configure(&fast())).await.expect("configure");
    let rui3_emu = Emulator::rui3(medium, dir.path(), "rak3172").expect("emulator");
    let port = SerialConnector::new(rui3_emu.link_path(), 115_200);
    let rui3 = within(SerialRadio::open(
        ModuleKind::Rui3,
        port,
        DriverConfig::default(),
    ))
    .await
    .expect("rui3 opens");
    within(rui3.configure(&fast()))
        .await
        .expect("rui3 configure");

    // One frame from each is heard by both others.
    send(&sx1276.radio, b"from the SX1276").await;
    assert_eq!(recv(&sx1262).await.payload, b"from the SX1276");
    assert_eq!(recv(&rui3).await.payload, b"from the SX1276");
    send(&sx1262, b"from the SX1262").await;
    let got = recv(&sx1276.radio).await;
    assert_eq!(got.payload, b"from the SX1262");
    assert_eq!((got.rssi_dbm, got.snr_db), (Some(-71), Some(6.0)));
    assert_eq!(recv(&rui3).await.payload, b"from the SX1262");
    send(&rui3, b"from the RAK3172").await;
    assert_eq!(recv(&sx1276.radio).await.payload, b"from the RAK3172");
    assert_eq!(recv(&sx1262).await.payload, b"from the RAK3172");

    // Another sync word on the SX1276 and the others are deaf to it.
    let public = Modulation {
        sync_word: 0x34,
        ..fast()
    };
    within(sx1276.radio.configure(&public))
        .await
        .expect("configure");
    send(&sx1276.radio, b"not for you").await;
    let heard = tokio::time::timeout(Duration::from_millis(500), sx1262.recv()).await;
    assert!(heard.is_err(), "heard {heard:?}");
}
