//! The simulator's physics behind the modem emulators' seam ([`lorabridge_emulators::Medium`]), in
//! real time: emulated RUI3/RAK811/RNode modules (and the real serial drivers and bridge
//! processes attached to them) hear each other through path loss, shadowing, sensitivity,
//! half-duplex and collisions with capture, exactly as nodes do in a virtual-time run.
//!
//! Stations get the scenario's positions in the order they attach (station k sits at
//! `positions[k]`); the hub carries one channel, the scenario's modulation, and a frame sent
//! with another modulation reaches nobody. Time is the tokio clock since the hub was made.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lorabridge_hardware::Modulation;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::physics::{Geometry, Physics};
use crate::scenario::Scenario;
use lorabridge_emulators::medium::{Reception, STATION_QUEUE, airtime, compatible};
use lorabridge_emulators::{Medium, StationId};

struct Station {
    tx: Option<mpsc::Sender<Reception>>,
    listening: Option<Modulation>,
}

struct Inner {
    physics: Physics,
    geometry: Geometry,
    modulation: Modulation,
    stations: Vec<Station>,
}

/// A real-time medium with the simulator's physics, for emulators and whole bridges.
///
/// Memory: one entry per station (at most the scenario's positions) and one timer task per
/// frame on air.
#[derive(Clone)]
pub struct PhysicalHub {
    inner: Arc<Mutex<Inner>>,
    epoch: Instant,
}

impl PhysicalHub {
    /// A hub for up to `positions.len()` stations, with the scenario's radio and path loss.
    pub fn new(s: &Scenario, positions: Vec<[f64; 2]>) -> Self {
        let geometry = Geometry::from_positions(s, positions);
        let modulation = s.radio.modulation();
        let n = geometry.n;
        Self {
            inner: Arc::new(Mutex::new(Inner {
                physics: Physics::new(n, modulation, s.radio.capture_db, s.radio.noise_figure_db),
                geometry,
                modulation,
                stations: Vec::new(),
            })),
            epoch: Instant::now(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Plain data: a panic elsewhere leaves it consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }
}

impl Medium for PhysicalHub {
    fn attach(&self, _name: &str) -> (StationId, mpsc::Receiver<Reception>) {
        let (tx, rx) = mpsc::channel(STATION_QUEUE);
        let mut inner = self.lock();
        let id = inner.stations.len();
        // Stations beyond the positions given are never heard and hear nothing.
        let tx = (id < inner.geometry.n).then_some(tx);
        inner.stations.push(Station {
            tx,
            listening: None,
        });
        (id as StationId, rx)
    }

    fn detach(&self, id: StationId) {
        if let Some(s) = self.lock().stations.get_mut(id as usize) {
            s.tx = None;
            s.listening = None;
        }
    }

    fn listen(&self, id: StationId, modulation: Option<Modulation>) {
        if let Some(s) = self.lock().stations.get_mut(id as usize) {
            s.listening = modulation;
        }
    }

    fn transmit(&self, from: StationId, modulation: &Modulation, payload: &[u8]) -> Duration {
        let toa = airtime(modulation, payload.len());
        let from = from as usize;
        let now = self.now();
        let frame = {
            let mut inner = self.lock();
            if from >= inner.geometry.n || !compatible(modulation, &inner.modulation) {
                return toa;
            }
            let Inner {
                physics,
                geometry,
                stations,
                ..
            } = &mut *inner;
            // Only stations listening on the channel take part (receivers choose at start).
            let listening: Vec<bool> = (0..geometry.n)
                .map(|i| {
                    stations
                        .get(i)
                        .and_then(|s| s.listening)
                        .is_some_and(|l| compatible(&l, modulation))
                })
                .collect();
            physics.begin(now, from, toa, geometry, |_, to| listening[to])
        };
        let hub = self.clone();
        let modulation = *modulation;
        let payload = payload.to_vec();
        tokio::spawn(async move {
            tokio::time::sleep(toa).await;
            let mut inner = hub.lock();
            let (_, arrivals) = inner.physics.end(frame);
            for arrival in arrivals {
                let Some(station) = inner.stations.get(arrival.to) else {
                    continue;
                };
                if let Some(tx) = &station.tx
                    && station.listening.is_some()
                {
                    let _ = tx.try_send(Reception {
                        payload: payload.clone(),
                        rssi_dbm: arrival.rssi.round() as i16,
                        snr_db: arrival.snr as f32,
                        modulation,
                    });
                }
            }
        });
        toa
    }

    fn channel_busy(&self, id: StationId, modulation: &Modulation) -> bool {
        let inner = self.lock();
        compatible(modulation, &inner.modulation)
            && (id as usize) < inner.geometry.n
            && inner.physics.busy_until(id as usize, self.now()).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(positions: Vec<[f64; 2]>) -> PhysicalHub {
        let s = Scenario::parse(
            "name = \"air\"\nduration = \"1m\"\n[radio]\nspreading_factor = 7\n\
             [path_loss]\nsigma_db = 0.0\n[topology]\nkind = \"line\"\nn = 2\nspacing_m = 1\n",
        )
        .unwrap();
        PhysicalHub::new(&s, positions)
    }

    fn sf7() -> Modulation {
        Modulation {
            spreading_factor: 7,
            ..Modulation::eu868_default()
        }
    }

    #[tokio::test]
    async fn near_stations_hear_with_model_rssi_and_far_ones_do_not() {
        let hub = hub(vec![[0.0, 0.0], [100.0, 0.0], [5000.0, 0.0]]);
        let (a, _ra) = hub.attach("a");
        let (b, mut rb) = hub.attach("b");
        let (c, mut rc) = hub.attach("c");
        hub.listen(b, Some(sf7()));
        hub.listen(c, Some(sf7()));
        hub.transmit(a, &sf7(), b"hello");
        let got = tokio::time::timeout(Duration::from_secs(5), rb.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.payload, b"hello");
        // 14 dBm − (127.41 + 20.8·log10(100/40)) = −121.69 dBm.
        assert_eq!(got.rssi_dbm, -122);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(rc.try_recv().is_err(), "5 km away at SF7");
    }

    #[tokio::test]
    async fn carrier_is_sensed_only_within_reception_range() {
        let hub = hub(vec![[0.0, 0.0], [100.0, 0.0], [5000.0, 0.0]]);
        let (a, _ra) = hub.attach("a");
        let (b, _rb) = hub.attach("b");
        let (c, _rc) = hub.attach("c");
        hub.listen(b, Some(sf7()));
        hub.listen(c, Some(sf7()));
        let toa = hub.transmit(a, &sf7(), &[0; 100]);
        assert!(hub.channel_busy(b, &sf7()));
        assert!(!hub.channel_busy(c, &sf7()), "5 km away at SF7");
        tokio::time::sleep(toa + Duration::from_millis(50)).await;
        assert!(!hub.channel_busy(b, &sf7()));
    }

    #[tokio::test]
    async fn overlapping_frames_collide() {
        let hub = hub(vec![[0.0, 0.0], [100.0, 0.0], [200.0, 0.0]]);
        let (a, _ra) = hub.attach("a");
        let (b, mut rb) = hub.attach("b");
        let (c, _rc) = hub.attach("c");
        hub.listen(b, Some(sf7()));
        hub.transmit(a, &sf7(), &[1; 50]);
        hub.transmit(c, &sf7(), &[2; 50]);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(
            rb.try_recv().is_err(),
            "equal power, overlapping: both lost"
        );
    }
}
