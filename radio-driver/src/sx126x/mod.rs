//! SX1262 (SX126x family) radios on SPI: the RAK13300 on a RAK6421 HAT, the E22-900M modules
//! of the MeshAdv boards.
//!
//! Unlike the serial modules there is no firmware between the host and the radio: the
//! driver speaks the chip's command set ([`commands`]) over SPI, with BUSY, DIO1 and NRESET
//! on GPIO lines ([`chip`]). So every LoRa setting is the host's: frequency, SF, bandwidth,
//! coding rate, preamble, power and any sync word, which is why an SX1262 bridge hears a
//! RAK3172 (RUI3) bridge set to the same [`Modulation`], sync word 0x12 included (the
//! chip's register holds it spread out as 0x1424, [`commands::sync_word_register`]).
//!
//! **Why not `lora-phy`.** lora-phy 3.0.1 was read first and set aside: in continuous RX its
//! IRQ handler reports a packet whose CRC failed as received (it returns "done" on RxDone
//! without looking at the CRC error bit), its BUSY wait has no timeout (a stuck BUSY hangs
//! the caller), its IRQ processing is documented as unsafe to cancel inside a `select!`,
//! which is exactly how a driver that must both receive and send waits, and its trait
//! futures carry no `Send` bound. The subset of the command set the driver needs is small
//! and fully specified by the datasheet, so it is written here instead.
//!
//! The datasheet's errata (§15) are applied: the 500 kHz modulation-quality bit, the PA
//! clamp against antenna mismatch, and the IQ polarity bit; the implicit-header timeout
//! erratum does not apply (the driver uses explicit headers and no RX timeout).
//!
//! **Threading.** The embedded-hal-async traits promise no `Send` futures, so the driver task
//! runs on its own thread with a current-thread tokio runtime; the [`Sx126xRadio`] handle is
//! an ordinary `Send + Sync` [`Radio`]. SPI transfers on spidev are blocking ioctls of a few
//! hundred microseconds, which that thread can afford.
//!
//! **Receiving.** The chip stays in continuous RX whenever it is not sending. DIO1 carries
//! TxDone, RxDone, CRC and header errors, CAD and timeout IRQs; packets whose CRC or header
//! failed are dropped and counted ([`Sx126xStats::crc_errors`]); RSSI and SNR come from
//! GetPacketStatus.
//!
//! **Listen before talk.** Before each transmission the driver runs channel activity
//! detection (CAD, 4 symbols). While the channel is busy it goes back to receiving (the busy
//! channel is most likely a frame for us) until that packet has ended (RxDone, or a CRC or
//! header error) or for at most the airtime of a 255-byte frame (capped at 2 s), then keeps
//! receiving for a random time between half and one and a half times the airtime of a
//! 64-byte frame (at least 20 ms, at most 2 s), so that stations that waited for the same
//! packet do not all start together, and looks again. After [`LBT_TRIES`] busy looks it sends
//! anyway, as the E22's and RNode's listen-before-talk do: a bounded hold, never a dropped
//! frame, since the mesh above tolerates a collision better than a silent loss. Deferrals are
//! counted ([`Sx126xStats::cad_busy`]).
//!
//! **Failures.** Every command waits for BUSY low for at most
//! [`DriverConfig::command_timeout`]; a TX without TxDone within the frame's airtime plus
//! margin (capped by [`DriverConfig::tx_timeout`]) fails that send with
//! [`RadioError::Timeout`]. Any failure of the chip (SPI error, stuck BUSY, a status byte no
//! chip sends, a missing IRQ) puts the driver in [`RadioState::Reconnecting`]: it pulses
//! NRESET, initialises the chip again and re-applies the modulation, with backoff, up to
//! [`DriverConfig::max_reconnect_attempts`]. Sends wait meanwhile (failed after
//! [`DriverConfig::queue_timeout`]); a send interrupted before the chip took the frame is
//! retried after the reset.
//!
//! **Memory.** Bounded: at most [`DriverConfig::queue_capacity`] requests in the channel and
//! as many in the driver's queue, [`DriverConfig::rx_capacity`] received frames of at most
//! 255 B (more are dropped and counted), and one exchange buffer of 260 B.
//!
//! # Airtime and usable payload per frame
//!
//! One lorabridge frame is one LoRa packet of up to **255 B** (the packet length is one
//! byte), sent as configured: explicit header, CRC on, no added bytes, so the duty-cycle
//! ledger charges [`Modulation::time_on_air`] ([`ModuleKind::on_air`] is plain). A 255 B
//! frame at EU868 (869.525 MHz, CR 4/5, preamble 8) takes **399.6 ms** at SF7/125 kHz and
//! **9.019 s** at SF12/125 kHz (low-data-rate optimisation on).
//!
//! # What it cannot do
//!
//! FSK; frames over 255 B; the SX127x (a register file, not this command set: see
//! [`crate::sx127x`]);
//! measure a board's amplifier (its gain is taken from the board's highest power,
//! [`Sx126xSettings::from_board`], so `tx_power_dbm` is meant at the antenna socket); tell an
//! unplugged HAT from a dead one (both read as an empty bus); wake on radio or receive in
//! duty-cycled RX.

