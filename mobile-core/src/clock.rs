//! The phone's clocks, and how a field event is dated so the server can place it in time even if
//! it was made offline days ago on a phone whose owner moved its clock.
//!
//! Three readings make a [`Reading`]: the *wall clock* (ms since the Unix epoch; the person can
//! move it), the *monotonic clock* (ms since boot, counting deep sleep; nobody can move it) and
//! the *boot id* (which boot the monotonic clock counts from). At every successful pull the
//! phone learns `server time - monotonic time` for the current boot (using the midpoint of the
//! request's send and receive times) and stores it. Every event carries the wall clock, the
//! monotonic clock and, if the stored offset was learnt in the current boot, that offset: the
//! server then dates the event `monotonic + offset` (see [`fieldsync_sync::evidence`]). After a
//! reboot the offset no longer applies and is left out until the next pull.
//!
//! Sources:
//! * **System** (the default). On Linux and Android the monotonic clock is `/proc/uptime`
//!   (CLOCK_BOOTTIME, which keeps counting while the phone sleeps, like Android's
//!   `elapsedRealtime`) and the boot id `/proc/sys/kernel/random/boot_id`. Where those cannot be
//!   read (iOS, macOS, Windows, a sandbox) the monotonic clock is the time since this process
//!   first looked ([`std::time::Instant`]) and the boot id a random id made once per process: an
//!   offset learnt by an earlier process then never applies, so events are dated by the wall
//!   clock until the next pull — less precise, never wrong.
//! * **Manual**, for simulators, tests and the `fieldsync-device` CLI: set by hand, it stands
//!   still until moved ([`crate::FieldsyncClient::advance_manual_clock`] moves both clocks,
//!   [`crate::FieldsyncClient::set_manual_wall_clock`] only the wall clock, as a person changing
//!   the time does). It is kept in the store, so successive CLI runs share it.
//!
//! Token expiry and sync bookkeeping keep using the system's wall clock ([`store::now_ms`]):
//! they are about the real world, not about dating events.

use crate::client::Inner;
use crate::error::{ClientError, Result};
use crate::model::ClockStatus;
use crate::store::{self, ManualClock, ServerOffset};
use std::sync::OnceLock;

/// The clocks at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reading {
    pub wall_ms: i64,
    pub monotonic_ms: i64,
    pub boot_id: String,
}

/// What an event is stamped with: the clocks, and the server offset if it holds in this boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub wall_ms: i64,
    pub monotonic_ms: i64,
    pub server_offset_ms: Option<i64>,
}

impl Stamp {
    /// The best estimate of the server's time now: monotonic + offset when the offset holds, the
    /// wall clock otherwise (the same rule as [`fieldsync_sync::evidence::Evidence::event_time_ms`]).
    pub fn time_ms(&self) -> i64 {
        self.server_offset_ms
            .and_then(|o| self.monotonic_ms.checked_add(o))
            .unwrap_or(self.wall_ms)
    }
}

/// `/proc/uptime` in ms: the first number is seconds since boot, sleep included.
fn proc_uptime_ms() -> Option<i64> {
    let text = std::fs::read_to_string("/proc/uptime").ok()?;
    let secs: f64 = text.split_whitespace().next()?.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| (secs * 1000.0).round() as i64)
}

fn proc_boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = id.trim();
    (!id.is_empty()).then(|| id.to_owned())
}

/// The fallback: time since this process first asked, and a boot id of this process.
fn process_clock() -> (i64, String) {
    static START: OnceLock<(std::time::Instant, String)> = OnceLock::new();
    let (start, id) = START.get_or_init(|| {
        (
            std::time::Instant::now(),
            format!("process-{}", uuid::Uuid::now_v7()),
        )
    });
    (start.elapsed().as_millis() as i64, id.clone())
}

/// The system's clocks now.
pub(crate) fn system_reading() -> Reading {
    // Both from /proc or both from the fallback: a monotonic reading is only meaningful with
    // the boot id it counts from.
    let (monotonic_ms, boot_id) = match (proc_uptime_ms(), proc_boot_id()) {
        (Some(m), Some(b)) => (m, b),
        _ => process_clock(),
    };
    Reading {
        wall_ms: store::now_ms(),
        monotonic_ms,
        boot_id,
    }
}

