//! The driver task: one per chip, on the chip's own thread (see the module docs above).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use lorabridge_hardware::Modulation;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::{Counters, Irqs, LBT_TRIES, MAX_ATTEMPTS, MAX_PAYLOAD, Transceiver, bump};
use crate::requests::{Queued, Request};
use crate::{DriverConfig, RadioError, RadioState, RxFrame};

/// Why serving stopped.
enum Stop {
    Closed,
    /// The chip failed; re-initialise it.
    Chip(RadioError),
}

/// How a transmission failed: before the chip took the frame (it is sent again after the
/// reset), or after (it may be on air; the caller hears the error).
enum TxError {
    Before(RadioError),
    Lost(RadioError),
}

pub(super) struct Task<T> {
    chip: T,
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

impl<T: Transceiver> Task<T> {
    pub(super) fn new(
        chip: T,
        cfg: DriverConfig,
        requests: mpsc::Receiver<Request>,
        state: watch::Sender<RadioState>,
        frames: mpsc::Sender<RxFrame>,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            chip,
            cfg,
            requests,
            state,
            frames,
            counters,
            modulation: None,
            queue: VecDeque::new(),
            rng: seed(),
        }
    }

    /// Brings the chip up, says how that went on `up`, and serves if it came up.
    pub(super) async fn start(mut self, up: oneshot::Sender<Result<(), RadioError>>) {
        let first = self.bring_up().await;
        let ok = first.is_ok();
        let _ = up.send(first);
        if ok {
            self.run().await;
        }
    }

    async fn run(mut self) {
        let end = loop {
            match self.serve().await {
                Stop::Closed => break (RadioState::Closed, RadioError::Closed),
                Stop::Chip(e) => {
                    tracing::warn!(error = %e, "{} failed; resetting it", T::NAME);
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
        self.queue.push_back(Queued::new(req));
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
                        if let Err(e) = self.service_irq().await {
                            return Stop::Chip(e);
                        }
                    }
                }
                continue;
            };
            self.state.send_replace(RadioState::Busy);
            match q.req {
                Request::Shutdown(tx) => {
                    let _ = self.chip.sleep().await;
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
                    tracing::info!("{} back after a reset", T::NAME);
                    return Ok(());
                }
                Err(e) => {
                    failures += 1;
                    tracing::debug!(error = %e, failures, "{} still not answering", T::NAME);
                    if self
                        .cfg
                        .max_reconnect_attempts
                        .is_some_and(|max| failures >= max)
                    {
                        let reason = format!("the {} did not come back: {e}", T::NAME);
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
                reason: format!("the {} is being reset", T::NAME),
            }));
        }
    }

    /// Reset, initialisation, and the last modulation if there was one.
    async fn bring_up(&mut self) -> Result<(), RadioError> {
        self.chip.init().await?;
        match self.modulation {
            Some(m) => self.configure(&m).await,
            None => Ok(()),
        }
    }

    /// Applies `m` from standby, which first delivers a packet that had just arrived.
    async fn configure(&mut self, m: &Modulation) -> Result<(), RadioError> {
        self.standby().await?;
        self.chip.apply(m).await
    }

    /// Standby, delivering a packet that arrived just before.
    async fn standby(&mut self) -> Result<(), RadioError> {
        self.chip.standby().await?;
        self.service_irq().await.map(drop)
    }

    /// Takes the IRQs and hands on what they carried.
    async fn take_irqs(&mut self) -> Result<Irqs, RadioError> {
        let mut irqs = self.chip.take_irqs().await?;
        match irqs.received.take() {
            Some(frame) if !frame.payload.is_empty() => self.deliver(frame),
            Some(_) => {}
            None if irqs.packet_ended => bump(&self.counters.crc_errors),
            None => {}
        }
        Ok(irqs)
    }

    /// Queues a received frame for the caller, or counts it dropped when the queue is full.
    fn deliver(&mut self, frame: RxFrame) {
        // Counted before the caller can see it, so that the counter is never behind.
        match self.frames.try_reserve() {
            Ok(slot) => {
                bump(&self.counters.rx_frames);
                slot.send(frame);
            }
            Err(_) => bump(&self.counters.rx_dropped),
        }
    }

    /// Takes the IRQs; says whether a packet ended (received or failed).
    async fn service_irq(&mut self) -> Result<bool, RadioError> {
        Ok(self.take_irqs().await?.packet_ended)
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

    /// Waits for the IRQ line and takes the IRQs until `done` says they are the ones
    /// awaited, at most `timeout`.
    async fn irqs_within(
        &mut self,
        done: impl Fn(&Irqs) -> bool,
        timeout: Duration,
        what: &str,
    ) -> Result<Irqs, RadioError> {
        let deadline = Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.chip.wait_irq()).await {
                Ok(r) => r?,
                Err(_) => {
                    return Err(RadioError::Timeout {
                        command: format!("{what} (no IRQ on {})", T::IRQ_LINE),
                        timeout,
                    });
                }
            }
            let irqs = self.take_irqs().await?;
            if done(&irqs) {
                return Ok(irqs);
            }
        }
    }

    /// One channel activity detection: whether a LoRa preamble of `m` is on air.
    async fn channel_busy(&mut self, m: &Modulation) -> Result<bool, RadioError> {
        self.standby().await?;
        let lasts = self.chip.start_cad(m).await?;
        let irqs = self
            .irqs_within(
                |i| i.cad.is_some(),
                lasts + self.cfg.command_timeout,
                "channel activity detection",
            )
            .await?;
        Ok(irqs.cad == Some(true))
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

    /// Waits while CAD finds the channel busy, receiving meanwhile, at most [`LBT_TRIES`]
    /// looks (see the module docs).
    async fn listen_before_talk(&mut self, m: &Modulation) -> Result<(), RadioError> {
        let packet_max = m.time_on_air(MAX_PAYLOAD).min(Duration::from_secs(2));
        let toa = m.time_on_air(64);
        let lo = (toa / 2).clamp(Duration::from_millis(20), Duration::from_secs(2));
        let hi = (toa * 3 / 2).clamp(lo, Duration::from_secs(2));
        for look in 1..=LBT_TRIES {
            if !self.channel_busy(m).await? {
                return Ok(());
            }
            bump(&self.counters.cad_busy);
            if look == LBT_TRIES {
                tracing::debug!("channel still busy after {LBT_TRIES} looks; sending anyway");
                return Ok(());
            }
            self.chip.receive(m).await?;
            self.listen_until(Instant::now() + packet_max, true).await?;
            let wait = self.random_between(lo, hi);
            self.listen_until(Instant::now() + wait, false).await?;
        }
        Ok(())
    }

    async fn transmit(&mut self, m: &Modulation, frame: &[u8]) -> Result<(), TxError> {
        if self.chip.listens_before_talk() {
            self.listen_before_talk(m).await.map_err(TxError::Before)?;
        }
        self.standby().await.map_err(TxError::Before)?;
        self.chip
            .start_tx(m, frame)
            .await
            .map_err(TxError::Before)?;
        let limit = (m.time_on_air(frame.len()) * 3 / 2 + Duration::from_millis(500))
            .min(self.cfg.tx_timeout);
        let irqs = self
            .irqs_within(|i| i.tx_done || i.tx_timeout, limit, "TX done")
            .await
            .map_err(TxError::Lost)?;
        if !irqs.tx_done {
            return Err(TxError::Lost(RadioError::Timeout {
                command: format!("TX (the {} reported a TX timeout)", T::NAME),
                timeout: limit,
            }));
        }
        bump(&self.counters.tx_frames);
        self.chip.receive(m).await.map_err(TxError::Lost)
    }
}
