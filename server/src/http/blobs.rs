//! Photo bytes over HTTP: the resumable, idempotent, verified upload (`sync/PROTOCOL.md`,
//! "Photo bytes: resumable upload").
//!
//! - `POST /v1/blobs` `{"sha256","size","mime"}` starts or resumes an upload, or says the blob
//!   is already stored;
//! - `PUT /v1/blobs/{sha256}?offset=N` sends a chunk (raw bytes);
//! - `GET /v1/blobs/{sha256}` says where an upload stands.
//!
//! Every answer is an [`UploadState`]. Any signed-in role may upload: a photo's bytes are
//! useless without the photo record, and who may see that is decided there. Nothing here
//! serves blob bytes; downloads go through the photo record's access check and
//! [`crate::blobs::BlobStore::open`].

use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery, Auth};
use crate::app::AppState;
use crate::blobs::{BlobError, BlobHash, BlobMime, MAX_BLOB_BYTES, MAX_CHUNK_BYTES, UploadState};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// `POST /v1/blobs`.
#[derive(Deserialize)]
pub struct BeginUpload {
    pub sha256: String,
    pub size: u64,
    pub mime: String,
    /// `photo` (the default: an image, processed into thumbnails) or `file` (a project file:
    /// a document or drawing, stored as it is).
    #[serde(default)]
    pub purpose: Option<String>,
}

/// `PUT /v1/blobs/{sha256}` query.
#[derive(Deserialize)]
pub struct ChunkQuery {
    pub offset: u64,
}

/// A refusal: an [`ApiError`], except `offset_mismatch`, whose body also says how many bytes
/// the server holds so the phone can resume from there without asking.
pub enum BlobApiError {
    Api(ApiError),
    OffsetMismatch { offset: u64, received: u64 },
}

impl From<ApiError> for BlobApiError {
    fn from(e: ApiError) -> Self {
        BlobApiError::Api(e)
    }
}

impl IntoResponse for BlobApiError {
    fn into_response(self) -> Response {
        match self {
            BlobApiError::Api(e) => e.into_response(),
            BlobApiError::OffsetMismatch { offset, received } => (
                StatusCode::CONFLICT,
                Json(serde_json::json!({
                    "error": "offset_mismatch",
                    "message": format!(
                        "The server holds {received} bytes of this photo; send from byte {received}, not {offset}."
                    ),
                    "received": received,
                })),
            )
                .into_response(),
        }
    }
}

impl From<BlobError> for BlobApiError {
    fn from(e: BlobError) -> Self {
        let api = match e {
            BlobError::OffsetMismatch { offset, received } => {
                return BlobApiError::OffsetMismatch { offset, received };
            }
            BlobError::TooLarge { size } => too_large(size),
            BlobError::Empty => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_size",
                "A photo cannot be empty: size must be at least 1 byte.",
            ),
            BlobError::ChunkTooLarge { len } => chunk_too_large(len),
            BlobError::SizeMismatch { declared, size } => ApiError::new(
                StatusCode::CONFLICT,
                "size_mismatch",
                format!(
                    "An upload of this photo with {size} bytes is in progress, but {declared} bytes were declared; a photo's hash and size belong together."
                ),
            ),
            BlobError::PastEnd { end, size } => ApiError::new(
                StatusCode::CONFLICT,
                "size_mismatch",
                format!("This chunk ends at byte {end}, past the end of the {size}-byte photo."),
            ),
            BlobError::NoUpload => no_upload(),
            BlobError::HashMismatch { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "hash_mismatch",
                "The bytes received do not have the declared SHA-256, so nothing was stored; start the upload again with POST /v1/blobs.",
            ),
            e @ (BlobError::Io { .. } | BlobError::Backend { .. } | BlobError::Task(_)) => {
                tracing::error!(error = %e, "blob storage failure");
                ApiError::internal()
            }
        };
        BlobApiError::Api(api)
    }
}

type BlobResult<T> = Result<T, BlobApiError>;

fn too_large(size: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "blob_too_large",
        format!(
            "The photo has {:.1} MiB; at most {} MiB is accepted.",
            size as f64 / (1024.0 * 1024.0),
            MAX_BLOB_BYTES >> 20
        ),
    )
}

