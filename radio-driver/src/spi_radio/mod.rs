//! The driver shared by the radio chips the host drives itself over SPI: the SX126x
//! ([`crate::sx126x`]) and the SX127x ([`crate::sx127x`]).
//!
//! The two families differ in how they are spoken to (a command set against a register
//! file), not in what the driver does with them. So each family implements
//! `Transceiver`, the few chip operations the driver needs, and this module owns the rest
//! once: the [`SpiRadio`] handle, the request queue, receiving, listen before talk, the
//! transmission with its timeout, and recovery by reset.
//!
//! **Threading.** The embedded-hal-async traits promise no `Send` futures, so the driver task
//! runs on its own thread with a current-thread tokio runtime; the [`SpiRadio`] handle is an
//! ordinary `Send + Sync` [`Radio`]. SPI transfers on spidev are blocking ioctls of a few
//! hundred microseconds, which that thread can afford.
//!
//! **Receiving.** The chip stays in continuous RX whenever it is not sending. Packets whose
//! CRC or header failed are dropped and counted ([`SpiRadioStats::crc_errors`]). A packet
//! that ended while the driver was about to send (the chip is put in standby first) is
//! delivered, not lost.
//!
//! **Listen before talk.** Before each transmission the driver runs channel activity
//! detection (CAD). While the channel is busy it goes back to receiving (the busy channel is
//! most likely a frame for us) until that packet has ended or for at most the airtime of a
//! 255-byte frame (capped at 2 s), then keeps receiving for a random time between half and
//! one and a half times the airtime of a 64-byte frame (at least 20 ms, at most 2 s), so that
//! stations that waited for the same packet do not all start together, and looks again.
//! After [`LBT_TRIES`] busy looks it sends anyway, as the E22's and RNode's
//! listen-before-talk do: a bounded hold, never a dropped frame, since the mesh above
//! tolerates a collision better than a silent loss. Deferrals are counted
//! ([`SpiRadioStats::cad_busy`]).
//!
//! **Failures.** A TX without TxDone within the frame's airtime plus margin (capped by
//! [`DriverConfig::tx_timeout`]) fails that send with [`RadioError::Timeout`], as does a CAD
//! without CadDone. Any failure of the chip (SPI error, a read-back that does not match, a
//! missing IRQ) puts the driver in [`RadioState::Reconnecting`]: it pulses NRESET,
//! initialises the chip again and re-applies the modulation, with backoff, up to
//! [`DriverConfig::max_reconnect_attempts`]. Sends wait meanwhile (failed after
//! [`DriverConfig::queue_timeout`]); a send interrupted before the chip took the frame is
//! retried after the reset, at most [`MAX_ATTEMPTS`] times.
//!
//! **Airtime and usable payload per frame.** One lorabridge frame is one LoRa packet of up to
//! **255 B** (the packet length is one byte on both families), sent as configured: explicit
//! header, CRC on, no added bytes, so the duty-cycle ledger charges
//! [`Modulation::time_on_air`] (the chips' `DriverFacts::on_air` is plain). A 255 B frame at
//! EU868 (869.525 MHz, CR 4/5, preamble 8) takes **399.6 ms** at SF7/125 kHz and
//! **9.019 s** at SF12/125 kHz (low-data-rate optimisation on).
//!
//! **Memory.** Bounded: at most [`DriverConfig::queue_capacity`] requests in the channel and
//! as many in the driver's queue, and [`DriverConfig::rx_capacity`] received frames of at
//! most 255 B (more are dropped and counted). The families' bus layers hold one exchange
//! buffer each.

mod task;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lorabridge_hardware::Modulation;
use serde::Serialize;
use tokio::sync::{Mutex, mpsc, oneshot, watch};

use crate::requests::{MAX_ATTEMPTS, Requests};
use crate::{DriverConfig, ModuleKind, Radio, RadioError, RadioFuture, RadioState, RxFrame};

/// Busy channel looks before a frame is sent anyway.
pub const LBT_TRIES: u32 = 5;
/// The largest frame: the chips' packet length is one byte.
pub const MAX_PAYLOAD: usize = 255;

