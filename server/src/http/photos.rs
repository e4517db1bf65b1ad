//! Photos over HTTP, for site managers' review: the list (by project, site, day, author,
//! status, with each photo's position and location grade), reviews (approve, reject, ask for a
//! retake, with a reason), comments, and a GeoJSON export of photos and visits for GIS tools.
//!
//! Reviews and comments are changes to the photo's Automerge record, made through the push path
//! (see `field::edit_record`), so the author's phone receives them at its next sync and every
//! review stays in the record's history.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiQuery as Query, Auth};
use super::field::edit_record;
use super::parse_path_id;
use crate::app::AppState;
use crate::store::{PhotoFilter, VisitFilter, now_ms};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use fieldsync_sync::record::photo::{PhotoComment, PhotoDecision, PhotoReview};
use fieldsync_sync::{DocId, Record};
use serde::Deserialize;
use serde_json::{Value, json};

/// `GET /v1/photos?project=&site=&day=&author=&status=&from=&to=`.
/// Each photo comes with what its bytes showed (`media`) and their grade against the record
/// (`bytes_check`), once uploaded.
pub async fn list_photos(
    State(state): State<AppState>,
    auth: Auth,
    Query(filter): Query<PhotoFilter>,
) -> ApiResult<Json<Vec<Value>>> {
    if let Some(s) = filter.status.as_deref()
        && !matches!(s, "pending" | "approved" | "rejected" | "retake")
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_status",
            format!("'{s}' is not a photo status; use pending, approved, rejected or retake."),
        ));
    }
    let photos = state.store.list_photos(&auth.caller, &filter).await?;
    let shas: Vec<String> = photos.iter().map(|p| p.sha256.clone()).collect();
    let media = state.store.photo_media(auth.caller.tenant, &shas).await?;
    let hashes = if media.is_empty() {
        Vec::new()
    } else {
        state.store.photo_hashes(auth.caller.tenant).await?
    };
    let policy = state.store.field_policy(auth.caller.tenant).await?;
    crate::audit::viewed_photos(&state, &auth.caller, &filter, &photos).await;
    let mut out = Vec::with_capacity(photos.len());
    for p in photos {
        let m = media.iter().find(|m| m.sha256 == p.sha256);
        // Other photos with other bytes: the same bytes twice is a re-attachment, not a copy.
        let others: Vec<(String, u64)> = hashes
            .iter()
            .filter(|(id, sha, _)| *id != p.id && *sha != p.sha256)
            .map(|(id, _, h)| (id.clone(), *h))
            .collect();
        let phone = p.lat.zip(p.lon).map(|(lat, lon)| {
            (
                fieldsync_sync::GeoPoint { lat, lon },
                p.accuracy_m.unwrap_or(0.0),
            )
        });
        let check = m.map(|m| {
            crate::photo_media::checks(
                m,
                p.captured_at,
                phone,
                p.place.as_ref(),
                policy.default_radius_m,
                &others,
            )
        });
        let mut v = serde_json::to_value(&p).map_err(|_| ApiError::internal())?;
        v["media"] = serde_json::to_value(m).map_err(|_| ApiError::internal())?;
        v["bytes_check"] = serde_json::to_value(check).map_err(|_| ApiError::internal())?;
        v["uploaded"] = Value::Bool(m.is_some());
        out.push(v);
    }
    Ok(Json(out))
}

/// `GET /v1/photos/{id}/file/{variant}`: the photo's bytes, for whoever may see the photo:
/// `original` (as uploaded, with its EXIF: private to those who may see the record), `320` and
/// `1600` (upright thumbnails without EXIF), `stamped` (the 1600 px copy with time,
/// coordinates and attachment drawn in a corner).
pub async fn photo_file(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, variant)): Path<(String, String)>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let id: DocId = parse_path_id(&id, "photo")?;
    let (_, bytes) = state
        .store
        .readable_doc(&auth.caller, id)
        .await?
        .ok_or_else(|| ApiError::not_found("photo"))?;
    let doc = automerge::Automerge::load(&bytes).map_err(|_| ApiError::internal())?;
    let Ok((Record::Photo(photo), _)) = Record::read(&doc) else {
        return Err(ApiError::not_found("photo"));
    };
    crate::audit::viewed_photo_file(&state, &auth.caller, &photo, &variant).await;
    let hash: crate::blobs::BlobHash = photo.sha256.parse().map_err(|_| ApiError::internal())?;
    let not_yet = || {
        ApiError::new(
            StatusCode::CONFLICT,
            "not_uploaded",
            "The photo's bytes have not reached the server yet (or are still being processed); try again later.",
        )
    };
    let tenant = auth.caller.tenant;
    let storage_failed = |e: crate::blobs::BlobError| {
        tracing::error!(error = %e, "reading a photo file failed");
        ApiError::internal()
    };
    // Thumbnails come whole from the blob store (local files or S3): they are small.
    let thumb = async |side: u32| {
        state
            .blobs
            .read_derived(tenant, &hash, side)
            .await
            .map_err(storage_failed)?
            .ok_or_else(not_yet)
    };
    let (content_type, body): (String, Vec<u8>) = match variant.as_str() {
        "original" => {
            // Streamed from the store: an original may be 40 MiB.
            let blob = state
                .blobs
                .open(tenant, &hash)
                .await
                .map_err(storage_failed)?
                .ok_or_else(not_yet)?;
            return Ok((
                [
                    (axum::http::header::CONTENT_TYPE, photo.mime.clone()),
                    (
                        axum::http::header::CACHE_CONTROL,
                        "private, max-age=86400".to_owned(),
                    ),
                    (axum::http::header::CONTENT_LENGTH, blob.size.to_string()),
                ],
                axum::body::Body::from_stream(blob.stream),
            )
                .into_response());
        }
        "320" | "1600" => {
            let side = if variant == "320" { 320 } else { 1600 };
            ("image/jpeg".into(), thumb(side).await?)
        }
        "stamped" => {
            let b = thumb(1600).await?;
            let mut lines = vec![
                chrono::DateTime::from_timestamp_millis(photo.captured_at_ms)
                    .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_default(),
            ];
            if let Some(e) = &photo.evidence {
                lines.push(format!(
                    "{:.5}, {:.5} (+/-{} m)",
                    e.lat,
                    e.lon,
                    e.accuracy_m.round()
                ));
            }
            lines.push(format!(
                "{} {}{}",
                photo.attached_to.kind.as_str(),
                photo.attached_to.site.clone().unwrap_or_default(),
                photo
                    .attached_to
                    .day
                    .as_ref()
                    .map(|d| format!(" {d}"))
                    .unwrap_or_default()
            ));
            let out = tokio::task::spawn_blocking(move || crate::media::stamp(&b, &lines))
                .await
                .map_err(|_| ApiError::internal())?
                .map_err(|_| ApiError::internal())?;
            ("image/jpeg".into(), out)
        }
        other => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_variant",
                format!("'{other}' is not a photo file; use original, 320, 1600 or stamped."),
            ));
        }
    };
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, content_type),
            (
                axum::http::header::CACHE_CONTROL,
                "private, max-age=86400".to_owned(),
            ),
        ],
        body,
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct NewPhotoReview {
    pub decision: String,
    #[serde(default)]
    pub reason: String,
}