pub mod chip;
pub mod commands;
pub mod linux;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use embedded_hal::digital::{InputPin, OutputPin};
use embedded_hal_async::digital::Wait;
use embedded_hal_async::spi::SpiDevice;
use lorabridge_hardware::Modulation;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, mpsc, oneshot, watch};
use tokio::time::Instant;

pub use chip::{Antenna, Bus, Chip};
use commands::{ChipMode, irq, op};
pub use commands::{MAX_PAYLOAD, TcxoVoltage};

use crate::{DriverConfig, ModuleKind, Radio, RadioError, RadioFuture, RadioState, RxFrame};

/// Busy channel looks before a frame is sent anyway.
pub const LBT_TRIES: u32 = 5;
/// CAD length: SetCadParams code 2 = 4 symbols.
const CAD_SYMBOLS_CODE: u8 = 0x02;
const CAD_SYMBOLS: u32 = 4;
/// How long the TCXO is given to start when DIO3 powers it (SetDio3AsTcxoCtrl's delay).
const TCXO_STARTUP_US: u64 = 5_000;
/// A send is retried after a chip reset at most this many times.
const MAX_ATTEMPTS: u32 = 3;

/// Settings of the board around the chip that no [`Modulation`] field carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sx126xSettings {
    /// DIO3 powers the board's TCXO at this voltage (`None`: the board has a crystal).
    pub tcxo: Option<TcxoVoltage>,
    /// DIO2 drives the antenna switch's transmit side.
    pub dio2_rf_switch: bool,
    /// Use the chip's DC-DC regulator instead of its LDO (every board we know fits the
    /// inductor it needs).
    pub dcdc: bool,
    /// Channel activity detection before each transmission (see the module docs).
    pub listen_before_talk: bool,
    /// Gain of an amplifier between the chip and the antenna socket, in dB: the chip is set
    /// to the modulation's power minus this, so that `tx_power_dbm` stays the power at the
    /// socket, which is what the regional rules and the board profile limit.
    pub amplifier_gain_db: u8,
}

impl Default for Sx126xSettings {
    fn default() -> Self {
        Self {
            tcxo: None,
            dio2_rf_switch: false,
            dcdc: true,
            listen_before_talk: true,
            amplifier_gain_db: 0,
        }
    }
}

impl Sx126xSettings {
    /// What a board profile says: a TCXO on DIO3 (at 1.8 V: the profiles name no voltage,
    /// and 1.8 V is what the E22-900M and RAK13300 modules' TCXOs take, per their
    /// meshtasticd configurations), the RF switch on DIO2, and an amplifier's gain: what the
    /// board's highest power exceeds the chip's +22 dBm by (8 dB on the 30 dBm MeshAdv-Pi),
    /// on the assumption that the board reaches its highest power at the chip's.
    pub fn from_board(board: &lorabridge_hardware::BoardProfile) -> Self {
        let pins = board.pins.clone().unwrap_or_default();
        let chip_max = *commands::POWER_DBM.end();
        Self {
            tcxo: pins.dio3_tcxo.then_some(TcxoVoltage::V1_8),
            dio2_rf_switch: pins.dio2_rf_switch,
            amplifier_gain_db: board.tx_power_max_dbm.saturating_sub(chip_max).max(0) as u8,
            ..Self::default()
        }
    }

