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

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use lorabridge_hardware::Modulation;
use lorabridge_radio::sx126x::Bus;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::medium::{Medium, Reception, StationId};

use chip::{Chip, Ctl, Timer};
pub use chip::{ChipView, Mode};
use lines::Role;
pub use lines::{EmuSpiError, Sx1262Busy, Sx1262Dio1, Sx1262Line, Sx1262Spi};

struct Shared {
    chip: Mutex<Chip>,
    dio1: watch::Sender<bool>,
    ctl: mpsc::UnboundedSender<Ctl>,
    medium: Arc<dyn Medium>,
    station: StationId,
    unplugged: Mutex<bool>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Chip> {
        self.chip.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn unplugged(&self) -> bool {
        *self.unplugged.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// After any change: DIO1's level and what the medium hears us listening on.
    fn settle(&self, chip: &Chip) {
        self.dio1.send_replace(chip.dio1());
        self.medium.listen(self.station, chip.listening());
    }
}

/// An emulated SX1262 attached to a [`Medium`]. Dropping it detaches it.
pub struct Sx1262 {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for Sx1262 {
    fn drop(&mut self) {
        self.task.abort();
        self.shared.medium.detach(self.shared.station);
    }
}

impl Sx1262 {
    /// A powered chip in standby, attached to `medium` as `name`. Must be called inside a
    /// tokio runtime (its background task times transmissions and takes receptions).
    pub fn new(medium: Arc<dyn Medium>, name: &str) -> Self {
        let (station, receptions) = medium.attach(name);
        let (ctl, ctl_rx) = mpsc::unbounded_channel();
        let (dio1, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            chip: Mutex::new(Chip::power_on()),
            dio1,
            ctl,
            medium,
            station,
            unplugged: Mutex::new(false),
        });
        let task = tokio::spawn(run(shared.clone(), receptions, ctl_rx));
        Self { shared, task }
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
            busy: Sx1262Busy(self.shared.clone()),
            dio1: Sx1262Dio1(self.shared.clone()),
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
        *self
            .shared
            .unplugged
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = true;
        let mut chip = self.shared.lock();
        chip.powered = false;
        chip.standby();
        chip.irq = 0;
        self.shared.settle(&chip);
        self.shared.medium.listen(self.shared.station, None);
    }

    /// The HAT is back: a power-on reset.
    pub fn replug(&self) {
        let mut chip = self.shared.lock();
        chip.reset_keeping_faults();
        self.shared.settle(&chip);
        drop(chip);
        *self
            .shared
            .unplugged
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = false;
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

async fn run(
    shared: Arc<Shared>,
    mut receptions: mpsc::Receiver<Reception>,
    mut ctl: mpsc::UnboundedReceiver<Ctl>,
) {
    loop {
        let next = shared.lock().timer;
        let sleep = async {
            match next {
                Some((at, _)) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = receptions.recv() => {
                let Some(r) = r else { return };
                let mut chip = shared.lock();
                chip.receive(r);
                shared.settle(&chip);
            }
            c = ctl.recv() => match c {
                None => return,
                Some(Ctl::Rearm) => {}
                Some(Ctl::Transmit(m, payload, timeout)) => {
                    let mut chip = shared.lock();
                    if chip.mode == Mode::Tx {
                        shared.medium.listen(shared.station, None);
                        let toa = shared.medium.transmit(shared.station, &m, &payload);
                        let now = Instant::now();
                        chip.timer = Some(match timeout {
                            Some(t) if t < toa => (now + t, Timer::TxTimeout),
                            _ => (now + toa, Timer::TxDone),
                        });
                    }
                }
            },
            _ = sleep => {
                let mut chip = shared.lock();
                if let Some((at, timer)) = chip.timer
                    && Instant::now() >= at
                {
                    chip.timer = None;
                    chip.fire(timer, shared.medium.as_ref(), shared.station);
                    shared.settle(&chip);
                }
            }
        }
    }
}
