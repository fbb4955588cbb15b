//! Ebyte E22 UART modules (SX1262/SX1268 inside), e.g. the Waveshare SX1262 LoRa HAT.
//!
//! **An E22 only hears other E22s.** Ebyte's firmware offers an "air rate" (0.3k … 62.5k)
//! instead of a spreading factor and bandwidth, and does not publish which LoRa settings, sync
//! word or packet header it uses: a RAK3172, an RNode or an SPI radio cannot be set to hear
//! it, whatever their settings. Mix E22 bridges only with E22 bridges on one channel; let
//! other radios meet them through a bridge that has both.
//!
//! The module is driven through its UART and three pins: M0/M1 select the mode and AUX (if
//! wired) says when it is busy ([`ModePins`]). Exchange: configuration mode (M1 high) →
//! write registers 00..=06 with `C2 00 07 …` (volatile, so re-applying them after every
//! reconnect never wears the flash; `C0` with [`E22Settings::save_to_flash`]) and check that
//! the echo (`C1 00 07 …`) and a fresh read (`C1 00 07`) hold what was written → normal mode
//! (M0 = M1 = low), transparent, where every byte written goes on air. Received data comes
//! back as bare bytes, so frames carry our own marker, length and CRC ([`wire`]), and the
//! module appends an RSSI byte to each packet. Before every mode switch and every send the
//! driver waits for AUX high plus 2 ms; a send is done when AUX, low while the module
//! transmits, is high again. Shutdown puts the module to sleep (M0 = M1 = high).
//!
//! The UART stays at 9600 8N1 in both modes (configuration mode knows no other speed), so the
//! driver never has to reopen the port at another speed. At 9600 baud a full 240 B packet
//! takes 250 ms to cross the UART: faster than the air up to 9.6k, slower above.
//!
//! Modulation mapping: the frequency must be a channel (850.125 MHz + n MHz on 900 MHz models,
//! 410.125 MHz + n MHz on 400 MHz models; in EU868 that is 868.125 MHz, channel 18, since
//! 869.525 MHz is no channel), the power is rounded down to one of the four levels, and the
//! spreading factor and bandwidth must be one of the air rates' stand-ins
//! ([`AirRate::stand_in`]), which exist only so that airtime can be charged. Coding rate and
//! preamble stay at 4/5 and 8, what the estimate assumes; the sync word at 0x12.
//!
//! # Airtime and usable payload per frame (240 B sub-packets)
//!
//! One lorabridge frame is one air packet: the MTU is the sub-packet minus our 5 bytes
//! (240 → **235 B**; 128 → 123; 64 → 59; 32 → 27). "Bits only" is the 240 B packet at the
//! documented bit rate, a lower bound; "estimate" is the stand-in's LoRa time on air
//! (preamble 8, CR 4/5, explicit header, CRC on) for 240 B, from
//! [`lorabridge_hardware::Modulation::time_on_air`]. Both are estimates: they leave out
//! whatever header Ebyte's firmware adds. Frames per hour count whole 240 B packets by the
//! estimate at a 1 % / 10 % duty cycle.
//!
//! | air rate | stand-in | bits only | estimate | frames/h at 1 % / 10 % |
//! |---|---|---|---|---|
//! | 0.3k | SF12 / 125 kHz | 6400.0 ms | 8527.9 ms | 4 / 42 |
//! | 1.2k | SF12 / 500 kHz | 1600.0 ms | 1804.3 ms | 19 / 199 |
//! | 2.4k (default) | SF11 / 500 kHz | 800.0 ms | 984.1 ms | 36 / 365 |
//! | 4.8k | SF10 / 500 kHz | 400.0 ms | 543.2 ms | 66 / 662 |
//! | 9.6k | SF6 / 125 kHz | 200.0 ms | 218.8 ms | 164 / 1645 |
//! | 19.2k | SF6 / 250 kHz | 100.0 ms | 109.4 ms | 329 / 3291 |
//! | 38.4k | SF6 / 500 kHz | 50.0 ms | 54.7 ms | 658 / 6582 |
//! | 62.5k | SF5 / 500 kHz | 30.7 ms | 32.5 ms | 1108 / 11089 |
//!
//! # What it cannot do
//!
//! Talk to anything but E22s (above); set SF, bandwidth, coding rate, preamble or sync word;
//! use frequencies between channels; report SNR (the module reports RSSI only); confirm that
//! a frame left the antenna when AUX is not wired (it then waits the frame's estimated airtime,
//! plus 2 s when listen-before-talk may hold it); fixed-address mode, relay and wake-on-radio.

