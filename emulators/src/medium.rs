//! A shared radio medium for the modem emulators, in real time.
//!
//! This is deliberately simple physics: a frame reaches every other attached station that is
//! listening on the same channel and modulation (frequency, SF, bandwidth, coding rate and
//! sync word; preamble length is ignored because RNode firmware picks its own), with a fixed
//! RSSI/SNR per link, after its time on air. No collisions, no path loss, no half-duplex
//! beyond "a transmitting emulator is not listening". The simulator's virtual-time medium plugs
//! in through the [`Medium`] trait instead of this hub.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lorabridge_hardware::Modulation;
use tokio::sync::mpsc;

/// Identifies an attached station.
pub type StationId = u32;

/// A frame as a receiver hears it.
#[derive(Clone, Debug, PartialEq)]
pub struct Reception {
    /// The bytes that were on air.
    pub payload: Vec<u8>,
    /// What the receiver measured.
    pub rssi_dbm: i16,
    pub snr_db: f32,
    /// The modulation it was sent with.
    pub modulation: Modulation,
}

/// Frames a station holds before the emulator reads them; more are dropped (a module's
/// receive buffer overflowing).
pub const STATION_QUEUE: usize = 64;

/// The seam between emulators and whatever decides who hears what.
pub trait Medium: Send + Sync + 'static {
    /// Attaches a station; frames it hears arrive on the returned receiver.
    fn attach(&self, name: &str) -> (StationId, mpsc::Receiver<Reception>);
    /// Detaches a station (its receiver closes).
    fn detach(&self, id: StationId);
    /// Sets what the station listens on; `None` = not listening (off, transmitting, unplugged).
    fn listen(&self, id: StationId, modulation: Option<Modulation>);
    /// Puts a frame on air; returns its time on air (when the sender's TX completes).
    fn transmit(&self, from: StationId, modulation: &Modulation, payload: &[u8]) -> Duration;
    /// Whether the station, listening with `modulation`, would hear another station's frame
    /// on air right now: what a chip's channel activity detection (CAD) reports, and so what
    /// listen-before-talk sees.
    fn channel_busy(&self, id: StationId, modulation: &Modulation) -> bool;
}

/// The link quality between two stations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkQuality {
    pub rssi_dbm: i16,
    pub snr_db: f32,
}

impl Default for LinkQuality {
    fn default() -> Self {
        Self {
            rssi_dbm: -60,
            snr_db: 9.5,
        }
    }
}

struct Station {
    name: String,
    tx: mpsc::Sender<Reception>,
    listening: Option<Modulation>,
}

#[derive(Default)]
struct HubInner {
    next_id: StationId,
    stations: HashMap<StationId, Station>,
    default_quality: LinkQuality,
    quality: HashMap<(StationId, StationId), LinkQuality>,
    /// Frames on air: sender, modulation, and a number to remove them by when they end.
    on_air: Vec<(u64, StationId, Modulation)>,
    next_frame: u64,
}

/// An in-process broadcast hub: everyone in range of everyone.
///
/// Memory: per station one bounded queue of [`STATION_QUEUE`] frames; one timer task per
/// frame in flight.
#[derive(Clone, Default)]
pub struct Hub {
    inner: Arc<Mutex<HubInner>>,
}

/// Whether two modulations can hear each other.
pub fn compatible(a: &Modulation, b: &Modulation) -> bool {
    a.frequency_hz == b.frequency_hz
        && a.spreading_factor == b.spreading_factor
        && a.bandwidth_hz == b.bandwidth_hz
        && a.coding_rate == b.coding_rate
        && a.sync_word == b.sync_word
}

/// Time on air, with a short fallback for settings the formula does not cover (an emulator
/// only transmits with settings its module accepted, so this is a guard, not a model).
pub fn airtime(m: &Modulation, len: usize) -> Duration {
    match m.validate() {
        Ok(()) => m.time_on_air(len),
        Err(_) => Duration::from_millis(50),
    }
}

impl Hub {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the RSSI/SNR every receiver measures unless a link says otherwise.
    pub fn set_default_quality(&self, q: LinkQuality) {
        self.lock().default_quality = q;
    }

