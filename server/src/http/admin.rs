//! Tenant administration over HTTP (admins only): users, devices and staff handovers; and the
//! shared customer pool that managers hand out (see `crate::handover`).

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, Auth};
use super::parse_path_id;
use crate::app::{self, AdminError, AppState, LiveEvent};
use crate::handover::{self, HandoverError, HandoverOutcome, Target, UndoOutcome};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use fieldsync_sync::{DeviceId, DocId, Role, UserId};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct NewUser {
    pub email: String,
    pub password: String,
    pub role: String,
    pub manager_email: Option<String>,
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Store(s) => s.into(),
            AdminError::NoTenant(_) => ApiError::not_found("tenant"),
            AdminError::NoUser(_) => ApiError::not_found("user"),
            AdminError::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", m),
        }
    }
}

fn user_json(u: &crate::store::User) -> serde_json::Value {
    serde_json::json!({ "id": u.id, "email": u.email, "role": u.role, "manager_id": u.manager, "disabled": u.disabled })
}

/// `GET /v1/admin/users`.
pub async fn list_users(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Vec<serde_json::Value>>> {
    auth.require_admin()?;
    Ok(Json(
        state
            .store
            .list_users(auth.caller.tenant)
            .await?
            .iter()
            .map(user_json)
            .collect(),
    ))
}

/// `POST /v1/admin/users`.
pub async fn create_user(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(req): ApiJson<NewUser>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    auth.require_admin()?;
    let role: Role = req.role.parse().map_err(ApiError::bad_request)?;
    let u = app::create_user(
        state.store.as_ref(),
        auth.caller.tenant,
        &req.email,
        &req.password,
        role,
        req.manager_email.as_deref(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(user_json(&u))))
}

/// `POST /v1/admin/users/{id}/disable`: stops every device of the user at once.
pub async fn disable_user(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require_admin()?;
    let id: UserId = parse_path_id(&id, "user")?;
    if id == auth.caller.user {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "cannot_disable_self",
            "You cannot disable your own account.",
        ));
    }
    state
        .store
        .user(auth.caller.tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    state
        .store
        .set_user_disabled(auth.caller.tenant, id, true)
        .await?;
    state.announce(LiveEvent::Revoked {
        tenant: auth.caller.tenant,
        device: None,
        user: Some(id),
        reason: "account_disabled".into(),
    });
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/admin/devices`.
pub async fn list_devices(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Vec<serde_json::Value>>> {
    auth.require_admin()?;
    let devices = state.store.list_devices(auth.caller.tenant, None).await?;
    Ok(Json(devices.iter().map(|d| serde_json::json!({"id": d.id, "user_id": d.user, "name": d.name, "revoked": d.revoked})).collect()))
}

/// `POST /v1/admin/devices/{id}/revoke`.
pub async fn revoke_device(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require_admin()?;
    let id: DeviceId = parse_path_id(&id, "device")?;
    state
        .store
        .device(auth.caller.tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("device"))?;
    state.store.revoke_device(auth.caller.tenant, id).await?;
    state.announce(LiveEvent::Revoked {
        tenant: auth.caller.tenant,
        device: Some(id),
        user: None,
        reason: "device_revoked".into(),
    });
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/admin/users/{id}/enable`: lets a disabled user sign in again. Their old devices
/// stay revoked (they purged); they sign in afresh.
pub async fn enable_user(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require_admin()?;
    let id: UserId = parse_path_id(&id, "user")?;
    state
        .store
        .user(auth.caller.tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    state
        .store
        .set_user_disabled(auth.caller.tenant, id, false)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

impl From<HandoverError> for ApiError {
    fn from(e: HandoverError) -> Self {
        match e {
            HandoverError::Store(s) => s.into(),
            HandoverError::NotFound(what) => ApiError::not_found(what),
            HandoverError::Refused { code, message } => {
                let status = match code.as_str() {
                    "forbidden" | "owner_not_allowed" | "pool_not_allowed" => StatusCode::FORBIDDEN,
                    "already_undone" | "user_disabled" => StatusCode::CONFLICT,
                    "cannot_disable_self" | "same_user" => StatusCode::BAD_REQUEST,
                    _ => StatusCode::UNPROCESSABLE_ENTITY,
                };
                ApiError::new(status, &code, message)
            }
        }
    }
}

#[derive(Deserialize)]
pub struct HandoverRequest {
    /// A user id, or `"pool"` for the shared pool.
    pub to: String,
    /// Disable the user in the same step (their devices are revoked and purge).
    #[serde(default)]
    pub disable: bool,
}

/// Tells live phones what a handover, undo or assignment pushed.
fn announce_moves(state: &AppState, auth: &Auth, pushes: &[crate::store::PushOutcome]) {
    for p in pushes {
        state.announce_push(auth.caller.tenant, p);
    }
}

/// `POST /v1/admin/users/{id}/handover`: moves every customer the user owns to another rep or
/// manager (`"to": "<user id>"`) or to the shared pool (`"to": "pool"`), optionally disabling
/// the user in the same step. Recorded in `GET /v1/admin/handovers`; undone by
/// `POST /v1/admin/handovers/{id}/undo`.
pub async fn handover_user(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<HandoverRequest>,
) -> ApiResult<Json<HandoverOutcome>> {
    auth.require_admin()?;
    let from: UserId = parse_path_id(&id, "user")?;
    let to = match req.to.trim() {
        "pool" => Target::Pool,
        other => Target::User(other.parse().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_target",
                "'to' must be a user id or \"pool\".",
            )
        })?),
    };
    let outcome =
        handover::handover(state.store.as_ref(), &auth.caller, from, to, req.disable).await?;
    if outcome.disabled {
        state.announce(LiveEvent::Revoked {
            tenant: auth.caller.tenant,
            device: None,
            user: Some(from),
            reason: "account_disabled".into(),
        });
    }
    announce_moves(&state, &auth, &outcome.pushes);
    Ok(Json(outcome))
}

