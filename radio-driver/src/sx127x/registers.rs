//! The SX127x's LoRa register map as bytes, and the pure encoders and decoders the driver and
//! the emulator share, written from the SX1276/77/78/79 datasheet (rev 7, §4.1 "LoRa Modem"
//! and §6.4 "LoRa Mode Register Map").
//!
//! Every SPI exchange is one NSS-low period: an address byte (bit 7 set for a write), then
//! data bytes for consecutive registers (the FIFO register does not advance: each byte goes
//! to or comes from the FIFO at its pointer).

use lorabridge_hardware::Modulation;

pub const REG_FIFO: u8 = 0x00;
pub const REG_OP_MODE: u8 = 0x01;
pub const REG_FRF_MSB: u8 = 0x06;
pub const REG_PA_CONFIG: u8 = 0x09;
pub const REG_OCP: u8 = 0x0B;
pub const REG_LNA: u8 = 0x0C;
pub const REG_FIFO_ADDR_PTR: u8 = 0x0D;
pub const REG_FIFO_TX_BASE: u8 = 0x0E;
pub const REG_FIFO_RX_BASE: u8 = 0x0F;
pub const REG_FIFO_RX_CURRENT: u8 = 0x10;
pub const REG_IRQ_FLAGS_MASK: u8 = 0x11;
pub const REG_IRQ_FLAGS: u8 = 0x12;
pub const REG_RX_NB_BYTES: u8 = 0x13;
pub const REG_PKT_SNR: u8 = 0x19;
pub const REG_PKT_RSSI: u8 = 0x1A;
pub const REG_MODEM_CONFIG1: u8 = 0x1D;
pub const REG_MODEM_CONFIG2: u8 = 0x1E;
pub const REG_PREAMBLE_MSB: u8 = 0x20;
pub const REG_PAYLOAD_LENGTH: u8 = 0x22;
pub const REG_MAX_PAYLOAD_LENGTH: u8 = 0x23;
pub const REG_MODEM_CONFIG3: u8 = 0x26;
pub const REG_DETECT_OPTIMIZE: u8 = 0x31;
pub const REG_DETECTION_THRESHOLD: u8 = 0x37;
pub const REG_SYNC_WORD: u8 = 0x39;
pub const REG_DIO_MAPPING1: u8 = 0x40;
pub const REG_VERSION: u8 = 0x42;
pub const REG_PA_DAC: u8 = 0x4D;

/// Bit 7 of the address byte: write.
pub const WRITE: u8 = 0x80;
/// What RegVersion reads on every SX1276/77/78/79 (silicon revision 1.2; the RFM95/96/98
/// modules carry the same die).
pub const VERSION: u8 = 0x12;

/// RegOpMode: bit 7 selects LoRa (only writable in sleep), bits 2..0 the mode.
pub const LONG_RANGE_MODE: u8 = 0x80;
/// RegOpMode bit 3: the low-frequency port's registers (bands below 525 MHz).
pub const LOW_FREQUENCY_MODE: u8 = 0x08;
pub const MODE_MASK: u8 = 0x07;

/// The RegOpMode modes the driver uses (datasheet §4.1.2.2 and table 16).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Sleep = 0,
    Standby = 1,
    Tx = 3,
    RxContinuous = 5,
    RxSingle = 6,
    Cad = 7,
}

impl Mode {
    /// The mode in RegOpMode's low bits; FSTX and FSRX (2 and 4) are none of the driver's.
    pub fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits & MODE_MASK {
            0 => Mode::Sleep,
            1 => Mode::Standby,
            3 => Mode::Tx,
            5 => Mode::RxContinuous,
            6 => Mode::RxSingle,
            7 => Mode::Cad,
            _ => return None,
        })
    }
}

/// RegOpMode for LoRa in `mode`, with the low-frequency bit for frequencies below 525 MHz.
pub fn op_mode(mode: Mode, frequency_hz: u32) -> u8 {
    let lf = if frequency_hz < LF_BELOW_HZ {
        LOW_FREQUENCY_MODE
    } else {
        0
    };
    LONG_RANGE_MODE | lf | mode as u8
}