pub mod cdev;
pub mod pins;
pub mod registers;
pub mod wire;

use std::time::Duration;

use lorabridge_hardware::Modulation;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::driver::DriverConfig;
use crate::driver::dialect::Dialect;
use crate::driver::open_port::{Classified, Decode, OpenPort, PortError, StepError};
use crate::limits::LimitError;
use crate::{ModuleInfo, ModuleKind, RadioError};
pub use pins::{Mode, ModePins, PinError};
pub use registers::{AirRate, Band, PowerClass, Registers, SubPacket};
pub use wire::{E22Decoder, E22Event, Expect};

/// The largest MTU: a 240 B sub-packet minus our framing.
pub const MAX_MTU: usize = 240 - wire::OVERHEAD;

/// The only sync word accepted: the E22 picks its own, which the driver cannot change.
pub const SYNC_WORD: u8 = 0x12;
/// The coding rate the airtime estimate assumes (the module picks its own).
pub const CODING_RATE: u8 = 5;
/// The preamble the airtime estimate assumes (the module picks its own).
pub const PREAMBLE_SYMBOLS: u16 = 8;

/// How often AUX is sampled while the driver waits for it.
const AUX_POLL: Duration = Duration::from_millis(1);
/// Wait after AUX goes high before a mode switch or a send (Ebyte's advice).
const AUX_GUARD: Duration = Duration::from_millis(2);
/// Without AUX: how long a mode switch is given. Our facts give no switch time; this is an
/// assumption, generous against the millisecond-scale switch the AUX advice implies.
const NO_AUX_SWITCH: Duration = Duration::from_millis(100);
/// How long after the last byte has crossed the UART the driver looks for AUX going low (the
/// module starts the packet); a module that was already done by then is not waited for.
const AUX_LOW_GRACE: Duration = Duration::from_millis(50);
/// Longest listen-before-talk hold (the module then sends anyway).
const LBT_MAX: Duration = Duration::from_secs(2);

/// Settings of the E22 that no [`Modulation`] field carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct E22Settings {
    /// Module address; 0xFFFF (the default) broadcasts and hears every address, which is what
    /// a mesh of bridges wants.
    pub address: u16,
    /// Network id: modules hear only their own.
    pub net_id: u8,
    /// Sub-packet length; the MTU is this minus 5 bytes.
    pub sub_packet: SubPacket,
    /// The module's output stage, which decides what the four power levels are.
    pub power_class: PowerClass,
    /// Listen before talk: the module waits (at most 2 s) while the channel is busy.
    pub listen_before_talk: bool,
    /// Write registers with `C0` (kept in flash) instead of `C2` (volatile). Off by default:
    /// the driver writes them at every start and reconnect anyway.
    pub save_to_flash: bool,
}

impl Default for E22Settings {
    fn default() -> Self {
        Self {
            address: 0xFFFF,
            net_id: 0,
            sub_packet: SubPacket::B240,
            power_class: PowerClass::Dbm22,
            listen_before_talk: true,
            save_to_flash: false,
        }
    }
}

impl E22Settings {
    /// Largest frame one send takes.
    pub fn mtu(&self) -> usize {
        self.sub_packet.bytes() - wire::OVERHEAD
    }
}

impl Decode for E22Decoder {
    type Event = E22Event;
    fn push(&mut self, bytes: &[u8], out: &mut Vec<E22Event>) {
        E22Decoder::push(self, bytes, out)
    }
    fn classify(event: E22Event) -> Classified<E22Event> {
        match event {
            E22Event::Frame { payload, rssi } => Classified::Frame {
                payload,
                rssi,
                snr: None,
            },
            E22Event::Noise => Classified::Noise,
            other => Classified::Event(other),
        }
    }
}

