//! The command layer: one SX126x on an SPI device and its control lines, every exchange
//! bounded in time.
//!
//! The SX126x raises BUSY while it works on a command and ignores anything sent meanwhile,
//! so every command waits for BUSY low first, and a BUSY that never falls is reported as
//! [`RadioError::Timeout`] instead of hanging the driver.

use std::time::Duration;

use embedded_hal::digital::{InputPin, OutputPin};
use embedded_hal_async::digital::Wait;
use embedded_hal_async::spi::SpiDevice;

use super::commands::{self, CommandStatus, Status, op};
use crate::RadioError;
use crate::spi_radio::{gpio_failed, spi_failed};

/// The chip's lines, as the board wires them.
///
/// `O` is one output type for every host-driven line (on Linux, all are GPIO lines).
pub struct Bus<S, B, D, O> {
    /// The SPI device with the chip's NSS as its chip select.
    pub spi: S,
    /// BUSY: high while the chip cannot take a command.
    pub busy: B,
    /// DIO1: the interrupt line the driver routes its IRQs to.
    pub dio1: D,
    /// NRESET, active low.
    pub reset: O,
    /// Host-driven antenna switch, receive side (where the board has one).
    pub rx_enable: Option<O>,
    /// Host-driven antenna switch, transmit side (where the board has one).
    pub tx_enable: Option<O>,
}

/// How long NRESET is held low: the datasheet asks for at least 100 µs.
const RESET_PULSE: Duration = Duration::from_millis(1);

/// Which way the host-driven antenna switch points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Antenna {
    Off,
    Rx,
    Tx,
}

pub struct Chip<S, B, D, O> {
    bus: Bus<S, B, D, O>,
    /// Longest wait for BUSY to fall.
    busy_timeout: Duration,
    /// Exchange buffer; at most opcode + 3 parameter bytes + status + 255 data bytes.
    buf: Vec<u8>,
}

/// A readable name for an opcode in messages.
pub fn name(opcode: u8) -> String {
    format!("SX126x command {opcode:#04x}")
}

