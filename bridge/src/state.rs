//! The bridge's own persisted state: operations heard on each mesh transport (never echoed,
//! even after a restart) and gRPC idempotency keys.
//!
//! It lives in a SQLite file of its own beside the node's database, never in the node's: p2panda
//! serialises the transactions of its store, and a writer outside it can make one of p2panda's
//! actors fail on a busy database (seen in release builds at start-up).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

/// How long a Publish idempotency key is remembered (as LoRes does).
pub const IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(48 * 3600);

#[derive(Clone)]
pub struct State {
    pool: SqlitePool,
}

impl State {
    /// Opens (or creates) the state file beside the node's database, or an in-memory state.
    pub async fn open(node_database: Option<&Path>) -> Result<Self, String> {
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
            .await
            .map_err(|e| format!("cannot open the bridge's state database: {e}"))?;
        for statement in [
            "CREATE TABLE IF NOT EXISTS lorabridge_heard (transport TEXT NOT NULL, op_id BLOB NOT NULL, PRIMARY KEY (transport, op_id))",
            "CREATE TABLE IF NOT EXISTS lorabridge_idempotency (app_id TEXT NOT NULL, instance_id TEXT NOT NULL, key BLOB NOT NULL, created_secs INTEGER NOT NULL, PRIMARY KEY (app_id, instance_id, key))",
        ] {
            sqlx::query(statement)
                .execute(&pool)
                .await
                .map_err(|e| format!("cannot prepare the database: {e}"))?;
        }
        Ok(Self { pool })
    }

    pub async fn heard(&self, transport: &str) -> Result<Vec<[u8; 32]>, String> {
        let rows: Vec<(Vec<u8>,)> =
            sqlx::query_as("SELECT op_id FROM lorabridge_heard WHERE transport = ?")
                .bind(transport)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| e.to_string())?;
        Ok(rows
            .into_iter()
            .filter_map(|(id,)| id.try_into().ok())
            .collect())
    }

    pub async fn record_heard(&self, transport: &str, id: &[u8; 32]) -> Result<(), String> {
        sqlx::query("INSERT OR IGNORE INTO lorabridge_heard (transport, op_id) VALUES (?, ?)")
            .bind(transport)
            .bind(&id[..])
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Claims an idempotency key: `true` if it is new (publish), `false` if it was used within
    /// the retention window (succeed without publishing). Claiming first makes two concurrent
    /// identical requests publish once.
    pub async fn claim_key(
        &self,
        app_id: &str,
        instance_id: &str,
        key: &[u8],
    ) -> Result<bool, String> {
        let now = now_secs();
        let expired = now.saturating_sub(IDEMPOTENCY_RETENTION.as_secs()) as i64;
        sqlx::query("DELETE FROM lorabridge_idempotency WHERE created_secs < ?")
            .bind(expired)
            .execute(&self.pool)
            .await
            .map_err(|e| e.to_string())?;
        let inserted = sqlx::query(
            "INSERT OR IGNORE INTO lorabridge_idempotency (app_id, instance_id, key, created_secs) VALUES (?, ?, ?, ?)",
        )
        .bind(app_id)
        .bind(instance_id)
        .bind(key)
        .bind(now as i64)
        .execute(&self.pool)
        .await
        .map_err(|e| e.to_string())?;
        Ok(inserted.rows_affected() == 1)
    }

    /// Releases a claimed key whose publish failed, so a retry can publish.
    pub async fn release_key(
        &self,
        app_id: &str,
        instance_id: &str,
        key: &[u8],
    ) -> Result<(), String> {
        sqlx::query(
            "DELETE FROM lorabridge_idempotency WHERE app_id = ? AND instance_id = ? AND key = ?",
        )
        .bind(app_id)
        .bind(instance_id)
        .bind(key)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
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
