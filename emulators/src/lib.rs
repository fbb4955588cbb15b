//! Modem emulators behind pseudo-terminals, so the real serial drivers run without radios.
//!
//! Each [`Emulator`] owns a pty and answers the driver as the module's documentation says:
//! [`Emulator::rui3`] (RAK3172, RUI3 AT), [`Emulator::rak811`] (RAK811, AT v3) and
//! [`Emulator::rnode`] (RNode firmware, KISS) and [`Emulator::e22`] (Ebyte E22, with emulated
//! M0/M1/AUX pins). Emulators joined to one [`Medium`] hear each
//! other when their modulations match. Hooks inject faults: garbage bytes, busy answers,
//! silence, and unplug/replug. The driver opens [`Emulator::link_path`], a symlink in a
//! directory the caller owns that always points at the current `/dev/pts/N`: an unplug
//! removes it, a replug opens a new pty and points the link there, as udev's stable
//! `/dev/serial/by-id` names do for real modules.
//!
//! [`Sx1262`] is of another kind: an SX1262 chip at the SPI level (no pty), whose SPI port
//! and lines plug into the SX126x driver directly; it shares the same [`Medium`].
//!
//! Each emulator is split like the drivers: a pure "personality" (bytes and air frames in,
//! bytes and transmissions out) and one shared async shell that owns the pty, the medium
//! station and the timers. Emulators stop when dropped.

mod at_firmware;
mod e22;
pub mod medium;
pub mod pty;
mod rak811;
mod rnode;
mod rui3;
mod spi_chip;
pub mod sx126x;
pub mod sx127x;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use lorabridge_hardware::Modulation;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use e22::E22Pins;
pub use medium::{Hub, LinkQuality, Medium, Reception, StationId};
use pty::Pty;
pub use sx126x::Sx1262;
pub use sx127x::Sx1276;

/// Fault switches shared between the test and the emulator task.
#[derive(Debug, Default)]
pub struct Faults {
    /// Transmit commands still to be answered "busy".
    busy: AtomicU32,
    /// When set, the emulator reads commands but answers nothing.
    silent: AtomicBool,
    /// RUI3 only: report receptions in the early two-line `+EVT:RXP2P` format.
    two_line_rx: AtomicBool,
}

/// What a personality wants done after handling an input.
pub(crate) struct Effects<'a> {
    /// Bytes for the driver.
    pub out: Vec<u8>,
    /// A frame to put on air (the personality must not ask again before `tx_done`).
    pub transmit: Option<(Modulation, Vec<u8>)>,
    /// Arms (`Some(Some(d))`) or cancels (`Some(None)`) the personality's one timer.
    pub timer: Option<Option<Duration>>,
    faults: &'a Faults,
    /// What the chip's channel activity detection reports right now for a modulation: the
    /// medium's [`Medium::channel_busy`] for this station.
    sense: &'a (dyn Fn(&Modulation) -> bool + Sync),
}

impl Effects<'_> {
    /// Whether this transmit command is to be answered busy (consumes one injection).
    pub fn take_busy(&self) -> bool {
        self.faults
            .busy
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Channel activity detection: whether another station's frame with a compatible
    /// modulation is on air here now. What listen-before-talk firmware looks at before sending.
    pub fn channel_busy(&self, modulation: &Modulation) -> bool {
        (self.sense)(modulation)
    }

    /// RUI3: whether to print receptions in the early two-line format.
    pub fn two_line_rx(&self) -> bool {
        self.faults.two_line_rx.load(Ordering::Relaxed)
    }

    pub fn line(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }
}

/// One module's behaviour, free of I/O.
pub(crate) trait Personality: Send + 'static {
    /// Bytes the driver wrote.
    fn host(&mut self, bytes: &[u8], fx: &mut Effects);
    /// A frame heard on air (only delivered while [`Personality::listening`] says so).
    fn air(&mut self, rx: &Reception, fx: &mut Effects);
    /// The transmission asked for earlier has left the antenna.
    fn tx_done(&mut self, fx: &mut Effects);
    /// Power returns (first start and every replug): volatile state resets.
    fn power_on(&mut self, fx: &mut Effects);
    /// Power goes (unplug).
    fn power_off(&mut self) {}
    /// The host changed the module's mode pins (modules that have them).
    fn pins_changed(&mut self, _fx: &mut Effects) {}
    /// The timer armed through [`Effects::timer`] expired.
    fn timer(&mut self, _fx: &mut Effects) {}
    /// The modulation the receiver is on, if it is receiving.
    fn listening(&self) -> Option<Modulation>;
}

