//! Airtime is the law across restarts: a bridge that restarts (a crash loop under systemd's
//! `Restart=always`, a steward's reboots) starts with the airtime it used in the last hour,
//! so three restarts in an hour, each followed by a burst of operations its neighbour
//! wants, still keep it within one hour's budget.
//!
//! The airtime is counted by the channel the emulated modems share, not read from the
//! bridge: what the bridge believes it sent is exactly what could be wrong.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{chat_topic, logs};
use lorabridge_emulators::medium::{Hub, LinkQuality, Medium, Reception, StationId};
use lorabridge_hardware::{Modulation, RegionPlan};
use lorabridge_testkit::neighbourhood::{Member, Neighbourhood, demo_modulation};
use tokio::sync::mpsc;

/// A channel where every radio hears every other, counting each station's time on air.
#[derive(Default)]
struct Tally {
    hub: Hub,
    names: Mutex<HashMap<StationId, String>>,
    air: Mutex<HashMap<String, Duration>>,
}

impl Tally {
    fn of(&self, name: &str) -> Duration {
        let air = self.air.lock().unwrap();
        air.get(name).copied().unwrap_or_default()
    }
}

impl Medium for Tally {
    fn attach(&self, name: &str) -> (StationId, mpsc::Receiver<Reception>) {
        let (id, frames) = self.hub.attach(name);
        self.names.lock().unwrap().insert(id, name.to_string());
        (id, frames)
    }

    fn detach(&self, id: StationId) {
        self.hub.detach(id);
    }

    fn listen(&self, id: StationId, modulation: Option<Modulation>) {
        self.hub.listen(id, modulation);
    }

    fn transmit(&self, from: StationId, modulation: &Modulation, payload: &[u8]) -> Duration {
        let airtime = self.hub.transmit(from, modulation, payload);
        let name = self.names.lock().unwrap().get(&from).cloned();
        if let Some(name) = name {
            *self.air.lock().unwrap().entry(name).or_default() += airtime;
        }
        airtime
    }

    fn channel_busy(&self, id: StationId, modulation: &Modulation) -> bool {
        self.hub.channel_busy(id, modulation)
    }
}

/// Waits until `done` holds, checking every half second, for at most `limit`.
async fn until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while !done() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_restarts_in_an_hour_stay_within_one_hours_airtime() {
    logs();
    // EU868's 868.7-869.2 MHz sub-band allows 0.1 %: 3.6 s of air an hour, about a dozen
    // operations at SF7. The burst below wants several times that.
    let modulation = Modulation {
        frequency_hz: 868_850_000,
        ..demo_modulation()
    };
    let plan = RegionPlan::builtin("EU868").unwrap();
    let budget = plan
        .sub_band(modulation.frequency_hz, modulation.bandwidth_hz)
        .and_then(|band| band.duty_budget())
        .expect("868.85 MHz has a duty cycle");
    let tally = Arc::new(Tally::default());
    tally.hub.set_default_quality(LinkQuality {
        rssi_dbm: -97,
        snr_db: 4.5,
    });
    let members = ["A", "B"].map(|name| Member::new(name, false, true).with_modulation(modulation));
    let mut n = Neighbourhood::start_on(tally.clone(), common::NETWORK, &members, &[chat_topic()])
        .await
        .unwrap();
    for i in 0..60 {
        common::publish(
            n.bridge("A").grpc_addr,
            format!("burst {i}").as_bytes(),
            b"",
        )
        .await;
    }
    // A spends what the hour allows (less the reserve kept for control frames)...
    assert!(
        until(Duration::from_secs(120), || tally.of("A")
            >= budget.mul_f64(0.8))
        .await,
        "A sent only {:?} of its {budget:?} in two minutes",
        tally.of("A")
    );
    let before = tally.of("A");
    // ...and each restart brings B's summaries showing what it still lacks.
    for restart in 1..=3 {
        n.restart("A").await.unwrap();
        tokio::time::sleep(Duration::from_secs(15)).await;
        eprintln!("after restart {restart}: A has sent {:?}", tally.of("A"));
    }
    let used = tally.of("A");
    println!(
        "{{\"test\": \"three_restarts\", \"budget_s\": {:.3}, \"before_restarts_s\": {:.3}, \
         \"after_restarts_s\": {:.3}}}",
        budget.as_secs_f64(),
        before.as_secs_f64(),
        used.as_secs_f64()
    );
    assert!(
        used <= budget,
        "A sent {used:?} within the hour, over its budget of {budget:?}"
    );
    n.stop().await;
}
