//! The chip's SPI port and GPIO lines, as the embedded-hal traits the driver takes.

use std::convert::Infallible;
use std::sync::Arc;

use embedded_hal::digital::{ErrorType as PinErrorType, OutputPin};
use embedded_hal::spi::{ErrorType as SpiErrorType, Operation};
use embedded_hal_async::digital::Wait;

use super::{EmuSpiError, Shared};

/// The chip's SPI port with its NSS.
pub struct Sx1276Spi(pub(super) Arc<Shared>);

impl SpiErrorType for Sx1276Spi {
    type Error = EmuSpiError;
}

impl embedded_hal_async::spi::SpiDevice for Sx1276Spi {
    async fn transaction(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), EmuSpiError> {
        if self.0.unplugged() {
            return Err(EmuSpiError::Unplugged);
        }
        let mut mosi = Vec::new();
        for o in ops.iter() {
            match o {
                Operation::Write(w) => mosi.extend_from_slice(w),
                Operation::Transfer(_, w) => mosi.extend_from_slice(w),
                Operation::TransferInPlace(b) => mosi.extend_from_slice(b),
                Operation::Read(r) => mosi.extend(std::iter::repeat_n(0u8, r.len())),
                Operation::DelayNs(_) => {}
            }
        }
        let miso = {
            let mut chip = self.0.lock();
            let miso = if chip.garbage > 0 {
                chip.garbage -= 1;
                vec![0xFF; mosi.len()]
            } else if chip.in_reset || chip.hung {
                vec![0x00; mosi.len()]
            } else {
                let (miso, ctl) = chip.execute(&mosi);
                for c in ctl {
                    let _ = self.0.ctl.send(c);
                }
                miso
            };
            self.0.settle(&chip);
            miso
        };
        let mut at = 0;
        for o in ops.iter_mut() {
            match o {
                Operation::Write(w) => at += w.len(),
                Operation::Transfer(r, w) => {
                    let n = r.len().min(w.len());
                    r[..n].copy_from_slice(&miso[at..at + n]);
                    at += w.len();
                }
                Operation::TransferInPlace(b) => {
                    let n = b.len();
                    b.copy_from_slice(&miso[at..at + n]);
                    at += n;
                }
                Operation::Read(r) => {
                    let n = r.len();
                    r.copy_from_slice(&miso[at..at + n]);
                    at += n;
                }
                Operation::DelayNs(_) => {}
            }
        }
        Ok(())
    }
}

/// DIO0, the chip's IRQ output.
pub struct Sx1276Dio0(pub(super) Arc<Shared>);

impl PinErrorType for Sx1276Dio0 {
    type Error = Infallible;
}

impl Sx1276Dio0 {
    async fn wait_level(&mut self, high: bool) {
        let mut rx = self.0.dio0.subscribe();
        // The sender lives as long as `Shared`, which this pin holds.
        let _ = rx.wait_for(|level| *level == high).await;
    }
}

impl Wait for Sx1276Dio0 {
    async fn wait_for_high(&mut self) -> Result<(), Infallible> {
        self.wait_level(true).await;
        Ok(())
    }
    async fn wait_for_low(&mut self) -> Result<(), Infallible> {
        self.wait_level(false).await;
        Ok(())
    }
    async fn wait_for_rising_edge(&mut self) -> Result<(), Infallible> {
        self.wait_level(false).await;
        self.wait_level(true).await;
        Ok(())
    }
    async fn wait_for_falling_edge(&mut self) -> Result<(), Infallible> {
        self.wait_level(true).await;
        self.wait_level(false).await;
        Ok(())
    }
    async fn wait_for_any_edge(&mut self) -> Result<(), Infallible> {
        let now = *self.0.dio0.borrow();
        self.wait_level(!now).await;
        Ok(())
    }
}

/// NRESET, driven by the host.
pub struct Sx1276Reset(pub(super) Arc<Shared>);

impl PinErrorType for Sx1276Reset {
    type Error = Infallible;
}

impl Sx1276Reset {
    fn set(&mut self, high: bool) {
        let mut chip = self.0.lock();
        if chip.powered {
            if !high {
                chip.in_reset = true;
                chip.timer = None;
            } else if chip.in_reset {
                chip.reset_keeping_faults();
            }
        }
        self.0.settle(&chip);
    }
}

impl OutputPin for Sx1276Reset {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.set(false);
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        self.set(true);
        Ok(())
    }
}
