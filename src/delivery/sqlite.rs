//! The embedded [`DeliveryStore`]: one SQLite file (`deliveries.sqlite3`) under `data_dir`.
//!
//! - **WAL with `synchronous=FULL`**: every commit appends to the write-ahead log and fsyncs
//!   it before returning, so an acknowledged event survives a crash *and* a power loss
//!   (`NORMAL` would only survive a process crash: the last commits could roll back on power
//!   loss, i.e. acknowledged events lost).
//! - **`locking_mode=EXCLUSIVE`**: the process that opens the store holds it until it exits.
//!   A second hookgate on the same `data_dir` gets [`StoreError::Locked`] at start-up rather
//!   than delivering the same events twice. (It also keeps WAL's index in process memory.)
//! - One **dedicated thread** owns the connection; async callers send it work and await the
//!   answer, so no blocking call runs on the runtime. Enqueues that arrive while a commit is
//!   in flight are written together in the next transaction (group commit: one fsync for
//!   many acknowledgements).
//! - A schema version table; an unknown version, a file that is not SQLite, a damaged one
//!   (`PRAGMA quick_check`) or a locked one is a typed start-up error naming the path.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};
use tokio::sync::oneshot;

use super::store::*;

/// The store's file name under `data_dir`.
pub const FILE_NAME: &str = "deliveries.sqlite3";

/// The schema version this code writes and reads.
pub const SCHEMA_VERSION: i64 = 1;

/// Enqueues written in one transaction at most.
const MAX_BATCH: usize = 256;

const SCHEMA: &str = "
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT,
    body BLOB NOT NULL,
    headers BLOB NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    lease_until_ms INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    cycle_base INTEGER NOT NULL DEFAULT 0,
    cycle_started_ms INTEGER,
    reason TEXT,
    finished_ms INTEGER,
    UNIQUE (target, event_id)
);
CREATE INDEX deliveries_due ON deliveries (target, state, next_attempt_ms);
CREATE INDEX deliveries_state ON deliveries (state, id);
CREATE TABLE attempts (
    delivery_id INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    started_ms INTEGER NOT NULL,
    latency_ms INTEGER NOT NULL,
    status INTEGER,
    error TEXT,
    PRIMARY KEY (delivery_id, number)
) WITHOUT ROWID;
CREATE TABLE targets (
    name TEXT PRIMARY KEY,
    mode INTEGER NOT NULL,
    reason TEXT,
    consecutive_failures INTEGER NOT NULL,
    failing_since_ms INTEGER,
    changed_ms INTEGER NOT NULL
);
";

/// How to open the store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// The folder holding [`FILE_NAME`]; created when missing.
    pub data_dir: PathBuf,
    /// How long to wait for a lock at start-up before [`StoreError::Locked`].
    pub busy_timeout: Duration,
    /// Run `PRAGMA quick_check` at start-up (reads the whole file once).
    pub check_on_open: bool,
}

impl SqliteOptions {
    /// Defaults: 1 s lock wait, checked at start-up.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        SqliteOptions {
            data_dir: data_dir.into(),
            busy_timeout: Duration::from_secs(1),
            check_on_open: true,
        }
    }
}

/// Work for the store's thread.
pub(super) type Work = Box<dyn FnOnce(&mut Db) + Send>;

pub(super) struct EnqueueOp {
    pub delivery: NewDelivery,
    pub now_ms: i64,
    pub reply: oneshot::Sender<Result<Enqueued, StoreError>>,
}

enum Op {
    Enqueue(EnqueueOp),
    Run(Work),
}

/// The connection, owned by the store's thread.
pub(super) struct Db {
    pub conn: Connection,
    stats: Arc<Mutex<CommitStats>>,
}

impl Db {
    /// Commits `tx`, timing the commit (its fsync).
    pub(super) fn commit(&self, tx: rusqlite::Transaction<'_>) -> Result<(), StoreError> {
        let started = Instant::now();
        tx.commit().map_err(backend)?;
        let secs = started.elapsed().as_secs_f64();
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        stats.commits += 1;
        stats.total_secs += secs;
        stats.last_secs = secs;
        stats.max_secs = stats.max_secs.max(secs);
        Ok(())
    }
}

/// A backend error of a running store.
pub(super) fn backend(error: rusqlite::Error) -> StoreError {
    StoreError::Backend(error.to_string())
}

