//! The sync engine's view of the node's operations, answered from the node's SQLite.
//!
//! The node's database is the one source of truth. In memory the engine keeps only what it
//! needs without waiting, per log: its height and the id of its last operation (the backlink
//! of the next one, which compact operations leave out). Bodies are fetched from the
//! database when a send needs them: [`NodeStore::get`] answers `Loading` and queues a
//! request, the actor runs [`fetch`] off its loop and hands the result back with
//! [`NodeStore::fulfil`].
//!
//! Memory bounds: the log index is O(logs) (about 100 bytes per author per topic), whatever
//! the history; operations received from the mesh and not yet persisted by the node are held
//! until the node confirms them (at most the actor's import backlog, `MAX_IMPORT_BACKLOG`
//! operations of at most `MAX_OP_BYTES`); fetched bodies are cached up to `CACHE_OPS`
//! operations and `CACHE_BYTES` bytes; pending requests up to `MAX_REQUESTS`.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use lorabridge_proto::RawOp;
use lorabridge_proto::engine::{Lookup, OpStore};
use lorabridge_proto::recent::RecentIds;
use p2panda::Topic;
use p2panda::operation::{LogId, Operation};
use p2panda_core::{Hash, SeqNum, VerifyingKey};
use p2panda_store::SqliteStore;
use p2panda_store::logs::LogStore;
use p2panda_store::topics::TopicStore;

/// An operation's place: (topic, author, seq).
pub type OpKey = ([u8; 32], [u8; 32], u64);

/// Fetched bodies kept for sends: an answer to a Vector or Want is at most 32 operations per
/// link, so this covers the answers in flight on a few links at once.
const CACHE_OPS: usize = 512;
const CACHE_BYTES: usize = 2 << 20;
/// Operations asked for and not yet fetched; more are asked again on a later poll.
const MAX_REQUESTS: usize = 256;
/// Operations the database did not have although below their log's height (pruned): not
/// asked for again.
const MAX_ABSENT: usize = 1024;

/// A log's first seq held (above 0 once pruned), height and the id of its last operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tip {
    first: u64,
    height: u64,
    last: [u8; 32],
}

/// See the module docs.
pub struct NodeStore {
    /// topic → author → tip, sorted so that the engine's walks (and sends) keep one order.
    logs: HashMap<[u8; 32], BTreeMap<[u8; 32], Tip>>,
    /// Operations the engine stored that the node has not confirmed as persisted.
    unpersisted: HashMap<OpKey, RawOp>,
    cache: Cache,
    requests: VecDeque<OpKey>,
    requested: HashSet<OpKey>,
    absent: RecentIds,
}

impl NodeStore {
    /// The index of `topics`, read from the node's database.
    pub async fn load(store: &SqliteStore, topics: &[[u8; 32]]) -> Result<Self, String> {
        let mut logs = HashMap::new();
        for topic in topics {
            logs.insert(*topic, tips(store, topic).await?);
        }
        Ok(Self {
            logs,
            unpersisted: HashMap::new(),
            cache: Cache::default(),
            requests: VecDeque::new(),
            requested: HashSet::new(),
            absent: RecentIds::new(MAX_ABSENT),
        })
    }

    /// The node persisted this operation: it no longer needs holding here.
    pub fn persisted(&mut self, key: &OpKey) {
        if let Some(op) = self.unpersisted.remove(key) {
            self.cache.insert(*key, op);
        }
    }

    /// The node refused to persist this operation (it is logged by the caller).
    pub fn refused(&mut self, key: &OpKey) {
        self.unpersisted.remove(key);
    }

    /// Operations the engine asked for, to fetch. They stay asked for until fulfilled, so
    /// the same read is not started twice.
    pub fn take_requests(&mut self) -> Vec<OpKey> {
        self.requests.drain(..).collect()
    }

