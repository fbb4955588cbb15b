//! The driver task: owns the port, serialises requests, reconnects.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use lorabridge_hardware::Modulation;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::dialect::Dialect;
use super::open_port::{FrameSink, OpenPort, PortError, StepError};
use super::{Connector, DriverConfig};
use crate::requests::{MAX_ATTEMPTS, Queued, Request};
use crate::{RadioError, RadioState};

pub(crate) struct Task<D: Dialect> {
    pub dialect: D,
    pub connector: Box<dyn Connector>,
    pub cfg: DriverConfig,
    pub sink: FrameSink,
    pub requests: mpsc::Receiver<Request>,
    pub state: watch::Sender<RadioState>,
    /// The last modulation the caller set; re-applied after every reconnect.
    pub modulation: Option<Modulation>,
    /// Requests taken off the channel and not answered yet. Bounded by
    /// [`DriverConfig::queue_capacity`]; every entry is answered exactly once.
    pub queue: VecDeque<Queued>,
}

/// How the task ends.
enum Exit {
    Closed,
    Failed(String),
}

impl<D: Dialect> Task<D> {
    pub async fn run(mut self, first: OpenPort<D::Decoder>) {
        let exit = self.serve(first).await;
        let (state, err) = match exit {
            Exit::Closed => (RadioState::Closed, RadioError::Closed),
            Exit::Failed(reason) => (RadioState::Failed, RadioError::Failed(reason)),
        };
        self.state.send_replace(state);
        self.fail_queue(&err);
        self.requests.close();
        while let Ok(req) = self.requests.try_recv() {
            req.answer(Err(err.clone()));
        }
    }

    async fn serve(&mut self, first: OpenPort<D::Decoder>) -> Exit {
        let mut link = Some(first);
        let mut timeouts = 0u32;
        loop {
            let Some(l) = link.as_mut() else {
                match self.reconnect().await {
                    Ok(l) => {
                        link = Some(l);
                        timeouts = 0;
                        continue;
                    }
                    Err(exit) => return exit,
                }
            };
            let Some(mut q) = self.queue.pop_front() else {
                self.state.send_replace(RadioState::Ready);
                tokio::select! {
                    req = self.requests.recv() => match req {
                        Some(r) => {
                            self.enqueue(r);
                            // Take everything already waiting, so a shutdown behind a burst of
                            // sends is seen now and can answer them.
                            while let Ok(r) = self.requests.try_recv() {
                                self.enqueue(r);
                            }
                        }
                        None => return Exit::Closed,
                    },
                    r = l.pump() => if let Err(e) = r {
                        tracing::warn!(port = %self.connector.describe(), error = ?e, "port lost");
                        link = None;
                    },
                }
                continue;
            };
            self.state.send_replace(RadioState::Busy);
            let outcome = match &q.req {
                Request::Shutdown(_) => {
                    let _ = self.dialect.close(l, &self.cfg).await;
                    // The port is closed and the state final before the caller hears "done",
                    // so the caller may reopen the port at once (serial ports are exclusive).
                    drop(link.take());
                    self.state.send_replace(RadioState::Closed);
                    self.fail_queue(&RadioError::Closed);
                    if let Request::Shutdown(tx) = q.req {
                        let _ = tx.send(Ok(()));
                    }
                    return Exit::Closed;
                }
                Request::Configure(m, _) => {
                    let m = *m;
                    let r = self.dialect.configure(l, &m, &self.cfg).await;
                    if r.is_ok() {
                        self.modulation = Some(m);
                    }
                    r
                }
                Request::Send(frame, _) => {
                    if self.modulation.is_none() {
                        Err(StepError::Radio(RadioError::NotConfigured))
                    } else {
                        let r = self.dialect.transmit(l, frame, &self.cfg).await;
                        if r.is_ok() {
                            self.sink.stats.tx_frames.fetch_add(1, Ordering::Relaxed);
                        }
                        r
                    }
                }
            };
            // Callers that look at the state after their answer see the driver's next state.
            let next = match &outcome {
                Err(StepError::Port(PortError::Io(_), ..)) => RadioState::Reconnecting,
                Err(StepError::Port(PortError::Timeout, ..))
                    if timeouts + 1 >= self.cfg.timeouts_before_reconnect =>
                {
                    RadioState::Reconnecting
                }
                _ if self.queue.is_empty() => RadioState::Ready,
                _ => RadioState::Busy,
            };
            self.state.send_replace(next);
            match outcome {
                Ok(()) => {
                    timeouts = 0;
                    q.req.answer(Ok(()));
                }
                Err(StepError::Port(PortError::Io(reason), command, _)) => {
                    // The port died under this request: keep it for after the reconnect.
                    tracing::warn!(port = %self.connector.describe(), %reason, %command, "port lost");
                    link = None;
                    q.attempts += 1;
                    if q.attempts >= MAX_ATTEMPTS {
                        q.req.answer(Err(RadioError::Unavailable {
                            waited: q.since.elapsed(),
                            reason: format!(
                                "port failed {MAX_ATTEMPTS} times during this request: {reason}"
                            ),
                        }));
                    } else {
                        self.queue.push_front(q);
                    }
                }
                Err(e @ StepError::Port(PortError::Timeout, ..)) => {
                    timeouts += 1;
                    q.req.answer(Err(e.into_radio(self.cfg.command_timeout)));
                    if timeouts >= self.cfg.timeouts_before_reconnect {
                        tracing::warn!(port = %self.connector.describe(), "module silent; reopening the port");
                        link = None;
                    }
                }
                Err(StepError::Radio(e)) => {
                    timeouts = 0;
                    q.req.answer(Err(e));
                }
            }
        }
    }