/// Below this the chip's low-frequency port (bands 2 and 3) is in use.
pub const LF_BELOW_HZ: u32 = 525_000_000;

/// RegIrqFlags bits (write 1 to clear).
pub mod irq {
    pub const RX_TIMEOUT: u8 = 1 << 7;
    pub const RX_DONE: u8 = 1 << 6;
    pub const PAYLOAD_CRC_ERROR: u8 = 1 << 5;
    pub const VALID_HEADER: u8 = 1 << 4;
    pub const TX_DONE: u8 = 1 << 3;
    pub const CAD_DONE: u8 = 1 << 2;
    pub const FHSS_CHANGE_CHANNEL: u8 = 1 << 1;
    pub const CAD_DETECTED: u8 = 1 << 0;
    /// What the driver unmasks (RegIrqFlagsMask holds the complement: 1 = masked).
    pub const DRIVER: u8 =
        RX_DONE | PAYLOAD_CRC_ERROR | VALID_HEADER | TX_DONE | CAD_DONE | CAD_DETECTED;
}

/// RegDioMapping1 bits 7..6: what DIO0 signals (datasheet table 18).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dio0 {
    RxDone = 0,
    TxDone = 1,
    CadDone = 2,
}

impl Dio0 {
    pub fn mapping(self) -> u8 {
        (self as u8) << 6
    }

    pub fn from_mapping(reg: u8) -> Option<Self> {
        match reg >> 6 {
            0 => Some(Dio0::RxDone),
            1 => Some(Dio0::TxDone),
            2 => Some(Dio0::CadDone),
            _ => None,
        }
    }

    /// The RegIrqFlags bit that drives DIO0 in this mapping.
    pub fn flag(self) -> u8 {
        match self {
            Dio0::RxDone => irq::RX_DONE,
            Dio0::TxDone => irq::TX_DONE,
            Dio0::CadDone => irq::CAD_DONE,
        }
    }
}

pub use crate::spi_radio::MAX_PAYLOAD;
/// The FIFO: 256 bytes shared by TX and RX; the driver gives both the whole of it (base 0),
/// since it never sends and receives at once.
pub const FIFO_SIZE: usize = 256;

/// Frf = f · 2^19 / 32 MHz (datasheet §4.1.4: F_STEP = 61.035 Hz), 24 bits, rounded to
/// the nearest step (at most 30.5 Hz off).
pub fn frequency_steps(hz: u32) -> u32 {
    (((u64::from(hz) << 19) + 16_000_000) / 32_000_000) as u32 & 0xFF_FFFF
}

pub fn frequency_hz(steps: u32) -> u32 {
    ((u64::from(steps) * 32_000_000) >> 19) as u32
}

/// RegModemConfig1's bandwidth codes (datasheet §6.4, bits 7..4).
pub const BANDWIDTHS: [(u32, u8); 10] = [
    (7_800, 0),
    (10_400, 1),
    (15_600, 2),
    (20_800, 3),
    (31_250, 4),
    (41_700, 5),
    (62_500, 6),
    (125_000, 7),
    (250_000, 8),
    (500_000, 9),
];

/// RegModemConfig1..3 for `m`: bandwidth, coding rate (4/5..4/8 as 1..4), explicit header;
/// SF, payload CRC on; low-data-rate optimisation as the modulation computes it, AGC on.
/// `None` for values the chip has no code for, and for SF6 (it needs implicit header mode).
pub fn modem_config(m: &Modulation) -> Option<[u8; 3]> {
    let bw = BANDWIDTHS.iter().find(|(hz, _)| *hz == m.bandwidth_hz)?.1;
    if !(5..=8).contains(&m.coding_rate) || !(7..=12).contains(&m.spreading_factor) {
        return None;
    }
    let cr = m.coding_rate - 4;
    let config1 = bw << 4 | cr << 1;
    let config2 = m.spreading_factor << 4 | MODEM_CONFIG2_CRC_ON;
    let ldro = if m.low_data_rate_optimisation() {
        MODEM_CONFIG3_LDRO
    } else {
        0
    };
    Some([config1, config2, ldro | MODEM_CONFIG3_AGC_AUTO])
}

