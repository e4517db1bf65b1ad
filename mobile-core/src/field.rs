//! What every field event (visit check-in and check-out, attendance punch) shares: the location
//! fix turned into evidence stamped with the phone's clocks, the tenant policy the phone grades
//! with, and the person's recent events the grade compares against.

use crate::client::Inner;
use crate::edit::{load_doc, opt};
use crate::error::Result;
use crate::model::LocationFix;
use crate::store;
use fieldsync_sync::evidence::{Evidence, Provider};
use fieldsync_sync::trust::{Policy, PriorEvent};
use fieldsync_sync::{Record, RecordKind, UserId};

/// How many of the person's latest events the verdict preview compares with.
pub(crate) const RECENT_EVENTS: usize = 20;

impl Inner {
    /// The evidence of an event happening now at `fix`, stamped with the clocks and checked
    /// (`field` names it in messages).
    pub(crate) fn evidence(&self, fix: LocationFix, field: &str) -> Result<Evidence> {
        let stamp = self.stamp()?;
        let provider: Provider = fix.provider.trim().parse()?;
        let ev = Evidence {
            lat: fix.lat,
            lon: fix.lon,
            accuracy_m: fix.accuracy_m,
            altitude_m: fix.altitude_m,
            provider,
            fix_time_ms: fix.fix_time_ms.unwrap_or(stamp.wall_ms),
            mock: fix.mock,
            wifi_bssid: opt(fix.wifi_bssid).map(|b| b.to_ascii_lowercase()),
            device_time_ms: stamp.wall_ms,
            monotonic_ms: Some(stamp.monotonic_ms),
            server_offset_ms: stamp.server_offset_ms,
        };
        ev.check(field)?;
        Ok(ev)
    }

    /// The tenant's trust policy as the server last sent it; the default before it has (or if
    /// the cached copy cannot be read, which only costs the preview some precision).
    pub(crate) fn policy(&self) -> Result<Policy> {
        Ok(store::attendance_setup_get(&self.store.conn)?
            .and_then(|s| serde_json::from_str(&s.policy).ok())
            .unwrap_or_default())
    }

    /// The evidence of every field event of `user` on this device: visit check-ins and
    /// check-outs and punches, newest first (by the time the server will date them).
    pub(crate) fn events_of(&self, user: UserId) -> Result<Vec<Evidence>> {
        let mut out = Vec::new();
        for kind in [RecordKind::Visit, RecordKind::Punch] {
            for row in store::docs_all(&self.store.conn, Some(kind.as_str()))? {
                let Ok(doc) = load_doc(&row.bytes, self.device_id) else {
                    continue;
                };
                match Record::read(&doc) {
                    Ok((Record::Visit(v), _)) if v.rep == user => {
                        out.extend(v.check_in);
                        out.extend(v.check_out.map(|c| c.evidence));
                    }
                    Ok((Record::Punch(p), _)) if p.user == user => out.push(p.evidence),
                    _ => {}
                }
            }
        }
        out.sort_by_key(|e| std::cmp::Reverse(e.event_time_ms()));
        Ok(out)
    }

    /// The latest [`RECENT_EVENTS`] events of `user`, as the grade wants them.
    pub(crate) fn recent_events(&self, user: UserId) -> Result<Vec<PriorEvent>> {
        Ok(self
            .events_of(user)?
            .into_iter()
            .take(RECENT_EVENTS)
            .map(|e| PriorEvent {
                time_ms: e.event_time_ms(),
                lat: e.lat,
                lon: e.lon,
                accuracy_m: e.accuracy_m,
            })
            .collect())
    }
}
