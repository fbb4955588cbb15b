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

use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use embedded_hal::digital::{ErrorType as PinErrorType, OutputPin};
use embedded_hal::spi::{ErrorType as SpiErrorType, Operation};
use embedded_hal_async::digital::Wait;
use lorabridge_hardware::Modulation;
use lorabridge_radio::sx127x::Bus;
use lorabridge_radio::sx127x::registers::{self as reg, Dio0, Mode, irq};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::medium::{Medium, Reception, StationId};
pub use crate::sx126x::EmuSpiError;

/// Registers modelled (the address is 7 bits).
const REGISTERS: usize = 0x80;
/// A CAD takes about two symbols (datasheet §4.1.6).
const CAD_SYMBOLS: u32 = 2;

/// What a test can see of the chip.
#[derive(Clone, Debug, PartialEq)]
pub struct ChipView {
    /// LoRa mode (RegOpMode bit 7).
    pub lora: bool,
    pub mode: Option<Mode>,
    pub frequency_hz: u32,
    /// SF, bandwidth in Hz, coding rate denominator, and explicit header with CRC on.
    pub modem: Option<(u8, u32, u8, bool)>,
    pub low_data_rate_optimisation: bool,
    pub preamble_symbols: u16,
    pub sync_word: u8,
    pub pa_boost: bool,
    pub tx_power_dbm: i8,
    pub dio0: Option<Dio0>,
    pub irq_mask: u8,
    /// Packets put on air.
    pub transmitted: u32,
    /// CAD operations run.
    pub cads: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timer {
    TxDone,
    CadDone,
}

/// Work for the background task (it owns the medium's timers and receptions).
enum Ctl {
    Transmit(Modulation, Vec<u8>),
    Rearm,
}

struct Chip {
    powered: bool,
    in_reset: bool,
    regs: [u8; REGISTERS],
    fifo: [u8; reg::FIFO_SIZE],
    /// Where the modem writes the next received byte (continuous RX keeps advancing it).
    rx_byte_ptr: u8,
    timer: Option<(Instant, Timer)>,
    transmitted: u32,
    cads: u32,
    // Faults.
    hung: bool,
    mute_dio0: bool,
    crc_errors: u32,
    garbage: u32,
}

impl Chip {
    /// Reset values (datasheet §6.4): FSK standby on the LF registers, 434 MHz, sync word
    /// 0x12, preamble 8, TX base 0x80.
    fn power_on() -> Self {
        let mut regs = [0u8; REGISTERS];
        regs[usize::from(reg::REG_OP_MODE)] = 0x09;
        regs[usize::from(reg::REG_FRF_MSB)..usize::from(reg::REG_FRF_MSB) + 3]
            .copy_from_slice(&[0x6C, 0x80, 0x00]);
        regs[usize::from(reg::REG_PA_CONFIG)] = 0x4F;
        regs[usize::from(reg::REG_OCP)] = reg::OCP_100_MA;
        regs[usize::from(reg::REG_LNA)] = 0x20;
        regs[usize::from(reg::REG_FIFO_TX_BASE)] = 0x80;
        regs[usize::from(reg::REG_MODEM_CONFIG1)] = 0x72;
        regs[usize::from(reg::REG_MODEM_CONFIG2)] = 0x70;
        regs[usize::from(reg::REG_PREAMBLE_MSB) + 1] = 0x08;
        regs[usize::from(reg::REG_PAYLOAD_LENGTH)] = 0x01;
        regs[usize::from(reg::REG_MAX_PAYLOAD_LENGTH)] = 0xFF;
        regs[usize::from(reg::REG_DETECT_OPTIMIZE)] = reg::DETECT_OPTIMIZE_SF7_12;
        regs[usize::from(reg::REG_DETECTION_THRESHOLD)] = reg::DETECTION_THRESHOLD_SF7_12;
        regs[usize::from(reg::REG_SYNC_WORD)] = 0x12;
        regs[usize::from(reg::REG_VERSION)] = reg::VERSION;
        regs[usize::from(reg::REG_PA_DAC)] = reg::PA_DAC_DEFAULT;
        Self {
            powered: true,
            in_reset: false,
            regs,
            fifo: [0; reg::FIFO_SIZE],
            rx_byte_ptr: 0,
            timer: None,
            transmitted: 0,
            cads: 0,
            hung: false,
            mute_dio0: false,
            crc_errors: 0,
            garbage: 0,
        }
    }

