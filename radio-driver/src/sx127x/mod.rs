//! SX1276/77/78/79 (SX127x family) radios on SPI: the RFM95W of the Adafruit LoRa Radio
//! Bonnet, the SX1276 of the Dragino LoRa/GPS HAT.
//!
//! Like the SX126x ([`crate::sx126x`]) there is no firmware between the host and the radio,
//! but the SX127x is a register file, not a command set: the driver writes RegOpMode,
//! RegFrf, RegModemConfig1..3, RegPreamble, RegSyncWord, RegPaConfig/RegPaDac and the FIFO
//! pointers itself ([`registers`]), over SPI with DIO0 and NRESET on GPIO lines ([`chip`]).
//! Every LoRa setting is the host's, so an SX1276 bridge hears an SX1262 bridge and a RAK3172
//! (RUI3) bridge set to the same [`Modulation`]: RegSyncWord takes the one-byte sync word
//! as it is (0x12 private, 0x34 public), which the SX126x spreads over two bytes.
//!
//! **Threading** is the SX126x driver's: the embedded-hal-async traits promise no `Send`
//! futures, so the driver task runs on its own thread with a current-thread tokio runtime,
//! and [`Sx127xRadio`] is an ordinary `Send + Sync` [`Radio`].
//!
//! **Receiving.** The chip stays in RXCONTINUOUS whenever it is not sending, with DIO0
//! mapped to RxDone. RxDone also rises for a packet whose CRC failed (PayloadCrcError set
//! with it): such packets are dropped and counted ([`Sx127xStats::crc_errors`]). RSSI and SNR
//! come from RegPktRssiValue/RegPktSnrValue with the HF (−157) or LF (−164) port's offset.
//!
//! **Listen before talk** is the SX126x driver's policy ([`crate::sx126x`]), with the
//! SX127x's CAD mode (DIO0 mapped to CadDone, CadDetected in RegIrqFlags): up to
//! [`LBT_TRIES`] looks, receiving the busy channel's packet to its end and a random back-off
//! between looks, then the frame is sent anyway. Deferrals are counted
//! ([`Sx127xStats::cad_busy`]).
//!
//! **Failures.** The chip acknowledges nothing, so the driver reads RegVersion (0x12) after
//! every reset and RegOpMode back after every mode change: a lost write, a garbled bus or a
//! missing chip is a [`RadioError::Protocol`]. A TX without TxDone on DIO0 within the frame's
//! airtime plus margin (capped by [`DriverConfig::tx_timeout`]) fails with
//! [`RadioError::Timeout`]. Any failure puts the driver in [`RadioState::Reconnecting`]: it
//! pulses NRESET, initialises the chip again and re-applies the modulation with backoff, up
//! to [`DriverConfig::max_reconnect_attempts`]; sends wait meanwhile (failed after
//! [`DriverConfig::queue_timeout`]) and one interrupted before the chip took it is retried.
//!
//! **Memory.** Bounded: at most [`DriverConfig::queue_capacity`] requests in the channel and
//! as many in the driver's queue, [`DriverConfig::rx_capacity`] received frames of at most
//! 255 B (more are dropped and counted), and one exchange buffer of 257 B.
//!
//! # Airtime and usable payload per frame
//!
//! One lorabridge frame is one LoRa packet of up to **255 B**, sent as configured: explicit
//! header, CRC on, no added bytes, so the duty-cycle ledger charges
//! [`Modulation::time_on_air`] ([`ModuleKind::on_air`] is plain). A 255 B frame at EU868
//! (869.525 MHz, CR 4/5, preamble 8) takes **399.6 ms** at SF7/125 kHz and
//! **9.019 s** at SF12/125 kHz (low-data-rate optimisation on).
//!
//! # What it cannot do
//!
//! SF6 (the SX127x needs implicit header mode for it, which lorabridge's frames do not use;
//! it is refused, [`check`]) and SF5 (the SX126x's only); FSK/OOK; frames over 255 B; more
//! than +20 dBm, or the RFO pin (only PA_BOOST is wired on the boards we know); the
//! datasheet's 500 kHz sensitivity errata registers are not applied; tell an unplugged HAT
//! from a dead one; frequency hopping.

