//! The chip's state and its command set, apart from its lines and the medium's task.

use std::time::{Duration, Instant};

use lorabridge_hardware::Modulation;
use lorabridge_radio::sx126x::Antenna;
use lorabridge_radio::sx126x::commands::{self, ChipMode, CommandStatus, TcxoVoltage, irq, op};

use crate::medium::{Medium, Reception, StationId};
use crate::spi_chip::SpiChip;

/// BUSY after an ordinary command.
pub(super) const BUSY_COMMAND: Duration = Duration::from_micros(50);
/// BUSY after Calibrate (datasheet: 3.5 ms for all blocks).
pub(super) const BUSY_CALIBRATE: Duration = Duration::from_micros(3_500);
/// BUSY after NRESET rises or a replug.
pub(super) const BUSY_STARTUP: Duration = Duration::from_millis(3);
/// Register space modelled.
pub(super) const REGISTERS: usize = 0x1000;

/// The chip's modes; [`ChipMode`] is what the status byte can report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Sleep,
    StandbyRc,
    StandbyXosc,
    Tx,
    Rx,
    Cad,
}

/// What the emulator's background task times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Timer {
    TxDone,
    TxTimeout,
    CadDone,
    RxTimeout,
}

/// Work for the background task (it owns the medium's timers and receptions).
pub(super) enum Ctl {
    Transmit(Modulation, Vec<u8>, Option<Duration>),
    Rearm,
}

/// What a test can see of the chip.
#[derive(Clone, Debug, PartialEq)]
pub struct ChipView {
    pub mode: Mode,
    pub packet_type: u8,
    pub frequency_hz: u32,
    /// SF, bandwidth in Hz and coding rate denominator, once SetModulationParams was valid.
    pub lora: Option<(u8, u32, u8)>,
    pub low_data_rate_optimisation: bool,
    pub preamble_symbols: u16,
    pub crc_on: bool,
    /// The sync word register (0x0740..=0x0741).
    pub sync_word_register: [u8; 2],
    pub tx_power_dbm: i8,
    pub pa_config: [u8; 4],
    pub tcxo: Option<TcxoVoltage>,
    pub dio2_rf_switch: bool,
    pub dcdc: bool,
    pub calibrated: u8,
    pub image_calibration: [u8; 2],
    pub irq_mask: u16,
    pub dio1_mask: u16,
    pub device_errors: u16,
    /// Continuous RX (SetRx 0xFFFFFF).
    pub rx_continuous: bool,
    /// The host-driven antenna switch, as its lines are.
    pub antenna: Antenna,
    /// Packets put on air.
    pub transmitted: u32,
    /// CAD operations run.
    pub cads: u32,
}

pub(super) struct Chip {
    pub(super) powered: bool,
    pub(super) in_reset: bool,
    pub(super) mode: Mode,
    pub(super) packet_type: u8,
    pub(super) freq_steps: u32,
    pub(super) mod_params: [u8; 4],
    pub(super) packet_params: [u8; 6],
    pub(super) tx_base: u8,
    pub(super) rx_base: u8,
    pub(super) buffer: [u8; 256],
    pub(super) registers: Box<[u8; REGISTERS]>,
    pub(super) irq_mask: u16,
    pub(super) dio1_mask: u16,
    pub(super) irq: u16,
    pub(super) rx_len: u8,
    pub(super) rx_start: u8,
    pub(super) packet_status: [u8; 3],
    pub(super) rx_continuous: bool,
    pub(super) tx_power: i8,
    pub(super) pa_config: [u8; 4],
    pub(super) tcxo: Option<TcxoVoltage>,
    pub(super) dio2: bool,
    pub(super) dcdc: bool,
    pub(super) calibrated: u8,
    pub(super) image: [u8; 2],
    pub(super) device_errors: u16,
    pub(super) command_error: Option<CommandStatus>,
    pub(super) busy_until: Instant,
    pub(super) timer: Option<(Instant, Timer)>,
    pub(super) rx_enable: bool,
    pub(super) tx_enable: bool,
    pub(super) transmitted: u32,
    pub(super) cads: u32,
    // Faults and counters.
    pub(super) stuck_busy: bool,
    pub(super) mute_dio1: bool,
    pub(super) crc_errors: u32,
    pub(super) garbage: u32,
    pub(super) busy_violations: u32,
    pub(super) unknown_opcodes: u32,
}

