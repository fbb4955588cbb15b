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
//!
//! Except in one case: a record dated before NTP answered, read in a later boot whose clock
//! NTP has set. Its wall date is in the past of the saved time, the clock it is read by is
//! true, and the record looks older than it is. So each stamp says whether the kernel held the
//! clock synchronised; such a record is taken to be no older than the reading boot (it
//! happened before that boot began), and the record's own boot re-dates it by the boot clock
//! once NTP has answered there ([`crate::bridge_db`]).

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
    /// Whether the kernel held the wall clock synchronised (by NTP, chrony or timesyncd).
    pub synced: bool,
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
            synced: clock_synced(),
        }
    }

    /// The oldest that a record of another boot stamped before NTP answered can be taken to
    /// be when read at `self`: this boot's run time, once NTP has answered here (see the
    /// module docs); `None` where the wall clock dates it like any other.
    pub fn unsynced_age_cap(&self) -> Option<u64> {
        (self.synced && !self.boot.is_empty()).then_some(self.since_boot_ms)
    }

    /// How long before `now` this was: by the boot's clock when both are of one known boot,
    /// else by the wall clock, but for a record dated before NTP answered no longer than
    /// `now`'s boot has run. A date in the future counts as now.
    pub fn age_at(&self, now: &Stamp) -> Duration {
        let ms = if !self.boot.is_empty() && self.boot == now.boot {
            now.since_boot_ms.saturating_sub(self.since_boot_ms)
        } else {
            let wall = now.wall_ms.saturating_sub(self.wall_ms);
            match now.unsynced_age_cap() {
                Some(cap) if !self.synced => wall.min(cap),
                _ => wall,
            }
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

/// Whether the kernel's clock status says synchronised: some time client has set the clock
/// and cleared STA_UNSYNC. Where that cannot be read, as not synchronised, the wall clock's
/// usual and safe side.
fn clock_synced() -> bool {
    // SAFETY: `timex` is plain data, for which all zeroes is valid; with `modes` zero,
    // adjtimex only reads the clock's state into it.
    let mut t: libc::timex = unsafe { std::mem::zeroed() };
    let state = unsafe { libc::adjtimex(&mut t) };
    state >= 0 && state != libc::TIME_ERROR && t.status & libc::STA_UNSYNC == 0
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
            synced: true,
        }
    }

    fn unsynced(stamp: Stamp) -> Stamp {
        Stamp {
            synced: false,
            ..stamp
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

    /// #13: a send made before NTP answered, read in the next boot after NTP answered there.
    #[test]
    fn a_record_dated_before_ntp_is_no_older_than_the_boot_that_reads_it() {
        // Booted at the saved time (day 10), sent 100 s later, crashed. The next boot's NTP
        // has set the true time, day 12; that boot has run five minutes.
        let sent = unsynced(at(10 * 86_400 + 100, "b1", 100));
        let read = at(12 * 86_400, "b2", 300);
        assert_eq!(sent.age_at(&read), Duration::from_secs(300));
        // Read by a boot whose clock is not synchronised either: both on the saved clock.
        let read_unsynced = unsynced(read.clone());
        assert_eq!(
            sent.age_at(&read_unsynced),
            Duration::from_secs(2 * 86_400 - 100)
        );
        // A synchronised record goes by the wall clock, as before.
        let synced_sent = at(12 * 86_400 - 7_200, "b1", 100);
        assert_eq!(synced_sent.age_at(&read), Duration::from_secs(7_200));
        // Within its own boot the boot clock rules whatever the sync.
        let same_boot = at(13 * 86_400, "b1", 700);
        assert_eq!(sent.age_at(&same_boot), Duration::from_secs(600));
    }

    #[test]
    fn this_machine_has_a_boot_clock() {
        let a = Stamp::now();
        assert!(!a.boot.is_empty() && a.since_boot_ms > 0, "{a:?}");
        assert!(a.age_at(&Stamp::now()) < Duration::from_secs(5));
    }
}