/// `POST /v1/photos/{id}/reviews`: approve, reject or ask for a retake, with a reason.
pub async fn review_photo(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<NewPhotoReview>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id: DocId = parse_path_id(&id, "photo")?;
    let decision: PhotoDecision = req.decision.parse().map_err(ApiError::bad_request)?;
    let review = PhotoReview {
        id: uuid::Uuid::now_v7().to_string(),
        by: auth.caller.user,
        at_ms: now_ms(),
        decision,
        reason: req.reason,
    };
    let added = review.clone();
    let record = edit_record(&state, &auth, id, "photo", move |r| match r {
        Record::Photo(p) => {
            p.reviews.push(added);
            Ok(())
        }
        _ => Err(ApiError::not_found("photo")),
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "review": review, "photo": record })),
    ))
}

#[derive(Deserialize)]
pub struct NewComment {
    pub text: String,
}

/// `POST /v1/photos/{id}/comments`: a comment under the photo, by anyone who may see it.
pub async fn comment_photo(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<NewComment>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id: DocId = parse_path_id(&id, "photo")?;
    let comment = PhotoComment {
        id: uuid::Uuid::now_v7().to_string(),
        by: auth.caller.user,
        at_ms: now_ms(),
        text: req.text,
    };
    let added = comment.clone();
    edit_record(&state, &auth, id, "photo", move |r| match r {
        Record::Photo(p) => {
            p.comments.push(added);
            Ok(())
        }
        _ => Err(ApiError::not_found("photo")),
    })
    .await?;
    Ok((StatusCode::CREATED, Json(json!({ "comment": comment }))))
}

#[derive(Deserialize, Default)]
pub struct GeoQuery {
    pub project: Option<String>,
    /// Capture / check-in time from / to, ms.
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// `GET /v1/geojson?project=&from=&to=`: the photos (and, without a project, the visits) the
/// caller may see, as a GeoJSON FeatureCollection (longitude first, WGS84), for GIS tools.
pub async fn geojson(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<GeoQuery>,
) -> ApiResult<([(axum::http::HeaderName, &'static str); 1], Json<Value>)> {
    let filter = PhotoFilter {
        project: q.project.clone(),
        from: q.from,
        to: q.to,
        ..PhotoFilter::default()
    };
    let mut features = Vec::new();
    for p in state.store.list_photos(&auth.caller, &filter).await? {
        let (Some(lat), Some(lon)) = (p.lat, p.lon) else {
            continue;
        };
        features.push(json!({
            "type": "Feature",
            "geometry": { "type": "Point", "coordinates": [lon, lat] },
            "properties": {
                "kind": "photo", "id": p.id, "author": p.author_id, "captured_at": p.captured_at,
                "caption": p.caption, "status": p.status, "trust": p.trust, "accuracy_m": p.accuracy_m,
                "attached_to": p.attach_kind, "attached_id": p.attach_id, "project": p.project_id,
                "site": p.site_id, "day": p.day,
            },
        }));
    }
    if q.project.is_none() {
        let events = state
            .store
            .field_events(
                &auth.caller,
                &crate::store::EventFilter {
                    event: Some("visit_check_in".into()),
                    from: q.from,
                    to: q.to,
                    ..Default::default()
                },
            )
            .await?;
        let visits = state
            .store
            .list_visits(&auth.caller, &VisitFilter::default(), now_ms())
            .await?;
        for e in events {
            let v = visits.iter().find(|v| v.id == e.doc_id);
            features.push(json!({
                "type": "Feature",
                "geometry": { "type": "Point", "coordinates": [e.lon, e.lat] },
                "properties": {
                    "kind": "visit", "id": e.doc_id, "rep": e.user_id, "checked_in_at": e.at_ms,
                    "customer": v.and_then(|v| v.customer_name.clone()), "state": v.map(|v| v.state.clone()),
                    "trust": e.trust, "accuracy_m": e.accuracy_m,
                },
            }));
        }
    }
    crate::audit::viewed_map(&state, &auth.caller, q.project.as_deref(), &features).await;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/geo+json")],
        Json(json!({ "type": "FeatureCollection", "features": features })),
    ))
}