impl Chip {
    /// The state at power-on or after a reset (datasheet §9: STDBY_RC, LoRa sync word 0x1424).
    pub(super) fn power_on() -> Self {
        let mut registers = Box::new([0u8; REGISTERS]);
        let reg = usize::from(commands::REG_LORA_SYNC_WORD);
        registers[reg..reg + 2].copy_from_slice(&[0x14, 0x24]);
        Self {
            powered: true,
            in_reset: false,
            mode: Mode::StandbyRc,
            packet_type: 0x00,
            freq_steps: 0,
            mod_params: [0; 4],
            packet_params: [0; 6],
            tx_base: 0,
            rx_base: 0,
            buffer: [0; 256],
            registers,
            irq_mask: 0,
            dio1_mask: 0,
            irq: 0,
            rx_len: 0,
            rx_start: 0,
            packet_status: [0; 3],
            rx_continuous: false,
            tx_power: 0,
            pa_config: [0; 4],
            tcxo: None,
            dio2: false,
            dcdc: false,
            calibrated: 0,
            image: [0; 2],
            device_errors: 0,
            command_error: None,
            busy_until: Instant::now() + BUSY_STARTUP,
            timer: None,
            rx_enable: false,
            tx_enable: false,
            transmitted: 0,
            cads: 0,
            stuck_busy: false,
            mute_dio1: false,
            crc_errors: 0,
            garbage: 0,
            busy_violations: 0,
            unknown_opcodes: 0,
        }
    }

    pub(super) fn busy(&self) -> bool {
        self.stuck_busy || self.in_reset || Instant::now() < self.busy_until
    }

    pub(super) fn status_byte(&self) -> u8 {
        let mode = match self.mode {
            Mode::Sleep | Mode::StandbyRc => ChipMode::StandbyRc,
            Mode::StandbyXosc => ChipMode::StandbyXosc,
            Mode::Tx => ChipMode::Tx,
            Mode::Rx | Mode::Cad => ChipMode::Rx,
        };
        let command = match self.command_error {
            Some(e) => e,
            None if self.irq & irq::RX_DONE != 0 => CommandStatus::DataAvailable,
            None => CommandStatus::None,
        };
        commands::encode_status(mode, command)
    }

    pub(super) fn sync_word(&self) -> u8 {
        let reg = usize::from(commands::REG_LORA_SYNC_WORD);
        // A register value of no sync-word form matches nobody's one-byte sync word; 0 stands
        // in for it (no module of ours uses 0).
        commands::sync_word_from_register([self.registers[reg], self.registers[reg + 1]])
            .unwrap_or(0)
    }

    /// The modulation the registers hold, if they hold a LoRa one.
    pub(super) fn modulation(&self) -> Option<Modulation> {
        if self.packet_type != commands::PACKET_TYPE_LORA {
            return None;
        }
        let (sf, bw, cr) = commands::decode_modulation_params(self.mod_params)?;
        Some(Modulation {
            frequency_hz: commands::frequency_hz(self.freq_steps),
            spreading_factor: sf,
            bandwidth_hz: bw,
            coding_rate: cr,
            preamble_symbols: u16::from_be_bytes([self.packet_params[0], self.packet_params[1]]),
            tx_power_dbm: self.tx_power,
            sync_word: self.sync_word(),
        })
    }

    pub(super) fn view(&self) -> ChipView {
        let reg = usize::from(commands::REG_LORA_SYNC_WORD);
        ChipView {
            mode: self.mode,
            packet_type: self.packet_type,
            frequency_hz: commands::frequency_hz(self.freq_steps),
            lora: commands::decode_modulation_params(self.mod_params),
            low_data_rate_optimisation: self.mod_params[3] == 1,
            preamble_symbols: u16::from_be_bytes([self.packet_params[0], self.packet_params[1]]),
            crc_on: self.packet_params[4] == 1,
            sync_word_register: [self.registers[reg], self.registers[reg + 1]],
            tx_power_dbm: self.tx_power,
            pa_config: self.pa_config,
            tcxo: self.tcxo,
            dio2_rf_switch: self.dio2,
            dcdc: self.dcdc,
            calibrated: self.calibrated,
            image_calibration: self.image,
            irq_mask: self.irq_mask,
            dio1_mask: self.dio1_mask,
            device_errors: self.device_errors,
            rx_continuous: self.rx_continuous,
            antenna: match (self.rx_enable, self.tx_enable) {
                (true, false) => Antenna::Rx,
                (false, true) => Antenna::Tx,
                _ => Antenna::Off,
            },
            transmitted: self.transmitted,
            cads: self.cads,
        }
    }