enum Control {
    Garbage(Vec<u8>),
    Unplug(oneshot::Sender<()>),
    Replug(oneshot::Sender<io::Result<()>>),
}

/// A running modem emulator. Dropping it stops the task, closes the pty and removes the link.
pub struct Emulator {
    control: mpsc::Sender<Control>,
    faults: Arc<Faults>,
    link: PathBuf,
    tty: watch::Receiver<Option<PathBuf>>,
    task: JoinHandle<()>,
}

impl Emulator {
    /// A RAK3172 with RUI3 firmware 4.0.6, the first with `AT+CAD` (starts in LoRaWAN mode,
    /// as shipped).
    pub fn rui3(medium: Arc<dyn Medium>, dir: &Path, name: &str) -> io::Result<Self> {
        Self::rui3_firmware(medium, dir, name, rui3::FIRST_WITH_CAD)
    }

    /// A RAK3172 with RUI3 firmware `version` (major, minor, patch): what `AT+VER=?` reports,
    /// and whether the module knows `AT+CAD` (4.0.6 and later).
    pub fn rui3_firmware(
        medium: Arc<dyn Medium>,
        dir: &Path,
        name: &str,
        version: [u8; 3],
    ) -> io::Result<Self> {
        Self::start(
            Box::new(rui3::Rui3Module::new(version)),
            None,
            medium,
            dir,
            name,
        )
    }

    /// A RAK811 with AT firmware v3.0.0.14 (starts in LoRaWAN mode).
    pub fn rak811(medium: Arc<dyn Medium>, dir: &Path, name: &str) -> io::Result<Self> {
        Self::start(
            Box::new(rak811::Rak811Module::default()),
            None,
            medium,
            dir,
            name,
        )
    }

    /// An RNode (firmware 1.74, ESP32), radio off until configured.
    pub fn rnode(medium: Arc<dyn Medium>, dir: &Path, name: &str) -> io::Result<Self> {
        Self::start(
            Box::new(rnode::RnodeModule::default()),
            None,
            medium,
            dir,
            name,
        )
    }

    /// An Ebyte E22-900T22S (the Waveshare SX1262 LoRa HAT's module) with factory registers,
    /// and its pins: give a clone to the driver, keep one for faults and inspection. The
    /// UART is the pty; [`Emulator::inject_busy`] has no effect (use
    /// [`E22Pins::hold_aux_low`]).
    pub fn e22(medium: Arc<dyn Medium>, dir: &Path, name: &str) -> io::Result<(Self, E22Pins)> {
        let pins = E22Pins::new();
        let module = Box::new(e22::E22Module::new(&pins));
        let emulator = Self::start(module, Some(pins.changes()), medium, dir, name)?;
        Ok((emulator, pins))
    }

    fn start(
        module: Box<dyn Personality>,
        pin_changes: Option<Arc<Notify>>,
        medium: Arc<dyn Medium>,
        dir: &Path,
        name: &str,
    ) -> io::Result<Self> {
        let link = dir.join(name);
        let pty = Pty::open()?;
        point_link(&link, pty.path())?;
        let (tty_tx, tty) = watch::channel(Some(pty.path().to_path_buf()));
        let faults = Arc::new(Faults::default());
        let (control, control_rx) = mpsc::channel(16);
        let (station, air) = medium.attach(name);
        let shell = Shell {
            module,
            medium,
            station,
            air,
            pty: Some(pty),
            link: link.clone(),
            tty: tty_tx,
            faults: faults.clone(),
            control: control_rx,
            pin_changes,
            tx_until: None,
            wake_at: None,
            listening: None,
        };
        let task = tokio::spawn(shell.run());
        Ok(Self {
            control,
            faults,
            link,
            tty,
            task,
        })
    }

    /// The stable path for the driver to open (a symlink to the current pty).
    pub fn link_path(&self) -> &Path {
        &self.link
    }

