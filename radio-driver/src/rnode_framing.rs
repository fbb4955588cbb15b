//! Lets an AT module (RUI3, RAK811) share a channel with RNodes.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use lorabridge_hardware::{Modulation, OnAir};

use crate::rnode::air::{self, Joiner, Unwrapped};
use crate::{ModuleKind, Radio, RadioError, RadioFuture, RadioState, RxFrame};

/// Adds and strips the one-byte packet header RNode firmware uses on air (see
/// [`crate::rnode::air`]), so frames between an AT module and an RNode arrive unchanged.
/// Without it an RNode drops the first byte of what an AT module sends (and may read it as
/// "split"), and the AT module sees the RNode's header as payload.
///
/// The MTU shrinks by one byte (and to at most 254). Split frames from RNode peers are joined;
/// memory: one held half.
pub struct RnodeFraming<R> {
    inner: R,
    sequence: AtomicU8,
    joiner: Mutex<Joiner>,
}

impl<R: Radio> RnodeFraming<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            sequence: AtomicU8::new(0),
            joiner: Mutex::new(Joiner::new()),
        }
    }

    /// The wrapped radio.
    pub fn inner(&self) -> &R {
        &self.inner
    }
}

/// The largest frame in RNode framing over a module that takes `inner_mtu`: the header byte
/// takes one, and a frame stays one RNode packet.
pub fn framed_mtu(inner_mtu: usize) -> usize {
    inner_mtu.saturating_sub(1).min(air::AIR_CHUNK)
}

/// What a frame costs on air in RNode framing over a module that costs `inner`: its header
/// byte goes with every packet.
pub fn framed_on_air(inner: OnAir) -> OnAir {
    OnAir {
        added_bytes: inner.added_bytes + 1,
        ..inner
    }
}

/// `radio` as the daemon holds it: in RNode framing when its channel has RNodes on it
/// (`rnode_framing` in the `[radio]` table), else as it is.
pub fn shared<R: Radio + 'static>(radio: R, rnode_framing: bool) -> Arc<dyn Radio> {
    if rnode_framing {
        Arc::new(RnodeFraming::new(radio))
    } else {
        Arc::new(radio)
    }
}

impl<R: Radio> Radio for RnodeFraming<R> {
    fn kind(&self) -> ModuleKind {
        self.inner.kind()
    }

    fn mtu(&self) -> usize {
        framed_mtu(self.inner.mtu())
    }

    fn on_air(&self, modulation: &Modulation) -> OnAir {
        framed_on_air(self.inner.on_air(modulation))
    }

    fn state(&self) -> RadioState {
        self.inner.state()
    }

    fn configure<'a>(
        &'a self,
        modulation: &'a Modulation,
    ) -> RadioFuture<'a, Result<(), RadioError>> {
        self.inner.configure(modulation)
    }

    fn send<'a>(&'a self, frame: &'a [u8]) -> RadioFuture<'a, Result<(), RadioError>> {
        Box::pin(async move {
            if frame.len() > self.mtu() {
                return Err(RadioError::FrameTooLarge {
                    size: frame.len(),
                    mtu: self.mtu(),
                });
            }
            let seq = self.sequence.fetch_add(1, Ordering::Relaxed);
            let packet = air::wrap(frame, seq).ok_or(RadioError::FrameTooLarge {
                size: frame.len(),
                mtu: self.mtu(),
            })?;
            self.inner.send(&packet).await
        })
    }

    fn recv(&self) -> RadioFuture<'_, Option<RxFrame>> {
        Box::pin(async move {
            loop {
                let mut frame = self.inner.recv().await?;
                let unwrapped = self
                    .joiner
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(&frame.payload);
                if let Unwrapped::Frame(payload) = unwrapped {
                    frame.payload = payload;
                    return Some(frame);
                }
            }
        })
    }

    fn shutdown(&self) -> RadioFuture<'_, Result<(), RadioError>> {
        self.inner.shutdown()
    }
}
