//! RNode KISS command bytes (from the project's RNode fact sheet).

pub const DATA: u8 = 0x00;
pub const FREQUENCY: u8 = 0x01;
pub const BANDWIDTH: u8 = 0x02;
pub const TXPOWER: u8 = 0x03;
pub const SF: u8 = 0x04;
pub const CR: u8 = 0x05;
pub const RADIO_STATE: u8 = 0x06;
pub const DETECT: u8 = 0x08;
pub const LEAVE: u8 = 0x0A;
pub const READY: u8 = 0x0F;
pub const STAT_RSSI: u8 = 0x23;
pub const STAT_SNR: u8 = 0x24;
pub const PLATFORM: u8 = 0x48;
pub const MCU: u8 = 0x49;
pub const FW_VERSION: u8 = 0x50;
pub const ERROR: u8 = 0x90;

/// Detect request byte.
pub const DETECT_REQ: u8 = 0x73;
/// Detect answer byte.
pub const DETECT_RESP: u8 = 0x46;
/// Radio state values.
pub const RADIO_OFF: u8 = 0x00;
pub const RADIO_ON: u8 = 0x01;
pub const RADIO_QUERY: u8 = 0xFF;
/// Leave value sent on detach.
pub const LEAVE_VALUE: u8 = 0xFF;
/// Received RSSI is reported as `dBm + 157`.
pub const RSSI_OFFSET: i16 = 157;
/// Host-side MTU: the firmware splits anything above 254 bytes into two LoRa frames.
pub const HOST_MTU: usize = 508;
/// Shortest preamble RNode firmware uses, whatever the host asks (it has no preamble command).
pub const MIN_PREAMBLE: u16 = 18;
/// Oldest firmware RNS accepts, and so do we.
pub const MIN_FIRMWARE: (u8, u8) = (1, 52);

/// Human-readable meaning of an error report.
pub fn error_name(code: u8) -> &'static str {
    match code {
        1 => "radio initialisation failed",
        2 => "transmit failed",
        3 => "EEPROM locked",
        4 => "queue full",
        5 => "memory low",
        6 => "modem timeout",
        _ => "unknown error",
    }
}

/// Platform byte to name.
pub fn platform_name(b: u8) -> &'static str {
    match b {
        0x90 => "AVR",
        0x80 => "ESP32",
        0x70 => "nRF52",
        _ => "unknown",
    }
}
