//! What the SPI-level chip emulators ([`crate::Sx1262`], [`crate::Sx1276`]) share: the state
//! their lines and background task hold in common, the task that puts their frames on the
//! medium and times them, and the SPI framing. Each chip supplies its command set through
//! [`SpiChip`]; the plumbing around it is the same for both, so it lives here once.

mod output;
mod spi;

pub use output::{ChipOutput, Irq, Level};
pub use spi::EmuSpiError;
pub(crate) use spi::transaction;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use lorabridge_hardware::Modulation;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::medium::{Medium, Reception, StationId};

/// A chip's state and command set, as the shared plumbing drives it.
pub(crate) trait SpiChip: Send + 'static {
    /// Work an SPI exchange leaves for the background task (it owns the medium).
    type Ctl: Send + 'static;
    /// What the chip's one timer stands for when it runs out.
    type Timer: Copy;

    /// The IRQ line's level (DIO1, DIO0).
    fn irq(&self) -> bool;
    /// The modulation the receiver is on, if it is receiving.
    fn listening(&self) -> Option<Modulation>;
    /// MISO for one NSS-low period, and work for the task.
    fn exchange(&mut self, mosi: &[u8]) -> (Vec<u8>, Vec<Self::Ctl>);
    /// The background task's share of the work an exchange left.
    fn control(&mut self, ctl: Self::Ctl, medium: &dyn Medium, station: StationId);
    /// The chip's timer: when it runs out and what it then means.
    fn timer(&mut self) -> &mut Option<(Instant, Self::Timer)>;
    /// The timer ran out.
    fn fire(&mut self, timer: Self::Timer, medium: &dyn Medium, station: StationId);
    /// A frame heard on air.
    fn receive(&mut self, r: Reception);
    /// A power-on reset that keeps the injected faults and the counters.
    fn reset_keeping_faults(&mut self);
}

/// The chip and its wiring, held by the chip's handle, each of its lines and its task.
pub(crate) struct Shared<C: SpiChip> {
    chip: Mutex<C>,
    /// The IRQ line's level, shared with the line the driver waits on.
    irq: Arc<watch::Sender<bool>>,
    ctl: mpsc::UnboundedSender<C::Ctl>,
    pub(crate) medium: Arc<dyn Medium>,
    pub(crate) station: StationId,
    unplugged: Mutex<bool>,
}

impl<C: SpiChip> Shared<C> {
    pub(crate) fn lock(&self) -> MutexGuard<'_, C> {
        self.chip.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn unplugged(&self) -> bool {
        *self.unplugged.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_unplugged(&self, unplugged: bool) {
        *self.unplugged.lock().unwrap_or_else(|p| p.into_inner()) = unplugged;
    }

    /// After any change: the IRQ line's level and what the medium hears us listening on.
    pub(crate) fn settle(&self, chip: &C) {
        self.irq.send_replace(chip.irq());
        self.medium.listen(self.station, chip.listening());
    }

    /// The IRQ line, for the driver.
    pub(crate) fn irq_line(&self) -> ChipOutput<Irq> {
        ChipOutput(Irq(self.irq.clone()))
    }

    /// The board comes off: SPI transfers fail and `power_off` takes the chip's power.
    pub(crate) fn unplug(&self, power_off: impl FnOnce(&mut C)) {
        self.set_unplugged(true);
        let mut chip = self.lock();
        power_off(&mut chip);
        self.settle(&chip);
    }

    /// The board is back: a power-on reset, then transfers work again.
    pub(crate) fn replug(&self) {
        let mut chip = self.lock();
        chip.reset_keeping_faults();
        self.settle(&chip);
        drop(chip);
        self.set_unplugged(false);
    }
}

/// The chip's background task. Dropping it stops the task and takes the chip off the medium.
pub(crate) struct Background {
    task: JoinHandle<()>,
    medium: Arc<dyn Medium>,
    station: StationId,
}

impl Drop for Background {
    fn drop(&mut self) {
        self.task.abort();
        self.medium.detach(self.station);
    }
}

/// Attaches `chip` to `medium` as `name` and starts its background task, which times
/// transmissions and takes receptions. Must be called inside a tokio runtime.
pub(crate) fn attach<C: SpiChip>(
    chip: C,
    medium: Arc<dyn Medium>,
    name: &str,
) -> (Arc<Shared<C>>, Background) {
    let (station, receptions) = medium.attach(name);
    let (ctl, ctl_rx) = mpsc::unbounded_channel();
    let (irq, _) = watch::channel(false);
    let shared = Arc::new(Shared {
        chip: Mutex::new(chip),
        irq: Arc::new(irq),
        ctl,
        medium: medium.clone(),
        station,
        unplugged: Mutex::new(false),
    });
    let task = tokio::spawn(run(shared.clone(), receptions, ctl_rx));
    let background = Background {
        task,
        medium,
        station,
    };
    (shared, background)
}

async fn run<C: SpiChip>(
    shared: Arc<Shared<C>>,
    mut receptions: mpsc::Receiver<Reception>,
    mut ctl: mpsc::UnboundedReceiver<C::Ctl>,
) {
    loop {
        let next = shared.lock().timer().map(|(at, _)| at);
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at.into()).await,
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
                Some(c) => shared.lock().control(c, shared.medium.as_ref(), shared.station),
            },
            _ = sleep => {
                let mut chip = shared.lock();
                if let Some((at, timer)) = *chip.timer()
                    && Instant::now() >= at
                {
                    *chip.timer() = None;
                    chip.fire(timer, shared.medium.as_ref(), shared.station);
                    shared.settle(&chip);
                }
            }
        }
    }
}
