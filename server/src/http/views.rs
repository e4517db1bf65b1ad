//! The 360 views: everything about one customer, and everything about one project, each in one
//! answer.
//!
//! - Customer: the record (contacts, notes, tags), one timeline newest first (visits and their
//!   reports and reviews, photos, the customer's projects, every change of owner from the
//!   record's Automerge history), the follow-ups due, and counts.
//! - Project: sites, members, milestones and their status, the site diary by day, photos,
//!   attached files, and the attendance headcount per site and day.
//!
//! Both are read as their record's readers may: whoever may see the customer (or project) sees
//! what belongs with it, whoever made it, as the visit timeline already does.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiQuery as Query, Auth};
use super::parse_path_id;
use crate::app::AppState;
use crate::audit::{self, Names};
use crate::store::audit::LogRow;
use crate::store::{DiaryFilter, PhotoFilter};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::TimeZone;
use fieldsync_sync::DocId;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Days of headcount a project view covers by default (and at most).
const HEADCOUNT_DAYS: i64 = 31;
const MAX_HEADCOUNT_DAYS: i64 = 366;

/// Every change of a record's `owner`, oldest first: when the server received it, who made it
/// (user and device, or the server on someone's behalf) and the owner before and after.
async fn owner_history(
    state: &AppState,
    tenant: fieldsync_sync::TenantId,
    id: DocId,
) -> ApiResult<Vec<Value>> {
    let Some(history) = state.store.doc_history(tenant, &id.as_string()).await? else {
        return Ok(Vec::new());
    };
    let rows: Vec<&LogRow> = history.rows.iter().collect();
    let names = Names::load(state.store.as_ref(), tenant, &rows).await?;
    let doc_id = id.as_string();
    let full = tokio::task::spawn_blocking(move || {
        audit::record_history(&doc_id, &history, &names, 0, usize::MAX)
    })
    .await
    .map_err(|_| ApiError::internal())??;
    let emails: std::collections::HashMap<String, String> = state
        .store
        .list_users(tenant)
        .await?
        .into_iter()
        .map(|u| (u.id.as_string(), u.email))
        .collect();
    let name = |v: &Option<Value>| {
        v.as_ref()
            .and_then(Value::as_str)
            .map(|u| emails.get(u).cloned().unwrap_or_else(|| u.to_owned()))
    };
    Ok(full
        .changes
        .iter()
        .flat_map(|c| {
            c.fields
                .iter()
                .filter(|f| f.field == "owner")
                .map(|f| {
                    json!({
                        "at_ms": c.received_at,
                        "change": c.hash,
                        "by": c.by.label,
                        "from": f.old, "from_email": name(&f.old),
                        "to": f.new, "to_email": name(&f.new),
                        "concurrent": c.concurrent,
                    })
                })
                .collect::<Vec<_>>()
        })
        .collect())
}

/// `GET /v1/customers/{id}/360`.
pub async fn customer_360(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id: DocId = parse_path_id(&id, "customer")?;
    let (customer, visits, as_owner) =
        super::field::customer_with_visits(&state, &auth.caller, id).await?;
    let photos = state
        .store
        .list_photos(
            &as_owner,
            &PhotoFilter {
                customer: Some(id.as_string()),
                ..PhotoFilter::default()
            },
        )
        .await?;
    let projects: Vec<Value> = state
        .store
        .list_projects(&auth.caller)
        .await?
        .into_iter()
        .filter(|p| p.customer_id.as_deref() == Some(id.as_string().as_str()))
        .map(|p| {
            json!({"id": p.id, "name": p.name, "code": p.code, "status": p.status,
                   "sites": p.sites.len(), "members": p.members.len(), "updated_at": p.updated_at})
        })
        .collect();
    let owners = owner_history(&state, auth.caller.tenant, id).await?;
    crate::audit::viewed_timeline(&state, &auth.caller, id, &visits).await;

    let mut timeline: Vec<(i64, Value)> = Vec::new();
    for v in &visits {
        if let Some(t) = v.check_in_at {
            timeline.push((t, json!({"at_ms": t, "kind": "visit", "visit_id": v.id, "rep_id": v.rep_id,
                "purpose": v.purpose, "state": v.state, "check_out_at": v.check_out_at, "outcome": v.outcome,
                "notes": v.notes, "next_follow_up": v.next_follow_up, "verdict": v.check_in_verdict})));
        }
        if let Some(reviews) = v.reviews.as_array() {
            for r in reviews {
                let t = r.get("at_ms").and_then(Value::as_i64).unwrap_or(0);
                timeline.push((
                    t,
                    json!({"at_ms": t, "kind": "visit_review", "visit_id": v.id, "review": r}),
                ));
            }
        }
    }
    for p in &photos {
        timeline.push((p.captured_at, json!({"at_ms": p.captured_at, "kind": "photo", "photo_id": p.id,
            "author_id": p.author_id, "caption": p.caption, "status": p.status, "attach_kind": p.attach_kind,
            "attach_id": p.attach_id, "thumbnail": format!("/v1/photos/{}/file/320", p.id)})));
    }
    for o in &owners {
        let t = o["at_ms"].as_i64().unwrap_or(0);
        let mut e = o.clone();
        e["kind"] = json!("owner_change");
        timeline.push((t, e));
    }
    timeline.sort_by_key(|(t, _)| std::cmp::Reverse(*t));
    let today = chrono::Utc::now().date_naive().to_string();
    let mut follow_ups: Vec<Value> = visits
        .iter()
        .filter_map(|v| {
            let due = v.next_follow_up.clone()?;
            Some(json!({"due": due, "overdue": due < today, "visit_id": v.id, "rep_id": v.rep_id, "outcome": v.outcome}))
        })
        .collect();
    follow_ups.sort_by(|a, b| a["due"].as_str().cmp(&b["due"].as_str()));
    let planned: Vec<Value> = visits
        .iter()
        .filter(|v| v.state == "planned")
        .map(|v| json!({"visit_id": v.id, "rep_id": v.rep_id, "planned_date": v.planned_date, "purpose": v.purpose}))
        .collect();
    let made = visits.iter().filter(|v| v.check_in_at.is_some());
    Ok(Json(json!({
        "customer": customer,
        "counts": {
            "visits": made.clone().count(),
            "photos": photos.len(),
            "projects": projects.len(),
            "contacts": customer.contacts.len(),
        },
        "last_visit_at": made.filter_map(|v| v.check_in_at).max(),
        "follow_ups": follow_ups,
        "planned_visits": planned,
        "projects": projects,
        "owner_history": owners,
        "timeline": timeline.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Default, Deserialize)]
pub struct ProjectViewQuery {
    /// Headcount from / to, `YYYY-MM-DD` (default: the last 31 days).
    pub from: Option<String>,
    pub to: Option<String>,
}

fn day(v: &str, field: &str) -> ApiResult<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_date",
            format!("'{v}' in '{field}' is not a date (YYYY-MM-DD)."),
        )
    })
}

