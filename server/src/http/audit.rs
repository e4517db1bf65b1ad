//! The audit over HTTP (see `crate::audit`):
//!
//! * `GET /v1/audit/records/{doc_id}?limit=&cursor=`: a record's history. Admins, and managers
//!   of someone the record belongs to; anyone else who may not is answered 403 (reps, site
//!   managers, HR) or 404 (a manager whose team the record is not of, another tenant's record).
//! * `GET /v1/audit/changes?user=&kind=&from=&to=&limit=&cursor=`: every change in the tenant,
//!   newest first, by who pushed it, record kind and when the server received it. Admins.
//! * `GET /v1/audit/access?viewer=&subject=&from=&to=&limit=&cursor=`: who read whose location
//!   or attendance data, newest first. Admins and HR; anyone may ask `subject=me`.
//!
//! Times are milliseconds since the epoch, RFC 3339, or a date (`YYYY-MM-DD`, UTC; as `to`, the
//! whole day is included). `from` is inclusive, `to` exclusive.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiQuery as Query, Auth};
use super::parse_path_id;
use crate::app::AppState;
use crate::audit::{self, LoggedChange, MAX_PAGE, Names, RecordHistory};
use crate::store::audit::{AccessEntry, AccessFilter, ChangeFilter, LogRow};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use fieldsync_sync::{DocId, RecordKind, Role, UserId};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

fn invalid(code: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

/// A page size: `default` when absent, at most `max`.
fn limit(raw: Option<&str>, default: usize, max: usize) -> ApiResult<usize> {
    match raw {
        None => Ok(default),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(invalid(
                "invalid_limit",
                format!("'{s}' is not a page size; use a whole number from 1 to {max}."),
            )),
        },
    }
}

fn bad_cursor(raw: &str) -> ApiError {
    invalid(
        "invalid_cursor",
        format!("'{raw}' is not a cursor this listing gave out; start without one."),
    )
}

/// A point in time (ms): milliseconds, RFC 3339, or a date (its start; its end when `end`).
pub fn parse_time(raw: &str, name: &str, end: bool) -> ApiResult<i64> {
    let raw = raw.trim();
    if let Ok(ms) = raw.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        let day = if end { d.succ_opt() } else { Some(d) };
        if let Some(t) = day.and_then(|d| d.and_hms_opt(0, 0, 0)) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    Err(invalid(
        "invalid_time",
        format!(
            "'{raw}' is not a time for '{name}'; use milliseconds since 1970, RFC 3339 or YYYY-MM-DD."
        ),
    ))
}

/// `from` and `to` as a period (ms), `from` not after `to`.
fn period(from: Option<&str>, to: Option<&str>) -> ApiResult<(Option<i64>, Option<i64>)> {
    let from = from.map(|f| parse_time(f, "from", false)).transpose()?;
    let to = to.map(|t| parse_time(t, "to", true)).transpose()?;
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(invalid(
            "invalid_period",
            "The period ends ('to') before it starts ('from').",
        ));
    }
    Ok((from, to))
}

/// A user named in a query: `me` or a user id.
fn user_param(raw: &str, auth: &Auth) -> ApiResult<UserId> {
    if raw == "me" {
        Ok(auth.caller.user)
    } else {
        parse_path_id(raw, "user")
    }
}