    /// The current pty slave, e.g. `/dev/pts/7`; `None` while unplugged.
    pub fn tty_path(&self) -> Option<PathBuf> {
        self.tty.borrow().clone()
    }

    /// Writes raw bytes to the driver, between the emulator's own output.
    pub async fn inject_garbage(&self, bytes: &[u8]) {
        let _ = self.control.send(Control::Garbage(bytes.to_vec())).await;
    }

    /// Answers the next `n` transmit commands "busy" (AT modules; an RNode reports queue full
    /// and drops the packet, as the firmware does).
    pub fn inject_busy(&self, n: u32) {
        self.faults.busy.fetch_add(n, Ordering::SeqCst);
    }

    /// Silence: commands are read but never answered, and receptions are not reported.
    pub fn set_silent(&self, silent: bool) {
        self.faults.silent.store(silent, Ordering::SeqCst);
    }

    /// RUI3: report receptions in the early two-line format.
    pub fn set_two_line_rx(&self, on: bool) {
        self.faults.two_line_rx.store(on, Ordering::SeqCst);
    }

    /// Pulls the plug: the pty closes (the driver's reads fail) and the link disappears.
    pub async fn unplug(&self) {
        let (tx, rx) = oneshot::channel();
        if self.control.send(Control::Unplug(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Plugs back in: a new pty (a new `/dev/pts/N`), the link pointed at it, the module booted.
    pub async fn replug(&self) -> io::Result<()> {
        let (tx, rx) = oneshot::channel();
        self.control
            .send(Control::Replug(tx))
            .await
            .map_err(|_| io::Error::other("emulator stopped"))?;
        rx.await.map_err(|_| io::Error::other("emulator stopped"))?
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.link);
    }
}

/// Points `link` at `target` atomically (create a fresh link, rename it over the old one).
fn point_link(link: &Path, target: &Path) -> io::Result<()> {
    let tmp = link.with_extension("new");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    std::fs::rename(&tmp, link)
}

struct Shell {
    module: Box<dyn Personality>,
    medium: Arc<dyn Medium>,
    station: StationId,
    air: mpsc::Receiver<Reception>,
    pty: Option<Pty>,
    link: PathBuf,
    tty: watch::Sender<Option<PathBuf>>,
    faults: Arc<Faults>,
    control: mpsc::Receiver<Control>,
    /// Signalled when the host changes the module's pins (E22 only).
    pin_changes: Option<Arc<Notify>>,
    /// When the frame on air ends, if one is.
    tx_until: Option<Instant>,
    /// When the personality's timer fires, if armed.
    wake_at: Option<Instant>,
    /// What the medium was last told this station listens on.
    listening: Option<Modulation>,
}

impl Drop for Shell {
    fn drop(&mut self) {
        self.medium.detach(self.station);
    }
}

enum Input {
    Host(usize),
    Air(Reception),
    TxDone,
    Timer,
    Pins,
    Control(Control),
    HostGone,
    Stop,
}

impl Shell {
    async fn run(mut self) {
        let mut buf = vec![0u8; 1024];
        self.step(|m, fx| m.power_on(fx)).await;
        loop {
            let input = {
                let pty = self.pty.as_ref();
                let tx_until = self.tx_until;
                let wake_at = self.wake_at;
                let pins = self.pin_changes.clone();
                tokio::select! {
                    r = async { pty.expect("guarded").read(&mut buf).await }, if pty.is_some() => match r {
                        Ok(0) | Err(_) => Input::HostGone,
                        Ok(n) => Input::Host(n),
                    },
                    rx = self.air.recv() => rx.map_or(Input::Stop, Input::Air),
                    _ = async { tokio::time::sleep_until(tx_until.expect("guarded")).await }, if tx_until.is_some() => Input::TxDone,
                    _ = async { tokio::time::sleep_until(wake_at.expect("guarded")).await }, if wake_at.is_some() => Input::Timer,
                    _ = async { pins.expect("guarded").notified().await }, if pins.is_some() => Input::Pins,
                    c = self.control.recv() => c.map_or(Input::Stop, Input::Control),
                }
            };
            match input {
                Input::Host(n) => {
                    let bytes = buf[..n].to_vec();
                    self.step(|m, fx| m.host(&bytes, fx)).await;
                }
                Input::Air(rx) => {
                    // Only a powered module that is receiving hears anything.
                    if self.pty.is_some() && self.tx_until.is_none() {
                        self.step(|m, fx| m.air(&rx, fx)).await;
                    }
                }
                Input::TxDone => {
                    self.tx_until = None;
                    self.step(|m, fx| m.tx_done(fx)).await;
                }
                Input::Timer => {
                    self.wake_at = None;
                    self.step(|m, fx| m.timer(fx)).await;
                }
                Input::Pins => self.step(|m, fx| m.pins_changed(fx)).await,
                Input::Control(Control::Garbage(bytes)) => {
                    if let Some(p) = &self.pty {
                        let _ = p.write_all(&bytes).await;
                    }
                }
                Input::Control(Control::Unplug(done)) => {
                    self.module.power_off();
                    self.pty = None;
                    self.tx_until = None;
                    self.wake_at = None;
                    let _ = std::fs::remove_file(&self.link);
                    self.tty.send_replace(None);
                    self.sync_listening();
                    let _ = done.send(());
                }
                Input::Control(Control::Replug(done)) => {
                    let result = Pty::open().and_then(|p| {
                        point_link(&self.link, p.path())?;
                        self.tty.send_replace(Some(p.path().to_path_buf()));
                        self.pty = Some(p);
                        Ok(())
                    });
                    if result.is_ok() {
                        self.step(|m, fx| m.power_on(fx)).await;
                    }
                    let _ = done.send(result);
                }
                // With the emulator's own slave descriptor open this does not happen; if the
                // pty breaks anyway, behave as unplugged.
                Input::HostGone => {
                    self.module.power_off();
                    self.pty = None;
                    self.sync_listening();
                }
                Input::Stop => return,
            }
        }
    }

    /// Runs one personality step and carries out its effects.
    async fn step(&mut self, f: impl FnOnce(&mut dyn Personality, &mut Effects)) {
        let faults = self.faults.clone();
        let (medium, station) = (self.medium.clone(), self.station);
        let sense = move |m: &Modulation| medium.channel_busy(station, m);
        let mut fx = Effects {
            out: Vec::new(),
            transmit: None,
            timer: None,
            faults: &faults,
            sense: &sense,
        };
        f(self.module.as_mut(), &mut fx);
        let Effects {
            out,
            transmit,
            timer,
            ..
        } = fx;
        if let Some(t) = timer {
            self.wake_at = t.map(|d| Instant::now() + d);
        }
        if let Some((m, payload)) = transmit {
            self.listening = None;
            self.medium.listen(self.station, None);
            let toa = self.medium.transmit(self.station, &m, &payload);
            self.tx_until = Some(Instant::now() + toa);
        }
        self.sync_listening();
        if !out.is_empty()
            && !self.faults.silent.load(Ordering::SeqCst)
            && let Some(p) = &self.pty
        {
            let _ = p.write_all(&out).await;
        }
    }

    fn sync_listening(&mut self) {
        let want = if self.pty.is_some() && self.tx_until.is_none() {
            self.module.listening()
        } else {
            None
        };
        if want != self.listening {
            self.listening = want;
            self.medium.listen(self.station, want);
        }
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// Everything one step produced: output bytes, a transmission, a timer change.
    pub type Step = (
        Vec<u8>,
        Option<(Modulation, Vec<u8>)>,
        Option<Option<Duration>>,
    );

    /// Runs one personality step without a pty, on a quiet channel.
    pub fn step(faults: &Faults, f: impl FnOnce(&mut Effects)) -> Step {
        step_sensing(faults, false, f)
    }

    /// Runs one personality step without a pty; channel activity detection reports `busy`.
    pub fn step_sensing(faults: &Faults, busy: bool, f: impl FnOnce(&mut Effects)) -> Step {
        let sense = move |_: &Modulation| busy;
        let mut fx = Effects {
            out: Vec::new(),
            transmit: None,
            timer: None,
            faults,
            sense: &sense,
        };
        f(&mut fx);
        (fx.out, fx.transmit, fx.timer)
    }

    pub fn text(out: &[u8]) -> String {
        String::from_utf8_lossy(out).into_owned()
    }
}