/// RegModemConfig2 bit 2: the transmitter adds a payload CRC, the receiver checks it.
pub const MODEM_CONFIG2_CRC_ON: u8 = 0x04;
/// RegModemConfig1 bit 0: implicit header.
pub const MODEM_CONFIG1_IMPLICIT: u8 = 0x01;
pub const MODEM_CONFIG3_LDRO: u8 = 0x08;
pub const MODEM_CONFIG3_AGC_AUTO: u8 = 0x04;

/// The settings RegModemConfig1..3 hold: SF, bandwidth in Hz, coding rate denominator, and
/// whether they are the driver's (explicit header, CRC on); `None` for codes no modulation has.
pub fn decode_modem_config(c: [u8; 3]) -> Option<(u8, u32, u8, bool)> {
    let bw = BANDWIDTHS.iter().find(|(_, code)| *code == c[0] >> 4)?.0;
    let cr = (c[0] >> 1) & 0x07;
    let sf = c[1] >> 4;
    if !(1..=4).contains(&cr) || !(6..=12).contains(&sf) {
        return None;
    }
    let explicit_crc = c[0] & MODEM_CONFIG1_IMPLICIT == 0 && c[1] & MODEM_CONFIG2_CRC_ON != 0;
    Some((sf, bw, cr + 4, explicit_crc))
}

/// The power the PA_BOOST pin can give (datasheet §5.4.2): +2..=+17 dBm, and +20 dBm with
/// the high-power PA DAC. +18 and +19 are set as +20 with OutputPower 13 and 14.
pub const POWER_DBM: std::ops::RangeInclusive<i8> = 2..=20;

/// RegPaDac: default, and the +20 dBm setting of PA_BOOST.
pub const PA_DAC_DEFAULT: u8 = 0x84;
pub const PA_DAC_HIGH_POWER: u8 = 0x87;

/// RegPaConfig, RegPaDac and RegOcp for `dbm` on PA_BOOST (the only PA pin the RFM95 and the
/// Dragino HAT wire to the antenna): `Pout = 2 + OutputPower`, or `5 + OutputPower` with the
/// high-power DAC. The current limit is raised to 140 mA for the high-power setting (the
/// datasheet's 120 mA at +20 dBm plus margin), else left at the 100 mA default.
pub fn pa_settings(dbm: i8) -> Option<[u8; 3]> {
    if !POWER_DBM.contains(&dbm) {
        return None;
    }
    let pa_boost = 0x80 | 0x70;
    Some(if dbm > 17 {
        [pa_boost | (dbm - 5) as u8, PA_DAC_HIGH_POWER, OCP_140_MA]
    } else {
        [pa_boost | (dbm - 2) as u8, PA_DAC_DEFAULT, OCP_100_MA]
    })
}

/// The power RegPaConfig and RegPaDac give on PA_BOOST.
pub fn pa_power_dbm(pa_config: u8, pa_dac: u8) -> i8 {
    let out = (pa_config & 0x0F) as i8;
    if pa_dac & 0x07 == 0x07 {
        5 + out
    } else {
        2 + out
    }
}

/// RegOcp: on, trim 11 (45 + 5·11 = 100 mA) and trim 17 (−30 + 10·17 = 140 mA).
pub const OCP_100_MA: u8 = 0x20 | 0x0B;
pub const OCP_140_MA: u8 = 0x20 | 0x11;
/// RegLna: highest gain, the HF port's LNA boost on (datasheet §6.4).
pub const LNA_MAX_GAIN_BOOST: u8 = 0x23;
/// RegDetectOptimize and RegDetectionThreshold for SF7..12 (SF6 takes other values).
pub const DETECT_OPTIMIZE_SF7_12: u8 = 0xC3;
pub const DETECTION_THRESHOLD_SF7_12: u8 = 0x0A;

