//! The SQL both backends accept, written once. [`impl_store!`] expands it for a concrete
//! `sqlx::Database`; the backend files supply `connect`, `run_migrations` and `begin_write`
//! (how a write transaction takes the tenant's lock), which is all that differs.
//!
//! The pure parts of a push (deciding each document, building log entries and projection rows)
//! are plain functions below the macro, so they are compiled and tested once.

use super::{PushItem, StoreError, UserDirectory};
use fieldsync_sync::access::{Caller, Directory};
use fieldsync_sync::merge::{Outcome, apply_incoming};
use fieldsync_sync::protocol::{B64, PushResult, heads_to_strings};
use fieldsync_sync::record::project::Geofence;
use fieldsync_sync::{Conflict, Record, Rejection, UserId};
use std::collections::{BTreeSet, HashMap};

/// Rows per multi-row INSERT: well under both databases' bound-parameter limits.
pub(super) const CHUNK: usize = 400;

/// The SQL condition "the caller may read the document whose id is `col`", with `$1` the
/// tenant, `$2` the caller and `$3` whether the caller is an admin. Mirrors
/// `fieldsync_sync::access::can_read`: a manager also reads the shared pool (the reserved
/// principal `POOL`).
pub(super) fn readable(col: &str) -> String {
    let pool = fieldsync_sync::access::POOL;
    format!(
        "($3 OR EXISTS (SELECT 1 FROM doc_access a WHERE a.tenant_id = $1 AND a.doc_id = {col} \
         AND (a.user_id = $2 OR a.user_id IN (SELECT u.id FROM users u WHERE u.tenant_id = $1 AND u.manager_id = $2) \
         OR (a.user_id = '{pool}' AND EXISTS (SELECT 1 FROM users m WHERE m.tenant_id = $1 AND m.id = $2 AND m.role = 'manager')))))"
    )
}

/// A log entry to append.
pub(super) struct LogEntry {
    pub entry: &'static str,
    /// grant / revoke: whose access moved; changes: who pushed them (for the audit).
    pub user: Option<String>,
    pub data: Option<Vec<u8>>,
}

/// Everything one accepted document writes.
pub(super) struct DocWrite {
    pub doc_id: String,
    pub kind: &'static str,
    pub snapshot: Vec<u8>,
    pub heads: String,
    /// The new principal set, when it changed (or the document is new).
    pub principals: Option<Vec<String>>,
    pub log: Vec<LogEntry>,
    pub record: Record,
    pub conflicts: Vec<Conflict>,
}

/// One document's decision: its answer, and what to write if anything.
pub(super) struct Decision {
    pub result: PushResult,
    pub write: Option<DocWrite>,
}

pub(super) fn with_managers(users: &BTreeSet<UserId>, dir: &dyn Directory) -> BTreeSet<UserId> {
    let mut out = users.clone();
    out.extend(users.iter().filter_map(|u| dir.manager_of(*u)));
    // The shared pool's "team" is every manager of the tenant.
    if users.contains(&fieldsync_sync::access::POOL) {
        out.extend(dir.pool_readers());
    }
    out
}

