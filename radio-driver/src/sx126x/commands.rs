//! The SX126x command set as bytes: opcodes, register addresses, and the pure encoders and
//! decoders the driver and the emulator share, written from the SX1261/2 datasheet (rev 2.1,
//! §13 "List of Commands" and §12 "Register Map").
//!
//! Every SPI exchange is one NSS-low period: an opcode, its parameters, and for the commands
//! that answer, one status byte followed by the data. The chip drives MISO with its status
//! while it clocks in the opcode and parameters, so a reply's status sits right after the
//! parameters ([`reply_layout`]).

use lorabridge_hardware::Modulation;

/// Opcodes (datasheet §13).
pub mod op {
    pub const SET_SLEEP: u8 = 0x84;
    pub const SET_STANDBY: u8 = 0x80;
    pub const SET_TX: u8 = 0x83;
    pub const SET_RX: u8 = 0x82;
    pub const SET_CAD: u8 = 0xC5;
    pub const SET_REGULATOR_MODE: u8 = 0x96;
    pub const CALIBRATE: u8 = 0x89;
    pub const CALIBRATE_IMAGE: u8 = 0x98;
    pub const SET_PA_CONFIG: u8 = 0x95;
    pub const WRITE_REGISTER: u8 = 0x0D;
    pub const READ_REGISTER: u8 = 0x1D;
    pub const WRITE_BUFFER: u8 = 0x0E;
    pub const READ_BUFFER: u8 = 0x1E;
    pub const SET_DIO_IRQ_PARAMS: u8 = 0x08;
    pub const GET_IRQ_STATUS: u8 = 0x12;
    pub const CLEAR_IRQ_STATUS: u8 = 0x02;
    pub const SET_DIO2_AS_RF_SWITCH: u8 = 0x9D;
    pub const SET_DIO3_AS_TCXO: u8 = 0x97;
    pub const SET_RF_FREQUENCY: u8 = 0x86;
    pub const SET_PACKET_TYPE: u8 = 0x8A;
    pub const SET_TX_PARAMS: u8 = 0x8E;
    pub const SET_MODULATION_PARAMS: u8 = 0x8B;
    pub const SET_PACKET_PARAMS: u8 = 0x8C;
    pub const SET_CAD_PARAMS: u8 = 0x88;
    pub const SET_BUFFER_BASE_ADDRESS: u8 = 0x8F;
    pub const GET_STATUS: u8 = 0xC0;
    pub const GET_RX_BUFFER_STATUS: u8 = 0x13;
    pub const GET_PACKET_STATUS: u8 = 0x14;
    pub const GET_DEVICE_ERRORS: u8 = 0x17;
    pub const CLEAR_DEVICE_ERRORS: u8 = 0x07;
}

/// The LoRa sync word register (two bytes, MSB first; datasheet §12.1).
pub const REG_LORA_SYNC_WORD: u16 = 0x0740;

/// Datasheet §15.1: bit 2 of this register must be 0 at 500 kHz and 1 at every other LoRa
/// bandwidth, or the modulation quality suffers.
pub const REG_TX_MODULATION: u16 = 0x0889;
/// Datasheet §15.2: bits 4:1 set make the SX1262's PA withstand an antenna mismatch.
pub const REG_TX_CLAMP: u16 = 0x08D8;
/// Datasheet §15.4: bit 2 must be 1 with standard IQ (0 with inverted IQ).
pub const REG_IQ_POLARITY: u16 = 0x0736;

/// Packet type LoRa for SetPacketType.
pub const PACKET_TYPE_LORA: u8 = 0x01;
/// SetStandby argument: the 13 MHz RC oscillator (works with or without a TCXO).
pub const STANDBY_RC: u8 = 0x00;
/// SetRx timeout meaning "continuous: stay in RX after each packet".
pub const RX_CONTINUOUS: u32 = 0xFF_FFFF;
/// Calibrate argument: every block (RC64k, RC13M, PLL, ADC pulse, ADC bulk N/P, image).
pub const CALIBRATE_ALL: u8 = 0x7F;
pub use crate::spi_radio::MAX_PAYLOAD;

