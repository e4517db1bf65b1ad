//! The phone's SQLite database: the session, one row per document (its Automerge bytes, the
//! heads the server is known to have and a dirty flag), the outbox of push batches that were
//! built but not yet answered, the pull cursor, the rejections to show the person, what the
//! phone knows about time (the server's clock against its monotonic clock, a manual clock) and
//! the attendance setup the server last sent, and the queue of photo bytes waiting to be uploaded.
//!
//! The schema carries a version in `PRAGMA user_version`; [`Store::open`] upgrades older files
//! step by step. Functions taking a `&Connection` also work inside a transaction (which derefs
//! to a connection), so a caller can group several of them atomically.

use crate::error::Result;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;

/// The schema version this build writes.
pub const VERSION: i64 = 6;

/// Version 1: everything a phone needs to work offline and sync.
const SCHEMA_V1: &str = "
-- Small key/value facts: device_id, cursor, last_sync_at_ms, data_owner.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- The logged-in session; at most one row.
CREATE TABLE session (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    server_url       TEXT NOT NULL,
    tenant_slug      TEXT NOT NULL,
    tenant_id        TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    role             TEXT NOT NULL,
    email            TEXT NOT NULL,
    access_token     TEXT NOT NULL,
    refresh_token    TEXT NOT NULL,
    -- local clock, ms since the epoch
    access_expires_at_ms INTEGER NOT NULL,
    -- server clock minus local clock, ms
    clock_offset_ms  INTEGER NOT NULL
);
-- One Automerge document per record.
CREATE TABLE docs (
    doc_id        TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    bytes         BLOB NOT NULL,
    -- JSON array of change hashes the server is known to have.
    server_heads  TEXT NOT NULL DEFAULT '[]',
    -- 1 while the document holds changes the server has not accepted.
    dirty         INTEGER NOT NULL DEFAULT 0,
    -- for listing without loading documents
    name          TEXT NOT NULL DEFAULT '',
    summary       TEXT NOT NULL DEFAULT '',
    updated_at_ms INTEGER NOT NULL
);
CREATE INDEX docs_kind_name ON docs (kind, name);
CREATE INDEX docs_dirty ON docs (dirty) WHERE dirty = 1;
-- Push batches persisted before they are sent, so a retry after a crash or timeout reuses
-- the same batch_id (the server answers a repeated batch_id with its first answer).
CREATE TABLE outbox_batches (
    batch_id      TEXT PRIMARY KEY,
    -- the PushRequest JSON exactly as sent
    body          TEXT NOT NULL,
    -- JSON object doc_id -> local heads when the batch was built
    sent_heads    TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);
-- Changes the server refused, to show the person.
CREATE TABLE rejections (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id   TEXT NOT NULL,
    code     TEXT NOT NULL,
    message  TEXT NOT NULL,
    at_ms    INTEGER NOT NULL
);
";

/// Version 2: `docs.heads` keeps the heads of the stored bytes, so sync need not decode a
/// document just to learn them (NULL: not known yet, decode once); `name` and `summary` may be
/// NULL for documents stored straight from a server snapshot without decoding them.
const SCHEMA_V2: &str = "
CREATE TABLE docs_v2 (
    doc_id        TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    -- Automerge bytes: a saved document, change chunks, or a saved document followed by change
    -- chunks (whatever the server sent); Automerge::load reads them all.
    bytes         BLOB NOT NULL,
    -- JSON array of change hashes the server is known to have.
    server_heads  TEXT NOT NULL DEFAULT '[]',
    -- JSON array of the heads of `bytes`; NULL when not known (decode to learn them).
    heads         TEXT,
    -- 1 while the document holds changes the server has not accepted.
    dirty         INTEGER NOT NULL DEFAULT 0,
    -- for listing without loading documents; NULL until the document is decoded and saved here
    name          TEXT,
    summary       TEXT,
    updated_at_ms INTEGER NOT NULL
);
INSERT INTO docs_v2 (doc_id, kind, bytes, server_heads, heads, dirty, name, summary, updated_at_ms)
    SELECT doc_id, kind, bytes, server_heads, NULL, dirty, name, summary, updated_at_ms FROM docs;
DROP TABLE docs;
ALTER TABLE docs_v2 RENAME TO docs;
CREATE INDEX docs_kind_name ON docs (kind, name);
CREATE INDEX docs_dirty ON docs (dirty) WHERE dirty = 1;
";