pub mod chip;
pub mod linux;
pub mod registers;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use embedded_hal::digital::OutputPin;
use embedded_hal_async::digital::Wait;
use embedded_hal_async::spi::SpiDevice;
use lorabridge_hardware::Modulation;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, mpsc, oneshot, watch};
use tokio::time::Instant;

pub use chip::{Bus, Chip};
pub use registers::MAX_PAYLOAD;
use registers::{self as reg, Dio0, Mode, irq};

use crate::{DriverConfig, ModuleKind, Radio, RadioError, RadioFuture, RadioState, RxFrame};

/// Busy channel looks before a frame is sent anyway (the SX126x driver's number).
pub const LBT_TRIES: u32 = crate::sx126x::LBT_TRIES;
/// A send is retried after a chip reset at most this many times.
const MAX_ATTEMPTS: u32 = 3;
/// An SX127x CAD lasts about two symbols (datasheet §4.1.6); the wait allows four.
const CAD_SYMBOLS: u32 = 4;

/// Settings of the board around the chip that no [`Modulation`] field carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sx127xSettings {
    /// Channel activity detection before each transmission (see the module docs).
    pub listen_before_talk: bool,
}

impl Default for Sx127xSettings {
    fn default() -> Self {
        Self {
            listen_before_talk: true,
        }
    }
}

/// A snapshot of the driver's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Sx127xStats {
    pub rx_frames: u64,
    /// Frames dropped because the receive queue was full.
    pub rx_dropped: u64,
    /// Packets dropped because their payload CRC failed.
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

enum Request {
    Configure(Modulation, oneshot::Sender<Result<(), RadioError>>),
    Send(Vec<u8>, oneshot::Sender<Result<(), RadioError>>),
    Shutdown(oneshot::Sender<Result<(), RadioError>>),
}

impl Request {
    fn answer(self, r: Result<(), RadioError>) {
        let tx = match self {
            Request::Configure(_, tx) | Request::Send(_, tx) | Request::Shutdown(tx) => tx,
        };
        let _ = tx.send(r);
    }
}

/// An SX127x on SPI, driven by a task on its own thread.
///
/// Dropping the handle stops the task (the chip is left as it is); [`Radio::shutdown`] first
/// puts the chip to sleep.
pub struct Sx127xRadio {
    requests: mpsc::Sender<Request>,
    frames: Mutex<mpsc::Receiver<RxFrame>>,
    state: watch::Receiver<RadioState>,
    counters: Arc<Counters>,
    queue_capacity: usize,
}

