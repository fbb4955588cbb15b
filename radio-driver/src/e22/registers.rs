//! The E22's configuration registers 00–06 and the commands that write and read them: pure
//! data, no I/O.
//!
//! Layout (fact sheet §1c; baud and 30 dBm power tables from the E22-900T22D and E22-400T30S
//! manuals):
//!
//! | reg | bits |
//! |---|---|
//! | 00/01 | ADDH/ADDL (0xFFFF = broadcast) |
//! | 02 | NETID |
//! | 03 | UART baud b7–5 · parity b4–3 · air rate b2–0 |
//! | 04 | sub-packet b7–6 · noise RSSI b5 · power b1–0 |
//! | 05 | channel |
//! | 06 | RSSI byte b7 · fixed mode b6 · relay b5 · LBT b4 · WOR b3–0 |
//!
//! Registers 07/08 hold the module's own encryption key; the driver never writes them
//! (lorabridge frames carry their own optional encryption).

use serde::{Deserialize, Serialize};

/// Configuration mode only speaks 9600 8N1; the driver keeps normal mode at 9600 too (see
/// [`Registers::uart_baud_bits`]) so that one open port serves both modes.
pub const CONFIG_BAUD: u32 = 9600;

/// Write registers, saved across power cycles (the module's flash).
pub const WRITE_SAVED: u8 = 0xC0;
/// Read registers; also the first byte of every successful reply.
pub const READ: u8 = 0xC1;
/// Write registers, volatile (lost at power-off).
pub const WRITE_VOLATILE: u8 = 0xC2;
/// The module's reply to a command it cannot parse.
pub const REFUSED: [u8; 3] = [0xFF, 0xFF, 0xFF];
/// Registers 00..=06: everything the driver sets.
pub const COUNT: u8 = 7;

/// UART rates by the value of register 03 bits 7–5.
const UART_BAUDS: [u32; 8] = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115_200];
/// Register 03 bits 7–5 for 9600 baud.
const UART_9600: u8 = 0b011;

/// The air data rates of register 03 bits 2–0.
///
/// Ebyte documents only the bit rate: which LoRa spreading factor and bandwidth the module's
/// firmware uses for each is not published. [`AirRate::stand_in`] gives the LoRa setting
/// lorabridge uses to *estimate* airtime, nothing more: an E22 hears only other E22s, never
/// a RAK3172, an RNode or an SPI radio set to those numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AirRate {
    /// 0.3 kbps.
    K0_3,
    /// 1.2 kbps.
    K1_2,
    /// 2.4 kbps, the factory default.
    K2_4,
    /// 4.8 kbps.
    K4_8,
    /// 9.6 kbps.
    K9_6,
    /// 19.2 kbps.
    K19_2,
    /// 38.4 kbps.
    K38_4,
    /// 62.5 kbps.
    K62_5,
}

impl AirRate {
    /// Every rate, in register order (bits 000 … 111).
    pub const ALL: [AirRate; 8] = [
        AirRate::K0_3,
        AirRate::K1_2,
        AirRate::K2_4,
        AirRate::K4_8,
        AirRate::K9_6,
        AirRate::K19_2,
        AirRate::K38_4,
        AirRate::K62_5,
    ];

    /// The value of register 03 bits 2–0.
    pub fn bits(self) -> u8 {
        self as u8
    }

    /// The rate for register 03 bits 2–0 (higher bits are ignored).
    pub fn from_bits(bits: u8) -> AirRate {
        Self::ALL[usize::from(bits & 0b111)]
    }

    /// The documented bit rate.
    pub fn bits_per_second(self) -> u32 {
        [300, 1200, 2400, 4800, 9600, 19_200, 38_400, 62_500][self as usize]
    }

    /// How the manual writes it, e.g. "2.4k".
    pub fn label(self) -> &'static str {
        [
            "0.3k", "1.2k", "2.4k", "4.8k", "9.6k", "19.2k", "38.4k", "62.5k",
        ][self as usize]
    }

    /// The LoRa spreading factor and bandwidth (Hz) lorabridge uses as a stand-in for this
    /// rate, to estimate airtime: of the settings SF5..=12 at 125/250/500 kHz and CR 4/5, the
    /// fastest whose raw bit rate `SF·BW/2^SF·4/5` does not exceed the documented rate
    /// (0.3k → SF12/125 kHz = 293 bps; 2.4k → SF11/500 kHz = 2148 bps; 4.8k → SF10/500 kHz =
    /// 3906 bps; 62.5k → SF5/500 kHz = 62500 bps). Never faster than documented, so the
    /// duty-cycle ledger never charges less than the bits alone need. An estimate: Ebyte does
    /// not publish the real settings.
    pub fn stand_in(self) -> (u8, u32) {
        [
            (12, 125_000),
            (12, 500_000),
            (11, 500_000),
            (10, 500_000),
            (6, 125_000),
            (6, 250_000),
            (6, 500_000),
            (5, 500_000),
        ][self as usize]
    }

    /// The rate whose stand-in is this spreading factor and bandwidth.
    pub fn for_stand_in(spreading_factor: u8, bandwidth_hz: u32) -> Option<AirRate> {
        Self::ALL
            .into_iter()
            .find(|r| r.stand_in() == (spreading_factor, bandwidth_hz))
    }
}

