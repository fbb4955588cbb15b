//! An Ebyte E22-900T22S (the Waveshare SX1262 LoRa HAT's module), as the E22 fact sheet
//! describes it: modes from the M0/M1 pins, AUX low while busy, nine registers read and
//! written in configuration mode, transparent data split into sub-packets, an RSSI byte after
//! each received packet when register 06 bit 7 is set.
//!
//! Written from the documented behaviour; where the documentation is silent the emulator
//! makes a stated assumption:
//!
//! - timings: [`BOOT_TIME`] after power-on and [`SWITCH_TIME`] after a mode change with AUX
//!   low; a packet starts when the sub-packet is full or the UART has been quiet for
//!   [`UART_GAP`];
//! - on air, each packet is `NETID ADDH ADDL` plus the data, sent with the air rate's stand-in
//!   LoRa settings ([`lorabridge_radio::e22::AirRate::stand_in`]) but the sync word
//!   [`AIR_SYNC_WORD`], which no other emulator uses: Ebyte's real air format is not
//!   published, and what matters is that E22s hear only E22s. A receiver takes a packet with
//!   its own NETID whose address matches its own, or where either address is 0xFFFF;
//! - factory registers: the documented defaults (9600 8N1, 2.4k, 240 B, 22 dBm), channel 18
//!   (868.125 MHz), address 0, NETID 0, RSSI byte off;
//! - listen-before-talk is stored but not modelled (the medium cannot tell "channel busy"),
//!   and wake-on-radio behaves like sleep.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lorabridge_hardware::Modulation;
use lorabridge_radio::e22::{AirRate, Mode, ModePins, PinError};
use tokio::sync::Notify;

use super::{Effects, Personality, Reception};

/// From power-on until AUX goes high (self-check).
pub const BOOT_TIME: Duration = Duration::from_millis(30);
/// From a mode change until AUX goes high.
pub const SWITCH_TIME: Duration = Duration::from_millis(10);
/// UART silence after which buffered data goes on air (three byte times at 9600 baud).
pub const UART_GAP: Duration = Duration::from_millis(4);
/// Data the module buffers for the air; more is dropped.
pub const TX_BUFFER: usize = 1000;
/// The sync word of the emulated air format (see the module documentation).
pub const AIR_SYNC_WORD: u8 = 0xE2;

const REGISTERS: usize = 9;
const FACTORY: [u8; REGISTERS] = [0x00, 0x00, 0x00, 0x62, 0x00, 18, 0x00, 0x00, 0x00];
/// Channel 0 of a 900 MHz model.
const BASE_HZ: u32 = 850_125_000;
/// Power of register 04 bits 1–0 on a 22 dBm model.
const POWER_DBM: [i8; 4] = [22, 17, 13, 10];
/// The longest configuration command: head, address, length, nine values.
const MAX_COMMAND: usize = 3 + REGISTERS;

/// What the pins, the module and the test share.
#[derive(Debug)]
struct Bank {
    m0: AtomicBool,
    m1: AtomicBool,
    /// The level the module drives on AUX.
    aux: AtomicBool,
    /// Fault: AUX held low whatever the module does.
    hold_low: AtomicBool,
    /// Host writes that arrived while AUX was low: a driver breaking the AUX rule.
    busy_writes: AtomicU32,
    /// Fault: writes to this register are ignored (`u32::MAX`: none).
    frozen: AtomicU32,
    /// The working and the saved registers, as the module holds them.
    registers: Mutex<([u8; REGISTERS], [u8; REGISTERS])>,
}

/// The emulated module's M0, M1 and AUX pins: hand one clone to the driver as its
/// [`ModePins`], keep another to inject faults and look at the module.
#[derive(Clone, Debug)]
pub struct E22Pins {
    bank: Arc<Bank>,
    /// Wakes the emulator when M0/M1 change.
    changed: Arc<Notify>,
    /// Whether the driver side sees AUX at all.
    aux_wired: bool,
}