impl Sx127xRadio {
    /// Resets and initialises the chip on `bus`, then starts the driver. Fails if the first
    /// initialisation fails (RegVersion is not 0x12, the chip does not take LoRa mode), so a
    /// missing or miswired radio is reported at once; after that, the driver recovers by
    /// itself.
    pub async fn open<S, D, O>(
        bus: Bus<S, D, O>,
        settings: Sx127xSettings,
        cfg: DriverConfig,
    ) -> Result<Self, RadioError>
    where
        S: SpiDevice + Send + 'static,
        D: Wait + Send + 'static,
        O: OutputPin + Send + 'static,
    {
        let counters = Arc::new(Counters::default());
        let (frame_tx, frame_rx) = mpsc::channel(cfg.rx_capacity.max(1));
        let (req_tx, req_rx) = mpsc::channel(cfg.queue_capacity.max(1));
        let (state_tx, state_rx) = watch::channel(RadioState::Busy);
        let (up_tx, up_rx) = oneshot::channel();
        let queue_capacity = cfg.queue_capacity;
        let task_counters = counters.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| RadioError::Failed(format!("driver runtime: {e}")))?;
        std::thread::Builder::new()
            .name("sx127x".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let mut task = Task {
                        chip: Chip::new(bus),
                        settings,
                        cfg,
                        requests: req_rx,
                        state: state_tx,
                        frames: frame_tx,
                        counters: task_counters,
                        modulation: None,
                        queue: VecDeque::new(),
                        rng: seed(),
                    };
                    let first = task.bring_up().await;
                    let ok = first.is_ok();
                    let _ = up_tx.send(first);
                    if ok {
                        task.run().await;
                    }
                })
            })
            .map_err(|e| RadioError::Failed(format!("driver thread: {e}")))?;
        up_rx
            .await
            .unwrap_or_else(|_| Err(RadioError::Failed("driver thread ended".into())))?;
        Ok(Self {
            requests: req_tx,
            frames: Mutex::new(frame_rx),
            state: state_rx,
            counters,
            queue_capacity,
        })
    }

    pub fn stats(&self) -> Sx127xStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Sx127xStats {
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

    async fn request(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<(), RadioError>>) -> Request,
    ) -> Result<(), RadioError> {
        let (tx, rx) = oneshot::channel();
        match self.requests.try_send(make(tx)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                return Err(RadioError::QueueFull {
                    capacity: self.queue_capacity,
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(self.closed_error()),
        }
        rx.await.unwrap_or_else(|_| Err(self.closed_error()))
    }

    fn closed_error(&self) -> RadioError {
        match *self.state.borrow() {
            RadioState::Failed => RadioError::Failed("gave up re-initialising the chip".into()),
            _ => RadioError::Closed,
        }
    }
}

impl Radio for Sx127xRadio {
    fn kind(&self) -> ModuleKind {
        ModuleKind::Sx127x
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
            check(modulation)?;
            self.request(|tx| Request::Configure(*modulation, tx)).await
        })
    }

    fn send<'a>(&'a self, frame: &'a [u8]) -> RadioFuture<'a, Result<(), RadioError>> {
        Box::pin(async move {
            if frame.len() > MAX_PAYLOAD {
                return Err(RadioError::FrameTooLarge {
                    size: frame.len(),
                    mtu: MAX_PAYLOAD,
                });
            }
            if frame.is_empty() {
                return Err(RadioError::EmptyFrame);
            }
            self.request(|tx| Request::Send(frame.to_vec(), tx)).await
        })
    }

    fn recv(&self) -> RadioFuture<'_, Option<RxFrame>> {
        Box::pin(async move { self.frames.lock().await.recv().await })
    }

    fn shutdown(&self) -> RadioFuture<'_, Result<(), RadioError>> {
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            if self.requests.send(Request::Shutdown(tx)).await.is_err() {
                return Ok(());
            }
            rx.await.unwrap_or(Ok(()))
        })
    }
}

/// Refuses what the chip cannot be set to, before anything is sent to it; SF6 with a reason
/// of its own, since the chip has it but not for lorabridge's explicit-header frames.
pub fn check(m: &Modulation) -> Result<(), RadioError> {
    let unsupported = |reason: String| RadioError::Unsupported {
        module: ModuleKind::Sx127x.module_name(),
        reason,
    };
    if m.spreading_factor == 6 {
        return Err(unsupported(
            "spreading_factor 6 needs implicit header mode on the SX127x, and lorabridge \
             sends explicit headers; use SF7..=12 (or an SX126x for SF5/6)"
                .into(),
        ));
    }
    ModuleKind::Sx127x
        .check(m)
        .map_err(|e| unsupported(e.to_string()))?;
    m.validate().map_err(|e| unsupported(e.to_string()))?;
    reg::pa_settings(m.tx_power_dbm).ok_or_else(|| {
        unsupported(format!(
            "tx_power_dbm {} is outside PA_BOOST's {}..={} dBm",
            m.tx_power_dbm,
            reg::POWER_DBM.start(),
            reg::POWER_DBM.end()
        ))
    })?;
    reg::modem_config(m)
        .map(drop)
        .ok_or_else(|| unsupported("no SX127x code for this SF, bandwidth or coding rate".into()))
}

/// A request waiting its turn: when it arrived (for the queue timeout) and how many chip
/// resets it has been through.
struct Queued {
    req: Request,
    since: Instant,
    attempts: u32,
}

/// Why serving stopped.
enum Stop {
    Closed,
    /// The chip failed; re-initialise it.
    Chip(RadioError),
}

struct Task<S, D, O> {
    chip: Chip<S, D, O>,
    settings: Sx127xSettings,
    cfg: DriverConfig,
    requests: mpsc::Receiver<Request>,
    state: watch::Sender<RadioState>,
    frames: mpsc::Sender<RxFrame>,
    counters: Arc<Counters>,
    /// The last modulation configured; re-applied after every reset.
    modulation: Option<Modulation>,
    /// Requests taken off the channel, not answered yet; at most `queue_capacity`.
    queue: VecDeque<Queued>,
    rng: u64,
}