/// Sub-packet length, register 04 bits 7–6: data longer than this leaves the sender as
/// several air packets and reaches the receiver's UART in pieces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SubPacket {
    /// 240 bytes, the factory default.
    #[default]
    B240,
    /// 128 bytes.
    B128,
    /// 64 bytes.
    B64,
    /// 32 bytes.
    B32,
}

impl SubPacket {
    /// The value of register 04 bits 7–6.
    pub fn bits(self) -> u8 {
        self as u8
    }

    /// The length for register 04 bits 7–6 (other bits are ignored).
    pub fn from_bits(bits: u8) -> SubPacket {
        [
            SubPacket::B240,
            SubPacket::B128,
            SubPacket::B64,
            SubPacket::B32,
        ][usize::from(bits & 0b11)]
    }

    /// Bytes per air packet.
    pub fn bytes(self) -> usize {
        [240, 128, 64, 32][self as usize]
    }
}

/// Which output stage the module has: register 04 bits 1–0 select one of four levels, whose
/// values depend on the model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PowerClass {
    /// 22 dBm models (E22-xxxT22S, as on the Waveshare HAT): 22/17/13/10 dBm.
    #[default]
    Dbm22,
    /// 30 dBm models (E22-xxxT30S/D): 30/27/24/21 dBm.
    Dbm30,
}

impl PowerClass {
    /// The output power in dBm of register 04 bits 1–0 = 00, 01, 10, 11.
    pub fn levels(self) -> [i8; 4] {
        match self {
            PowerClass::Dbm22 => [22, 17, 13, 10],
            PowerClass::Dbm30 => [30, 27, 24, 21],
        }
    }

    /// The loudest level not above `dbm`: (bits, dBm). `None` when even the lowest level is
    /// louder. Rounding down means a legal power setting stays legal.
    pub fn level_at_most(self, dbm: i8) -> Option<(u8, i8)> {
        (0u8..).zip(self.levels()).find(|&(_, level)| level <= dbm)
    }
}

/// The frequency plans: channel n is `base + n` MHz.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Band {
    /// E22-400 models: 410.125 MHz + n MHz, n = 0..=83.
    Mhz400,
    /// E22-900 models: 850.125 MHz + n MHz, n = 0..=80.
    Mhz900,
}

/// One channel step.
const CHANNEL_STEP_HZ: u32 = 1_000_000;

impl Band {
    /// Both plans.
    pub const ALL: [Band; 2] = [Band::Mhz400, Band::Mhz900];

    /// The frequency of channel 0.
    pub fn base_hz(self) -> u32 {
        match self {
            Band::Mhz400 => 410_125_000,
            Band::Mhz900 => 850_125_000,
        }
    }

    /// The highest channel number.
    pub fn max_channel(self) -> u8 {
        match self {
            Band::Mhz400 => 83,
            Band::Mhz900 => 80,
        }
    }

    /// The frequency of a channel.
    pub fn frequency_hz(self, channel: u8) -> u32 {
        self.base_hz() + u32::from(channel) * CHANNEL_STEP_HZ
    }

    /// The band and channel of a frequency, if it is exactly on a channel.
    pub fn channel_of(frequency_hz: u32) -> Option<(Band, u8)> {
        Self::ALL.into_iter().find_map(|band| {
            let offset = frequency_hz.checked_sub(band.base_hz())?;
            let channel = u8::try_from(offset / CHANNEL_STEP_HZ).ok()?;
            (offset % CHANNEL_STEP_HZ == 0 && channel <= band.max_channel())
                .then_some((band, channel))
        })
    }

