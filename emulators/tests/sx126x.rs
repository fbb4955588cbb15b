//! The real SX126x driver against the SPI-level SX1262 emulator, on one medium; and against a
//! RAK3172 (the RUI3 driver on its pty emulator) on the same medium.
//!
//! Timeouts here only stop a broken test from hanging; nothing asserts on speed. Every chip
//! is checked at the end for commands sent while BUSY was high and for unknown opcodes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lorabridge_emulators::sx126x::{ChipView, Mode};
use lorabridge_emulators::{Emulator, Hub, Medium, Sx1262};
use lorabridge_hardware::Modulation;
use lorabridge_radio::SpiRadio;
use lorabridge_radio::sx126x::commands::{self, TcxoVoltage, irq};
use lorabridge_radio::sx126x::{self, Antenna, Sx126xSettings};
use lorabridge_radio::{
    DriverConfig, ModuleKind, Radio, RadioError, RadioState, SerialConnector, SerialRadio,
};

mod common;
use common::{config, crosses, fast, hub, reaches, recv, send, within};

/// An emulated chip and the driver on it.
struct Station {
    chip: Sx1262,
    radio: SpiRadio,
}

impl Drop for Station {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert_eq!(
                self.chip.busy_violations(),
                0,
                "a command while BUSY was high"
            );
            assert_eq!(
                self.chip.unknown_opcodes(),
                0,
                "an opcode the chip does not know"
            );
        }
    }
}

async fn station_with(
    hub: &Hub,
    name: &str,
    settings: Sx126xSettings,
    cfg: DriverConfig,
) -> Station {
    let medium: Arc<dyn Medium> = Arc::new(hub.clone());
    let chip = Sx1262::new(medium, name);
    let radio = within(sx126x::open(chip.bus(true), settings, cfg))
        .await
        .expect("driver opens");
    within(radio.configure(&fast())).await.expect("configure");
    Station { chip, radio }
}

async fn station(hub: &Hub, name: &str) -> Station {
    station_with(hub, name, Sx126xSettings::default(), config()).await
}

