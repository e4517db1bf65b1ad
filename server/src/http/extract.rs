//! Extractors: [`Auth`] (who is calling, checked on every request) and [`ApiJson`] (a JSON
//! body whose every failure — malformed, wrong shape, too large — is an [`ApiError`]).

use super::error::ApiError;
use crate::app::AppState;
use crate::auth::TokenError;
use crate::store::SessionState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use fieldsync_sync::{Caller, DeviceId, Role};

/// An authenticated caller: token valid, user active, device not revoked.
#[derive(Clone, Debug)]
pub struct Auth {
    pub caller: Caller,
    pub device: DeviceId,
    /// When the access token expires (Unix seconds): live connections close then.
    pub expires_at: u64,
}

impl Auth {
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.caller.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "forbidden",
                "Only an admin of this company can do that.",
            ))
        }
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "missing_token",
                    "Sign in first: this request needs an access token.",
                )
            })?;
        let token = header.strip_prefix("Bearer ").ok_or_else(|| {
            ApiError::unauthorized(
                "invalid_token",
                "The Authorization header must be 'Bearer <token>'.",
            )
        })?;
        let claims = state.tokens.verify(token.trim()).map_err(|e| match e {
            TokenError::Expired => ApiError::unauthorized(
                "token_expired",
                "Your session token has expired; refresh it.",
            ),
            TokenError::Invalid => {
                ApiError::unauthorized("invalid_token", "The access token is not valid.")
            }
        })?;
        match state
            .store
            .session_state(claims.tid, claims.sub, claims.did)
            .await?
        {
            SessionState::Active { role } => Ok(Auth {
                caller: Caller {
                    tenant: claims.tid,
                    user: claims.sub,
                    role,
                },
                device: claims.did,
                expires_at: claims.exp,
            }),
            SessionState::UserDisabled => Err(ApiError::forbidden(
                "account_disabled",
                "This account has been disabled; its data must be removed from this device.",
            )),
            SessionState::DeviceRevoked => Err(ApiError::forbidden(
                "device_revoked",
                "This device has been signed out by an administrator; its data must be removed.",
            )),
            SessionState::Unknown => Err(ApiError::unauthorized(
                "invalid_token",
                "The access token is not valid.",
            )),
        }
    }
}

/// A JSON body. Rejections become API errors with codes.
pub struct ApiJson<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(match rejection {
                JsonRejection::BytesRejection(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        format!(
                            "The request is larger than {} MiB; send it in smaller batches.",
                            fieldsync_sync::protocol::MAX_REQUEST_BYTES >> 20
                        ),
                    )
                }
                JsonRejection::MissingJsonContentType(_) => ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "Send the body as JSON with 'Content-Type: application/json'.",
                ),
                JsonRejection::JsonDataError(e) => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    format!("The request body has the wrong shape: {}.", e.body_text()),
                ),
                JsonRejection::JsonSyntaxError(e) => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_json",
                    format!("The request body is not valid JSON: {}.", e.body_text()),
                ),
                other => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    format!("The request body could not be read: {}.", other.body_text()),
                ),
            }),
        }
    }
}

/// Query-string parameters. A malformed query becomes an API error with a code.
pub struct ApiQuery<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| ApiQuery(v))
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_query",
                    format!("The query parameters are not valid: {}.", e.body_text()),
                )
            })
    }
}