impl E22Pins {
    pub(crate) fn new() -> Self {
        Self {
            bank: Arc::new(Bank {
                // The pins float low before a driver sets them: normal mode.
                m0: AtomicBool::new(false),
                m1: AtomicBool::new(false),
                aux: AtomicBool::new(false),
                hold_low: AtomicBool::new(false),
                busy_writes: AtomicU32::new(0),
                frozen: AtomicU32::new(u32::MAX),
                registers: Mutex::new((FACTORY, FACTORY)),
            }),
            changed: Arc::new(Notify::new()),
            aux_wired: true,
        }
    }

    /// The same pins for a host that has not wired AUX (the driver then reads no AUX).
    pub fn without_aux(&self) -> Self {
        Self {
            aux_wired: false,
            ..self.clone()
        }
    }

    /// Holds AUX low (a module stuck busy) or releases it.
    pub fn hold_aux_low(&self, on: bool) {
        self.bank.hold_low.store(on, Ordering::SeqCst);
    }

    /// Makes writes to register `reg` have no effect, as a module that does not take a value.
    pub fn freeze_register(&self, reg: u8) {
        self.bank.frozen.store(u32::from(reg), Ordering::SeqCst);
    }

    /// Host writes that arrived while AUX was low (a driver should make none).
    pub fn busy_writes(&self) -> u32 {
        self.bank.busy_writes.load(Ordering::SeqCst)
    }

    /// Registers 00..=06 as the module works with them now.
    pub fn registers(&self) -> [u8; 7] {
        let regs = lock(&self.bank.registers).0;
        regs[..7].try_into().expect("seven")
    }

    /// Registers 00..=06 as saved in the module's flash (what a power cycle brings back).
    pub fn saved_registers(&self) -> [u8; 7] {
        let saved = lock(&self.bank.registers).1;
        saved[..7].try_into().expect("seven")
    }

    /// The mode the pins select.
    pub fn mode(&self) -> Mode {
        Mode::from_pins(
            self.bank.m0.load(Ordering::SeqCst),
            self.bank.m1.load(Ordering::SeqCst),
        )
    }

    /// What the emulator's shell waits on for pin changes.
    pub(crate) fn changes(&self) -> Arc<Notify> {
        self.changed.clone()
    }
}

impl ModePins for E22Pins {
    fn set_mode(&mut self, mode: Mode) -> Result<(), PinError> {
        if self.mode() != mode {
            // The module answers a mode change at once: AUX drops until it has switched.
            self.bank.aux.store(false, Ordering::SeqCst);
            self.bank.m0.store(mode.m0(), Ordering::SeqCst);
            self.bank.m1.store(mode.m1(), Ordering::SeqCst);
            self.changed.notify_one();
        }
        Ok(())
    }

    fn aux_high(&mut self) -> Result<Option<bool>, PinError> {
        if !self.aux_wired {
            return Ok(None);
        }
        let b = &self.bank;
        Ok(Some(
            b.aux.load(Ordering::SeqCst) && !b.hold_low.load(Ordering::SeqCst),
        ))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain data, replaced whole: a panic elsewhere cannot leave it half-written.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the one timer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    Boot,
    Switch,
    Flush,
}

pub(crate) struct E22Module {
    bank: Arc<Bank>,
    powered: bool,
    mode: Mode,
    /// The timer armed, if any.
    pending: Option<Pending>,
    /// A configuration command being received (bounded by [`MAX_COMMAND`]).
    command: Vec<u8>,
    /// Normal-mode data waiting for the air (bounded by [`TX_BUFFER`]).
    tx: VecDeque<u8>,
    transmitting: bool,
}

impl E22Module {
    pub(crate) fn new(pins: &E22Pins) -> Self {
        Self {
            bank: pins.bank.clone(),
            powered: false,
            mode: Mode::Normal,
            pending: None,
            command: Vec::new(),
            tx: VecDeque::new(),
            transmitting: false,
        }
    }

    fn regs(&self) -> [u8; REGISTERS] {
        lock(&self.bank.registers).0
    }

