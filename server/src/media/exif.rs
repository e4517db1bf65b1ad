//! What a photo's EXIF says about where, when and with what it was taken. Read with
//! kamadak-exif from JPEG, PNG (`eXIf`) and WebP (`EXIF`) alike. A photo with no EXIF, or with a
//! broken block, is not an error: whatever could not be read is `None`.

use chrono::{FixedOffset, NaiveDate, NaiveDateTime, TimeZone};
use exif::{Field, In, Tag, Value};

/// The EXIF fields the photo checks use.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ExifData {
    /// When the shutter was pressed: `DateTimeOriginal` (or, without it, `DateTimeDigitized`).
    pub captured_at: Option<CaptureTime>,
    /// Where, from the GPS block. `None` without a usable fix (missing, void, 0°/0°, or out of
    /// range).
    pub gps: Option<GpsFix>,
    /// EXIF `Orientation`, 1 to 8 (1 = stored upright). `None` when absent or invalid.
    pub orientation: Option<u8>,
    /// Camera maker and model as the camera wrote them, trimmed.
    pub make: Option<String>,
    pub model: Option<String>,
}

/// A capture time as the camera wrote it: the camera's wall clock, and its UTC offset when the
/// camera recorded one (`OffsetTimeOriginal`, EXIF 2.31). Without an offset the time is local to
/// wherever the camera's clock was set, and cannot be placed on the UTC line by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CaptureTime {
    pub local: NaiveDateTime,
    /// Minutes east of UTC, when the camera wrote it.
    pub offset_minutes: Option<i32>,
}

impl CaptureTime {
    /// Milliseconds since the Unix epoch, only when the offset is known.
    pub fn utc_ms(&self) -> Option<i64> {
        let offset = FixedOffset::east_opt(self.offset_minutes? * 60)?;
        let at = offset.from_local_datetime(&self.local).single()?;
        Some(at.timestamp_millis())
    }

    /// Milliseconds since the epoch reading the camera's clock as if it were in `offset_minutes`
    /// (for a camera that wrote no offset, with the zone of the site it claims to be at).
    pub fn utc_ms_assuming(&self, offset_minutes: i32) -> Option<i64> {
        let offset = FixedOffset::east_opt(self.offset_minutes.unwrap_or(offset_minutes) * 60)?;
        Some(
            offset
                .from_local_datetime(&self.local)
                .single()?
                .timestamp_millis(),
        )
    }
}

/// A position from the EXIF GPS block, WGS-84 degrees (south and west negative).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct GpsFix {
    pub lat: f64,
    pub lon: f64,
    /// Metres above sea level (negative below), when written.
    pub altitude_m: Option<f64>,
}

/// Reads the EXIF of a JPEG, PNG or WebP file. Never fails: what is missing or broken is `None`.
pub fn read_exif(bytes: &[u8]) -> ExifData {
    let mut reader = exif::Reader::new();
    // Keep what parsed before a broken entry rather than dropping the whole block.
    reader.continue_on_error(true);
    let parsed = reader
        .read_from_container(&mut std::io::Cursor::new(bytes))
        .or_else(|e| e.distill_partial_result(|_| {}));
    let Ok(exif) = parsed else {
        return ExifData::default();
    };
    let field = |tag: Tag| exif.get_field(tag, In::PRIMARY);
    ExifData {
        captured_at: capture_time(
            field(Tag::DateTimeOriginal),
            field(Tag::SubSecTimeOriginal),
            field(Tag::OffsetTimeOriginal),
        )
        .or_else(|| {
            capture_time(
                field(Tag::DateTimeDigitized),
                field(Tag::SubSecTimeDigitized),
                field(Tag::OffsetTimeDigitized),
            )
        }),
        gps: gps(&exif),
        orientation: field(Tag::Orientation)
            .and_then(|f| f.value.get_uint(0))
            .and_then(|o| u8::try_from(o).ok())
            .filter(|o| (1..=8).contains(o)),
        make: field(Tag::Make).and_then(ascii),
        model: field(Tag::Model).and_then(ascii),
    }
}

/// The first string of an ASCII field, without the NULs and blanks cameras pad it with.
fn ascii(f: &Field) -> Option<String> {
    let Value::Ascii(ref parts) = f.value else {
        return None;
    };
    let raw = parts.first()?;
    let s = String::from_utf8_lossy(raw);
    let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!s.is_empty()).then(|| s.to_owned())
}

