//! The generic driver: a task that owns the port, and the [`SerialRadio`] handle that talks to it.

pub(crate) mod dialect;
pub(crate) mod open_port;
mod task;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use lorabridge_hardware::Modulation;
use serde::Serialize;
use tokio::sync::{Mutex, mpsc, watch};

use crate::e22::{E22, E22Settings, ModePins};
use crate::rak811::Rak811;
use crate::requests::Requests;
use crate::rnode::Rnode;
use crate::rui3::Rui3;
use crate::{ModuleKind, Radio, RadioError, RadioFuture, RadioState, RxFrame};
use open_port::StatsInner;
pub use open_port::{Port, PortIo};

/// Timeouts, bounds and backoff for one driver. The defaults suit a module on a local serial
/// line at 115200 baud; tests shorten the backoff.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// Longest wait for the answer to one command.
    pub command_timeout: Duration,
    /// Longest wait from "sending" to "sent" (SF12 with 250 bytes is about 9 s on air).
    pub tx_timeout: Duration,
    /// Longest wait for a module to come back after a mode change reboots it.
    pub reset_timeout: Duration,
    /// First reconnect delay; doubles after every failed attempt.
    pub backoff_min: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// Requests (sends, configures) waiting at most, twice over: this many in the channel to
    /// the driver task and this many in its queue; more are refused with
    /// [`RadioError::QueueFull`].
    pub queue_capacity: usize,
    /// How long a queued send may wait for the port to come back before it is failed with
    /// [`RadioError::Unavailable`].
    pub queue_timeout: Duration,
    /// Received frames held for the caller at most; more are dropped and counted.
    pub rx_capacity: usize,
    /// Give up (state [`RadioState::Failed`]) after this many failed reconnects; `None` = never.
    pub max_reconnect_attempts: Option<u32>,
    /// How often a busy module is asked again before the send fails.
    pub busy_retries: u32,
    /// Consecutive command timeouts after which a silent module is treated as unplugged.
    pub timeouts_before_reconnect: u32,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            command_timeout: Duration::from_secs(2),
            tx_timeout: Duration::from_secs(15),
            reset_timeout: Duration::from_secs(5),
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(10),
            queue_capacity: 32,
            queue_timeout: Duration::from_secs(60),
            rx_capacity: 64,
            max_reconnect_attempts: None,
            busy_retries: 4,
            timeouts_before_reconnect: 2,
        }
    }
}

/// How the driver (re)opens its port.
pub trait Connector: Send + Sync + 'static {
    /// Opens the port afresh.
    fn open(&self) -> RadioFuture<'_, Result<Port, RadioError>>;
    /// The port's name for messages.
    fn describe(&self) -> String;
}

/// A serial device path (or a symlink to one: the driver reopens the path, so a stable symlink
/// survives the device number changing on replug).
#[derive(Clone, Debug)]
pub struct SerialConnector {
    pub path: PathBuf,
    pub baud: u32,
}

impl SerialConnector {
    pub fn new(path: impl Into<PathBuf>, baud: u32) -> Self {
        Self {
            path: path.into(),
            baud,
        }
    }
}

impl Connector for SerialConnector {
    fn open(&self) -> RadioFuture<'_, Result<Port, RadioError>> {
        Box::pin(async move {
            use tokio_serial::SerialPortBuilderExt;
            // No flow control and no modem-control lines: USB bridges, Pi UARTs and ptys all
            // work without them, and the ioctls fail on a pty.
            let port = tokio_serial::new(self.path.to_string_lossy(), self.baud)
                .flow_control(tokio_serial::FlowControl::None)
                .open_native_async()
                .map_err(|e| RadioError::Port {
                    path: self.describe(),
                    reason: e.to_string(),
                })?;
            Ok(Box::new(port) as Port)
        })
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// A snapshot of a driver's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DriverStats {
    /// Frames handed to the receive queue.
    pub rx_frames: u64,
    /// Frames dropped because the receive queue was full.
    pub rx_dropped: u64,
    /// Garbage, overlong or malformed input dropped by the parser.
    pub noise: u64,
    /// Frames the module reported sent.
    pub tx_frames: u64,
    /// Successful reconnects.
    pub reconnects: u64,
    /// Commands repeated because the module said it was busy.
    pub busy_retries: u64,
}

/// The SPI chips (`kind` is SX126x or SX127x) are no serial modules: they have their own
/// drivers.
pub(crate) fn not_serial(kind: ModuleKind) -> RadioError {
    let (chip, open) = match kind {
        ModuleKind::Sx127x => ("an SX127x", "sx127x::open"),
        _ => ("an SX126x", "sx126x::open"),
    };
    RadioError::Unsupported {
        module: kind.module_name(),
        reason: format!(
            "{chip} is on SPI, not a serial port, and needs its board's GPIO lines: \
             `lorabridge doctor --board NAME` brings one up (in code: {open})"
        ),
    }
}

/// A LoRa module on a serial port, driven by a background task.
///
/// Dropping the handle stops the task (without the polite radio-off of [`Radio::shutdown`]);
/// the port then closes shortly after, not at once. After [`Radio::shutdown`] returns, the port
/// is already closed and may be reopened.
pub struct SerialRadio {
    kind: ModuleKind,
    mtu: usize,
    requests: Requests,
    frames: Mutex<mpsc::Receiver<RxFrame>>,
    state: watch::Receiver<RadioState>,
    stats: Arc<StatsInner>,
}