    /// What a fetch found (`Some`) or did not find (`None`) for `key`.
    pub fn fulfil(&mut self, key: OpKey, op: Option<RawOp>) {
        self.requested.remove(&key);
        match op {
            Some(op) => self.cache.insert(key, op),
            None => {
                self.absent.insert(absent_id(&key));
            }
        }
    }

    fn tip(&self, topic: &[u8; 32], author: &[u8; 32]) -> Option<&Tip> {
        self.logs.get(topic)?.get(author)
    }
}

impl OpStore for NodeStore {
    fn heights(&self, topic: &[u8; 32]) -> Vec<([u8; 32], u64)> {
        self.logs
            .get(topic)
            .map(|logs| logs.iter().map(|(a, t)| (*a, t.height)).collect())
            .unwrap_or_default()
    }

    fn first(&self, topic: &[u8; 32], author: &[u8; 32]) -> u64 {
        self.tip(topic, author).map_or(0, |t| t.first)
    }

    fn get(&mut self, topic: &[u8; 32], author: &[u8; 32], seq: u64) -> Lookup {
        let key = (*topic, *author, seq);
        if let Some(op) = self.unpersisted.get(&key).or_else(|| self.cache.get(&key)) {
            return Lookup::Held(op.clone());
        }
        let held = self
            .tip(topic, author)
            .is_some_and(|t| (t.first..t.height).contains(&seq));
        if !held || self.absent.contains(&absent_id(&key)) {
            return Lookup::Absent;
        }
        if self.requested.len() < MAX_REQUESTS && self.requested.insert(key) {
            self.requests.push_back(key);
        }
        Lookup::Loading
    }

    fn op_id(&self, topic: &[u8; 32], author: &[u8; 32], seq: u64) -> Option<[u8; 32]> {
        let key = (*topic, *author, seq);
        if let Some(op) = self.unpersisted.get(&key).or_else(|| self.cache.get(&key)) {
            return Some(op.id());
        }
        self.tip(topic, author)
            .filter(|t| t.height == seq + 1)
            .map(|t| t.last)
    }

    fn insert(&mut self, topic: &[u8; 32], author: &[u8; 32], seq: u64, op: RawOp) {
        let tip = self
            .logs
            .entry(*topic)
            .or_default()
            .entry(*author)
            .or_insert(Tip {
                first: seq,
                height: 0,
                last: [0; 32],
            });
        if op.prunes() {
            tip.first = seq;
        }
        if seq + 1 >= tip.height {
            tip.height = seq + 1;
            tip.last = op.id();
        }
        self.unpersisted.insert((*topic, *author, seq), op);
    }

    fn prefetch(&mut self, topic: &[u8; 32], author: &[u8; 32], seq: u64) {
        // A Loading answer queues the read; the op itself is asked for again when it is sent.
        let _ = self.get(topic, author, seq);
    }
}

/// A stand-in id for a key in the bounded `absent` set.
fn absent_id(key: &OpKey) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&key.0);
    hasher.update(&key.1);
    hasher.update(&key.2.to_be_bytes());
    *hasher.finalize().as_bytes()
}

/// Fetched bodies, oldest forgotten first.
#[derive(Default)]
struct Cache {
    ops: HashMap<OpKey, RawOp>,
    order: VecDeque<OpKey>,
    bytes: usize,
}

impl Cache {
    fn insert(&mut self, key: OpKey, op: RawOp) {
        let len = op.canonical_len();
        if let Some(old) = self.ops.insert(key, op) {
            self.bytes -= old.canonical_len();
        } else {
            self.order.push_back(key);
        }
        self.bytes += len;
        while self.ops.len() > CACHE_OPS || (self.bytes > CACHE_BYTES && self.ops.len() > 1) {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(op) = self.ops.remove(&oldest) {
                self.bytes -= op.canonical_len();
            }
        }
    }

    fn get(&self, key: &OpKey) -> Option<&RawOp> {
        self.ops.get(key)
    }
}

type Logs = BTreeMap<[u8; 32], Tip>;