/// The E22's discrete settings, beyond the ranges in [`crate::limits`]: a channel frequency,
/// an air rate's stand-in, and the coding rate and preamble its airtime estimate assumes.
pub fn check_modulation(m: &Modulation) -> Result<(), LimitError> {
    let error = |field, reason| Err(LimitError { field, reason });
    if Band::channel_of(m.frequency_hz).is_none() {
        let near: Vec<String> = Band::neighbours(m.frequency_hz)
            .iter()
            .map(u32::to_string)
            .collect();
        let near = if near.is_empty() {
            String::new()
        } else {
            format!("; nearest: {}", near.join(", "))
        };
        return error(
            "frequency_hz",
            format!(
                "{} is no E22 channel: channels are 410.125 MHz + n MHz (400 MHz models) or \
                 850.125 MHz + n MHz (900 MHz models){near}",
                m.frequency_hz
            ),
        );
    }
    if AirRate::for_stand_in(m.spreading_factor, m.bandwidth_hz).is_none() {
        let pairs: Vec<String> = AirRate::ALL
            .iter()
            .map(|r| {
                let (sf, bw) = r.stand_in();
                format!("SF{sf}/{bw} = {}", r.label())
            })
            .collect();
        return error(
            "spreading_factor",
            format!(
                "SF{} at {} Hz is no E22 air rate. The E22 has no SF or bandwidth, only an air \
                 rate, and hears only other E22 modules; lorabridge picks the air rate from \
                 these stand-ins (used to estimate airtime): {}",
                m.spreading_factor,
                m.bandwidth_hz,
                pairs.join(", ")
            ),
        );
    }
    if m.coding_rate != CODING_RATE {
        return error(
            "coding_rate",
            format!(
                "{}: the E22 picks its own coding rate; keep {CODING_RATE}, which its airtime \
                 estimate assumes",
                m.coding_rate
            ),
        );
    }
    if m.preamble_symbols != PREAMBLE_SYMBOLS {
        return error(
            "preamble_symbols",
            format!(
                "{}: the E22 picks its own preamble; keep {PREAMBLE_SYMBOLS}, which its airtime \
                 estimate assumes",
                m.preamble_symbols
            ),
        );
    }
    Ok(())
}

/// The E22 dialect: the module's pins, the caller's settings, and what the driver knows of
/// the module's state.
pub(crate) struct E22 {
    pins: Box<dyn ModePins>,
    settings: E22Settings,
    /// The mode the pins select; `None` after (re)connecting, when it is not known.
    mode: Option<Mode>,
    /// The modulation last applied, for airtime estimates when AUX is not wired.
    modulation: Option<Modulation>,
}

impl E22 {
    pub(crate) fn new(pins: Box<dyn ModePins>, settings: E22Settings) -> Self {
        Self {
            pins,
            settings,
            mode: None,
            modulation: None,
        }
    }

    /// The registers for `m` with these settings.
    fn registers_for(&self, m: &Modulation) -> Result<Registers, RadioError> {
        let unsupported = |reason: String| RadioError::Unsupported {
            module: ModuleKind::E22.module_name(),
            reason,
        };
        check_modulation(m).map_err(|e| unsupported(e.to_string()))?;
        let (_, channel) = Band::channel_of(m.frequency_hz).expect("checked");
        let air_rate = AirRate::for_stand_in(m.spreading_factor, m.bandwidth_hz).expect("checked");
        let class = self.settings.power_class;
        let (power_bits, _) = class.level_at_most(m.tx_power_dbm).ok_or_else(|| {
            unsupported(format!(
                "tx_power_dbm {} is below the lowest level of this module ({:?} dBm)",
                m.tx_power_dbm,
                class.levels()
            ))
        })?;
        let s = &self.settings;
        Ok(Registers {
            address: s.address,
            net_id: s.net_id,
            air_rate,
            sub_packet: s.sub_packet,
            power_bits,
            channel,
            rssi_byte: true,
            lbt: s.listen_before_talk,
            ..registers::TRANSPARENT
        })
    }

    fn aux(&mut self) -> Result<Option<bool>, StepError> {
        self.pins.aux_high().map_err(gpio)
    }

