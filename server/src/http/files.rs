//! A project's files: tender documents, drawings, permits. The bytes go up like a photo's
//! (`POST /v1/blobs` with `"purpose": "file"`, then the chunks, resumable and verified by
//! SHA-256, into the same blob store, local or S3); attaching names them for the project.
//! Whoever may read the project reads its files; its site managers, its creator and admins
//! attach and remove them. A removed file is kept in the table with who removed it and when.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, Auth};
use super::parse_path_id;
use crate::app::AppState;
use crate::blobs::{BlobHash, BlobMime};
use crate::store::{ProjectFile, ProjectRow, now_ms};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fieldsync_sync::{Caller, DocId, Role};
use serde::Deserialize;

async fn readable_project(state: &AppState, caller: &Caller, raw: &str) -> ApiResult<ProjectRow> {
    let id: DocId = parse_path_id(raw, "project")?;
    state
        .store
        .project(caller, id)
        .await?
        .ok_or_else(|| ApiError::not_found("project"))
}

/// Admins, the project's creator and its site managers manage its files.
fn may_manage(caller: &Caller, p: &ProjectRow) -> bool {
    caller.role == Role::Admin
        || p.created_by == caller.user.as_string()
        || p.members.iter().any(|m| {
            m["user_id"].as_str() == Some(caller.user.as_string().as_str())
                && m["role"] == "site_manager"
        })
}

fn forbidden() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "A project's files are attached and removed by its site managers, its creator and admins.",
    )
}

/// `GET /v1/projects/{id}/files`.
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<ProjectFile>>> {
    let p = readable_project(&state, &auth.caller, &id).await?;
    Ok(Json(
        state.store.project_files(auth.caller.tenant, &p.id).await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewFile {
    pub name: String,
    pub sha256: String,
    pub mime: String,
    #[serde(default)]
    pub note: String,
}

/// `POST /v1/projects/{id}/files` `{"name", "sha256", "mime", "note"}`: attaches uploaded
/// bytes to the project.
pub async fn attach(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewFile>,
) -> ApiResult<(StatusCode, Json<ProjectFile>)> {
    let p = readable_project(&state, &auth.caller, &id).await?;
    if !may_manage(&auth.caller, &p) {
        return Err(forbidden());
    }
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_name",
            "A file's name must be 1 to 200 characters, without control characters.",
        ));
    }
    if body.note.chars().count() > 2_000 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "field_too_long",
            "A file's note is at most 2,000 characters.",
        ));
    }
    let hash: BlobHash = body.sha256.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_hash",
            "'sha256' must be the file's SHA-256 as 64 lower-case hex digits.",
        )
    })?;
    let mime: BlobMime = body.mime.parse().map_err(|_| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_format",
            format!("A project file may be {}.", BlobMime::FILE_TYPES),
        )
    })?;
    let size = state
        .blobs
        .size(auth.caller.tenant, &hash)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "reading a blob's size failed");
            ApiError::internal()
        })?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "not_uploaded",
                "The file's bytes have not reached the server yet; upload them (POST /v1/blobs with purpose 'file') first.",
            )
        })?;
    let file = ProjectFile {
        id: uuid::Uuid::now_v7().to_string(),
        project_id: p.id.clone(),
        name: name.to_owned(),
        sha256: hash.as_str().to_owned(),
        size: i64::try_from(size).unwrap_or(i64::MAX),
        mime: mime.as_str().to_owned(),
        note: body.note,
        added_by: auth.caller.user.as_string(),
        added_at: now_ms(),
    };
    state
        .store
        .add_project_file(auth.caller.tenant, &file)
        .await?;
    Ok((StatusCode::CREATED, Json(file)))
}

/// A name safe inside a `Content-Disposition` header.
fn header_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " ._-()".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `GET /v1/projects/{id}/files/{file}`: the bytes, streamed.
pub async fn download(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, file)): Path<(String, String)>,
) -> ApiResult<Response> {
    let p = readable_project(&state, &auth.caller, &id).await?;
    let f = state
        .store
        .project_files(auth.caller.tenant, &p.id)
        .await?
        .into_iter()
        .find(|f| f.id == file)
        .ok_or_else(|| ApiError::not_found("file"))?;
    let hash: BlobHash = f.sha256.parse().map_err(|_| ApiError::internal())?;
    let blob = state
        .blobs
        .open(auth.caller.tenant, &hash)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "reading a project file failed");
            ApiError::internal()
        })?
        .ok_or_else(|| ApiError::not_found("file"))?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, f.mime.clone()),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", header_name(&f.name)),
            ),
            (axum::http::header::CONTENT_LENGTH, blob.size.to_string()),
            (
                axum::http::header::CACHE_CONTROL,
                "private, max-age=86400".to_owned(),
            ),
        ],
        axum::body::Body::from_stream(blob.stream),
    )
        .into_response())
}

/// `DELETE /v1/projects/{id}/files/{file}`.
pub async fn remove(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, file)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let p = readable_project(&state, &auth.caller, &id).await?;
    if !may_manage(&auth.caller, &p) {
        return Err(forbidden());
    }
    if state
        .store
        .remove_project_file(auth.caller.tenant, &p.id, &file, auth.caller.user, now_ms())
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("file"))
    }
}
