//! Field work over HTTP, for managers' dashboards and the web: visits (list, review, due
//! follow-ups, a customer's timeline), graded field events, and make-up requests (list,
//! decide).
//!
//! A review or a decision made here is an ordinary change to the record's Automerge document,
//! made by the server on the manager's behalf and applied through the same push path (and the
//! same rules) as a phone's change, so the rep's phone receives it at its next sync.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiQuery as Query, Auth};
use super::parse_path_id;
use crate::app::AppState;
use crate::store::{
    EventFilter, FieldEventRow, MakeupRow, PushItem, VisitFilter, VisitRow, now_ms,
};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use fieldsync_sync::merge::Incoming;
use fieldsync_sync::protocol::PushResult;
use fieldsync_sync::{
    DeviceId, DocId, MakeupDecision, MakeupStatus, Record, Rejection, Review, ReviewDecision, Role,
};
use serde::Deserialize;

/// Changes a record on `auth`'s behalf through the push path. `change` edits the typed record;
/// the server writes the difference into the document as one Automerge change.
pub async fn edit_record(
    state: &AppState,
    auth: &Auth,
    id: DocId,
    what: &str,
    change: impl FnOnce(&mut Record) -> Result<(), ApiError> + Send,
) -> ApiResult<Record> {
    let (kind, bytes) = state
        .store
        .readable_doc(&auth.caller, id)
        .await?
        .ok_or_else(|| ApiError::not_found(what))?;
    let mut doc = automerge::Automerge::load(&bytes).map_err(|_| ApiError::internal())?;
    let (mut record, _) = Record::read(&doc).map_err(|_| ApiError::internal())?;
    change(&mut record)?;
    // A fresh actor per edit: the server is not a long-lived peer with its own history.
    doc.set_actor(automerge::ActorId::random());
    let before = doc.get_heads();
    let mut tx = doc.transaction();
    record.write(&mut tx).map_err(|_| ApiError::internal())?;
    tx.commit();
    let changes: Vec<Vec<u8>> = doc
        .get_changes(&before)
        .into_iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect();
    if changes.is_empty() {
        return Ok(record);
    }
    let kind = kind.parse().map_err(|_| ApiError::internal())?;
    // Not any phone's device: every device of the author gets the change at its next pull.
    let device = DeviceId::new();
    let out = state
        .store
        .push(
            &auth.caller,
            device,
            uuid::Uuid::now_v7(),
            vec![PushItem::Apply(Incoming {
                doc_id: id,
                kind,
                changes,
            })],
        )
        .await?;
    state.announce_push(auth.caller.tenant, &out);
    match out.response.results.into_iter().next() {
        Some(PushResult::Accepted { .. }) => Ok(record),
        Some(PushResult::Rejected { error, .. }) => Err(rejected(error)),
        _ => Err(ApiError::internal()),
    }
}

fn rejected(error: Rejection) -> ApiError {
    let status = if error.code == "forbidden" {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    ApiError::new(status, &error.code, error.message)
}

/// `GET /v1/visits?rep=&customer=&state=&review=&from=&to=`: the caller's own visits, their
/// team's (managers), or all (admins).
pub async fn list_visits(
    State(state): State<AppState>,
    auth: Auth,
    Query(filter): Query<VisitFilter>,
) -> ApiResult<Json<Vec<VisitRow>>> {
    let visits = state
        .store
        .list_visits(&auth.caller, &filter, now_ms())
        .await?;
    crate::audit::viewed_visits(&state, &auth.caller, &filter, &visits).await;
    Ok(Json(visits))
}

#[derive(Deserialize)]
pub struct NewReview {
    pub decision: String,
    #[serde(default)]
    pub comment: String,
}

/// `POST /v1/visits/{id}/reviews`: the rep's manager approves or comments on a visit report.
pub async fn review_visit(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<NewReview>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let id: DocId = parse_path_id(&id, "visit")?;
    let decision: ReviewDecision = req.decision.parse().map_err(ApiError::bad_request)?;
    let by = auth.caller.user;
    let review = Review {
        id: uuid::Uuid::now_v7().to_string(),
        by,
        at_ms: now_ms(),
        decision,
        comment: req.comment,
    };
    let added = review.clone();
    let record = edit_record(&state, &auth, id, "visit", move |r| match r {
        Record::Visit(v) => {
            v.reviews.push(added);
            Ok(())
        }
        _ => Err(ApiError::not_found("visit")),
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "review": review, "visit": record })),
    ))
}

