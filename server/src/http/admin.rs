//! Tenant administration over HTTP (admins only): users and devices.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, Auth};
use super::parse_path_id;
use crate::app::{self, AdminError, AppState, LiveEvent};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use fieldsync_sync::{DeviceId, Role, UserId};
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
