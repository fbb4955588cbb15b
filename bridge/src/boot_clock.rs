//! Dates for records that must outlive a restart: the wall clock, and the time since this
//! boot, which NTP never moves.
//!
//! A Raspberry Pi has no battery-backed clock. It boots at the last time saved on its card
//! and jumps forward when NTP answers, minutes or days later. A record dated by the wall
//! clock before that jump looks that much older after it: a restarted bridge would forget
//! sends of the last hour (and break the duty cycle) and forget idempotency keys early.
//! Within one boot, the time since boot (`/proc/uptime`, the kernel's boot-time clock) gives
//! the true age; across boots only the wall clock can, and there it errs young (the Pi boots
//! in the past), which keeps records longer, the safe side.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// When something happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Unix time in milliseconds.
    pub wall_ms: u64,
    /// The kernel's id of the boot (empty where there is none: then only `wall_ms` counts).
    pub boot: String,
    /// Milliseconds since that boot.
    pub since_boot_ms: u64,
}

impl Stamp {
    /// Now.
    pub fn now() -> Self {
        Self {
            wall_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            boot: boot_id().to_string(),
            since_boot_ms: since_boot().map_or(0, |d| d.as_millis() as u64),
        }
    }

    /// How long before `now` this was: by the boot's clock when both are of one known boot,
    /// else by the wall clock. A date in the future counts as now.
    pub fn age_at(&self, now: &Stamp) -> Duration {
        let ms = if !self.boot.is_empty() && self.boot == now.boot {
            now.since_boot_ms.saturating_sub(self.since_boot_ms)
        } else {
            now.wall_ms.saturating_sub(self.wall_ms)
        };
        Duration::from_millis(ms)
    }
}

fn boot_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|id| id.trim().to_string())
            .unwrap_or_default()
    })
}

fn since_boot() -> Option<Duration> {
    let uptime = std::fs::read_to_string("/proc/uptime").ok()?;
    let secs: f64 = uptime.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(wall_s: u64, boot: &str, since_boot_s: u64) -> Stamp {
        Stamp {
            wall_ms: wall_s * 1000,
            boot: boot.into(),
            since_boot_ms: since_boot_s * 1000,
        }
    }

    #[test]
    fn within_one_boot_a_clock_jump_changes_no_age() {
        // Sent 100 s after boot, with the clock at its saved time; NTP then moves the clock
        // forward by two days; 10 minutes later the bridge asks how old the send is.
        let sent = at(1_000_000, "b1", 100);
        let later = at(1_000_000 + 2 * 86_400 + 600, "b1", 700);
        assert_eq!(sent.age_at(&later), Duration::from_secs(600));
        // After a reboot only the wall clock tells; the future counts as now.
        let rebooted = at(1_000_000 + 3_600, "b2", 30);
        assert_eq!(sent.age_at(&rebooted), Duration::from_secs(3_600));
        assert_eq!(later.age_at(&rebooted), Duration::ZERO);
        // Without a boot id, the wall clock.
        assert_eq!(
            at(10, "", 5).age_at(&at(20, "", 5)),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn this_machine_has_a_boot_clock() {
        let a = Stamp::now();
        assert!(!a.boot.is_empty() && a.since_boot_ms > 0, "{a:?}");
        assert!(a.age_at(&Stamp::now()) < Duration::from_secs(5));
    }
}