/// Wall-clock times outside 2000..2200 are refused: the evidence rules would refuse every event
/// stamped with them.
const PLAUSIBLE_WALL_MS: std::ops::Range<i64> = 946_684_800_000..7_258_118_400_000;

fn check_wall(wall_ms: i64) -> Result<()> {
    if !PLAUSIBLE_WALL_MS.contains(&wall_ms) {
        return Err(ClientError::invalid(
            "invalid_clock",
            format!("A wall clock of {wall_ms} ms is not between the years 2000 and 2200."),
        ));
    }
    Ok(())
}

fn no_manual_clock() -> ClientError {
    ClientError::invalid(
        "no_manual_clock",
        "The phone uses the system clock; set a manual clock first.",
    )
}

fn stamp_of(row: &store::ClockRow, now: &Reading) -> Stamp {
    Stamp {
        wall_ms: now.wall_ms,
        monotonic_ms: now.monotonic_ms,
        server_offset_ms: row
            .offset
            .as_ref()
            .filter(|o| o.boot_id == now.boot_id)
            .map(|o| o.offset_ms),
    }
}

impl Inner {
    /// The stored clock facts and the clocks now (the manual clock if one is set).
    fn read_clock(&self) -> Result<(store::ClockRow, Reading)> {
        let row = store::clock_get(&self.store.conn)?;
        let now = match &row.manual {
            Some(m) => Reading {
                wall_ms: m.wall_ms,
                monotonic_ms: m.monotonic_ms,
                boot_id: m.boot_id.clone(),
            },
            None => system_reading(),
        };
        Ok((row, now))
    }

    /// The clocks now: the manual clock if one is set, the system's otherwise.
    pub(crate) fn reading(&self) -> Result<Reading> {
        Ok(self.read_clock()?.1)
    }

    /// The clocks now, with the server offset if it was learnt in this boot.
    pub(crate) fn stamp(&self) -> Result<Stamp> {
        let (row, now) = self.read_clock()?;
        Ok(stamp_of(&row, &now))
    }

    /// Records `server time - monotonic time` from an answer stamped `server_time_ms` to a
    /// request sent at `sent` and answered at `received`: the server's clock is taken to have
    /// read `server_time_ms` at the midpoint. Nothing is learnt from a server that sends no time
    /// or if the boot changed in between.
    pub(crate) fn learn_server_offset(
        &self,
        sent: &Reading,
        received: &Reading,
        server_time_ms: i64,
    ) -> Result<()> {
        if server_time_ms <= 0
            || sent.boot_id != received.boot_id
            || received.monotonic_ms < sent.monotonic_ms
        {
            return Ok(());
        }
        let round_trip_ms = received.monotonic_ms - sent.monotonic_ms;
        let midpoint = sent.monotonic_ms + round_trip_ms / 2;
        store::clock_set_offset(
            &self.store.conn,
            &ServerOffset {
                offset_ms: server_time_ms - midpoint,
                boot_id: received.boot_id.clone(),
                learned_at_ms: received.wall_ms,
                round_trip_ms,
            },
        )
    }

    fn clock_status(&self) -> Result<ClockStatus> {
        let (row, now) = self.read_clock()?;
        let stamp = stamp_of(&row, &now);
        Ok(ClockStatus {
            manual: row.manual.is_some(),
            wall_ms: now.wall_ms,
            monotonic_ms: now.monotonic_ms,
            boot_id: now.boot_id,
            server_offset_ms: stamp.server_offset_ms,
            server_time_ms: stamp.server_offset_ms.map(|_| stamp.time_ms()),
            offset_boot_id: row.offset.as_ref().map(|o| o.boot_id.clone()),
            offset_learned_at_ms: row.offset.as_ref().map(|o| o.learned_at_ms),
            offset_round_trip_ms: row.offset.as_ref().map(|o| o.round_trip_ms),
        })
    }