#[derive(Deserialize)]
pub struct FollowUpQuery {
    pub rep: Option<String>,
    /// Follow-ups due within this many days count as due (default 7).
    pub days: Option<u32>,
    /// The caller's today, `YYYY-MM-DD` (default: today in UTC).
    pub today: Option<String>,
}

/// `GET /v1/visits/follow-ups?rep=&days=&today=`: per customer, the follow-up set by the
/// latest closed visit, unless a later visit has been made; `overdue` before today, `due`
/// within the horizon.
pub async fn follow_ups(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<FollowUpQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let today = match q.today.as_deref() {
        Some(t) => chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_date",
                format!("'{t}' is not a date (YYYY-MM-DD)."),
            )
        })?,
        None => chrono::Utc::now().date_naive(),
    };
    let horizon = today + chrono::Days::new(u64::from(q.days.unwrap_or(7).min(365)));
    let filter = VisitFilter {
        rep: q.rep,
        ..VisitFilter::default()
    };
    let visits = state
        .store
        .list_visits(&auth.caller, &filter, now_ms())
        .await?;
    // Newest first: the first visit seen per customer is the latest.
    let mut seen = std::collections::HashSet::new();
    let (mut overdue, mut due) = (Vec::new(), Vec::new());
    for v in &visits {
        if v.check_in_at.is_none() || !seen.insert(v.customer_id.clone()) {
            continue;
        }
        let Some(date) = v
            .next_follow_up
            .as_deref()
            .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        else {
            continue;
        };
        let item = serde_json::json!({
            "customer_id": v.customer_id, "customer_name": v.customer_name, "rep_id": v.rep_id,
            "follow_up": v.next_follow_up, "last_visit_id": v.id, "last_visit_at": v.check_in_at,
        });
        if date < today {
            overdue.push(item);
        } else if date <= horizon {
            due.push(item);
        }
    }
    Ok(Json(
        serde_json::json!({ "today": today.to_string(), "overdue": overdue, "due": due }),
    ))
}

/// A customer `caller` may see, with every visit to it. Visits are shown to whoever may see the
/// customer, whoever made them: the record of the relationship belongs with it. Returns the
/// caller with that view too, for what else belongs with the customer.
pub(crate) async fn customer_with_visits(
    state: &AppState,
    caller: &fieldsync_sync::Caller,
    id: DocId,
) -> ApiResult<(
    crate::store::CustomerRow,
    Vec<VisitRow>,
    fieldsync_sync::Caller,
)> {
    let customer = state
        .store
        .customer(caller, id)
        .await?
        .ok_or_else(|| ApiError::not_found("customer"))?;
    let as_owner = fieldsync_sync::Caller {
        role: Role::Admin,
        ..caller.clone()
    };
    let filter = VisitFilter {
        customer: Some(id.as_string()),
        ..VisitFilter::default()
    };
    let visits = state
        .store
        .list_visits(&as_owner, &filter, now_ms())
        .await?;
    Ok((customer, visits, as_owner))
}

