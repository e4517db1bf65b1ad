//! The HTTP API: one module per resource, each with its handlers; [`router`] puts them
//! together with the request limits. `GET /openapi.json` describes all of it.

pub mod admin;
pub mod attendance;
pub mod audit;
pub mod auth;
pub mod blobs;
pub mod diaries;
pub mod error;
pub mod extract;
pub mod field;
pub mod files;
pub mod import;
pub mod live;
pub mod openapi;
pub mod photos;
pub mod records;
pub mod sync;
pub mod views;

use crate::app::AppState;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use error::ApiError;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(openapi::openapi))
        .route("/v1/auth/login", post(auth::login))
        .route("/v1/auth/refresh", post(auth::refresh))
        .route("/v1/me", get(auth::me))
        .route("/v1/blobs", post(blobs::begin))
        .route("/v1/blobs/{sha256}", get(blobs::status).put(blobs::chunk))
        .route("/v1/sync/push", post(sync::push))
        .route("/v1/sync/pull", post(sync::pull))
        .route("/v1/sync/repair", post(sync::repair))
        .route("/v1/sync/repair/sync", post(sync::repair_sync))
        .route("/v1/sync/live", get(live::live))
        .route("/v1/customers", get(records::list_customers))
        .route("/v1/customers/{id}", get(records::customer))
        .route("/v1/projects", get(records::list_projects))
        .route("/v1/projects/{id}", get(records::project))
        .route("/v1/records/{id}", get(records::record))
        .route("/v1/customers/{id}/timeline", get(field::customer_timeline))
        .route("/v1/customers/{id}/360", get(views::customer_360))
        .route("/v1/projects/{id}/360", get(views::project_360))
        .route(
            "/v1/projects/{id}/files",
            get(files::list).post(files::attach),
        )
        .route(
            "/v1/projects/{id}/files/{file}",
            get(files::download).delete(files::remove),
        )
        .route("/v1/visits", get(field::list_visits))
        .route("/v1/visits/follow-ups", get(field::follow_ups))
        .route("/v1/visits/{id}/reviews", post(field::review_visit))
        .route("/v1/field-events", get(field::field_events))
        .route("/v1/makeups", get(field::list_makeups))
        .route("/v1/makeups/{id}/decision", post(field::decide_makeup))
        .route("/v1/photos", get(photos::list_photos))
        .route("/v1/photos/{id}/reviews", post(photos::review_photo))
        .route("/v1/photos/{id}/comments", post(photos::comment_photo))
        .route("/v1/photos/{id}/file/{variant}", get(photos::photo_file))
        .route("/v1/geojson", get(photos::geojson))
        .route("/v1/diaries", get(diaries::list_diaries))
        .route("/v1/diaries/export", get(diaries::export))
        .route("/v1/diaries/{id}", get(diaries::get_diary))
        .route("/v1/diaries/{id}/sign-off", post(diaries::sign_off))
        .route("/v1/diaries/{id}/reopen", post(diaries::reopen))
        .route("/v1/import/customers", post(import::import_customers))
        .route(
            "/v1/attendance/policy",
            get(attendance::get_policy).put(attendance::put_policy),
        )
        .route(
            "/v1/attendance/shifts",
            get(attendance::list_shifts).post(attendance::create_shift),
        )
        .route(
            "/v1/attendance/calendars",
            get(attendance::list_calendars).post(attendance::create_calendar),
        )
        .route(
            "/v1/attendance/assignments",
            get(attendance::list_assignments)
                .put(attendance::assign)
                .delete(attendance::unassign),
        )
        .route("/v1/attendance/leave", put(attendance::set_leave))
        .route("/v1/attendance/me", get(attendance::my_month))
        .route("/v1/attendance/setup", get(attendance::my_setup))
        .route("/v1/reports/attendance", get(attendance::attendance_report))
        .route(
            "/v1/admin/users",
            get(admin::list_users).post(admin::create_user),
        )
        .route("/v1/admin/users/{id}/disable", post(admin::disable_user))
        .route("/v1/admin/users/{id}/enable", post(admin::enable_user))
        .route("/v1/admin/users/{id}/handover", post(admin::handover_user))
        .route("/v1/admin/handovers", get(admin::list_handovers))
        .route("/v1/admin/handovers/{id}/undo", post(admin::undo_handover))
        .route("/v1/customers/pool", get(admin::pool_customers))
        .route("/v1/customers/{id}/assign", post(admin::assign_customer))
        .route("/v1/admin/devices", get(admin::list_devices))
        .route("/v1/admin/devices/{id}/revoke", post(admin::revoke_device))
        .route("/v1/audit/records/{id}", get(audit::record_history))
        .route("/v1/audit/changes", get(audit::changes))
        .route("/v1/audit/access", get(audit::access))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(
            fieldsync_sync::protocol::MAX_REQUEST_BYTES,
        ))
        .layer(axum::middleware::from_fn_with_state(state.clone(), count))
        .with_state(state)
}

async fn healthz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Json<serde_json::Value> {
    Json(
        serde_json::json!({ "status": "ok", "backend": state.store.backend(), "protocol": fieldsync_sync::protocol::PROTOCOL_VERSION }),
    )
}

async fn not_found() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "no_such_route",
        "There is no such API route; see /openapi.json.",
    )
}

/// Parses an id from a path segment.
pub fn parse_path_id<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_id",
            format!("'{raw}' is not a valid {what} id (UUID)."),
        )
    })
}

/// Reads the whole request body (up to the limit) before any handler runs, then counts
/// requests and bytes each way.
///
/// Reading first matters for phones: a request refused before its body was read (an expired
/// token, say) would otherwise make the server drop the keep-alive connection, and the phone's
/// next request on that pooled connection would fail with a network error.
async fn count(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::body::HttpBody;
    use axum::response::IntoResponse;
    use std::sync::atomic::Ordering::Relaxed;
    let m = &state.metrics;
    m.requests.fetch_add(1, Relaxed);
    let (parts, body) = req.into_parts();
    let limit = fieldsync_sync::protocol::MAX_REQUEST_BYTES;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("The request is larger than {} MiB, or was cut off; send it in smaller batches.", limit >> 20),
            )
            .into_response();
        }
    };
    m.bytes_in.fetch_add(bytes.len() as u64, Relaxed);
    let res = next
        .run(axum::extract::Request::from_parts(
            parts,
            axum::body::Body::from(bytes),
        ))
        .await;
    m.bytes_out
        .fetch_add(res.body().size_hint().exact().unwrap_or(0), Relaxed);
    res
}

async fn metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Json<serde_json::Value> {
    use std::sync::atomic::Ordering::Relaxed;
    let m = &state.metrics;
    Json(serde_json::json!({
        "requests": m.requests.load(Relaxed), "bytes_in": m.bytes_in.load(Relaxed), "bytes_out": m.bytes_out.load(Relaxed),
    }))
}