/// Version 3: `pending_changes` keeps the bytes of every local change as it was made, so a push
/// can send them as they are instead of decoding the document and re-encoding its changes. A
/// database upgraded from version 2 starts with none: documents dirty from before take the
/// decoding path.
const SCHEMA_V3: &str = "
CREATE TABLE IF NOT EXISTS pending_changes (
    -- the order the changes were made in (dependencies first)
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id  TEXT NOT NULL,
    -- the change's hash and its dependencies (JSON array of hashes)
    hash    TEXT NOT NULL,
    deps    TEXT NOT NULL,
    -- the change exactly as Automerge encoded it
    bytes   BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS pending_changes_doc ON pending_changes (doc_id, seq);
";

/// Version 4: what the phone knows about time, for dating field events made offline, and the
/// attendance setup the server last sent (the trust policy previews grade with, the sites the
/// worker is assigned to).
const SCHEMA_V4: &str = "
-- One row. The offset is `server time - monotonic time` learnt at the last pull; it holds only
-- within the boot it was learnt in (the monotonic clock starts again at every boot). The manual
-- clock, when set, replaces the system's clocks (simulators, tests, the CLI); NULL otherwise.
CREATE TABLE IF NOT EXISTS clock (
    id                   INTEGER PRIMARY KEY CHECK (id = 1),
    server_offset_ms     INTEGER,
    offset_boot_id       TEXT,
    -- wall clock when it was learnt, and the pull's round trip (half of it is the uncertainty)
    offset_learned_at_ms INTEGER,
    offset_round_trip_ms INTEGER,
    manual_wall_ms       INTEGER,
    manual_monotonic_ms  INTEGER,
    manual_boot_id       TEXT
);
INSERT OR IGNORE INTO clock (id) VALUES (1);
-- One row: GET /v1/attendance/me as last answered, for the logged-in user.
CREATE TABLE IF NOT EXISTS attendance_setup (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    -- trust::Policy as JSON
    policy        TEXT NOT NULL,
    -- JSON array of assignments (project, site, names, timezone, shift)
    assignments   TEXT NOT NULL,
    fetched_at_ms INTEGER NOT NULL
);
";

/// Version 5: the upload queue of photo bytes. A photo's record syncs like any other; its bytes
/// (a file of the device's own under `<data dir>/photos/`, named by their SHA-256) wait here
/// until the server holds them, across restarts. One row per distinct content: the same photo
/// attached twice is queued, stored and uploaded once.
const SCHEMA_V5: &str = "
CREATE TABLE IF NOT EXISTS uploads (
    -- 64 lower-case hex digits: the blob's address on the server and the file's name here
    sha256        TEXT PRIMARY KEY,
    size          INTEGER NOT NULL,
    mime          TEXT NOT NULL,
    -- the device's copy, relative to the data directory (which an app update may move)
    local_path    TEXT NOT NULL,
    -- queued: nothing sent yet; uploading: part sent; done: the server holds it whole;
    -- failed: will not be retried by itself (attaching the photo again queues it anew)
    state         TEXT NOT NULL DEFAULT 'queued'
                  CHECK (state IN ('queued', 'uploading', 'done', 'failed')),
    -- bytes the server was last known to hold (it is asked again before sending more)
    bytes_sent    INTEGER NOT NULL DEFAULT 0,
    -- upload runs that worked on it
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error_code TEXT,
    last_error    TEXT,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_state ON uploads (state, created_at_ms);
";

/// Version 6: a rejection keeps what the person wrote that the server refused (for a site
/// diary: the work text, items, crew and weather the reset removed), so it is not silently
/// lost when the document returns to the server's version.
const SCHEMA_V6: &str = "
-- JSON (model::DiaryKept for a diary); NULL when nothing was kept.
ALTER TABLE rejections ADD COLUMN kept TEXT;
";

/// Brings a database at `from` up to [`VERSION`].
fn upgrade_from(conn: &Connection, from: i64) -> Result<()> {
    if from < 1 {
        conn.execute_batch(SCHEMA_V1)?;
    }
    if from < 2 {
        conn.execute_batch(SCHEMA_V2)?;
    }
    if from < 3 {
        conn.execute_batch(SCHEMA_V3)?;
    }
    if from < 4 {
        conn.execute_batch(SCHEMA_V4)?;
    }
    if from < 5 {
        conn.execute_batch(SCHEMA_V5)?;
    }
    // ADD COLUMN has no IF NOT EXISTS: a file marked older than it is may already have it.
    let has_kept: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info('rejections') WHERE name = 'kept')",
        [],
        |r| r.get(0),
    )?;
    if from < 6 && !has_kept {
        conn.execute_batch(SCHEMA_V6)?;
    }
    conn.pragma_update(None, "user_version", VERSION)?;
    Ok(())
}

/// Runs one statement through the connection's statement cache.
fn exec<P: rusqlite::Params>(conn: &Connection, sql: &str, params: P) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// Queries one row through the connection's statement cache.
fn query_row<T, P: rusqlite::Params, F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>>(
    conn: &Connection,
    sql: &str,
    params: P,
    f: F,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, f)
}

/// Milliseconds since the epoch on the local clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The stored session.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionRow {
    pub server_url: String,
    pub tenant_slug: String,
    pub tenant_id: String,
    pub user_id: String,
    pub role: String,
    pub email: String,
    pub access_token: String,
    pub refresh_token: String,
    pub access_expires_at_ms: i64,
    pub clock_offset_ms: i64,
}

