//! One open port plus the parser that reads it: the I/O half every dialect shares.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::{RadioError, RxFrame};

/// Anything a driver can talk through: a serial port, or an in-memory pipe in unit tests.
pub trait PortIo: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> PortIo for T {}

/// An open port.
pub type Port = Box<dyn PortIo>;

/// What a pure parser's event means to the driver.
pub enum Classified<E> {
    /// A received frame, to be handed to the caller.
    Frame {
        payload: Vec<u8>,
        rssi: Option<i16>,
        snr: Option<f32>,
    },
    /// Garbage, overlong or malformed input: counted and dropped.
    Noise,
    /// Anything else: a reply or report the dialect may be waiting for.
    Event(E),
}

/// A pure parser, as the driver uses it.
pub trait Decode: Default + Send + 'static {
    type Event: Send + fmt::Debug + 'static;
    fn push(&mut self, bytes: &[u8], out: &mut Vec<Self::Event>);
    fn classify(event: Self::Event) -> Classified<Self::Event>;
}

/// Why the port stopped working.
#[derive(Debug, Clone, PartialEq)]
pub enum PortError {
    /// Reading or writing failed: the port is gone (unplugged, pty closed).
    Io(String),
    /// Nothing (or nothing expected) arrived before the deadline.
    Timeout,
}

/// Counters a driver keeps; shared with its handle.
#[derive(Debug, Default)]
pub struct StatsInner {
    pub rx_frames: AtomicU64,
    pub rx_dropped: AtomicU64,
    pub noise: AtomicU64,
    pub tx_frames: AtomicU64,
    pub reconnects: AtomicU64,
    pub busy_retries: AtomicU64,
}

/// Where received frames go. Bounded: when the caller stops reading, new frames are dropped
/// and counted rather than buffered without limit (the radio itself is lossy anyway).
#[derive(Clone)]
pub struct FrameSink {
    pub tx: mpsc::Sender<RxFrame>,
    pub stats: Arc<StatsInner>,
}