impl<S, B, D, O> Chip<S, B, D, O>
where
    S: SpiDevice,
    B: InputPin + Wait,
    D: Wait,
    O: OutputPin,
{
    pub fn new(bus: Bus<S, B, D, O>, busy_timeout: Duration) -> Self {
        Self {
            bus,
            busy_timeout,
            buf: Vec::with_capacity(4 + 1 + commands::MAX_PAYLOAD + 1),
        }
    }

    /// Pulses NRESET and waits for the chip to come up (BUSY low).
    pub async fn reset(&mut self) -> Result<(), RadioError> {
        self.antenna(Antenna::Off)?;
        self.bus
            .reset
            .set_low()
            .map_err(|e| gpio_failed("RESET", e))?;
        tokio::time::sleep(RESET_PULSE).await;
        self.bus
            .reset
            .set_high()
            .map_err(|e| gpio_failed("RESET", e))?;
        self.wait_ready("reset").await
    }

    /// Waits for BUSY low, at most the busy timeout.
    async fn wait_ready(&mut self, before: &str) -> Result<(), RadioError> {
        if self.bus.busy.is_low().map_err(|e| gpio_failed("BUSY", e))? {
            return Ok(());
        }
        match tokio::time::timeout(self.busy_timeout, self.bus.busy.wait_for_low()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(gpio_failed("BUSY", e)),
            Err(_) => Err(RadioError::Timeout {
                command: format!("BUSY low ({before}): the SX126x stays busy"),
                timeout: self.busy_timeout,
            }),
        }
    }

    /// Sends a command that answers nothing.
    pub async fn command(&mut self, opcode: u8, params: &[u8]) -> Result<(), RadioError> {
        self.wait_ready(&name(opcode)).await?;
        self.buf.clear();
        self.buf.push(opcode);
        self.buf.extend_from_slice(params);
        self.bus
            .spi
            .write(&self.buf)
            .await
            .map_err(|e| spi_failed(&name(opcode), e))
    }

    /// Sends a command with `params` (addresses, offsets) and reads `n` data bytes after its
    /// status byte. Fails with [`RadioError::Protocol`] when the status byte is no chip's
    /// (an empty bus), so a missing radio is never mistaken for an answer.
    pub async fn read(
        &mut self,
        opcode: u8,
        params: &[u8],
        n: usize,
    ) -> Result<(Status, &[u8]), RadioError> {
        self.wait_ready(&name(opcode)).await?;
        self.buf.clear();
        self.buf.push(opcode);
        self.buf.extend_from_slice(params);
        let status_at = self.buf.len();
        self.buf.resize(status_at + 1 + n, 0x00);
        self.bus
            .spi
            .transfer_in_place(&mut self.buf)
            .await
            .map_err(|e| spi_failed(&name(opcode), e))?;
        let status = commands::decode_status(self.buf[status_at]).ok_or_else(|| {
            RadioError::Protocol(format!(
                "no SX126x answers on SPI: status byte {:#04x} after {} (radio missing, \
                 unpowered or miswired?)",
                self.buf[status_at],
                name(opcode)
            ))
        })?;
        Ok((status, &self.buf[status_at + 1..]))
    }

    /// GetStatus, refusing a status that reports the last command failed.
    pub async fn status(&mut self, after: &str) -> Result<Status, RadioError> {
        let (status, _) = self.read(op::GET_STATUS, &[], 0).await?;
        match status.command {
            CommandStatus::ProcessingError | CommandStatus::ExecFailure => {
                Err(RadioError::Rejected {
                    command: after.to_string(),
                    reply: format!("{:?}", status.command),
                })
            }
            _ => Ok(status),
        }
    }

    pub async fn write_register(&mut self, addr: u16, data: &[u8]) -> Result<(), RadioError> {
        let [hi, lo] = addr.to_be_bytes();
        let mut params = vec![hi, lo];
        params.extend_from_slice(data);
        self.command(op::WRITE_REGISTER, &params).await
    }

    pub async fn read_register(&mut self, addr: u16, n: usize) -> Result<Vec<u8>, RadioError> {
        let (_, data) = self.read(op::READ_REGISTER, &addr.to_be_bytes(), n).await?;
        Ok(data.to_vec())
    }

    /// GetIrqStatus then ClearIrqStatus of what was read.
    pub async fn take_irq(&mut self) -> Result<u16, RadioError> {
        let (_, data) = self.read(op::GET_IRQ_STATUS, &[], 2).await?;
        let flags = u16::from_be_bytes([data[0], data[1]]);
        if flags != 0 {
            self.command(op::CLEAR_IRQ_STATUS, &flags.to_be_bytes())
                .await?;
        }
        Ok(flags)
    }

    /// Waits for DIO1 high (an IRQ routed to it is pending). Cancel-safe: it only watches a
    /// line.
    pub async fn wait_irq(&mut self) -> Result<(), RadioError> {
        self.bus
            .dio1
            .wait_for_high()
            .await
            .map_err(|e| gpio_failed("DIO1", e))
    }

    /// Points the host-driven antenna switch, if the board has one.
    pub fn antenna(&mut self, way: Antenna) -> Result<(), RadioError> {
        let (rx, tx) = match way {
            Antenna::Off => (false, false),
            Antenna::Rx => (true, false),
            Antenna::Tx => (false, true),
        };
        // Off before on, so both sides are never enabled together.
        for (pin, on, line) in [
            (&mut self.bus.rx_enable, rx, "RX enable"),
            (&mut self.bus.tx_enable, tx, "TX enable"),
        ] {
            if let (Some(pin), false) = (pin.as_mut(), on) {
                pin.set_low().map_err(|e| gpio_failed(line, e))?;
            }
        }
        for (pin, on, line) in [
            (&mut self.bus.rx_enable, rx, "RX enable"),
            (&mut self.bus.tx_enable, tx, "TX enable"),
        ] {
            if let (Some(pin), true) = (pin.as_mut(), on) {
                pin.set_high().map_err(|e| gpio_failed(line, e))?;
            }
        }
        Ok(())
    }
}