    /// Waits until AUX reads `high`, reading the port meanwhile so that received frames keep
    /// flowing. `Ok(false)` at once when AUX is not wired.
    async fn wait_aux(
        &mut self,
        link: &mut OpenPort<E22Decoder>,
        high: bool,
        timeout: Duration,
        what: &str,
    ) -> Result<bool, StepError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.aux()? {
                None => return Ok(false),
                Some(level) if level == high => return Ok(true),
                Some(_) => {}
            }
            if Instant::now() >= deadline {
                return Err(StepError::port_after(PortError::Timeout, what, timeout));
            }
            pump_for(link, AUX_POLL).await?;
        }
    }

    /// AUX high plus the 2 ms guard: the module is idle and may be switched or sent to.
    async fn settle(
        &mut self,
        link: &mut OpenPort<E22Decoder>,
        timeout: Duration,
        what: &str,
    ) -> Result<(), StepError> {
        self.wait_aux(link, true, timeout, what).await?;
        pump_for(link, AUX_GUARD).await
    }

    /// Switches to `mode` (nothing to do when the module is in it already).
    async fn enter(
        &mut self,
        link: &mut OpenPort<E22Decoder>,
        mode: Mode,
        cfg: &DriverConfig,
    ) -> Result<(), StepError> {
        if self.mode == Some(mode) {
            return Ok(());
        }
        // The module may still be sending: give it the send timeout.
        self.settle(link, cfg.tx_timeout, "AUX high before a mode switch")
            .await?;
        self.pins.set_mode(mode).map_err(gpio)?;
        self.mode = Some(mode);
        link.decoder_mut().expect(match mode {
            Mode::Config => Expect::Replies,
            _ => Expect::Frames { rssi_byte: true },
        });
        link.clear_events();
        // AUX drops while the module switches; give it a moment to, then wait for high.
        pump_for(link, AUX_GUARD).await?;
        let what = format!("AUX high after switching to {mode:?} mode");
        if !self.wait_aux(link, true, cfg.reset_timeout, &what).await? {
            pump_for(link, NO_AUX_SWITCH).await?;
        }
        pump_for(link, AUX_GUARD).await
    }

    /// Sends a configuration command and returns the register reply.
    async fn exchange(
        &mut self,
        link: &mut OpenPort<E22Decoder>,
        command: &[u8],
        cfg: &DriverConfig,
    ) -> Result<(u8, Vec<u8>), StepError> {
        let name = format!("{command:02X?}");
        link.clear_events();
        link.write(command, cfg.command_timeout)
            .await
            .map_err(|e| StepError::port(e, &name))?;
        let reply = link
            .wait_for(Instant::now() + cfg.command_timeout, |ev| match ev {
                E22Event::Registers { address, data } => Some(Ok((address, data))),
                E22Event::Refused => Some(Err(())),
                _ => None,
            })
            .await
            .map_err(|e| StepError::port(e, &name))?;
        reply.map_err(|()| {
            StepError::Radio(RadioError::Rejected {
                command: name,
                reply: "FF FF FF (command not understood)".into(),
            })
        })
    }

    /// Reads registers 00..=06.
    async fn read(
        &mut self,
        link: &mut OpenPort<E22Decoder>,
        cfg: &DriverConfig,
    ) -> Result<Registers, StepError> {
        let reply = self.exchange(link, &registers::read_command(), cfg).await?;
        registers_in(reply, "reading registers")
    }
}

fn gpio(e: PinError) -> StepError {
    StepError::Radio(RadioError::Gpio {
        line: e.line,
        reason: e.reason,
    })
}

/// Reads the port for `d`, delivering what arrives; fails only if the port fails.
async fn pump_for(link: &mut OpenPort<E22Decoder>, d: Duration) -> Result<(), StepError> {
    let deadline = Instant::now() + d;
    loop {
        match tokio::time::timeout_at(deadline, link.pump()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(StepError::port(e, "reading the port")),
            Err(_) => return Ok(()),
        }
    }
}

/// The registers in a reply for 00..=06.
fn registers_in((address, data): (u8, Vec<u8>), what: &str) -> Result<Registers, StepError> {
    let bytes: Option<[u8; registers::COUNT as usize]> = data.as_slice().try_into().ok();
    match (address, bytes) {
        (0, Some(bytes)) => Ok(Registers::from_bytes(&bytes)),
        _ => Err(StepError::Radio(RadioError::Protocol(format!(
            "E22 answered {what} with registers from {address:#04x}: {data:02X?}"
        )))),
    }
}

/// Checks that the module holds what was written.
fn verify(want: &Registers, got: Registers, what: &str) -> Result<(), StepError> {
    if got == *want {
        return Ok(());
    }
    Err(StepError::Radio(RadioError::Protocol(format!(
        "E22 registers after {what} are {:02X?}, but the driver wrote {:02X?}",
        got.to_bytes(),
        want.to_bytes()
    ))))
}

/// How long `n` bytes take to cross the UART at 9600 8N1 (10 bits a byte).
fn uart_time(n: usize) -> Duration {
    Duration::from_micros(n as u64 * 10 * 1_000_000 / u64::from(registers::CONFIG_BAUD))
}

impl Dialect for E22 {
    type Decoder = E22Decoder;
    const KIND: ModuleKind = ModuleKind::E22;

    fn mtu(&self) -> usize {
        self.settings.mtu()
    }

