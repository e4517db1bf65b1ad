//! The location evidence every field event carries (visit check-in and check-out, attendance
//! punch, and later photos): where the phone's location provider put it, how sure it was, when
//! the fix was taken, and enough about the phone's clocks to date an event made offline.
//!
//! Dating: a phone's wall clock can be moved by its owner; its monotonic clock (time since boot)
//! cannot. At every sync the phone learns `server time - monotonic time` for the current boot;
//! an event made later in the same boot is dated `monotonic + offset`, however long the phone
//! then stays offline and whatever its wall clock says. After a reboot the offset is unknown
//! until the next sync and the wall clock is all there is, which the verdict says.

use crate::docio::{self, Obj, Reader};
use crate::error::Rejection;
use crate::record::GeoPoint;
use automerge::transaction::Transactable;
use automerge::{AutomergeError, ObjId, ReadDoc};
use serde::{Deserialize, Serialize};

choice_enum!(
    /// Which location provider produced the fix.
    Provider, "location provider" { Gps => "gps", Network => "network", Fused => "fused" }
);

/// Accuracy (metres) beyond which a fix is not evidence of anything.
pub const MAX_ACCURACY_M: f64 = 100_000.0;

/// What the phone knew about where and when, at the moment of an event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub lat: f64,
    pub lon: f64,
    /// Horizontal accuracy radius (68 % confidence), metres.
    pub accuracy_m: f64,
    pub altitude_m: Option<f64>,
    pub provider: Provider,
    /// When the location fix itself was taken (phone wall clock, ms since the Unix epoch).
    pub fix_time_ms: i64,
    /// The OS reported the location as mocked or simulated.
    pub mock: bool,
    /// The BSSID of the Wi-Fi network the phone was connected to, if any.
    pub wifi_bssid: Option<String>,
    /// The phone's wall clock at the event, ms since the Unix epoch.
    pub device_time_ms: i64,
    /// The phone's monotonic clock (ms since boot) at the event.
    pub monotonic_ms: Option<i64>,
    /// `server time - monotonic time` learned at the last sync in this boot; absent after a
    /// reboot until the next sync.
    pub server_offset_ms: Option<i64>,
}

impl Evidence {
    pub fn point(&self) -> GeoPoint {
        GeoPoint {
            lat: self.lat,
            lon: self.lon,
        }
    }

    /// The event's time on the server's clock, if the phone's monotonic clock can tell it.
    pub fn server_dated_ms(&self) -> Option<i64> {
        match (self.monotonic_ms, self.server_offset_ms) {
            (Some(m), Some(o)) => m.checked_add(o),
            _ => None,
        }
    }

    /// The best estimate of when the event happened: the monotonic dating when there is one,
    /// the phone's wall clock otherwise.
    pub fn event_time_ms(&self) -> i64 {
        self.server_dated_ms().unwrap_or(self.device_time_ms)
    }