/// Decides every document of a push. Pure and CPU-bound: the caller runs it off the async
/// runtime.
pub(super) fn decide(
    mut items: Vec<PushItem>,
    stored: &HashMap<String, Vec<u8>>,
    caller: &Caller,
    dir: &UserDirectory,
) -> Vec<Decision> {
    // Documents are independent: a large push is decided on two threads (the machines we run
    // on have two cores, and the phone is waiting, not working, meanwhile).
    const PARALLEL_FROM: usize = 64;
    if items.len() >= PARALLEL_FROM {
        let second = items.split_off(items.len() / 2);
        return std::thread::scope(|scope| {
            let other = scope.spawn(|| decide_each(second, stored, caller, dir));
            let mut first = decide_each(items, stored, caller, dir);
            match other.join() {
                Ok(rest) => {
                    first.extend(rest);
                    first
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        });
    }
    decide_each(items, stored, caller, dir)
}

fn decide_each(
    items: Vec<PushItem>,
    stored: &HashMap<String, Vec<u8>>,
    caller: &Caller,
    dir: &UserDirectory,
) -> Vec<Decision> {
    items
        .into_iter()
        .map(|item| {
            let inc = match item {
                PushItem::Refused(result) => {
                    return Decision {
                        result,
                        write: None,
                    };
                }
                PushItem::Apply(inc) => inc,
            };
            let id = inc.doc_id.as_string();
            match apply_incoming(stored.get(&id).map(Vec::as_slice), &inc, caller, dir) {
                Outcome::Accepted(acc) => {
                    let heads = heads_to_strings(&acc.heads);
                    let result = PushResult::Accepted {
                        doc_id: inc.doc_id,
                        heads: heads.clone(),
                    };
                    if acc.new_changes.is_empty() {
                        return Decision {
                            result,
                            write: None,
                        };
                    }
                    let before: BTreeSet<UserId> = acc.principals_before.iter().copied().collect();
                    let after: BTreeSet<UserId> =
                        acc.record.principals_in(dir).into_iter().collect();
                    let mut log = Vec::new();
                    let principals_changed = acc.created || before != after;
                    if !acc.created && before != after {
                        // Access moved: whoever (or whose manager) newly reads it gets the whole
                        // document, before the changes; whoever no longer does is told to drop it.
                        let gained =
                            with_managers(&after.difference(&before).copied().collect(), dir);
                        for u in &gained {
                            log.push(LogEntry {
                                entry: "grant",
                                user: Some(u.as_string()),
                                data: None,
                            });
                        }
                        let lost =
                            with_managers(&before.difference(&after).copied().collect(), dir);
                        log.push(LogEntry {
                            entry: "changes",
                            user: Some(caller.user.as_string()),
                            data: Some(super::frame_changes(&acc.new_changes)),
                        });
                        for u in lost.difference(&gained) {
                            log.push(LogEntry {
                                entry: "revoke",
                                user: Some(u.as_string()),
                                data: None,
                            });
                        }
                    } else {
                        // A new document's changes are exactly what is stored as the document:
                        // its entry points there (data NULL) instead of holding a second copy,
                        // and pull serves it as a snapshot.
                        let data = (!acc.created).then(|| super::frame_changes(&acc.new_changes));
                        log.push(LogEntry {
                            entry: "changes",
                            user: Some(caller.user.as_string()),
                            data,
                        });
                    }
                    Decision {
                        result,
                        write: Some(DocWrite {
                            doc_id: id,
                            kind: inc.kind.as_str(),
                            snapshot: acc.snapshot,
                            heads: serde_json::to_string(&heads).unwrap_or_else(|_| "[]".into()),
                            principals: principals_changed
                                .then(|| after.iter().map(|u| u.as_string()).collect()),
                            log,
                            record: acc.record,
                            conflicts: acc.conflicts,
                        }),
                    }
                }
                Outcome::Rejected { error, heads, doc } => Decision {
                    result: PushResult::Rejected {
                        doc_id: inc.doc_id,
                        error,
                        heads: heads_to_strings(&heads),
                        doc: doc.map(B64),
                    },
                    write: None,
                },
                Outcome::MissingDeps { missing, heads } => Decision {
                    result: PushResult::MissingDeps {
                        doc_id: inc.doc_id,
                        missing: heads_to_strings(&missing),
                        heads: heads_to_strings(&heads),
                    },
                    write: None,
                },
            }
        })
        .collect()
}

/// Who should hear that these writes happened: every principal of the written records, their
/// managers, and the users of grant and revoke entries.
pub(super) fn audience(writes: &[&DocWrite], dir: &dyn Directory) -> Vec<UserId> {
    let mut out = BTreeSet::new();
    for w in writes {
        for p in w.record.principals_in(dir) {
            out.insert(p);
            out.extend(dir.manager_of(p));
            if fieldsync_sync::access::is_pool(p) {
                out.extend(dir.pool_readers());
            }
        }
        out.extend(
            w.log
                .iter()
                .filter(|e| e.entry != "changes")
                .filter_map(|e| e.user.as_deref())
                .filter_map(|u| u.parse::<UserId>().ok()),
        );
    }
    out.into_iter().collect()
}

/// A record whose readers follow a project's members (its photos and site diaries), as the
/// projections know it: its id, kind and own principal (a photo's author).
pub(super) struct Follower {
    pub doc_id: String,
    pub kind: &'static str,
    pub own: Option<UserId>,
}

/// A follower whose readers move: its new access rows and the log entries that say so.
pub(super) struct AccessMove {
    pub doc_id: String,
    pub kind: &'static str,
    pub readers: BTreeSet<UserId>,
    /// (`grant` or `revoke`, whose access moved).
    pub log: Vec<(&'static str, UserId)>,
}

/// When a project's members change, the records that belong to the project change readers
/// with it: for each follower, its new access rows and the grant and revoke entries that tell
/// phones (a new member's phone gets the photos and diaries at its next pull; a removed
/// member's phone drops them). `access` holds the followers' current access rows.
pub(super) fn follow_members(
    followers: &[Follower],
    members: &[UserId],
    access: &HashMap<String, BTreeSet<UserId>>,
    dir: &dyn Directory,
) -> Vec<AccessMove> {
    let mut out = Vec::new();
    for f in followers {
        let mut after: BTreeSet<UserId> = members.iter().copied().collect();
        after.extend(f.own);
        let empty = BTreeSet::new();
        let before = access.get(&f.doc_id).unwrap_or(&empty);
        if *before == after {
            continue;
        }
        let gained = with_managers(&after.difference(before).copied().collect(), dir);
        let lost = with_managers(&before.difference(&after).copied().collect(), dir);
        let mut log: Vec<(&'static str, UserId)> = gained.iter().map(|u| ("grant", *u)).collect();
        log.extend(lost.difference(&gained).map(|u| ("revoke", *u)));
        out.push(AccessMove {
            doc_id: f.doc_id.clone(),
            kind: f.kind,
            readers: after,
            log,
        });
    }
    out
}

/// Turns an accepted decision into a rejection for `error`. The stored version (if any) goes
/// back with it, so the phone returns to it instead of losing the record.
pub(super) fn reject_decision(d: &mut Decision, stored: Option<&Vec<u8>>, error: Rejection) {
    if let (PushResult::Accepted { doc_id, .. }, Some(_)) = (&d.result, &d.write) {
        let heads = stored
            .and_then(|b| automerge::Automerge::load(b).ok())
            .map(|doc| heads_to_strings(&doc.get_heads()))
            .unwrap_or_default();
        d.result = PushResult::Rejected {
            doc_id: *doc_id,
            error,
            heads,
            doc: stored.cloned().map(B64),
        };
        d.write = None;
    }
}

/// A site's geofence as projection columns: shape, centre lat, centre lon, radius, polygon JSON.
pub(super) type FenceColumns = (
    Option<&'static str>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<String>,
);

pub(super) fn fence_columns(f: Option<&Geofence>) -> FenceColumns {
    match f {
        None => (None, None, None, None, None),
        Some(Geofence::Circle { center, radius_m }) => (
            Some("circle"),
            Some(center.lat),
            Some(center.lon),
            Some(*radius_m),
            None,
        ),
        Some(Geofence::Polygon { points }) => (
            Some("polygon"),
            None,
            None,
            None,
            Some(
                serde_json::to_string(&points.iter().map(|p| [p.lat, p.lon]).collect::<Vec<_>>())
                    .unwrap_or_default(),
            ),
        ),
    }
}

/// A site's geofence from its projection columns (the inverse of [`fence_columns`]).
pub(super) fn fence_from_columns(
    shape: Option<&str>,
    lat: Option<f64>,
    lon: Option<f64>,
    radius: Option<f64>,
    polygon: Option<&str>,
) -> Result<Option<Geofence>, StoreError> {
    use fieldsync_sync::GeoPoint;
    Ok(match (shape, lat, lon, radius, polygon) {
        (Some("circle"), Some(lat), Some(lon), Some(radius_m), _) => Some(Geofence::Circle {
            center: GeoPoint { lat, lon },
            radius_m,
        }),
        (Some("polygon"), _, _, _, Some(json)) => {
            let pts: Vec<[f64; 2]> = serde_json::from_str(json).map_err(corrupt)?;
            Some(Geofence::Polygon {
                points: pts
                    .into_iter()
                    .map(|[lat, lon]| GeoPoint { lat, lon })
                    .collect(),
            })
        }
        _ => None,
    })
}

pub(super) fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// Expands the shared SQL into `impl Store for $store` over the database `$db`.
macro_rules! impl_store {
    ($store:ty, $db:ty, $backend:literal) => {
        use $crate::store::sql::{self, CHUNK, DocWrite, readable};
        use $crate::store::field;
        use fieldsync_sync::attendance::{Calendar, Shift};
        use $crate::store::*;
        use fieldsync_sync::access::{Caller, Role};
        use fieldsync_sync::merge::Incoming;
        use fieldsync_sync::protocol::{B64, Cursor, PullItem, PullResponse, PushResponse, RepairItem, RepairResponse, PROTOCOL_VERSION};
        use fieldsync_sync::{DeviceId, DocId, Record, RecordKind, TenantId, UserId};
        use sqlx::{QueryBuilder, Row};
        use std::collections::{HashMap, HashSet};

        type Tx = sqlx::Transaction<'static, $db>;
        type DbRow = <$db as sqlx::Database>::Row;

        fn parse_id<T: std::str::FromStr>(s: &str) -> Result<T> {
            s.parse().map_err(|_| StoreError::Corrupt(format!("bad id '{s}'")))
        }

        fn user_from_row(r: &DbRow) -> Result<User> {
            let role: String = r.try_get("role")?;
            let manager: Option<String> = r.try_get("manager_id")?;
            Ok(User {
                tenant: parse_id(&r.try_get::<String, _>("tenant_id")?)?,
                id: parse_id(&r.try_get::<String, _>("id")?)?,
                email: r.try_get("email")?,
                password_hash: r.try_get("password_hash")?,
                role: role.parse().map_err(sql::corrupt)?,
                manager: manager.map(|m| parse_id(&m)).transpose()?,
                disabled: r.try_get("disabled")?,
            })
        }

        fn device_from_row(r: &DbRow) -> Result<Device> {
            Ok(Device {
                tenant: parse_id(&r.try_get::<String, _>("tenant_id")?)?,
                id: parse_id(&r.try_get::<String, _>("id")?)?,
                user: parse_id(&r.try_get::<String, _>("user_id")?)?,
                name: r.try_get("name")?,
                revoked: r.try_get("revoked")?,
            })
        }

        async fn load_directory(tx: &mut Tx, tenant: &str) -> Result<UserDirectory> {
            let rows = sqlx::query("SELECT id, role, manager_id, disabled FROM users WHERE tenant_id = $1")
                .bind(tenant)
                .fetch_all(&mut **tx)
                .await?;
            let mut map = HashMap::with_capacity(rows.len());
            for r in rows {
                let id: UserId = parse_id(&r.try_get::<String, _>("id")?)?;
                let role: Role = r.try_get::<String, _>("role")?.parse().map_err(sql::corrupt)?;
                let manager: Option<String> = r.try_get("manager_id")?;
                let manager = manager.map(|m| parse_id(&m)).transpose()?;
                map.insert(id, (role, manager, r.try_get::<bool, _>("disabled")?));
            }
            let mut projects: HashMap<DocId, Vec<(UserId, fieldsync_sync::ProjectRole)>> = HashMap::new();
            for r in sqlx::query("SELECT project_id, user_id, role FROM project_members WHERE tenant_id = $1")
                .bind(tenant)
                .fetch_all(&mut **tx)
                .await?
            {
                let project: DocId = parse_id(&r.try_get::<String, _>("project_id")?)?;
                let role = r.try_get::<String, _>("role")?.parse().map_err(sql::corrupt)?;
                projects.entry(project).or_default().push((parse_id(&r.try_get::<String, _>("user_id")?)?, role));
            }
            Ok(UserDirectory { users: map, projects })
        }

        /// Loads `column` of the given documents, keyed by doc id.
        /// `columns` of the tenant's documents whose ids are in `ids` (and that pass `filter`,
        /// an SQL condition ending in `AND`, or empty), queried in chunks.
        async fn documents_in(
            conn: &mut <$db as sqlx::Database>::Connection,
            tenant: &str,
            ids: &[String],
            columns: &str,
            filter: &str,
        ) -> Result<Vec<DbRow>> {
            let mut rows = Vec::new();
            for chunk in ids.chunks(CHUNK) {
                let mut qb = QueryBuilder::<$db>::new(format!("SELECT {columns} FROM documents WHERE {filter} tenant_id = "));
                qb.push_bind(tenant).push(" AND doc_id IN (");
                let mut sep = qb.separated(", ");
                for id in chunk {
                    sep.push_bind(id.as_str());
                }
                qb.push(")");
                rows.extend(qb.build().fetch_all(&mut *conn).await?);
            }
            Ok(rows)
        }

        /// The stored bytes of the given documents, keyed by doc id.
        async fn load_docs(tx: &mut Tx, tenant: &str, ids: &[String]) -> Result<HashMap<String, Vec<u8>>> {
            documents_in(&mut **tx, tenant, ids, "doc_id, snapshot", "")
                .await?
                .iter()
                .map(|r| Ok((r.try_get::<String, _>("doc_id")?, r.try_get::<Vec<u8>, _>("snapshot")?)))
                .collect()
        }

        /// Which of `ids` exist as customers (stored, or accepted in this same push).
        async fn existing_customers(tx: &mut Tx, tenant: &str, ids: &[String]) -> Result<HashSet<String>> {
            documents_in(&mut **tx, tenant, ids, "doc_id", "kind = 'customer' AND")
                .await?
                .iter()
                .map(|r| Ok(r.try_get::<String, _>("doc_id")?))
                .collect()
        }

        async fn delete_for_docs(tx: &mut Tx, table: &str, id_col: &str, tenant: &str, ids: &[&str]) -> Result<()> {
            for chunk in ids.chunks(CHUNK) {
                let mut qb = QueryBuilder::<$db>::new(format!("DELETE FROM {table} WHERE tenant_id = "));
                qb.push_bind(tenant).push(format!(" AND {id_col} IN ("));
                let mut sep = qb.separated(", ");
                for id in chunk {
                    sep.push_bind(*id);
                }
                qb.push(")");
                qb.build().execute(&mut **tx).await?;
            }
            Ok(())
        }

        /// Moves the readers of a project's photos and diaries to its new `members`: access rows
        /// and grant/revoke log entries. The last log seq used and who was told, if anything moved.
        async fn follow_project(
            tx: &mut Tx,
            tenant: &str,
            device: &str,
            project: &str,
            members: &[UserId],
            dir: &UserDirectory,
            now: i64,
        ) -> Result<Option<(i64, Vec<UserId>)>> {
            let mut followers = Vec::new();
            for r in sqlx::query("SELECT id, author_id FROM photos WHERE tenant_id = $1 AND project_id = $2")
                .bind(tenant).bind(project).fetch_all(&mut **tx).await?
            {
                followers.push(sql::Follower {
                    doc_id: r.try_get("id")?,
                    kind: "photo",
                    own: Some(parse_id(&r.try_get::<String, _>("author_id")?)?),
                });
            }
            for r in sqlx::query("SELECT id FROM diaries WHERE tenant_id = $1 AND project_id = $2")
                .bind(tenant).bind(project).fetch_all(&mut **tx).await?
            {
                followers.push(sql::Follower { doc_id: r.try_get("id")?, kind: "diary", own: None });
            }
            if followers.is_empty() {
                return Ok(None);
            }
            let ids: Vec<String> = followers.iter().map(|f| f.doc_id.clone()).collect();
            let mut access: HashMap<String, std::collections::BTreeSet<UserId>> = HashMap::new();
            for chunk in ids.chunks(CHUNK) {
                let mut qb = QueryBuilder::<$db>::new("SELECT doc_id, user_id FROM doc_access WHERE tenant_id = ");
                qb.push_bind(tenant).push(" AND doc_id IN (");
                let mut sep = qb.separated(", ");
                for id in chunk {
                    sep.push_bind(id.as_str());
                }
                qb.push(")");
                for r in qb.build().fetch_all(&mut **tx).await? {
                    access.entry(r.try_get("doc_id")?).or_default().insert(parse_id(&r.try_get::<String, _>("user_id")?)?);
                }
            }
            let moves = sql::follow_members(&followers, members, &access, dir);
            let entries = moves.iter().map(|m| m.log.len() as i64).sum::<i64>();
            let moved: Vec<&str> = moves.iter().map(|m| m.doc_id.as_str()).collect();
            delete_for_docs(tx, "doc_access", "doc_id", tenant, &moved).await?;
            let rows: Vec<(&str, String)> = moves
                .iter()
                .flat_map(|m| m.readers.iter().map(move |u| (m.doc_id.as_str(), u.as_string())))
                .collect();
            for chunk in rows.chunks(CHUNK) {
                let mut qb = QueryBuilder::<$db>::new("INSERT INTO doc_access (tenant_id, doc_id, user_id) ");
                qb.push_values(chunk, |mut b, (d, u)| {
                    b.push_bind(tenant).push_bind(*d).push_bind(u.as_str());
                });
                qb.build().execute(&mut **tx).await?;
            }
            if entries == 0 {
                return Ok(None);
            }
            let last: i64 = sqlx::query("UPDATE tenants SET log_seq = log_seq + $2 WHERE id = $1 RETURNING log_seq")
                .bind(tenant)
                .bind(entries)
                .fetch_one(&mut **tx)
                .await?
                .try_get("log_seq")?;
            let mut seq = last - entries;
            let mut log = Vec::new();
            let mut told = Vec::new();
            for m in &moves {
                for (entry, user) in &m.log {
                    seq += 1;
                    log.push((seq, m.doc_id.as_str(), m.kind, *entry, user.as_string()));
                    told.push(*user);
                }
            }
            for chunk in log.chunks(CHUNK) {
                let mut qb = QueryBuilder::<$db>::new("INSERT INTO change_log (tenant_id, seq, doc_id, kind, entry, user_id, device_id, data, created_at) ");
                qb.push_values(chunk, |mut b, (s, d, k, e, u)| {
                    b.push_bind(tenant).push_bind(*s).push_bind(*d).push_bind(*k).push_bind(*e)
                        .push_bind(u.as_str()).push_bind(device).push_bind(None::<Vec<u8>>).push_bind(now);
                });
                qb.build().execute(&mut **tx).await?;
            }
            Ok(Some((last, told)))
        }

        /// Writes the accepted documents: snapshots, access rows, log entries and projections.
        async fn write_docs(tx: &mut Tx, tenant: &str, device: &str, writes: &[&DocWrite], first_seq: i64, now: i64) -> Result<()> {
            let mut seq = first_seq;
            let mut log_rows = Vec::new();
            let mut doc_seq = Vec::with_capacity(writes.len());
            for w in writes {
                for e in &w.log {
                    log_rows.push((seq, *w, e));
                    seq += 1;
                }
                doc_seq.push(seq - 1);
            }
            for (chunk, seqs) in writes.chunks(CHUNK).zip(doc_seq.chunks(CHUNK)) {
                let mut qb = QueryBuilder::<$db>::new(
                    "INSERT INTO documents (tenant_id, doc_id, kind, snapshot, heads, created_at, updated_at, updated_seq) ",
                );
                qb.push_values(chunk.iter().zip(seqs), |mut b, (w, s)| {
                    b.push_bind(tenant).push_bind(w.doc_id.as_str()).push_bind(w.kind).push_bind(w.snapshot.as_slice())
                        .push_bind(w.heads.as_str()).push_bind(now).push_bind(now).push_bind(*s);
                });
                qb.push(
                    " ON CONFLICT (tenant_id, doc_id) DO UPDATE SET snapshot = excluded.snapshot, heads = excluded.heads, \
                     updated_at = excluded.updated_at, updated_seq = excluded.updated_seq",
                );
                qb.build().execute(&mut **tx).await?;
            }
            for chunk in log_rows.chunks(CHUNK) {
                let mut qb = QueryBuilder::<$db>::new("INSERT INTO change_log (tenant_id, seq, doc_id, kind, entry, user_id, device_id, data, created_at) ");
                qb.push_values(chunk, |mut b, (s, w, e)| {
                    b.push_bind(tenant).push_bind(*s).push_bind(w.doc_id.as_str()).push_bind(w.kind).push_bind(e.entry)
                        .push_bind(e.user.as_deref()).push_bind(device).push_bind(e.data.as_deref()).push_bind(now);
                });
                qb.build().execute(&mut **tx).await?;
            }
            // Access rows.
            let moved: Vec<&DocWrite> = writes.iter().copied().filter(|w| w.principals.is_some()).collect();
            let moved_ids: Vec<&str> = moved.iter().map(|w| w.doc_id.as_str()).collect();
            delete_for_docs(tx, "doc_access", "doc_id", tenant, &moved_ids).await?;
            let access: Vec<(&str, &String)> = moved
                .iter()
                .flat_map(|w| w.principals.iter().flatten().map(move |u| (w.doc_id.as_str(), u)))
                .collect();
            for chunk in access.chunks(CHUNK) {
                let mut qb = QueryBuilder::<$db>::new("INSERT INTO doc_access (tenant_id, doc_id, user_id) ");
                qb.push_values(chunk, |mut b, (d, u)| {
                    b.push_bind(tenant).push_bind(*d).push_bind(u.as_str());
                });
                qb.build().execute(&mut **tx).await?;
            }
            // Projections: replace the rows of every written record.
            let customers: Vec<(&DocWrite, &fieldsync_sync::Customer)> = writes
                .iter()
                .filter_map(|w| match &w.record { Record::Customer(c) => Some((*w, c)), _ => None })
                .collect();
            let projects: Vec<(&DocWrite, &fieldsync_sync::Project)> = writes
                .iter()
                .filter_map(|w| match &w.record { Record::Project(p) => Some((*w, p)), _ => None })
                .collect();
            let cids: Vec<&str> = customers.iter().map(|(w, _)| w.doc_id.as_str()).collect();
            delete_for_docs(tx, "customers", "id", tenant, &cids).await?;
            delete_for_docs(tx, "customer_contacts", "customer_id", tenant, &cids).await?;
            for chunk in customers.chunks(CHUNK / 2) {
                let mut qb = QueryBuilder::<$db>::new(
                    "INSERT INTO customers (tenant_id, id, name, customer_kind, phone, email, address, lat, lon, tier, lifecycle, \
                     owner_id, created_by, tags, notes, conflicts, updated_at, visit_radius_m) ",
                );
                qb.push_values(chunk, |mut b, (w, c)| {
                    b.push_bind(tenant).push_bind(w.doc_id.as_str()).push_bind(c.name.as_str()).push_bind(c.customer_kind.as_str())
                        .push_bind(c.phone.as_deref()).push_bind(c.email.as_deref()).push_bind(c.address.as_deref())
                        .push_bind(c.location.map(|l| l.lat)).push_bind(c.location.map(|l| l.lon)).push_bind(c.tier.map(|t| t.as_str()))
                        .push_bind(c.lifecycle.as_str()).push_bind(c.owner.as_string()).push_bind(c.created_by.as_string())
                        .push_bind(serde_json::to_string(&c.tags).unwrap_or_default()).push_bind(c.notes.as_str())
                        .push_bind(serde_json::to_string(&w.conflicts).unwrap_or_default()).push_bind(now)
                        .push_bind(c.visit_radius_m);
                });
                qb.build().execute(&mut **tx).await?;
            }
            let contacts: Vec<(&str, &fieldsync_sync::Contact)> =
                customers.iter().flat_map(|(w, c)| c.contacts.iter().map(move |k| (w.doc_id.as_str(), k))).collect();
            for chunk in contacts.chunks(CHUNK) {
                let mut qb = QueryBuilder::<$db>::new("INSERT INTO customer_contacts (tenant_id, customer_id, contact_id, name, title, phone, email) ");
                qb.push_values(chunk, |mut b, (cid, k)| {
                    b.push_bind(tenant).push_bind(*cid).push_bind(k.id.as_str()).push_bind(k.name.as_str())
                        .push_bind(k.title.as_deref()).push_bind(k.phone.as_deref()).push_bind(k.email.as_deref());
                });
                qb.build().execute(&mut **tx).await?;
            }
            let pids: Vec<&str> = projects.iter().map(|(w, _)| w.doc_id.as_str()).collect();
            for (table, col) in [("projects", "id"), ("project_sites", "project_id"), ("project_members", "project_id"), ("project_milestones", "project_id")] {
                delete_for_docs(tx, table, col, tenant, &pids).await?;
            }
            for chunk in projects.chunks(CHUNK) {
                let mut qb = QueryBuilder::<$db>::new("INSERT INTO projects (tenant_id, id, customer_id, name, code, status, created_by, updated_at) ");
                qb.push_values(chunk, |mut b, (w, p)| {
                    b.push_bind(tenant).push_bind(w.doc_id.as_str()).push_bind(p.customer.map(|c| c.as_string()))
                        .push_bind(p.name.as_str()).push_bind(p.code.as_deref()).push_bind(p.status.as_str())
                        .push_bind(p.created_by.as_string()).push_bind(now);
                });
                qb.build().execute(&mut **tx).await?;
            }
            let sites: Vec<(&str, &fieldsync_sync::Site)> =
                projects.iter().flat_map(|(w, p)| p.sites.iter().map(move |s| (w.doc_id.as_str(), s))).collect();
            for chunk in sites.chunks(CHUNK / 2) {
                let mut qb = QueryBuilder::<$db>::new(
                    "INSERT INTO project_sites (tenant_id, project_id, site_id, name, address, timezone, fence_shape, center_lat, center_lon, radius_m, polygon) ",
                );
                qb.push_values(chunk, |mut b, (pid, s)| {
                    let (shape, lat, lon, radius, polygon) = sql::fence_columns(s.geofence.as_ref());
                    b.push_bind(tenant).push_bind(*pid).push_bind(s.id.as_str()).push_bind(s.name.as_str()).push_bind(s.address.as_deref())
                        .push_bind(s.timezone.as_str()).push_bind(shape).push_bind(lat).push_bind(lon).push_bind(radius).push_bind(polygon);
                });
                qb.build().execute(&mut **tx).await?;
            }
            let members: Vec<(&str, &fieldsync_sync::Member)> =
                projects.iter().flat_map(|(w, p)| p.members.iter().map(move |m| (w.doc_id.as_str(), m))).collect();
            for chunk in members.chunks(CHUNK) {
                let mut qb = QueryBuilder::<$db>::new("INSERT INTO project_members (tenant_id, project_id, user_id, role) ");
                qb.push_values(chunk, |mut b, (pid, m)| {
                    b.push_bind(tenant).push_bind(*pid).push_bind(m.user.as_string()).push_bind(m.role.as_str());
                });
                qb.build().execute(&mut **tx).await?;
            }
            let milestones: Vec<(&str, &fieldsync_sync::Milestone)> =
                projects.iter().flat_map(|(w, p)| p.milestones.iter().map(move |m| (w.doc_id.as_str(), m))).collect();
            for chunk in milestones.chunks(CHUNK) {
                let mut qb = QueryBuilder::<$db>::new("INSERT INTO project_milestones (tenant_id, project_id, milestone_id, name, due, status) ");
                qb.push_values(chunk, |mut b, (pid, m)| {
                    b.push_bind(tenant).push_bind(*pid).push_bind(m.id.as_str()).push_bind(m.name.as_str())
                        .push_bind(m.due.as_deref()).push_bind(m.status.as_str());
                });
                qb.build().execute(&mut **tx).await?;
            }
            Ok(())
        }

        /// Rows of `select` (a `SELECT ... FROM table` over a table with `tenant_id`) whose `col`
        /// is in `ids`, with `extra` (starting with AND, no binds) appended, queried in chunks.
        async fn select_in(tx: &mut Tx, select: &str, col: &str, tenant: &str, ids: &[String], extra: &str) -> Result<Vec<DbRow>> {
            let mut rows = Vec::new();
            for chunk in ids.chunks(CHUNK) {
                let mut qb = QueryBuilder::<$db>::new(format!("{select} WHERE tenant_id = "));
                qb.push_bind(tenant).push(format!(" AND {col} IN ("));
                let mut sep = qb.separated(", ");
                for id in chunk {
                    sep.push_bind(id.as_str());
                }
                qb.push(format!("){extra}"));
                rows.extend(qb.build().fetch_all(&mut **tx).await?);
            }
            Ok(rows)
        }

        /// The tenant's grading policy, or the defaults.
        async fn field_policy<'e, E: sqlx::Executor<'e, Database = $db>>(conn: E, tenant: &str) -> Result<fieldsync_sync::Policy> {
            let row = sqlx::query("SELECT policy FROM field_policies WHERE tenant_id = $1")
                .bind(tenant)
                .fetch_optional(conn)
                .await?;
            match row {
                Some(r) => serde_json::from_str(&r.try_get::<String, _>("policy")?).map_err(sql::corrupt),
                None => Ok(fieldsync_sync::Policy::default()),
            }
        }

        /// Loads what the field checks of a push need.
        async fn load_field_context(tx: &mut Tx, tenant: &str, needs: &field::Needs, decisions: &[sql::Decision], now: i64) -> Result<field::FieldContext> {
            let mut ctx = field::FieldContext { policy: field_policy(&mut **tx, tenant).await?, now_ms: now, ..Default::default() };
            let projects: Vec<String> = needs.sites.iter().map(|(p, _)| p.clone()).collect::<HashSet<_>>().into_iter().collect();
            for r in select_in(
                tx,
                "SELECT s.project_id, s.site_id, s.name, s.fence_shape, s.center_lat, s.center_lon, s.radius_m, s.polygon, \
                 (SELECT p.name FROM projects p WHERE p.tenant_id = s.tenant_id AND p.id = s.project_id) AS project_name FROM project_sites s",
                "s.project_id", tenant, &projects, "",
            ).await? {
                let shape: Option<String> = r.try_get("fence_shape")?;
                let polygon: Option<String> = r.try_get("polygon")?;
                let fence = sql::fence_from_columns(shape.as_deref(), r.try_get("center_lat")?, r.try_get("center_lon")?, r.try_get("radius_m")?, polygon.as_deref())?;
                ctx.sites.insert(
                    (r.try_get("project_id")?, r.try_get("site_id")?),
                    field::SiteInfo { project_name: r.try_get::<Option<String>, _>("project_name")?.unwrap_or_default(), name: r.try_get("name")?, fence },
                );
            }
            for r in select_in(tx, "SELECT id FROM projects", "id", tenant, &projects, "").await? {
                ctx.projects.insert(r.try_get("id")?);
            }
            let visits: Vec<String> = needs.visits.iter().cloned().collect();
            for r in select_in(tx, "SELECT id, customer_id FROM visits", "id", tenant, &visits, "").await? {
                ctx.visit_customers.insert(r.try_get("id")?, r.try_get("customer_id")?);
            }
            let more: Vec<String> = ctx.visit_customers.values().filter(|c| !needs.customers.contains(*c)).cloned().collect();
            let customers: Vec<String> = needs.customers.iter().cloned().chain(more).collect();
            let users: Vec<String> = needs.users.iter().cloned().collect();
            for r in select_in(tx, "SELECT user_id, project_id, site_id FROM site_assignments", "user_id", tenant, &users, "").await? {
                ctx.assignments.insert((r.try_get("user_id")?, r.try_get("project_id")?, r.try_get("site_id")?));
            }
            for r in select_in(tx, "SELECT id, name, lat, lon, visit_radius_m FROM customers", "id", tenant, &customers, "").await? {
                let (lat, lon): (Option<f64>, Option<f64>) = (r.try_get("lat")?, r.try_get("lon")?);
                ctx.customers.insert(r.try_get("id")?, field::CustomerInfo {
                    name: r.try_get("name")?,
                    location: lat.zip(lon).map(|(lat, lon)| fieldsync_sync::GeoPoint { lat, lon }),
                    radius_m: r.try_get("visit_radius_m")?,
                });
            }
            // Customers and project sites created in this same push.
            for d in decisions {
                match d.write.as_ref().map(|w| &w.record) {
                    Some(Record::Customer(c)) => {
                        ctx.customers.insert(c.id.as_string(), field::CustomerInfo { name: c.name.clone(), location: c.location, radius_m: c.visit_radius_m });
                    }
                    Some(Record::Visit(v)) => {
                        ctx.visit_customers.insert(v.id.as_string(), v.customer.as_string());
                    }
                    Some(Record::Project(p)) => {
                        ctx.projects.insert(p.id.as_string());
                        for s in &p.sites {
                            ctx.sites.insert((p.id.as_string(), s.id.clone()), field::SiteInfo { project_name: p.name.clone(), name: s.name.clone(), fence: s.geofence.clone() });
                        }
                    }
                    _ => {}
                }
            }
            if let Some((first, last)) = needs.span_ms {
                let reach = ctx.policy.visit_auto_close_ms.max(0);
                for r in select_in(
                    tx,
                    "SELECT id, rep_id, customer_id, check_in_at, check_out_at, auto_close_at FROM visits",
                    "rep_id", tenant, &users,
                    &format!(" AND cancelled = FALSE AND check_in_at IS NOT NULL AND check_in_at <= {} AND COALESCE(check_out_at, auto_close_at) >= {}", last.saturating_add(reach), first.saturating_sub(reach)),
                ).await? {
                    let from: i64 = r.try_get::<Option<i64>, _>("check_in_at")?.unwrap_or_default();
                    let to: Option<i64> = r.try_get("check_out_at")?;
                    let auto: Option<i64> = r.try_get("auto_close_at")?;
                    let rep: String = r.try_get("rep_id")?;
                    ctx.visit_spans.entry(rep).or_default().push(field::OpenSpan {
                        visit: r.try_get("id")?,
                        customer: r.try_get("customer_id")?,
                        from_ms: from,
                        to_ms: to.or(auto).unwrap_or(from).max(from + 1),
                    });
                }
                const DAY: i64 = 86_400_000;
                for r in select_in(
                    tx,
                    "SELECT user_id, at_ms, lat, lon, accuracy_m FROM field_events",
                    "user_id", tenant, &users,
                    &format!(" AND at_ms >= {} AND at_ms <= {}", first.saturating_sub(2 * DAY), last.saturating_add(2 * DAY)),
                ).await? {
                    ctx.recent.entry(r.try_get("user_id")?).or_default().push(fieldsync_sync::trust::PriorEvent {
                        time_ms: r.try_get("at_ms")?,
                        lat: r.try_get("lat")?,
                        lon: r.try_get("lon")?,
                        accuracy_m: r.try_get("accuracy_m")?,
                    });
                }
            }
            for r in select_in(tx, "SELECT doc_id, event FROM field_events", "doc_id", tenant, &needs.docs, "").await? {
                let event: String = r.try_get("event")?;
                let event = match event.as_str() {
                    "visit_check_in" => "visit_check_in",
                    "visit_check_out" => "visit_check_out",
                    "photo" => "photo",
                    _ => "punch",
                };
                ctx.graded.insert((r.try_get("doc_id")?, event));
            }
            Ok(ctx)
        }

        /// Writes the field rows of a push: graded events (once), visit and make-up projections.
        async fn write_field(tx: &mut Tx, tenant: &str, fw: &field::FieldWrites, now: i64) -> Result<()> {
            for chunk in fw.events.chunks(CHUNK / 4) {
                let mut qb = QueryBuilder::<$db>::new(
                    "INSERT INTO field_events (tenant_id, doc_id, event, user_id, at_ms, device_time_ms, lat, lon, accuracy_m, provider, mock, \
                     customer_id, project_id, site_id, direction, target_name, trust, reasons, distance_m, allowed_m, received_at) ",
                );
                qb.push_values(chunk, |mut b, e| {
                    b.push_bind(tenant).push_bind(e.doc_id.as_str()).push_bind(e.event).push_bind(e.user.as_str())
                        .push_bind(e.verdict.event_time_ms).push_bind(e.evidence.device_time_ms)
                        .push_bind(e.evidence.lat).push_bind(e.evidence.lon).push_bind(e.evidence.accuracy_m)
                        .push_bind(e.evidence.provider.as_str()).push_bind(e.evidence.mock)
                        .push_bind(e.customer.as_deref()).push_bind(e.project.as_deref()).push_bind(e.site.as_deref())
                        .push_bind(e.direction).push_bind(e.target_name.as_deref()).push_bind(e.verdict.level.as_str())
                        .push_bind(serde_json::to_string(&e.verdict.reasons).unwrap_or_else(|_| "[]".into()))
                        .push_bind(e.verdict.distance_m).push_bind(e.verdict.allowed_m).push_bind(now);
                });
                qb.push(" ON CONFLICT (tenant_id, doc_id, event) DO NOTHING");
                qb.build().execute(&mut **tx).await?;
            }
            let vids: Vec<&str> = fw.visits.iter().map(|v| v.id.as_str()).collect();
            delete_for_docs(tx, "visits", "id", tenant, &vids).await?;
            for chunk in fw.visits.chunks(CHUNK / 4) {
                let mut qb = QueryBuilder::<$db>::new(
                    "INSERT INTO visits (tenant_id, id, customer_id, rep_id, planned_date, purpose, cancelled, check_in_at, check_out_at, \
                     auto_close_at, outcome, notes, next_follow_up, review_status, reviews, updated_at) ",
                );
                qb.push_values(chunk, |mut b, v| {
                    b.push_bind(tenant).push_bind(v.id.as_str()).push_bind(v.customer.as_str()).push_bind(v.rep.as_str())
                        .push_bind(v.planned_date.as_deref()).push_bind(v.purpose.as_str()).push_bind(v.cancelled)
                        .push_bind(v.check_in_at).push_bind(v.check_out_at).push_bind(v.auto_close_at).push_bind(v.outcome)
                        .push_bind(v.notes.as_deref()).push_bind(v.next_follow_up.as_deref()).push_bind(v.review_status)
                        .push_bind(v.reviews.as_str()).push_bind(now);
                });
                qb.build().execute(&mut **tx).await?;
            }
            let pids: Vec<&str> = fw.photos.iter().map(|p| p.id.as_str()).collect();
            delete_for_docs(tx, "photos", "id", tenant, &pids).await?;
            for chunk in fw.photos.chunks(CHUNK / 4) {
                let mut qb = QueryBuilder::<$db>::new(
                    "INSERT INTO photos (tenant_id, id, author_id, sha256, size, mime, attach_kind, attach_id, project_id, site_id, day, \
                     captured_at, lat, lon, accuracy_m, caption, tags, status, reviews, comments, updated_at) ",
                );
                qb.push_values(chunk, |mut b, p| {
                    b.push_bind(tenant).push_bind(p.id.as_str()).push_bind(p.author.as_str()).push_bind(p.sha256.as_str())
                        .push_bind(p.size).push_bind(p.mime.as_str()).push_bind(p.attach_kind).push_bind(p.attach_id.as_str())
                        .push_bind(p.project.as_deref()).push_bind(p.site.as_deref()).push_bind(p.day.as_deref())
                        .push_bind(p.captured_at).push_bind(p.point.map(|x| x.0)).push_bind(p.point.map(|x| x.1))
                        .push_bind(p.point.map(|x| x.2)).push_bind(p.caption.as_str()).push_bind(p.tags.as_str())
                        .push_bind(p.status).push_bind(p.reviews.as_str()).push_bind(p.comments.as_str()).push_bind(now);
                });
                qb.build().execute(&mut **tx).await?;
            }
            let dids: Vec<&str> = fw.diaries.iter().map(|d| d.id.as_str()).collect();
            delete_for_docs(tx, "diaries", "id", tenant, &dids).await?;
            for chunk in fw.diaries.chunks(CHUNK / 4) {
                let mut qb = QueryBuilder::<$db>::new(
                    "INSERT INTO diaries (tenant_id, id, project_id, site_id, day, locked, signed_by, signed_at, record, updated_at) ",
                );
                qb.push_values(chunk, |mut b, d| {
                    b.push_bind(tenant).push_bind(d.id.as_str()).push_bind(d.project.as_str()).push_bind(d.site.as_str())
                        .push_bind(d.day.as_str()).push_bind(d.locked).push_bind(d.signed_by.as_deref()).push_bind(d.signed_at)
                        .push_bind(d.record.as_str()).push_bind(now);
                });
                qb.build().execute(&mut **tx).await?;
            }
            let mids: Vec<&str> = fw.makeups.iter().map(|m| m.id.as_str()).collect();
            delete_for_docs(tx, "makeups", "id", tenant, &mids).await?;
            for chunk in fw.makeups.chunks(CHUNK / 4) {
                let mut qb = QueryBuilder::<$db>::new(
                    "INSERT INTO makeups (tenant_id, id, user_id, project_id, site_id, direction, at_ms, reason, status, decided_by, decided_at, comment, updated_at) ",
                );
                qb.push_values(chunk, |mut b, m| {
                    b.push_bind(tenant).push_bind(m.id.as_str()).push_bind(m.user.as_str()).push_bind(m.project.as_str())
                        .push_bind(m.site.as_str()).push_bind(m.direction).push_bind(m.at_ms).push_bind(m.reason.as_str())
                        .push_bind(m.status).push_bind(m.decided_by.as_deref()).push_bind(m.decided_at)
                        .push_bind(m.comment.as_deref()).push_bind(now);
                });
                qb.build().execute(&mut **tx).await?;
            }
            Ok(())
        }

        /// Appends "the row's `col` is the caller, or someone who reports to them" (unless `all`).
        fn push_team(qb: &mut QueryBuilder<$db>, col: &str, caller: &Caller, all: bool) {
            if all {
                return;
            }
            qb.push(format!(" AND ({col} = ")).push_bind(caller.user.as_string());
            qb.push(format!(" OR {col} IN (SELECT u.id FROM users u WHERE u.tenant_id = ")).push_bind(caller.tenant.as_string());
            qb.push(" AND u.manager_id = ").push_bind(caller.user.as_string()).push("))");
        }

        fn shift_from_row(r: &DbRow) -> Result<Shift> {
            let m = |c: &str| -> Result<u16> {
                let v: i64 = r.try_get(c)?;
                u16::try_from(v).map_err(sql::corrupt)
            };
            Ok(Shift {
                name: r.try_get("name")?,
                start_min: m("start_min")?,
                end_min: m("end_min")?,
                grace_late_min: m("grace_late_min")?,
                grace_early_min: m("grace_early_min")?,
                serious_late_min: m("serious_late_min")?,
                absent_late_min: m("absent_late_min")?,
                window_before_min: m("window_before_min")?,
                window_after_min: m("window_after_min")?,
                break_min: m("break_min")?,
                required_min: m("required_min")?,
            })
        }

        /// The tenant's calendars with their days, and the number of day rows.
        async fn load_calendars(pool: &sqlx::Pool<$db>, tenant: &str) -> Result<(Vec<CalendarRow>, usize)> {
            let mut out = Vec::new();
            for r in sqlx::query("SELECT id, name, workdays FROM calendars WHERE tenant_id = $1 ORDER BY name")
                .bind(tenant)
                .fetch_all(pool)
                .await?
            {
                let flags: String = r.try_get("workdays")?;
                let mut workdays = [false; 7];
                for (i, c) in flags.chars().take(7).enumerate() {
                    workdays[i] = c == '1';
                }
                out.push(CalendarRow {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    calendar: Calendar { workdays, ..Calendar::default() },
                });
            }
            let days = sqlx::query("SELECT calendar_id, day, kind, name FROM calendar_days WHERE tenant_id = $1")
                .bind(tenant)
                .fetch_all(pool)
                .await?;
            for r in &days {
                let id: String = r.try_get("calendar_id")?;
                let day: chrono::NaiveDate = r.try_get::<String, _>("day")?.parse().map_err(sql::corrupt)?;
                let kind: String = r.try_get("kind")?;
                if let Some(c) = out.iter_mut().find(|c| c.id == id) {
                    if kind == "holiday" {
                        c.calendar.holidays.insert(day, r.try_get("name")?);
                    } else {
                        c.calendar.extra_workdays.insert(day);
                    }
                }
            }
            Ok((out, days.len()))
        }

        /// Assignments with their names, oldest first; one user's if `user` is given.
        async fn load_assignments(pool: &sqlx::Pool<$db>, tenant: &str, user: Option<&str>) -> Result<Vec<AssignmentRow>> {
            let rows = sqlx::query(
                "SELECT a.user_id, a.project_id, a.site_id, a.shift_id, a.calendar_id, a.starts_on, a.created_at, \
                 COALESCE(u.email, '') AS email, COALESCE(p.name, '') AS project_name, COALESCE(s.name, a.site_id) AS site_name, \
                 COALESCE(s.timezone, 'UTC') AS timezone \
                 FROM site_assignments a \
                 LEFT JOIN users u ON u.tenant_id = a.tenant_id AND u.id = a.user_id \
                 LEFT JOIN projects p ON p.tenant_id = a.tenant_id AND p.id = a.project_id \
                 LEFT JOIN project_sites s ON s.tenant_id = a.tenant_id AND s.project_id = a.project_id AND s.site_id = a.site_id \
                 WHERE a.tenant_id = $1 AND ($2 = '' OR a.user_id = $2) ORDER BY a.user_id, a.created_at, a.project_id, a.site_id",
            )
            .bind(tenant)
            .bind(user.unwrap_or(""))
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(AssignmentRow {
                        user: r.try_get("user_id")?,
                        email: r.try_get("email")?,
                        project: r.try_get("project_id")?,
                        project_name: r.try_get("project_name")?,
                        site: r.try_get("site_id")?,
                        site_name: r.try_get("site_name")?,
                        timezone: r.try_get("timezone")?,
                        shift_id: r.try_get("shift_id")?,
                        calendar_id: r.try_get("calendar_id")?,
                        starts_on: r
                            .try_get::<Option<String>, _>("starts_on")?
                            .map(|d| d.parse().map_err(sql::corrupt))
                            .transpose()?,
                        created_at: r.try_get("created_at")?,
                    })
                })
                .collect()
        }

        /// A query over what `caller` may read: binds `$1` (tenant), `$2` (user) and `$3`
        /// (admin) as the [`readable`] condition expects; further binds start at `$4`.
        fn for_reader(sql: String, caller: &Caller) -> sqlx::query::Query<'static, $db, <$db as sqlx::Database>::Arguments> {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(caller.tenant.as_string())
                .bind(caller.user.as_string())
                .bind(caller.role == Role::Admin)
        }

        /// Kind, stored bytes and heads of a document, if `caller` may read it.
        async fn readable_row(pool: &sqlx::Pool<$db>, caller: &Caller, doc: DocId) -> Result<Option<(String, Vec<u8>, Vec<String>)>> {
            let sql = format!(
                "SELECT d.kind, d.snapshot, d.heads FROM documents d WHERE d.tenant_id = $1 AND d.doc_id = $4 AND {}",
                readable("d.doc_id")
            );
            let row = for_reader(sql, caller)
                .bind(doc.as_string())
                .fetch_optional(pool)
                .await?;
            row.map(|r| {
                let heads: String = r.try_get("heads")?;
                Ok((r.try_get("kind")?, r.try_get("snapshot")?, serde_json::from_str(&heads).map_err(sql::corrupt)?))
            })
            .transpose()
        }

        fn customer_from_row(r: &DbRow, contacts: Vec<ContactRow>) -> Result<CustomerRow> {
            let tags: String = r.try_get("tags")?;
            let conflicts: String = r.try_get("conflicts")?;
            Ok(CustomerRow {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                customer_kind: r.try_get("customer_kind")?,
                phone: r.try_get("phone")?,
                email: r.try_get("email")?,
                address: r.try_get("address")?,
                lat: r.try_get("lat")?,
                lon: r.try_get("lon")?,
                tier: r.try_get("tier")?,
                lifecycle: r.try_get("lifecycle")?,
                owner_id: r.try_get("owner_id")?,
                tags: serde_json::from_str(&tags).map_err(sql::corrupt)?,
                notes: r.try_get("notes")?,
                conflicts: serde_json::from_str(&conflicts).map_err(sql::corrupt)?,
                contacts,
                updated_at: r.try_get("updated_at")?,
            })
        }

        #[async_trait::async_trait]
        impl Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn migrate(&self) -> Result<()> {
                self.run_migrations().await
            }

            async fn signing_secret(&self) -> Result<Vec<u8>> {
                use rand::RngCore;
                let mut fresh = [0u8; 32];
                rand::rng().fill_bytes(&mut fresh);
                let hex: String = fresh.iter().map(|b| format!("{b:02x}")).collect();
                sqlx::query("INSERT INTO settings (key, value) VALUES ('jwt_secret', $1) ON CONFLICT (key) DO NOTHING")
                    .bind(&hex)
                    .execute(&self.pool)
                    .await?;
                let row = sqlx::query("SELECT value FROM settings WHERE key = 'jwt_secret'").fetch_one(&self.pool).await?;
                let value: String = row.try_get("value")?;
                Ok(value.into_bytes())
            }

            async fn create_tenant(&self, slug: &str, name: &str) -> Result<Tenant> {
                let id = TenantId::new();
                let res = sqlx::query("INSERT INTO tenants (id, slug, name, log_seq, created_at) VALUES ($1, $2, $3, 0, $4)")
                    .bind(id.as_string())
                    .bind(slug)
                    .bind(name)
                    .bind(now_ms())
                    .execute(&self.pool)
                    .await;
                match res {
                    Ok(_) => Ok(Tenant { id, slug: slug.to_owned(), name: name.to_owned() }),
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict(format!("tenant '{slug}'"))),
                    Err(e) => Err(e.into()),
                }
            }

            async fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>> {
                let row = sqlx::query("SELECT id, slug, name FROM tenants WHERE slug = $1").bind(slug).fetch_optional(&self.pool).await?;
                row.map(|r| Ok(Tenant { id: parse_id(&r.try_get::<String, _>("id")?)?, slug: r.try_get("slug")?, name: r.try_get("name")? }))
                    .transpose()
            }

            async fn create_user(&self, tenant: TenantId, email: &str, password_hash: &str, role: Role, manager: Option<UserId>) -> Result<User> {
                let id = UserId::new();
                let res = sqlx::query(
                    "INSERT INTO users (tenant_id, id, email, password_hash, role, manager_id, disabled, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(tenant.as_string())
                .bind(id.as_string())
                .bind(email)
                .bind(password_hash)
                .bind(role.as_str())
                .bind(manager.map(|m| m.as_string()))
                .bind(false)
                .bind(now_ms())
                .execute(&self.pool)
                .await;
                match res {
                    Ok(_) => Ok(User { tenant, id, email: email.to_owned(), password_hash: password_hash.to_owned(), role, manager, disabled: false }),
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict(format!("user '{email}'"))),
                    Err(e) => Err(e.into()),
                }
            }

            async fn user_by_email(&self, tenant: TenantId, email: &str) -> Result<Option<User>> {
                sqlx::query("SELECT * FROM users WHERE tenant_id = $1 AND email = $2")
                    .bind(tenant.as_string())
                    .bind(email)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|r| user_from_row(&r))
                    .transpose()
            }

            async fn user(&self, tenant: TenantId, user: UserId) -> Result<Option<User>> {
                sqlx::query("SELECT * FROM users WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.as_string())
                    .bind(user.as_string())
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|r| user_from_row(&r))
                    .transpose()
            }

            async fn list_users(&self, tenant: TenantId) -> Result<Vec<User>> {
                sqlx::query("SELECT * FROM users WHERE tenant_id = $1 ORDER BY email")
                    .bind(tenant.as_string())
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(user_from_row)
                    .collect()
            }

            async fn set_user_disabled(&self, tenant: TenantId, user: UserId, disabled: bool) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                let t = tenant.as_string();
                let u = user.as_string();
                let res = sqlx::query("UPDATE users SET disabled = $3 WHERE tenant_id = $1 AND id = $2")
                    .bind(&t).bind(&u).bind(disabled).execute(&mut *tx).await?;
                if res.rows_affected() == 0 {
                    return Err(StoreError::NotFound(format!("user {user}")));
                }
                if disabled {
                    sqlx::query("UPDATE devices SET revoked = $3 WHERE tenant_id = $1 AND user_id = $2")
                        .bind(&t).bind(&u).bind(true).execute(&mut *tx).await?;
                    sqlx::query("DELETE FROM refresh_tokens WHERE tenant_id = $1 AND user_id = $2")
                        .bind(&t).bind(&u).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn register_device(&self, tenant: TenantId, device: DeviceId, user: UserId, name: &str) -> Result<Device> {
                let now = now_ms();
                sqlx::query(
                    "INSERT INTO devices (tenant_id, id, user_id, name, revoked, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $6, $6) \
                     ON CONFLICT (tenant_id, id) DO UPDATE SET user_id = excluded.user_id, name = excluded.name, last_seen_at = excluded.last_seen_at",
                )
                .bind(tenant.as_string())
                .bind(device.as_string())
                .bind(user.as_string())
                .bind(name)
                .bind(false)
                .bind(now)
                .execute(&self.pool)
                .await?;
                self.device(tenant, device).await?.ok_or_else(|| StoreError::NotFound(format!("device {device}")))
            }

            async fn device(&self, tenant: TenantId, device: DeviceId) -> Result<Option<Device>> {
                sqlx::query("SELECT * FROM devices WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.as_string())
                    .bind(device.as_string())
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|r| device_from_row(&r))
                    .transpose()
            }

            async fn list_devices(&self, tenant: TenantId, user: Option<UserId>) -> Result<Vec<Device>> {
                sqlx::query("SELECT * FROM devices WHERE tenant_id = $1 AND ($2 IS NULL OR user_id = $2) ORDER BY created_at")
                    .bind(tenant.as_string())
                    .bind(user.map(|u| u.as_string()))
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(device_from_row)
                    .collect()
            }

            async fn revoke_device(&self, tenant: TenantId, device: DeviceId) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                let res = sqlx::query("UPDATE devices SET revoked = $3 WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.as_string()).bind(device.as_string()).bind(true).execute(&mut *tx).await?;
                if res.rows_affected() == 0 {
                    return Err(StoreError::NotFound(format!("device {device}")));
                }
                sqlx::query("DELETE FROM refresh_tokens WHERE tenant_id = $1 AND device_id = $2")
                    .bind(tenant.as_string()).bind(device.as_string()).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn store_refresh_token(&self, tenant: TenantId, device: DeviceId, user: UserId, token_hash: &str, expires_at: i64, replaces: Option<&str>) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "INSERT INTO refresh_tokens (token_hash, tenant_id, device_id, user_id, expires_at, used_at, created_at) \
                     VALUES ($1, $2, $3, $4, $5, NULL, $6)",
                )
                .bind(token_hash)
                .bind(tenant.as_string())
                .bind(device.as_string())
                .bind(user.as_string())
                .bind(expires_at)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
                if let Some(old) = replaces {
                    sqlx::query("UPDATE refresh_tokens SET replaced_by = $2 WHERE token_hash = $1")
                        .bind(old).bind(token_hash).execute(&mut *tx).await?;
                }
                // Spent tokens are kept a day (reuse detection needs them); expired ones go.
                sqlx::query(
                    "DELETE FROM refresh_tokens WHERE tenant_id = $1 AND device_id = $2 AND (expires_at < $3 OR used_at < $4)",
                )
                .bind(tenant.as_string())
                .bind(device.as_string())
                .bind(now_ms())
                .bind(now_ms() - SPENT_REFRESH_RETENTION_MS)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn use_refresh_token(&self, token_hash: &str, now: i64) -> Result<RefreshUse> {
                let mut tx = self.pool.begin().await?;
                let fresh = sqlx::query(
                    "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 \
                     RETURNING tenant_id, device_id, user_id",
                )
                .bind(token_hash)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(r) = fresh {
                    let out = RefreshUse::Fresh {
                        tenant: parse_id(&r.try_get::<String, _>("tenant_id")?)?,
                        device: parse_id(&r.try_get::<String, _>("device_id")?)?,
                        user: parse_id(&r.try_get::<String, _>("user_id")?)?,
                    };
                    tx.commit().await?;
                    return Ok(out);
                }
                let spent = sqlx::query(
                    "SELECT tenant_id, device_id, user_id, used_at, replaced_by FROM refresh_tokens WHERE token_hash = $1 AND used_at IS NOT NULL",
                )
                .bind(token_hash)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(r) = spent else {
                    tx.rollback().await?;
                    return Ok(RefreshUse::Invalid);
                };
                let tenant: String = r.try_get("tenant_id")?;
                let device: String = r.try_get("device_id")?;
                let used_at: i64 = r.try_get("used_at")?;
                let successor: Option<String> = r.try_get("replaced_by")?;
                if let Some(next) = successor.filter(|_| now - used_at <= REFRESH_GRACE_MS) {
                    // The answer to the first exchange was probably lost: if its token was never
                    // used, drop it and let this exchange happen again.
                    let dropped = sqlx::query("DELETE FROM refresh_tokens WHERE token_hash = $1 AND used_at IS NULL")
                        .bind(&next).execute(&mut *tx).await?;
                    if dropped.rows_affected() == 1 {
                        sqlx::query("UPDATE refresh_tokens SET replaced_by = NULL WHERE token_hash = $1")
                            .bind(token_hash).execute(&mut *tx).await?;
                        let user: String = r.try_get("user_id")?;
                        tx.commit().await?;
                        return Ok(RefreshUse::Fresh { tenant: parse_id(&tenant)?, device: parse_id(&device)?, user: parse_id(&user)? });
                    }
                }
                sqlx::query("UPDATE devices SET revoked = $3 WHERE tenant_id = $1 AND id = $2")
                    .bind(&tenant).bind(&device).bind(true).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM refresh_tokens WHERE tenant_id = $1 AND device_id = $2 AND used_at IS NULL")
                    .bind(&tenant).bind(&device).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(RefreshUse::Reused { tenant: parse_id(&tenant)?, device: parse_id(&device)? })
            }

            async fn session_state(&self, tenant: TenantId, user: UserId, device: DeviceId) -> Result<SessionState> {
                let row = sqlx::query(
                    "SELECT u.role, u.disabled, d.revoked, d.user_id FROM users u JOIN devices d ON d.tenant_id = u.tenant_id AND d.id = $3 \
                     WHERE u.tenant_id = $1 AND u.id = $2",
                )
                .bind(tenant.as_string())
                .bind(user.as_string())
                .bind(device.as_string())
                .fetch_optional(&self.pool)
                .await?;
                let Some(r) = row else { return Ok(SessionState::Unknown) };
                if r.try_get::<bool, _>("disabled")? {
                    return Ok(SessionState::UserDisabled);
                }
                if r.try_get::<bool, _>("revoked")? || r.try_get::<String, _>("user_id")? != user.as_string() {
                    return Ok(SessionState::DeviceRevoked);
                }
                let role: String = r.try_get("role")?;
                Ok(SessionState::Active { role: role.parse().map_err(sql::corrupt)? })
            }

            async fn push(&self, caller: &Caller, device: DeviceId, batch_id: uuid::Uuid, items: Vec<PushItem>) -> Result<PushOutcome> {
                let tenant = caller.tenant.as_string();
                let started = std::time::Instant::now();
                let mut tx = self.begin_write(&tenant).await?;
                let previous = sqlx::query("SELECT response FROM push_batches WHERE tenant_id = $1 AND device_id = $2 AND batch_id = $3")
                    .bind(&tenant)
                    .bind(device.as_string())
                    .bind(batch_id.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(r) = previous {
                    let text: String = r.try_get("response")?;
                    tx.rollback().await?;
                    let response: PushResponse = serde_json::from_str(&text).map_err(sql::corrupt)?;
                    return Ok(PushOutcome { response, new_seq: None, audience: Vec::new() });
                }
                let dir = load_directory(&mut tx, &tenant).await?;
                let ids: Vec<String> = items
                    .iter()
                    .filter_map(|i| match i { PushItem::Apply(Incoming { doc_id, .. }) => Some(doc_id.as_string()), _ => None })
                    .collect();
                let stored = load_docs(&mut tx, &tenant, &ids).await?;
                let loaded = std::time::Instant::now();
                let who = caller.clone();
                let (mut decisions, stored, dir) = tokio::task::spawn_blocking(move || (sql::decide(items, &stored, &who, &dir), stored, dir))
                    .await
                    .map_err(|e| StoreError::Task(e.to_string()))?;

                // A project must name a customer of this tenant (stored, or created in this push).
                let referenced: Vec<String> = decisions
                    .iter()
                    .filter_map(|d| match d.write.as_ref().map(|w| &w.record) {
                        Some(Record::Project(p)) => p.customer.map(|c| c.as_string()),
                        _ => None,
                    })
                    .collect();
                if !referenced.is_empty() {
                    let mut known = existing_customers(&mut tx, &tenant, &referenced).await?;
                    known.extend(decisions.iter().filter_map(|d| match d.write.as_ref().map(|w| &w.record) {
                        Some(Record::Customer(c)) => Some(c.id.as_string()),
                        _ => None,
                    }));
                    for d in decisions.iter_mut() {
                        let missing = match d.write.as_ref().map(|w| &w.record) {
                            Some(Record::Project(p)) => p.customer.is_some_and(|c| !known.contains(&c.as_string())),
                            _ => false,
                        };
                        if missing {
                            let id = d.result.doc_id().as_string();
                            sql::reject_decision(
                                d,
                                stored.get(&id),
                                fieldsync_sync::Rejection::new("unknown_customer", "The project's customer does not exist in this company."),
                            );
                        }
                    }
                }

                // Field records: checks that need the server's tables, and grading.
                let now = now_ms();
                let field_writes = if field::touches_field(&decisions) {
                    let needs = field::needs(&decisions);
                    let mut ctx = load_field_context(&mut tx, &tenant, &needs, &decisions, now).await?;
                    Some(field::check(&mut decisions, &stored, &mut ctx))
                } else {
                    None
                };

                let decided = std::time::Instant::now();
                let writes: Vec<&DocWrite> = decisions.iter().filter_map(|d| d.write.as_ref()).collect();
                let audience = sql::audience(&writes, &dir);
                let entries: i64 = writes.iter().map(|w| w.log.len() as i64).sum();
                let mut new_seq = None;
                if entries > 0 {
                    let row = sqlx::query("UPDATE tenants SET log_seq = log_seq + $2 WHERE id = $1 RETURNING log_seq")
                        .bind(&tenant)
                        .bind(entries)
                        .fetch_one(&mut *tx)
                        .await?;
                    let last: i64 = row.try_get("log_seq")?;
                    write_docs(&mut tx, &tenant, &device.as_string(), &writes, last - entries + 1, now).await?;
                    new_seq = Some(last);
                }
                if let Some(fw) = &field_writes {
                    write_field(&mut tx, &tenant, fw, now).await?;
                }
                // A project's members changed: its photos and diaries follow.
                let mut audience = audience;
                for w in &writes {
                    if let (Some(_), Record::Project(p)) = (&w.principals, &w.record) {
                        let members: Vec<UserId> = p.members.iter().map(|m| m.user).collect();
                        if let Some((last, told)) =
                            follow_project(&mut tx, &tenant, &device.as_string(), &w.doc_id, &members, &dir, now).await?
                        {
                            new_seq = Some(last);
                            audience.extend(told);
                        }
                    }
                }
                let written = std::time::Instant::now();
                let response = PushResponse { v: PROTOCOL_VERSION, batch_id, results: decisions.into_iter().map(|d| d.result).collect() };
                sqlx::query("INSERT INTO push_batches (tenant_id, device_id, batch_id, response, created_at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(&tenant)
                    .bind(device.as_string())
                    .bind(batch_id.to_string())
                    .bind(serde_json::to_string(&response).map_err(sql::corrupt)?)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                // Answers are kept for a week: long enough for any retry of a lost answer. A
                // retry after that is decided afresh, and changes the server already has add
                // nothing, so it still stores nothing twice.
                sqlx::query("DELETE FROM push_batches WHERE tenant_id = $1 AND device_id = $2 AND created_at < $3")
                    .bind(&tenant)
                    .bind(device.as_string())
                    .bind(now - PUSH_ANSWER_RETENTION_MS)
                    .execute(&mut *tx)
                    .await?;
                // Durable before acknowledged: the answer leaves only after this commit.
                tx.commit().await?;
                tracing::debug!(
                    docs = ids.len(),
                    lock_and_load = ?loaded - started,
                    decide = ?decided - loaded,
                    write = ?written - decided,
                    answer_and_commit = ?written.elapsed(),
                    "push committed"
                );
                Ok(PushOutcome { response, new_seq, audience })
            }

            async fn pull(&self, caller: &Caller, device: Option<DeviceId>, cursor: Cursor, max_bytes: u64) -> Result<PullResponse> {
                let tenant = caller.tenant.as_string();
                let head: i64 = sqlx::query("SELECT log_seq FROM tenants WHERE id = $1")
                    .bind(&tenant)
                    .fetch_one(&self.pool)
                    .await?
                    .try_get("log_seq")?;
                let mut items = Vec::new();
                let mut bytes: u64 = 0;
                match cursor {
                    Cursor::Start | Cursor::Bootstrap { .. } => {
                        // First sync: the readable documents as they stand, compacted, in id order.
                        let (seq, mut after) = match cursor {
                            Cursor::Bootstrap { seq, after } => (seq, after.as_string()),
                            _ => (head, String::new()),
                        };
                        let sql = format!(
                            "SELECT d.doc_id, d.kind, d.snapshot, d.heads FROM documents d WHERE d.tenant_id = $1 AND d.doc_id > $4 AND {} \
                             ORDER BY d.doc_id LIMIT 256",
                            readable("d.doc_id")
                        );
                        loop {
                            let rows = for_reader(sql.clone(), caller).bind(&after).fetch_all(&self.pool).await?;
                            let full = rows.len() == 256;
                            for r in &rows {
                                let doc: Vec<u8> = r.try_get("snapshot")?;
                                bytes += doc.len() as u64;
                                after = r.try_get("doc_id")?;
                                let kind: RecordKind = r.try_get::<String, _>("kind")?.parse().map_err(sql::corrupt)?;
                                let heads: String = r.try_get("heads")?;
                                let heads = serde_json::from_str(&heads).map_err(sql::corrupt)?;
                                items.push(PullItem::Snapshot { doc_id: parse_id(&after)?, kind, doc: B64(doc), heads });
                                if bytes >= max_bytes {
                                    break;
                                }
                            }
                            if bytes >= max_bytes && (full || items.len() % 256 != 0 || !rows.is_empty()) {
                                // Page full: continue from here next time (an empty next page is harmless).
                                let cursor = Cursor::Bootstrap { seq, after: parse_id(&after)? };
                                return Ok(PullResponse { v: PROTOCOL_VERSION, items, cursor: cursor.encode(), more: true, server_time_ms: now_ms() });
                            }
                            if !full {
                                break;
                            }
                        }
                        Ok(PullResponse { v: PROTOCOL_VERSION, items, cursor: Cursor::Log { seq }.encode(), more: false, server_time_ms: now_ms() })
                    }
                    Cursor::Log { seq } => {
                        if seq > head {
                            return Err(StoreError::NotFound("cursor from the future".into()));
                        }
                        let sql = format!(
                            "SELECT l.seq, l.doc_id, l.kind, l.entry, l.data, d.snapshot, d.heads FROM change_log l \
                             LEFT JOIN documents d ON d.tenant_id = l.tenant_id AND d.doc_id = l.doc_id AND l.data IS NULL AND l.entry = 'changes' \
                             WHERE l.tenant_id = $1 AND l.seq > $4 AND l.seq <= $5 \
                             AND ((l.entry = 'changes' AND (l.device_id IS NULL OR l.device_id <> $6) AND {}) OR (l.entry <> 'changes' AND l.user_id = $2)) \
                             ORDER BY l.seq LIMIT 512",
                            readable("l.doc_id")
                        );
                        let rows = for_reader(sql.clone(), caller).bind(seq).bind(head).bind(device.map(|d| d.as_string()).unwrap_or_default()).fetch_all(&self.pool).await?;
                        let full = rows.len() == 512;
                        let mut last = seq;
                        for r in &rows {
                            if bytes >= max_bytes {
                                return Ok(PullResponse { v: PROTOCOL_VERSION, items, cursor: Cursor::Log { seq: last }.encode(), more: true, server_time_ms: now_ms() });
                            }
                            last = r.try_get("seq")?;
                            let doc_id: DocId = parse_id(&r.try_get::<String, _>("doc_id")?)?;
                            let kind: RecordKind = r.try_get::<String, _>("kind")?.parse().map_err(sql::corrupt)?;
                            match r.try_get::<String, _>("entry")?.as_str() {
                                "changes" => match r.try_get::<Option<Vec<u8>>, _>("data")? {
                                    Some(data) => {
                                        bytes += data.len() as u64;
                                        let changes = unframe_changes(&data)?.into_iter().map(B64).collect();
                                        items.push(PullItem::Changes { doc_id, kind, changes });
                                    }
                                    // The entry of a new document: the stored document (which
                                    // holds those changes, and any made since) goes whole.
                                    None => {
                                        let doc: Vec<u8> = r.try_get::<Option<Vec<u8>>, _>("snapshot")?.ok_or_else(|| sql::corrupt("log entry without its document"))?;
                                        let heads: String = r.try_get::<Option<String>, _>("heads")?.unwrap_or_else(|| "[]".into());
                                        bytes += doc.len() as u64;
                                        items.push(PullItem::Snapshot { doc_id, kind, doc: B64(doc), heads: serde_json::from_str(&heads).map_err(sql::corrupt)? });
                                    }
                                },
                                "grant" => {
                                    if let Some((_, doc, heads)) = readable_row(&self.pool, caller, doc_id).await? {
                                        bytes += doc.len() as u64;
                                        items.push(PullItem::Snapshot { doc_id, kind, doc: B64(doc), heads });
                                    }
                                }
                                _ => {
                                    if self.readable_doc(caller, doc_id).await?.is_none() {
                                        items.push(PullItem::Revoke { doc_id, reason: "access_removed".into() });
                                    }
                                }
                            }
                        }
                        let cursor = if full { last } else { head };
                        Ok(PullResponse { v: PROTOCOL_VERSION, items, cursor: Cursor::Log { seq: cursor }.encode(), more: full, server_time_ms: now_ms() })
                    }
                }
            }

            async fn repair(&self, caller: &Caller, heads: Vec<(DocId, Vec<String>)>) -> Result<RepairResponse> {
                let tenant = caller.tenant.as_string();
                let head: i64 = sqlx::query("SELECT log_seq FROM tenants WHERE id = $1")
                    .bind(&tenant)
                    .fetch_one(&self.pool)
                    .await?
                    .try_get("log_seq")?;
                let sql = format!("SELECT d.doc_id, d.kind, d.heads FROM documents d WHERE d.tenant_id = $1 AND {}", readable("d.doc_id"));
                let mut server: HashMap<String, (String, Vec<String>)> = HashMap::new();
                for r in for_reader(sql.clone(), caller).fetch_all(&self.pool).await? {
                    let h: String = r.try_get("heads")?;
                    server.insert(r.try_get("doc_id")?, (r.try_get("kind")?, serde_json::from_str(&h).map_err(sql::corrupt)?));
                }
                let phone_ids: Vec<String> = heads.iter().map(|(d, _)| d.as_string()).collect();
                let unknown: Vec<String> = phone_ids.iter().filter(|d| !server.contains_key(*d)).cloned().collect();
                // Documents the phone holds that exist here but that it may not read.
                let mut conn = self.pool.acquire().await?;
                let hidden: HashSet<String> = documents_in(&mut conn, &tenant, &unknown, "doc_id", "")
                    .await?
                    .iter()
                    .map(|r| Ok(r.try_get::<String, _>("doc_id")?))
                    .collect::<Result<_>>()?;
                let mut items = Vec::new();
                for (doc_id, phone_heads) in &heads {
                    let id = doc_id.as_string();
                    match server.get(&id) {
                        Some((kind, server_heads)) => {
                            let mut a = phone_heads.clone();
                            let mut b = server_heads.clone();
                            a.sort();
                            b.sort();
                            if a != b {
                                let kind = kind.parse().map_err(sql::corrupt)?;
                                items.push(RepairItem::Differs { doc_id: *doc_id, kind, heads: server_heads.clone() });
                            }
                        }
                        None if hidden.contains(&id) => items.push(RepairItem::Revoke { doc_id: *doc_id, reason: "access_removed".into() }),
                        // Never pushed from the phone: it is the phone's to push, not to delete.
                        None => {}
                    }
                }
                let phone: HashSet<&String> = phone_ids.iter().collect();
                let missing: Vec<String> = server.keys().filter(|k| !phone.contains(k)).cloned().collect();
                let mut missing_docs = HashMap::new();
                for r in documents_in(&mut conn, &tenant, &missing, "doc_id, snapshot", "").await? {
                    missing_docs.insert(r.try_get::<String, _>("doc_id")?, r.try_get::<Vec<u8>, _>("snapshot")?);
                }
                for (id, doc) in missing_docs {
                    let kind = server.get(&id).map(|(k, _)| k.as_str()).unwrap_or("customer").parse().map_err(sql::corrupt)?;
                    items.push(RepairItem::Snapshot { doc_id: parse_id(&id)?, kind, doc: B64(doc) });
                }
                Ok(RepairResponse { v: PROTOCOL_VERSION, items, cursor: Cursor::Log { seq: head }.encode() })
            }

            async fn readable_doc(&self, caller: &Caller, doc: DocId) -> Result<Option<(String, Vec<u8>)>> {
                Ok(readable_row(&self.pool, caller, doc).await?.map(|(kind, bytes, _)| (kind, bytes)))
            }

            async fn list_customers(&self, caller: &Caller) -> Result<Vec<CustomerRow>> {
                let sql = format!("SELECT c.* FROM customers c WHERE c.tenant_id = $1 AND {} ORDER BY c.name, c.id", readable("c.id"));
                let rows = for_reader(sql, caller)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(|r| customer_from_row(r, Vec::new())).collect()
            }

            async fn customer(&self, caller: &Caller, id: DocId) -> Result<Option<CustomerRow>> {
                let sql = format!("SELECT c.* FROM customers c WHERE c.tenant_id = $1 AND c.id = $4 AND {}", readable("c.id"));
                let Some(r) = for_reader(sql, caller)
                    .bind(id.as_string())
                    .fetch_optional(&self.pool)
                    .await?
                else {
                    return Ok(None);
                };
                let contacts = sqlx::query("SELECT * FROM customer_contacts WHERE tenant_id = $1 AND customer_id = $2 ORDER BY contact_id")
                    .bind(caller.tenant.as_string())
                    .bind(id.as_string())
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(|k| {
                        Ok(ContactRow {
                            id: k.try_get("contact_id")?,
                            name: k.try_get("name")?,
                            title: k.try_get("title")?,
                            phone: k.try_get("phone")?,
                            email: k.try_get("email")?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                customer_from_row(&r, contacts).map(Some)
            }

            async fn list_projects(&self, caller: &Caller) -> Result<Vec<ProjectRow>> {
                let sql = format!("SELECT p.id FROM projects p WHERE p.tenant_id = $1 AND {} ORDER BY p.name, p.id", readable("p.id"));
                let ids = for_reader(sql, caller)
                    .fetch_all(&self.pool)
                    .await?;
                let mut out = Vec::with_capacity(ids.len());
                for r in ids {
                    let id: DocId = parse_id(&r.try_get::<String, _>("id")?)?;
                    if let Some(p) = self.project(caller, id).await? {
                        out.push(p);
                    }
                }
                Ok(out)
            }

            async fn project(&self, caller: &Caller, id: DocId) -> Result<Option<ProjectRow>> {
                let sql = format!("SELECT p.* FROM projects p WHERE p.tenant_id = $1 AND p.id = $4 AND {}", readable("p.id"));
                let t = caller.tenant.as_string();
                let pid = id.as_string();
                let Some(r) = for_reader(sql, caller)
                    .bind(&pid)
                    .fetch_optional(&self.pool)
                    .await?
                else {
                    return Ok(None);
                };
                let mut sites = Vec::new();
                for s in sqlx::query("SELECT * FROM project_sites WHERE tenant_id = $1 AND project_id = $2 ORDER BY site_id")
                    .bind(&t).bind(&pid).fetch_all(&self.pool).await?
                {
                    let polygon: Option<String> = s.try_get("polygon")?;
                    sites.push(serde_json::json!({
                        "id": s.try_get::<String, _>("site_id")?,
                        "name": s.try_get::<String, _>("name")?,
                        "address": s.try_get::<Option<String>, _>("address")?,
                        "timezone": s.try_get::<String, _>("timezone")?,
                        "fence_shape": s.try_get::<Option<String>, _>("fence_shape")?,
                        "center_lat": s.try_get::<Option<f64>, _>("center_lat")?,
                        "center_lon": s.try_get::<Option<f64>, _>("center_lon")?,
                        "radius_m": s.try_get::<Option<f64>, _>("radius_m")?,
                        "polygon": polygon.map(|p| serde_json::from_str::<serde_json::Value>(&p)).transpose().map_err(sql::corrupt)?,
                    }));
                }
                let mut members = Vec::new();
                for m in sqlx::query("SELECT * FROM project_members WHERE tenant_id = $1 AND project_id = $2 ORDER BY user_id")
                    .bind(&t).bind(&pid).fetch_all(&self.pool).await?
                {
                    members.push(serde_json::json!({"user_id": m.try_get::<String, _>("user_id")?, "role": m.try_get::<String, _>("role")?}));
                }
                let mut milestones = Vec::new();
                for m in sqlx::query("SELECT * FROM project_milestones WHERE tenant_id = $1 AND project_id = $2 ORDER BY milestone_id")
                    .bind(&t).bind(&pid).fetch_all(&self.pool).await?
                {
                    milestones.push(serde_json::json!({
                        "id": m.try_get::<String, _>("milestone_id")?,
                        "name": m.try_get::<String, _>("name")?,
                        "due": m.try_get::<Option<String>, _>("due")?,
                        "status": m.try_get::<String, _>("status")?,
                    }));
                }
                Ok(Some(ProjectRow {
                    id: pid.clone(),
                    customer_id: r.try_get("customer_id")?,
                    name: r.try_get("name")?,
                    code: r.try_get("code")?,
                    status: r.try_get("status")?,
                    created_by: r.try_get("created_by")?,
                    sites,
                    members,
                    milestones,
                    updated_at: r.try_get("updated_at")?,
                }))
            }

            async fn field_policy(&self, tenant: TenantId) -> Result<fieldsync_sync::Policy> {
                field_policy(&self.pool, &tenant.as_string()).await
            }

            async fn set_field_policy(&self, tenant: TenantId, policy: &fieldsync_sync::Policy) -> Result<()> {
                sqlx::query(
                    "INSERT INTO field_policies (tenant_id, policy, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (tenant_id) DO UPDATE SET policy = excluded.policy, updated_at = excluded.updated_at",
                )
                .bind(tenant.as_string())
                .bind(serde_json::to_string(policy).map_err(sql::corrupt)?)
                .bind(now_ms())
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn create_shift(&self, tenant: TenantId, shift: &Shift) -> Result<ShiftRow> {
                let id = uuid::Uuid::now_v7().to_string();
                let res = sqlx::query(
                    "INSERT INTO shifts (tenant_id, id, name, start_min, end_min, grace_late_min, grace_early_min, serious_late_min, \
                     absent_late_min, window_before_min, window_after_min, break_min, required_min, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                )
                .bind(tenant.as_string()).bind(&id).bind(shift.name.trim())
                .bind(i64::from(shift.start_min)).bind(i64::from(shift.end_min)).bind(i64::from(shift.grace_late_min))
                .bind(i64::from(shift.grace_early_min)).bind(i64::from(shift.serious_late_min)).bind(i64::from(shift.absent_late_min))
                .bind(i64::from(shift.window_before_min)).bind(i64::from(shift.window_after_min)).bind(i64::from(shift.break_min))
                .bind(i64::from(shift.required_min)).bind(now_ms())
                .execute(&self.pool)
                .await;
                match res {
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                        Err(StoreError::Conflict(format!("a shift named '{}'", shift.name.trim())))
                    }
                    Err(e) => Err(e.into()),
                    Ok(_) => Ok(ShiftRow { id, shift: Shift { name: shift.name.trim().to_owned(), ..shift.clone() } }),
                }
            }

            async fn list_shifts(&self, tenant: TenantId) -> Result<Vec<ShiftRow>> {
                let rows = sqlx::query("SELECT * FROM shifts WHERE tenant_id = $1 ORDER BY name")
                    .bind(tenant.as_string())
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(|r| Ok(ShiftRow { id: r.try_get("id")?, shift: shift_from_row(r)? })).collect()
            }

            async fn create_calendar(&self, tenant: TenantId, name: &str, calendar: &Calendar) -> Result<CalendarRow> {
                let id = uuid::Uuid::now_v7().to_string();
                let tenant_s = tenant.as_string();
                let mut tx = self.pool.begin().await?;
                let res = sqlx::query("INSERT INTO calendars (tenant_id, id, name, workdays, created_at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(&tenant_s).bind(&id).bind(name.trim())
                    .bind(calendar.workdays.iter().map(|w| if *w { '1' } else { '0' }).collect::<String>())
                    .bind(now_ms())
                    .execute(&mut *tx)
                    .await;
                match res {
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                        return Err(StoreError::Conflict(format!("a calendar named '{}'", name.trim())));
                    }
                    Err(e) => return Err(e.into()),
                    Ok(_) => {}
                }
                let days: Vec<(String, &str, String)> = calendar.holidays.iter().map(|(d, n)| (d.to_string(), "holiday", n.clone()))
                    .chain(calendar.extra_workdays.iter().map(|d| (d.to_string(), "workday", String::new())))
                    .collect();
                for chunk in days.chunks(CHUNK) {
                    let mut qb = QueryBuilder::<$db>::new("INSERT INTO calendar_days (tenant_id, calendar_id, day, kind, name) ");
                    qb.push_values(chunk, |mut b, (d, k, n)| {
                        b.push_bind(&tenant_s).push_bind(&id).push_bind(d.as_str()).push_bind(*k).push_bind(n.as_str());
                    });
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(CalendarRow { id, name: name.trim().to_owned(), calendar: calendar.clone() })
            }

            async fn list_calendars(&self, tenant: TenantId) -> Result<Vec<CalendarRow>> {
                let (calendars, _) = load_calendars(&self.pool, &tenant.as_string()).await?;
                Ok(calendars)
            }

            async fn assign_site(&self, tenant: TenantId, user: UserId, project: DocId, site: &str, shift_id: &str, calendar_id: &str, starts_on: Option<chrono::NaiveDate>) -> Result<AssignmentRow> {
                let t = tenant.as_string();
                let mut tx = self.pool.begin().await?;
                let checks = [
                    ("user", "SELECT 1 AS x FROM users WHERE tenant_id = $1 AND id = $2 AND $3 = $3", user.as_string(), String::new()),
                    ("site", "SELECT 1 AS x FROM project_sites WHERE tenant_id = $1 AND project_id = $2 AND site_id = $3", project.as_string(), site.to_owned()),
                    ("shift", "SELECT 1 AS x FROM shifts WHERE tenant_id = $1 AND id = $2 AND $3 = $3", shift_id.to_owned(), String::new()),
                    ("calendar", "SELECT 1 AS x FROM calendars WHERE tenant_id = $1 AND id = $2 AND $3 = $3", calendar_id.to_owned(), String::new()),
                ];
                for (what, q, a, b) in checks {
                    let found = sqlx::query(q).bind(&t).bind(&a).bind(&b).fetch_optional(&mut *tx).await?;
                    if found.is_none() {
                        return Err(StoreError::NotFound(what.to_owned()));
                    }
                }
                sqlx::query(
                    "INSERT INTO site_assignments (tenant_id, user_id, project_id, site_id, shift_id, calendar_id, starts_on, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant_id, user_id, project_id, site_id) \
                     DO UPDATE SET shift_id = excluded.shift_id, calendar_id = excluded.calendar_id, starts_on = excluded.starts_on",
                )
                .bind(&t).bind(user.as_string()).bind(project.as_string()).bind(site).bind(shift_id).bind(calendar_id)
                .bind(starts_on.map(|d| d.to_string())).bind(now_ms())
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                let mut all = load_assignments(&self.pool, &t, Some(&user.as_string())).await?;
                all.retain(|a| a.project == project.as_string() && a.site == site);
                all.pop().ok_or_else(|| StoreError::NotFound("assignment".into()))
            }

            async fn unassign_site(&self, tenant: TenantId, user: UserId, project: DocId, site: &str) -> Result<bool> {
                let res = sqlx::query("DELETE FROM site_assignments WHERE tenant_id = $1 AND user_id = $2 AND project_id = $3 AND site_id = $4")
                    .bind(tenant.as_string()).bind(user.as_string()).bind(project.as_string()).bind(site)
                    .execute(&self.pool)
                    .await?;
                Ok(res.rows_affected() > 0)
            }

            async fn assignments(&self, tenant: TenantId, user: Option<UserId>) -> Result<Vec<AssignmentRow>> {
                load_assignments(&self.pool, &tenant.as_string(), user.map(|u| u.as_string()).as_deref()).await
            }

            async fn set_leave(&self, tenant: TenantId, user: UserId, days: &[chrono::NaiveDate], kind: Option<&str>) -> Result<()> {
                let t = tenant.as_string();
                let u = user.as_string();
                let mut tx = self.pool.begin().await?;
                for d in days {
                    sqlx::query("DELETE FROM leave_days WHERE tenant_id = $1 AND user_id = $2 AND day = $3")
                        .bind(&t).bind(&u).bind(d.to_string())
                        .execute(&mut *tx)
                        .await?;
                    if let Some(k) = kind {
                        sqlx::query("INSERT INTO leave_days (tenant_id, user_id, day, kind) VALUES ($1, $2, $3, $4)")
                            .bind(&t).bind(&u).bind(d.to_string()).bind(k)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            async fn attendance_inputs(&self, tenant: TenantId, users: Option<&[UserId]>, from_ms: i64, to_ms: i64) -> Result<AttendanceInputs> {
                let t = tenant.as_string();
                let wanted: Option<HashSet<String>> = users.map(|u| u.iter().map(|u| u.as_string()).collect());
                let keep = |u: &str| wanted.as_ref().is_none_or(|w| w.contains(u));
                let mut out = AttendanceInputs::default();
                for r in sqlx::query("SELECT id, email, role, manager_id, disabled FROM users WHERE tenant_id = $1 ORDER BY email")
                    .bind(&t)
                    .fetch_all(&self.pool)
                    .await?
                {
                    let id: String = r.try_get("id")?;
                    if keep(&id) {
                        out.people.push(Person {
                            id,
                            email: r.try_get("email")?,
                            role: r.try_get::<String, _>("role")?.parse().map_err(sql::corrupt)?,
                            manager: r.try_get("manager_id")?,
                            disabled: r.try_get("disabled")?,
                        });
                    }
                }
                for a in load_assignments(&self.pool, &t, None).await? {
                    if keep(&a.user) {
                        out.assignments.entry(a.user.clone()).or_default().push(a);
                    }
                }
                for s in self.list_shifts(tenant).await? {
                    out.shifts.insert(s.id, s.shift);
                }
                let (calendars, _) = load_calendars(&self.pool, &t).await?;
                for c in calendars {
                    out.calendars.insert(c.id, c.calendar);
                }
                for r in sqlx::query("SELECT user_id, day, kind FROM leave_days WHERE tenant_id = $1")
                    .bind(&t)
                    .fetch_all(&self.pool)
                    .await?
                {
                    let user: String = r.try_get("user_id")?;
                    if keep(&user)
                        && let Ok(day) = r.try_get::<String, _>("day")?.parse::<chrono::NaiveDate>()
                    {
                        out.leave.entry(user).or_default().insert(day, r.try_get("kind")?);
                    }
                }
                for r in sqlx::query("SELECT project_id, site_id, name FROM project_sites WHERE tenant_id = $1")
                    .bind(&t)
                    .fetch_all(&self.pool)
                    .await?
                {
                    out.site_names.insert((r.try_get("project_id")?, r.try_get("site_id")?), r.try_get("name")?);
                }
                // Streamed: a month of a large tenant is a hundred thousand rows or more, and
                // only the compact rows are kept.
                {
                    use futures_util::TryStreamExt;
                    let mut rows = sqlx::query(
                        "SELECT doc_id, user_id, at_ms, direction, project_id, site_id, trust FROM field_events \
                         WHERE tenant_id = $1 AND event = 'punch' AND at_ms >= $2 AND at_ms < $3",
                    )
                    .bind(&t)
                    .bind(from_ms)
                    .bind(to_ms)
                    .fetch(&self.pool);
                    while let Some(r) = rows.try_next().await? {
                        let user: String = r.try_get("user_id")?;
                        if !keep(&user) {
                            continue;
                        }
                        out.punches.push(PunchRow {
                            id: r.try_get("doc_id")?,
                            user,
                            at_ms: r.try_get("at_ms")?,
                            direction: r.try_get::<Option<String>, _>("direction")?.unwrap_or_default().parse().map_err(sql::corrupt)?,
                            project: r.try_get::<Option<String>, _>("project_id")?.unwrap_or_default(),
                            site: r.try_get::<Option<String>, _>("site_id")?.unwrap_or_default(),
                            trust: r.try_get::<String, _>("trust")?.parse().map_err(sql::corrupt)?,
                            makeup: false,
                        });
                    }
                }
                for r in sqlx::query(
                    "SELECT id, user_id, at_ms, direction, project_id, site_id FROM makeups \
                     WHERE tenant_id = $1 AND status = 'approved' AND at_ms >= $2 AND at_ms < $3",
                )
                .bind(&t)
                .bind(from_ms)
                .bind(to_ms)
                .fetch_all(&self.pool)
                .await?
                {
                    let user: String = r.try_get("user_id")?;
                    if !keep(&user) {
                        continue;
                    }
                    out.punches.push(PunchRow {
                        id: r.try_get("id")?,
                        user,
                        at_ms: r.try_get("at_ms")?,
                        direction: r.try_get::<String, _>("direction")?.parse().map_err(sql::corrupt)?,
                        project: r.try_get("project_id")?,
                        site: r.try_get("site_id")?,
                        trust: fieldsync_sync::TrustLevel::Verified,
                        makeup: true,
                    });
                }
                out.punches.sort_by(|a, b| (a.user.as_str(), a.at_ms).cmp(&(b.user.as_str(), b.at_ms)));
                Ok(out)
            }

            async fn list_visits(&self, caller: &Caller, filter: &VisitFilter, now: i64) -> Result<Vec<VisitRow>> {
                let mut qb = QueryBuilder::<$db>::new(
                    "SELECT v.*, (SELECT c.name FROM customers c WHERE c.tenant_id = v.tenant_id AND c.id = v.customer_id) AS customer_name, \
                     (SELECT e.trust || '|' || e.reasons FROM field_events e WHERE e.tenant_id = v.tenant_id AND e.doc_id = v.id AND e.event = 'visit_check_in') AS in_verdict, \
                     (SELECT e.trust || '|' || e.reasons FROM field_events e WHERE e.tenant_id = v.tenant_id AND e.doc_id = v.id AND e.event = 'visit_check_out') AS out_verdict \
                     FROM visits v WHERE v.tenant_id = ",
                );
                qb.push_bind(caller.tenant.as_string());
                push_team(&mut qb, "v.rep_id", caller, caller.role == Role::Admin);
                if let Some(r) = &filter.rep {
                    qb.push(" AND v.rep_id = ").push_bind(r.clone());
                }
                if let Some(c) = &filter.customer {
                    qb.push(" AND v.customer_id = ").push_bind(c.clone());
                }
                if let Some(f) = filter.from {
                    qb.push(" AND v.check_in_at >= ").push_bind(f);
                }
                if let Some(t) = filter.to {
                    qb.push(" AND v.check_in_at < ").push_bind(t);
                }
                if let Some(r) = &filter.review {
                    qb.push(" AND v.review_status = ").push_bind(r.clone());
                }
                qb.push(" ORDER BY COALESCE(v.check_in_at, 0) DESC, v.planned_date DESC, v.id DESC LIMIT 2000");
                let rows = qb.build().fetch_all(&self.pool).await?;
                let verdict = |raw: Option<String>| -> Option<serde_json::Value> {
                    let raw = raw?;
                    let (trust, reasons) = raw.split_once('|')?;
                    Some(serde_json::json!({ "trust": trust, "reasons": serde_json::from_str::<serde_json::Value>(reasons).unwrap_or_default() }))
                };
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    let cancelled: bool = r.try_get("cancelled")?;
                    let check_in_at: Option<i64> = r.try_get("check_in_at")?;
                    let check_out_at: Option<i64> = r.try_get("check_out_at")?;
                    let auto_close_at: Option<i64> = r.try_get("auto_close_at")?;
                    let (state, auto_closed_at) = if cancelled {
                        ("cancelled", None)
                    } else if check_out_at.is_some() {
                        ("closed", None)
                    } else if check_in_at.is_some() {
                        match auto_close_at {
                            Some(a) if a <= now => ("auto_closed", Some(a)),
                            _ => ("open", None),
                        }
                    } else {
                        ("planned", None)
                    };
                    if filter.state.as_deref().is_some_and(|s| s != state) {
                        continue;
                    }
                    let reviews: String = r.try_get("reviews")?;
                    out.push(VisitRow {
                        id: r.try_get("id")?,
                        customer_id: r.try_get("customer_id")?,
                        customer_name: r.try_get("customer_name")?,
                        rep_id: r.try_get("rep_id")?,
                        planned_date: r.try_get("planned_date")?,
                        purpose: r.try_get("purpose")?,
                        state: state.to_owned(),
                        check_in_at,
                        check_out_at,
                        auto_closed_at,
                        outcome: r.try_get("outcome")?,
                        notes: r.try_get("notes")?,
                        next_follow_up: r.try_get("next_follow_up")?,
                        review_status: r.try_get("review_status")?,
                        reviews: serde_json::from_str(&reviews).map_err(sql::corrupt)?,
                        check_in_verdict: verdict(r.try_get("in_verdict")?),
                        check_out_verdict: verdict(r.try_get("out_verdict")?),
                    });
                }
                Ok(out)
            }

            async fn field_events(&self, caller: &Caller, filter: &EventFilter) -> Result<Vec<FieldEventRow>> {
                let mut qb = QueryBuilder::<$db>::new("SELECT * FROM field_events e WHERE e.tenant_id = ");
                qb.push_bind(caller.tenant.as_string());
                push_team(&mut qb, "e.user_id", caller, matches!(caller.role, Role::Admin | Role::Hr));
                if let Some(u) = &filter.user {
                    qb.push(" AND e.user_id = ").push_bind(u.clone());
                }
                if let Some(ev) = &filter.event {
                    qb.push(" AND e.event = ").push_bind(ev.clone());
                }
                if let Some(tr) = &filter.trust {
                    qb.push(" AND e.trust = ").push_bind(tr.clone());
                }
                if let Some(f) = filter.from {
                    qb.push(" AND e.at_ms >= ").push_bind(f);
                }
                if let Some(t) = filter.to {
                    qb.push(" AND e.at_ms < ").push_bind(t);
                }
                qb.push(" ORDER BY e.at_ms DESC LIMIT 5000");
                let rows = qb.build().fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|r| {
                        let reasons: String = r.try_get("reasons")?;
                        Ok(FieldEventRow {
                            doc_id: r.try_get("doc_id")?,
                            event: r.try_get("event")?,
                            user_id: r.try_get("user_id")?,
                            at_ms: r.try_get("at_ms")?,
                            device_time_ms: r.try_get("device_time_ms")?,
                            lat: r.try_get("lat")?,
                            lon: r.try_get("lon")?,
                            accuracy_m: r.try_get("accuracy_m")?,
                            provider: r.try_get("provider")?,
                            mock: r.try_get("mock")?,
                            customer_id: r.try_get("customer_id")?,
                            project_id: r.try_get("project_id")?,
                            site_id: r.try_get("site_id")?,
                            direction: r.try_get("direction")?,
                            target_name: r.try_get("target_name")?,
                            trust: r.try_get("trust")?,
                            reasons: serde_json::from_str(&reasons).map_err(sql::corrupt)?,
                            distance_m: r.try_get("distance_m")?,
                            allowed_m: r.try_get("allowed_m")?,
                            received_at: r.try_get("received_at")?,
                        })
                    })
                    .collect()
            }

            async fn record_photo_media(&self, tenant: TenantId, m: &MediaRow) -> Result<()> {
                sqlx::query(
                    "INSERT INTO photo_media (tenant_id, sha256, width, height, exif_time_ms, exif_lat, exif_lon, make, model, phash, damaged, error, processed_at, exif_time_zoned) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (tenant_id, sha256) DO UPDATE SET \
                     width = excluded.width, height = excluded.height, exif_time_ms = excluded.exif_time_ms, exif_time_zoned = excluded.exif_time_zoned, exif_lat = excluded.exif_lat, \
                     exif_lon = excluded.exif_lon, make = excluded.make, model = excluded.model, phash = excluded.phash, \
                     damaged = excluded.damaged, error = excluded.error, processed_at = excluded.processed_at",
                )
                .bind(tenant.as_string()).bind(&m.sha256).bind(m.width).bind(m.height).bind(m.exif_time_ms)
                .bind(m.exif_lat).bind(m.exif_lon).bind(m.make.as_deref()).bind(m.model.as_deref()).bind(m.phash.as_deref())
                .bind(m.damaged).bind(m.error.as_deref()).bind(now_ms()).bind(m.exif_time_zoned)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn photo_media(&self, tenant: TenantId, sha256: &[String]) -> Result<Vec<MediaRow>> {
                let mut tx = self.pool.begin().await?;
                let rows = select_in(&mut tx, "SELECT * FROM photo_media", "sha256", &tenant.as_string(), sha256, "").await?;
                tx.rollback().await?;
                rows.iter()
                    .map(|r| {
                        Ok(MediaRow {
                            sha256: r.try_get("sha256")?,
                            width: r.try_get("width")?,
                            height: r.try_get("height")?,
                            exif_time_ms: r.try_get("exif_time_ms")?,
                            exif_time_zoned: r.try_get("exif_time_zoned")?,
                            exif_lat: r.try_get("exif_lat")?,
                            exif_lon: r.try_get("exif_lon")?,
                            make: r.try_get("make")?,
                            model: r.try_get("model")?,
                            phash: r.try_get("phash")?,
                            damaged: r.try_get("damaged")?,
                            error: r.try_get("error")?,
                        })
                    })
                    .collect()
            }

            async fn photo_hashes(&self, tenant: TenantId) -> Result<Vec<(String, String, u64)>> {
                let rows = sqlx::query(
                    "SELECT p.id, p.sha256, m.phash FROM photos p JOIN photo_media m ON m.tenant_id = p.tenant_id AND m.sha256 = p.sha256 \
                     WHERE p.tenant_id = $1 AND m.phash IS NOT NULL",
                )
                .bind(tenant.as_string())
                .fetch_all(&self.pool)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    let h: String = r.try_get("phash")?;
                    if let Ok(h) = u64::from_str_radix(&h, 16) {
                        out.push((r.try_get("id")?, r.try_get("sha256")?, h));
                    }
                }
                Ok(out)
            }

            async fn list_diaries(&self, caller: &Caller, filter: &DiaryFilter) -> Result<Vec<DiaryRow>> {
                let sql = format!(
                    "SELECT d.* FROM diaries d WHERE d.tenant_id = $1 AND {} \
                     AND ($4 = '' OR d.project_id = $4) AND ($5 = '' OR d.site_id = $5) \
                     AND ($6 = '' OR d.day >= $6) AND ($7 = '' OR d.day <= $7) \
                     ORDER BY d.day, d.project_id, d.site_id LIMIT 2000",
                    readable("d.id")
                );
                let opt = |v: &Option<String>| v.clone().unwrap_or_default();
                let rows = for_reader(sql, caller)
                    .bind(opt(&filter.project))
                    .bind(opt(&filter.site))
                    .bind(opt(&filter.from))
                    .bind(opt(&filter.to))
                    .fetch_all(&self.pool)
                    .await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    let locked: bool = r.try_get("locked")?;
                    if filter.locked.is_some_and(|l| l != locked) {
                        continue;
                    }
                    out.push(DiaryRow {
                        id: r.try_get("id")?,
                        project_id: r.try_get("project_id")?,
                        site_id: r.try_get("site_id")?,
                        day: r.try_get("day")?,
                        locked,
                        signed_by: r.try_get("signed_by")?,
                        signed_at: r.try_get("signed_at")?,
                        record: serde_json::from_str(&r.try_get::<String, _>("record")?).map_err(sql::corrupt)?,
                    });
                }
                Ok(out)
            }

            async fn add_project_file(&self, tenant: TenantId, f: &ProjectFile) -> Result<()> {
                sqlx::query(
                    "INSERT INTO project_files (tenant_id, id, project_id, name, sha256, size, mime, note, added_by, added_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (tenant_id, id) DO NOTHING",
                )
                .bind(tenant.as_string()).bind(&f.id).bind(&f.project_id).bind(&f.name).bind(&f.sha256).bind(f.size)
                .bind(&f.mime).bind(&f.note).bind(&f.added_by).bind(f.added_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn project_files(&self, tenant: TenantId, project: &str) -> Result<Vec<ProjectFile>> {
                let rows = sqlx::query(
                    "SELECT * FROM project_files WHERE tenant_id = $1 AND project_id = $2 AND removed_at IS NULL ORDER BY added_at, id",
                )
                .bind(tenant.as_string())
                .bind(project)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(ProjectFile {
                            id: r.try_get("id")?,
                            project_id: r.try_get("project_id")?,
                            name: r.try_get("name")?,
                            sha256: r.try_get("sha256")?,
                            size: r.try_get("size")?,
                            mime: r.try_get("mime")?,
                            note: r.try_get("note")?,
                            added_by: r.try_get("added_by")?,
                            added_at: r.try_get("added_at")?,
                        })
                    })
                    .collect()
            }

            async fn remove_project_file(&self, tenant: TenantId, project: &str, id: &str, by: UserId, at: i64) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE project_files SET removed_by = $4, removed_at = $5 WHERE tenant_id = $1 AND project_id = $2 AND id = $3 AND removed_at IS NULL",
                )
                .bind(tenant.as_string()).bind(project).bind(id).bind(by.as_string()).bind(at)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn project_in_punches(&self, tenant: TenantId, project: &str, from_ms: i64, to_ms: i64) -> Result<Vec<(String, String, i64)>> {
                let rows = sqlx::query(
                    "SELECT site_id, user_id, at_ms FROM field_events WHERE tenant_id = $1 AND project_id = $2 \
                     AND event = 'punch' AND direction = 'in' AND at_ms >= $3 AND at_ms < $4 AND trust <> 'rejected' ORDER BY at_ms",
                )
                .bind(tenant.as_string())
                .bind(project)
                .bind(from_ms)
                .bind(to_ms)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| Ok((r.try_get::<Option<String>, _>("site_id")?.unwrap_or_default(), r.try_get("user_id")?, r.try_get("at_ms")?)))
                    .collect()
            }

            async fn site_punches(&self, tenant: TenantId, project: &str, site: &str, from_ms: i64, to_ms: i64) -> Result<Vec<SitePunch>> {
                let rows = sqlx::query(
                    "SELECT user_id, direction, at_ms, trust FROM field_events WHERE tenant_id = $1 AND project_id = $2 \
                     AND site_id = $3 AND event = 'punch' AND at_ms >= $4 AND at_ms < $5 AND trust <> 'rejected' \
                     ORDER BY user_id, at_ms",
                )
                .bind(tenant.as_string())
                .bind(project)
                .bind(site)
                .bind(from_ms)
                .bind(to_ms)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(SitePunch {
                            user_id: r.try_get("user_id")?,
                            direction: r.try_get::<Option<String>, _>("direction")?.unwrap_or_default(),
                            at_ms: r.try_get("at_ms")?,
                            trust: r.try_get("trust")?,
                        })
                    })
                    .collect()
            }

            async fn list_photos(&self, caller: &Caller, filter: &PhotoFilter) -> Result<Vec<PhotoRow>> {
                let sql = format!(
                    "SELECT p.*, e.trust AS ev_trust, e.reasons AS ev_reasons, \
                     s.name AS site_name, s.fence_shape, s.center_lat, s.center_lon, s.radius_m, s.polygon, \
                     c.name AS customer_name, c.lat AS customer_lat, c.lon AS customer_lon, c.visit_radius_m AS customer_radius \
                     FROM photos p \
                     LEFT JOIN field_events e ON e.tenant_id = p.tenant_id AND e.doc_id = p.id AND e.event = 'photo' \
                     LEFT JOIN project_sites s ON s.tenant_id = p.tenant_id AND s.project_id = p.project_id AND s.site_id = p.site_id \
                     LEFT JOIN visits v ON p.attach_kind = 'visit' AND v.tenant_id = p.tenant_id AND v.id = p.attach_id \
                     LEFT JOIN customers c ON c.tenant_id = p.tenant_id \
                       AND c.id = CASE WHEN p.attach_kind = 'customer' THEN p.attach_id ELSE v.customer_id END \
                     WHERE p.tenant_id = $1 AND {} \
                     AND ($4 = '' OR p.project_id = $4) AND ($5 = '' OR p.site_id = $5) AND ($6 = '' OR p.day = $6) \
                     AND ($7 = '' OR p.author_id = $7) AND ($8 = '' OR p.status = $8) \
                     AND p.captured_at >= $9 AND p.captured_at < $10 \
                     AND ($11 = '' OR (p.attach_kind = 'customer' AND p.attach_id = $11) OR (p.attach_kind = 'visit' AND v.customer_id = $11)) \
                     ORDER BY p.captured_at DESC, p.id DESC LIMIT 5000",
                    readable("p.id")
                );
                let opt = |v: &Option<String>| v.clone().unwrap_or_default();
                let rows = for_reader(sql, caller)
                    .bind(opt(&filter.project))
                    .bind(opt(&filter.site))
                    .bind(opt(&filter.day))
                    .bind(opt(&filter.author))
                    .bind(opt(&filter.status))
                    .bind(filter.from.unwrap_or(i64::MIN))
                    .bind(filter.to.unwrap_or(i64::MAX))
                    .bind(opt(&filter.customer))
                    .fetch_all(&self.pool)
                    .await?;
                let json = |t: String| serde_json::from_str::<serde_json::Value>(&t).map_err(sql::corrupt);
                rows.iter()
                    .map(|r| {
                        Ok(PhotoRow {
                            id: r.try_get("id")?,
                            author_id: r.try_get("author_id")?,
                            sha256: r.try_get("sha256")?,
                            size: r.try_get("size")?,
                            mime: r.try_get("mime")?,
                            attach_kind: r.try_get("attach_kind")?,
                            attach_id: r.try_get("attach_id")?,
                            project_id: r.try_get("project_id")?,
                            site_id: r.try_get("site_id")?,
                            day: r.try_get("day")?,
                            captured_at: r.try_get("captured_at")?,
                            lat: r.try_get("lat")?,
                            lon: r.try_get("lon")?,
                            accuracy_m: r.try_get("accuracy_m")?,
                            caption: r.try_get("caption")?,
                            tags: json(r.try_get("tags")?)?,
                            status: r.try_get("status")?,
                            reviews: json(r.try_get("reviews")?)?,
                            comments: json(r.try_get("comments")?)?,
                            trust: r.try_get("ev_trust")?,
                            reasons: r.try_get::<Option<String>, _>("ev_reasons")?.map(json).transpose()?,
                            place: {
                                let shape: Option<String> = r.try_get("fence_shape")?;
                                let polygon: Option<String> = r.try_get("polygon")?;
                                let fence = sql::fence_from_columns(shape.as_deref(), r.try_get("center_lat")?, r.try_get("center_lon")?, r.try_get("radius_m")?, polygon.as_deref())?;
                                let customer = r.try_get::<Option<f64>, _>("customer_lat")?.zip(r.try_get::<Option<f64>, _>("customer_lon")?);
                                match (fence, customer) {
                                    (Some(fence), _) => Some(PhotoPlace::Site { name: r.try_get::<Option<String>, _>("site_name")?.unwrap_or_default(), fence }),
                                    (None, Some((lat, lon))) => Some(PhotoPlace::Customer {
                                        name: r.try_get::<Option<String>, _>("customer_name")?.unwrap_or_default(),
                                        location: fieldsync_sync::GeoPoint { lat, lon },
                                        radius_m: r.try_get("customer_radius")?,
                                    }),
                                    (None, None) => None,
                                }
                            },
                        })
                    })
                    .collect()
            }

            async fn list_makeups(&self, caller: &Caller, status: Option<&str>) -> Result<Vec<MakeupRow>> {
                let mut qb = QueryBuilder::<$db>::new("SELECT * FROM makeups m WHERE m.tenant_id = ");
                qb.push_bind(caller.tenant.as_string());
                push_team(&mut qb, "m.user_id", caller, matches!(caller.role, Role::Admin | Role::Hr));
                if let Some(s) = status {
                    qb.push(" AND m.status = ").push_bind(s.to_owned());
                }
                qb.push(" ORDER BY m.at_ms DESC LIMIT 2000");
                let rows = qb.build().fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|r| {
                        Ok(MakeupRow {
                            id: r.try_get("id")?,
                            user_id: r.try_get("user_id")?,
                            project_id: r.try_get("project_id")?,
                            site_id: r.try_get("site_id")?,
                            direction: r.try_get("direction")?,
                            at_ms: r.try_get("at_ms")?,
                            reason: r.try_get("reason")?,
                            status: r.try_get("status")?,
                            decided_by: r.try_get("decided_by")?,
                            decided_at: r.try_get("decided_at")?,
                            comment: r.try_get("comment")?,
                        })
                    })
                    .collect()
            }

            async fn import_keys(&self, tenant: TenantId, keys: &[String]) -> Result<HashMap<String, DocId>> {
                let mut out = HashMap::with_capacity(keys.len());
                let mut conn = self.pool.acquire().await?;
                for chunk in keys.chunks(CHUNK) {
                    let mut qb = QueryBuilder::<$db>::new("SELECT import_key, customer_id FROM customer_import_keys WHERE tenant_id = ");
                    qb.push_bind(tenant.as_string()).push(" AND import_key IN (");
                    let mut sep = qb.separated(", ");
                    for k in chunk {
                        sep.push_bind(k.as_str());
                    }
                    qb.push(")");
                    for r in qb.build().fetch_all(&mut *conn).await? {
                        out.insert(r.try_get::<String, _>("import_key")?, parse_id(&r.try_get::<String, _>("customer_id")?)?);
                    }
                }
                Ok(out)
            }

            async fn reserve_import_keys(&self, tenant: TenantId, keys: &[(String, DocId)]) -> Result<HashMap<String, DocId>> {
                let now = now_ms();
                let mut tx = self.pool.begin().await?;
                for chunk in keys.chunks(CHUNK / 2) {
                    let mut qb = QueryBuilder::<$db>::new("INSERT INTO customer_import_keys (tenant_id, import_key, customer_id, created_at) ");
                    qb.push_values(chunk, |mut b, (k, id)| {
                        b.push_bind(tenant.as_string()).push_bind(k.as_str()).push_bind(id.as_string()).push_bind(now);
                    });
                    qb.push(" ON CONFLICT (tenant_id, import_key) DO NOTHING");
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                let names: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
                self.import_keys(tenant, &names).await
            }

            async fn customer_docs(&self, tenant: TenantId, ids: &[DocId]) -> Result<HashMap<DocId, Vec<u8>>> {
                let ids: Vec<String> = ids.iter().map(|d| d.as_string()).collect();
                let mut conn = self.pool.acquire().await?;
                documents_in(&mut conn, &tenant.as_string(), &ids, "doc_id, snapshot", "kind = 'customer' AND")
                    .await?
                    .iter()
                    .map(|r| Ok((parse_id(&r.try_get::<String, _>("doc_id")?)?, r.try_get::<Vec<u8>, _>("snapshot")?)))
                    .collect()
            }

            async fn count_documents(&self, tenant: TenantId) -> Result<i64> {
                Ok(sqlx::query("SELECT COUNT(*) AS n FROM documents WHERE tenant_id = $1")
                    .bind(tenant.as_string())
                    .fetch_one(&self.pool)
                    .await?
                    .try_get("n")?)
            }
        }
    };
}
pub(super) use impl_store;