/// The chip operations the driver is built from; each family implements them in its own
/// command or register language. Every method may fail with any [`RadioError`], which makes
/// the driver reset the chip.
pub(crate) trait Transceiver {
    /// The family's name in logs and errors, e.g. "SX126x".
    const NAME: &'static str;
    /// The GPIO line that signals its IRQs, for timeout messages, e.g. "DIO1".
    const IRQ_LINE: &'static str;

    /// Whether the board's settings ask for channel activity detection before each send.
    fn listens_before_talk(&self) -> bool;
    /// Resets and initialises the chip, leaving it in standby with no modulation.
    async fn init(&mut self) -> Result<(), RadioError>;
    /// Applies `m` to the chip in standby, checks that it took it, and starts receiving.
    async fn apply(&mut self, m: &Modulation) -> Result<(), RadioError>;
    async fn standby(&mut self) -> Result<(), RadioError>;
    /// Continuous reception with `m`.
    async fn receive(&mut self, m: &Modulation) -> Result<(), RadioError>;
    /// Waits for the IRQ line. Cancel-safe: it only watches a line.
    async fn wait_irq(&mut self) -> Result<(), RadioError>;
    /// Reads and clears the pending IRQs, reading a received packet out of the chip.
    async fn take_irqs(&mut self) -> Result<Irqs, RadioError>;
    /// Starts one channel activity detection from standby; says how long it lasts.
    async fn start_cad(&mut self, m: &Modulation) -> Result<Duration, RadioError>;
    /// Loads `frame` and starts sending it from standby; the chip sets no timeout of its own.
    async fn start_tx(&mut self, m: &Modulation, frame: &[u8]) -> Result<(), RadioError>;
    /// Puts the chip to sleep; the next use resets it.
    async fn sleep(&mut self) -> Result<(), RadioError>;
}

/// What the chip's IRQ flags said.
#[derive(Debug, Default)]
pub(crate) struct Irqs {
    /// A packet ended: received, or its CRC or header failed.
    pub packet_ended: bool,
    /// The packet that ended, if its CRC and header checked out.
    pub received: Option<RxFrame>,
    /// A CAD ended: whether it detected a preamble.
    pub cad: Option<bool>,
    pub tx_done: bool,
    /// The chip's own TX timeout fired (the SX126x has one).
    pub tx_timeout: bool,
}

/// Says whether a modulation is one the chip can be set to, before it is queued.
type Check = Box<dyn Fn(&Modulation) -> Result<(), RadioError> + Send + Sync>;

/// A snapshot of the driver's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SpiRadioStats {
    pub rx_frames: u64,
    /// Frames dropped because the receive queue was full.
    pub rx_dropped: u64,
    /// Packets dropped because their CRC or header failed.
    pub crc_errors: u64,
    pub tx_frames: u64,
    /// Times CAD found the channel busy before a send.
    pub cad_busy: u64,
    /// Successful chip re-initialisations after a failure.
    pub reconnects: u64,
}

#[derive(Default)]
struct Counters {
    rx_frames: AtomicU64,
    rx_dropped: AtomicU64,
    crc_errors: AtomicU64,
    tx_frames: AtomicU64,
    cad_busy: AtomicU64,
    reconnects: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A radio chip on SPI, driven by a task on its own thread; opened by [`crate::sx126x::open`]
/// or [`crate::sx127x::open`].
///
/// Dropping the handle stops the task (the chip is left as it is); [`Radio::shutdown`] first
/// puts the chip to sleep.
pub struct SpiRadio {
    kind: ModuleKind,
    check: Check,
    requests: Requests,
    frames: Mutex<mpsc::Receiver<RxFrame>>,
    state: watch::Receiver<RadioState>,
    counters: Arc<Counters>,
}

impl SpiRadio {
    /// Initialises `chip`, then starts the driver. Fails if the first initialisation fails,
    /// so a missing or miswired radio is reported at once; after that, the driver recovers by
    /// itself.
    pub(crate) async fn open<T>(
        kind: ModuleKind,
        chip: T,
        check: Check,
        cfg: DriverConfig,
    ) -> Result<Self, RadioError>
    where
        T: Transceiver + Send + 'static,
    {
        let counters = Arc::new(Counters::default());
        let (frame_tx, frame_rx) = mpsc::channel(cfg.rx_capacity.max(1));
        let (state_tx, state_rx) = watch::channel(RadioState::Busy);
        let (requests, req_rx) = Requests::channel(
            cfg.queue_capacity,
            state_rx.clone(),
            "re-initialising the chip",
        );
        let (up_tx, up_rx) = oneshot::channel();
        let task = task::Task::new(chip, cfg, req_rx, state_tx, frame_tx, counters.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| RadioError::Failed(format!("driver runtime: {e}")))?;
        std::thread::Builder::new()
            .name(T::NAME.to_lowercase())
            .spawn(move || runtime.block_on(task.start(up_tx)))
            .map_err(|e| RadioError::Failed(format!("driver thread: {e}")))?;
        up_rx
            .await
            .unwrap_or_else(|_| Err(RadioError::Failed("driver thread ended".into())))?;
        Ok(Self {
            kind,
            check,
            requests,
            frames: Mutex::new(frame_rx),
            state: state_rx,
            counters,
        })
    }

