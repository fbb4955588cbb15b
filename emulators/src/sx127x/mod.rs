//! An SX1276 at the SPI level, written from the SX1276/77/78/79 datasheet's LoRa register
//! map, so that the real SX127x driver runs against it unchanged.
//!
//! [`Sx1276`] is the chip; [`Sx1276::bus`] hands out its lines as the embedded-hal traits the
//! driver takes: an `SpiDevice` ([`Sx1276Spi`]), DIO0 ([`Sx1276Dio0`], `Wait`) and the
//! host-driven NRESET ([`Sx1276Reset`]). Each SPI transaction is one NSS-low period: an
//! address byte (bit 7 = write), then data for consecutive registers, except RegFifo, whose
//! bytes go to or come from the FIFO at RegFifoAddrPtr.
//!
//! Modelled: RegOpMode (LoRa bit writable in sleep only; sleep, standby, TX, RXCONTINUOUS,
//! RXSINGLE and CAD), RegFrf, RegPaConfig/RegPaDac, the FIFO and its pointers (256 bytes,
//! cleared in sleep), RegIrqFlagsMask/RegIrqFlags (write 1 to clear), RegRxNbBytes,
//! RegFifoRxCurrentAddr, RegPktSnrValue/RegPktRssiValue (the HF port's −157 dBm offset, or
//! the LF's −164), RegModemConfig1..3, RegPreamble, RegPayloadLength, RegSyncWord,
//! RegDioMapping1 (DIO0: RxDone, TxDone or CadDone) and RegVersion (0x12, read-only). Other
//! registers are plain storage. The FSK modem is not modelled: the chip transmits, receives
//! and detects only in LoRa mode.
//!
//! On air the chip is one [`Medium`] station: TX puts the FIFO's payload on air with the
//! [`Modulation`] its registers hold, so an SX1262 or a RAK3172 with the same settings hears
//! it. The registers' 61 Hz frequency steps are read as the nearest 100 Hz, since the medium
//! matches frequencies exactly and every channel plan's frequencies are on that grid.
//!
//! Faults: [`Sx1276::unplug`] (transfers fail) and [`Sx1276::replug`] (a power-on reset),
//! [`Sx1276::hang`] (a hung chip: writes are lost and MISO reads 0x00), [`Sx1276::mute_dio0`]
//! (an IRQ line that never rises), [`Sx1276::crc_errors`] (the next receptions fail their
//! CRC) and [`Sx1276::garbage`] (the next exchanges are lost on the wire and MISO reads 0xFF).
//!
//! Memory: a 128-register file, a 256-byte FIFO, and the medium's bounded station queue.

mod chip;
mod lines;

use std::sync::Arc;

use lorabridge_hardware::Modulation;
use lorabridge_radio::sx127x::Bus;
use lorabridge_radio::sx127x::registers as reg;

use crate::medium::Medium;
pub use crate::spi_chip::EmuSpiError;
use crate::spi_chip::{self, Background};

use chip::Chip;
pub use chip::ChipView;
pub use lines::{Sx1276Dio0, Sx1276Reset, Sx1276Spi};

type Shared = spi_chip::Shared<Chip>;

/// An emulated SX1276 attached to a [`Medium`]. Dropping it detaches it.
pub struct Sx1276 {
    shared: Arc<Shared>,
    _task: Background,
}

impl Sx1276 {
    /// A powered chip after its power-on reset, attached to `medium` as `name`. Must be
    /// called inside a tokio runtime (its background task times transmissions and takes
    /// receptions).
    pub fn new(medium: Arc<dyn Medium>, name: &str) -> Self {
        let (shared, task) = spi_chip::attach(Chip::power_on(), medium, name);
        Self {
            shared,
            _task: task,
        }
    }

    /// The chip's lines for the driver.
    pub fn bus(&self) -> Bus<Sx1276Spi, Sx1276Dio0, Sx1276Reset> {
        Bus {
            spi: Sx1276Spi(self.shared.clone()),
            dio0: self.shared.irq_line(),
            reset: Sx1276Reset(self.shared.clone()),
        }
    }

    pub fn view(&self) -> ChipView {
        self.shared.lock().view()
    }

    /// The modulation the chip's registers hold (what it transmits and listens with).
    pub fn modulation(&self) -> Option<Modulation> {
        self.shared.lock().modulation()
    }

    /// One register's value.
    pub fn register(&self, addr: u8) -> u8 {
        self.shared
            .lock()
            .regs
            .get(usize::from(addr))
            .copied()
            .unwrap_or(0)
    }

    /// The HAT comes off: SPI transfers fail, the chip loses power.
    pub fn unplug(&self) {
        self.shared.unplug(|chip| {
            chip.powered = false;
            chip.timer = None;
            chip.regs[usize::from(reg::REG_IRQ_FLAGS)] = 0;
        });
    }

    /// The HAT is back: a power-on reset.
    pub fn replug(&self) {
        self.shared.replug();
    }

    /// The chip hangs (its SPI block reads 0x00 and takes no writes) until released.
    pub fn hang(&self, on: bool) {
        self.shared.lock().hung = on;
    }

    /// DIO0 never rises (a broken IRQ line) until released.
    pub fn mute_dio0(&self, on: bool) {
        let mut chip = self.shared.lock();
        chip.mute_dio0 = on;
        self.shared.settle(&chip);
    }

    /// The next `n` receptions fail their CRC.
    pub fn crc_errors(&self, n: u32) {
        self.shared.lock().crc_errors = n;
    }

    /// The next `n` SPI exchanges are lost on the wire: the chip sees nothing of them and
    /// MISO reads 0xFF (a loose connection).
    pub fn garbage(&self, n: u32) {
        self.shared.lock().garbage = n;
    }
}