    /// Takes a request into the queue, or answers it at once when there is no room.
    fn enqueue(&mut self, req: Request) {
        if let Request::Shutdown(_) = req {
            // Shutdown jumps the queue; everything behind it is answered as closed.
            self.fail_queue(&RadioError::Closed);
            self.queue.push_front(Queued::new(req));
            return;
        }
        if self.queue.len() >= self.cfg.queue_capacity {
            req.answer(Err(RadioError::QueueFull {
                capacity: self.cfg.queue_capacity,
            }));
            return;
        }
        self.queue.push_back(Queued::new(req));
    }

    fn fail_queue(&mut self, err: &RadioError) {
        for q in self.queue.drain(..) {
            q.req.answer(Err(err.clone()));
        }
    }

    /// Fails queued requests that have waited past the queue timeout.
    fn expire_queue(&mut self, reason: &str) {
        let timeout = self.cfg.queue_timeout;
        let (old, keep): (VecDeque<_>, VecDeque<_>) = self
            .queue
            .drain(..)
            .partition(|q| q.since.elapsed() >= timeout && !matches!(q.req, Request::Shutdown(_)));
        self.queue = keep;
        for q in old {
            let waited = q.since.elapsed();
            q.req.answer(Err(RadioError::Unavailable {
                waited,
                reason: reason.to_string(),
            }));
        }
    }

    /// Reopens the port with backoff, answering and queueing requests meanwhile.
    async fn reconnect(&mut self) -> Result<OpenPort<D::Decoder>, Exit> {
        self.state.send_replace(RadioState::Reconnecting);
        let mut delay = self.cfg.backoff_min;
        let mut attempts = 0u32;
        let mut last_error = String::from("port lost");
        loop {
            let deadline = Instant::now() + delay;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => break,
                    req = self.requests.recv() => match req {
                        None => return Err(Exit::Closed),
                        Some(Request::Shutdown(tx)) => {
                            self.state.send_replace(RadioState::Closed);
                            self.fail_queue(&RadioError::Closed);
                            let _ = tx.send(Ok(()));
                            return Err(Exit::Closed);
                        }
                        Some(r) => self.enqueue(r),
                    },
                }
            }
            self.expire_queue(&last_error);
            attempts += 1;
            match self.connect().await {
                Ok(link) => {
                    self.sink.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(port = %self.connector.describe(), attempts, "reconnected");
                    return Ok(link);
                }
                Err(e) => {
                    tracing::debug!(port = %self.connector.describe(), error = %e, attempts, "reconnect failed");
                    last_error = e;
                }
            }
            if self
                .cfg
                .max_reconnect_attempts
                .is_some_and(|max| attempts >= max)
            {
                return Err(Exit::Failed(format!(
                    "{attempts} reconnect attempts failed; last: {last_error}"
                )));
            }
            delay = (delay * 2).min(self.cfg.backoff_max);
        }
    }

    /// Opens, detects and (if the caller configured one) re-applies the modulation.
    async fn connect(&mut self) -> Result<OpenPort<D::Decoder>, String> {
        let port = self.connector.open().await.map_err(|e| e.to_string())?;
        let mut link = OpenPort::new(port, self.sink.clone());
        let to = self.cfg.command_timeout;
        self.dialect
            .detect(&mut link, &self.cfg)
            .await
            .map_err(|e| e.into_radio(to).to_string())?;
        if let Some(m) = self.modulation {
            self.dialect
                .configure(&mut link, &m, &self.cfg)
                .await
                .map_err(|e| e.into_radio(to).to_string())?;
        }
        Ok(link)
    }
}