fn receiving(view: &ChipView) {
    assert_eq!(view.mode, Mode::Rx, "{view:?}");
    assert!(view.rx_continuous, "{view:?}");
    assert_eq!(view.antenna, Antenna::Rx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configuration_reaches_the_chip() {
    let hub = hub();
    let board = Sx126xSettings {
        tcxo: Some(TcxoVoltage::V1_8),
        dio2_rf_switch: true,
        ..Sx126xSettings::default()
    };
    let a = station_with(&hub, "a", board, config()).await;
    let v = a.chip.view();
    assert_eq!(v.packet_type, 0x01, "LoRa");
    assert!(
        v.frequency_hz.abs_diff(869_525_000) <= 1,
        "{}",
        v.frequency_hz
    );
    assert_eq!(v.lora, Some((7, 125_000, 5)));
    assert!(!v.low_data_rate_optimisation);
    assert_eq!((v.preamble_symbols, v.crc_on), (8, true));
    assert_eq!(v.sync_word_register, [0x14, 0x24], "0x12 spread");
    assert_eq!(
        (v.tx_power_dbm, v.pa_config),
        (14, [0x04, 0x07, 0x00, 0x01])
    );
    assert_eq!(v.tcxo, Some(TcxoVoltage::V1_8));
    assert!(v.dio2_rf_switch && v.dcdc);
    assert_eq!(v.calibrated, 0x7F, "recalibrated on the TCXO");
    assert_eq!(v.device_errors, 0, "the TCXO start error was cleared");
    assert_eq!(v.image_calibration, [0xD7, 0xDB], "863-870 MHz band");
    assert_eq!(
        v.dio1_mask & (irq::RX_DONE | irq::CRC_ERR | irq::TX_DONE),
        irq::RX_DONE | irq::CRC_ERR | irq::TX_DONE
    );
    receiving(&v);
    assert_eq!(a.chip.modulation(), Some(fast()));
    // The datasheet's errata: PA clamp, modulation quality below 500 kHz, standard IQ.
    assert_eq!(a.chip.register(commands::REG_TX_CLAMP) & 0x1E, 0x1E);
    assert_eq!(a.chip.register(commands::REG_TX_MODULATION) & 0x04, 0x04);
    assert_eq!(a.chip.register(commands::REG_IQ_POLARITY) & 0x04, 0x04);
    assert_eq!((a.radio.kind(), a.radio.mtu()), (ModuleKind::Sx126x, 255));

    // SF12 turns low-data-rate optimisation on; 0x34 is spread to 0x3444.
    let slow = Modulation {
        spreading_factor: 12,
        sync_word: 0x34,
        frequency_hz: 915_000_000,
        ..fast()
    };
    within(a.radio.configure(&slow)).await.expect("configure");
    let v = a.chip.view();
    assert_eq!(v.lora, Some((12, 125_000, 5)));
    assert!(v.low_data_rate_optimisation);
    assert_eq!(v.sync_word_register, [0x34, 0x44]);
    assert_eq!(v.image_calibration, [0xE1, 0xE9], "902-928 MHz band");
    receiving(&v);
    let wide = Modulation {
        bandwidth_hz: 500_000,
        ..fast()
    };
    within(a.radio.configure(&wide)).await.expect("configure");
    assert_eq!(a.chip.view().lora, Some((7, 500_000, 5)));
    assert_eq!(
        a.chip.register(commands::REG_TX_MODULATION) & 0x04,
        0,
        "500 kHz"
    );

    // Refused before the chip is touched.
    let big = [0u8; 256];
    assert_eq!(
        a.radio.send(&big).await,
        Err(RadioError::FrameTooLarge {
            size: 256,
            mtu: 255
        })
    );
    assert_eq!(a.radio.send(&[]).await, Err(RadioError::EmptyFrame));
    let loud = Modulation {
        tx_power_dbm: 23,
        ..fast()
    };
    assert!(matches!(
        a.radio.configure(&loud).await,
        Err(RadioError::Unsupported { .. })
    ));
    assert_eq!(
        a.chip.view().tx_power_dbm,
        14,
        "nothing sent for a refused setting"
    );

    within(a.radio.shutdown()).await.expect("shutdown");
    assert_eq!(a.chip.view().mode, Mode::Sleep);
    assert_eq!(a.radio.state(), RadioState::Closed);
    assert_eq!(a.radio.send(b"late").await, Err(RadioError::Closed));
}

/// With an amplifier (the MeshAdv-Pi's 8 dB), the chip is set to the power at the antenna
/// socket minus the gain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chip_power_leaves_room_for_the_board_amplifier() {
    let hub = hub();
    let amplified = Sx126xSettings {
        amplifier_gain_db: 8,
        ..Sx126xSettings::default()
    };
    let a = station_with(&hub, "a", amplified, config()).await;
    assert_eq!(a.chip.view().tx_power_dbm, 6, "14 dBm at the socket");
    let loud = Modulation {
        tx_power_dbm: 30,
        ..fast()
    };
    within(a.radio.configure(&loud))
        .await
        .expect("30 dBm at the socket");
    assert_eq!(a.chip.view().tx_power_dbm, 22);
    let too_loud = Modulation {
        tx_power_dbm: 31,
        ..fast()
    };
    assert!(matches!(
        a.radio.configure(&too_loud).await,
        Err(RadioError::Unsupported { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_before_configure_is_refused() {
    let hub = hub();
    let medium: Arc<dyn Medium> = Arc::new(hub.clone());
    let chip = Sx1262::new(medium, "fresh");
    let radio = within(sx126x::open(
        chip.bus(false),
        Sx126xSettings::default(),
        config(),
    ))
    .await
    .expect("opens");
    assert_eq!(radio.send(b"hi").await, Err(RadioError::NotConfigured));
    assert_eq!(chip.view().transmitted, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_chips_hear_each_other_with_rssi_and_snr() {
    let hub = hub();
    let a = station(&hub, "a").await;
    let b = station(&hub, "b").await;
    let got = crosses(&a.radio, &b.radio, b"a to b").await;
    assert_eq!((got.rssi_dbm, got.snr_db), (Some(-71), Some(6.0)));
    crosses(&b.radio, &a.radio, &[0xA5; 255]).await;
    assert_eq!(a.radio.stats().tx_frames, 1);
    assert_eq!(a.radio.stats().rx_frames, 1);
    assert_eq!(a.chip.view().transmitted, 1);
    receiving(&a.chip.view());
    receiving(&b.chip.view());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_before_talk_defers_while_another_station_transmits() {
    let hub = hub();
    let a = station(&hub, "a").await;
    let b = station(&hub, "b").await;
    // A third station, straight on the medium, sends a long frame (about 400 ms at SF7).
    let (other, _rx) = hub.attach("other");
    let blocker = [0x42u8; 255];
    let toa = hub.transmit(other, &fast(), &blocker);
    let started = Instant::now();
    send(&a.radio, b"after you").await;
    assert!(
        started.elapsed() >= toa / 2,
        "sent after {:?}",
        started.elapsed()
    );
    assert!(a.radio.stats().cad_busy >= 1, "{:?}", a.radio.stats());
    assert!(a.chip.view().cads >= 2, "looked again after backing off");
    // While it deferred, `a` kept receiving: it heard the frame it waited for.
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
async fn a_stuck_busy_is_reported_and_the_driver_recovers() {
    let hub = hub();
    let cfg = DriverConfig {
        queue_timeout: Duration::from_millis(1500),
        ..config()
    };
    let a = station_with(&hub, "a", Sx126xSettings::default(), cfg).await;
    let b = station(&hub, "b").await;
    a.chip.stick_busy(true);
    let err = within(a.radio.send(b"stuck"))
        .await
        .expect_err("BUSY never falls");
    assert!(matches!(err, RadioError::Unavailable { .. }), "{err}");
    assert_eq!(a.radio.state(), RadioState::Reconnecting);
    a.chip.stick_busy(false);
    reaches(&a.radio, RadioState::Ready).await;
    assert!(a.radio.stats().reconnects >= 1);
    assert_eq!(
        a.chip.modulation(),
        Some(fast()),
        "re-applied after the reset"
    );
    crosses(&a.radio, &b.radio, b"unstuck").await;
}

/// At start-up nothing is retried: a hung chip or an empty bus is reported at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chip_that_does_not_answer_at_start_is_reported() {
    let hub = hub();
    let medium: Arc<dyn Medium> = Arc::new(hub.clone());
    let hung = Sx1262::new(medium.clone(), "hung");
    hung.stick_busy(true);
    let err = within(sx126x::open(
        hung.bus(false),
        Sx126xSettings::default(),
        config(),
    ))
    .await
    .err()
    .expect("BUSY never falls");
    assert!(
        matches!(&err, RadioError::Timeout { command, .. } if command.contains("stays busy")),
        "{err}"
    );
    // MISO reading 0xFF (nothing driving it): no status byte of a chip.
    let floating = Sx1262::new(medium, "floating");
    floating.garbage(u32::MAX);
    let err = within(sx126x::open(
        floating.bus(false),
        Sx126xSettings::default(),
        config(),
    ))
    .await
    .err()
    .expect("no chip");
    assert!(
        matches!(&err, RadioError::Protocol(text) if text.contains("no SX126x answers")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_tx_done_irq_fails_the_send_and_resets_the_chip() {
    let hub = hub();
    let no_lbt = Sx126xSettings {
        listen_before_talk: false,
        ..Sx126xSettings::default()
    };
    let cfg = DriverConfig {
        tx_timeout: Duration::from_secs(1),
        ..config()
    };
    let a = station_with(&hub, "a", no_lbt, cfg).await;
    let b = station(&hub, "b").await;
    a.chip.mute_dio1(true);
    let err = within(a.radio.send(b"into the void"))
        .await
        .expect_err("no IRQ");
    assert!(
        matches!(&err, RadioError::Timeout { command, .. } if command.contains("TX done")),
        "{err}"
    );
    // The frame did go on air: only the IRQ line is broken.
    assert_eq!(recv(&b.radio).await.payload, b"into the void");
    a.chip.mute_dio1(false);
    reaches(&a.radio, RadioState::Ready).await;
    assert!(a.radio.stats().reconnects >= 1);
    crosses(&a.radio, &b.radio, b"heard again").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_bus_resets_the_chip_and_the_frame_still_goes_out() {
    let hub = hub();
    let a = station(&hub, "a").await;
    let b = station(&hub, "b").await;
    a.chip.garbage(3);
    crosses(&a.radio, &b.radio, b"through the noise").await;
    assert!(a.radio.stats().reconnects >= 1, "{:?}", a.radio.stats());
    assert_eq!(a.radio.state(), RadioState::Ready);
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
    tokio::time::sleep(Duration::from_millis(300)).await;
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

    // A chip unplugged at start-up is reported at once.
    let medium: Arc<dyn Medium> = Arc::new(hub.clone());
    let gone = Sx1262::new(medium, "gone");
    gone.unplug();
    let err = within(sx126x::open(
        gone.bus(false),
        Sx126xSettings::default(),
        config(),
    ))
    .await
    .err()
    .expect("no chip");
    assert!(matches!(err, RadioError::Port { .. }), "{err}");
}

/// The SX1262 driver and the RUI3 driver (RAK3172 emulator on a pty) on one medium, with the
/// same frequency, SF, bandwidth, coding rate, preamble and sync word, hear each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sx1262_and_a_rak3172_hear_each_other() {
    let hub = hub();
    let dir = tempfile::tempdir().expect("temp dir");
    let spi = station(&hub, "sx1262").await;
    let medium: Arc<dyn Medium> = Arc::new(hub.clone());
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

    let got = crosses(&spi.radio, &rui3, b"from the SX1262").await;
    assert_eq!(got.rssi_dbm, Some(-71));
    let got = crosses(&rui3, &spi.radio, b"from the RAK3172").await;
    assert_eq!((got.rssi_dbm, got.snr_db), (Some(-71), Some(6.0)));

    // Another sync word and they are deaf to each other.
    let public = Modulation {
        sync_word: 0x34,
        ..fast()
    };
    within(spi.radio.configure(&public))
        .await
        .expect("configure");
    send(&spi.radio, b"not for you").await;
    let heard = tokio::time::timeout(Duration::from_millis(500), rui3.recv()).await;
    assert!(heard.is_err(), "heard {heard:?}");
}
