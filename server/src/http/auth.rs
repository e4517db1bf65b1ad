//! Login, token refresh and "who am I".

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, Auth};
use crate::app::{AppState, LiveEvent};
use crate::auth as tokens;
use crate::store::{RefreshUse, SessionState, now_ms};
use axum::Json;
use axum::extract::State;
use fieldsync_sync::protocol::{LoginRequest, RefreshRequest, TokenResponse};
use fieldsync_sync::{DeviceId, Role, TenantId, UserId};

fn bad_credentials() -> ApiError {
    ApiError::unauthorized(
        "invalid_credentials",
        "The company, email or password is not right.",
    )
}

async fn issue(
    state: &AppState,
    tenant: TenantId,
    user: UserId,
    device: DeviceId,
    role: Role,
    replaces: Option<&str>,
) -> ApiResult<TokenResponse> {
    let access_token = state
        .tokens
        .issue(tenant, user, device, role)
        .map_err(|e| {
            tracing::error!(error = %e, "cannot sign token");
            ApiError::internal()
        })?;
    let (refresh_token, hash) = tokens::new_refresh_token();
    state
        .store
        .store_refresh_token(
            tenant,
            device,
            user,
            &hash,
            now_ms() + tokens::REFRESH_TTL_MS,
            replaces,
        )
        .await?;
    Ok(TokenResponse {
        access_token,
        expires_in: state.tokens.ttl_secs(),
        refresh_token,
        tenant_id: tenant,
        user_id: user,
        device_id: device,
        role,
        server_time_ms: now_ms(),
    })
}

/// `POST /v1/auth/login`.
pub async fn login(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Json<TokenResponse>> {
    if let Some(wait) = state.login_guard.locked_for(&req.tenant, &req.email) {
        return Err(ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!(
                "Too many wrong passwords for this account; try again in {} minutes.",
                wait.div_ceil(60)
            ),
        ));
    }
    let tenant = state.store.tenant_by_slug(req.tenant.trim()).await?;
    let user = match &tenant {
        Some(t) => {
            state
                .store
                .user_by_email(t.id, &req.email.trim().to_lowercase())
                .await?
        }
        None => None,
    };
    // Verify even when the user does not exist, so timing does not tell which emails exist.
    static DUMMY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        tokens::hash_password("not a real password").unwrap_or_default()
    });
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let password = req.password.clone();
    let ok = tokio::task::spawn_blocking(move || {
        tokens::verify_password(&password, hash.as_deref().unwrap_or(DUMMY.as_str()))
    })
    .await
    .unwrap_or(false);
    let (Some(tenant), Some(user), true) = (tenant, user, ok) else {
        state.login_guard.failed(&req.tenant, &req.email);
        return Err(bad_credentials());
    };
    state.login_guard.succeeded(&req.tenant, &req.email);
    if user.disabled {
        return Err(ApiError::forbidden(
            "account_disabled",
            "This account has been disabled.",
        ));
    }
    let device_id = req.device_id.unwrap_or_default();
    let known = state.store.device(tenant.id, device_id).await?;
    if known.is_some_and(|d| d.revoked) {
        return Err(ApiError::forbidden(
            "device_revoked",
            "This device has been signed out by an administrator; sign in again to register it as a new device.",
        ));
    }
    let name = req
        .device_name
        .as_deref()
        .unwrap_or("phone")
        .chars()
        .take(100)
        .collect::<String>();
    state
        .store
        .register_device(tenant.id, device_id, user.id, &name)
        .await?;
    tracing::info!(tenant = %tenant.slug, user = %user.id, device = %device_id, "login");
    Ok(Json(
        issue(&state, tenant.id, user.id, device_id, user.role, None).await?,
    ))
}

/// `POST /v1/auth/refresh`: spends the refresh token, returns a new pair.
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let hash = tokens::hash_refresh_token(req.refresh_token.trim());
    match state.store.use_refresh_token(&hash, now_ms()).await? {
        RefreshUse::Fresh {
            tenant,
            device,
            user,
        } => match state.store.session_state(tenant, user, device).await? {
            SessionState::Active { role } => Ok(Json(
                issue(&state, tenant, user, device, role, Some(&hash)).await?,
            )),
            SessionState::UserDisabled => Err(ApiError::forbidden(
                "account_disabled",
                "This account has been disabled.",
            )),
            _ => Err(ApiError::forbidden(
                "device_revoked",
                "This device has been signed out.",
            )),
        },
        RefreshUse::Reused { tenant, device } => {
            tracing::warn!(tenant = %tenant, device = %device, "refresh token reused; device revoked");
            state.announce(LiveEvent::Revoked {
                tenant,
                device: Some(device),
                user: None,
                reason: "refresh_token_reused".into(),
            });
            Err(ApiError::unauthorized(
                "refresh_token_reused",
                "This sign-in was used from two places, so the device has been signed out for safety.",
            ))
        }
        RefreshUse::Invalid => Err(ApiError::unauthorized(
            "invalid_refresh_token",
            "The refresh token is unknown or expired; sign in again.",
        )),
    }
}

/// `GET /v1/me`.
pub async fn me(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<serde_json::Value>> {
    let user = state
        .store
        .user(auth.caller.tenant, auth.caller.user)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok(Json(serde_json::json!({
        "tenant_id": auth.caller.tenant, "user_id": user.id, "email": user.email, "role": user.role,
        "manager_id": user.manager, "device_id": auth.device,
    })))
}