    fn pin_mode(&self) -> Mode {
        Mode::from_pins(
            self.bank.m0.load(Ordering::SeqCst),
            self.bank.m1.load(Ordering::SeqCst),
        )
    }

    /// Busy: booting, switching (or about to), or data not yet sent.
    fn busy(&self) -> bool {
        !self.powered
            || matches!(self.pending, Some(Pending::Boot | Pending::Switch))
            || self.pin_mode() != self.mode
            || self.transmitting
            || !self.tx.is_empty()
    }

    fn update_aux(&self) {
        self.bank.aux.store(!self.busy(), Ordering::SeqCst);
    }

    fn arm(&mut self, what: Pending, after: Duration, fx: &mut Effects) {
        self.pending = Some(what);
        fx.timer = Some(Some(after));
    }

    /// The LoRa stand-in of the current registers.
    fn air_modulation(&self) -> Modulation {
        let r = self.regs();
        let (sf, bw) = AirRate::ALL[usize::from(r[3] & 0b111)].stand_in();
        Modulation {
            frequency_hz: BASE_HZ + u32::from(r[5]) * 1_000_000,
            spreading_factor: sf,
            bandwidth_hz: bw,
            coding_rate: 5,
            preamble_symbols: 8,
            tx_power_dbm: POWER_DBM[usize::from(r[4] & 0b11)],
            sync_word: AIR_SYNC_WORD,
        }
    }

    fn sub_packet(&self) -> usize {
        [240, 128, 64, 32][usize::from(self.regs()[4] >> 6)]
    }

    /// Runs configuration commands as far as they have arrived.
    fn configure(&mut self, fx: &mut Effects) {
        loop {
            let c = &self.command;
            let Some(&head) = c.first() else { return };
            if !matches!(head, 0xC0..=0xC2) {
                return self.refuse(fx);
            }
            let (Some(&start), Some(&len)) = (c.get(1), c.get(2)) else {
                return;
            };
            let (start, len) = (usize::from(start), usize::from(len));
            if len == 0 || start + len > REGISTERS {
                return self.refuse(fx);
            }
            let write = head != 0xC1;
            if write && c.len() < 3 + len {
                return;
            }
            let values: Vec<u8> = c[3..3 + if write { len } else { 0 }].to_vec();
            let used = 3 + values.len();
            let frozen = self.bank.frozen.load(Ordering::SeqCst);
            let mut regs = lock(&self.bank.registers);
            for (i, v) in (start..).zip(values) {
                if i as u32 != frozen {
                    regs.0[i] = v;
                }
            }
            if head == 0xC0 {
                regs.1 = regs.0;
            }
            // The reply shows what the module holds; the key (07, 08) reads as zero.
            fx.out.extend_from_slice(&[0xC1, start as u8, len as u8]);
            fx.out
                .extend((start..start + len).map(|i| if i >= 7 { 0 } else { regs.0[i] }));
            drop(regs);
            self.command.drain(..used);
        }
    }

    fn refuse(&mut self, fx: &mut Effects) {
        self.command.clear();
        fx.out.extend_from_slice(&[0xFF, 0xFF, 0xFF]);
    }

    /// Puts the next sub-packet on air.
    fn start_packet(&mut self, fx: &mut Effects) {
        if self.transmitting || self.tx.is_empty() || self.mode != Mode::Normal {
            return;
        }
        let r = self.regs();
        let n = self.tx.len().min(self.sub_packet());
        let mut packet = vec![r[2], r[0], r[1]];
        packet.extend(self.tx.drain(..n));
        self.transmitting = true;
        fx.transmit = Some((self.air_modulation(), packet));
    }
}

impl Personality for E22Module {
    fn host(&mut self, bytes: &[u8], fx: &mut Effects) {
        if !self.powered {
            return;
        }
        // Data arriving while a burst is being collected is part of that burst; anything
        // else arriving while AUX is low breaks the AUX rule.
        let collecting = self.pending == Some(Pending::Flush) && !self.transmitting;
        if (self.busy() || self.bank.hold_low.load(Ordering::SeqCst)) && !collecting {
            self.bank.busy_writes.fetch_add(1, Ordering::SeqCst);
        }
        match self.mode {
            Mode::Config => {
                for &b in bytes {
                    self.command.push(b);
                    self.configure(fx);
                    if self.command.len() >= MAX_COMMAND {
                        self.refuse(fx);
                    }
                }
            }
            Mode::Normal => {
                let room = TX_BUFFER - self.tx.len();
                self.tx.extend(bytes.iter().take(room));
                if self.tx.len() >= self.sub_packet() {
                    self.start_packet(fx);
                } else if !self.transmitting {
                    self.arm(Pending::Flush, UART_GAP, fx);
                }
            }
            Mode::WakeOnRadio | Mode::Sleep => {}
        }
        self.update_aux();
    }