    /// Keeps the faults (the wiring's too) and counters across a reset.
    fn reset_keeping_faults(&mut self) {
        let mut fresh = Chip::power_on();
        fresh.hung = self.hung;
        fresh.mute_dio0 = self.mute_dio0;
        fresh.crc_errors = self.crc_errors;
        fresh.garbage = self.garbage;
        fresh.transmitted = self.transmitted;
        fresh.cads = self.cads;
        *self = fresh;
    }

    fn r(&self, addr: u8) -> u8 {
        self.regs[usize::from(addr)]
    }

    fn lora(&self) -> bool {
        self.r(reg::REG_OP_MODE) & reg::LONG_RANGE_MODE != 0
    }

    fn mode(&self) -> Option<Mode> {
        Mode::from_bits(self.r(reg::REG_OP_MODE))
    }

    fn frequency_hz(&self) -> u32 {
        let a = usize::from(reg::REG_FRF_MSB);
        let steps = u32::from_be_bytes([0, self.regs[a], self.regs[a + 1], self.regs[a + 2]]);
        let hz = reg::frequency_hz(steps);
        (hz + 50) / 100 * 100
    }

    fn modem(&self) -> Option<(u8, u32, u8, bool)> {
        reg::decode_modem_config([
            self.r(reg::REG_MODEM_CONFIG1),
            self.r(reg::REG_MODEM_CONFIG2),
            self.r(reg::REG_MODEM_CONFIG3),
        ])
    }

    fn preamble(&self) -> u16 {
        let a = usize::from(reg::REG_PREAMBLE_MSB);
        u16::from_be_bytes([self.regs[a], self.regs[a + 1]])
    }

    /// The modulation the registers hold, in LoRa mode.
    fn modulation(&self) -> Option<Modulation> {
        if !self.lora() {
            return None;
        }
        let (sf, bw, cr, _) = self.modem()?;
        Some(Modulation {
            frequency_hz: self.frequency_hz(),
            spreading_factor: sf,
            bandwidth_hz: bw,
            coding_rate: cr,
            preamble_symbols: self.preamble(),
            tx_power_dbm: reg::pa_power_dbm(self.r(reg::REG_PA_CONFIG), self.r(reg::REG_PA_DAC)),
            sync_word: self.r(reg::REG_SYNC_WORD),
        })
    }

    fn listening(&self) -> Option<Modulation> {
        match self.mode() {
            Some(Mode::RxContinuous | Mode::RxSingle) if self.powered => self.modulation(),
            _ => None,
        }
    }

    fn view(&self) -> ChipView {
        ChipView {
            lora: self.lora(),
            mode: self.mode(),
            frequency_hz: self.frequency_hz(),
            modem: self.modem(),
            low_data_rate_optimisation: self.r(reg::REG_MODEM_CONFIG3) & reg::MODEM_CONFIG3_LDRO
                != 0,
            preamble_symbols: self.preamble(),
            sync_word: self.r(reg::REG_SYNC_WORD),
            pa_boost: self.r(reg::REG_PA_CONFIG) & 0x80 != 0,
            tx_power_dbm: reg::pa_power_dbm(self.r(reg::REG_PA_CONFIG), self.r(reg::REG_PA_DAC)),
            dio0: Dio0::from_mapping(self.r(reg::REG_DIO_MAPPING1)),
            irq_mask: self.r(reg::REG_IRQ_FLAGS_MASK),
            transmitted: self.transmitted,
            cads: self.cads,
        }
    }

    /// Sets IRQ flags the mask lets through.
    fn raise(&mut self, bits: u8) {
        let unmasked = bits & !self.r(reg::REG_IRQ_FLAGS_MASK);
        self.regs[usize::from(reg::REG_IRQ_FLAGS)] |= unmasked;
    }

    fn dio0(&self) -> bool {
        let Some(map) = Dio0::from_mapping(self.r(reg::REG_DIO_MAPPING1)) else {
            return false;
        };
        !self.mute_dio0 && self.r(reg::REG_IRQ_FLAGS) & map.flag() != 0
    }

    fn set_mode_bits(&mut self, mode: Mode) {
        let op = &mut self.regs[usize::from(reg::REG_OP_MODE)];
        *op = (*op & !reg::MODE_MASK) | mode as u8;
    }