/// A random seed from the standard library's per-process hash keys.
fn seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now()) | 1
}

impl<S, D, O> Task<S, D, O>
where
    S: SpiDevice,
    D: Wait,
    O: OutputPin,
{
    async fn run(mut self) {
        let end = loop {
            match self.serve().await {
                Stop::Closed => break (RadioState::Closed, RadioError::Closed),
                Stop::Chip(e) => {
                    tracing::warn!(error = %e, "SX127x failed; resetting it");
                    if let Err(reason) = self.recover().await {
                        break reason;
                    }
                }
            }
        };
        let (state, err) = end;
        self.state.send_replace(state);
        for q in self.queue.drain(..) {
            q.req.answer(Err(err.clone()));
        }
        self.requests.close();
        while let Ok(req) = self.requests.try_recv() {
            req.answer(Err(err.clone()));
        }
    }

    fn enqueue(&mut self, req: Request) {
        if self.queue.len() >= self.cfg.queue_capacity.max(1) {
            req.answer(Err(RadioError::QueueFull {
                capacity: self.cfg.queue_capacity,
            }));
            return;
        }
        self.queue.push_back(Queued {
            req,
            since: Instant::now(),
            attempts: 0,
        });
    }

    /// Serves requests and receptions until the chip fails or the driver is closed.
    async fn serve(&mut self) -> Stop {
        loop {
            let Some(q) = self.queue.pop_front() else {
                self.state.send_replace(RadioState::Ready);
                tokio::select! {
                    req = self.requests.recv() => match req {
                        Some(r) => self.enqueue(r),
                        None => return Stop::Closed,
                    },
                    r = self.chip.wait_irq() => {
                        if let Err(e) = r {
                            return Stop::Chip(e);
                        }
                        if let Err(e) = self.service_irq().await.map(drop) {
                            return Stop::Chip(e);
                        }
                    }
                }
                continue;
            };
            self.state.send_replace(RadioState::Busy);
            match q.req {
                Request::Shutdown(tx) => {
                    let _ = self.chip.set_mode(Mode::Sleep, None).await;
                    self.state.send_replace(RadioState::Closed);
                    for q in self.queue.drain(..) {
                        q.req.answer(Err(RadioError::Closed));
                    }
                    let _ = tx.send(Ok(()));
                    return Stop::Closed;
                }
                Request::Configure(m, tx) => match self.configure(&m).await {
                    Ok(()) => {
                        self.modulation = Some(m);
                        let _ = tx.send(Ok(()));
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.clone()));
                        return Stop::Chip(e);
                    }
                },
                Request::Send(frame, tx) => {
                    let Some(m) = self.modulation else {
                        let _ = tx.send(Err(RadioError::NotConfigured));
                        continue;
                    };
                    match self.transmit(&m, &frame).await {
                        Ok(()) => {
                            let _ = tx.send(Ok(()));
                        }
                        Err(TxError::Lost(e)) => {
                            let _ = tx.send(Err(e.clone()));
                            return Stop::Chip(e);
                        }
                        Err(TxError::Before(e)) => {
                            let attempts = q.attempts + 1;
                            if attempts >= MAX_ATTEMPTS {
                                let _ = tx.send(Err(e.clone()));
                            } else {
                                self.queue.push_front(Queued {
                                    req: Request::Send(frame, tx),
                                    since: q.since,
                                    attempts,
                                });
                            }
                            return Stop::Chip(e);
                        }
                    }
                }
            }
        }
    }

    /// Resets and re-initialises the chip with backoff until it answers, taking requests
    /// meanwhile. `Err` carries the final state when the driver ends instead.
    async fn recover(&mut self) -> Result<(), (RadioState, RadioError)> {
        self.state.send_replace(RadioState::Reconnecting);
        let mut delay = self.cfg.backoff_min;
        let mut failures = 0u32;
        loop {
            let wake = Instant::now() + delay;
            loop {
                self.expire_queue();
                tokio::select! {
                    _ = tokio::time::sleep_until(wake) => break,
                    req = self.requests.recv() => match req {
                        Some(Request::Shutdown(tx)) => {
                            for q in self.queue.drain(..) {
                                q.req.answer(Err(RadioError::Closed));
                            }
                            self.state.send_replace(RadioState::Closed);
                            let _ = tx.send(Ok(()));
                            return Err((RadioState::Closed, RadioError::Closed));
                        }
                        Some(r) => self.enqueue(r),
                        None => return Err((RadioState::Closed, RadioError::Closed)),
                    },
                }
            }
            match self.bring_up().await {
                Ok(()) => {
                    bump(&self.counters.reconnects);
                    tracing::info!("SX127x back after a reset");
                    return Ok(());
                }
                Err(e) => {
                    failures += 1;
                    tracing::debug!(error = %e, failures, "SX127x still not answering");
                    if self
                        .cfg
                        .max_reconnect_attempts
                        .is_some_and(|max| failures >= max)
                    {
                        let reason = format!("the SX127x did not come back: {e}");
                        return Err((RadioState::Failed, RadioError::Failed(reason)));
                    }
                    delay = (delay * 2).min(self.cfg.backoff_max);
                }
            }
        }
    }

    /// Fails sends that waited longer than the queue timeout.
    fn expire_queue(&mut self) {
        let timeout = self.cfg.queue_timeout;
        let (expired, kept): (VecDeque<_>, VecDeque<_>) = self
            .queue
            .drain(..)
            .partition(|q| matches!(q.req, Request::Send(..)) && q.since.elapsed() >= timeout);
        self.queue = kept;
        for q in expired {
            q.req.answer(Err(RadioError::Unavailable {
                waited: q.since.elapsed(),
                reason: "the SX127x is being reset".into(),
            }));
        }
    }

    /// Reset, LoRa mode (set in sleep, the only mode where the bit is writable), and the last
    /// modulation if there was one.
    async fn bring_up(&mut self) -> Result<(), RadioError> {
        self.chip.reset().await?;
        // After a reset the chip is in FSK standby: sleep first, then LoRa sleep, then
        // standby.
        self.chip.write(reg::REG_OP_MODE, 0x00).await?;
        self.chip.set_mode(Mode::Sleep, None).await?;
        self.chip.set_mode(Mode::Standby, None).await?;
        let c = &mut self.chip;
        c.write(reg::REG_FIFO_TX_BASE, 0x00).await?;
        c.write(reg::REG_FIFO_RX_BASE, 0x00).await?;
        c.write(reg::REG_IRQ_FLAGS_MASK, !irq::DRIVER).await?;
        c.write(reg::REG_IRQ_FLAGS, 0xFF).await?;
        match self.modulation {
            Some(m) => self.configure(&m).await,
            None => Ok(()),
        }
    }

    /// Applies `m` in standby and starts receiving with it; reads the modem configuration
    /// and sync word back, so that a modulation that did not reach the chip is an error, not
    /// a deaf radio.
    async fn configure(&mut self, m: &Modulation) -> Result<(), RadioError> {
        check(m)?;
        let [pa, dac, ocp] = reg::pa_settings(m.tx_power_dbm).expect("checked");
        let config = reg::modem_config(m).expect("checked");
        self.standby().await?;
        let c = &mut self.chip;
        c.set_frequency(m.frequency_hz);
        // The port bit of RegOpMode follows the frequency.
        c.set_mode(Mode::Standby, None).await?;
        let frf = reg::frequency_steps(m.frequency_hz).to_be_bytes();
        c.write_burst(reg::REG_FRF_MSB, &frf[1..]).await?;
        c.write(reg::REG_PA_CONFIG, pa).await?;
        c.write(reg::REG_PA_DAC, dac).await?;
        c.write(reg::REG_OCP, ocp).await?;
        c.write(reg::REG_LNA, reg::LNA_MAX_GAIN_BOOST).await?;
        c.write(reg::REG_MODEM_CONFIG1, config[0]).await?;
        c.write(reg::REG_MODEM_CONFIG2, config[1]).await?;
        c.write(reg::REG_MODEM_CONFIG3, config[2]).await?;
        c.write_burst(reg::REG_PREAMBLE_MSB, &m.preamble_symbols.to_be_bytes())
            .await?;
        c.write(reg::REG_MAX_PAYLOAD_LENGTH, MAX_PAYLOAD as u8)
            .await?;
        c.write(reg::REG_DETECT_OPTIMIZE, reg::DETECT_OPTIMIZE_SF7_12)
            .await?;
        c.write(
            reg::REG_DETECTION_THRESHOLD,
            reg::DETECTION_THRESHOLD_SF7_12,
        )
        .await?;
        c.write(reg::REG_SYNC_WORD, m.sync_word).await?;
        let back = c.read_burst(reg::REG_MODEM_CONFIG1, 2).await?.to_vec();
        let sync = c.read(reg::REG_SYNC_WORD).await?;
        if back != config[..2] || sync != m.sync_word {
            return Err(RadioError::Protocol(format!(
                "SX127x reads modem config {back:02X?} and sync word {sync:#04x} after writing \
                 {:02X?} and {:#04x}",
                &config[..2],
                m.sync_word
            )));
        }
        self.start_rx().await
    }

    /// Standby, delivering a frame that arrived just before.
    async fn standby(&mut self) -> Result<(), RadioError> {
        self.chip.set_mode(Mode::Standby, None).await?;
        self.service_irq().await.map(drop)
    }

    async fn start_rx(&mut self) -> Result<(), RadioError> {
        self.chip.write(reg::REG_FIFO_ADDR_PTR, 0x00).await?;
        self.chip
            .set_mode(Mode::RxContinuous, Some(Dio0::RxDone))
            .await
    }

    /// Reads and clears the IRQs; a received packet goes to the caller, a failed one is
    /// counted. Says whether a packet ended (received or failed).
    async fn service_irq(&mut self) -> Result<bool, RadioError> {
        let flags = self.chip.take_irq().await?;
        if flags & irq::RX_DONE == 0 {
            return Ok(false);
        }
        if flags & irq::PAYLOAD_CRC_ERROR != 0 {
            bump(&self.counters.crc_errors);
            return Ok(true);
        }
        let c = &mut self.chip;
        let len = usize::from(c.read(reg::REG_RX_NB_BYTES).await?);
        let start = c.read(reg::REG_FIFO_RX_CURRENT).await?;
        let status = c.read_burst(reg::REG_PKT_SNR, 2).await?;
        let (raw_snr, raw_rssi) = (status[0], status[1]);
        let frequency = self.modulation.map_or(0, |m| m.frequency_hz);
        c.write(reg::REG_FIFO_ADDR_PTR, start).await?;
        let payload = c.read_burst(reg::REG_FIFO, len).await?.to_vec();
        if payload.is_empty() {
            return Ok(true);
        }
        let frame = RxFrame {
            payload,
            rssi_dbm: Some(reg::packet_rssi(raw_rssi, raw_snr, frequency)),
            snr_db: Some(reg::packet_snr(raw_snr)),
        };
        // Counted before the caller can see it, so that the counter is never behind.
        match self.frames.try_reserve() {
            Ok(slot) => {
                bump(&self.counters.rx_frames);
                slot.send(frame);
            }
            Err(_) => bump(&self.counters.rx_dropped),
        }
        Ok(true)
    }

    /// Receives until `deadline`, or until a packet ends when `until_packet`.
    async fn listen_until(
        &mut self,
        deadline: Instant,
        until_packet: bool,
    ) -> Result<(), RadioError> {
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return Ok(()),
                r = self.chip.wait_irq() => {
                    r?;
                    if self.service_irq().await? && until_packet {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Waits for DIO0 and takes the IRQs until one of `want` is set, at most `timeout`.
    async fn irq_within(
        &mut self,
        want: u8,
        timeout: Duration,
        what: &str,
    ) -> Result<u8, RadioError> {
        let deadline = Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.chip.wait_irq()).await {
                Ok(r) => r?,
                Err(_) => {
                    return Err(RadioError::Timeout {
                        command: format!("{what} (no IRQ on DIO0)"),
                        timeout,
                    });
                }
            }
            let flags = self.chip.take_irq().await?;
            if flags & want != 0 {
                return Ok(flags);
            }
        }
    }

    /// One channel activity detection: whether a LoRa preamble of `m` is on air.
    async fn channel_busy(&mut self, m: &Modulation) -> Result<bool, RadioError> {
        self.standby().await?;
        self.chip.set_mode(Mode::Cad, Some(Dio0::CadDone)).await?;
        let flags = self
            .irq_within(
                irq::CAD_DONE,
                m.symbol_time() * CAD_SYMBOLS + self.cfg.command_timeout,
                "channel activity detection",
            )
            .await?;
        Ok(flags & irq::CAD_DETECTED != 0)
    }

    /// A uniformly random wait in [lo, hi].
    fn random_between(&mut self, lo: Duration, hi: Duration) -> Duration {
        // xorshift64: plenty for spreading retries apart.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let span = hi.saturating_sub(lo).as_micros() as u64;
        lo + Duration::from_micros(self.rng % (span + 1))
    }

    async fn transmit(&mut self, m: &Modulation, frame: &[u8]) -> Result<(), TxError> {
        if self.settings.listen_before_talk {
            let packet_max = m.time_on_air(MAX_PAYLOAD).min(Duration::from_secs(2));
            let toa = m.time_on_air(64);
            let lo = (toa / 2).clamp(Duration::from_millis(20), Duration::from_secs(2));
            let hi = (toa * 3 / 2).clamp(lo, Duration::from_secs(2));
            for look in 1..=LBT_TRIES {
                if !self.channel_busy(m).await.map_err(TxError::Before)? {
                    break;
                }
                bump(&self.counters.cad_busy);
                if look == LBT_TRIES {
                    tracing::debug!("channel still busy after {LBT_TRIES} looks; sending anyway");
                    break;
                }
                self.start_rx().await.map_err(TxError::Before)?;
                self.listen_until(Instant::now() + packet_max, true)
                    .await
                    .map_err(TxError::Before)?;
                let wait = self.random_between(lo, hi);
                self.listen_until(Instant::now() + wait, false)
                    .await
                    .map_err(TxError::Before)?;
            }
        }
        self.standby().await.map_err(TxError::Before)?;
        let c = &mut self.chip;
        let before = async {
            c.write(reg::REG_FIFO_ADDR_PTR, 0x00).await?;
            c.write_burst(reg::REG_FIFO, frame).await?;
            c.write(reg::REG_PAYLOAD_LENGTH, frame.len() as u8).await?;
            c.set_mode(Mode::Tx, Some(Dio0::TxDone)).await
        };
        before.await.map_err(TxError::Before)?;
        let limit = (m.time_on_air(frame.len()) * 3 / 2 + Duration::from_millis(500))
            .min(self.cfg.tx_timeout);
        self.irq_within(irq::TX_DONE, limit, "TX done")
            .await
            .map_err(TxError::Lost)?;
        bump(&self.counters.tx_frames);
        self.start_rx().await.map_err(TxError::Lost)
    }
}

