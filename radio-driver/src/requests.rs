//! The request path every driver shares: the handle puts configure, send and shutdown
//! requests on a bounded channel to the task that owns the module and waits for the answer.
//!
//! The serial driver ([`crate::SerialRadio`]) and the SPI driver ([`crate::SpiRadio`]) both
//! use it, so a full queue, a stopped task and a driver that gave up read the same to callers.
//! **Memory:** the channel holds at most the driver's `queue_capacity` requests.

use lorabridge_hardware::Modulation;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::{RadioError, RadioState};

/// Where the driver task sends its answer.
pub(crate) type Answer = oneshot::Sender<Result<(), RadioError>>;

/// What a handle asks of its driver task.
pub(crate) enum Request {
    Configure(Modulation, Answer),
    Send(Vec<u8>, Answer),
    Shutdown(Answer),
}

impl Request {
    /// Answers the caller; one that stopped waiting (its future was dropped) no longer
    /// needs the answer.
    pub(crate) fn answer(self, result: Result<(), RadioError>) {
        let tx = match self {
            Request::Configure(_, tx) | Request::Send(_, tx) | Request::Shutdown(tx) => tx,
        };
        let _ = tx.send(result);
    }
}

/// A request is tried on at most this many openings of its module (the serial driver reopens
/// a port that died under it, the SPI driver resets a chip that failed under it).
pub const MAX_ATTEMPTS: u32 = 3;

/// A request waiting its turn in a driver task: when it arrived (for the queue timeout) and
/// how many times the module was lost under it (a frame is retried a bounded number of times).
pub(crate) struct Queued {
    pub(crate) req: Request,
    pub(crate) since: Instant,
    pub(crate) attempts: u32,
}

impl Queued {
    /// A request that has just arrived.
    pub(crate) fn new(req: Request) -> Self {
        Self {
            req,
            since: Instant::now(),
            attempts: 0,
        }
    }
}

/// The handle's end of the channel to its driver task.
pub(crate) struct Requests {
    tx: mpsc::Sender<Request>,
    state: watch::Receiver<RadioState>,
    capacity: usize,
    /// What the task gives up on when it fails for good, for the error callers get then.
    gave_up: &'static str,
}

impl Requests {
    /// A channel for up to `capacity` requests (at least one), and its task's end.
    /// `state` is the task's state, read to tell a closed driver from one that gave up.
    pub(crate) fn channel(
        capacity: usize,
        state: watch::Receiver<RadioState>,
        gave_up: &'static str,
    ) -> (Self, mpsc::Receiver<Request>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let requests = Self {
            tx,
            state,
            capacity,
            gave_up,
        };
        (requests, rx)
    }

    /// Asks the task to set `modulation` (already checked against the module).
    pub(crate) async fn configure(&self, modulation: &Modulation) -> Result<(), RadioError> {
        self.request(|tx| Request::Configure(*modulation, tx)).await
    }

    /// Asks the task to send `frame`, refusing an empty one or one over `mtu` here.
    pub(crate) async fn send(&self, frame: &[u8], mtu: usize) -> Result<(), RadioError> {
        if frame.len() > mtu {
            return Err(RadioError::FrameTooLarge {
                size: frame.len(),
                mtu,
            });
        }
        if frame.is_empty() {
            return Err(RadioError::EmptyFrame);
        }
        self.request(|tx| Request::Send(frame.to_vec(), tx)).await
    }

    /// Asks the task to put the module to rest and stop. It waits for queue room rather than
    /// failing, since it must get through; a task that has already stopped is shut down.
    pub(crate) async fn shutdown(&self) -> Result<(), RadioError> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Request::Shutdown(tx)).await.is_err() {
            return Ok(());
        }
        rx.await.unwrap_or(Ok(()))
    }

    async fn request(&self, make: impl FnOnce(Answer) -> Request) -> Result<(), RadioError> {
        let (tx, rx) = oneshot::channel();
        match self.tx.try_send(make(tx)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                return Err(RadioError::QueueFull {
                    capacity: self.capacity,
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(self.closed_error()),
        }
        // The task answers every request it took; a dropped answer means it stopped.
        rx.await.unwrap_or_else(|_| Err(self.closed_error()))
    }

    fn closed_error(&self) -> RadioError {
        match *self.state.borrow() {
            RadioState::Failed => RadioError::Failed(format!("gave up {}", self.gave_up)),
            _ => RadioError::Closed,
        }
    }
}
