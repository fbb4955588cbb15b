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

use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use embedded_hal::digital::{ErrorType as PinErrorType, InputPin, OutputPin};
use embedded_hal::spi::{ErrorType as SpiErrorType, Operation};
use embedded_hal_async::digital::Wait;
use lorabridge_hardware::Modulation;
use lorabridge_radio::sx126x::commands::{self, ChipMode, CommandStatus, TcxoVoltage, irq, op};
use lorabridge_radio::sx126x::{Antenna, Bus};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::medium::{Medium, Reception, StationId};

/// BUSY after an ordinary command.
const BUSY_COMMAND: Duration = Duration::from_micros(50);
/// BUSY after Calibrate (datasheet: 3.5 ms for all blocks).
const BUSY_CALIBRATE: Duration = Duration::from_micros(3_500);
/// BUSY after NRESET rises or a replug.
const BUSY_STARTUP: Duration = Duration::from_millis(3);
/// Register space modelled.
const REGISTERS: usize = 0x1000;

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
enum Timer {
    TxDone,
    TxTimeout,
    CadDone,
    RxTimeout,
}

/// Work for the background task (it owns the medium's timers and receptions).
enum Ctl {
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

struct Chip {
    powered: bool,
    in_reset: bool,
    mode: Mode,
    packet_type: u8,
    freq_steps: u32,
    mod_params: [u8; 4],
    packet_params: [u8; 6],
    tx_base: u8,
    rx_base: u8,
    buffer: [u8; 256],
    registers: Box<[u8; REGISTERS]>,
    irq_mask: u16,
    dio1_mask: u16,
    irq: u16,
    rx_len: u8,
    rx_start: u8,
    packet_status: [u8; 3],
    rx_continuous: bool,
    tx_power: i8,
    pa_config: [u8; 4],
    tcxo: Option<TcxoVoltage>,
    dio2: bool,
    dcdc: bool,
    calibrated: u8,
    image: [u8; 2],
    device_errors: u16,
    command_error: Option<CommandStatus>,
    busy_until: Instant,
    timer: Option<(Instant, Timer)>,
    rx_enable: bool,
    tx_enable: bool,
    transmitted: u32,
    cads: u32,
    // Faults and counters.
    stuck_busy: bool,
    mute_dio1: bool,
    crc_errors: u32,
    garbage: u32,
    busy_violations: u32,
    unknown_opcodes: u32,
}

impl Chip {
    /// The state at power-on or after a reset (datasheet §9: STDBY_RC, LoRa sync word 0x1424).
    fn power_on() -> Self {
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

    fn busy(&self) -> bool {
        self.stuck_busy || self.in_reset || Instant::now() < self.busy_until
    }

    fn status_byte(&self) -> u8 {
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

    fn sync_word(&self) -> u8 {
        let reg = usize::from(commands::REG_LORA_SYNC_WORD);
        // A register value of no sync-word form matches nobody's one-byte sync word; 0 stands
        // in for it (no module of ours uses 0).
        commands::sync_word_from_register([self.registers[reg], self.registers[reg + 1]])
            .unwrap_or(0)
    }

    /// The modulation the registers hold, if they hold a LoRa one.
    fn modulation(&self) -> Option<Modulation> {
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

    fn listening(&self) -> Option<Modulation> {
        match self.mode {
            Mode::Rx => self.modulation(),
            _ => None,
        }
    }

    fn view(&self) -> ChipView {
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

    fn raise(&mut self, bits: u16) {
        self.irq |= bits & self.irq_mask;
    }

    fn dio1(&self) -> bool {
        !self.mute_dio1 && self.irq & self.dio1_mask != 0
    }

    fn standby(&mut self) {
        self.mode = Mode::StandbyRc;
        self.timer = None;
        self.rx_continuous = false;
    }

    /// Executes one command; returns MISO and work for the background task.
    fn execute(&mut self, mosi: &[u8]) -> (Vec<u8>, Option<Ctl>) {
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
}

/// A 24-bit timer argument in 15.625 µs steps; 0 (and continuous 0xFFFFFF) mean none.
fn timer_duration(raw: &[u8]) -> Option<Duration> {
    let steps = u32::from_be_bytes([0, raw[0], raw[1], raw[2]]);
    (steps != 0 && steps != 0xFF_FFFF).then(|| Duration::from_micros(u64::from(steps) * 1000 / 64))
}

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
pub struct Sx1262Spi(Arc<Shared>);

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
pub struct Sx1262Busy(Arc<Shared>);

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
pub struct Sx1262Dio1(Arc<Shared>);

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
enum Role {
    Reset,
    RxEnable,
    TxEnable,
}

/// A host-driven line into the chip's board: NRESET or an antenna switch enable.
pub struct Sx1262Line {
    shared: Arc<Shared>,
    role: Role,
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
