//! Read routes over the projections (what dashboards and the web see), filtered by the same
//! access rules as sync.

use super::error::{ApiError, ApiResult};
use super::extract::Auth;
use super::parse_path_id;
use crate::app::AppState;
use crate::store::{CustomerRow, ProjectRow};
use axum::Json;
use axum::extract::{Path, State};
use fieldsync_sync::{DocId, Record};

/// `GET /v1/customers`.
pub async fn list_customers(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Vec<CustomerRow>>> {
    Ok(Json(state.store.list_customers(&auth.caller).await?))
}

/// `GET /v1/customers/{id}`.
pub async fn customer(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<CustomerRow>> {
    let id: DocId = parse_path_id(&id, "customer")?;
    state
        .store
        .customer(&auth.caller, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("customer"))
}

/// `GET /v1/projects`.
pub async fn list_projects(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Vec<ProjectRow>>> {
    Ok(Json(state.store.list_projects(&auth.caller).await?))
}

/// `GET /v1/projects/{id}`.
pub async fn project(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ProjectRow>> {
    let id: DocId = parse_path_id(&id, "project")?;
    state
        .store
        .project(&auth.caller, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("project"))
}

/// `GET /v1/records/{id}`: the merged record as its typed JSON, with conflicts and heads.
pub async fn record(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let id: DocId = parse_path_id(&id, "record")?;
    let (_, bytes) = state
        .store
        .readable_doc(&auth.caller, id)
        .await?
        .ok_or_else(|| ApiError::not_found("record"))?;
    let doc = automerge::Automerge::load(&bytes).map_err(|_| ApiError::internal())?;
    let (record, conflicts) = Record::read(&doc).map_err(|_| ApiError::internal())?;
    // A field record carries where someone was, and when: reading another's is logged.
    let whose = match &record {
        Record::Visit(v) => Some(v.rep),
        Record::Punch(p) => Some(p.user),
        Record::Makeup(m) => Some(m.user),
        Record::Photo(p) => Some(p.author),
        _ => None,
    };
    if let Some(user) = whose {
        let user = user.as_string();
        crate::audit::log_access(
            &state,
            &auth.caller,
            "record",
            &format!("record:{id}"),
            [user.as_str()],
            serde_json::json!({ "kind": record.kind().as_str() }),
        )
        .await;
    }
    Ok(Json(serde_json::json!({
        "record": record,
        "conflicts": conflicts,
        "heads": fieldsync_sync::protocol::heads_to_strings(&doc.get_heads()),
    })))
}