/// One stored document.
#[derive(Clone, Debug)]
pub struct DocRow {
    pub doc_id: String,
    pub kind: String,
    pub bytes: Vec<u8>,
    pub server_heads: Vec<String>,
    pub dirty: bool,
    /// The heads of `bytes`, if known without decoding them.
    pub heads: Option<Vec<String>>,
}

/// A document's sync bookkeeping, without its bytes.
#[derive(Clone, Debug)]
pub struct DocState {
    pub kind: String,
    pub server_heads: Vec<String>,
    pub dirty: bool,
    /// The heads of the stored bytes, if known without decoding them.
    pub heads: Option<Vec<String>>,
}

/// A persisted, unanswered push batch.
#[derive(Clone, Debug)]
pub struct BatchRow {
    pub batch_id: String,
    pub body: String,
    pub sent_heads: String,
}

/// A stored rejection.
#[derive(Clone, Debug)]
pub struct RejectionRow {
    pub doc_id: String,
    pub code: String,
    pub message: String,
    pub at_ms: i64,
    /// What the person wrote that the server refused, as JSON, if anything was kept.
    pub kept: Option<String>,
}

/// The open database.
#[derive(Debug)]
pub struct Store {
    pub conn: Connection,
}

impl Store {
    /// Opens (creating and upgrading as needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Every statement goes through `prepare_cached`; room for all of them.
        conn.set_prepared_statement_cache_capacity(64);
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > VERSION {
            return Err(crate::ClientError::Storage {
                code: "unsupported_database_version".into(),
                message: format!(
                    "The local database is version {version}; this app understands up to {VERSION}. Update the app."
                ),
            });
        }
        if version < VERSION {
            let tx = conn.unchecked_transaction()?;
            upgrade_from(&tx, version)?;
            tx.commit()?;
        }
        Ok(Store { conn })
    }
}

pub fn meta_get(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(
        query_row(conn, "SELECT value FROM meta WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .optional()?,
    )
}

pub fn meta_set(conn: &Connection, key: &str, value: &str) -> Result<()> {
    exec(
        conn,
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

pub fn meta_delete(conn: &Connection, key: &str) -> Result<()> {
    exec(conn, "DELETE FROM meta WHERE key = ?1", [key])?;
    Ok(())
}

pub fn session_get(conn: &Connection) -> Result<Option<SessionRow>> {
    Ok(query_row(
        conn,
            "SELECT server_url, tenant_slug, tenant_id, user_id, role, email, access_token, refresh_token,
                    access_expires_at_ms, clock_offset_ms FROM session WHERE id = 1",
            [],
            |r| {
                Ok(SessionRow {
                    server_url: r.get(0)?,
                    tenant_slug: r.get(1)?,
                    tenant_id: r.get(2)?,
                    user_id: r.get(3)?,
                    role: r.get(4)?,
                    email: r.get(5)?,
                    access_token: r.get(6)?,
                    refresh_token: r.get(7)?,
                    access_expires_at_ms: r.get(8)?,
                    clock_offset_ms: r.get(9)?,
                })
            },
        )
        .optional()?)
}

pub fn session_put(conn: &Connection, s: &SessionRow) -> Result<()> {
    exec(
        conn,
        "INSERT INTO session (id, server_url, tenant_slug, tenant_id, user_id, role, email, access_token, refresh_token,
                              access_expires_at_ms, clock_offset_ms)
         VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (id) DO UPDATE SET server_url = excluded.server_url, tenant_slug = excluded.tenant_slug,
             tenant_id = excluded.tenant_id, user_id = excluded.user_id, role = excluded.role, email = excluded.email,
             access_token = excluded.access_token, refresh_token = excluded.refresh_token,
             access_expires_at_ms = excluded.access_expires_at_ms, clock_offset_ms = excluded.clock_offset_ms",
        params![
            s.server_url,
            s.tenant_slug,
            s.tenant_id,
            s.user_id,
            s.role,
            s.email,
            s.access_token,
            s.refresh_token,
            s.access_expires_at_ms,
            s.clock_offset_ms
        ],
    )?;
    Ok(())
}

pub fn session_clear(conn: &Connection) -> Result<()> {
    exec(conn, "DELETE FROM session", [])?;
    Ok(())
}

/// Deletes every document, batch, rejection, upload, the cursor, the session, the attendance
/// setup and the server clock offset: what a revoked device must do (the photo files go with the
/// uploads: see `photos::remove_all`). The device id and a manual clock (properties of the
/// device, not of the account) stay.
pub fn purge(conn: &Connection) -> Result<()> {
    conn.execute_batch(
        "DELETE FROM docs; DELETE FROM pending_changes; DELETE FROM outbox_batches; DELETE FROM rejections; DELETE FROM session;
         DELETE FROM uploads;
         DELETE FROM meta WHERE key IN ('cursor', 'last_sync_at_ms', 'data_owner');
         DELETE FROM attendance_setup;
         UPDATE clock SET server_offset_ms = NULL, offset_boot_id = NULL, offset_learned_at_ms = NULL,
             offset_round_trip_ms = NULL;",
    )?;
    Ok(())
}

/// A clock set by hand: it stands still until it is moved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManualClock {
    pub wall_ms: i64,
    pub monotonic_ms: i64,
    pub boot_id: String,
}

/// The server's clock against the monotonic clock of one boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerOffset {
    /// Server time minus monotonic time, ms.
    pub offset_ms: i64,
    pub boot_id: String,
    /// Wall clock when it was learnt.
    pub learned_at_ms: i64,
    pub round_trip_ms: i64,
}

