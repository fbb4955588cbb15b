//! The chip's SPI device and GPIO lines, as the embedded-hal traits the driver takes.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use embedded_hal::digital::{ErrorType as PinErrorType, InputPin, OutputPin};
use embedded_hal::spi::{ErrorType as SpiErrorType, Operation};
use embedded_hal_async::digital::Wait;

use super::Shared;

/// Why an emulated SPI transfer failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmuSpiError {
    Unplugged,
}

impl embedded_hal::spi::Error for EmuSpiError {
    fn kind(&self) -> embedded_hal::spi::ErrorKind {
        embedded_hal::spi::ErrorKind::Other
    }
}

/// The chip's SPI port with its NSS.
pub struct Sx1262Spi(pub(super) Arc<Shared>);

impl SpiErrorType for Sx1262Spi {
    type Error = EmuSpiError;
}

impl embedded_hal_async::spi::SpiDevice for Sx1262Spi {
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
            } else if chip.in_reset {
                vec![0x00; mosi.len()]
            } else if chip.busy() {
                chip.busy_violations += 1;
                vec![chip.status_byte(); mosi.len()]
            } else {
                let (miso, ctl) = chip.execute(&mosi);
                if let Some(c) = ctl {
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

/// BUSY, an output of the chip.
pub struct Sx1262Busy(pub(super) Arc<Shared>);

impl PinErrorType for Sx1262Busy {
    type Error = Infallible;
}

impl InputPin for Sx1262Busy {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(self.0.lock().busy())
    }
    fn is_low(&mut self) -> Result<bool, Infallible> {
        Ok(!self.0.lock().busy())
    }
}

impl Sx1262Busy {
    async fn wait_level(&mut self, high: bool) {
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

impl Wait for Sx1262Busy {
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
        let now = self.0.lock().busy();
        self.wait_level(!now).await;
        Ok(())
    }
}

/// DIO1, the chip's IRQ output.
pub struct Sx1262Dio1(pub(super) Arc<Shared>);

impl PinErrorType for Sx1262Dio1 {
    type Error = Infallible;
}

impl Sx1262Dio1 {
    async fn wait_level(&mut self, high: bool) {
        let mut rx = self.0.dio1.subscribe();
        // The sender lives as long as `Shared`, which this pin holds.
        let _ = rx.wait_for(|level| *level == high).await;
    }
}

impl Wait for Sx1262Dio1 {
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
        let now = *self.0.dio1.borrow();
        self.wait_level(!now).await;
        Ok(())
    }
}

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