    fn air(&mut self, rx: &Reception, fx: &mut Effects) {
        if !self.powered || self.mode != Mode::Normal || self.transmitting {
            return;
        }
        let [net_id, addh, addl, data @ ..] = rx.payload.as_slice() else {
            return;
        };
        let r = self.regs();
        let from = u16::from_be_bytes([*addh, *addl]);
        let mine = u16::from_be_bytes([r[0], r[1]]);
        if *net_id != r[2] || !(from == mine || from == 0xFFFF || mine == 0xFFFF) {
            return;
        }
        fx.out.extend_from_slice(data);
        if r[6] & 0x80 != 0 {
            fx.out.push((rx.rssi_dbm + 256).clamp(0, 255) as u8);
        }
    }

    fn tx_done(&mut self, fx: &mut Effects) {
        self.transmitting = false;
        self.start_packet(fx);
        self.update_aux();
    }

    fn power_on(&mut self, fx: &mut Effects) {
        {
            let mut regs = lock(&self.bank.registers);
            regs.0 = regs.1;
        }
        self.powered = true;
        self.mode = self.pin_mode();
        self.command.clear();
        self.tx.clear();
        self.transmitting = false;
        self.arm(Pending::Boot, BOOT_TIME, fx);
        self.update_aux();
    }

    fn power_off(&mut self) {
        self.powered = false;
        self.pending = None;
        self.transmitting = false;
        self.tx.clear();
        self.update_aux();
    }

    fn pins_changed(&mut self, fx: &mut Effects) {
        let mode = self.pin_mode();
        if !self.powered || mode == self.mode {
            return;
        }
        // Whatever was half-done in the old mode is abandoned.
        self.mode = mode;
        self.command.clear();
        self.tx.clear();
        self.arm(Pending::Switch, SWITCH_TIME, fx);
        self.update_aux();
    }

    fn timer(&mut self, fx: &mut Effects) {
        if self.pending.take() == Some(Pending::Flush) {
            self.start_packet(fx);
        }
        self.update_aux();
    }