    fn manual_clock(&self) -> Result<ManualClock> {
        store::clock_get(&self.store.conn)?
            .manual
            .ok_or_else(no_manual_clock)
    }
}

impl crate::FieldsyncClient {
    /// The phone's clocks and what it knows of the server's.
    pub fn clock_status(&self) -> Result<ClockStatus> {
        self.lock().clock_status()
    }

    /// Replaces the system's clocks with a manual clock (for simulators, tests and the CLI):
    /// the wall clock at `wall_ms`, the monotonic clock at `monotonic_ms` in the boot
    /// `boot_id`. A new boot id is a simulated reboot: the server offset learnt before no
    /// longer applies. The clock stands still until moved, and stays set across restarts.
    pub fn set_manual_clock(
        &self,
        wall_ms: i64,
        monotonic_ms: i64,
        boot_id: String,
    ) -> Result<ClockStatus> {
        check_wall(wall_ms)?;
        if monotonic_ms < 0 {
            return Err(ClientError::invalid(
                "invalid_clock",
                "The monotonic clock counts up from boot; it cannot be negative.",
            ));
        }
        let boot_id = boot_id.trim().to_owned();
        if boot_id.is_empty() {
            return Err(ClientError::invalid(
                "invalid_clock",
                "A manual clock needs a boot id.",
            ));
        }
        let inner = self.lock();
        store::clock_set_manual(
            &inner.store.conn,
            Some(&ManualClock {
                wall_ms,
                monotonic_ms,
                boot_id,
            }),
        )?;
        inner.clock_status()
    }

    /// Lets `ms` pass on the manual clock: both its wall and monotonic clocks move on.
    pub fn advance_manual_clock(&self, ms: i64) -> Result<ClockStatus> {
        if ms < 0 {
            return Err(ClientError::invalid(
                "invalid_clock",
                "Time only moves forward; to set the wall clock back use set_manual_wall_clock.",
            ));
        }
        let inner = self.lock();
        let mut m = inner.manual_clock()?;
        m.wall_ms = m.wall_ms.saturating_add(ms);
        m.monotonic_ms = m.monotonic_ms.saturating_add(ms);
        check_wall(m.wall_ms)?;
        store::clock_set_manual(&inner.store.conn, Some(&m))?;
        inner.clock_status()
    }

    /// Sets only the manual clock's wall clock, as a person changing the phone's time does; the
    /// monotonic clock (and so the dating of events) is unaffected.
    pub fn set_manual_wall_clock(&self, wall_ms: i64) -> Result<ClockStatus> {
        check_wall(wall_ms)?;
        let inner = self.lock();
        let mut m = inner.manual_clock()?;
        m.wall_ms = wall_ms;
        store::clock_set_manual(&inner.store.conn, Some(&m))?;
        inner.clock_status()
    }

    /// Goes back to the system's clocks.
    pub fn use_system_clock(&self) -> Result<ClockStatus> {
        let inner = self.lock();
        store::clock_set_manual(&inner.store.conn, None)?;
        inner.clock_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_reads_a_boot_id_and_a_monotonic_time_that_does_not_go_back() {
        let a = system_reading();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let b = system_reading();
        assert!(!a.boot_id.is_empty());
        assert_eq!(a.boot_id, b.boot_id, "same boot within one process");
        assert!(b.monotonic_ms >= a.monotonic_ms);
        assert!(PLAUSIBLE_WALL_MS.contains(&a.wall_ms));
        if cfg!(target_os = "linux") {
            assert!(!a.boot_id.starts_with("process-"), "Linux has /proc");
        }
    }

    #[test]
    fn a_stamp_is_dated_by_the_offset_when_there_is_one() {
        let with = Stamp {
            wall_ms: 5_000,
            monotonic_ms: 100,
            server_offset_ms: Some(2_000),
        };
        assert_eq!(with.time_ms(), 2_100);
        let without = Stamp {
            server_offset_ms: None,
            ..with
        };
        assert_eq!(without.time_ms(), 5_000);
    }
}
