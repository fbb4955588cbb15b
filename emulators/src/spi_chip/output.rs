//! A chip's output lines the driver waits on (BUSY, DIO1, DIO0), as embedded-hal's `Wait`.
//! Each line only says how to wait for a level; the edges follow from the levels the same
//! way for every line, so they are written once here.

use std::convert::Infallible;
use std::sync::Arc;

use embedded_hal::digital::ErrorType;
use embedded_hal_async::digital::Wait;
use tokio::sync::watch;

/// How one output line is read and waited on.
pub trait Level {
    /// The line's level now.
    fn is_high(&self) -> bool;
    /// Returns once the line is at `high`.
    fn reach(&self, high: bool) -> impl Future<Output = ()>;
}

/// A chip output as the driver's input pin.
pub struct ChipOutput<L>(pub(crate) L);

impl<L> ErrorType for ChipOutput<L> {
    type Error = Infallible;
}

impl<L: Level> Wait for ChipOutput<L> {
    async fn wait_for_high(&mut self) -> Result<(), Infallible> {
        self.0.reach(true).await;
        Ok(())
    }
    async fn wait_for_low(&mut self) -> Result<(), Infallible> {
        self.0.reach(false).await;
        Ok(())
    }
    async fn wait_for_rising_edge(&mut self) -> Result<(), Infallible> {
        self.0.reach(false).await;
        self.0.reach(true).await;
        Ok(())
    }
    async fn wait_for_falling_edge(&mut self) -> Result<(), Infallible> {
        self.0.reach(true).await;
        self.0.reach(false).await;
        Ok(())
    }
    async fn wait_for_any_edge(&mut self) -> Result<(), Infallible> {
        let now = self.0.is_high();
        self.0.reach(!now).await;
        Ok(())
    }
}

/// The IRQ line (DIO1, DIO0): its level is published whenever the chip settles.
pub struct Irq(pub(crate) Arc<watch::Sender<bool>>);

impl Level for Irq {
    fn is_high(&self) -> bool {
        *self.0.borrow()
    }

    async fn reach(&self, high: bool) {
        let mut rx = self.0.subscribe();
        // The sender lives as long as this line, which holds it.
        let _ = rx.wait_for(|level| *level == high).await;
    }
}