/// Operations the node holds in `topic`.
pub async fn count(store: &SqliteStore, topic: &[u8; 32]) -> Result<u64, String> {
    Ok(tips(store, topic)
        .await?
        .values()
        .map(|t| t.height - t.first)
        .sum())
}

/// Every log of `topic` in the node's database, with its tip.
async fn tips(store: &SqliteStore, topic: &[u8; 32]) -> Result<Logs, String> {
    let authors = TopicStore::<Topic, VerifyingKey, LogId>::resolve(store, &Topic::from(*topic))
        .await
        .map_err(|e| format!("cannot read the topics of the node's database: {e}"))?;
    let mut tips = BTreeMap::new();
    for (author, log_ids) in authors {
        for log_id in log_ids {
            let latest =
                LogStore::<Operation, VerifyingKey, LogId, SeqNum, Hash>::get_latest_entry(
                    store, &author, &log_id,
                )
                .await
                .map_err(|e| format!("cannot read a log of the node's database: {e}"))?;
            let Some(op) = latest else {
                continue;
            };
            // A log holds a run of seqs up to its latest: p2panda deletes what a prune-flagged
            // operation replaces.
            let (held, _bytes) =
                LogStore::<Operation, VerifyingKey, LogId, SeqNum, Hash>::get_log_size(
                    store, &author, &log_id, None, None,
                )
                .await
                .map_err(|e| format!("cannot read a log of the node's database: {e}"))?
                .unwrap_or_default();
            let height = u64::from(op.header.seq_num) + 1;
            tips.insert(
                *author.as_bytes(),
                Tip {
                    first: height.saturating_sub(u64::from(held)),
                    height,
                    last: *op.hash.as_bytes(),
                },
            );
        }
    }
    Ok(tips)
}

/// Reads the operations at `keys` from the node's database, one query per run of seqs in a
/// log. Keys the database does not hold come back as `None`.
pub async fn fetch(store: SqliteStore, mut keys: Vec<OpKey>) -> Vec<(OpKey, Option<RawOp>)> {
    keys.sort_unstable();
    keys.dedup();
    let mut out = Vec::with_capacity(keys.len());
    let mut rest = &keys[..];
    while let Some(first) = rest.first().copied() {
        let run = rest
            .iter()
            .enumerate()
            .take_while(|(i, k)| (k.0, k.1) == (first.0, first.1) && k.2 == first.2 + *i as u64)
            .count();
        let (topic, author, from) = first;
        let to = from + run as u64 - 1;
        let found = read_run(&store, &topic, &author, from, to).await;
        for seq in from..=to {
            let op = found
                .iter()
                .find(|(s, _)| *s == seq)
                .map(|(_, op)| op.clone());
            out.push(((topic, author, seq), op));
        }
        rest = &rest[run..];
    }
    out
}

