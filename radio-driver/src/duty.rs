//! Duty-cycle and dwell-time enforcement in front of any radio.

use std::sync::Mutex;
use std::time::Duration;

use lorabridge_hardware::{AirtimeLedger, Modulation, RegionPlan, SubBandUsage};
use tokio::time::Instant;

use crate::{ModuleKind, Radio, RadioError, RadioFuture, RadioState, RxFrame};

/// Wraps a [`Radio`] and charges every send to the region's [`AirtimeLedger`] before it goes
/// out; a send the rules do not allow is refused with [`RadioError::DutyCycle`], naming when
/// it may go, and never reaches the module.
///
/// The charge is made before the frame is handed to the module, and stays charged if the
/// module then fails: the ledger may overcount, never undercount, so the law is kept even when
/// a send's fate is unknown (a timeout, an unplug).
///
/// Airtime is what the module puts on air: an RNode adds one header byte per LoRa packet,
/// splits frames over 254 bytes in two packets and uses a preamble of at least 18 symbols; the
/// AT modules send the frame as is with the configured preamble.
/// The clock is tokio's (so tests can pause it); its epoch is the wrapper's creation.
///
/// Memory: the ledger's own bound (see [`AirtimeLedger`]).
pub struct DutyCycled<R> {
    inner: R,
    plan: RegionPlan,
    ledger: Mutex<AirtimeLedger>,
    modulation: Mutex<Option<Modulation>>,
    epoch: Instant,
}

impl<R: Radio> DutyCycled<R> {
    /// Enforces `plan` on `inner`, with an empty ledger.
    pub fn new(inner: R, plan: RegionPlan) -> Self {
        let ledger = Mutex::new(AirtimeLedger::new(&plan));
        Self {
            inner,
            plan,
            ledger,
            modulation: Mutex::new(None),
            epoch: Instant::now(),
        }
    }

    /// The wrapped radio.
    pub fn inner(&self) -> &R {
        &self.inner
    }