    /// The power to set at the chip for `socket_dbm` at the antenna socket, if the chip can.
    pub fn chip_power(&self, socket_dbm: i8) -> Option<i8> {
        let chip = i16::from(socket_dbm) - i16::from(self.amplifier_gain_db);
        i8::try_from(chip)
            .ok()
            .filter(|p| commands::POWER_DBM.contains(p))
    }
}

/// A snapshot of the driver's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Sx126xStats {
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

/// An SX126x on SPI, driven by a task on its own thread.
///
/// Dropping the handle stops the task (the chip is left as it is); [`Radio::shutdown`] first
/// puts the chip to sleep.
pub struct Sx126xRadio {
    settings: Sx126xSettings,
    requests: mpsc::Sender<Request>,
    frames: Mutex<mpsc::Receiver<RxFrame>>,
    state: watch::Receiver<RadioState>,
    counters: Arc<Counters>,
    queue_capacity: usize,
}

impl Sx126xRadio {
    /// Resets and initialises the chip on `bus`, then starts the driver. Fails if the first
    /// initialisation fails, so a missing or miswired radio is reported at once; after that,
    /// the driver recovers by itself.
    pub async fn open<S, B, D, O>(
        bus: Bus<S, B, D, O>,
        settings: Sx126xSettings,
        cfg: DriverConfig,
    ) -> Result<Self, RadioError>
    where
        S: SpiDevice + Send + 'static,
        B: InputPin + Wait + Send + 'static,
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
            .name("sx126x".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let mut task = Task {
                        chip: Chip::new(bus, cfg.command_timeout),
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
            settings,
            requests: req_tx,
            frames: Mutex::new(frame_rx),
            state: state_rx,
            counters,
            queue_capacity,
        })
    }

    pub fn stats(&self) -> Sx126xStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Sx126xStats {
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

impl Radio for Sx126xRadio {
    fn kind(&self) -> ModuleKind {
        ModuleKind::Sx126x
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
            check(modulation, &self.settings)?;
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

/// Refuses what the chip cannot be set to, before anything is sent to it.
fn check(m: &Modulation, settings: &Sx126xSettings) -> Result<(), RadioError> {
    let unsupported = |reason: String| RadioError::Unsupported {
        module: ModuleKind::Sx126x.module_name(),
        reason,
    };
    ModuleKind::Sx126x
        .check(m)
        .map_err(|e| unsupported(e.to_string()))?;
    m.validate().map_err(|e| unsupported(e.to_string()))?;
    if settings.chip_power(m.tx_power_dbm).is_none() {
        return Err(unsupported(format!(
            "tx_power_dbm {} at the antenna socket needs {} dBm at the chip (amplifier gain \
             {} dB), outside its {}..={} dBm",
            m.tx_power_dbm,
            i16::from(m.tx_power_dbm) - i16::from(settings.amplifier_gain_db),
            settings.amplifier_gain_db,
            commands::POWER_DBM.start(),
            commands::POWER_DBM.end()
        )));
    }
    commands::modulation_params(m)
        .map(drop)
        .ok_or_else(|| unsupported("no SX126x code for this SF, bandwidth or coding rate".into()))
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

struct Task<S, B, D, O> {
    chip: Chip<S, B, D, O>,
    settings: Sx126xSettings,
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

impl<S, B, D, O> Task<S, B, D, O>
where
    S: SpiDevice,
    B: InputPin + Wait,
    D: Wait,
    O: OutputPin,
{
    async fn run(mut self) {
        let end = loop {
            match self.serve().await {
                Stop::Closed => break (RadioState::Closed, RadioError::Closed),
                Stop::Chip(e) => {
                    tracing::warn!(error = %e, "SX126x failed; resetting it");
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
                    let _ = self.sleep().await;
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
                    tracing::info!("SX126x back after a reset");
                    return Ok(());
                }
                Err(e) => {
                    failures += 1;
                    tracing::debug!(error = %e, failures, "SX126x still not answering");
                    if self
                        .cfg
                        .max_reconnect_attempts
                        .is_some_and(|max| failures >= max)
                    {
                        let reason = format!("the SX126x did not come back: {e}");
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
                reason: "the SX126x is being reset".into(),
            }));
        }
    }

    /// Reset, initialisation, and the last modulation if there was one.
    async fn bring_up(&mut self) -> Result<(), RadioError> {
        self.chip.reset().await?;
        let status = self.chip.status("reset").await?;
        if status.mode != ChipMode::StandbyRc {
            return Err(RadioError::Protocol(format!(
                "SX126x is in {:?} after a reset, not standby",
                status.mode
            )));
        }
        let c = &mut self.chip;
        c.command(op::SET_STANDBY, &[commands::STANDBY_RC]).await?;
        if self.settings.dcdc {
            c.command(op::SET_REGULATOR_MODE, &[0x01]).await?;
        }
        if let Some(v) = self.settings.tcxo {
            let [a, b, d] = commands::timer_steps(TCXO_STARTUP_US);
            c.command(op::SET_DIO3_AS_TCXO, &[v.code(), a, b, d])
                .await?;
            // The chip ran its start-up calibration on the RC clock: run it again on the
            // TCXO, and clear the oscillator start error the missing TCXO raised at power-on.
            c.command(op::CALIBRATE, &[commands::CALIBRATE_ALL]).await?;
            c.command(op::CLEAR_DEVICE_ERRORS, &[0x00, 0x00]).await?;
        }
        if self.settings.dio2_rf_switch {
            c.command(op::SET_DIO2_AS_RF_SWITCH, &[0x01]).await?;
        }
        // Errata (datasheet §15.2): clamp the PA against an antenna mismatch, once per reset.
        let clamp = c.read_register(commands::REG_TX_CLAMP, 1).await?[0];
        c.write_register(commands::REG_TX_CLAMP, &[clamp | 0x1E])
            .await?;
        c.command(op::SET_PACKET_TYPE, &[commands::PACKET_TYPE_LORA])
            .await?;
        c.command(op::SET_BUFFER_BASE_ADDRESS, &[0x00, 0x00])
            .await?;
        c.status("initialisation").await?;
        match self.modulation {
            Some(m) => self.configure(&m).await,
            None => Ok(()),
        }
    }

    /// Applies `m` and starts receiving with it; reads the sync word back, so that a
    /// modulation that did not reach the chip is an error, not a deaf radio.
    async fn configure(&mut self, m: &Modulation) -> Result<(), RadioError> {
        check(m, &self.settings)?;
        let power = self.settings.chip_power(m.tx_power_dbm).expect("checked");
        self.standby().await?;
        let c = &mut self.chip;
        c.command(
            op::SET_RF_FREQUENCY,
            &commands::frequency_steps(m.frequency_hz).to_be_bytes(),
        )
        .await?;
        c.command(
            op::CALIBRATE_IMAGE,
            &commands::image_calibration(m.frequency_hz),
        )
        .await?;
        c.command(op::SET_PA_CONFIG, &commands::PA_CONFIG_SX1262)
            .await?;
        c.command(op::SET_TX_PARAMS, &[power as u8, commands::RAMP_200_US])
            .await?;
        let params = commands::modulation_params(m).expect("checked");
        c.command(op::SET_MODULATION_PARAMS, &params).await?;
        // Errata (datasheet §15.1 and §15.4): the 500 kHz modulation bit, and the IQ bit for
        // standard IQ.
        let quality = c.read_register(commands::REG_TX_MODULATION, 1).await?[0];
        let quality = match m.bandwidth_hz {
            500_000 => quality & !0x04,
            _ => quality | 0x04,
        };
        c.write_register(commands::REG_TX_MODULATION, &[quality])
            .await?;
        let iq = c.read_register(commands::REG_IQ_POLARITY, 1).await?[0];
        c.write_register(commands::REG_IQ_POLARITY, &[iq | 0x04])
            .await?;
        let sync = commands::sync_word_register(m.sync_word);
        c.write_register(commands::REG_LORA_SYNC_WORD, &sync)
            .await?;
        let mask = irq::DRIVER_MASK.to_be_bytes();
        c.command(
            op::SET_DIO_IRQ_PARAMS,
            &[mask[0], mask[1], mask[0], mask[1], 0, 0, 0, 0],
        )
        .await?;
        let back = c.read_register(commands::REG_LORA_SYNC_WORD, 2).await?;
        if back != sync {
            return Err(RadioError::Protocol(format!(
                "SX126x sync word register reads {back:02X?} after writing {sync:02X?}"
            )));
        }
        c.status("configuration").await?;
        self.start_rx(m).await
    }

    /// Standby, delivering a frame that arrived just before.
    async fn standby(&mut self) -> Result<(), RadioError> {
        self.chip
            .command(op::SET_STANDBY, &[commands::STANDBY_RC])
            .await?;
        self.chip.antenna(Antenna::Off)?;
        self.service_irq().await.map(drop)
    }

    async fn start_rx(&mut self, m: &Modulation) -> Result<(), RadioError> {
        let c = &mut self.chip;
        c.command(
            op::SET_PACKET_PARAMS,
            &commands::packet_params(m.preamble_symbols, MAX_PAYLOAD as u8),
        )
        .await?;
        c.antenna(Antenna::Rx)?;
        let [_, a, b, d] = commands::RX_CONTINUOUS.to_be_bytes();
        c.command(op::SET_RX, &[a, b, d]).await
    }

    /// Reads and clears the IRQs; a received packet goes to the caller, a failed one is
    /// counted. Says whether a packet ended (received or failed).
    async fn service_irq(&mut self) -> Result<bool, RadioError> {
        let flags = self.chip.take_irq().await?;
        if flags & (irq::CRC_ERR | irq::HEADER_ERR) != 0 {
            bump(&self.counters.crc_errors);
            return Ok(true);
        }
        if flags & irq::RX_DONE == 0 {
            return Ok(false);
        }
        let (_, data) = self.chip.read(op::GET_RX_BUFFER_STATUS, &[], 2).await?;
        let (len, start) = (usize::from(data[0]), data[1]);
        let (_, payload) = self.chip.read(op::READ_BUFFER, &[start], len).await?;
        let payload = payload.to_vec();
        let (_, status) = self.chip.read(op::GET_PACKET_STATUS, &[], 3).await?;
        // RssiPkt = -value/2 dBm, SnrPkt = signed value/4 dB (datasheet §13.5.3).
        let rssi = -(i16::from(status[0]) / 2);
        let snr = f32::from(status[1] as i8) / 4.0;
        if payload.is_empty() {
            return Ok(true);
        }
        let frame = RxFrame {
            payload,
            rssi_dbm: Some(rssi),
            snr_db: Some(snr),
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

    /// Waits for DIO1 and takes the IRQs until one of `want` is set, at most `timeout`.
    async fn irq_within(
        &mut self,
        want: u16,
        timeout: Duration,
        what: &str,
    ) -> Result<u16, RadioError> {
        let deadline = Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.chip.wait_irq()).await {
                Ok(r) => r?,
                Err(_) => {
                    return Err(RadioError::Timeout {
                        command: format!("{what} (no IRQ on DIO1)"),
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
        let c = &mut self.chip;
        c.antenna(Antenna::Rx)?;
        // Detection peak SF + 13 and minimum 10: common starting values for a 4-symbol CAD;
        // exit mode 0 (CAD only: back to standby), no timeout.
        c.command(
            op::SET_CAD_PARAMS,
            &[CAD_SYMBOLS_CODE, m.spreading_factor + 13, 10, 0x00, 0, 0, 0],
        )
        .await?;
        c.command(op::SET_CAD, &[]).await?;
        let cad_time = m.symbol_time() * (CAD_SYMBOLS + 2);
        let flags = self
            .irq_within(
                irq::CAD_DONE,
                cad_time + self.cfg.command_timeout,
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
                self.start_rx(m).await.map_err(TxError::Before)?;
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
            let mut write = vec![0x00];
            write.extend_from_slice(frame);
            c.command(op::WRITE_BUFFER, &write).await?;
            c.command(
                op::SET_PACKET_PARAMS,
                &commands::packet_params(m.preamble_symbols, frame.len() as u8),
            )
            .await?;
            c.antenna(Antenna::Tx)?;
            // No chip timeout: the host bounds the wait for TxDone below.
            c.command(op::SET_TX, &[0, 0, 0]).await
        };
        before.await.map_err(TxError::Before)?;
        let limit = (m.time_on_air(frame.len()) * 3 / 2 + Duration::from_millis(500))
            .min(self.cfg.tx_timeout);
        let flags = self
            .irq_within(irq::TX_DONE | irq::TIMEOUT, limit, "TX done")
            .await
            .map_err(TxError::Lost)?;
        if flags & irq::TX_DONE == 0 {
            return Err(TxError::Lost(RadioError::Timeout {
                command: "SetTx (the chip reported a TX timeout)".into(),
                timeout: limit,
            }));
        }
        bump(&self.counters.tx_frames);
        self.start_rx(m).await.map_err(TxError::Lost)
    }

    /// Standby, then sleep (cold start: the next use resets the chip anyway).
    async fn sleep(&mut self) -> Result<(), RadioError> {
        self.chip
            .command(op::SET_STANDBY, &[commands::STANDBY_RC])
            .await?;
        self.chip.antenna(Antenna::Off)?;
        self.chip.command(op::SET_SLEEP, &[0x00]).await
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
    fn a_board_profile_gives_tcxo_rf_switch_and_amplifier() {
        use lorabridge_hardware::BoardProfile;
        let board = BoardProfile::builtin("rak6421-rak13300").expect("profile");
        let s = Sx126xSettings::from_board(&board);
        assert_eq!(s.tcxo, Some(TcxoVoltage::V1_8));
        assert!(s.dio2_rf_switch);
        assert_eq!((s.amplifier_gain_db, s.chip_power(22)), (0, Some(22)));
        assert_eq!(s.chip_power(23), None);
        let board = BoardProfile::builtin("meshadv-pi").expect("profile");
        let s = Sx126xSettings::from_board(&board);
        assert!(!s.dio2_rf_switch);
        // The E22-900M30S: 30 dBm at the socket is the chip's 22.
        assert_eq!(s.amplifier_gain_db, 8);
        assert_eq!((s.chip_power(30), s.chip_power(14)), (Some(22), Some(6)));
        assert_eq!(s.chip_power(-2), None);
        let mini = BoardProfile::builtin("meshadv-mini").expect("profile");
        assert_eq!(Sx126xSettings::from_board(&mini).amplifier_gain_db, 0);
    }

    #[test]
    fn the_check_refuses_what_the_chip_cannot_do() {
        let m = Modulation::eu868_default();
        let plain = Sx126xSettings::default();
        assert_eq!(check(&m, &plain), Ok(()));
        let meshtastic = Modulation {
            sync_word: 0x2B,
            ..m
        };
        assert_eq!(check(&meshtastic, &plain), Ok(()));
        let amplified = Sx126xSettings {
            amplifier_gain_db: 8,
            ..plain
        };
        let loud = Modulation {
            tx_power_dbm: 27,
            ..m
        };
        assert_eq!(check(&loud, &amplified), Ok(()));
        assert!(check(&loud, &plain).is_err());
        for bad in [
            Modulation {
                tx_power_dbm: 23,
                ..m
            },
            Modulation {
                bandwidth_hz: 100_000,
                ..m
            },
            Modulation {
                spreading_factor: 4,
                ..m
            },
        ] {
            assert!(
                matches!(check(&bad, &plain), Err(RadioError::Unsupported { .. })),
                "{bad:?}"
            );
        }
    }
}