    async fn detect(
        &mut self,
        link: &mut OpenPort<E22Decoder>,
        cfg: &DriverConfig,
    ) -> Result<(), StepError> {
        self.mode = None;
        self.enter(link, Mode::Config, cfg).await?;
        self.read(link, cfg).await.map(drop)
    }

    async fn configure(
        &mut self,
        link: &mut OpenPort<E22Decoder>,
        m: &Modulation,
        cfg: &DriverConfig,
    ) -> Result<(), StepError> {
        let want = self.registers_for(m).map_err(StepError::Radio)?;
        self.enter(link, Mode::Config, cfg).await?;
        let command = registers::write_command(&want, self.settings.save_to_flash);
        let echo = self.exchange(link, &command, cfg).await?;
        verify(&want, registers_in(echo, "a register write")?, "writing")?;
        verify(&want, self.read(link, cfg).await?, "reading them back")?;
        self.modulation = Some(*m);
        self.enter(link, Mode::Normal, cfg).await
    }

    async fn transmit(
        &mut self,
        link: &mut OpenPort<E22Decoder>,
        frame: &[u8],
        cfg: &DriverConfig,
    ) -> Result<(), StepError> {
        let wire = wire::encode(frame).ok_or(StepError::Radio(RadioError::FrameTooLarge {
            size: frame.len(),
            mtu: self.mtu(),
        }))?;
        self.enter(link, Mode::Normal, cfg).await?;
        self.settle(link, cfg.tx_timeout, "AUX high before sending")
            .await?;
        link.write(&wire, cfg.command_timeout)
            .await
            .map_err(|e| StepError::port(e, "data"))?;
        let on_uart = uart_time(wire.len());
        // AUX is low from the first byte until the packet has left; seeing it low first
        // means the high that follows is the end of this packet, not the idle before it.
        let low = self
            .wait_aux(link, false, on_uart + AUX_LOW_GRACE, "AUX low")
            .await;
        match low {
            Ok(true) => {
                self.settle(link, cfg.tx_timeout, "AUX high after sending")
                    .await
            }
            // A short packet may have come and gone between two samples.
            Err(StepError::Port(PortError::Timeout, ..)) => Ok(()),
            Err(e) => Err(e),
            Ok(false) => {
                let airtime = self
                    .modulation
                    .map_or(Duration::ZERO, |m| m.time_on_air(wire.len()) * 3 / 2);
                let lbt = if self.settings.listen_before_talk {
                    LBT_MAX
                } else {
                    Duration::ZERO
                };
                pump_for(link, on_uart + airtime + lbt).await
            }
        }
    }

    async fn close(
        &mut self,
        link: &mut OpenPort<E22Decoder>,
        cfg: &DriverConfig,
    ) -> Result<(), StepError> {
        self.enter(link, Mode::Sleep, cfg).await
    }

    async fn probe(
        &mut self,
        link: &mut OpenPort<E22Decoder>,
        cfg: &DriverConfig,
    ) -> Result<ModuleInfo, StepError> {
        self.detect(link, cfg).await?;
        let regs = self.read(link, cfg).await?;
        self.enter(link, Mode::Normal, cfg).await?;
        let mut info = ModuleInfo::new(ModuleKind::E22, self.mtu());
        describe(&regs, &mut info);
        Ok(info)
    }
}

