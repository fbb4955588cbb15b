//! The bridge's own persisted state: operations heard on each mesh transport (never echoed,
//! even after a restart), the radio's sends of the last hour, and the idempotency keys of
//! publishes. Sends and keys are dated with [`Stamp`]s, so that their ages stay true when
//! NTP sets a Pi's clock forward.
//!
//! It lives in a SQLite file of its own beside the node's database, never in the node's: p2panda
//! serialises the transactions of its store, and a writer outside it can make one of p2panda's
//! actors fail on a busy database (seen in release builds at start-up).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::boot_clock::Stamp;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use tokio::sync::mpsc;

/// How long a Publish idempotency key is remembered (as LoRes does).
pub const IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(48 * 3600);
/// Longest idempotency key accepted (LoRes sets none; keys are remembered for two days, so
/// an app must not be able to make us store megabytes per publish).
pub const MAX_IDEMPOTENCY_KEY: usize = 256;
/// How often expired keys are deleted.
const EXPIRY_EVERY: Duration = Duration::from_secs(3600);
/// Records waiting to be written; past this they are dropped (and logged): a heard id so lost
/// may be echoed once on the radio after a restart, a send so lost is not counted against
/// the duty cycle after a restart. The writer keeps up with any radio by far.
const WRITE_QUEUE: usize = 4096;

#[derive(Debug, thiserror::Error)]
#[error("the bridge's state database: {0}")]
pub struct BridgeDbError(String);

impl From<sqlx::Error> for BridgeDbError {
    fn from(e: sqlx::Error) -> Self {
        BridgeDbError(e.to_string())
    }
}

/// What the bridge itself remembers across restarts, beside the node's own database (see the
/// module docs).
#[derive(Clone)]
pub struct BridgeDb {
    pool: SqlitePool,
    /// When expired idempotency keys were last deleted (seconds since boot; 0: not yet).
    last_expiry: Arc<Mutex<u64>>,
}