/// The packet's RSSI in dBm from RegPktRssiValue and RegPktSnrValue (datasheet §5.5.5): the
/// offset is −157 on the HF port and −164 on the LF port, and a packet below the noise
/// (negative SNR) adds its SNR.
pub fn packet_rssi(raw_rssi: u8, raw_snr: u8, frequency_hz: u32) -> i16 {
    let offset = if frequency_hz < LF_BELOW_HZ {
        -164
    } else {
        -157
    };
    let snr = packet_snr(raw_snr);
    let rssi = offset + i16::from(raw_rssi);
    if snr < 0.0 {
        rssi + (snr.floor() as i16)
    } else {
        rssi
    }
}

/// RegPktSnrValue: two's complement, in quarter dB.
pub fn packet_snr(raw: u8) -> f32 {
    f32::from(raw as i8) / 4.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frequency_steps_round_trip_within_a_step() {
        for hz in [
            137_000_000,
            433_175_000,
            868_100_000,
            869_525_000,
            915_000_000,
        ] {
            let back = frequency_hz(frequency_steps(hz));
            assert!(hz.abs_diff(back) <= 32, "{hz} -> {back}");
        }
        // The datasheet's example: 868 MHz is 0xD90000.
        assert_eq!(frequency_steps(868_000_000), 0xD9_0000);
    }

    #[test]
    fn modem_config_carries_sf_bw_cr_and_ldro() {
        let m = Modulation::eu868_default();
        let sf7 = Modulation {
            spreading_factor: 7,
            ..m
        };
        assert_eq!(modem_config(&sf7), Some([0x72, 0x74, 0x04]));
        let sf12 = Modulation {
            spreading_factor: 12,
            coding_rate: 8,
            ..m
        };
        let c = modem_config(&sf12).expect("codes");
        assert_eq!(c[2] & MODEM_CONFIG3_LDRO, MODEM_CONFIG3_LDRO);
        assert_eq!(decode_modem_config(c), Some((12, 125_000, 8, true)));
        for bad in [
            Modulation {
                spreading_factor: 6,
                ..m
            },
            Modulation {
                bandwidth_hz: 200_000,
                ..m
            },
            Modulation {
                coding_rate: 9,
                ..m
            },
        ] {
            assert_eq!(modem_config(&bad), None, "{bad:?}");
        }
        assert_eq!(decode_modem_config([0xF2, 0x74, 0]), None);
    }

    #[test]
    fn pa_boost_power_round_trips() {
        for dbm in POWER_DBM {
            let [pa, dac, _] = pa_settings(dbm).expect("in range");
            assert_eq!(pa & 0x80, 0x80, "PA_BOOST");
            assert_eq!(pa_power_dbm(pa, dac), dbm);
        }
        assert_eq!(pa_settings(1), None);
        assert_eq!(pa_settings(21), None);
    }

    #[test]
    fn rssi_uses_the_port_offset_and_a_negative_snr() {
        assert_eq!(packet_rssi(86, 24, 868_000_000), -71);
        assert_eq!(packet_rssi(86, 24, 433_000_000), -78);
        // SNR -5 dB (0xEC = -20 quarter dB).
        assert_eq!(packet_snr(0xEC), -5.0);
        assert_eq!(packet_rssi(40, 0xEC, 868_000_000), -122);
    }

    #[test]
    fn op_mode_sets_lora_and_the_port() {
        assert_eq!(op_mode(Mode::Standby, 868_000_000), 0x81);
        assert_eq!(op_mode(Mode::RxContinuous, 433_000_000), 0x8D);
        assert_eq!(Mode::from_bits(0x87), Some(Mode::Cad));
        assert_eq!(Mode::from_bits(0x82), None);
    }
}