/// Names the register fields for the probe report.
fn describe(r: &Registers, info: &mut ModuleInfo) {
    let (sf, bw) = r.air_rate.stand_in();
    let levels = |c: PowerClass| c.levels()[usize::from(r.power_bits)];
    let fields = [
        ("registers", format!("{:02X?}", r.to_bytes())),
        ("address", format!("{:#06x}", r.address)),
        ("net_id", r.net_id.to_string()),
        (
            "air_rate",
            format!(
                "{} (airtime estimated as SF{sf}/{bw} Hz)",
                r.air_rate.label()
            ),
        ),
        (
            "channel",
            format!(
                "{} ({} Hz on 900 MHz models, {} Hz on 400 MHz models)",
                r.channel,
                Band::Mhz900.frequency_hz(r.channel),
                Band::Mhz400.frequency_hz(r.channel)
            ),
        ),
        (
            "power",
            format!(
                "level {} ({} dBm on 22 dBm models, {} dBm on 30 dBm models)",
                r.power_bits,
                levels(PowerClass::Dbm22),
                levels(PowerClass::Dbm30)
            ),
        ),
        ("sub_packet", format!("{} bytes", r.sub_packet.bytes())),
        (
            "uart",
            format!("{} baud, parity bits {:02b}", r.uart_baud(), r.parity_bits),
        ),
        ("rssi_byte", r.rssi_byte.to_string()),
        ("listen_before_talk", r.lbt.to_string()),
        ("fixed_mode", r.fixed.to_string()),
        ("relay", r.relay.to_string()),
    ];
    for (name, value) in fields {
        info.settings.insert(name.into(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eu() -> Modulation {
        Modulation {
            frequency_hz: 868_125_000,
            spreading_factor: 11,
            bandwidth_hz: 500_000,
            tx_power_dbm: 14,
            ..Modulation::eu868_default()
        }
    }

    struct NoPins;
    impl ModePins for NoPins {
        fn set_mode(&mut self, _: Mode) -> Result<(), PinError> {
            Ok(())
        }
        fn aux_high(&mut self) -> Result<Option<bool>, PinError> {
            Ok(None)
        }
    }

    #[test]
    fn a_modulation_becomes_registers() {
        let e22 = E22::new(Box::new(NoPins), E22Settings::default());
        let regs = e22.registers_for(&eu()).expect("an E22 setting");
        // FFFF, NETID 0, 9600 8N1 2.4k, 240 B at 13 dBm (14 rounded down), channel 18,
        // RSSI byte and LBT.
        assert_eq!(
            regs.to_bytes(),
            [0xFF, 0xFF, 0x00, 0x62, 0b0000_0010, 18, 0b1001_0000]
        );
        let loud = E22::new(
            Box::new(NoPins),
            E22Settings {
                power_class: PowerClass::Dbm30,
                ..E22Settings::default()
            },
        );
        assert!(matches!(
            loud.registers_for(&eu()),
            Err(RadioError::Unsupported { .. })
        ));
    }

    #[test]
    fn the_check_names_the_field_and_the_way_out() {
        assert_eq!(check_modulation(&eu()), Ok(()));
        let e = check_modulation(&Modulation::eu868_default()).expect_err("869.525 MHz");
        assert_eq!(e.field, "frequency_hz");
        assert!(e.reason.contains("nearest: 869125000, 870125000"), "{e}");
        let e = check_modulation(&Modulation {
            spreading_factor: 9,
            bandwidth_hz: 125_000,
            ..eu()
        })
        .expect_err("SF9/125 kHz");
        assert_eq!(e.field, "spreading_factor");
        assert!(e.reason.contains("hears only other E22 modules"), "{e}");
        assert!(e.reason.contains("SF11/500000 = 2.4k"), "{e}");
        for (m, field) in [
            (
                Modulation {
                    coding_rate: 8,
                    ..eu()
                },
                "coding_rate",
            ),
            (
                Modulation {
                    preamble_symbols: 16,
                    ..eu()
                },
                "preamble_symbols",
            ),
        ] {
            assert_eq!(check_modulation(&m).expect_err(field).field, field);
        }
    }

    #[test]
    fn uart_time_is_ten_bits_a_byte_at_9600() {
        assert_eq!(uart_time(240), Duration::from_micros(250_000));
        assert_eq!(uart_time(0), Duration::ZERO);
    }

    /// The numbers in the module documentation's airtime table.
    #[test]
    fn the_airtime_table_in_the_docs_is_computed() {
        let mut rows = Vec::new();
        for rate in AirRate::ALL {
            let (sf, bw) = rate.stand_in();
            let m = Modulation {
                spreading_factor: sf,
                bandwidth_hz: bw,
                ..eu()
            };
            let estimate = m.time_on_air(240);
            let bits_only = 240.0 * 8.0 / f64::from(rate.bits_per_second()) * 1000.0;
            let per_hour = |share: f64| (3600.0 * share / estimate.as_secs_f64()).floor();
            rows.push(format!(
                "{} | SF{sf} / {} kHz | {bits_only:.1} ms | {:.1} ms | {} / {}",
                rate.label(),
                bw / 1000,
                estimate.as_secs_f64() * 1000.0,
                per_hour(0.01),
                per_hour(0.10),
            ));
        }
        let doc = include_str!("mod.rs");
        let missing: Vec<String> = rows
            .iter()
            .map(|row| format!("//! | {} |", row.replacen("2.4k |", "2.4k (default) |", 1)))
            .filter(|row| !doc.contains(row.as_str()))
            .collect();
        assert!(missing.is_empty(), "rows missing:\n{}", missing.join("\n"));
        assert_eq!(E22Settings::default().mtu(), MAX_MTU);
        assert_eq!(MAX_MTU, 235);
    }
}