/// `GET /v1/customers/{id}/timeline`: everything that happened with a customer, newest first,
/// and the visit summary (count, last visit, next follow-up).
pub async fn customer_timeline(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let id: DocId = parse_path_id(&id, "customer")?;
    let (customer, visits, _) = customer_with_visits(&state, &auth.caller, id).await?;
    let mut items: Vec<(i64, serde_json::Value)> = Vec::new();
    for v in &visits {
        if let Some(t) = v.check_in_at {
            items.push((t, serde_json::json!({ "at_ms": t, "type": "visit_check_in", "visit_id": v.id, "rep_id": v.rep_id, "purpose": v.purpose, "verdict": v.check_in_verdict })));
        }
        if let Some(t) = v.check_out_at {
            items.push((t, serde_json::json!({ "at_ms": t, "type": "visit_check_out", "visit_id": v.id, "rep_id": v.rep_id, "outcome": v.outcome, "notes": v.notes, "next_follow_up": v.next_follow_up, "verdict": v.check_out_verdict })));
        }
        if let Some(t) = v.auto_closed_at {
            items.push((t, serde_json::json!({ "at_ms": t, "type": "visit_auto_closed", "visit_id": v.id, "rep_id": v.rep_id })));
        }
        if v.state == "planned" {
            items.push((0, serde_json::json!({ "type": "visit_planned", "visit_id": v.id, "rep_id": v.rep_id, "planned_date": v.planned_date, "purpose": v.purpose })));
        }
        if let Some(reviews) = v.reviews.as_array() {
            for r in reviews {
                let t = r.get("at_ms").and_then(|t| t.as_i64()).unwrap_or(0);
                items.push((t, serde_json::json!({ "at_ms": t, "type": "visit_review", "visit_id": v.id, "review": r })));
            }
        }
    }
    items.sort_by_key(|i| std::cmp::Reverse(i.0));
    crate::audit::viewed_timeline(&state, &auth.caller, id, &visits).await;
    let made: Vec<&VisitRow> = visits.iter().filter(|v| v.check_in_at.is_some()).collect();
    let summary = serde_json::json!({
        "visit_count": made.len(),
        "last_visit_at": made.iter().filter_map(|v| v.check_in_at).max(),
        "next_follow_up": made.first().and_then(|v| v.next_follow_up.clone()),
    });
    Ok(Json(serde_json::json!({
        "customer": customer,
        "visits": summary,
        "timeline": items.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
    })))
}

/// `GET /v1/field-events?user=&event=&trust=&from=&to=`: graded events with their reasons.
pub async fn field_events(
    State(state): State<AppState>,
    auth: Auth,
    Query(filter): Query<EventFilter>,
) -> ApiResult<Json<Vec<FieldEventRow>>> {
    let events = state.store.field_events(&auth.caller, &filter).await?;
    crate::audit::viewed_events(&state, &auth.caller, &filter, &events).await;
    Ok(Json(events))
}

#[derive(Deserialize)]
pub struct MakeupQuery {
    pub status: Option<String>,
}

/// `GET /v1/makeups?status=pending|approved|rejected`.
pub async fn list_makeups(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<MakeupQuery>,
) -> ApiResult<Json<Vec<MakeupRow>>> {
    if let Some(s) = q.status.as_deref()
        && !matches!(s, "pending" | "approved" | "rejected")
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_status",
            format!("'{s}' is not a make-up status; use pending, approved or rejected."),
        ));
    }
    let makeups = state
        .store
        .list_makeups(&auth.caller, q.status.as_deref())
        .await?;
    crate::audit::viewed_makeups(&state, &auth.caller, q.status.as_deref(), &makeups).await;
    Ok(Json(makeups))
}

#[derive(Deserialize)]
pub struct Decision {
    pub approve: bool,
    pub comment: Option<String>,
}

/// `POST /v1/makeups/{id}/decision`: the worker's manager approves or refuses a make-up.
pub async fn decide_makeup(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Decision>,
) -> ApiResult<Json<serde_json::Value>> {
    let id: DocId = parse_path_id(&id, "make-up request")?;
    let decision = MakeupDecision {
        status: if req.approve {
            MakeupStatus::Approved
        } else {
            MakeupStatus::Rejected
        },
        by: auth.caller.user,
        at_ms: now_ms(),
        comment: req.comment.filter(|c| !c.trim().is_empty()),
    };
    let record = edit_record(&state, &auth, id, "make-up request", move |r| match r {
        Record::Makeup(m) => {
            if m.decision.is_some() {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "already_decided",
                    "This make-up request has already been decided.",
                ));
            }
            m.decision = Some(decision);
            Ok(())
        }
        _ => Err(ApiError::not_found("make-up request")),
    })
    .await?;
    Ok(Json(serde_json::json!({ "makeup": record })))
}
