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
use fieldsync_sync::GeoPoint;
use fieldsync_sync::trust::{self, Reason, Severity, TrustLevel};
use std::sync::Arc;

/// EXIF GPS further than this (plus the phone fix's accuracy) from the phone's fix is suspicious.
pub const GPS_MISMATCH_M: f64 = 100.0;
/// An EXIF capture time further than this from the claimed one is suspicious.
pub const TIME_MISMATCH_MS: i64 = 10 * 60_000;
/// Perceptual hashes this close (of 64 bits) are the same picture.
pub const NEAR_DUPLICATE_BITS: u32 = 6;

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
    if !blob.mime.is_image() {
        // A project file (a document or a drawing): stored as it is.
        return Ok(());
    }
    // The thumbnails are kept in the blob store's backend beside the blob (local files or
    // S3), keyed by tenant, hash and size: see `BlobStore::put_derived`.
    let bytes = state
        .blobs
        .read(blob.tenant, &blob.sha256)
        .await?
        .ok_or_else(|| anyhow::anyhow!("blob {} vanished before processing", blob.sha256))?;
    let processed =
        tokio::task::spawn_blocking(move || media::process(&bytes, &media::Options::thumbnails()))
            .await?;
    let sha = blob.sha256.as_str().to_owned();
    let row = match processed {
        Ok(p) => {
            for t in &p.thumbnails {
                state
                    .blobs
                    .put_derived(blob.tenant, &blob.sha256, t.long_side, t.jpeg.clone())
                    .await?;
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
    place: Option<&crate::store::PhotoPlace>,
    default_radius_m: f64,
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
    match (exif_point, place) {
        (Some(e), Some(crate::store::PhotoPlace::Site { name, fence })) => {
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
        (
            Some(e),
            Some(crate::store::PhotoPlace::Customer {
                name,
                location,
                radius_m,
            }),
        ) => {
            let allowed = radius_m.unwrap_or(default_radius_m);
            let d = trust::distance_m(e, *location);
            if d > allowed + GPS_MISMATCH_M {
                reasons.push(reason(
                    "exif_far_from_customer",
                    Severity::Suspicious,
                    format!(
                        "The camera's GPS puts the photo {} from {name}; a visit there allows {}.",
                        trust::human_distance(d),
                        trust::human_distance(allowed)
                    ),
                ));
            }
        }
        _ => {}
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
        && let Some((id, _)) = others
            .iter()
            .find(|(_, o)| media::hamming(h, *o) <= NEAR_DUPLICATE_BITS)
    {
        reasons.push(reason(
            "near_duplicate",
            Severity::Suspicious,
            format!("The same or a near-same picture is already in photo {id}."),
        ));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::PhotoPlace;
    use fieldsync_sync::record::project::Geofence;

    const T: i64 = 1_795_000_000_000;

    fn media_at(lat: f64, lon: f64) -> MediaRow {
        MediaRow {
            sha256: "ab".repeat(32),
            width: Some(4000),
            height: Some(3000),
            exif_time_ms: Some(T),
            exif_time_zoned: true,
            exif_lat: Some(lat),
            exif_lon: Some(lon),
            make: None,
            model: None,
            phash: None,
            damaged: false,
            error: None,
        }
    }

    fn codes(c: &PhotoCheck) -> Vec<&str> {
        c.reasons.iter().map(|r| r.code.as_str()).collect()
    }

    #[test]
    fn the_camera_gps_is_checked_against_the_site_area() {
        let depot = PhotoPlace::Site {
            name: "Berlin depot".into(),
            fence: Geofence::Circle {
                center: GeoPoint {
                    lat: 52.5100,
                    lon: 13.4270,
                },
                radius_m: 150.0,
            },
        };
        // Inside the circle: nothing to say.
        let inside = checks(
            &media_at(52.5105, 13.4275),
            T,
            None,
            Some(&depot),
            300.0,
            &[],
        );
        assert_eq!(inside.level, TrustLevel::Verified, "{:?}", inside.reasons);
        // 40 m outside the edge is within the GPS allowance (100 m).
        let edge = checks(
            &media_at(52.5117, 13.4270),
            T,
            None,
            Some(&depot),
            300.0,
            &[],
        );
        assert!(!codes(&edge).contains(&"exif_outside_site"), "{edge:?}");
        // About 5.6 km away: rejected, with the distance and the site's name.
        let far = checks(
            &media_at(52.5600, 13.4270),
            T,
            None,
            Some(&depot),
            300.0,
            &[],
        );
        assert_eq!(far.level, TrustLevel::Rejected);
        let r = far
            .reasons
            .iter()
            .find(|r| r.code == "exif_outside_site")
            .expect("outside");
        assert!(r.message.contains("Berlin depot"), "{}", r.message);
        assert!(r.message.contains("km"), "{}", r.message);
    }

    #[test]
    fn the_camera_gps_is_checked_against_the_customer_and_its_radius() {
        let acme = |radius_m| PhotoPlace::Customer {
            name: "Acme Ltd".into(),
            location: GeoPoint {
                lat: 30.6600,
                lon: 104.0630,
            },
            radius_m,
        };
        // ~890 m north: beyond the tenant default (300 m + 100 m allowance)…
        let photo = media_at(30.6680, 104.0630);
        let c = checks(&photo, T, None, Some(&acme(None)), 300.0, &[]);
        assert_eq!(c.level, TrustLevel::Suspicious);
        let r = c
            .reasons
            .iter()
            .find(|r| r.code == "exif_far_from_customer")
            .expect("far");
        assert!(
            r.message.contains("Acme Ltd") && r.message.contains("300 m"),
            "{}",
            r.message
        );
        // …but within this customer's own 1 km radius.
        let c = checks(&photo, T, None, Some(&acme(Some(1000.0))), 300.0, &[]);
        assert!(!codes(&c).contains(&"exif_far_from_customer"), "{c:?}");
        // No place claimed: no place check.
        let c = checks(&photo, T, None, None, 300.0, &[]);
        assert_eq!(c.level, TrustLevel::Verified, "{c:?}");
    }
}