/// IRQ bits (datasheet §13.3.1, table 13-29).
pub mod irq {
    pub const TX_DONE: u16 = 1 << 0;
    pub const RX_DONE: u16 = 1 << 1;
    pub const PREAMBLE_DETECTED: u16 = 1 << 2;
    pub const SYNC_WORD_VALID: u16 = 1 << 3;
    pub const HEADER_VALID: u16 = 1 << 4;
    pub const HEADER_ERR: u16 = 1 << 5;
    pub const CRC_ERR: u16 = 1 << 6;
    pub const CAD_DONE: u16 = 1 << 7;
    pub const CAD_DETECTED: u16 = 1 << 8;
    pub const TIMEOUT: u16 = 1 << 9;
    /// What the driver routes to DIO1.
    pub const DRIVER_MASK: u16 =
        TX_DONE | RX_DONE | HEADER_ERR | CRC_ERR | CAD_DONE | CAD_DETECTED | TIMEOUT;
}

/// Where a command's status byte and data sit in the exchange: after the opcode and its
/// parameter bytes comes one status byte, then the data. Returns the number of parameter
/// bytes (addresses, offsets) that precede the status, or `None` for commands that return
/// nothing.
pub fn reply_layout(opcode: u8) -> Option<usize> {
    match opcode {
        op::GET_STATUS
        | op::GET_IRQ_STATUS
        | op::GET_RX_BUFFER_STATUS
        | op::GET_PACKET_STATUS
        | op::GET_DEVICE_ERRORS => Some(0),
        op::READ_BUFFER => Some(1),
        op::READ_REGISTER => Some(2),
        _ => None,
    }
}

/// The chip mode in a status byte (bits 6:4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChipMode {
    StandbyRc,
    StandbyXosc,
    Fs,
    Rx,
    Tx,
}

/// The outcome of the last command in a status byte (bits 3:1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandStatus {
    /// Nothing to report (0, or the reserved 1).
    None,
    DataAvailable,
    Timeout,
    /// The opcode or its parameters were not understood.
    ProcessingError,
    /// Understood but could not be executed.
    ExecFailure,
    TxDone,
}

/// A decoded status byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    pub mode: ChipMode,
    pub command: CommandStatus,
}

/// The status byte encodings, for the emulator.
pub fn encode_status(mode: ChipMode, command: CommandStatus) -> u8 {
    let m = match mode {
        ChipMode::StandbyRc => 2,
        ChipMode::StandbyXosc => 3,
        ChipMode::Fs => 4,
        ChipMode::Rx => 5,
        ChipMode::Tx => 6,
    };
    let c = match command {
        CommandStatus::None => 0,
        CommandStatus::DataAvailable => 2,
        CommandStatus::Timeout => 3,
        CommandStatus::ProcessingError => 4,
        CommandStatus::ExecFailure => 5,
        CommandStatus::TxDone => 6,
    };
    (m << 4) | (c << 1)
}

/// Decodes a status byte; `None` when the mode bits hold no defined mode, which is what a
/// bus with no chip on it reads (0x00 or 0xFF) and so how the driver notices a missing or
/// unplugged radio. The datasheet leaves bit 7 and bit 0 reserved.
pub fn decode_status(byte: u8) -> Option<Status> {
    let mode = match (byte >> 4) & 0x07 {
        2 => ChipMode::StandbyRc,
        3 => ChipMode::StandbyXosc,
        4 => ChipMode::Fs,
        5 => ChipMode::Rx,
        6 => ChipMode::Tx,
        _ => return None,
    };
    let command = match (byte >> 1) & 0x07 {
        2 => CommandStatus::DataAvailable,
        3 => CommandStatus::Timeout,
        4 => CommandStatus::ProcessingError,
        5 => CommandStatus::ExecFailure,
        6 => CommandStatus::TxDone,
        _ => CommandStatus::None,
    };
    Some(Status { mode, command })
}

/// The sync word register value for a one-byte LoRa sync word: the SX126x spreads each
/// nibble into its own byte with 4 below it, so 0x12 (private) is 0x1424 and 0x34 (public,
/// LoRaWAN) 0x3444. This is the mapping by which an SX126x and an SX127x or a RAK3172 with
/// the "same" sync word hear each other.
pub fn sync_word_register(sync_word: u8) -> [u8; 2] {
    [(sync_word & 0xF0) | 0x04, ((sync_word & 0x0F) << 4) | 0x04]
}