    pub(super) fn raise(&mut self, bits: u16) {
        self.irq |= bits & self.irq_mask;
    }

    pub(super) fn dio1(&self) -> bool {
        !self.mute_dio1 && self.irq & self.dio1_mask != 0
    }

    pub(super) fn standby(&mut self) {
        self.mode = Mode::StandbyRc;
        self.timer = None;
        self.rx_continuous = false;
    }

    /// Executes one command; returns MISO and work for the background task.
    pub(super) fn execute(&mut self, mosi: &[u8]) -> (Vec<u8>, Option<Ctl>) {
        let status = self.status_byte();
        let mut miso = vec![status; mosi.len()];
        let Some((&opcode, args)) = mosi.split_first() else {
            return (miso, None);
        };
        if self.mode == Mode::Sleep {
            // NSS falling wakes the chip; the command itself is lost (datasheet §13.1.1).
            self.mode = Mode::StandbyRc;
            self.busy_until = Instant::now() + BUSY_STARTUP;
            return (miso, None);
        }
        let mut busy = BUSY_COMMAND;
        let mut ctl = None;
        // The fixed parameter count each command needs; fewer is a processing error.
        let need = match opcode {
            op::SET_RF_FREQUENCY | op::SET_PA_CONFIG | op::SET_DIO3_AS_TCXO => 4,
            op::SET_MODULATION_PARAMS => 4,
            op::SET_PACKET_PARAMS => 6,
            op::SET_DIO_IRQ_PARAMS => 8,
            op::SET_CAD_PARAMS => 7,
            op::SET_TX | op::SET_RX => 3,
            op::SET_BUFFER_BASE_ADDRESS
            | op::CLEAR_IRQ_STATUS
            | op::CALIBRATE_IMAGE
            | op::SET_TX_PARAMS
            | op::CLEAR_DEVICE_ERRORS
            | op::READ_REGISTER
            | op::WRITE_REGISTER => 2,
            op::SET_STANDBY
            | op::SET_SLEEP
            | op::SET_PACKET_TYPE
            | op::CALIBRATE
            | op::SET_DIO2_AS_RF_SWITCH
            | op::SET_REGULATOR_MODE
            | op::WRITE_BUFFER
            | op::READ_BUFFER => 1,
            op::GET_STATUS
            | op::GET_IRQ_STATUS
            | op::GET_RX_BUFFER_STATUS
            | op::GET_PACKET_STATUS
            | op::GET_DEVICE_ERRORS
            | op::SET_CAD => 0,
            _ => {
                self.unknown_opcodes += 1;
                self.command_error = Some(CommandStatus::ProcessingError);
                return (miso, None);
            }
        };
        if args.len() < need {
            self.command_error = Some(CommandStatus::ProcessingError);
            return (miso, None);
        }
        let standby = matches!(self.mode, Mode::StandbyRc | Mode::StandbyXosc);
        let mut data: Vec<u8> = Vec::new();
        match opcode {
            op::GET_STATUS => self.command_error = None,
            op::SET_STANDBY => {
                self.standby();
                if args[0] == 1 {
                    self.mode = Mode::StandbyXosc;
                }
            }
            op::SET_SLEEP => {
                self.standby();
                self.mode = Mode::Sleep;
            }
            op::SET_PACKET_TYPE if standby => self.packet_type = args[0],
            op::SET_RF_FREQUENCY => {
                self.freq_steps = u32::from_be_bytes([args[0], args[1], args[2], args[3]]);
            }
            op::SET_MODULATION_PARAMS => self.mod_params.copy_from_slice(&args[..4]),
            op::SET_PACKET_PARAMS => self.packet_params.copy_from_slice(&args[..6]),
            op::SET_BUFFER_BASE_ADDRESS => (self.tx_base, self.rx_base) = (args[0], args[1]),
            op::WRITE_BUFFER => {
                let offset = args[0];
                for (i, b) in args[1..].iter().enumerate() {
                    self.buffer[usize::from(offset.wrapping_add(i as u8))] = *b;
                }
            }
            op::READ_BUFFER => {
                // Offset, then the status byte's slot, then data.
                let offset = args[0];
                let n = mosi.len().saturating_sub(3);
                data = (0..n)
                    .map(|i| self.buffer[usize::from(offset.wrapping_add(i as u8))])
                    .collect();
            }
            op::WRITE_REGISTER | op::READ_REGISTER => {
                let addr = usize::from(u16::from_be_bytes([args[0], args[1]]));
                // WriteRegister: address, data. ReadRegister: address, the status byte's
                // slot, data.
                let len = if opcode == op::WRITE_REGISTER {
                    args.len() - 2
                } else {
                    mosi.len().saturating_sub(4)
                };
                if addr + len > REGISTERS {
                    self.command_error = Some(CommandStatus::ProcessingError);
                } else if opcode == op::WRITE_REGISTER {
                    self.registers[addr..addr + len].copy_from_slice(&args[2..]);
                } else {
                    data = self.registers[addr..addr + len].to_vec();
                }
            }
            op::SET_DIO_IRQ_PARAMS => {
                self.irq_mask = u16::from_be_bytes([args[0], args[1]]);
                self.dio1_mask = u16::from_be_bytes([args[2], args[3]]);
            }
            op::GET_IRQ_STATUS => data = self.irq.to_be_bytes().to_vec(),
            op::CLEAR_IRQ_STATUS => self.irq &= !u16::from_be_bytes([args[0], args[1]]),
            op::SET_TX => match self.modulation() {
                Some(m) if standby => {
                    let len = usize::from(self.packet_params[3]);
                    let payload: Vec<u8> = (0..len)
                        .map(|i| self.buffer[usize::from(self.tx_base.wrapping_add(i as u8))])
                        .collect();
                    let timeout = timer_duration(&args[..3]);
                    self.mode = Mode::Tx;
                    self.timer = None;
                    ctl = Some(Ctl::Transmit(m, payload, timeout));
                }
                _ => self.command_error = Some(CommandStatus::ExecFailure),
            },
            op::SET_RX => match self.modulation() {
                Some(_) if standby || self.mode == Mode::Rx => {
                    let raw = &args[..3];
                    self.mode = Mode::Rx;
                    self.rx_continuous = raw == [0xFF, 0xFF, 0xFF];
                    self.timer = match (self.rx_continuous, timer_duration(raw)) {
                        (false, Some(d)) => Some((Instant::now() + d, Timer::RxTimeout)),
                        _ => None,
                    };
                    ctl = Some(Ctl::Rearm);
                }
                _ => self.command_error = Some(CommandStatus::ExecFailure),
            },
            op::GET_RX_BUFFER_STATUS => data = vec![self.rx_len, self.rx_start],
            op::GET_PACKET_STATUS => data = self.packet_status.to_vec(),
            op::SET_CAD_PARAMS => {}
            op::SET_CAD => match self.modulation() {
                Some(m) if standby => {
                    // The CAD length code: 0..=4 for 1, 2, 4, 8, 16 symbols; the driver's
                    // params are not kept, so 4 symbols are timed.
                    self.mode = Mode::Cad;
                    self.cads += 1;
                    self.timer = Some((Instant::now() + m.symbol_time() * 4, Timer::CadDone));
                    ctl = Some(Ctl::Rearm);
                }
                _ => self.command_error = Some(CommandStatus::ExecFailure),
            },
            op::CALIBRATE => {
                self.calibrated = args[0];
                busy = BUSY_CALIBRATE;
            }
            op::CALIBRATE_IMAGE => self.image = [args[0], args[1]],
            op::SET_PA_CONFIG => self.pa_config.copy_from_slice(&args[..4]),
            op::SET_TX_PARAMS => self.tx_power = args[0] as i8,
            op::SET_DIO2_AS_RF_SWITCH => self.dio2 = args[0] == 1,
            op::SET_DIO3_AS_TCXO => {
                self.tcxo = Some(TcxoVoltage::from_code(args[0]));
                // Calibrated on the RC clock while the TCXO was off: the chip flags an
                // oscillator start error (XoscStartErr, bit 5) for the host to clear.
                self.device_errors |= 1 << 5;
            }
            op::SET_REGULATOR_MODE => self.dcdc = args[0] == 1,
            op::GET_DEVICE_ERRORS => data = self.device_errors.to_be_bytes().to_vec(),
            op::CLEAR_DEVICE_ERRORS => self.device_errors = 0,
            // A mode-restricted command out of its mode.
            _ => self.command_error = Some(CommandStatus::ExecFailure),
        }
        if let Some(params) = commands::reply_layout(opcode) {
            let at = 1 + params;
            for (slot, b) in miso.iter_mut().skip(at + 1).zip(data) {
                *slot = b;
            }
        }
        self.busy_until = Instant::now() + busy;
        (miso, ctl)
    }
}

