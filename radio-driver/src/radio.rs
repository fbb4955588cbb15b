//! The `Radio` trait: what the rest of lorabridge needs from a LoRa link.

use std::future::Future;
use std::pin::Pin;

use lorabridge_hardware::{Modulation, ModuleKind, OnAir};
use serde::{Deserialize, Serialize};

use crate::RadioError;
use crate::limits::DriverFacts;

/// A boxed, sendable future borrowed from the radio.
///
/// The trait returns boxed futures instead of using `async fn` so that it stays object-safe:
/// the daemon picks the driver from its configuration at run time (`Box<dyn Radio>`), and
/// wrappers such as [`crate::RnodeFraming`] compose over either. One allocation per call is
/// nothing next to a LoRa transmission (tens of milliseconds to seconds of airtime).
pub type RadioFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A LoRa link to one module.
///
/// Every method takes `&self`, so one task may wait for frames while another sends.
///
/// **Cancel safety.** Every returned future may be dropped at any await point without
/// corrupting the driver: the driver's own task performs the exchange with the module.
/// Dropping a [`Radio::send`] future after the frame was queued does not unsend it: the frame
/// still goes out (or fails) and only the outcome is lost. Dropping [`Radio::recv`] never
/// loses a frame: frames wait in a bounded queue until the next call.
pub trait Radio: Send + Sync {
    /// Which dialect this radio speaks.
    fn kind(&self) -> ModuleKind;

    /// Largest frame, in bytes, that [`Radio::send`] accepts.
    fn mtu(&self) -> usize;

    /// What a frame costs on air with `modulation`: what the airtime ledger must charge. The
    /// module kind's model, unless a wrapper adds bytes of its own.
    fn on_air(&self, modulation: &Modulation) -> OnAir {
        self.kind().on_air(modulation)
    }

    /// The driver's state right now.
    fn state(&self) -> RadioState;

    /// Configures the modulation; it is re-applied by the driver after every reconnect.
    fn configure<'a>(
        &'a self,
        modulation: &'a Modulation,
    ) -> RadioFuture<'a, Result<(), RadioError>>;

    /// Transmits one frame; resolves when the module reports it sent, or with the reason it was
    /// not. Frames above [`Radio::mtu`] are refused with [`RadioError::FrameTooLarge`].
    ///
    /// While the port is away the frame waits in the driver's queue and goes out after the
    /// reconnect, or fails with [`RadioError::Unavailable`] after the queue timeout: it is never
    /// dropped silently. If the port dies after the module took the frame but before it
    /// confirmed, the frame is sent again after the reconnect, so it may go out twice; the mesh
    /// layer de-duplicates. (RNode firmware confirms nothing over KISS: for an RNode this
    /// resolves once the frame is written to the port.)
    fn send<'a>(&'a self, frame: &'a [u8]) -> RadioFuture<'a, Result<(), RadioError>>;

    /// The next received frame, or `None` once the driver has shut down.
    fn recv(&self) -> RadioFuture<'_, Option<RxFrame>>;

    /// Switches the receiver off (where the module has one to switch) and stops the driver.
    /// Frames still queued are answered with [`RadioError::Closed`].
    fn shutdown(&self) -> RadioFuture<'_, Result<(), RadioError>>;
}

/// One received frame with what the module measured.
#[derive(Clone, Debug, PartialEq)]
pub struct RxFrame {
    /// The payload as the module delivered it.
    pub payload: Vec<u8>,
    /// Received signal strength in dBm, when the module reported one.
    pub rssi_dbm: Option<i16>,
    /// Signal-to-noise ratio in dB, when the module reported one.
    pub snr_db: Option<f32>,
}

/// What a driver is doing, for status pages and for callers that want to wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RadioState {
    /// Connected, configured (if asked to be) and idle or receiving.
    Ready,
    /// Transmitting or talking to the module.
    Busy,
    /// The port went away or stopped answering; the driver is reopening it with backoff.
    /// Sends wait in the queue until it is back or their queue timeout passes.
    Reconnecting,
    /// The driver gave up (see [`crate::DriverConfig::max_reconnect_attempts`]); sends fail.
    Failed,
    /// [`Radio::shutdown`] was called or the driver's handle was dropped.
    Closed,
}