    /// Checks the evidence is well-formed (not whether it is believable: that is the verdict).
    pub fn check(&self, field: &str) -> Result<(), Rejection> {
        crate::rules::check_point(&self.point(), field)?;
        if !self.accuracy_m.is_finite() || self.accuracy_m < 0.0 || self.accuracy_m > MAX_ACCURACY_M
        {
            return Err(Rejection::new(
                "invalid_accuracy",
                format!(
                    "The accuracy in '{field}' must be between 0 and {MAX_ACCURACY_M} metres, not {}.",
                    self.accuracy_m
                ),
            ));
        }
        if let Some(a) = self.altitude_m
            && (!a.is_finite() || !(-1_000.0..=10_000.0).contains(&a))
        {
            return Err(Rejection::new(
                "invalid_altitude",
                format!(
                    "The altitude in '{field}' must be between -1000 and 10000 metres, not {a}."
                ),
            ));
        }
        // 2000-01-01 .. 2200-01-01: anything outside is a broken clock or a forged value.
        const EARLIEST: i64 = 946_684_800_000;
        const LATEST: i64 = 7_258_118_400_000;
        for (name, t) in [
            ("fix_time_ms", self.fix_time_ms),
            ("device_time_ms", self.device_time_ms),
        ] {
            if !(EARLIEST..LATEST).contains(&t) {
                return Err(Rejection::new(
                    "invalid_time",
                    format!("'{field}.{name}' ({t}) is not a plausible time."),
                ));
            }
        }
        if let Some(m) = self.monotonic_ms
            && m < 0
        {
            return Err(Rejection::new(
                "invalid_time",
                format!("'{field}.monotonic_ms' cannot be negative."),
            ));
        }
        // An offset that overflows when added is as impossible as one that lands in 1970: it
        // must not pass as "no dating" (which `server_dated_ms` would make of it).
        if let (Some(m), Some(o)) = (self.monotonic_ms, self.server_offset_ms)
            && !m
                .checked_add(o)
                .is_some_and(|t| (EARLIEST..LATEST).contains(&t))
        {
            return Err(Rejection::new(
                "invalid_time",
                format!("'{field}': the monotonic clock and its offset give an impossible time."),
            ));
        }
        if let Some(b) = &self.wifi_bssid {
            let ok = b.len() == 17
                && b.split(':').count() == 6
                && b.split(':')
                    .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
            if !ok {
                return Err(Rejection::new(
                    "invalid_bssid",
                    format!("'{b}' in '{field}.wifi_bssid' is not a BSSID like 00:11:22:aa:bb:cc."),
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn read_fields<D: ReadDoc>(
        r: &Reader<'_, D>,
        o: &Obj<'_>,
        path: &str,
    ) -> Result<Self, Rejection> {
        let f = |k: &str| format!("{path}.{k}");
        let req_f64 = |k: &str| {
            r.opt_f64(o, k, &f(k))?.ok_or_else(|| {
                Rejection::new("missing_field", format!("Field '{}' is required.", f(k)))
            })
        };
        let req_i64 = |k: &str| {
            r.opt_i64(o, k, &f(k))?.ok_or_else(|| {
                Rejection::new("missing_field", format!("Field '{}' is required.", f(k)))
            })
        };
        let opt_i64 = |k: &str| r.opt_i64(o, k, &f(k));
        Ok(Evidence {
            lat: req_f64("lat")?,
            lon: req_f64("lon")?,
            accuracy_m: req_f64("accuracy_m")?,
            altitude_m: r.opt_f64(o, "altitude_m", &f("altitude_m"))?,
            provider: r.req_str(o, "provider", &f("provider"))?.parse()?,
            fix_time_ms: req_i64("fix_time_ms")?,
            mock: r.opt_bool(o, "mock", &f("mock"))?.unwrap_or(false),
            wifi_bssid: r.opt_str(o, "wifi_bssid", &f("wifi_bssid"))?,
            device_time_ms: req_i64("device_time_ms")?,
            monotonic_ms: opt_i64("monotonic_ms")?,
            server_offset_ms: opt_i64("server_offset_ms")?,
        })
    }

    /// Writes the evidence as a map under `key` of `parent`.
    pub(crate) fn write_at<T: Transactable>(
        &self,
        tx: &mut T,
        parent: &ObjId,
        key: &str,
    ) -> Result<(), AutomergeError> {
        let m = docio::ensure_map(tx, parent, key)?;
        docio::put(tx, &m, "lat", self.lat)?;
        docio::put(tx, &m, "lon", self.lon)?;
        docio::put(tx, &m, "accuracy_m", self.accuracy_m)?;
        docio::put_opt(tx, &m, "altitude_m", self.altitude_m)?;
        docio::put(tx, &m, "provider", self.provider.as_str())?;
        docio::put(tx, &m, "fix_time_ms", self.fix_time_ms)?;
        docio::put(tx, &m, "mock", self.mock)?;
        docio::put_opt(tx, &m, "wifi_bssid", self.wifi_bssid.as_deref())?;
        docio::put(tx, &m, "device_time_ms", self.device_time_ms)?;
        docio::put_opt(tx, &m, "monotonic_ms", self.monotonic_ms)?;
        docio::put_opt(tx, &m, "server_offset_ms", self.server_offset_ms)?;
        Ok(())
    }
}
