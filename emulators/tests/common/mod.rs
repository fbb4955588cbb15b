//! What the SPI-level chip tests (sx126x.rs, sx127x.rs) share: the modulation and driver
//! settings they run with, the medium, and the hang guard around every wait.

use std::time::Duration;

use lorabridge_emulators::{Hub, LinkQuality};
use lorabridge_hardware::Modulation;
use lorabridge_radio::{DriverConfig, Radio, RadioState, RxFrame, SpiRadio};

const LIMIT: Duration = Duration::from_secs(20);

/// EU868 869.525 MHz at SF7/125 kHz, CR 4/5, preamble 8, 14 dBm, sync word 0x12: settings
/// an SX1262, an SX1276 and a RAK3172 all take, with short airtime.
pub fn fast() -> Modulation {
    Modulation {
        spreading_factor: 7,
        ..Modulation::eu868_default()
    }
}

pub fn config() -> DriverConfig {
    DriverConfig {
        command_timeout: Duration::from_millis(300),
        tx_timeout: Duration::from_secs(5),
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(300),
        queue_timeout: Duration::from_secs(10),
        ..DriverConfig::default()
    }
}

pub fn hub() -> Hub {
    let hub = Hub::new();
    hub.set_default_quality(LinkQuality {
        rssi_dbm: -71,
        snr_db: 6.0,
    });
    hub
}

pub async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("did not finish within the test's hang guard")
}

pub async fn send(radio: &impl Radio, frame: &[u8]) {
    within(radio.send(frame)).await.expect("send");
}

pub async fn recv(radio: &impl Radio) -> RxFrame {
    within(radio.recv()).await.expect("driver still running")
}

pub async fn crosses(from: &impl Radio, to: &impl Radio, frame: &[u8]) -> RxFrame {
    send(from, frame).await;
    let got = recv(to).await;
    assert_eq!(got.payload, frame);
    got
}

pub async fn reaches(radio: &SpiRadio, want: RadioState) {
    let mut state = radio.watch_state();
    within(state.wait_for(|s| *s == want))
        .await
        .unwrap_or_else(|_| panic!("the driver stopped before it was {want:?}"));
}