impl SpiChip for Chip {
    type Ctl = Ctl;
    type Timer = Timer;

    fn irq(&self) -> bool {
        self.dio1()
    }

    fn listening(&self) -> Option<Modulation> {
        match self.mode {
            Mode::Rx => self.modulation(),
            _ => None,
        }
    }

    fn exchange(&mut self, mosi: &[u8]) -> (Vec<u8>, Vec<Ctl>) {
        if self.garbage > 0 {
            self.garbage -= 1;
            (vec![0xFF; mosi.len()], Vec::new())
        } else if self.in_reset {
            (vec![0x00; mosi.len()], Vec::new())
        } else if self.busy() {
            self.busy_violations += 1;
            (vec![self.status_byte(); mosi.len()], Vec::new())
        } else {
            let (miso, ctl) = self.execute(mosi);
            (miso, ctl.into_iter().collect())
        }
    }

    /// Puts the frame on air if the chip is still in TX, and times TxDone, or the TX timeout
    /// when that comes first.
    fn control(&mut self, ctl: Ctl, medium: &dyn Medium, station: StationId) {
        // Rearm: the task looks at the timer again anyway.
        let Ctl::Transmit(m, payload, timeout) = ctl else {
            return;
        };
        if self.mode == Mode::Tx {
            medium.listen(station, None);
            let toa = medium.transmit(station, &m, &payload);
            let now = Instant::now();
            self.timer = Some(match timeout {
                Some(t) if t < toa => (now + t, Timer::TxTimeout),
                _ => (now + toa, Timer::TxDone),
            });
        }
    }

