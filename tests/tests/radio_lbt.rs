//! Listen-before-talk through the real RUI3 driver, on the simulator's physics (where frames
//! that overlap at a receiver collide): a module with `AT+CAD` holds its frame back while
//! another station's long frame is on air, and both reach a third station; firmware without
//! it sends at once and both frames are lost there.
//!
//! Timeouts here only stop a broken test from hanging; nothing asserts on speed.

use std::sync::Arc;
use std::time::Duration;

use lorabridge_emulators::{Emulator, Medium};
use lorabridge_hardware::Modulation;
use lorabridge_radio::{
    DriverConfig, ModuleKind, Radio, RadioError, RxFrame, SerialConnector, SerialRadio,
};
use lorabridge_sim::air::PhysicalHub;
use lorabridge_sim::scenario::Scenario;
use tempfile::TempDir;

const LIMIT: Duration = Duration::from_secs(30);

/// The long talker, the receiver in the middle and the station under test, 10 m apart at
/// SF10 without fading: everyone hears everyone, and the receiver hears both ends at equal
/// power, so their overlapping frames destroy each other (no capture).
const LONG: usize = 0;
const MIDDLE: usize = 1;
const SENDER: usize = 2;

struct Bench {
    _dir: TempDir,
    air: PhysicalHub,
    modulation: Modulation,
    /// Emulators and drivers by station number; the emulators must outlive the drivers.
    stations: Vec<(Emulator, Arc<SerialRadio>)>,
}

impl Bench {
    /// Three RUI3 stations; the one under test runs firmware `sender_firmware` and its driver
    /// asks a busy module again at most `sender_retries` times.
    async fn new(sender_firmware: [u8; 3], sender_retries: u32) -> Self {
        let scenario = Scenario::parse(
            "name = \"lbt\"\nduration = \"1h\"\n[radio]\nspreading_factor = 10\n\
             [path_loss]\nsigma_db = 0.0\n[topology]\nkind = \"line\"\nn = 3\nspacing_m = 10\n",
        )
        .expect("scenario");
        let air = PhysicalHub::new(&scenario, vec![[0.0, 0.0], [10.0, 0.0], [20.0, 0.0]]);
        let modulation = scenario.radio.modulation();
        let dir = tempfile::tempdir().expect("temp dir");
        let medium: Arc<dyn Medium> = Arc::new(air.clone());
        let cfg = DriverConfig {
            backoff_min: Duration::from_millis(50),
            ..DriverConfig::default()
        };
        let mut stations = Vec::new();
        // Stations attach in order, taking positions 0, 1, 2.
        for (i, firmware) in [[4, 0, 6], [4, 0, 6], sender_firmware]
            .into_iter()
            .enumerate()
        {
            let emu =
                Emulator::rui3_firmware(medium.clone(), dir.path(), &format!("m{i}"), firmware)
                    .expect("emulator");
            let port = SerialConnector::new(emu.link_path(), 115_200);
            let cfg = DriverConfig {
                busy_retries: if i == SENDER {
                    sender_retries
                } else {
                    cfg.busy_retries
                },
                ..cfg.clone()
            };
            let radio = within(SerialRadio::open(ModuleKind::Rui3, port, cfg))
                .await
                .expect("driver opens");
            within(radio.configure(&modulation))
                .await
                .expect("configure");
            stations.push((emu, Arc::new(radio)));
        }
        Self {
            _dir: dir,
            air,
            modulation,
            stations,
        }
    }

    fn radio(&self, i: usize) -> &SerialRadio {
        &self.stations[i].1
    }

    /// Starts the long talker's frame of `len` bytes (SF10: about 1.8 s for 200) and returns
    /// once it is on air at the station under test.
    async fn long_frame_on_air(&self, len: usize) -> tokio::task::JoinHandle<()> {
        let frame = vec![0x4c; len];
        let radio = self.stations[LONG].1.clone();
        let send = tokio::spawn(async move {
            within(radio.send(&frame))
                .await
                .expect("the long frame is sent");
        });
        within(async {
            while !self.air.channel_busy(SENDER as u32, &self.modulation) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        send
    }
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("did not finish within the test's hang guard")
}

/// What `radio` receives until `quiet` passes without a frame.
async fn heard(radio: &SerialRadio, quiet: Duration) -> Vec<RxFrame> {
    let mut frames = Vec::new();
    while let Ok(Some(frame)) = tokio::time::timeout(quiet, radio.recv()).await {
        frames.push(frame);
    }
    frames
}

/// The payloads of `frames`, sorted.
fn payloads(frames: &[RxFrame]) -> Vec<Vec<u8>> {
    let mut p: Vec<Vec<u8>> = frames.iter().map(|f| f.payload.clone()).collect();
    p.sort();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_cad_the_sender_waits_for_the_long_frame_and_both_arrive_intact() {
    let bench = Bench::new([4, 0, 6], DriverConfig::default().busy_retries).await;
    let long = bench.long_frame_on_air(200).await;
    let short = vec![0x53; 40];
    within(bench.radio(SENDER).send(&short))
        .await
        .expect("sent once the channel was free");
    within(long).await.expect("long sender");
    let at_middle = heard(bench.radio(MIDDLE), Duration::from_secs(2)).await;
    assert_eq!(
        payloads(&at_middle),
        vec![vec![0x4c; 200], short.clone()],
        "both frames intact at the receiver in the middle"
    );
    let stats = bench.radio(SENDER).stats();
    assert!(stats.busy_retries >= 1, "the sender deferred: {stats:?}");
    // While it waited it listened: the frame it deferred to reached it too.
    let at_sender = heard(bench.radio(SENDER), Duration::from_millis(500)).await;
    assert_eq!(payloads(&at_sender), vec![vec![0x4c; 200]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cad_the_frames_collide_at_the_receiver() {
    let bench = Bench::new([4, 0, 5], DriverConfig::default().busy_retries).await;
    let long = bench.long_frame_on_air(200).await;
    within(bench.radio(SENDER).send(&[0x53; 40]))
        .await
        .expect("sent at once");
    within(long).await.expect("long sender");
    let at_middle = heard(bench.radio(MIDDLE), Duration::from_secs(2)).await;
    assert!(
        at_middle.is_empty(),
        "overlapping at equal power, both are lost: {:?}",
        payloads(&at_middle)
    );
    assert_eq!(bench.radio(SENDER).stats().busy_retries, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_that_stays_busy_fails_the_send_with_a_typed_error() {
    // One retry, after at most a quarter of a full frame's airtime, cannot outlast a full
    // frame.
    let bench = Bench::new([4, 0, 6], 1).await;
    let long = bench.long_frame_on_air(250).await;
    let result = within(bench.radio(SENDER).send(&[0x53; 40])).await;
    assert!(
        matches!(result, Err(RadioError::ChannelBusy { attempts: 2, .. })),
        "{result:?}"
    );
    within(long).await.expect("long sender");
    let at_middle = heard(bench.radio(MIDDLE), Duration::from_secs(2)).await;
    assert_eq!(
        payloads(&at_middle),
        vec![vec![0x4c; 250]],
        "the refused frame never went on air"
    );
}
