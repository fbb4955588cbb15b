//! The chip's registers, FIFO and modes, apart from its lines and the medium's task.

use std::time::Instant;

use lorabridge_hardware::Modulation;
use lorabridge_radio::sx127x::registers::{self as reg, Dio0, Mode, irq};

use crate::medium::{Medium, Reception, StationId};
use crate::spi_chip::SpiChip;

/// Registers modelled (the address is 7 bits).
pub(super) const REGISTERS: usize = 0x80;
/// A CAD takes about two symbols (datasheet §4.1.6).
pub(super) const CAD_SYMBOLS: u32 = 2;

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
pub(super) enum Timer {
    TxDone,
    CadDone,
}

/// Work for the background task (it owns the medium's timers and receptions).
pub(super) enum Ctl {
    Transmit(Modulation, Vec<u8>),
    Rearm,
}

pub(super) struct Chip {
    pub(super) powered: bool,
    pub(super) in_reset: bool,
    pub(super) regs: [u8; REGISTERS],
    pub(super) fifo: [u8; reg::FIFO_SIZE],
    /// Where the modem writes the next received byte (continuous RX keeps advancing it).
    pub(super) rx_byte_ptr: u8,
    pub(super) timer: Option<(Instant, Timer)>,
    pub(super) transmitted: u32,
    pub(super) cads: u32,
    // Faults.
    pub(super) hung: bool,
    pub(super) mute_dio0: bool,
    pub(super) crc_errors: u32,
    pub(super) garbage: u32,
}

impl Chip {
    /// Reset values (datasheet §6.4): FSK standby on the LF registers, 434 MHz, sync word
    /// 0x12, preamble 8, TX base 0x80.
    pub(super) fn power_on() -> Self {
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

    pub(super) fn r(&self, addr: u8) -> u8 {
        self.regs[usize::from(addr)]
    }

    pub(super) fn lora(&self) -> bool {
        self.r(reg::REG_OP_MODE) & reg::LONG_RANGE_MODE != 0
    }

    pub(super) fn mode(&self) -> Option<Mode> {
        Mode::from_bits(self.r(reg::REG_OP_MODE))
    }

    pub(super) fn frequency_hz(&self) -> u32 {
        let a = usize::from(reg::REG_FRF_MSB);
        let steps = u32::from_be_bytes([0, self.regs[a], self.regs[a + 1], self.regs[a + 2]]);
        let hz = reg::frequency_hz(steps);
        (hz + 50) / 100 * 100
    }

    pub(super) fn modem(&self) -> Option<(u8, u32, u8, bool)> {
        reg::decode_modem_config([
            self.r(reg::REG_MODEM_CONFIG1),
            self.r(reg::REG_MODEM_CONFIG2),
            self.r(reg::REG_MODEM_CONFIG3),
        ])
    }

    pub(super) fn preamble(&self) -> u16 {
        let a = usize::from(reg::REG_PREAMBLE_MSB);
        u16::from_be_bytes([self.regs[a], self.regs[a + 1]])
    }

    /// The modulation the registers hold, in LoRa mode.
    pub(super) fn modulation(&self) -> Option<Modulation> {
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

    pub(super) fn view(&self) -> ChipView {
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
    pub(super) fn raise(&mut self, bits: u8) {
        let unmasked = bits & !self.r(reg::REG_IRQ_FLAGS_MASK);
        self.regs[usize::from(reg::REG_IRQ_FLAGS)] |= unmasked;
    }

    pub(super) fn dio0(&self) -> bool {
        let Some(map) = Dio0::from_mapping(self.r(reg::REG_DIO_MAPPING1)) else {
            return false;
        };
        !self.mute_dio0 && self.r(reg::REG_IRQ_FLAGS) & map.flag() != 0
    }

    pub(super) fn set_mode_bits(&mut self, mode: Mode) {
        let op = &mut self.regs[usize::from(reg::REG_OP_MODE)];
        *op = (*op & !reg::MODE_MASK) | mode as u8;
    }

    /// One register write, with its side effects.
    pub(super) fn write(&mut self, addr: u8, value: u8) -> Option<Ctl> {
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

    pub(super) fn write_op_mode(&mut self, value: u8) -> Option<Ctl> {
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
    pub(super) fn read(&mut self, addr: u8) -> u8 {
        if addr == reg::REG_FIFO {
            let ptr = self.r(reg::REG_FIFO_ADDR_PTR);
            self.regs[usize::from(reg::REG_FIFO_ADDR_PTR)] = ptr.wrapping_add(1);
            return self.fifo[usize::from(ptr)];
        }
        self.r(addr)
    }

    /// Executes one NSS-low period; returns MISO and work for the background task.
    pub(super) fn execute(&mut self, mosi: &[u8]) -> (Vec<u8>, Vec<Ctl>) {
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
}

impl SpiChip for Chip {
    type Ctl = Ctl;
    type Timer = Timer;

    fn irq(&self) -> bool {
        self.dio0()
    }

    fn listening(&self) -> Option<Modulation> {
        match self.mode() {
            Some(Mode::RxContinuous | Mode::RxSingle) if self.powered => self.modulation(),
            _ => None,
        }
    }

    fn exchange(&mut self, mosi: &[u8]) -> (Vec<u8>, Vec<Ctl>) {
        if self.garbage > 0 {
            self.garbage -= 1;
            (vec![0xFF; mosi.len()], Vec::new())
        } else if self.in_reset || self.hung {
            (vec![0x00; mosi.len()], Vec::new())
        } else {
            self.execute(mosi)
        }
    }

    /// Puts the frame on air if the chip is still in TX, and times TxDone.
    fn control(&mut self, ctl: Ctl, medium: &dyn Medium, station: StationId) {
        // Rearm: the task looks at the timer again anyway.
        let Ctl::Transmit(m, payload) = ctl else {
            return;
        };
        if self.mode() == Some(Mode::Tx) {
            medium.listen(station, None);
            let toa = medium.transmit(station, &m, &payload);
            self.timer = Some((Instant::now() + toa, Timer::TxDone));
        }
    }

    fn timer(&mut self) -> &mut Option<(Instant, Timer)> {
        &mut self.timer
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
}