    fn timer(&mut self) -> &mut Option<(Instant, Timer)> {
        &mut self.timer
    }

    fn fire(&mut self, timer: Timer, medium: &dyn Medium, station: StationId) {
        match timer {
            Timer::TxDone => {
                self.standby();
                self.transmitted += 1;
                self.raise(irq::TX_DONE);
            }
            Timer::TxTimeout | Timer::RxTimeout => {
                self.standby();
                self.raise(irq::TIMEOUT);
            }
            Timer::CadDone => {
                let busy = self
                    .modulation()
                    .is_some_and(|m| medium.channel_busy(station, &m));
                self.standby();
                self.raise(irq::CAD_DONE | if busy { irq::CAD_DETECTED } else { 0 });
            }
        }
    }

    fn receive(&mut self, r: Reception) {
        if self.mode != Mode::Rx || r.payload.len() > commands::MAX_PAYLOAD {
            return;
        }
        let start = self.rx_base;
        for (i, b) in r.payload.iter().enumerate() {
            self.buffer[usize::from(start.wrapping_add(i as u8))] = *b;
        }
        self.rx_len = r.payload.len() as u8;
        self.rx_start = start;
        let rssi = (-i32::from(r.rssi_dbm) * 2).clamp(0, 255) as u8;
        let snr = (r.snr_db * 4.0).round().clamp(-128.0, 127.0) as i8 as u8;
        self.packet_status = [rssi, snr, rssi];
        let mut bits = irq::PREAMBLE_DETECTED | irq::SYNC_WORD_VALID | irq::HEADER_VALID;
        bits |= irq::RX_DONE;
        if self.crc_errors > 0 {
            self.crc_errors -= 1;
            bits |= irq::CRC_ERR;
        }
        self.raise(bits);
        if !self.rx_continuous {
            self.standby();
        }
    }

    /// Keeps the faults (the wiring's too) and counters across a reset.
    fn reset_keeping_faults(&mut self) {
        let mut fresh = Chip::power_on();
        fresh.garbage = self.garbage;
        fresh.stuck_busy = self.stuck_busy;
        fresh.mute_dio1 = self.mute_dio1;
        fresh.crc_errors = self.crc_errors;
        fresh.busy_violations = self.busy_violations;
        fresh.unknown_opcodes = self.unknown_opcodes;
        fresh.rx_enable = self.rx_enable;
        fresh.tx_enable = self.tx_enable;
        *self = fresh;
    }
}

/// A 24-bit timer argument in 15.625 µs steps; 0 (and continuous 0xFFFFFF) mean none.
pub(super) fn timer_duration(raw: &[u8]) -> Option<Duration> {
    let steps = u32::from_be_bytes([0, raw[0], raw[1], raw[2]]);
    (steps != 0 && steps != 0xFF_FFFF).then(|| Duration::from_micros(u64::from(steps) * 1000 / 64))
}