    /// Airtime used and allowed per sub-band, for status pages.
    pub fn usage(&self) -> Vec<SubBandUsage> {
        lock(&self.ledger).summary(self.now())
    }

    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.epoch)
    }

    /// What one send of `len` bytes costs on air with this module.
    pub fn airtime(kind: ModuleKind, m: &Modulation, len: usize) -> Duration {
        // RNode firmware picks its own, longer preamble.
        let rnode = Modulation {
            preamble_symbols: m.preamble_symbols.max(crate::rnode::cmd::MIN_PREAMBLE),
            ..*m
        };
        let m = if kind == ModuleKind::Rnode { &rnode } else { m };
        match kind {
            ModuleKind::Rnode if len > 254 => m.time_on_air(255) + m.time_on_air(len - 254 + 1),
            ModuleKind::Rnode => m.time_on_air(len + 1),
            ModuleKind::Rui3 | ModuleKind::Rak811 => m.time_on_air(len),
            // Our framing travels with the frame; `m` is the air rate's stand-in, so this is
            // the E22's airtime estimate (see `crate::e22`).
            ModuleKind::E22 => m.time_on_air(len + crate::e22::wire::OVERHEAD),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded values are plain data updated in single calls; a panic elsewhere cannot
    // leave them half-written.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<R: Radio> Radio for DutyCycled<R> {
    fn kind(&self) -> ModuleKind {
        self.inner.kind()
    }

    fn mtu(&self) -> usize {
        self.inner.mtu()
    }

    fn state(&self) -> RadioState {
        self.inner.state()
    }

    fn configure<'a>(
        &'a self,
        modulation: &'a Modulation,
    ) -> RadioFuture<'a, Result<(), RadioError>> {
        Box::pin(async move {
            // A setting the region forbids (power, channel, a frame longer than the dwell
            // limit) is refused here, before the module is touched.
            let largest_packet = match self.inner.kind() {
                ModuleKind::Rnode => 255,
                ModuleKind::E22 => self.inner.mtu() + crate::e22::wire::OVERHEAD,
                _ => self.inner.mtu().min(255),
            };
            self.plan
                .check(modulation, largest_packet)
                .map_err(|e| RadioError::Unsupported {
                    module: "region plan",
                    reason: e.to_string(),
                })?;
            self.inner.configure(modulation).await?;
            *lock(&self.modulation) = Some(*modulation);
            Ok(())
        })
    }

    fn send<'a>(&'a self, frame: &'a [u8]) -> RadioFuture<'a, Result<(), RadioError>> {
        Box::pin(async move {
            let m = (*lock(&self.modulation)).ok_or(RadioError::NotConfigured)?;
            if frame.len() > self.inner.mtu() {
                return Err(RadioError::FrameTooLarge {
                    size: frame.len(),
                    mtu: self.inner.mtu(),
                });
            }
            let airtime = Self::airtime(self.inner.kind(), &m, frame.len());
            let now = self.now();
            lock(&self.ledger)
                .record(now, m.frequency_hz, m.bandwidth_hz, airtime)
                .map_err(|refusal| RadioError::DutyCycle {
                    retry_after: refusal.earliest.map(|at| at.saturating_sub(now)),
                    reason: refusal.reason.to_string(),
                })?;
            self.inner.send(frame).await
        })
    }

    fn recv(&self) -> RadioFuture<'_, Option<RxFrame>> {
        self.inner.recv()
    }

    fn shutdown(&self) -> RadioFuture<'_, Result<(), RadioError>> {
        self.inner.shutdown()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A radio that accepts everything and counts sends.
    struct Counting {
        sent: AtomicUsize,
    }

    impl Radio for Counting {
        fn kind(&self) -> ModuleKind {
            ModuleKind::Rui3
        }
        fn mtu(&self) -> usize {
            250
        }
        fn state(&self) -> RadioState {
            RadioState::Ready
        }
        fn configure<'a>(&'a self, _: &'a Modulation) -> RadioFuture<'a, Result<(), RadioError>> {
            Box::pin(async { Ok(()) })
        }
        fn send<'a>(&'a self, _: &'a [u8]) -> RadioFuture<'a, Result<(), RadioError>> {
            self.sent.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(()) })
        }
        fn recv(&self) -> RadioFuture<'_, Option<RxFrame>> {
            Box::pin(async { None })
        }
        fn shutdown(&self) -> RadioFuture<'_, Result<(), RadioError>> {
            Box::pin(async { Ok(()) })
        }
    }

    fn sf12_868_1() -> Modulation {
        // 868.1 MHz lies in the EU868 1 % sub-band: 36 s per hour.
        Modulation {
            frequency_hz: 868_100_000,
            spreading_factor: 12,
            bandwidth_hz: 125_000,
            coding_rate: 5,
            preamble_symbols: 8,
            tx_power_dbm: 14,
            sync_word: 0x12,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn refuses_with_the_time_it_may_go_and_then_allows() {
        let plan = RegionPlan::builtin("EU868").expect("plan");
        let radio = DutyCycled::new(
            Counting {
                sent: AtomicUsize::new(0),
            },
            plan,
        );
        let m = sf12_868_1();
        radio.configure(&m).await.expect("legal");
        let airtime = DutyCycled::<Counting>::airtime(ModuleKind::Rui3, &m, 200);
        let mut sent = 0;
        let refusal = loop {
            match radio.send(&[0; 200]).await {
                Ok(()) => {
                    sent += 1;
                    tokio::time::advance(airtime).await;
                }
                Err(e) => break e,
            }
        };
        // 36 s of budget at about 7.5 s per frame.
        assert_eq!(
            sent,
            (Duration::from_secs(36).as_nanos() / airtime.as_nanos()) as usize
        );
        assert_eq!(
            radio.inner().sent.load(Ordering::SeqCst),
            sent,
            "the refused frame never reached the module"
        );
        let RadioError::DutyCycle {
            retry_after: Some(wait),
            ..
        } = refusal
        else {
            panic!("{refusal}")
        };
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(3600),
            "{wait:?}"
        );
        tokio::time::advance(wait).await;
        radio
            .send(&[0; 200])
            .await
            .expect("allowed at the time named");
    }

    #[tokio::test(start_paused = true)]
    async fn back_to_back_sends_wait_for_the_air() {
        let plan = RegionPlan::builtin("EU868").expect("plan");
        let radio = DutyCycled::new(
            Counting {
                sent: AtomicUsize::new(0),
            },
            plan,
        );
        radio.configure(&sf12_868_1()).await.expect("legal");
        radio.send(&[1; 10]).await.expect("first");
        let err = radio.send(&[1; 10]).await.expect_err("still on air");
        assert!(
            matches!(
                err,
                RadioError::DutyCycle {
                    retry_after: Some(_),
                    ..
                }
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn illegal_settings_are_refused_before_the_module() {
        let plan = RegionPlan::builtin("EU868").expect("plan");
        let radio = DutyCycled::new(
            Counting {
                sent: AtomicUsize::new(0),
            },
            plan,
        );
        let loud = Modulation {
            tx_power_dbm: 22,
            ..sf12_868_1()
        };
        assert!(matches!(
            radio.configure(&loud).await,
            Err(RadioError::Unsupported { .. })
        ));
        assert_eq!(radio.send(&[1]).await, Err(RadioError::NotConfigured));
    }
}