/// The one-byte sync word a register value stands for, if it is of the spread form.
pub fn sync_word_from_register(reg: [u8; 2]) -> Option<u8> {
    (reg[0] & 0x0F == 0x04 && reg[1] & 0x0F == 0x04).then_some((reg[0] & 0xF0) | (reg[1] >> 4))
}

/// The crystal the frequency synthesiser counts in: steps are 32 MHz / 2^25.
const XTAL_HZ: u64 = 32_000_000;

/// SetRfFrequency's argument for `hz`: `hz · 2^25 / 32 MHz`, rounded to the nearest step.
pub fn frequency_steps(hz: u32) -> u32 {
    ((u64::from(hz) << 25) + XTAL_HZ / 2).div_euclid(XTAL_HZ) as u32
}

/// The frequency a SetRfFrequency argument selects, rounded to the nearest Hz.
pub fn frequency_hz(steps: u32) -> u32 {
    ((u64::from(steps) * XTAL_HZ + (1 << 24)) >> 25) as u32
}

/// LoRa bandwidths in Hz with their SetModulationParams codes (datasheet table 13-48).
pub const BANDWIDTHS: [(u32, u8); 10] = [
    (7_800, 0x00),
    (10_400, 0x08),
    (15_600, 0x01),
    (20_800, 0x09),
    (31_250, 0x02),
    (41_700, 0x0A),
    (62_500, 0x03),
    (125_000, 0x04),
    (250_000, 0x05),
    (500_000, 0x06),
];

/// The SetModulationParams bytes for `m` (SF, bandwidth code, coding rate 1..=4 for
/// 4/5..4/8, low-data-rate optimisation), or `None` for settings the chip has no code for.
pub fn modulation_params(m: &Modulation) -> Option<[u8; 4]> {
    let bw = BANDWIDTHS.iter().find(|(hz, _)| *hz == m.bandwidth_hz)?.1;
    if !(5..=12).contains(&m.spreading_factor) || !(5..=8).contains(&m.coding_rate) {
        return None;
    }
    Some([
        m.spreading_factor,
        bw,
        m.coding_rate - 4,
        u8::from(m.low_data_rate_optimisation()),
    ])
}

/// SF, bandwidth in Hz and coding rate denominator from SetModulationParams bytes.
pub fn decode_modulation_params(p: [u8; 4]) -> Option<(u8, u32, u8)> {
    let bw = BANDWIDTHS.iter().find(|(_, code)| *code == p[1])?.0;
    ((5..=12).contains(&p[0]) && (1..=4).contains(&p[2])).then_some((p[0], bw, p[2] + 4))
}

/// The SetPacketParams bytes: preamble length, explicit header, `payload_len` (the length
/// sent, or the largest accepted in RX), CRC on, standard IQ.
pub fn packet_params(preamble: u16, payload_len: u8) -> [u8; 6] {
    let [hi, lo] = preamble.to_be_bytes();
    [hi, lo, 0x00, payload_len, 0x01, 0x00]
}

/// The CalibrateImage band for a frequency (datasheet table 9-2), so that image rejection
/// is calibrated for the band in use.
pub fn image_calibration(hz: u32) -> [u8; 2] {
    const BANDS: [(u32, [u8; 2]); 4] = [
        (440_000_000, [0x6B, 0x6F]),
        (510_000_000, [0x75, 0x81]),
        (787_000_000, [0xC1, 0xC5]),
        (870_000_000, [0xD7, 0xDB]),
    ];
    BANDS
        .iter()
        .find(|(top, _)| hz <= *top)
        .map_or([0xE1, 0xE9], |(_, band)| *band)
}

/// The SX1262's output power range at its own pin (the high-power PA).
pub const POWER_DBM: std::ops::RangeInclusive<i8> = -9..=22;
/// SetPaConfig for the SX1262 at up to +22 dBm (datasheet table 13-21: duty cycle 4,
/// hpMax 7, high-power PA, paLut 1).
pub const PA_CONFIG_SX1262: [u8; 4] = [0x04, 0x07, 0x00, 0x01];
/// SetTxParams ramp time 200 µs (code 4).
pub const RAMP_200_US: u8 = 0x04;

/// A 24-bit timer argument in the chip's 15.625 µs steps.
pub fn timer_steps(micros: u64) -> [u8; 3] {
    let steps = (micros * 64 / 1000).min(0xFF_FFFF) as u32;
    let [_, a, b, c] = steps.to_be_bytes();
    [a, b, c]
}

