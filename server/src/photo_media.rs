//! What the server learns from a photo's bytes once they are stored: the upright size, the
//! EXIF capture time, GPS and camera, the perceptual hash, and the two thumbnails (320 and
//! 1600 px on the long side, EXIF stripped). It runs in the background after an upload
//! completes (the [`hook`] on [`crate::app::AppState::on_blob_stored`]), off the async runtime.
//!
//! [`checks`] then grades a photo's bytes against its record, with reasons, the way check-ins
//! are graded: EXIF GPS against the phone's fix, EXIF time against the claimed capture time,
//! and the same or a near-same photo already in the tenant.

use crate::app::{AppState, BlobHook};
use crate::blobs::BlobRef;
use crate::media;
use crate::store::MediaRow;
use fieldsync_sync::trust::{self, Reason, Severity, TrustLevel};
use fieldsync_sync::{GeoPoint, TenantId};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// EXIF GPS further than this (plus the phone fix's accuracy) from the phone's fix is suspicious.
pub const GPS_MISMATCH_M: f64 = 100.0;
/// An EXIF capture time further than this from the claimed one is suspicious.
pub const TIME_MISMATCH_MS: i64 = 10 * 60_000;
/// Perceptual hashes this close (of 64 bits) are the same picture.
pub const NEAR_DUPLICATE_BITS: u32 = 6;

/// Where the thumbnail of `sha256` with long side `long_side` is kept: beside the tenant's
/// blobs, built only from validated parts (a tenant id and a checked hash).
pub fn derived_path(root: &Path, tenant: TenantId, sha256: &str, long_side: u32) -> PathBuf {
    root.join(tenant.as_string())
        .join("derived")
        .join(format!("{sha256}-{long_side}.jpg"))
}

/// The post-processing hook: spawns [`process_blob`] and returns at once.
pub fn hook() -> BlobHook {
    Arc::new(|state: &AppState, blob: BlobRef| {
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(e) = process_blob(&state, blob).await {
                tracing::error!(error = %e, "photo processing failed");
            }
        });
    })
}

/// Decodes a stored blob, writes its thumbnails and records what was learnt. A photo that
/// cannot be decoded is recorded with its error code (the reviewer sees why there is no
/// thumbnail); only storage failures are errors here.
pub async fn process_blob(state: &AppState, blob: BlobRef) -> anyhow::Result<()> {
    let bytes = tokio::fs::read(&blob.path).await?;
    let processed =
        tokio::task::spawn_blocking(move || media::process(&bytes, &media::Options::thumbnails()))
            .await?;
    let sha = blob.sha256.as_str().to_owned();
    let row = match processed {
        Ok(p) => {
            for t in &p.thumbnails {
                let path = derived_path(state.blobs.root(), blob.tenant, &sha, t.long_side);
                write_atomically(&path, &t.jpeg).await?;
            }
            MediaRow {
                sha256: sha.clone(),
                width: Some(i64::from(p.width)),
                height: Some(i64::from(p.height)),
                exif_time_ms: p
                    .exif
                    .captured_at
                    .as_ref()
                    .and_then(|c| c.utc_ms().or_else(|| c.utc_ms_assuming(0))),
                exif_time_zoned: p
                    .exif
                    .captured_at
                    .as_ref()
                    .is_some_and(|c| c.utc_ms().is_some()),
                exif_lat: p.exif.gps.as_ref().map(|g| g.lat),
                exif_lon: p.exif.gps.as_ref().map(|g| g.lon),
                make: p.exif.make.clone(),
                model: p.exif.model.clone(),
                phash: Some(format!("{:016x}", p.phash)),
                damaged: p.damaged,
                error: None,
            }
        }
        Err(e) => MediaRow {
            sha256: sha.clone(),
            width: None,
            height: None,
            exif_time_ms: None,
            exif_time_zoned: false,
            exif_lat: None,
            exif_lon: None,
            make: None,
            model: None,
            phash: None,
            damaged: false,
            error: Some(e.code().to_owned()),
        },
    };
    state.store.record_photo_media(blob.tenant, &row).await?;
    Ok(())
}

async fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = tokio::fs::File::create(&tmp).await?;
    f.write_all(bytes).await?;
    f.sync_all().await?;
    drop(f);
    tokio::fs::rename(&tmp, path).await
}

/// The grade of a photo's bytes against its record.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PhotoCheck {
    pub level: TrustLevel,
    pub reasons: Vec<Reason>,
}

/// Grades what the bytes say against what the record claims. `phone` is the phone's fix at
/// capture, `site` the target's area if any, `others` the perceptual hashes of the tenant's
/// other photos (photo id, hash).
pub fn checks(
    media: &MediaRow,
    captured_at_ms: i64,
    phone: Option<(GeoPoint, f64)>,
    site: Option<(&str, &fieldsync_sync::Geofence)>,
    others: &[(String, u64)],
) -> PhotoCheck {
    let mut reasons = Vec::new();
    let reason = |code: &str, severity, message: String| Reason {
        code: code.to_owned(),
        severity,
        message,
    };
    if let Some(code) = &media.error {
        reasons.push(reason(
            "undecodable",
            Severity::Suspicious,
            format!("The photo's bytes could not be read as an image ({code})."),
        ));
    }
    if media.damaged {
        reasons.push(reason(
            "damaged_image",
            Severity::Info,
            "Part of the image data is damaged; the thumbnail shows what could be read.".into(),
        ));
    }
    let exif_point = media
        .exif_lat
        .zip(media.exif_lon)
        .map(|(lat, lon)| GeoPoint { lat, lon });
    match (exif_point, phone) {
        (Some(e), Some((p, accuracy))) => {
            let d = trust::distance_m(e, p);
            if d > GPS_MISMATCH_M + accuracy {
                reasons.push(reason(
                    "exif_gps_mismatch",
                    Severity::Suspicious,
                    format!(
                        "The camera's GPS puts the photo {} from where the phone was.",
                        trust::human_distance(d)
                    ),
                ));
            }
        }
        (None, _) if media.error.is_none() => reasons.push(reason(
            "no_exif_gps",
            Severity::Info,
            "The photo carries no GPS position of its own.".into(),
        )),
        _ => {}
    }
    if let (Some(e), Some((name, fence))) = (exif_point, site) {
        let d = trust::distance_to_fence_m(e, fence);
        if d > GPS_MISMATCH_M {
            reasons.push(reason(
                "exif_outside_site",
                Severity::Rejected,
                format!(
                    "The camera's GPS puts the photo {} outside the area of site {name}.",
                    trust::human_distance(d)
                ),
            ));
        }
    }
    if let Some(t) = media.exif_time_ms {
        let off = t - captured_at_ms;
        // A camera clock without a UTC offset may be any zone's local time: only a difference
        // beyond every zone's offset (UTC-12 to UTC+14) tells.
        let slack = if media.exif_time_zoned {
            0
        } else {
            14 * 3_600_000
        };
        if off.abs() > TIME_MISMATCH_MS + slack {
            reasons.push(reason(
                "exif_time_mismatch",
                Severity::Suspicious,
                format!(
                    "The camera dated the photo {} {} the time it was attached.",
                    trust::human_duration(off),
                    if off < 0 { "before" } else { "after" }
                ),
            ));
        }
    }
    if let Some(h) = media
        .phash
        .as_deref()
        .and_then(|h| u64::from_str_radix(h, 16).ok())
    {
        if let Some((id, _)) = others
            .iter()
            .find(|(_, o)| media::hamming(h, *o) <= NEAR_DUPLICATE_BITS)
        {
            reasons.push(reason(
                "near_duplicate",
                Severity::Suspicious,
                format!("The same or a near-same picture is already in photo {id}."),
            ));
        }
    }
    let level = reasons
        .iter()
        .map(|r| match r.severity {
            Severity::Info => TrustLevel::Verified,
            Severity::Suspicious => TrustLevel::Suspicious,
            Severity::Rejected => TrustLevel::Rejected,
        })
        .max_by_key(|l| match l {
            TrustLevel::Verified => 0,
            TrustLevel::Unverifiable => 1,
            TrustLevel::Suspicious => 2,
            TrustLevel::Rejected => 3,
        })
        .unwrap_or(TrustLevel::Verified);
    PhotoCheck { level, reasons }
}