fn chunk_too_large(len: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "chunk_too_large",
        format!(
            "A chunk has at most {} MiB; this one has {:.1} MiB.",
            MAX_CHUNK_BYTES >> 20,
            len as f64 / (1024.0 * 1024.0)
        ),
    )
}

fn no_upload() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_upload",
        "The server has neither this photo nor an upload of it; start one with POST /v1/blobs.",
    )
}

/// Parses a hash from the body or the path; anything but 64 lower-case hex digits (a path
/// trying `..` or `/` among them) is refused before the disk is touched.
fn parse_hash(raw: &str) -> Result<BlobHash, ApiError> {
    raw.parse().map_err(|_| {
        let shown: String = raw.chars().take(80).collect();
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_hash",
            format!("'{shown}' is not a SHA-256: write it as 64 lower-case hex digits."),
        )
    })
}

/// `POST /v1/blobs`: starts or resumes an upload; `complete` at once if the tenant already
/// has these bytes.
pub async fn begin(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(req): ApiJson<BeginUpload>,
) -> BlobResult<Json<UploadState>> {
    let hash = parse_hash(&req.sha256)?;
    if req.size > MAX_BLOB_BYTES {
        return Err(too_large(req.size).into());
    }
    let as_file = match req.purpose.as_deref() {
        None | Some("photo") => false,
        Some("file") => true,
        Some(other) => {
            let shown: String = other.chars().take(40).collect();
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_purpose",
                format!("'{shown}' is not an upload purpose; use photo or file."),
            )
            .into());
        }
    };
    let parsed: Option<BlobMime> = req.mime.parse().ok();
    if as_file && parsed.is_none() {
        let shown: String = req.mime.chars().take(80).collect();
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_format",
            format!(
                "'{shown}' files are not accepted; a project file may be {}.",
                BlobMime::FILE_TYPES
            ),
        )
        .into());
    }
    let mime: BlobMime = parsed.filter(|m| as_file || m.is_image()).ok_or(()).map_err(|_| {
        let shown: String = req.mime.chars().take(80).collect();
        let lower = shown.to_ascii_lowercase();
        let hint = if lower.contains("heic") || lower.contains("heif") {
            " HEIC photos cannot be processed here: have the camera save JPEG (\"Most compatible\"), or convert the photo to JPEG before upload."
        } else {
            " Send the photo as JPEG."
        };
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_format",
            format!("'{shown}' photos are not accepted, only image/jpeg, image/png and image/webp.{hint}"),
        )
    })?;
    let (st, stored) = state
        .blobs
        .start(auth.caller.tenant, &hash, req.size, mime)
        .await?;
    // An upload whose bytes had all arrived earlier but were stored only now.
    if let (Some(blob), Some(hook)) = (stored, &state.on_blob_stored) {
        hook(&state, blob);
    }
    Ok(Json(st))
}

/// `GET /v1/blobs/{sha256}`: where the upload stands.
pub async fn status(
    State(state): State<AppState>,
    auth: Auth,
    Path(raw): Path<String>,
) -> BlobResult<Json<UploadState>> {
    let hash = parse_hash(&raw)?;
    let st = state
        .blobs
        .status(auth.caller.tenant, &hash)
        .await?
        .ok_or_else(no_upload)?;
    Ok(Json(st))
}

/// `PUT /v1/blobs/{sha256}?offset=N`: one chunk, raw bytes. Acknowledged only once written
/// and synced; the chunk that completes the blob is answered after it is verified and stored.
pub async fn chunk(
    State(state): State<AppState>,
    auth: Auth,
    Path(raw): Path<String>,
    ApiQuery(q): ApiQuery<ChunkQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> BlobResult<Json<UploadState>> {
    let hash = parse_hash(&raw)?;
    let body = body.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("The chunk could not be read: {}.", e.body_text()),
        )
    })?;
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = ctype.split(';').next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/octet-stream") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send a chunk as raw bytes with 'Content-Type: application/octet-stream'.",
        )
        .into());
    }
    if body.len() > MAX_CHUNK_BYTES {
        return Err(chunk_too_large(body.len()).into());
    }
    let tenant = auth.caller.tenant;
    let (st, stored) = state.blobs.append(tenant, &hash, q.offset, body).await?;
    if let (Some(blob), Some(hook)) = (stored, &state.on_blob_stored) {
        hook(&state, blob);
    }
    Ok(Json(st))
}