#[derive(Deserialize)]
pub struct HistoryQuery {
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// `GET /v1/audit/records/{doc_id}`.
pub async fn record_history(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<Json<RecordHistory>> {
    let id: DocId = parse_path_id(&id, "record")?;
    if !matches!(auth.caller.role, Role::Admin | Role::Manager) {
        return Err(ApiError::forbidden(
            "forbidden",
            "A record's history is for admins and the managers of the people it belongs to.",
        ));
    }
    let limit = limit(q.limit.as_deref(), 100, MAX_PAGE)?;
    let offset = match q.cursor.as_deref() {
        None => 0,
        Some(c) => c.parse::<usize>().map_err(|_| bad_cursor(c))?,
    };
    let tenant = auth.caller.tenant;
    let Some(history) = state.store.doc_history(tenant, &id.as_string()).await? else {
        return Err(ApiError::not_found("record"));
    };
    if auth.caller.role != Role::Admin {
        let manager_of: HashMap<String, Option<String>> = state
            .store
            .list_users(tenant)
            .await?
            .into_iter()
            .map(|u| (u.id.as_string(), u.manager.map(|m| m.as_string())))
            .collect();
        if !audit::may_audit_record(&auth.caller, &history.principals, &manager_of) {
            return Err(ApiError::not_found("record"));
        }
    }
    let rows: Vec<&LogRow> = history.rows.iter().collect();
    let names = Names::load(state.store.as_ref(), tenant, &rows).await?;
    let doc_id = id.as_string();
    let out = tokio::task::spawn_blocking(move || {
        audit::record_history(&doc_id, &history, &names, offset, limit)
    })
    .await
    .map_err(|_| ApiError::internal())??;
    Ok(Json(out))
}

#[derive(Deserialize)]
pub struct ChangesQuery {
    pub user: Option<String>,
    pub kind: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// `GET /v1/audit/changes`.
pub async fn changes(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<ChangesQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    auth.require_admin()?;
    let user = q
        .user
        .as_deref()
        .map(|u| user_param(u, &auth))
        .transpose()?;
    let kind = q
        .kind
        .as_deref()
        .map(|k| k.parse::<RecordKind>().map_err(ApiError::bad_request))
        .transpose()?;
    let (from, to) = period(q.from.as_deref(), q.to.as_deref())?;
    let limit = limit(q.limit.as_deref(), 50, 200)?;
    let before_seq = match q.cursor.as_deref() {
        None => None,
        Some(c) => Some(c.parse::<i64>().map_err(|_| bad_cursor(c))?),
    };
    let tenant = auth.caller.tenant;
    let rows = state
        .store
        .change_rows(
            tenant,
            &ChangeFilter {
                user: user.map(|u| u.as_string()),
                kind: kind.map(|k| k.as_str().to_owned()),
                from,
                to,
                before_seq,
                limit: limit as i64,
            },
        )
        .await?;
    let next_cursor = (rows.len() == limit)
        .then(|| rows.last().map(|r| r.seq.to_string()))
        .flatten();
    // The documents involved, each loaded once (at most `limit` of them).
    let mut by_doc: BTreeMap<String, Vec<LogRow>> = BTreeMap::new();
    for r in &rows {
        by_doc.entry(r.doc_id.clone()).or_default().push(r.clone());
    }
    let refs: Vec<&LogRow> = rows.iter().collect();
    let names = std::sync::Arc::new(Names::load(state.store.as_ref(), tenant, &refs).await?);
    let mut described: HashMap<i64, LoggedChange> = HashMap::new();
    for (doc, doc_rows) in by_doc {
        let Some(history) = state.store.doc_history(tenant, &doc).await? else {
            continue;
        };
        let names = names.clone();
        let out =
            tokio::task::spawn_blocking(move || audit::describe_rows(&history, &doc_rows, &names))
                .await
                .map_err(|_| ApiError::internal())??;
        described.extend(out.into_iter().map(|c| (c.seq, c)));
    }
    let entries: Vec<LoggedChange> = rows
        .iter()
        .filter_map(|r| described.remove(&r.seq))
        .collect();
    Ok(Json(
        serde_json::json!({ "entries": entries, "next_cursor": next_cursor }),
    ))
}

#[derive(Deserialize)]
pub struct AccessQuery {
    pub viewer: Option<String>,
    pub subject: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// `GET /v1/audit/access`.
pub async fn access(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<AccessQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let subject = q
        .subject
        .as_deref()
        .map(|s| user_param(s, &auth))
        .transpose()?;
    if !matches!(auth.caller.role, Role::Admin | Role::Hr) && subject != Some(auth.caller.user) {
        return Err(ApiError::forbidden(
            "forbidden",
            "The access log is for admins and HR; you may ask who viewed your own data with subject=me.",
        ));
    }
    let viewer = q
        .viewer
        .as_deref()
        .map(|v| user_param(v, &auth))
        .transpose()?;
    let (from, to) = period(q.from.as_deref(), q.to.as_deref())?;
    let limit = limit(q.limit.as_deref(), 100, MAX_PAGE)?;
    let before = match q.cursor.as_deref() {
        None => None,
        Some(c) => Some(
            c.parse::<uuid::Uuid>()
                .map_err(|_| bad_cursor(c))?
                .to_string(),
        ),
    };
    let tenant = auth.caller.tenant;
    // Reads over a set that held the subject: the whole tenant, their manager's team, or the
    // team they lead.
    let mut subject_scopes = Vec::new();
    if let Some(s) = subject {
        if let Some(m) = state.store.user(tenant, s).await?.and_then(|u| u.manager) {
            subject_scopes.push(format!("team:{m}"));
        }
        subject_scopes.push(format!("team:{s}"));
    }
    let entries: Vec<AccessEntry> = state
        .store
        .access_log(
            tenant,
            &AccessFilter {
                viewer: viewer.map(|v| v.as_string()),
                subject: subject.map(|s| s.as_string()),
                subject_scopes,
                from,
                to,
                before,
                limit: limit as i64,
            },
        )
        .await?;
    let next_cursor = (entries.len() == limit)
        .then(|| entries.last().map(|e| e.id.clone()))
        .flatten();
    Ok(Json(
        serde_json::json!({ "entries": entries, "next_cursor": next_cursor }),
    ))
}