fn capture_time(
    datetime: Option<&Field>,
    subsec: Option<&Field>,
    offset: Option<&Field>,
) -> Option<CaptureTime> {
    let Value::Ascii(ref parts) = datetime?.value else {
        return None;
    };
    let mut dt = exif::DateTime::from_ascii(parts.first()?).ok()?;
    if let Some(Value::Ascii(parts)) = subsec.map(|f| &f.value)
        && let Some(s) = parts.first()
    {
        let _ = dt.parse_subsec(s);
    }
    if let Some(Value::Ascii(parts)) = offset.map(|f| &f.value)
        && let Some(s) = parts.first()
    {
        let _ = dt.parse_offset(s);
    }
    // "0000:00:00 00:00:00" and other impossible dates (a camera whose clock was never set)
    // are no time at all.
    let local = NaiveDate::from_ymd_opt(dt.year.into(), dt.month.into(), dt.day.into())?
        .and_hms_nano_opt(
            dt.hour.into(),
            dt.minute.into(),
            dt.second.into(),
            dt.nanosecond.unwrap_or(0),
        )?;
    let offset_minutes = dt
        .offset
        .map(i32::from)
        .filter(|m| (-14 * 60..=14 * 60).contains(m));
    Some(CaptureTime {
        local,
        offset_minutes,
    })
}

fn gps(exif: &exif::Exif) -> Option<GpsFix> {
    let field = |tag: Tag| exif.get_field(tag, In::PRIMARY);
    // 'V' is a void measurement: the receiver had no fix when the photo was taken.
    if let Some(status) = field(Tag::GPSStatus).and_then(ascii)
        && status.eq_ignore_ascii_case("V")
    {
        return None;
    }
    let lat =
        degrees(field(Tag::GPSLatitude)?)? * hemisphere(field(Tag::GPSLatitudeRef)?, 'N', 'S')?;
    let lon =
        degrees(field(Tag::GPSLongitude)?)? * hemisphere(field(Tag::GPSLongitudeRef)?, 'E', 'W')?;
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return None;
    }
    // Phones without a fix write zeros rather than leave the block out; nobody photographs a
    // job site at 0°N 0°E.
    if lat == 0.0 && lon == 0.0 {
        return None;
    }
    let altitude_m = field(Tag::GPSAltitude)
        .and_then(|f| rational(&f.value, 0))
        .map(|alt| {
            let below = field(Tag::GPSAltitudeRef).and_then(|f| f.value.get_uint(0)) == Some(1);
            if below { -alt } else { alt }
        })
        .filter(|alt| (-12_000.0..=100_000.0).contains(alt));
    Some(GpsFix {
        lat,
        lon,
        altitude_m,
    })
}

/// Degrees, minutes and seconds as three rationals (some writers put all of it in the degrees,
/// or leave out the seconds).
fn degrees(f: &Field) -> Option<f64> {
    let d = rational(&f.value, 0)?;
    let m = rational(&f.value, 1).unwrap_or(0.0);
    let s = rational(&f.value, 2).unwrap_or(0.0);
    if !(0.0..60.0).contains(&m) || !(0.0..60.0).contains(&s) {
        return None;
    }
    let v = d + m / 60.0 + s / 3600.0;
    v.is_finite().then_some(v)
}

/// 1 for the positive reference letter, -1 for the negative one, `None` for anything else: a
/// position whose hemisphere is not written is not guessed.
fn hemisphere(f: &Field, positive: char, negative: char) -> Option<f64> {
    let r = ascii(f)?;
    let c = r.chars().next()?.to_ascii_uppercase();
    match c {
        c if c == positive => Some(1.0),
        c if c == negative => Some(-1.0),
        _ => None,
    }
}

/// The rational at `i`, `None` for a zero denominator or a non-finite result.
fn rational(v: &Value, i: usize) -> Option<f64> {
    let x = match v {
        Value::Rational(r) => {
            let r = r.get(i)?;
            if r.denom == 0 {
                return None;
            }
            r.to_f64()
        }
        Value::SRational(r) => {
            let r = r.get(i)?;
            if r.denom == 0 {
                return None;
            }
            r.to_f64()
        }
        _ => return None,
    };
    (x.is_finite() && x >= 0.0).then_some(x)
}