/// How a transmission failed: before the chip took the frame (it is sent again after the
/// reset), or after (it may be on air; the caller hears the error).
enum TxError {
    Before(RadioError),
    Lost(RadioError),
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

    #[test]
    fn the_check_refuses_what_the_chip_cannot_do() {
        let m = Modulation::eu868_default();
        assert_eq!(check(&m), Ok(()));
        let public = Modulation {
            sync_word: 0x34,
            tx_power_dbm: 20,
            ..m
        };
        assert_eq!(check(&public), Ok(()));
        let sf6 = Modulation {
            spreading_factor: 6,
            ..m
        };
        match check(&sf6) {
            Err(RadioError::Unsupported { reason, .. }) => {
                assert!(reason.contains("implicit header"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        for bad in [
            Modulation {
                tx_power_dbm: 21,
                ..m
            },
            Modulation {
                tx_power_dbm: 1,
                ..m
            },
            Modulation {
                bandwidth_hz: 100_000,
                ..m
            },
            Modulation {
                spreading_factor: 5,
                ..m
            },
            Modulation {
                frequency_hz: 1_100_000_000,
                ..m
            },
        ] {
            assert!(
                matches!(check(&bad), Err(RadioError::Unsupported { .. })),
                "{bad:?}"
            );
        }
    }
}
