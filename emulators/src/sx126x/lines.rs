//! The chip's SPI device and GPIO lines, as the embedded-hal traits the driver takes.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use embedded_hal::digital::{ErrorType as PinErrorType, InputPin, OutputPin};
use embedded_hal::spi::{ErrorType as SpiErrorType, Operation};

use super::{EmuSpiError, Shared};
use crate::spi_chip::{self, ChipOutput, Irq, Level, SpiChip};

/// The chip's SPI port with its NSS.
pub struct Sx1262Spi(pub(super) Arc<Shared>);

impl SpiErrorType for Sx1262Spi {
    type Error = EmuSpiError;
}

impl embedded_hal_async::spi::SpiDevice for Sx1262Spi {
    async fn transaction(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), EmuSpiError> {
        spi_chip::transaction(&self.0, ops)
    }
}

/// BUSY, an output of the chip.
pub type Sx1262Busy = ChipOutput<Busy>;

/// BUSY's level: high while the chip works on a command, is in reset or is stuck.
pub struct Busy(pub(super) Arc<Shared>);

impl InputPin for Sx1262Busy {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(self.0.is_high())
    }
    fn is_low(&mut self) -> Result<bool, Infallible> {
        Ok(!self.0.is_high())
    }
}

impl Level for Busy {
    fn is_high(&self) -> bool {
        self.0.lock().busy()
    }

    async fn reach(&self, high: bool) {
        loop {
            let (busy, until) = {
                let chip = self.0.lock();
                (chip.busy(), chip.busy_until)
            };
            if busy == high {
                return;
            }
            match Instant::now().checked_duration_since(until) {
                // Busy only until a known time: sleep to it.
                None if !high => tokio::time::sleep_until(until.into()).await,
                // Stuck, in reset, or waiting for high: look again shortly.
                _ => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
    }
}

/// DIO1, the chip's IRQ output.
pub type Sx1262Dio1 = ChipOutput<Irq>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    Reset,
    RxEnable,
    TxEnable,
}

/// A host-driven line into the chip's board: NRESET or an antenna switch enable.
pub struct Sx1262Line {
    pub(super) shared: Arc<Shared>,
    pub(super) role: Role,
}

impl PinErrorType for Sx1262Line {
    type Error = Infallible;
}

impl Sx1262Line {
    fn set(&mut self, high: bool) {
        let mut chip = self.shared.lock();
        match self.role {
            Role::RxEnable => chip.rx_enable = high,
            Role::TxEnable => chip.tx_enable = high,
            Role::Reset if !chip.powered => {}
            Role::Reset if !high => {
                chip.in_reset = true;
                chip.standby();
            }
            Role::Reset => {
                if chip.in_reset {
                    chip.reset_keeping_faults();
                }
            }
        }
        self.shared.settle(&chip);
    }
}

impl OutputPin for Sx1262Line {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.set(false);
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        self.set(true);
        Ok(())
    }
}