    /// One register write, with its side effects.
    fn write(&mut self, addr: u8, value: u8) -> Option<Ctl> {
        match addr {
            reg::REG_FIFO => {
                let ptr = self.r(reg::REG_FIFO_ADDR_PTR);
                self.fifo[usize::from(ptr)] = value;
                self.regs[usize::from(reg::REG_FIFO_ADDR_PTR)] = ptr.wrapping_add(1);
                None
            }
            reg::REG_IRQ_FLAGS => {
                self.regs[usize::from(addr)] &= !value;
                None
            }
            reg::REG_VERSION
            | reg::REG_RX_NB_BYTES
            | reg::REG_FIFO_RX_CURRENT
            | reg::REG_PKT_SNR
            | reg::REG_PKT_RSSI => None,
            reg::REG_OP_MODE => self.write_op_mode(value),
            _ => {
                self.regs[usize::from(addr)] = value;
                None
            }
        }
    }

    fn write_op_mode(&mut self, value: u8) -> Option<Ctl> {
        let old = self.r(reg::REG_OP_MODE);
        let asleep = Mode::from_bits(old) == Some(Mode::Sleep);
        // LongRangeMode changes only in sleep (datasheet §6.4, RegOpMode).
        let lora_bit = if asleep {
            value & reg::LONG_RANGE_MODE
        } else {
            old & reg::LONG_RANGE_MODE
        };
        self.regs[usize::from(reg::REG_OP_MODE)] = lora_bit | (value & !reg::LONG_RANGE_MODE);
        let mode = Mode::from_bits(value);
        self.timer = None;
        if mode == Some(Mode::Sleep) {
            self.fifo = [0; reg::FIFO_SIZE];
        }
        if !self.lora() {
            return None;
        }
        match mode {
            Some(Mode::Tx) => {
                let m = self.modulation()?;
                let base = self.r(reg::REG_FIFO_TX_BASE);
                let len = self.r(reg::REG_PAYLOAD_LENGTH);
                let payload = (0..len)
                    .map(|i| self.fifo[usize::from(base.wrapping_add(i))])
                    .collect();
                Some(Ctl::Transmit(m, payload))
            }
            Some(Mode::RxContinuous | Mode::RxSingle) => {
                self.rx_byte_ptr = self.r(reg::REG_FIFO_RX_BASE);
                Some(Ctl::Rearm)
            }
            Some(Mode::Cad) => {
                let m = self.modulation()?;
                self.timer = Some((
                    Instant::now() + m.symbol_time() * CAD_SYMBOLS,
                    Timer::CadDone,
                ));
                Some(Ctl::Rearm)
            }
            _ => Some(Ctl::Rearm),
        }
    }

    /// One register read, with its side effects.
    fn read(&mut self, addr: u8) -> u8 {
        if addr == reg::REG_FIFO {
            let ptr = self.r(reg::REG_FIFO_ADDR_PTR);
            self.regs[usize::from(reg::REG_FIFO_ADDR_PTR)] = ptr.wrapping_add(1);
            return self.fifo[usize::from(ptr)];
        }
        self.r(addr)
    }

    /// Executes one NSS-low period; returns MISO and work for the background task.
    fn execute(&mut self, mosi: &[u8]) -> (Vec<u8>, Vec<Ctl>) {
        let mut miso = vec![0u8; mosi.len()];
        let mut ctl = Vec::new();
        let Some((&first, data)) = mosi.split_first() else {
            return (miso, ctl);
        };
        let write = first & reg::WRITE != 0;
        let start = first & !reg::WRITE;
        for (i, b) in data.iter().enumerate() {
            let addr = if start == reg::REG_FIFO {
                start
            } else {
                (usize::from(start) + i) as u8 & 0x7F
            };
            if write {
                ctl.extend(self.write(addr, *b));
            } else {
                miso[i + 1] = self.read(addr);
            }
        }
        (miso, ctl)
    }

    fn fire(&mut self, timer: Timer, medium: &dyn Medium, station: StationId) {
        match timer {
            Timer::TxDone => {
                self.set_mode_bits(Mode::Standby);
                self.transmitted += 1;
                self.raise(irq::TX_DONE);
            }
            Timer::CadDone => {
                let busy = self
                    .modulation()
                    .is_some_and(|m| medium.channel_busy(station, &m));
                self.cads += 1;
                self.set_mode_bits(Mode::Standby);
                self.raise(irq::CAD_DONE | if busy { irq::CAD_DETECTED } else { 0 });
            }
        }
    }