/// TCXO supply voltages DIO3 can give (SetDio3AsTcxoCtrl, datasheet table 13-35).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TcxoVoltage {
    #[serde(rename = "1.6")]
    V1_6,
    #[serde(rename = "1.7")]
    V1_7,
    #[serde(rename = "1.8")]
    V1_8,
    #[serde(rename = "2.2")]
    V2_2,
    #[serde(rename = "2.4")]
    V2_4,
    #[serde(rename = "2.7")]
    V2_7,
    #[serde(rename = "3.0")]
    V3_0,
    #[serde(rename = "3.3")]
    V3_3,
}

impl TcxoVoltage {
    pub const ALL: [TcxoVoltage; 8] = [
        TcxoVoltage::V1_6,
        TcxoVoltage::V1_7,
        TcxoVoltage::V1_8,
        TcxoVoltage::V2_2,
        TcxoVoltage::V2_4,
        TcxoVoltage::V2_7,
        TcxoVoltage::V3_0,
        TcxoVoltage::V3_3,
    ];

    /// The command's voltage code.
    pub fn code(self) -> u8 {
        Self::ALL.iter().position(|v| *v == self).unwrap_or(0) as u8
    }

    /// The voltage a code selects (only the low three bits count).
    pub fn from_code(code: u8) -> Self {
        Self::ALL[usize::from(code & 0x07)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_words_spread_into_the_register_and_back() {
        assert_eq!(sync_word_register(0x12), [0x14, 0x24]);
        assert_eq!(sync_word_register(0x34), [0x34, 0x44]);
        assert_eq!(sync_word_register(0x2B), [0x24, 0xB4]);
        for sw in 0..=255u8 {
            assert_eq!(sync_word_from_register(sync_word_register(sw)), Some(sw));
        }
        assert_eq!(sync_word_from_register([0x12, 0x34]), None);
    }

    #[test]
    fn frequencies_round_trip_through_pll_steps() {
        // 868 MHz · 2^25 / 32 MHz = 910163968 exactly.
        assert_eq!(frequency_steps(868_000_000), 910_163_968);
        for hz in [433_175_000, 868_100_000, 869_525_000, 915_000_000] {
            let back = frequency_hz(frequency_steps(hz));
            assert!(back.abs_diff(hz) <= 1, "{hz} -> {back}");
        }
    }

    #[test]
    fn modulation_params_carry_sf_bw_cr_and_ldro() {
        let m = Modulation::eu868_default();
        let sf7 = Modulation {
            spreading_factor: 7,
            coding_rate: 5,
            ..m
        };
        assert_eq!(modulation_params(&sf7), Some([7, 0x04, 1, 0]));
        let sf12 = Modulation {
            spreading_factor: 12,
            coding_rate: 8,
            ..m
        };
        assert_eq!(modulation_params(&sf12), Some([12, 0x04, 4, 1]));
        assert_eq!(
            decode_modulation_params([12, 0x04, 4, 1]),
            Some((12, 125_000, 8))
        );
        let odd = Modulation {
            bandwidth_hz: 100_000,
            ..m
        };
        assert_eq!(modulation_params(&odd), None);
        assert_eq!(decode_modulation_params([7, 0x07, 1, 0]), None);
    }

    #[test]
    fn status_bytes_round_trip_and_an_empty_bus_is_no_chip() {
        let s = encode_status(ChipMode::Rx, CommandStatus::DataAvailable);
        assert_eq!(s, 0x54);
        assert_eq!(
            decode_status(s),
            Some(Status {
                mode: ChipMode::Rx,
                command: CommandStatus::DataAvailable
            })
        );
        assert_eq!(decode_status(0x00), None);
        assert_eq!(decode_status(0xFF), None);
    }

    #[test]
    fn timers_count_in_fifteen_microsecond_steps() {
        assert_eq!(timer_steps(1000), [0, 0, 64]);
        assert_eq!(timer_steps(u64::MAX / 128), [0xFF, 0xFF, 0xFF]);
        assert_eq!(TcxoVoltage::V1_8.code(), 2);
        assert_eq!(TcxoVoltage::from_code(0xFB), TcxoVoltage::V2_2);
    }
}