/// `GET /v1/projects/{id}/360?from=&to=`.
pub async fn project_360(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<ProjectViewQuery>,
) -> ApiResult<Json<Value>> {
    let id: DocId = parse_path_id(&id, "project")?;
    let project = state
        .store
        .project(&auth.caller, id)
        .await?
        .ok_or_else(|| ApiError::not_found("project"))?;
    let to = match &q.to {
        Some(t) => day(t, "to")?,
        None => chrono::Utc::now().date_naive(),
    };
    let from = match &q.from {
        Some(f) => day(f, "from")?,
        None => to - chrono::Duration::days(HEADCOUNT_DAYS - 1),
    };
    if to < from || (to - from).num_days() >= MAX_HEADCOUNT_DAYS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_period",
            format!("The period must run forwards and hold at most {MAX_HEADCOUNT_DAYS} days."),
        ));
    }
    let pid = id.as_string();
    let diaries: Vec<Value> = state
        .store
        .list_diaries(
            &auth.caller,
            &DiaryFilter {
                project: Some(pid.clone()),
                ..DiaryFilter::default()
            },
        )
        .await?
        .into_iter()
        .map(|d| {
            json!({"id": d.id, "site_id": d.site_id, "day": d.day, "locked": d.locked,
                   "signed_by": d.signed_by, "signed_at": d.signed_at,
                   "crew": d.record.crew.len(), "incidents": d.record.incidents.len(),
                   "delays": d.record.delays.len(),
                   "work_excerpt": d.record.work.chars().take(160).collect::<String>()})
        })
        .collect();
    let photos = state
        .store
        .list_photos(
            &auth.caller,
            &PhotoFilter {
                project: Some(pid.clone()),
                ..PhotoFilter::default()
            },
        )
        .await?;
    let mut photo_status: BTreeMap<String, usize> = BTreeMap::new();
    for p in &photos {
        *photo_status.entry(p.status.clone()).or_default() += 1;
    }
    let files = state.store.project_files(auth.caller.tenant, &pid).await?;

    // Headcount: distinct people with an in-punch, per site and local day.
    let zone = |site: &str| -> chrono_tz::Tz {
        project
            .sites
            .iter()
            .find(|s| s["id"] == site)
            .and_then(|s| s["timezone"].as_str())
            .and_then(|z| z.parse().ok())
            .unwrap_or(chrono_tz::UTC)
    };
    // A day's edges differ by site zone: read a day either side and keep the local days asked.
    let lo = chrono::Utc
        .from_utc_datetime(&(from - chrono::Duration::days(1)).and_time(chrono::NaiveTime::MIN))
        .timestamp_millis();
    let hi = chrono::Utc
        .from_utc_datetime(&(to + chrono::Duration::days(2)).and_time(chrono::NaiveTime::MIN))
        .timestamp_millis();
    let mut heads: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for (site, user, at) in state
        .store
        .project_in_punches(auth.caller.tenant, &pid, lo, hi)
        .await?
    {
        let Some(t) = chrono::DateTime::from_timestamp_millis(at) else {
            continue;
        };
        let local = t.with_timezone(&zone(&site)).date_naive();
        if local < from || local > to {
            continue;
        }
        heads
            .entry((local.to_string(), site))
            .or_default()
            .insert(user);
    }
    let headcount: Vec<Value> = heads
        .into_iter()
        .map(|((day, site), users)| json!({"day": day, "site_id": site, "people": users.len()}))
        .collect();
    let milestones_done = project
        .milestones
        .iter()
        .filter(|m| m["status"] == "done")
        .count();
    Ok(Json(json!({
        "project": project,
        "milestones_summary": {"total": project.milestones.len(), "done": milestones_done},
        "diaries": diaries,
        "photos": {
            "count": photos.len(),
            "by_status": photo_status,
            "latest": photos.iter().take(50).map(|p| json!({
                "id": p.id, "captured_at": p.captured_at, "site_id": p.site_id, "day": p.day,
                "caption": p.caption, "status": p.status, "author_id": p.author_id,
                "thumbnail": format!("/v1/photos/{}/file/320", p.id)})).collect::<Vec<_>>(),
        },
        "files": files,
        "headcount": {"from": from.to_string(), "to": to.to_string(), "days": headcount},
    })))
}