impl BridgeDb {
    /// Opens (or creates) the state file beside the node's database, or an in-memory state.
    pub async fn open(node_database: Option<&Path>) -> Result<Self, BridgeDbError> {
        let options = match node_database {
            Some(path) => SqliteConnectOptions::new()
                .filename(state_path(path))
                .create_if_missing(true),
            None => SqliteConnectOptions::new().in_memory(true),
        };
        // One connection: an in-memory database exists per connection, and the bridge's own
        // writes are few.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        for statement in [
            "CREATE TABLE IF NOT EXISTS lorabridge_heard (transport TEXT NOT NULL, op_id BLOB NOT NULL, PRIMARY KEY (transport, op_id))",
            "CREATE TABLE IF NOT EXISTS lorabridge_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS lorabridge_sends (wall_ms INTEGER NOT NULL, boot TEXT NOT NULL, boot_ms INTEGER NOT NULL, airtime_us INTEGER NOT NULL, synced INTEGER NOT NULL DEFAULT 1)",
            "CREATE INDEX IF NOT EXISTS lorabridge_sends_wall ON lorabridge_sends (wall_ms)",
            "CREATE TABLE IF NOT EXISTS lorabridge_keys (topic BLOB NOT NULL, key BLOB NOT NULL, wall_ms INTEGER NOT NULL, boot TEXT NOT NULL, boot_ms INTEGER NOT NULL, synced INTEGER NOT NULL DEFAULT 1, PRIMARY KEY (topic, key))",
            "CREATE INDEX IF NOT EXISTS lorabridge_keys_wall ON lorabridge_keys (wall_ms)",
            // Keys were scoped to (app, instance) before; LoRes scopes them to the topic.
            "DROP TABLE IF EXISTS lorabridge_idempotency",
            // Sends and keys of bridges from before boot stamps, dated by the wall clock only
            // (an empty boot): kept, so that an upgrade forgets no airtime and no key.
            "CREATE TABLE IF NOT EXISTS lorabridge_airtime (sent_ms INTEGER NOT NULL, airtime_us INTEGER NOT NULL)",
            "INSERT INTO lorabridge_sends (wall_ms, boot, boot_ms, airtime_us) SELECT sent_ms, '', 0, airtime_us FROM lorabridge_airtime",
            "DROP TABLE lorabridge_airtime",
            "CREATE TABLE IF NOT EXISTS lorabridge_publish_keys (topic BLOB NOT NULL, key BLOB NOT NULL, created_secs INTEGER NOT NULL)",
            "INSERT OR IGNORE INTO lorabridge_keys (topic, key, wall_ms, boot, boot_ms) SELECT topic, key, created_secs * 1000, '', 0 FROM lorabridge_publish_keys",
            "DROP TABLE lorabridge_publish_keys",
        ] {
            sqlx::query(statement).execute(&pool).await?;
        }
        // Rows of bridges from before the sync flag were dated as if synchronised, by the
        // wall clock across boots: they keep that rule.
        for table in ["lorabridge_sends", "lorabridge_keys"] {
            let (has,): (i64,) = sqlx::query_as(&format!(
                "SELECT COUNT(*) FROM pragma_table_info('{table}') WHERE name = 'synced'"
            ))
            .fetch_one(&pool)
            .await?;
            if has == 0 {
                sqlx::query(&format!(
                    "ALTER TABLE {table} ADD COLUMN synced INTEGER NOT NULL DEFAULT 1"
                ))
                .execute(&pool)
                .await?;
            }
            // Every send and every key first re-dates the rows stamped before NTP
            // ([`redate`]); this index of those few rows keeps that a lookup, not a scan.
            sqlx::query(&format!(
                "CREATE INDEX IF NOT EXISTS {table}_unsynced ON {table} (boot) WHERE synced = 0"
            ))
            .execute(&pool)
            .await?;
        }
        Ok(Self {
            pool,
            last_expiry: Arc::new(Mutex::new(0)),
        })
    }

    /// The `limit` operations most recently heard on `transport`.
    pub async fn heard(
        &self,
        transport: &str,
        limit: usize,
    ) -> Result<Vec<[u8; 32]>, BridgeDbError> {
        let rows: Vec<(Vec<u8>,)> = sqlx::query_as(
            "SELECT op_id FROM lorabridge_heard WHERE transport = ? ORDER BY rowid DESC LIMIT ?",
        )
        .bind(transport)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id,)| id.try_into().ok())
            .collect())
    }

    /// This start's epoch for sealed radio frames: later than every earlier start's, whatever
    /// the clock says (the clock of a Pi without a battery may start in the past). Neighbours
    /// refuse frames from an epoch older than one they heard, so it must only grow.
    pub async fn next_epoch(&self) -> Result<u32, BridgeDbError> {
        let last: Option<(i64,)> =
            sqlx::query_as("SELECT value FROM lorabridge_meta WHERE name = 'epoch'")
                .fetch_optional(&self.pool)
                .await?;
        let after_last = last.map_or(0, |(v,)| {
            u32::try_from(v).unwrap_or(u32::MAX).saturating_add(1)
        });
        let epoch = after_last.max(u32::try_from(now_secs()).unwrap_or(u32::MAX));
        sqlx::query("INSERT OR REPLACE INTO lorabridge_meta (name, value) VALUES ('epoch', ?)")
            .bind(i64::from(epoch))
            .execute(&self.pool)
            .await?;
        Ok(epoch)
    }

    /// The radio's transmissions of the last hour before now: (how long ago each started,
    /// its airtime), oldest first. One dated in the future (the clock went back since) counts
    /// as just now, so the budget is never over-estimated as free. Older rows are deleted.
    pub async fn airtime_last_hour(&self) -> Result<Vec<(Duration, Duration)>, BridgeDbError> {
        self.airtime_last_hour_at(&Stamp::now()).await
    }

    async fn airtime_last_hour_at(
        &self,
        now: &Stamp,
    ) -> Result<Vec<(Duration, Duration)>, BridgeDbError> {
        self.forget_older("lorabridge_sends", now, Duration::from_secs(3600))
            .await?;
        let rows: Vec<(i64, String, i64, bool, i64)> = sqlx::query_as(
            "SELECT wall_ms, boot, boot_ms, synced, airtime_us FROM lorabridge_sends",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut sends: Vec<(Duration, Duration)> = rows
            .into_iter()
            .map(|(wall_ms, boot, boot_ms, synced, airtime)| {
                let airtime = Duration::from_micros(u64::try_from(airtime).unwrap_or(0));
                (stamp(wall_ms, boot, boot_ms, synced).age_at(now), airtime)
            })
            .collect();
        sends.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(sends)
    }

    /// A writer for the actor's loop, which never waits: heard ids and radio sends.
    pub fn writer(&self) -> BridgeDbWriter {
        let (tx, mut rx) = mpsc::channel::<Record>(WRITE_QUEUE);
        let pool = self.pool.clone();
        tokio::spawn(async move {
            while let Some(record) = rx.recv().await {
                let result = match record {
                    Record::Heard { transport, id } => sqlx::query(
                        "INSERT OR IGNORE INTO lorabridge_heard (transport, op_id) VALUES (?, ?)",
                    )
                    .bind(transport)
                    .bind(id.to_vec())
                    .execute(&pool)
                    .await
                    .map(drop),
                    Record::Airtime { at, airtime } => insert_send(&pool, &at, airtime).await,
                };
                if let Err(e) = result {
                    tracing::warn!("cannot write the bridge's state: {e}");
                }
            }
        });
        BridgeDbWriter { tx }
    }

    /// Whether `key` was used for a publish in `topic` within the retention window.
    pub async fn key_used(&self, topic: &[u8; 32], key: &[u8]) -> Result<bool, BridgeDbError> {
        self.key_used_at(topic, key, &Stamp::now()).await
    }

    async fn key_used_at(
        &self,
        topic: &[u8; 32],
        key: &[u8],
        now: &Stamp,
    ) -> Result<bool, BridgeDbError> {
        self.expire_keys(now).await?;
        let row: Option<(i64, String, i64, bool)> = sqlx::query_as(
            "SELECT wall_ms, boot, boot_ms, synced FROM lorabridge_keys WHERE topic = ? AND key = ?",
        )
        .bind(&topic[..])
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some_and(|(wall_ms, boot, boot_ms, synced)| {
            stamp(wall_ms, boot, boot_ms, synced).age_at(now) < IDEMPOTENCY_RETENTION
        }))
    }

    /// Records `key` as used, once its publish is persisted by the node: a crash before this
    /// leaves the key unused, so a retry publishes again (at worst a duplicate, never a loss).
    pub async fn record_key(&self, topic: &[u8; 32], key: &[u8]) -> Result<(), BridgeDbError> {
        self.record_key_at(topic, key, &Stamp::now()).await
    }

    async fn record_key_at(
        &self,
        topic: &[u8; 32],
        key: &[u8],
        now: &Stamp,
    ) -> Result<(), BridgeDbError> {
        redate(&self.pool, "lorabridge_keys", now).await?;
        sqlx::query(
            "INSERT OR REPLACE INTO lorabridge_keys (topic, key, wall_ms, boot, boot_ms, synced) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&topic[..])
        .bind(key)
        .bind(now.wall_ms as i64)
        .bind(&now.boot)
        .bind(now.since_boot_ms as i64)
        .bind(now.synced)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes expired keys, at most once an hour of this boot.
    async fn expire_keys(&self, now: &Stamp) -> Result<(), BridgeDbError> {
        let now_secs = now.since_boot_ms / 1000;
        {
            let mut last = self.last_expiry.lock().unwrap_or_else(|p| p.into_inner());
            if *last != 0 && now_secs < *last + EXPIRY_EVERY.as_secs() {
                return Ok(());
            }
            *last = now_secs.max(1);
        }
        self.forget_older("lorabridge_keys", now, IDEMPOTENCY_RETENTION)
            .await
    }

    /// Deletes the rows of `table` (a table of ours with `wall_ms`, `boot`, `boot_ms` and
    /// `synced`) dated more than `age` before `now`, by the rule of [`Stamp::age_at`].
    async fn forget_older(
        &self,
        table: &str,
        now: &Stamp,
        age: Duration,
    ) -> Result<(), BridgeDbError> {
        let age_ms = age.as_millis() as u64;
        // A row of another boot dated before NTP answered is no older than this boot.
        let unsynced_may_go = now.unsynced_age_cap().is_none_or(|cap| cap > age_ms);
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE (boot = ? AND boot <> '' AND boot_ms < ?) \
             OR ((boot <> ? OR boot = '') AND wall_ms < ? AND (synced <> 0 OR ?))"
        ))
        .bind(&now.boot)
        .bind(now.since_boot_ms.saturating_sub(age_ms) as i64)
        .bind(&now.boot)
        .bind(now.wall_ms.saturating_sub(age_ms) as i64)
        .bind(unsynced_may_go)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Records a radio transmission that started at `at`.
async fn insert_send(pool: &SqlitePool, at: &Stamp, airtime: Duration) -> Result<(), sqlx::Error> {
    redate(pool, "lorabridge_sends", at).await?;
    sqlx::query(
        "INSERT INTO lorabridge_sends (wall_ms, boot, boot_ms, airtime_us, synced) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(at.wall_ms as i64)
    .bind(&at.boot)
    .bind(at.since_boot_ms as i64)
    .bind(airtime.as_micros() as i64)
    .bind(at.synced)
    .execute(pool)
    .await
    .map(drop)
}

/// Once the clock is synchronised, dates this boot's rows stamped before by the true time:
/// now's wall clock less their age on the boot clock. A later boot then ages them by the wall
/// clock like any other (see [`crate::boot_clock`]).
async fn redate(pool: &SqlitePool, table: &str, now: &Stamp) -> Result<(), sqlx::Error> {
    if !now.synced || now.boot.is_empty() {
        return Ok(());
    }
    sqlx::query(&redate_sql(table))
        .bind(now.wall_ms as i64)
        .bind(now.since_boot_ms as i64)
        .bind(&now.boot)
        .execute(pool)
        .await
        .map(drop)
}

/// The statement of [`redate`]: binds now's wall clock, now's boot clock and the boot.
fn redate_sql(table: &str) -> String {
    format!(
        "UPDATE {table} SET wall_ms = ? - (? - boot_ms), synced = 1 WHERE boot = ? AND synced = 0"
    )
}

/// A stamp as the tables keep it.
fn stamp(wall_ms: i64, boot: String, boot_ms: i64, synced: bool) -> Stamp {
    Stamp {
        wall_ms: u64::try_from(wall_ms).unwrap_or(0),
        boot,
        since_boot_ms: u64::try_from(boot_ms).unwrap_or(0),
        synced,
    }
}

enum Record {
    Heard {
        transport: &'static str,
        id: [u8; 32],
    },
    Airtime {
        at: Stamp,
        airtime: Duration,
    },
}

/// Writes the bridge's state off the caller's path; see [`BridgeDb::writer`].
#[derive(Clone)]
pub struct BridgeDbWriter {
    tx: mpsc::Sender<Record>,
}

impl BridgeDbWriter {
    /// An operation heard on `transport`, never to be echoed there.
    pub fn heard(&self, transport: &'static str, id: [u8; 32]) {
        self.send(Record::Heard { transport, id });
    }

    /// A radio transmission starting now, for the duty cycle after a restart. (Written
    /// when the frame is handed to the radio: a crash in the instant before the write lands
    /// forgets at most that frame.)
    pub fn airtime(&self, airtime: Duration) {
        self.send(Record::Airtime {
            at: Stamp::now(),
            airtime,
        });
    }

    fn send(&self, record: Record) {
        if self.tx.try_send(record).is_err() {
            tracing::warn!("the state writer is behind; a record was dropped");
        }
    }
}

/// One lock per idempotency key in use, so that concurrent publishes with the same key run
/// one after the other: the second sees the first's key recorded and does not publish again.
/// Bound: one entry per publish in flight; an entry goes when its last holder lets go.
#[derive(Clone, Default)]
pub struct KeyLocks {
    locks: Arc<Mutex<HashMap<([u8; 32], Vec<u8>), Arc<tokio::sync::Mutex<()>>>>>,
}

/// Held while a publish with a key runs.
pub struct KeyGuard {
    locks: KeyLocks,
    entry: ([u8; 32], Vec<u8>),
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl KeyLocks {
    pub async fn lock(&self, topic: &[u8; 32], key: &[u8]) -> KeyGuard {
        let entry = (*topic, key.to_vec());
        let lock = self
            .locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(entry.clone())
            .or_default()
            .clone();
        KeyGuard {
            locks: self.clone(),
            entry,
            _guard: lock.lock_owned().await,
        }
    }
}

impl Drop for KeyGuard {
    fn drop(&mut self) {
        let mut locks = self.locks.locks.lock().unwrap_or_else(|p| p.into_inner());
        // Ours is the map's reference plus the guard's: nobody else waits for this key.
        if locks
            .get(&self.entry)
            .is_some_and(|lock| Arc::strong_count(lock) <= 2)
        {
            locks.remove(&self.entry);
        }
    }
}

/// `lorabridge.sqlite` → `lorabridge.sqlite.bridge-state`.
pub fn state_path(node_database: &Path) -> std::path::PathBuf {
    let mut name = node_database.as_os_str().to_owned();
    name.push(".bridge-state");
    name.into()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn epochs_only_grow() {
        let state = BridgeDb::open(None).await.unwrap();
        let first = state.next_epoch().await.unwrap();
        assert!(u64::from(first) >= now_secs() - 1);
        // A clock set back by a day does not turn the epoch back.
        sqlx::query("UPDATE lorabridge_meta SET value = ? WHERE name = 'epoch'")
            .bind(i64::from(first) + 86_400)
            .execute(&state.pool)
            .await
            .unwrap();
        assert_eq!(state.next_epoch().await.unwrap(), first + 86_401);
    }

    fn stamp_at(wall_s: u64, boot: &str, since_boot_s: u64) -> Stamp {
        Stamp {
            wall_ms: wall_s * 1000,
            boot: boot.into(),
            since_boot_ms: since_boot_s * 1000,
            synced: true,
        }
    }

    async fn send_at(state: &BridgeDb, at: &Stamp, airtime_us: u64) {
        insert_send(&state.pool, at, Duration::from_micros(airtime_us))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn the_last_hours_sends_come_back_oldest_first() {
        let state = BridgeDb::open(None).await.unwrap();
        let now = stamp_at(1_000_000, "b2", 50_000);
        // Two hours, ten minutes and one minute ago in this boot, one dated a minute ahead by
        // a boot of the past (the clock went back), and one of a past boot two hours ago.
        for (at, airtime_us) in [
            (stamp_at(0, "b2", 50_000 - 7_200), 1),
            (stamp_at(0, "b2", 50_000 - 600), 2),
            (stamp_at(0, "b2", 50_000 - 60), 3),
            (stamp_at(1_000_060, "b1", 10), 4),
            (stamp_at(1_000_000 - 7_200, "b1", 10), 5),
        ] {
            send_at(&state, &at, airtime_us).await;
        }
        let sends = state.airtime_last_hour_at(&now).await.unwrap();
        let airtimes: Vec<u128> = sends.iter().map(|(_, a)| a.as_micros()).collect();
        assert_eq!(airtimes, vec![2, 3, 4], "two hours ago is forgotten");
        assert_eq!(sends[0].0, Duration::from_secs(600));
        assert_eq!(sends[2].0, Duration::ZERO, "from the future counts as now");
    }

    /// #13, finding 8: a Pi without a battery clock boots at the time saved on its card and
    /// NTP moves it forward later. Sends and keys dated before that jump keep their true age
    /// within the boot: the duty cycle and the idempotency window hold across a restart.
    #[tokio::test]
    async fn a_clock_jump_in_one_boot_ages_neither_sends_nor_keys() {
        let state = BridgeDb::open(None).await.unwrap();
        let before = stamp_at(1_000_000, "b1", 100);
        send_at(&state, &before, 7).await;
        state.record_key_at(&[1; 32], b"k", &before).await.unwrap();
        // NTP moves the clock three days forward; ten minutes of the boot have passed.
        let after = stamp_at(1_000_000 + 3 * 86_400 + 600, "b1", 700);
        let sends = state.airtime_last_hour_at(&after).await.unwrap();
        assert_eq!(
            sends,
            vec![(Duration::from_secs(600), Duration::from_micros(7))]
        );
        assert!(state.key_used_at(&[1; 32], b"k", &after).await.unwrap());
        // The key still expires after the retention of this boot's time.
        let expired = stamp_at(after.wall_ms / 1000, "b1", 100 + 48 * 3600);
        assert!(!state.key_used_at(&[1; 32], b"k", &expired).await.unwrap());
        // After a reboot the wall clock dates them.
        let rebooted = stamp_at(1_000_000 + 1_800, "b2", 20);
        state.record_key_at(&[2; 32], b"k", &before).await.unwrap();
        assert!(state.key_used_at(&[2; 32], b"k", &rebooted).await.unwrap());
        let sends = state.airtime_last_hour_at(&rebooted).await.unwrap();
        assert_eq!(
            sends,
            vec![(Duration::from_secs(1_800), Duration::from_micros(7))]
        );
    }

    /// #13, the duty cycle across a reboot before NTP: a Pi boots at the time saved on its
    /// card (day 10), sends 300 s within ten minutes, and crash-loops into a boot whose NTP has
    /// set the true time (day 12). By the wall clock those sends are two days old and the
    /// new boot would get a fresh hour; they are counted until the new boot has run an hour.
    #[tokio::test]
    async fn sends_dated_before_ntp_still_count_after_a_reboot_that_has_ntp() {
        let state = BridgeDb::open(None).await.unwrap();
        let unsynced = |at: Stamp| Stamp {
            synced: false,
            ..at
        };
        for minute in 0..10 {
            let at = unsynced(stamp_at(10 * 86_400 + 60 * minute, "b1", 100 + 60 * minute));
            send_at(&state, &at, 30_000_000).await;
        }
        let day_12 = 12 * 86_400;
        let total = |sends: Vec<(Duration, Duration)>| -> Duration {
            sends.iter().map(|(_, airtime)| *airtime).sum()
        };
        let rebooted = stamp_at(day_12, "b2", 30);
        let sends = state.airtime_last_hour_at(&rebooted).await.unwrap();
        assert_eq!(total(sends.clone()), Duration::from_secs(300));
        assert!(sends.iter().all(|(age, _)| *age == Duration::from_secs(30)));
        // An hour into the new boot they are gone, and deleted.
        let later = stamp_at(day_12 + 3_601, "b2", 3_631);
        assert_eq!(state.airtime_last_hour_at(&later).await.unwrap(), vec![]);
        let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM lorabridge_sends")
            .fetch_one(&state.pool)
            .await
            .unwrap();
        assert_eq!(rows, 0);
    }

    /// Once NTP answers in the boot that sent, its earlier sends are re-dated by the boot
    /// clock, so a later boot ages them by their true time, not by its own uptime.
    #[tokio::test]
    async fn ntp_answering_re_dates_the_boots_earlier_sends() {
        let state = BridgeDb::open(None).await.unwrap();
        let early = Stamp {
            synced: false,
            ..stamp_at(10 * 86_400, "b1", 100)
        };
        send_at(&state, &early, 5).await;
        // NTP has set the true time (day 12) by 700 s into the boot; a send then.
        let day_12 = 12 * 86_400;
        send_at(&state, &stamp_at(day_12, "b1", 700), 6).await;
        // Rebooted 40 minutes later by the true clock, having run one minute.
        let rebooted = stamp_at(day_12 + 2_400, "b2", 60);
        let sends = state.airtime_last_hour_at(&rebooted).await.unwrap();
        assert_eq!(
            sends,
            vec![
                (Duration::from_secs(3_000), Duration::from_micros(5)),
                (Duration::from_secs(2_400), Duration::from_micros(6)),
            ]
        );
    }

    #[tokio::test]
    async fn re_dating_finds_the_rows_stamped_before_ntp_by_their_index() {
        let state = BridgeDb::open(None).await.unwrap();
        for table in ["lorabridge_sends", "lorabridge_keys"] {
            let plan: Vec<(i64, i64, i64, String)> =
                sqlx::query_as(&format!("EXPLAIN QUERY PLAN {}", redate_sql(table)))
                    .bind(0)
                    .bind(0)
                    .bind("b1")
                    .fetch_all(&state.pool)
                    .await
                    .unwrap();
            let index = format!("USING INDEX {table}_unsynced");
            assert!(plan.iter().any(|row| row.3.contains(&index)), "{plan:?}");
        }
    }

    #[tokio::test]
    async fn an_upgrade_keeps_the_sends_and_keys_dated_by_the_wall_clock() {
        let dir = tempfile::tempdir().unwrap();
        let node_db = dir.path().join("lorabridge.sqlite");
        let options = SqliteConnectOptions::new()
            .filename(state_path(&node_db))
            .create_if_missing(true);
        let old = SqlitePool::connect_with(options).await.unwrap();
        let wall_ms = Stamp::now().wall_ms as i64;
        for statement in [
            "CREATE TABLE lorabridge_airtime (sent_ms INTEGER NOT NULL, airtime_us INTEGER NOT NULL)",
            "CREATE TABLE lorabridge_publish_keys (topic BLOB NOT NULL, key BLOB NOT NULL, created_secs INTEGER NOT NULL, PRIMARY KEY (topic, key))",
        ] {
            sqlx::query(statement).execute(&old).await.unwrap();
        }
        sqlx::query("INSERT INTO lorabridge_airtime VALUES (?, 9)")
            .bind(wall_ms - 60_000)
            .execute(&old)
            .await
            .unwrap();
        sqlx::query("INSERT INTO lorabridge_publish_keys VALUES (?, ?, ?)")
            .bind(&[3u8; 32][..])
            .bind(&b"k"[..])
            .bind(wall_ms / 1000 - 60)
            .execute(&old)
            .await
            .unwrap();
        old.close().await;
        let state = BridgeDb::open(Some(&node_db)).await.unwrap();
        let sends = state.airtime_last_hour().await.unwrap();
        assert_eq!(sends.len(), 1);
        assert_eq!(sends[0].1, Duration::from_micros(9));
        assert!(sends[0].0 >= Duration::from_secs(59));
        assert!(state.key_used(&[3; 32], b"k").await.unwrap());
    }

    #[tokio::test]
    async fn a_key_is_used_only_once_recorded() {
        let state = BridgeDb::open(None).await.unwrap();
        let topic = [1; 32];
        assert!(!state.key_used(&topic, b"k").await.unwrap());
        state.record_key(&topic, b"k").await.unwrap();
        assert!(state.key_used(&topic, b"k").await.unwrap());
        assert!(
            !state.key_used(&[2; 32], b"k").await.unwrap(),
            "keys are per topic"
        );
    }

    #[tokio::test]
    async fn key_locks_serialise_one_key_and_are_forgotten_after() {
        let locks = KeyLocks::default();
        let first = locks.lock(&[1; 32], b"k").await;
        let other = locks.lock(&[1; 32], b"other").await;
        let waiting = {
            let locks = locks.clone();
            tokio::spawn(async move {
                let _second = locks.lock(&[1; 32], b"k").await;
            })
        };
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "the same key waits for the first holder"
        );
        drop(first);
        waiting.await.unwrap();
        drop(other);
        assert!(
            locks.locks.lock().unwrap().is_empty(),
            "no entry outlives its holders"
        );
    }

    #[tokio::test]
    async fn heard_ids_come_back_newest_first_and_bounded() {
        let state = BridgeDb::open(None).await.unwrap();
        let writer = state.writer();
        for i in 0..5u8 {
            writer.heard("lora", [i; 32]);
        }
        let mut heard = Vec::new();
        for _ in 0..100 {
            heard = state.heard("lora", 3).await.unwrap();
            if heard.first() == Some(&[4; 32]) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(heard, vec![[4; 32], [3; 32], [2; 32]]);
    }
}