/// Operations `from..=to` of `author`'s log in `topic`, as held; a read error is logged and
/// counts as nothing held (the engine asks again on its next repair).
async fn read_run(
    store: &SqliteStore,
    topic: &[u8; 32],
    author: &[u8; 32],
    from: u64,
    to: u64,
) -> Vec<(u64, RawOp)> {
    let (Ok(author), Ok(from32), Ok(to32)) = (
        VerifyingKey::from_bytes(author),
        SeqNum::try_from(from),
        SeqNum::try_from(to),
    ) else {
        return Vec::new();
    };
    let log_id = LogId::from_topic(Topic::from(*topic));
    let after = from32.checked_sub(1);
    let entries = LogStore::<Operation, VerifyingKey, LogId, SeqNum, Hash>::get_log_entries(
        store,
        &author,
        &log_id,
        after,
        Some(to32),
    )
    .await;
    match entries {
        Ok(entries) => entries
            .unwrap_or_default()
            .into_iter()
            .map(|(operation, header)| {
                let op = RawOp {
                    header,
                    body: operation.body.as_ref().map(|b| b.to_bytes()),
                };
                (u64::from(operation.header.seq_num), op)
            })
            .collect(),
        Err(e) => {
            tracing::warn!("cannot read operations from the node's database: {e}");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> NodeStore {
        NodeStore {
            logs: HashMap::new(),
            unpersisted: HashMap::new(),
            cache: Cache::default(),
            requests: VecDeque::new(),
            requested: HashSet::new(),
            absent: RecentIds::new(MAX_ABSENT),
        }
    }

    fn op(n: u8) -> RawOp {
        RawOp {
            header: vec![n; 10],
            body: Some(vec![n; 100]),
        }
    }

    const T: [u8; 32] = [1; 32];
    const A: [u8; 32] = [2; 32];

    #[test]
    fn an_operation_on_disk_is_fetched_once_then_served() {
        let mut s = store();
        s.insert(&T, &A, 0, op(0));
        s.insert(&T, &A, 1, op(1));
        s.persisted(&(T, A, 0));
        s.persisted(&(T, A, 1));
        // Evict both from the cache, as a long history would.
        s.cache = Cache::default();
        assert_eq!(s.heights(&T), vec![(A, 2)]);
        assert_eq!(
            s.op_id(&T, &A, 1),
            Some(op(1).id()),
            "the last id is always known"
        );
        assert_eq!(s.op_id(&T, &A, 0), None, "older ids wait for a fetch");
        assert_eq!(s.get(&T, &A, 0), Lookup::Loading);
        assert_eq!(s.get(&T, &A, 0), Lookup::Loading);
        assert_eq!(s.take_requests(), vec![(T, A, 0)], "asked for once");
        s.fulfil((T, A, 0), Some(op(0)));
        assert_eq!(s.get(&T, &A, 0), Lookup::Held(op(0)));
        assert_eq!(s.get(&T, &A, 2), Lookup::Absent, "above the height");
    }

    #[test]
    fn an_operation_missing_from_disk_is_not_asked_for_again() {
        let mut s = store();
        s.insert(&T, &A, 0, op(0));
        s.insert(&T, &A, 5, op(5));
        s.persisted(&(T, A, 0));
        s.persisted(&(T, A, 5));
        assert_eq!(s.get(&T, &A, 3), Lookup::Loading);
        s.take_requests();
        s.fulfil((T, A, 3), None);
        assert_eq!(s.get(&T, &A, 3), Lookup::Absent);
        assert!(s.take_requests().is_empty());
    }

    #[test]
    fn a_prune_flagged_operation_moves_the_first_seq_held() {
        use lorabridge_proto::operation::{NewOp, sign};
        let key = p2panda_core::SigningKey::from_bytes(&[9; 32]);
        let author = *key.verifying_key().as_bytes();
        let pruned = sign(
            &key,
            &NewOp {
                topic: &T,
                seq: 40,
                backlink: Some([3; 32]),
                timestamp: 1,
                prune: true,
                body: None,
            },
        );
        let mut s = store();
        s.insert(&T, &author, 0, op(0));
        assert_eq!(s.first(&T, &author), 0);
        s.insert(&T, &author, 40, pruned);
        assert_eq!(s.first(&T, &author), 40);
        assert_eq!(s.heights(&T), vec![(author, 41)]);
        assert_eq!(
            s.get(&T, &author, 39),
            Lookup::Absent,
            "below the first: not asked for"
        );
        assert!(s.take_requests().is_empty());
    }

    #[test]
    fn the_cache_is_bounded_in_count_and_bytes() {
        let mut s = store();
        for seq in 0..(CACHE_OPS as u64 + 10) {
            s.cache.insert((T, A, seq), op(seq as u8));
        }
        assert_eq!(s.cache.ops.len(), CACHE_OPS);
        assert!(s.cache.get(&(T, A, 0)).is_none(), "the oldest went first");
        let big = RawOp {
            header: vec![0; 10],
            body: Some(vec![0; CACHE_BYTES]),
        };
        s.cache.insert((T, A, 9999), big);
        assert_eq!(s.cache.ops.len(), 1, "one oversized op pushes the rest out");
    }
}
