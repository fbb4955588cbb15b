//! The chip's SPI port and GPIO lines, as the embedded-hal traits the driver takes.

use std::convert::Infallible;
use std::sync::Arc;

use embedded_hal::digital::{ErrorType as PinErrorType, OutputPin};
use embedded_hal::spi::{ErrorType as SpiErrorType, Operation};

use super::{EmuSpiError, Shared};
use crate::spi_chip::{self, ChipOutput, Irq, SpiChip};

/// The chip's SPI port with its NSS.
pub struct Sx1276Spi(pub(super) Arc<Shared>);

impl SpiErrorType for Sx1276Spi {
    type Error = EmuSpiError;
}

impl embedded_hal_async::spi::SpiDevice for Sx1276Spi {
    async fn transaction(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), EmuSpiError> {
        spi_chip::transaction(&self.0, ops)
    }
}

/// DIO0, the chip's IRQ output.
pub type Sx1276Dio0 = ChipOutput<Irq>;

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