    fn receive(&mut self, r: Reception) {
        let mode = self.mode();
        if !self.powered
            || !matches!(mode, Some(Mode::RxContinuous | Mode::RxSingle))
            || r.payload.len() > reg::MAX_PAYLOAD
        {
            return;
        }
        let start = self.rx_byte_ptr;
        for (i, b) in r.payload.iter().enumerate() {
            self.fifo[usize::from(start.wrapping_add(i as u8))] = *b;
        }
        self.rx_byte_ptr = start.wrapping_add(r.payload.len() as u8);
        self.regs[usize::from(reg::REG_FIFO_RX_CURRENT)] = start;
        self.regs[usize::from(reg::REG_RX_NB_BYTES)] = r.payload.len() as u8;
        let snr = (r.snr_db * 4.0).round().clamp(-128.0, 127.0) as i8;
        let offset: i16 = if self.frequency_hz() < reg::LF_BELOW_HZ {
            164
        } else {
            157
        };
        let below_noise = if snr < 0 {
            -(f32::from(snr) / 4.0).floor() as i16
        } else {
            0
        };
        let rssi = (r.rssi_dbm + offset + below_noise).clamp(0, 255) as u8;
        self.regs[usize::from(reg::REG_PKT_SNR)] = snr as u8;
        self.regs[usize::from(reg::REG_PKT_RSSI)] = rssi;
        let mut bits = irq::VALID_HEADER | irq::RX_DONE;
        if self.crc_errors > 0 {
            self.crc_errors -= 1;
            bits |= irq::PAYLOAD_CRC_ERROR;
        }
        self.raise(bits);
        if mode == Some(Mode::RxSingle) {
            self.set_mode_bits(Mode::Standby);
        }
    }
}

struct Shared {
    chip: Mutex<Chip>,
    dio0: watch::Sender<bool>,
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

    /// After any change: DIO0's level and what the medium hears us listening on.
    fn settle(&self, chip: &Chip) {
        self.dio0.send_replace(chip.dio0());
        self.medium.listen(self.station, chip.listening());
    }
}

/// An emulated SX1276 attached to a [`Medium`]. Dropping it detaches it.
pub struct Sx1276 {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for Sx1276 {
    fn drop(&mut self) {
        self.task.abort();
        self.shared.medium.detach(self.shared.station);
    }
}

impl Sx1276 {
    /// A powered chip after its power-on reset, attached to `medium` as `name`. Must be
    /// called inside a tokio runtime (its background task times transmissions and takes
    /// receptions).
    pub fn new(medium: Arc<dyn Medium>, name: &str) -> Self {
        let (station, receptions) = medium.attach(name);
        let (ctl, ctl_rx) = mpsc::unbounded_channel();
        let (dio0, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            chip: Mutex::new(Chip::power_on()),
            dio0,
            ctl,
            medium,
            station,
            unplugged: Mutex::new(false),
        });
        let task = tokio::spawn(run(shared.clone(), receptions, ctl_rx));
        Self { shared, task }
    }

    /// The chip's lines for the driver.
    pub fn bus(&self) -> Bus<Sx1276Spi, Sx1276Dio0, Sx1276Reset> {
        Bus {
            spi: Sx1276Spi(self.shared.clone()),
            dio0: Sx1276Dio0(self.shared.clone()),
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
        *self
            .shared
            .unplugged
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = true;
        let mut chip = self.shared.lock();
        chip.powered = false;
        chip.timer = None;
        chip.regs[usize::from(reg::REG_IRQ_FLAGS)] = 0;
        self.shared.settle(&chip);
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
                Some(Ctl::Transmit(m, payload)) => {
                    let mut chip = shared.lock();
                    if chip.mode() == Some(Mode::Tx) {
                        shared.medium.listen(shared.station, None);
                        let toa = shared.medium.transmit(shared.station, &m, &payload);
                        chip.timer = Some((Instant::now() + toa, Timer::TxDone));
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

/// The chip's SPI port with its NSS.
pub struct Sx1276Spi(Arc<Shared>);

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
pub struct Sx1276Dio0(Arc<Shared>);

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
pub struct Sx1276Reset(Arc<Shared>);

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