impl SerialRadio {
    /// Opens the port, detects the module in `kind`'s dialect and starts the driver task.
    /// Fails if the first open or detect fails, so a wrong port or driver is reported at once;
    /// after that, the driver reconnects by itself.
    ///
    /// An E22 also needs its mode pins and settings: open it with [`SerialRadio::open_e22`].
    pub async fn open(
        kind: ModuleKind,
        connector: impl Connector,
        cfg: DriverConfig,
    ) -> Result<Self, RadioError> {
        let connector = Box::new(connector);
        match kind {
            ModuleKind::Rui3 => Self::open_with(Rui3::default(), connector, cfg).await,
            ModuleKind::Rak811 => Self::open_with(Rak811, connector, cfg).await,
            ModuleKind::Rnode => Self::open_with(Rnode, connector, cfg).await,
            ModuleKind::E22 => Err(RadioError::Unsupported {
                module: ModuleKind::E22.module_name(),
                reason: "an E22 needs its M0/M1/AUX pins: open it with SerialRadio::open_e22"
                    .into(),
            }),
            ModuleKind::Sx126x | ModuleKind::Sx127x => Err(not_serial(kind)),
        }
    }

    /// Opens an Ebyte E22 on its UART (`connector`, at 9600 baud) with its mode pins, as
    /// [`SerialRadio::open`] does for the other modules.
    pub async fn open_e22(
        connector: impl Connector,
        pins: impl ModePins,
        settings: E22Settings,
        cfg: DriverConfig,
    ) -> Result<Self, RadioError> {
        let dialect = E22::new(Box::new(pins), settings);
        Self::open_with(dialect, Box::new(connector), cfg).await
    }

    async fn open_with<D: dialect::Dialect>(
        mut dialect: D,
        connector: Box<dyn Connector>,
        cfg: DriverConfig,
    ) -> Result<Self, RadioError> {
        let stats = Arc::new(StatsInner::default());
        let (frame_tx, frame_rx) = mpsc::channel(cfg.rx_capacity.max(1));
        let sink = open_port::FrameSink {
            tx: frame_tx,
            stats: stats.clone(),
        };
        let mtu = dialect.mtu();
        let port = connector.open().await?;
        let mut first = open_port::OpenPort::<D::Decoder>::new(port, sink.clone());
        dialect
            .detect(&mut first, &cfg)
            .await
            .map_err(|e| e.into_radio(cfg.command_timeout))?;
        let (state_tx, state_rx) = watch::channel(RadioState::Ready);
        let (requests, req_rx) =
            Requests::channel(cfg.queue_capacity, state_rx.clone(), "reconnecting");
        let task = task::Task::<D> {
            dialect,
            connector,
            cfg,
            sink,
            requests: req_rx,
            state: state_tx,
            modulation: None,
            queue: Default::default(),
        };
        tokio::spawn(task.run(first));
        Ok(Self {
            kind: D::KIND,
            mtu,
            requests,
            frames: Mutex::new(frame_rx),
            state: state_rx,
            stats,
        })
    }

    /// The driver's counters.
    pub fn stats(&self) -> DriverStats {
        let s = &self.stats;
        DriverStats {
            rx_frames: s.rx_frames.load(Ordering::Relaxed),
            rx_dropped: s.rx_dropped.load(Ordering::Relaxed),
            noise: s.noise.load(Ordering::Relaxed),
            tx_frames: s.tx_frames.load(Ordering::Relaxed),
            reconnects: s.reconnects.load(Ordering::Relaxed),
            busy_retries: s.busy_retries.load(Ordering::Relaxed),
        }
    }

    /// A watch on the state, for callers that wait for a change (status pages, tests).
    pub fn watch_state(&self) -> watch::Receiver<RadioState> {
        self.state.clone()
    }
}

impl Radio for SerialRadio {
    fn kind(&self) -> ModuleKind {
        self.kind
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn state(&self) -> RadioState {
        *self.state.borrow()
    }

    fn configure<'a>(
        &'a self,
        modulation: &'a Modulation,
    ) -> RadioFuture<'a, Result<(), RadioError>> {
        Box::pin(async move {
            match self.kind {
                ModuleKind::Rui3 => <Rui3 as dialect::Dialect>::check(modulation)?,
                ModuleKind::Rak811 => <Rak811 as dialect::Dialect>::check(modulation)?,
                ModuleKind::Rnode => <Rnode as dialect::Dialect>::check(modulation)?,
                ModuleKind::E22 => <E22 as dialect::Dialect>::check(modulation)?,
                ModuleKind::Sx126x | ModuleKind::Sx127x => return Err(not_serial(self.kind)),
            }
            self.requests.configure(modulation).await
        })
    }

    fn send<'a>(&'a self, frame: &'a [u8]) -> RadioFuture<'a, Result<(), RadioError>> {
        Box::pin(self.requests.send(frame, self.mtu))
    }

    fn recv(&self) -> RadioFuture<'_, Option<RxFrame>> {
        Box::pin(async move { self.frames.lock().await.recv().await })
    }

    fn shutdown(&self) -> RadioFuture<'_, Result<(), RadioError>> {
        Box::pin(self.requests.shutdown())
    }
}
