//! `lorabridge_radio::probe` (what `lorabridge radio probe` prints) against each emulator.

use std::sync::Arc;
use std::time::Duration;

use lorabridge_emulators::{Emulator, Hub, Medium};
use lorabridge_radio::{DriverConfig, ModuleKind, RadioError, SerialConnector, probe};

async fn probe_emulator(kind: ModuleKind) -> lorabridge_radio::ModuleInfo {
    let dir = tempfile::tempdir().expect("temp dir");
    let medium: Arc<dyn Medium> = Arc::new(Hub::new());
    let emu = match kind {
        ModuleKind::Rui3 => Emulator::rui3(medium, dir.path(), "m"),
        ModuleKind::Rak811 => Emulator::rak811(medium, dir.path(), "m"),
        ModuleKind::Rnode => Emulator::rnode(medium, dir.path(), "m"),
        ModuleKind::E22 => panic!("the E22 needs emulated mode pins: see emulators/tests/e22.rs"),
        ModuleKind::Sx126x => panic!("the SX126x is on SPI: see emulators/tests/sx126x.rs"),
        ModuleKind::Sx127x => panic!("the SX127x is on SPI: see emulators/tests/sx127x.rs"),
    }
    .expect("emulator");
    let connector = SerialConnector::new(emu.link_path(), 115_200);
    let info = tokio::time::timeout(
        Duration::from_secs(20),
        probe(kind, &connector, &DriverConfig::default()),
    )
    .await
    .expect("hang guard")
    .expect("module answers");
    assert_eq!(info.driver, kind);
    assert_eq!(info.port, emu.link_path().display().to_string());
    info
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_reports_rui3() {
    let info = probe_emulator(ModuleKind::Rui3).await;
    assert_eq!(info.firmware.as_deref(), Some("RUI_4.0.6_RAK3172-E"));
    assert_eq!(info.mtu, 250);
    // As shipped the module is in LoRaWAN mode; probe reports it and changes nothing.
    assert_eq!(
        info.settings.get("network_mode").map(String::as_str),
        Some("1 (LoRaWAN)")
    );
    assert_eq!(
        info.settings.get("listen_before_talk").map(String::as_str),
        Some("available (AT+CAD, set in P2P mode)")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_says_when_rui3_firmware_has_no_cad() {
    let dir = tempfile::tempdir().expect("temp dir");
    let medium: Arc<dyn Medium> = Arc::new(Hub::new());
    let emu = Emulator::rui3_firmware(medium, dir.path(), "m", [3, 5, 3]).expect("emulator");
    let connector = SerialConnector::new(emu.link_path(), 115_200);
    let info = tokio::time::timeout(
        Duration::from_secs(20),
        probe(ModuleKind::Rui3, &connector, &DriverConfig::default()),
    )
    .await
    .expect("hang guard")
    .expect("module answers");
    assert_eq!(info.firmware.as_deref(), Some("RUI_3.5.3_RAK3172-E"));
    assert_eq!(
        info.settings.get("listen_before_talk").map(String::as_str),
        Some("unavailable (AT+CAD needs RUI 4.0.6 or later)")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_reports_rak811() {
    let info = probe_emulator(ModuleKind::Rak811).await;
    assert_eq!(info.firmware.as_deref(), Some("V3.0.0.14.H"));
    assert_eq!(info.mtu, 118);
    assert_eq!(
        info.settings.get("frequency").map(String::as_str),
        Some("869525000")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_reports_rnode() {
    let info = probe_emulator(ModuleKind::Rnode).await;
    assert_eq!(info.firmware.as_deref(), Some("1.74"));
    assert_eq!(info.mtu, 508);
    assert_eq!(info.settings.get("radio").map(String::as_str), Some("off"));
    assert_eq!(
        info.settings.get("platform").map(String::as_str),
        Some("0x80 (ESP32)")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_with_the_wrong_driver_fails_clearly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let medium: Arc<dyn Medium> = Arc::new(Hub::new());
    let emu = Emulator::rnode(medium, dir.path(), "rnode").expect("emulator");
    let cfg = DriverConfig {
        command_timeout: Duration::from_millis(300),
        ..DriverConfig::default()
    };
    let err = probe(
        ModuleKind::Rui3,
        &SerialConnector::new(emu.link_path(), 115_200),
        &cfg,
    )
    .await
    .expect_err("an RNode does not speak AT");
    assert!(matches!(err, RadioError::Timeout { .. }), "{err}");
    let missing = probe(
        ModuleKind::Rui3,
        &SerialConnector::new(dir.path().join("nothing"), 115_200),
        &cfg,
    )
    .await
    .expect_err("no such port");
    assert!(matches!(missing, RadioError::Port { .. }), "{missing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_reads_back_what_the_driver_configured() {
    use lorabridge_hardware::Modulation;
    use lorabridge_radio::{Radio, SerialRadio};

    let dir = tempfile::tempdir().expect("temp dir");
    let medium: Arc<dyn Medium> = Arc::new(Hub::new());
    let emu = Emulator::rui3(medium, dir.path(), "rui3").expect("emulator");
    let connector = SerialConnector::new(emu.link_path(), 115_200);
    let radio = SerialRadio::open(ModuleKind::Rui3, connector.clone(), DriverConfig::default())
        .await
        .expect("open");
    let m = Modulation::eu868_default();
    radio.configure(&m).await.expect("configure");
    radio.shutdown().await.expect("shutdown");
    drop(radio);

    let info = tokio::time::timeout(
        Duration::from_secs(20),
        probe(ModuleKind::Rui3, &connector, &DriverConfig::default()),
    )
    .await
    .expect("hang guard")
    .expect("module answers");
    assert_eq!(
        info.settings.get("network_mode").map(String::as_str),
        Some("0 (LoRa P2P)")
    );
    assert_eq!(
        info.settings.get("p2p").map(String::as_str),
        Some("869525000:9:125:0:8:14")
    );
    assert_eq!(
        info.settings.get("spreading_factor").map(String::as_str),
        Some("9")
    );
}