    /// The channel frequencies on either side of `frequency_hz`, for error messages.
    pub fn neighbours(frequency_hz: u32) -> Vec<u32> {
        Self::ALL
            .into_iter()
            .flat_map(|band| {
                let max = band.frequency_hz(band.max_channel());
                let below = frequency_hz
                    .clamp(band.base_hz(), max)
                    .saturating_sub(band.base_hz())
                    / CHANNEL_STEP_HZ;
                let below = band.frequency_hz(below as u8);
                [below, below + CHANNEL_STEP_HZ]
                    .into_iter()
                    .filter(move |f| *f <= max)
            })
            .filter(|f| f.abs_diff(frequency_hz) < 5 * CHANNEL_STEP_HZ)
            .collect()
    }
}

/// Registers 00..=06, decoded. Reserved bits are not represented: they are written as zero
/// and ignored on reading, so a module that reads them back differently still compares equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Registers {
    /// ADDH/ADDL; 0xFFFF broadcasts and hears every address.
    pub address: u16,
    /// NETID: modules hear only their own network id.
    pub net_id: u8,
    /// Register 03 bits 7–5: normal mode's UART speed.
    pub uart_baud_bits: u8,
    /// Register 03 bits 4–3: 00 and 11 are 8N1.
    pub parity_bits: u8,
    pub air_rate: AirRate,
    pub sub_packet: SubPacket,
    /// Register 04 bit 5: ambient-noise RSSI readable in normal mode.
    pub noise_rssi: bool,
    /// Register 04 bits 1–0: the power level (see [`PowerClass::levels`]).
    pub power_bits: u8,
    pub channel: u8,
    /// Register 06 bit 7: one RSSI byte follows every received packet on the UART.
    pub rssi_byte: bool,
    /// Register 06 bit 6: fixed mode (first three bytes address the receiver); the driver
    /// always uses transparent mode.
    pub fixed: bool,
    /// Register 06 bit 5: the module repeats what it hears.
    pub relay: bool,
    /// Register 06 bit 4: listen before talk (at most 2 s, then it sends anyway).
    pub lbt: bool,
    /// Register 06 bits 3–0: wake-on-radio settings, unused by the driver.
    pub wor: u8,
}

/// Normal mode at 9600 8N1, transparent, no relay, no WOR, noise RSSI off, broadcast address
/// on NETID 0, factory radio fields: what the driver writes, once it has filled in the radio
/// fields (`Registers { channel, ..TRANSPARENT }`).
pub const TRANSPARENT: Registers = Registers {
    address: 0xFFFF,
    net_id: 0,
    uart_baud_bits: UART_9600,
    parity_bits: 0,
    air_rate: AirRate::K2_4,
    sub_packet: SubPacket::B240,
    noise_rssi: false,
    power_bits: 0,
    channel: 0,
    rssi_byte: false,
    fixed: false,
    relay: false,
    lbt: false,
    wor: 0,
};

impl Registers {
    /// Register values 00..=06.
    pub fn to_bytes(&self) -> [u8; COUNT as usize] {
        let [addh, addl] = self.address.to_be_bytes();
        let bit = |on: bool, n: u8| u8::from(on) << n;
        [
            addh,
            addl,
            self.net_id,
            (self.uart_baud_bits & 0b111) << 5
                | (self.parity_bits & 0b11) << 3
                | self.air_rate.bits(),
            self.sub_packet.bits() << 6 | bit(self.noise_rssi, 5) | (self.power_bits & 0b11),
            self.channel,
            bit(self.rssi_byte, 7)
                | bit(self.fixed, 6)
                | bit(self.relay, 5)
                | bit(self.lbt, 4)
                | (self.wor & 0x0F),
        ]
    }

    /// Decodes register values 00..=06.
    pub fn from_bytes(b: &[u8; COUNT as usize]) -> Self {
        let on = |byte: u8, n: u8| byte >> n & 1 == 1;
        Self {
            address: u16::from_be_bytes([b[0], b[1]]),
            net_id: b[2],
            uart_baud_bits: b[3] >> 5,
            parity_bits: b[3] >> 3 & 0b11,
            air_rate: AirRate::from_bits(b[3]),
            sub_packet: SubPacket::from_bits(b[4] >> 6),
            noise_rssi: on(b[4], 5),
            power_bits: b[4] & 0b11,
            channel: b[5],
            rssi_byte: on(b[6], 7),
            fixed: on(b[6], 6),
            relay: on(b[6], 5),
            lbt: on(b[6], 4),
            wor: b[6] & 0x0F,
        }
    }

    /// Normal mode's UART speed in baud.
    pub fn uart_baud(&self) -> u32 {
        UART_BAUDS[usize::from(self.uart_baud_bits & 0b111)]
    }
}

/// The command that writes `regs` to registers 00..=06, saved or volatile.
pub fn write_command(regs: &Registers, saved: bool) -> Vec<u8> {
    let head = if saved { WRITE_SAVED } else { WRITE_VOLATILE };
    let mut cmd = vec![head, 0x00, COUNT];
    cmd.extend_from_slice(&regs.to_bytes());
    cmd
}