/// The SQLite delivery store. Cheap to share behind an `Arc`; dropping the last handle stops
/// its thread (every acknowledged write is already on disk).
pub struct SqliteStore {
    ops: mpsc::Sender<Op>,
    stats: Arc<Mutex<CommitStats>>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (or creates) `data_dir/deliveries.sqlite3` with the default options.
    pub fn open(data_dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        Self::open_with(&SqliteOptions::new(data_dir))
    }

    /// Opens (or creates) the store: a blocking call, made once at start-up.
    pub fn open_with(options: &SqliteOptions) -> Result<Self, StoreError> {
        let path = options.data_dir.join(FILE_NAME);
        std::fs::create_dir_all(&options.data_dir).map_err(|e| StoreError::Open {
            path: path.clone(),
            detail: format!("cannot create the data_dir: {e}"),
        })?;
        let conn = open_connection(&path, options).map_err(|e| start_error(&path, e))?;
        let stats = Arc::new(Mutex::new(CommitStats::default()));
        let db = Db {
            conn,
            stats: stats.clone(),
        };
        let (ops, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("delivery-store".into())
            .spawn(move || run(db, rx))
            .map_err(|e| StoreError::Open {
                path: path.clone(),
                detail: format!("cannot start the store thread: {e}"),
            })?;
        Ok(SqliteStore { ops, stats, path })
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` on the store's thread and awaits its answer.
    pub(super) fn call<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Db) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<'_, T> {
        let (tx, rx) = oneshot::channel();
        let sent = self.ops.send(Op::Run(Box::new(move |db| {
            let _ = tx.send(work(db));
        })));
        Box::pin(async move {
            sent.map_err(|_| StoreError::Closed)?;
            rx.await.map_err(|_| StoreError::Closed)?
        })
    }

    pub(super) fn send_enqueue(&self, op: EnqueueOp) -> Result<(), StoreError> {
        self.ops
            .send(Op::Enqueue(op))
            .map_err(|_| StoreError::Closed)
    }

    pub(super) fn stats(&self) -> CommitStats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn open_connection(path: &Path, options: &SqliteOptions) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(options.busy_timeout)?;
    // Exclusive first, so WAL never uses shared memory and the lock is held from now on.
    conn.query_row("PRAGMA locking_mode = EXCLUSIVE", [], |_| Ok(()))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            Some(format!("the journal mode stayed `{mode}`, not WAL")),
        ));
    }
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
    migrate(&mut conn)?;
    if options.check_on_open {
        let verdict: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        if verdict != "ok" {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                Some(verdict),
            ));
        }
    }
    Ok(conn)
}

/// A version found that this code does not know, smuggled through rusqlite's error.
const VERSION_MARK: &str = "hookgate-schema-version:";

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let found: Option<i64> = tx
        .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
        .unwrap_or(None);
    match found {
        None => {
            tx.execute_batch(SCHEMA)?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                [SCHEMA_VERSION],
            )?;
        }
        Some(SCHEMA_VERSION) => {}
        Some(other) => {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISMATCH),
                Some(format!("{VERSION_MARK}{other}")),
            ))
        }
    }
    tx.commit()
}

/// A start-up error, typed by what is wrong with the file.
fn start_error(path: &Path, error: rusqlite::Error) -> StoreError {
    let path = path.to_path_buf();
    let detail = error.to_string();
    if let Some(found) = detail
        .strip_prefix(VERSION_MARK)
        .and_then(|v| v.parse().ok())
    {
        return StoreError::Version {
            path,
            found,
            supported: SCHEMA_VERSION,
        };
    }
    match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Locked { path, detail }
        }
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            StoreError::Corrupt { path, detail }
        }
        _ => StoreError::Open { path, detail },
    }
}

/// The store thread: runs work in order; consecutive enqueues share one commit.
fn run(mut db: Db, rx: mpsc::Receiver<Op>) {
    let mut held: Option<Op> = None;
    loop {
        let op = match held.take() {
            Some(op) => op,
            None => match rx.recv() {
                Ok(op) => op,
                Err(_) => return,
            },
        };
        match op {
            Op::Run(work) => work(&mut db),
            Op::Enqueue(first) => {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(Op::Enqueue(next)) => batch.push(next),
                        Ok(other) => {
                            held = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                db.enqueue_batch(batch);
            }
        }
    }
}
