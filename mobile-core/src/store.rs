//! The phone's SQLite database: the session, one row per document (its Automerge bytes, the
//! heads the server is known to have and a dirty flag), the outbox of push batches that were
//! built but not yet answered, the pull cursor, and the rejections to show the person.
//!
//! The schema carries a version in `PRAGMA user_version`; [`Store::open`] upgrades older files
//! step by step. Functions taking a `&Connection` also work inside a transaction (which derefs
//! to a connection), so a caller can group several of them atomically.

use crate::error::Result;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;

/// The schema version this build writes.
pub const VERSION: i64 = 3;

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

/// Deletes every document, batch, rejection, the cursor and the session: what a revoked device
/// must do. The device id stays.
pub fn purge(conn: &Connection) -> Result<()> {
    conn.execute_batch(
        "DELETE FROM docs; DELETE FROM pending_changes; DELETE FROM outbox_batches; DELETE FROM rejections; DELETE FROM session;
         DELETE FROM meta WHERE key IN ('cursor', 'last_sync_at_ms', 'data_owner');",
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
    exec(
        conn,
        "INSERT INTO rejections (doc_id, code, message, at_ms) VALUES (?1, ?2, ?3, ?4)",
        params![doc_id, code, message, now_ms()],
    )?;
    Ok(())
}

/// The most recent rejections, newest first.
pub fn rejections_recent(conn: &Connection, limit: u32) -> Result<Vec<RejectionRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT doc_id, code, message, at_ms FROM rejections ORDER BY id DESC LIMIT ?1",
    )?;
    let rows = stmt
        .query_map([limit], |r| {
            Ok(RejectionRow {
                doc_id: r.get(0)?,
                code: r.get(1)?,
                message: r.get(2)?,
                at_ms: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn rejections_clear(conn: &Connection) -> Result<()> {
    exec(conn, "DELETE FROM rejections", [])?;
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
}