/// The command that reads registers 00..=06.
pub fn read_command() -> [u8; 3] {
    [READ, 0x00, COUNT]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_have_the_documented_bit_positions() {
        let regs = Registers {
            address: 0x1234,
            net_id: 0x56,
            sub_packet: SubPacket::B64,
            power_bits: 0b10,
            channel: 18,
            rssi_byte: true,
            lbt: true,
            ..TRANSPARENT
        };
        // 03: 9600 (011) · 8N1 (00) · 2.4k (010); 04: 64 B (10) · 13 dBm (10);
        // 06: RSSI byte (b7) · LBT (b4).
        assert_eq!(
            regs.to_bytes(),
            [0x12, 0x34, 0x56, 0b0110_0010, 0b1000_0010, 18, 0b1001_0000]
        );
        assert_eq!(Registers::from_bytes(&regs.to_bytes()), regs);
        assert_eq!(regs.uart_baud(), 9600);
        assert_eq!(
            write_command(&regs, false)[..3],
            [WRITE_VOLATILE, 0x00, 0x07]
        );
        assert_eq!(write_command(&regs, true)[0], WRITE_SAVED);
    }

    #[test]
    fn reserved_bits_are_ignored_when_reading() {
        let mut bytes = Registers {
            air_rate: AirRate::K62_5,
            ..TRANSPARENT
        }
        .to_bytes();
        let clean = Registers::from_bytes(&bytes);
        bytes[4] |= 0b0001_1100; // reserved
        assert_eq!(Registers::from_bytes(&bytes), clean);
    }

    #[test]
    fn channels_follow_both_frequency_plans() {
        assert_eq!(Band::channel_of(868_125_000), Some((Band::Mhz900, 18)));
        assert_eq!(Band::channel_of(850_125_000), Some((Band::Mhz900, 0)));
        assert_eq!(Band::channel_of(930_125_000), Some((Band::Mhz900, 80)));
        assert_eq!(Band::channel_of(931_125_000), None);
        assert_eq!(Band::channel_of(433_125_000), Some((Band::Mhz400, 23)));
        assert_eq!(Band::channel_of(869_525_000), None);
        assert_eq!(Band::channel_of(0), None);
        assert_eq!(Band::channel_of(u32::MAX), None);
        assert_eq!(
            Band::neighbours(869_525_000),
            vec![869_125_000, 870_125_000]
        );
        assert_eq!(Band::neighbours(100_000_000), Vec::<u32>::new());
    }

    #[test]
    fn power_rounds_down_to_a_level() {
        assert_eq!(PowerClass::Dbm22.level_at_most(14), Some((0b10, 13)));
        assert_eq!(PowerClass::Dbm22.level_at_most(22), Some((0b00, 22)));
        assert_eq!(PowerClass::Dbm22.level_at_most(30), Some((0b00, 22)));
        assert_eq!(PowerClass::Dbm22.level_at_most(9), None);
        assert_eq!(PowerClass::Dbm30.level_at_most(22), Some((0b11, 21)));
        assert_eq!(PowerClass::Dbm30.level_at_most(20), None);
    }

    #[test]
    fn every_air_rate_has_a_distinct_stand_in() {
        for rate in AirRate::ALL {
            let (sf, bw) = rate.stand_in();
            assert_eq!(AirRate::for_stand_in(sf, bw), Some(rate));
            assert_eq!(AirRate::from_bits(rate.bits()), rate);
        }
        assert_eq!(AirRate::for_stand_in(9, 125_000), None);
    }

    /// The stand-in rule stated on [`AirRate::stand_in`]: of all LoRa settings with SF5..=12
    /// and 125/250/500 kHz at CR 4/5, the fastest not faster than the documented rate.
    #[test]
    fn stand_ins_are_the_fastest_lora_bit_rates_not_above_the_documented_one() {
        let rate =
            |&(sf, bw): &(u8, u32)| f64::from(sf) * f64::from(bw) / f64::from(1u32 << sf) * 0.8;
        for air in AirRate::ALL {
            let want = f64::from(air.bits_per_second());
            let closest = (5..=12u8)
                .flat_map(|sf| [125_000, 250_000, 500_000].map(|bw| (sf, bw)))
                .filter(|c| rate(c) <= want)
                .max_by(|a, b| rate(a).total_cmp(&rate(b)))
                .expect("candidates");
            assert_eq!(air.stand_in(), closest, "{}", air.label());
        }
    }
}