    fn listening(&self) -> Option<Modulation> {
        (self.powered && self.mode == Mode::Normal && !self.transmitting)
            .then(|| self.air_modulation())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Faults;
    use super::super::test_support::step;
    use super::*;

    fn powered() -> (E22Module, E22Pins, Faults) {
        let pins = E22Pins::new();
        let mut m = E22Module::new(&pins);
        let f = Faults::default();
        step(&f, |fx| m.power_on(fx));
        step(&f, |fx| m.timer(fx));
        (m, pins, f)
    }

    fn switch(m: &mut E22Module, pins: &mut E22Pins, f: &Faults, mode: Mode) {
        pins.set_mode(mode).expect("pins");
        assert_eq!(pins.aux_high(), Ok(Some(false)), "busy while switching");
        step(f, |fx| m.pins_changed(fx));
        step(f, |fx| m.timer(fx));
        assert_eq!(pins.aux_high(), Ok(Some(true)));
    }

    #[test]
    fn configuration_mode_reads_and_writes_registers() {
        let (mut m, mut pins, f) = powered();
        switch(&mut m, &mut pins, &f, Mode::Config);
        let (out, ..) = step(&f, |fx| m.host(&[0xC1, 0x00, 0x07], fx));
        assert_eq!(out, [0xC1, 0x00, 0x07, 0, 0, 0, 0x62, 0x00, 18, 0x00]);
        // A volatile write in two pieces, echoed with what the module holds.
        step(&f, |fx| m.host(&[0xC2, 0x05, 0x02, 0x20], fx));
        let (out, ..) = step(&f, |fx| m.host(&[0x80], fx));
        assert_eq!(out, [0xC1, 0x05, 0x02, 0x20, 0x80]);
        assert_eq!(pins.registers()[5..], [0x20, 0x80]);
        assert_eq!(pins.saved_registers()[5..], [18, 0x00]);
        // Nonsense is refused.
        let (out, ..) = step(&f, |fx| m.host(&[0xC1, 0x08, 0x05], fx));
        assert_eq!(out, [0xFF, 0xFF, 0xFF]);
        let (out, ..) = step(&f, |fx| m.host(&[0x42], fx));
        assert_eq!(out, [0xFF, 0xFF, 0xFF]);
        // A power cycle brings back the saved values.
        m.power_off();
        assert_eq!(pins.aux_high(), Ok(Some(false)));
        step(&f, |fx| m.power_on(fx));
        assert_eq!(pins.registers()[5..], [18, 0x00]);
        assert_eq!(pins.busy_writes(), 0);
    }

    #[test]
    fn long_data_leaves_as_sub_packets_and_arrives_with_rssi() {
        let (mut m, mut pins, f) = powered();
        let data: Vec<u8> = (0..300u16).map(|i| i as u8).collect();
        let (_, first, _) = step(&f, |fx| m.host(&data, fx));
        let (air, first) = first.expect("a full sub-packet leaves at once");
        assert_eq!((air.spreading_factor, air.bandwidth_hz), (11, 500_000));
        assert_eq!(air.frequency_hz, 868_125_000);
        assert_eq!(first[..3], [0, 0, 0], "NETID, address");
        assert_eq!(first[3..], data[..240]);
        assert_eq!(pins.aux_high(), Ok(Some(false)));
        let (_, second, _) = step(&f, |fx| m.tx_done(fx));
        assert_eq!(second.expect("the rest").1[3..], data[240..]);
        step(&f, |fx| m.tx_done(fx));
        assert_eq!(pins.aux_high(), Ok(Some(true)));

        // Short data waits for the UART to fall quiet.
        let (_, none, timer) = step(&f, |fx| m.host(b"hi", fx));
        assert_eq!((none, timer), (None, Some(Some(UART_GAP))));
        let (_, packet, _) = step(&f, |fx| m.timer(fx));
        assert_eq!(packet.expect("flushed").1[3..], *b"hi");
        step(&f, |fx| m.tx_done(fx));

        // Reception: RSSI byte only when register 06 bit 7 is set; foreign NETIDs are ignored.
        let rx = |payload: &[u8]| Reception {
            payload: payload.to_vec(),
            rssi_dbm: -71,
            snr_db: 5.0,
            modulation: air,
        };
        assert_eq!(step(&f, |fx| m.air(&rx(b"\0\xff\xffab"), fx)).0, b"ab");
        assert!(
            step(&f, |fx| m.air(&rx(b"\x07\xff\xffab"), fx))
                .0
                .is_empty()
        );
        switch(&mut m, &mut pins, &f, Mode::Config);
        step(&f, |fx| m.host(&[0xC2, 0x06, 0x01, 0x80], fx));
        switch(&mut m, &mut pins, &f, Mode::Normal);
        assert_eq!(
            step(&f, |fx| m.air(&rx(b"\0\xff\xffab"), fx)).0,
            [b'a', b'b', 185]
        );
        assert_eq!(pins.busy_writes(), 0);
    }

    #[test]
    fn writes_while_busy_are_counted() {
        let (mut m, pins, f) = powered();
        pins.hold_aux_low(true);
        step(&f, |fx| m.host(b"x", fx));
        assert_eq!(pins.busy_writes(), 1);
    }
}