/// The `clock` row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClockRow {
    pub offset: Option<ServerOffset>,
    pub manual: Option<ManualClock>,
}

pub fn clock_get(conn: &Connection) -> Result<ClockRow> {
    Ok(query_row(
        conn,
        "SELECT server_offset_ms, offset_boot_id, offset_learned_at_ms, offset_round_trip_ms,
                manual_wall_ms, manual_monotonic_ms, manual_boot_id FROM clock WHERE id = 1",
        [],
        |r| {
            let offset = match (r.get::<_, Option<i64>>(0)?, r.get::<_, Option<String>>(1)?) {
                (Some(offset_ms), Some(boot_id)) => Some(ServerOffset {
                    offset_ms,
                    boot_id,
                    learned_at_ms: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
                    round_trip_ms: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
                }),
                _ => None,
            };
            let manual = match (
                r.get::<_, Option<i64>>(4)?,
                r.get::<_, Option<i64>>(5)?,
                r.get::<_, Option<String>>(6)?,
            ) {
                (Some(wall_ms), Some(monotonic_ms), Some(boot_id)) => Some(ManualClock {
                    wall_ms,
                    monotonic_ms,
                    boot_id,
                }),
                _ => None,
            };
            Ok(ClockRow { offset, manual })
        },
    )
    .optional()?
    .unwrap_or_default())
}

pub fn clock_set_offset(conn: &Connection, o: &ServerOffset) -> Result<()> {
    exec(
        conn,
        "INSERT INTO clock (id, server_offset_ms, offset_boot_id, offset_learned_at_ms, offset_round_trip_ms)
         VALUES (1, ?1, ?2, ?3, ?4)
         ON CONFLICT (id) DO UPDATE SET server_offset_ms = excluded.server_offset_ms,
             offset_boot_id = excluded.offset_boot_id, offset_learned_at_ms = excluded.offset_learned_at_ms,
             offset_round_trip_ms = excluded.offset_round_trip_ms",
        params![o.offset_ms, o.boot_id, o.learned_at_ms, o.round_trip_ms],
    )?;
    Ok(())
}

/// Sets the manual clock, or (`None`) goes back to the system's clocks.
pub fn clock_set_manual(conn: &Connection, m: Option<&ManualClock>) -> Result<()> {
    exec(
        conn,
        "INSERT INTO clock (id, manual_wall_ms, manual_monotonic_ms, manual_boot_id) VALUES (1, ?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET manual_wall_ms = excluded.manual_wall_ms,
             manual_monotonic_ms = excluded.manual_monotonic_ms, manual_boot_id = excluded.manual_boot_id",
        params![
            m.map(|m| m.wall_ms),
            m.map(|m| m.monotonic_ms),
            m.map(|m| m.boot_id.as_str())
        ],
    )?;
    Ok(())
}

/// The cached attendance setup: the policy and assignments as the server sent them (JSON).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttendanceSetupRow {
    pub policy: String,
    pub assignments: String,
    pub fetched_at_ms: i64,
}

pub fn attendance_setup_get(conn: &Connection) -> Result<Option<AttendanceSetupRow>> {
    Ok(query_row(
        conn,
        "SELECT policy, assignments, fetched_at_ms FROM attendance_setup WHERE id = 1",
        [],
        |r| {
            Ok(AttendanceSetupRow {
                policy: r.get(0)?,
                assignments: r.get(1)?,
                fetched_at_ms: r.get(2)?,
            })
        },
    )
    .optional()?)
}

pub fn attendance_setup_put(conn: &Connection, s: &AttendanceSetupRow) -> Result<()> {
    exec(
        conn,
        "INSERT INTO attendance_setup (id, policy, assignments, fetched_at_ms) VALUES (1, ?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET policy = excluded.policy, assignments = excluded.assignments,
             fetched_at_ms = excluded.fetched_at_ms",
        params![s.policy, s.assignments, s.fetched_at_ms],
    )?;
    Ok(())
}

fn heads_json(heads: &[String]) -> String {
    serde_json::to_string(heads).expect("BUG: a list of strings always serializes")
}

fn heads_parse(json: &str) -> Vec<String> {
    // A garbled heads column only costs a full resend.
    serde_json::from_str(json).unwrap_or_default()
}