impl FrameSink {
    fn deliver(&self, payload: Vec<u8>, rssi: Option<i16>, snr: Option<f32>) {
        let frame = RxFrame {
            payload,
            rssi_dbm: rssi,
            snr_db: snr,
        };
        match self.tx.try_send(frame) {
            Ok(()) => self.stats.rx_frames.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.stats.rx_dropped.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// An open port with its parser.
///
/// Memory: the parser's bound plus a queue of not-yet-consumed reply events, itself bounded
/// to [`MAX_EVENTS`] (the oldest are dropped: a module flooding replies nobody asked for).
pub struct OpenPort<D: Decode> {
    port: Port,
    decoder: D,
    events: std::collections::VecDeque<D::Event>,
    scratch: Vec<D::Event>,
    sink: FrameSink,
    buf: Box<[u8; 512]>,
}

/// Most reply events kept between commands.
pub const MAX_EVENTS: usize = 64;

impl<D: Decode> OpenPort<D> {
    pub fn new(port: Port, sink: FrameSink) -> Self {
        Self {
            port,
            decoder: D::default(),
            events: Default::default(),
            scratch: Vec::new(),
            sink,
            buf: Box::new([0; 512]),
        }
    }

    /// Writes all bytes, within `timeout`.
    pub async fn write(&mut self, bytes: &[u8], timeout: Duration) -> Result<(), PortError> {
        let io = async {
            self.port.write_all(bytes).await?;
            self.port.flush().await
        };
        match tokio::time::timeout(timeout, io).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(PortError::Io(e.to_string())),
            Err(_) => Err(PortError::Timeout),
        }
    }

    /// The parser, for dialects whose parser must be told what the module is about to say
    /// (the E22 speaks registers in one mode and data in another).
    pub fn decoder_mut(&mut self) -> &mut D {
        &mut self.decoder
    }

    /// The driver's counters.
    pub fn stats(&self) -> &StatsInner {
        &self.sink.stats
    }

    /// Forgets reply events left over from earlier exchanges, so that a late `OK` is never
    /// taken as the answer to the next command.
    pub fn clear_events(&mut self) {
        self.events.clear();
    }

    /// Reads once from the port and processes what arrived. Cancel-safe: the read either
    /// completes (and its bytes are processed synchronously) or takes nothing.
    pub async fn pump(&mut self) -> Result<(), PortError> {
        let n = self
            .port
            .read(&mut self.buf[..])
            .await
            .map_err(|e| PortError::Io(e.to_string()))?;
        if n == 0 {
            return Err(PortError::Io("end of file".into()));
        }
        self.decoder.push(&self.buf[..n], &mut self.scratch);
        for ev in self.scratch.drain(..) {
            match D::classify(ev) {
                Classified::Frame { payload, rssi, snr } => self.sink.deliver(payload, rssi, snr),
                Classified::Noise => {
                    self.sink.stats.noise.fetch_add(1, Ordering::Relaxed);
                }
                Classified::Event(e) => {
                    if self.events.len() >= MAX_EVENTS {
                        self.events.pop_front();
                    }
                    self.events.push_back(e);
                }
            }
        }
        Ok(())
    }

    /// The next reply event, waiting at most until `deadline`. Frames that arrive meanwhile are
    /// delivered to the caller's receive queue, not returned here.
    pub async fn next_event(&mut self, deadline: Instant) -> Result<D::Event, PortError> {
        loop {
            if let Some(ev) = self.events.pop_front() {
                return Ok(ev);
            }
            match tokio::time::timeout_at(deadline, self.pump()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(PortError::Timeout),
            }
        }
    }

    /// Waits until `deadline` for an event `pick` accepts; other events are dropped.
    pub async fn wait_for<T>(
        &mut self,
        deadline: Instant,
        mut pick: impl FnMut(D::Event) -> Option<T>,
    ) -> Result<T, PortError> {
        loop {
            let ev = self.next_event(deadline).await?;
            if let Some(t) = pick(ev) {
                return Ok(t);
            }
        }
    }

    /// Reads whatever arrives during `quiet`, keeping frames and dropping replies; used after a
    /// module reboot to let its banner pass.
    pub async fn settle(&mut self, quiet: Duration) -> Result<(), PortError> {
        let deadline = Instant::now() + quiet;
        loop {
            match tokio::time::timeout_at(deadline, self.pump()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    self.events.clear();
                    return Ok(());
                }
            }
        }
    }
}

/// The outcome of one step of a dialect exchange.
#[derive(Debug)]
pub enum StepError {
    /// The port failed or stayed silent; the driver reconnects (at once for I/O errors, after
    /// repeated timeouts for silence). Carries the command, and how long was waited when that
    /// differs from the command timeout.
    Port(PortError, String, Option<Duration>),
    /// The module refused or answered wrongly; the caller hears about it.
    Radio(RadioError),
}

impl StepError {
    /// A timeout or I/O failure while running `command`, within the command timeout.
    pub fn port(e: PortError, command: &str) -> Self {
        StepError::Port(e, command.to_string(), None)
    }

    /// A timeout or I/O failure while waiting `waited` for `command` to complete.
    pub fn port_after(e: PortError, command: &str, waited: Duration) -> Self {
        StepError::Port(e, command.to_string(), Some(waited))
    }

    /// What the caller is told; `timeout` is the command timeout.
    pub fn into_radio(self, timeout: Duration) -> RadioError {
        match self {
            StepError::Radio(e) => e,
            StepError::Port(PortError::Timeout, command, waited) => RadioError::Timeout {
                command,
                timeout: waited.unwrap_or(timeout),
            },
            StepError::Port(PortError::Io(reason), command, _) => RadioError::Port {
                path: "(the open port)".into(),
                reason: format!("{reason} (during {command:?})"),
            },
        }
    }
}