    /// Sets the RSSI/SNR `to` measures when `from` transmits.
    pub fn set_quality(&self, from: StationId, to: StationId, q: LinkQuality) {
        self.lock().quality.insert((from, to), q);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HubInner> {
        // A panic elsewhere while holding the lock leaves consistent data (plain inserts).
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Names of the attached stations, for diagnostics.
    pub fn stations(&self) -> Vec<String> {
        self.lock()
            .stations
            .values()
            .map(|s| s.name.clone())
            .collect()
    }
}

impl Medium for Hub {
    fn attach(&self, name: &str) -> (StationId, mpsc::Receiver<Reception>) {
        let (tx, rx) = mpsc::channel(STATION_QUEUE);
        let mut inner = self.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        inner.stations.insert(
            id,
            Station {
                name: name.to_string(),
                tx,
                listening: None,
            },
        );
        (id, rx)
    }

    fn detach(&self, id: StationId) {
        self.lock().stations.remove(&id);
    }

    fn listen(&self, id: StationId, modulation: Option<Modulation>) {
        if let Some(s) = self.lock().stations.get_mut(&id) {
            s.listening = modulation;
        }
    }

    fn transmit(&self, from: StationId, modulation: &Modulation, payload: &[u8]) -> Duration {
        let toa = airtime(modulation, payload.len());
        let hub = self.clone();
        let modulation = *modulation;
        let payload = payload.to_vec();
        let frame = {
            let mut inner = self.lock();
            let frame = inner.next_frame;
            inner.next_frame += 1;
            inner.on_air.push((frame, from, modulation));
            frame
        };
        tokio::spawn(async move {
            tokio::time::sleep(toa).await;
            // Receivers are chosen when the frame ends: a station must be listening then.
            let mut inner = hub.lock();
            inner.on_air.retain(|(f, _, _)| *f != frame);
            for (id, st) in &inner.stations {
                if *id == from || !st.listening.is_some_and(|l| compatible(&l, &modulation)) {
                    continue;
                }
                let q = inner
                    .quality
                    .get(&(from, *id))
                    .copied()
                    .unwrap_or(inner.default_quality);
                let rx = Reception {
                    payload: payload.clone(),
                    rssi_dbm: q.rssi_dbm,
                    snr_db: q.snr_db,
                    modulation,
                };
                let _ = st.tx.try_send(rx);
            }
        });
        toa
    }

    fn channel_busy(&self, id: StationId, modulation: &Modulation) -> bool {
        self.lock()
            .on_air
            .iter()
            .any(|(_, from, m)| *from != id && compatible(m, modulation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m() -> Modulation {
        Modulation {
            spreading_factor: 7,
            ..Modulation::eu868_default()
        }
    }

    #[tokio::test]
    async fn delivers_to_matching_listeners_only() {
        let hub = Hub::new();
        let (a, _ra) = hub.attach("a");
        let (b, mut rb) = hub.attach("b");
        let (c, mut rc) = hub.attach("c");
        hub.listen(b, Some(m()));
        hub.listen(
            c,
            Some(Modulation {
                spreading_factor: 9,
                ..m()
            }),
        );
        hub.set_quality(
            a,
            b,
            LinkQuality {
                rssi_dbm: -100,
                snr_db: -3.25,
            },
        );
        hub.transmit(a, &m(), b"hi");
        let got = tokio::time::timeout(Duration::from_secs(5), rb.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (got.payload.as_slice(), got.rssi_dbm, got.snr_db),
            (&b"hi"[..], -100, -3.25)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(rc.try_recv().is_err());
    }

    #[tokio::test]
    async fn the_channel_is_busy_for_others_while_a_frame_is_on_air() {
        let hub = Hub::new();
        let (a, _ra) = hub.attach("a");
        let (b, _rb) = hub.attach("b");
        let sf9 = Modulation {
            spreading_factor: 9,
            ..m()
        };
        assert!(!hub.channel_busy(b, &m()));
        let toa = hub.transmit(a, &m(), &[0; 100]);
        assert!(hub.channel_busy(b, &m()));
        assert!(!hub.channel_busy(b, &sf9), "another SF is not detected");
        assert!(!hub.channel_busy(a, &m()), "a sender does not sense itself");
        tokio::time::sleep(toa + Duration::from_millis(50)).await;
        assert!(!hub.channel_busy(b, &m()));
    }
}