/// `GET /v1/admin/handovers`: the tenant's handovers, newest first (at most 500).
pub async fn list_handovers(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Vec<crate::store::handover::Handover>>> {
    auth.require_admin()?;
    Ok(Json(state.store.handovers(auth.caller.tenant, 500).await?))
}

/// `POST /v1/admin/handovers/{id}/undo`: moves back the customers still where the handover put
/// them, reports those moved since, and records the undo. A second undo is `409 already_undone`.
pub async fn undo_handover(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<UndoOutcome>> {
    auth.require_admin()?;
    let id: uuid::Uuid = parse_path_id(&id, "handover")?;
    let outcome = handover::undo(state.store.as_ref(), &auth.caller, &id.to_string()).await?;
    announce_moves(&state, &auth, &outcome.pushes);
    Ok(Json(outcome))
}

/// `GET /v1/customers/pool`: the customers waiting in the shared pool (managers and admins).
pub async fn pool_customers(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Vec<crate::store::handover::PoolCustomer>>> {
    if !matches!(auth.caller.role, Role::Manager | Role::Admin) {
        return Err(ApiError::forbidden(
            "forbidden",
            "Only managers and admins can see the shared customer pool.",
        ));
    }
    Ok(Json(state.store.pool_customers(auth.caller.tenant).await?))
}

#[derive(Deserialize)]
pub struct AssignRequest {
    pub owner: String,
}

/// `POST /v1/customers/{id}/assign`: hands a customer (typically from the pool) to a rep or
/// manager: a manager only to themselves or their team, an admin to anyone.
pub async fn assign_customer(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AssignRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    if !matches!(auth.caller.role, Role::Manager | Role::Admin) {
        return Err(ApiError::forbidden(
            "forbidden",
            "Only managers and admins can assign customers.",
        ));
    }
    let id: DocId = parse_path_id(&id, "customer")?;
    let owner: UserId = req.owner.trim().parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_owner",
            "'owner' must be a user id.",
        )
    })?;
    let (record, pushes) = handover::assign(state.store.as_ref(), &auth.caller, id, owner).await?;
    announce_moves(&state, &auth, &pushes);
    Ok(Json(serde_json::json!({ "customer": record })))
}
