//! An SX1262 at the SPI level, written from the SX1261/2 datasheet's command set, so that the
//! real SX126x driver runs against it unchanged.
//!
//! [`Sx1262`] is the chip; [`Sx1262::bus`] hands out its lines as the embedded-hal traits the
//! driver takes: an `SpiDevice` ([`Sx1262Spi`]), BUSY ([`Sx1262Busy`], an input with `Wait`),
//! DIO1 ([`Sx1262Dio1`], `Wait`) and the host-driven NRESET and antenna switch lines
//! ([`Sx1262Line`], outputs). Each SPI transaction is one NSS-low period: the MOSI bytes of
//! all its operations form one command, and MISO carries the status byte, then the data.
//!
//! Modelled: GetStatus, SetStandby, SetSleep, SetPacketType, SetRfFrequency,
//! SetModulationParams, SetPacketParams, SetBufferBaseAddress, WriteBuffer/ReadBuffer,
//! WriteRegister/ReadRegister (a 4 KiB register space; the sync word at 0x0740 resets to
//! 0x1424), SetDioIrqParams, GetIrqStatus/ClearIrqStatus, SetTx, SetRx (continuous, single,
//! single with timeout), GetRxBufferStatus, GetPacketStatus, SetCadParams/SetCad (the answer
//! comes from [`Medium::channel_busy`] at the end of the CAD), Calibrate, CalibrateImage,
//! SetPaConfig, SetTxParams, SetDio2AsRfSwitchCtrl, SetDio3AsTcxoCtrl, SetRegulatorMode,
//! Get/ClearDeviceErrors. BUSY is high for a short while after each command (3.5 ms after
//! Calibrate, 3 ms after a reset) and a command sent while it is high is ignored and counted
//! ([`Sx1262::busy_violations`]), as the real chip ignores it. Unknown opcodes and short
//! parameter lists set the status's "command processing error", which stays until GetStatus
//! reads it (a simplification: the datasheet ties it to the last command).
//!
//! On air the chip is one [`Medium`] station: SetTx puts the buffer on air with the
//! [`Modulation`] its registers hold, so an emulated RAK3172 with the same settings hears it,
//! and SetRx listens with it.
//!
//! Faults: [`Sx1262::unplug`] (transfers fail) and [`Sx1262::replug`] (a power-on reset),
//! [`Sx1262::stick_busy`], [`Sx1262::mute_dio1`] (an IRQ line that never rises),
//! [`Sx1262::crc_errors`] (the next receptions fail their CRC) and [`Sx1262::garbage`] (the
//! next exchanges are lost on the wire and MISO reads 0xFF).
//!
//! Memory: a 256-byte data buffer, a 4 KiB register file, and the medium's bounded station
//! queue.

mod chip;
mod lines;

use std::sync::Arc;

use lorabridge_hardware::Modulation;
use lorabridge_radio::sx126x::Bus;

use crate::medium::Medium;
pub use crate::spi_chip::EmuSpiError;
use crate::spi_chip::{self, Background, ChipOutput};

use chip::Chip;
pub use chip::{ChipView, Mode};
use lines::Role;
pub use lines::{Sx1262Busy, Sx1262Dio1, Sx1262Line, Sx1262Spi};

type Shared = spi_chip::Shared<Chip>;

/// An emulated SX1262 attached to a [`Medium`]. Dropping it detaches it.
pub struct Sx1262 {
    shared: Arc<Shared>,
    _task: Background,
}

impl Sx1262 {
    /// A powered chip in standby, attached to `medium` as `name`. Must be called inside a
    /// tokio runtime (its background task times transmissions and takes receptions).
    pub fn new(medium: Arc<dyn Medium>, name: &str) -> Self {
        let (shared, task) = spi_chip::attach(Chip::power_on(), medium, name);
        Self {
            shared,
            _task: task,
        }
    }

    /// The chip's lines for the driver, with host-driven RX/TX antenna switch lines when
    /// `antenna_lines` (as on the MeshAdv-Pi).
    pub fn bus(&self, antenna_lines: bool) -> Bus<Sx1262Spi, Sx1262Busy, Sx1262Dio1, Sx1262Line> {
        let line = |role| Sx1262Line {
            shared: self.shared.clone(),
            role,
        };
        Bus {
            spi: Sx1262Spi(self.shared.clone()),
            busy: ChipOutput(lines::Busy(self.shared.clone())),
            dio1: self.shared.irq_line(),
            reset: line(Role::Reset),
            rx_enable: antenna_lines.then(|| line(Role::RxEnable)),
            tx_enable: antenna_lines.then(|| line(Role::TxEnable)),
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
    pub fn register(&self, addr: u16) -> u8 {
        self.shared
            .lock()
            .registers
            .get(usize::from(addr))
            .copied()
            .unwrap_or(0)
    }

    /// Commands sent while BUSY was high (and so ignored).
    pub fn busy_violations(&self) -> u32 {
        self.shared.lock().busy_violations
    }

    /// Opcodes the chip did not know.
    pub fn unknown_opcodes(&self) -> u32 {
        self.shared.lock().unknown_opcodes
    }

    /// The HAT comes off: SPI transfers fail, the chip loses power.
    pub fn unplug(&self) {
        self.shared.unplug(|chip| {
            chip.powered = false;
            chip.standby();
            chip.irq = 0;
        });
        self.shared.medium.listen(self.shared.station, None);
    }

    /// The HAT is back: a power-on reset.
    pub fn replug(&self) {
        self.shared.replug();
    }

    /// BUSY stays high (a hung chip) until released.
    pub fn stick_busy(&self, on: bool) {
        self.shared.lock().stuck_busy = on;
    }

    /// DIO1 never rises (a broken IRQ line) until released.
    pub fn mute_dio1(&self, on: bool) {
        let mut chip = self.shared.lock();
        chip.mute_dio1 = on;
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
