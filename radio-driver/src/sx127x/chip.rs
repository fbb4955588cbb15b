//! The register layer: one SX127x on an SPI device with DIO0 and NRESET, every exchange
//! checked.
//!
//! The SX127x has no BUSY line and no status byte: a register write is never acknowledged,
//! and an empty bus reads as 0x00 or 0xFF. So the driver checks the chip where it can:
//! RegVersion after each reset, and RegOpMode after every mode change
//! ([`Chip::set_mode`]), which fails with [`RadioError::Protocol`] when the chip is not in the
//! mode it was put in (a lost write, a garbled bus, a missing chip).

use std::time::Duration;

use embedded_hal::digital::OutputPin;
use embedded_hal_async::digital::Wait;
use embedded_hal_async::spi::SpiDevice;

use super::registers::{self as reg, Dio0, Mode};
use crate::RadioError;
use crate::spi_radio::{gpio_failed, spi_failed};

/// The chip's lines, as the board wires them. `O` is the host-driven NRESET line.
pub struct Bus<S, D, O> {
    /// The SPI device with the chip's NSS as its chip select.
    pub spi: S,
    /// DIO0: the interrupt line (RxDone, TxDone or CadDone, per RegDioMapping1).
    pub dio0: D,
    /// NRESET, active low.
    pub reset: O,
}

/// How long NRESET is held low (datasheet §7.2.2: at least 100 µs), and how long the chip is
/// given after it rises (at least 5 ms).
const RESET_PULSE: Duration = Duration::from_millis(1);
const RESET_READY: Duration = Duration::from_millis(10);

pub struct Chip<S, D, O> {
    bus: Bus<S, D, O>,
    /// The frequency last set, for RegOpMode's low-frequency bit.
    frequency_hz: u32,
    /// Exchange buffer; at most the address byte and a whole FIFO.
    buf: Vec<u8>,
}

impl<S, D, O> Chip<S, D, O>
where
    S: SpiDevice,
    D: Wait,
    O: OutputPin,
{
    pub fn new(bus: Bus<S, D, O>) -> Self {
        Self {
            bus,
            frequency_hz: 0,
            buf: Vec::with_capacity(1 + reg::FIFO_SIZE),
        }
    }

    /// Pulses NRESET and checks RegVersion: a missing, unpowered or hung chip fails here.
    pub async fn reset(&mut self) -> Result<(), RadioError> {
        self.bus
            .reset
            .set_low()
            .map_err(|e| gpio_failed("RESET", e))?;
        tokio::time::sleep(RESET_PULSE).await;
        self.bus
            .reset
            .set_high()
            .map_err(|e| gpio_failed("RESET", e))?;
        tokio::time::sleep(RESET_READY).await;
        let version = self.read(reg::REG_VERSION).await?;
        if version != reg::VERSION {
            return Err(RadioError::Protocol(format!(
                "no SX127x answers on SPI: RegVersion reads {version:#04x}, not {:#04x} (radio \
                 missing, unpowered, miswired, or another chip?)",
                reg::VERSION
            )));
        }
        Ok(())
    }

    pub async fn write(&mut self, addr: u8, value: u8) -> Result<(), RadioError> {
        self.write_burst(addr, &[value]).await
    }

    /// Writes consecutive registers (or, at RegFifo, bytes into the FIFO).
    pub async fn write_burst(&mut self, addr: u8, data: &[u8]) -> Result<(), RadioError> {
        self.buf.clear();
        self.buf.push(addr | reg::WRITE);
        self.buf.extend_from_slice(data);
        self.bus
            .spi
            .write(&self.buf)
            .await
            .map_err(|e| spi_failed(&format!("write {addr:#04x}"), e))
    }

    pub async fn read(&mut self, addr: u8) -> Result<u8, RadioError> {
        Ok(self.read_burst(addr, 1).await?[0])
    }

    /// Reads `n` consecutive registers (or, at RegFifo, `n` bytes from the FIFO).
    pub async fn read_burst(&mut self, addr: u8, n: usize) -> Result<&[u8], RadioError> {
        self.buf.clear();
        self.buf.push(addr & !reg::WRITE);
        self.buf.resize(1 + n, 0x00);
        self.bus
            .spi
            .transfer_in_place(&mut self.buf)
            .await
            .map_err(|e| spi_failed(&format!("read {addr:#04x}"), e))?;
        Ok(&self.buf[1..])
    }

    /// The frequency RegOpMode's low-frequency bit follows from now on.
    pub fn set_frequency(&mut self, hz: u32) {
        self.frequency_hz = hz;
    }

    /// The frequency last set (0 before any), which picks the RSSI offset of its port.
    pub fn frequency_hz(&self) -> u32 {
        self.frequency_hz
    }

    /// Puts the chip in `mode` (LoRa) with DIO0 mapped to `dio0`, and reads RegOpMode back.
    pub async fn set_mode(&mut self, mode: Mode, dio0: Option<Dio0>) -> Result<(), RadioError> {
        if let Some(map) = dio0 {
            self.write(reg::REG_DIO_MAPPING1, map.mapping()).await?;
        }
        let want = reg::op_mode(mode, self.frequency_hz);
        self.write(reg::REG_OP_MODE, want).await?;
        self.check_mode(mode).await
    }

    /// Fails unless RegOpMode reads LoRa in `mode`; TX and CAD may have ended already (the
    /// chip returns to standby by itself), so standby counts for them.
    pub async fn check_mode(&mut self, mode: Mode) -> Result<(), RadioError> {
        let got = self.read(reg::REG_OP_MODE).await?;
        let got_mode = Mode::from_bits(got);
        let ended = matches!(mode, Mode::Tx | Mode::Cad) && got_mode == Some(Mode::Standby);
        let lora = got & !(reg::MODE_MASK | reg::LOW_FREQUENCY_MODE) == reg::LONG_RANGE_MODE;
        if lora && (got_mode == Some(mode) || ended) {
            return Ok(());
        }
        Err(RadioError::Protocol(format!(
            "SX127x RegOpMode reads {got:#04x} after setting LoRa {mode:?} (a lost write or a \
             garbled bus)"
        )))
    }

    /// Reads and clears RegIrqFlags. TxDone and RxDone together is no chip's answer (the
    /// driver clears the flags before every mode change, and the chip cannot receive while
    /// sending): it is a garbled bus reading 0xFF, reported as such rather than taken for a
    /// failed packet.
    pub async fn take_irq(&mut self) -> Result<u8, RadioError> {
        let flags = self.read(reg::REG_IRQ_FLAGS).await?;
        let both = reg::irq::TX_DONE | reg::irq::RX_DONE;
        if flags & both == both {
            return Err(RadioError::Protocol(format!(
                "SX127x RegIrqFlags reads {flags:#04x}: TxDone with RxDone (a garbled bus)"
            )));
        }
        if flags != 0 {
            self.write(reg::REG_IRQ_FLAGS, flags).await?;
        }
        Ok(flags)
    }

    /// Waits for DIO0 high (the mapped IRQ is pending). Cancel-safe: it only watches a line.
    pub async fn wait_irq(&mut self) -> Result<(), RadioError> {
        self.bus
            .dio0
            .wait_for_high()
            .await
            .map_err(|e| gpio_failed("DIO0", e))
    }
}