    pub fn stats(&self) -> SpiRadioStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SpiRadioStats {
            rx_frames: get(&c.rx_frames),
            rx_dropped: get(&c.rx_dropped),
            crc_errors: get(&c.crc_errors),
            tx_frames: get(&c.tx_frames),
            cad_busy: get(&c.cad_busy),
            reconnects: get(&c.reconnects),
        }
    }

    /// A watch on the state, for callers that wait for a change.
    pub fn watch_state(&self) -> watch::Receiver<RadioState> {
        self.state.clone()
    }
}

impl Radio for SpiRadio {
    fn kind(&self) -> ModuleKind {
        self.kind
    }

    fn mtu(&self) -> usize {
        MAX_PAYLOAD
    }

    fn state(&self) -> RadioState {
        *self.state.borrow()
    }

    fn configure<'a>(
        &'a self,
        modulation: &'a Modulation,
    ) -> RadioFuture<'a, Result<(), RadioError>> {
        Box::pin(async move {
            (self.check)(modulation)?;
            self.requests.configure(modulation).await
        })
    }

    fn send<'a>(&'a self, frame: &'a [u8]) -> RadioFuture<'a, Result<(), RadioError>> {
        Box::pin(self.requests.send(frame, MAX_PAYLOAD))
    }

    fn recv(&self) -> RadioFuture<'_, Option<RxFrame>> {
        Box::pin(async move { self.frames.lock().await.recv().await })
    }

    fn shutdown(&self) -> RadioFuture<'_, Result<(), RadioError>> {
        Box::pin(self.requests.shutdown())
    }
}

/// An SPI transfer that failed, as both chip families report it.
pub(crate) fn spi_failed(what: &str, e: impl std::fmt::Debug) -> RadioError {
    RadioError::Port {
        path: "SPI".into(),
        reason: format!("{what}: {e:?}"),
    }
}

/// A GPIO line (NRESET, BUSY, an IRQ line, an antenna switch) that failed.
pub(crate) fn gpio_failed(line: &str, e: impl std::fmt::Debug) -> RadioError {
    RadioError::Gpio {
        line: line.into(),
        reason: format!("{e:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers in the module documentation's airtime paragraph.
    #[test]
    fn the_airtime_in_the_docs_is_computed() {
        let eu = Modulation::eu868_default();
        let sf7 = Modulation {
            spreading_factor: 7,
            ..eu
        };
        let sf12 = Modulation {
            spreading_factor: 12,
            ..eu
        };
        assert_eq!((eu.coding_rate, eu.preamble_symbols), (5, 8));
        let doc = include_str!("mod.rs");
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let sf7_text = format!("**{:.1} ms** at SF7/125 kHz", ms(sf7.time_on_air(255)));
        let sf12_text = format!(
            "**{:.3} s** at SF12/125 kHz",
            sf12.time_on_air(255).as_secs_f64()
        );
        assert!(doc.contains(&sf7_text), "{sf7_text}");
        assert!(doc.contains(&sf12_text), "{sf12_text}");
    }
}