fn doc_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DocRow> {
    let server_heads: String = r.get(3)?;
    let heads: Option<String> = r.get(5)?;
    Ok(DocRow {
        doc_id: r.get(0)?,
        kind: r.get(1)?,
        bytes: r.get(2)?,
        server_heads: heads_parse(&server_heads),
        dirty: r.get::<_, i64>(4)? != 0,
        heads: heads.and_then(|h| serde_json::from_str(&h).ok()),
    })
}

pub fn doc_get(conn: &Connection, doc_id: &str) -> Result<Option<DocRow>> {
    Ok(query_row(
        conn,
        "SELECT doc_id, kind, bytes, server_heads, dirty, heads FROM docs WHERE doc_id = ?1",
        [doc_id],
        doc_from_row,
    )
    .optional()?)
}

/// The sync bookkeeping of a document, without its bytes.
pub fn doc_state(conn: &Connection, doc_id: &str) -> Result<Option<DocState>> {
    Ok(query_row(
        conn,
        "SELECT kind, server_heads, dirty, heads FROM docs WHERE doc_id = ?1",
        [doc_id],
        |r| {
            let server_heads: String = r.get(1)?;
            let heads: Option<String> = r.get(3)?;
            Ok(DocState {
                kind: r.get(0)?,
                server_heads: heads_parse(&server_heads),
                dirty: r.get::<_, i64>(2)? != 0,
                heads: heads.and_then(|h| serde_json::from_str(&h).ok()),
            })
        },
    )
    .optional()?)
}

/// Every document of `kind` (all kinds if `None`), ordered by the name column (documents whose
/// listing columns are not filled yet come first; callers that show lists sort by the record).
pub fn docs_all(conn: &Connection, kind: Option<&str>) -> Result<Vec<DocRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT doc_id, kind, bytes, server_heads, dirty, heads FROM docs WHERE ?1 IS NULL OR kind = ?1 ORDER BY name, doc_id",
    )?;
    let rows = stmt
        .query_map([kind], doc_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn dirty_doc_ids(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT doc_id FROM docs WHERE dirty = 1 ORDER BY doc_id")?;
    let rows = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(rows)
}

pub fn count_docs(conn: &Connection, dirty_only: bool) -> Result<u64> {
    let n: i64 = query_row(
        conn,
        "SELECT COUNT(*) FROM docs WHERE ?1 = 0 OR dirty = 1",
        [dirty_only as i64],
        |r| r.get(0),
    )?;
    Ok(n as u64)
}

/// Inserts or replaces a document with all its columns. `heads` are the heads of `bytes`;
/// `listing` is (name, summary), `None` when the document was not decoded (filled later).
#[allow(clippy::too_many_arguments)]
pub fn doc_put(
    conn: &Connection,
    doc_id: &str,
    kind: &str,
    bytes: &[u8],
    server_heads: &[String],
    heads: &[String],
    dirty: bool,
    listing: Option<(&str, &str)>,
) -> Result<()> {
    exec(
        conn,
        "INSERT INTO docs (doc_id, kind, bytes, server_heads, heads, dirty, name, summary, updated_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (doc_id) DO UPDATE SET kind = excluded.kind, bytes = excluded.bytes,
             server_heads = excluded.server_heads, heads = excluded.heads, dirty = excluded.dirty,
             name = excluded.name, summary = excluded.summary, updated_at_ms = excluded.updated_at_ms",
        params![
            doc_id,
            kind,
            bytes,
            heads_json(server_heads),
            heads_json(heads),
            dirty as i64,
            listing.map(|l| l.0),
            listing.map(|l| l.1),
            now_ms()
        ],
    )?;
    Ok(())
}

/// Updates only the sync bookkeeping of a document. New server heads end what the document's
/// pending changes were counted from, so those are dropped (a later push decodes the document
/// if it is still dirty).
pub fn doc_set_sync_state(
    conn: &Connection,
    doc_id: &str,
    server_heads: &[String],
    dirty: bool,
) -> Result<()> {
    exec(
        conn,
        "UPDATE docs SET server_heads = ?2, dirty = ?3 WHERE doc_id = ?1",
        params![doc_id, heads_json(server_heads), dirty as i64],
    )?;
    pending_clear(conn, doc_id)
}

/// Records the heads of a document's stored bytes (learnt by decoding it).
pub fn doc_set_heads(conn: &Connection, doc_id: &str, heads: &[String]) -> Result<()> {
    exec(
        conn,
        "UPDATE docs SET heads = ?2 WHERE doc_id = ?1",
        params![doc_id, heads_json(heads)],
    )?;
    Ok(())
}

pub fn doc_delete(conn: &Connection, doc_id: &str) -> Result<()> {
    exec(conn, "DELETE FROM docs WHERE doc_id = ?1", [doc_id])?;
    pending_clear(conn, doc_id)
}

/// One local change kept as it was made.
#[derive(Clone, Debug)]
pub struct PendingChange {
    pub hash: String,
    /// `None` if the stored list cannot be read (the change is then not trusted).
    pub deps: Option<Vec<String>>,
    pub bytes: Vec<u8>,
}

/// Keeps a local change of a document (after the ones kept before it).
pub fn pending_add(conn: &Connection, doc_id: &str, change: &automerge::Change) -> Result<()> {
    let deps: Vec<String> = change.deps().iter().map(ToString::to_string).collect();
    exec(
        conn,
        "INSERT INTO pending_changes (doc_id, hash, deps, bytes) VALUES (?1, ?2, ?3, ?4)",
        params![
            doc_id,
            change.hash().to_string(),
            heads_json(&deps),
            change.raw_bytes()
        ],
    )?;
    Ok(())
}

/// Drops the kept local changes of a document.
pub fn pending_clear(conn: &Connection, doc_id: &str) -> Result<()> {
    exec(
        conn,
        "DELETE FROM pending_changes WHERE doc_id = ?1",
        [doc_id],
    )?;
    Ok(())
}

/// The kept local changes of a document, in the order they were made.
pub fn pending_for(conn: &Connection, doc_id: &str) -> Result<Vec<PendingChange>> {
    let mut stmt = conn.prepare_cached(
        "SELECT hash, deps, bytes FROM pending_changes WHERE doc_id = ?1 ORDER BY seq",
    )?;
    let rows = stmt
        .query_map([doc_id], |r| {
            let deps: String = r.get(1)?;
            Ok(PendingChange {
                hash: r.get(0)?,
                deps: serde_json::from_str(&deps).ok(),
                bytes: r.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// What a push needs to know of a dirty document before deciding whether to decode it: its
/// sync bookkeeping and its kept local changes (oldest first), in one query.
pub fn push_candidate(
    conn: &Connection,
    doc_id: &str,
) -> Result<Option<(DocState, Vec<PendingChange>)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.kind, d.server_heads, d.dirty, d.heads, p.hash, p.deps, p.bytes
         FROM docs d LEFT JOIN pending_changes p ON p.doc_id = d.doc_id
         WHERE d.doc_id = ?1 ORDER BY p.seq",
    )?;
    let mut rows = stmt.query([doc_id])?;
    let mut out: Option<(DocState, Vec<PendingChange>)> = None;
    while let Some(r) = rows.next()? {
        let (_, pending) = match &mut out {
            Some(o) => o,
            None => {
                let server_heads: String = r.get(1)?;
                let heads: Option<String> = r.get(3)?;
                out.insert((
                    DocState {
                        kind: r.get(0)?,
                        server_heads: heads_parse(&server_heads),
                        dirty: r.get::<_, i64>(2)? != 0,
                        heads: heads.and_then(|h| serde_json::from_str(&h).ok()),
                    },
                    Vec::new(),
                ))
            }
        };
        if let Some(hash) = r.get::<_, Option<String>>(4)? {
            let deps: String = r.get(5)?;
            pending.push(PendingChange {
                hash,
                deps: serde_json::from_str(&deps).ok(),
                bytes: r.get(6)?,
            });
        }
    }
    Ok(out)
}

pub fn batch_insert(conn: &Connection, b: &BatchRow) -> Result<()> {
    exec(
        conn,
        "INSERT INTO outbox_batches (batch_id, body, sent_heads, created_at_ms) VALUES (?1, ?2, ?3, ?4)",
        params![b.batch_id, b.body, b.sent_heads, now_ms()],
    )?;
    Ok(())
}

pub fn batches_pending(conn: &Connection) -> Result<Vec<BatchRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT batch_id, body, sent_heads FROM outbox_batches ORDER BY created_at_ms, batch_id",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok(BatchRow {
                batch_id: r.get(0)?,
                body: r.get(1)?,
                sent_heads: r.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn batch_delete(conn: &Connection, batch_id: &str) -> Result<()> {
    exec(
        conn,
        "DELETE FROM outbox_batches WHERE batch_id = ?1",
        [batch_id],
    )?;
    Ok(())
}

pub fn rejection_add(conn: &Connection, doc_id: &str, code: &str, message: &str) -> Result<()> {
    rejection_add_kept(conn, doc_id, code, message, None)
}

/// A rejection, with what the person wrote that the server refused (JSON).
pub fn rejection_add_kept(
    conn: &Connection,
    doc_id: &str,
    code: &str,
    message: &str,
    kept: Option<&str>,
) -> Result<()> {
    exec(
        conn,
        "INSERT INTO rejections (doc_id, code, message, at_ms, kept) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![doc_id, code, message, now_ms(), kept],
    )?;
    Ok(())
}

/// The most recent rejections, newest first.
pub fn rejections_recent(conn: &Connection, limit: u32) -> Result<Vec<RejectionRow>> {
    rejections_where(conn, None, limit)
}

/// The most recent rejections of one document, newest first.
pub fn rejections_of(conn: &Connection, doc_id: &str, limit: u32) -> Result<Vec<RejectionRow>> {
    rejections_where(conn, Some(doc_id), limit)
}

fn rejections_where(
    conn: &Connection,
    doc_id: Option<&str>,
    limit: u32,
) -> Result<Vec<RejectionRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT doc_id, code, message, at_ms, kept FROM rejections
         WHERE ?1 IS NULL OR doc_id = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt
        .query_map(params![doc_id, limit], |r| {
            Ok(RejectionRow {
                doc_id: r.get(0)?,
                code: r.get(1)?,
                message: r.get(2)?,
                at_ms: r.get(3)?,
                kept: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn rejections_clear(conn: &Connection) -> Result<()> {
    exec(conn, "DELETE FROM rejections", [])?;
    Ok(())
}

/// The states of an upload, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadState {
    Queued,
    Uploading,
    Done,
    Failed,
}

impl UploadState {
    pub fn as_str(self) -> &'static str {
        match self {
            UploadState::Queued => "queued",
            UploadState::Uploading => "uploading",
            UploadState::Done => "done",
            UploadState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> UploadState {
        match s {
            "uploading" => UploadState::Uploading,
            "done" => UploadState::Done,
            "failed" => UploadState::Failed,
            // The CHECK constraint allows nothing else; anything odd is simply sent again.
            _ => UploadState::Queued,
        }
    }
}

/// One queued photo's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadRow {
    pub sha256: String,
    pub size: u64,
    pub mime: String,
    /// Relative to the data directory.
    pub local_path: String,
    pub state: UploadState,
    pub bytes_sent: u64,
    pub attempts: u64,
    pub last_error_code: Option<String>,
    pub last_error: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

const UPLOAD_COLUMNS: &str = "sha256, size, mime, local_path, state, bytes_sent, attempts, last_error_code, last_error, created_at_ms, updated_at_ms";

fn upload_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UploadRow> {
    let state: String = r.get(4)?;
    Ok(UploadRow {
        sha256: r.get(0)?,
        size: r.get::<_, i64>(1)?.max(0) as u64,
        mime: r.get(2)?,
        local_path: r.get(3)?,
        state: UploadState::parse(&state),
        bytes_sent: r.get::<_, i64>(5)?.max(0) as u64,
        attempts: r.get::<_, i64>(6)?.max(0) as u64,
        last_error_code: r.get(7)?,
        last_error: r.get(8)?,
        created_at_ms: r.get(9)?,
        updated_at_ms: r.get(10)?,
    })
}

/// Queues the bytes of a photo. Bytes already queued stay as they are (sent, part-sent or
/// waiting), except a failed upload, which starts again from the top: the caller has just
/// written a verified copy of the bytes.
pub fn upload_enqueue(
    conn: &Connection,
    sha256: &str,
    size: u64,
    mime: &str,
    local_path: &str,
) -> Result<()> {
    let now = now_ms();
    exec(
        conn,
        "INSERT INTO uploads (sha256, size, mime, local_path, state, created_at_ms, updated_at_ms)
         VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?5)
         ON CONFLICT (sha256) DO UPDATE SET local_path = excluded.local_path,
             state = CASE WHEN state = 'failed' THEN 'queued' ELSE state END,
             bytes_sent = CASE WHEN state = 'failed' THEN 0 ELSE bytes_sent END,
             attempts = CASE WHEN state = 'failed' THEN 0 ELSE attempts END,
             last_error_code = CASE WHEN state = 'failed' THEN NULL ELSE last_error_code END,
             last_error = CASE WHEN state = 'failed' THEN NULL ELSE last_error END,
             updated_at_ms = excluded.updated_at_ms",
        params![sha256, size as i64, mime, local_path, now],
    )?;
    Ok(())
}

pub fn upload_get(conn: &Connection, sha256: &str) -> Result<Option<UploadRow>> {
    Ok(query_row(
        conn,
        &format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE sha256 = ?1"),
        [sha256],
        upload_from_row,
    )
    .optional()?)
}

/// Every queued upload, oldest first; only those still to send (queued or part-sent) if
/// `todo_only`.
pub fn uploads_all(conn: &Connection, todo_only: bool) -> Result<Vec<UploadRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {UPLOAD_COLUMNS} FROM uploads
         WHERE ?1 = 0 OR state IN ('queued', 'uploading') ORDER BY created_at_ms, sha256"
    ))?;
    let rows = stmt
        .query_map([todo_only as i64], upload_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Records where an upload stands. Returns whether the upload is still queued (a purge may
/// have removed it meanwhile).
pub fn upload_progress(
    conn: &Connection,
    sha256: &str,
    state: UploadState,
    bytes_sent: u64,
) -> Result<bool> {
    let n = exec(
        conn,
        "UPDATE uploads SET state = ?2, bytes_sent = ?3, updated_at_ms = ?4,
             last_error_code = CASE WHEN ?2 = 'done' THEN NULL ELSE last_error_code END,
             last_error = CASE WHEN ?2 = 'done' THEN NULL ELSE last_error END
         WHERE sha256 = ?1",
        params![sha256, state.as_str(), bytes_sent as i64, now_ms()],
    )?;
    Ok(n > 0)
}

/// Counts one more upload run working on an upload.
pub fn upload_attempt(conn: &Connection, sha256: &str) -> Result<()> {
    exec(
        conn,
        "UPDATE uploads SET attempts = attempts + 1, updated_at_ms = ?2 WHERE sha256 = ?1",
        params![sha256, now_ms()],
    )?;
    Ok(())
}

/// Records why an upload stopped; `state` is `Failed` for an error retrying cannot cure, the
/// state it had otherwise (it is retried at the next run).
pub fn upload_error(
    conn: &Connection,
    sha256: &str,
    state: UploadState,
    code: &str,
    message: &str,
) -> Result<()> {
    exec(
        conn,
        "UPDATE uploads SET state = ?2, last_error_code = ?3, last_error = ?4, updated_at_ms = ?5
         WHERE sha256 = ?1",
        params![sha256, state.as_str(), code, message, now_ms()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_database_is_at_current_version_and_reopens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        {
            let s = Store::open(&path).expect("open");
            meta_set(&s.conn, "k", "v").expect("set");
        }
        let s = Store::open(&path).expect("reopen");
        let v: i64 = s
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("version");
        assert_eq!(v, VERSION);
        assert_eq!(meta_get(&s.conn, "k").expect("get").as_deref(), Some("v"));
    }

    #[test]
    fn newer_database_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        {
            let c = Connection::open(&path).expect("open");
            c.pragma_update(None, "user_version", VERSION + 1)
                .expect("pragma");
        }
        let err = Store::open(&path).expect_err("must refuse");
        assert_eq!(err.code(), "unsupported_database_version");
    }

    /// The schema as SQLite keeps it, for comparing databases.
    fn schema_of(conn: &Connection) -> Vec<(String, String, Option<String>)> {
        let mut stmt = conn
            .prepare("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
            .expect("prepare");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("query")
            .collect::<rusqlite::Result<Vec<_>>>()
            .expect("rows")
    }

    #[test]
    fn a_version_4_database_gains_the_upload_queue_keeps_its_data_and_equals_a_fresh_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = dir.path().join("v4.db");
        {
            // A database exactly as version 4 left it, with some data.
            let c = Connection::open(&old).expect("open");
            for step in [SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4] {
                c.execute_batch(step).expect("old schema");
            }
            c.pragma_update(None, "user_version", 4).expect("version");
            meta_set(&c, "device_id", "kept").expect("meta");
            doc_put(
                &c,
                "d1",
                "customer",
                b"bytes",
                &[],
                &["h".into()],
                true,
                Some(("Acme", "")),
            )
            .expect("doc");
        }
        let upgraded = Store::open(&old).expect("upgrade");
        let fresh = Store::open(&dir.path().join("fresh.db")).expect("fresh");
        assert_eq!(schema_of(&upgraded.conn), schema_of(&fresh.conn));
        assert_eq!(
            meta_get(&upgraded.conn, "device_id")
                .expect("meta")
                .as_deref(),
            Some("kept")
        );
        let doc = doc_get(&upgraded.conn, "d1").expect("doc").expect("kept");
        assert_eq!((doc.bytes.as_slice(), doc.dirty), (&b"bytes"[..], true));
        // The queue works.
        let sha = "a".repeat(64);
        upload_enqueue(&upgraded.conn, &sha, 10, "image/jpeg", "photos/x").expect("enqueue");
        let row = upload_get(&upgraded.conn, &sha).expect("get").expect("row");
        assert_eq!(
            (row.state, row.bytes_sent, row.attempts),
            (UploadState::Queued, 0, 0)
        );
    }

    #[test]
    fn a_failed_upload_queued_again_starts_over_and_others_keep_their_progress() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(&dir.path().join("t.db")).expect("open");
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        for sha in [&a, &b] {
            upload_enqueue(&s.conn, sha, 100, "image/png", "photos/x").expect("enqueue");
            upload_attempt(&s.conn, sha).expect("attempt");
            upload_progress(&s.conn, sha, UploadState::Uploading, 40).expect("progress");
        }
        upload_error(&s.conn, &a, UploadState::Failed, "hash_mismatch", "bad").expect("fail");
        for sha in [&a, &b] {
            upload_enqueue(&s.conn, sha, 100, "image/png", "photos/x").expect("again");
        }
        let a = upload_get(&s.conn, &a).expect("get").expect("a");
        assert_eq!(
            (a.state, a.bytes_sent, a.attempts),
            (UploadState::Queued, 0, 0)
        );
        assert_eq!(a.last_error, None);
        let b = upload_get(&s.conn, &b).expect("get").expect("b");
        assert_eq!(
            (b.state, b.bytes_sent, b.attempts),
            (UploadState::Uploading, 40, 1)
        );
        assert_eq!(uploads_all(&s.conn, true).expect("todo").len(), 2);
        purge(&s.conn).expect("purge");
        assert!(uploads_all(&s.conn, false).expect("all").is_empty());
    }
}
