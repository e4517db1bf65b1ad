//! Attendance on the phone: punches at project sites (append-only, graded offline against the
//! site's geofence), make-up requests for missed punches (a local time in the site's zone), a
//! manager's decision on them, and the worker's month as the server computes it.
//!
//! `GET /v1/attendance/me` also carries the tenant's trust policy and the worker's site
//! assignments; both are cached (at [`crate::FieldsyncClient::my_attendance`] and, best effort,
//! at every sync) so previews grade with the tenant's thresholds and a punch at a site the
//! worker is not assigned to is refused offline (`not_assigned`), as the server would.

use crate::client::{Inner, is_unreachable};
use crate::edit::{opt, parse_doc_id};
use crate::error::{ClientError, Result};
use crate::model::{Assignment, FieldEventView, LocationFix, MakeupView, MyAttendance, PunchView};
use crate::store;
use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use fieldsync_sync::attendance::{DayRecord, Summary};
use fieldsync_sync::record::punch::{Direction, Makeup, MakeupDecision, MakeupStatus, Punch};
use fieldsync_sync::trust::{self, Policy, Target};
use fieldsync_sync::{Conflict, DocId, Project, Record, RecordKind, Site};
use serde::Deserialize;
use std::collections::HashMap;

/// The server refuses events dated further than this into its future (ms).
const FUTURE_TOLERANCE_MS: i64 = 5 * 60_000;

/// `GET /v1/attendance/me` as the server answers it.
/// How long cached assignments and policy serve before a sync refreshes them.
const SETUP_MAX_AGE_MS: i64 = 3_600_000;

/// `GET /v1/attendance/setup` as the server answers it.
#[derive(Deserialize)]
struct SetupAnswer {
    policy: Policy,
    #[serde(default)]
    assignments: Vec<Assignment>,
}

#[derive(Deserialize)]
struct MonthAnswer {
    month: String,
    user: String,
    policy: Policy,
    #[serde(default)]
    assignments: Vec<Assignment>,
    /// Absent (null) when the worker has no attendance that month.
    days: Option<Vec<DayRecord>>,
    summary: Option<Summary>,
}

/// Only what the `not_assigned` check needs of a cached assignment, so a cache written by
/// another build still serves it.
#[derive(Deserialize)]
struct AssignedSite {
    project: String,
    site: String,
}

/// `YYYY-MM`, checked.
fn check_month(month: &str) -> Result<String> {
    let month = month.trim();
    let ok =
        month.len() == 7 && NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").is_ok();
    if !ok {
        return Err(ClientError::invalid(
            "invalid_month",
            format!("'{month}' is not a month (YYYY-MM)."),
        ));
    }
    Ok(month.to_owned())
}

/// The month (`YYYY-MM`) of `t_ms` in `tz`.
fn month_of(t_ms: i64, tz: Tz) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(t_ms)
        .map(|t| t.with_timezone(&tz).format("%Y-%m").to_string())
}

fn parse_tz(site: &Site) -> Result<Tz> {
    site.timezone.parse().map_err(|_| {
        ClientError::invalid(
            "invalid_timezone",
            format!(
                "Site {} has the time zone '{}', which this app does not know.",
                site.name, site.timezone
            ),
        )
    })
}

/// `local` (`YYYY-MM-DD HH:MM`) in `tz`, as ms since the epoch. A time repeated when clocks go
/// back is the earlier of the two (as shifts are read); one skipped when they go forward does
/// not exist and is refused.
pub(crate) fn local_to_utc_ms(local: &str, tz: Tz) -> Result<i64> {
    let naive = NaiveDateTime::parse_from_str(local.trim(), "%Y-%m-%d %H:%M").map_err(|_| {
        ClientError::invalid(
            "invalid_local_time",
            format!("'{}' is not a local time (YYYY-MM-DD HH:MM).", local.trim()),
        )
    })?;
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Ok(t.timestamp_millis()),
        LocalResult::None => Err(ClientError::invalid(
            "nonexistent_local_time",
            format!(
                "{} does not exist in {tz}: the clocks skipped it for daylight saving time. Pick a time before or after the change.",
                local.trim()
            ),
        )),
    }
}

/// `t_ms` as `YYYY-MM-DD HH:MM` in `tz`.
fn local_time(t_ms: i64, tz: Tz) -> String {
    DateTime::<Utc>::from_timestamp_millis(t_ms)
        .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| t_ms.to_string())
}

fn with_makeup(
    change: impl FnOnce(&mut Makeup) -> Result<()>,
) -> impl FnOnce(&mut Record) -> Result<()> {
    move |r| match r {
        Record::Makeup(m) => change(m),
        _ => Err(ClientError::invalid(
            "kind_mismatch",
            "The record is not a make-up request.",
        )),
    }
}

/// Projects looked up once per listing.
#[derive(Default)]
struct Projects(HashMap<DocId, Option<Project>>);

impl Projects {
    fn get(&mut self, inner: &Inner, id: DocId) -> Option<&Project> {
        self.0
            .entry(id)
            .or_insert_with(|| match inner.load(&id.to_string(), RecordKind::Project) {
                Ok((Record::Project(p), _, _)) => Some(p),
                _ => None,
            })
            .as_ref()
    }

    fn site(&mut self, inner: &Inner, id: DocId, site: &str) -> (Option<String>, Option<&Site>) {
        match self.get(inner, id) {
            Some(p) => (Some(p.name.clone()), p.sites.iter().find(|s| s.id == site)),
            None => (None, None),
        }
    }
}

impl Inner {
    /// A project on this device and one of its sites, by the site's id (or, if no site has that
    /// id, by its exact name when only one site has it).
    fn project_site(&self, project_id: &str, site: &str) -> Result<(Project, Site)> {
        let id = parse_doc_id(project_id, "project")?;
        let project = match self.load(&id.to_string(), RecordKind::Project) {
            Ok((Record::Project(p), _, _)) => p,
            Ok(_) | Err(ClientError::NotFound { .. }) => {
                return Err(ClientError::invalid(
                    "unknown_site",
                    format!("The project {project_id} is not on this device; sync first."),
                ));
            }
            Err(e) => return Err(e),
        };
        let site = site.trim();
        let by_id = project.sites.iter().find(|s| s.id == site);
        let mut by_name = project.sites.iter().filter(|s| s.name == site);
        let found = by_id.or_else(|| match (by_name.next(), by_name.next()) {
            (Some(s), None) => Some(s),
            _ => None,
        });
        let Some(found) = found.cloned() else {
            return Err(ClientError::invalid(
                "unknown_site",
                format!("Project {} has no site '{site}'.", project.name),
            ));
        };
        Ok((project, found))
    }

    /// Refuses a site the cached assignments leave out; allows any site before the server has
    /// sent assignments (or when it lists none). A miss first refreshes the cache when the
    /// server answers, so a worker assigned a minute ago is not refused on stale knowledge.
    fn check_assigned(&mut self, project: &Project, site: &Site) -> Result<()> {
        if self.assigned_per_cache(project, site)? {
            return Ok(());
        }
        if let Err(e @ ClientError::Revoked { .. }) = self.fetch_setup() {
            return Err(e);
        }
        if self.assigned_per_cache(project, site)? {
            return Ok(());
        }
        Err(ClientError::invalid(
            "not_assigned",
            format!(
                "You are not assigned to site {} of {}; ask your manager to assign you.",
                site.name, project.name
            ),
        ))
    }

    fn assigned_per_cache(&self, project: &Project, site: &Site) -> Result<bool> {
        let Some(setup) = store::attendance_setup_get(&self.store.conn)? else {
            return Ok(true);
        };
        let assigned: Vec<AssignedSite> =
            serde_json::from_str(&setup.assignments).unwrap_or_default();
        let pid = project.id.to_string();
        Ok(assigned.is_empty()
            || assigned
                .iter()
                .any(|a| a.project == pid && a.site == site.id))
    }

    fn punch_view(&self, punch: Punch, pending: bool, projects: &mut Projects) -> PunchView {
        let (project_name, site) = projects.site(self, punch.project, &punch.site);
        PunchView {
            site_name: site.map(|s| s.name.clone()),
            project_name,
            time_ms: punch.evidence.event_time_ms(),
            punch,
            pending,
        }
    }

    fn makeup_view(
        &self,
        makeup: Makeup,
        conflicts: Vec<Conflict>,
        pending: bool,
        projects: &mut Projects,
    ) -> MakeupView {
        let (project_name, site) = projects.site(self, makeup.project, &makeup.site);
        let tz = site.and_then(|s| s.timezone.parse::<Tz>().ok());
        MakeupView {
            project_name,
            site_name: site.map(|s| s.name.clone()),
            timezone: site.map(|s| s.timezone.clone()),
            local_time: match tz {
                Some(tz) => local_time(makeup.at_ms, tz),
                None => format!("{} UTC", local_time(makeup.at_ms, Tz::UTC)),
            },
            state: match makeup.decision.as_ref().map(|d| d.status) {
                None => "requested",
                Some(MakeupStatus::Approved) => "approved",
                Some(MakeupStatus::Rejected) => "rejected",
            }
            .to_owned(),
            makeup,
            pending,
            conflicts,
        }
    }

    fn punch(
        &mut self,
        project_id: &str,
        site_id: &str,
        direction: &str,
        fix: LocationFix,
        note: Option<String>,
    ) -> Result<FieldEventView> {
        let me = self.user_id()?;
        let policy = self.policy()?;
        let (project, site) = self.project_site(project_id, site_id)?;
        self.check_assigned(&project, &site)?;
        let direction: Direction = direction.trim().parse()?;
        let evidence = self.evidence(fix, "evidence")?;
        let verdict = trust::grade(
            "punch",
            &evidence,
            &Target::Site {
                name: &site.name,
                fence: site.geofence.as_ref(),
                margin_m: 0.0,
            },
            &self.recent_events(me)?,
            &policy,
        );
        let punch = Punch {
            id: DocId::new(),
            user: me,
            project: project.id,
            site: site.id.clone(),
            direction,
            evidence,
            note: opt(note),
        };
        self.create(Record::Punch(punch.clone()))?;
        let pending =
            store::doc_state(&self.store.conn, &punch.id.to_string())?.is_some_and(|s| s.dirty);
        let mut projects = Projects::default();
        projects.0.insert(project.id, Some(project));
        Ok(FieldEventView {
            visit: None,
            punch: Some(self.punch_view(punch, pending, &mut projects)),
            verdict,
        })
    }

    /// The logged-in user's punches on this device, oldest first, with `from_ms <= time <
    /// to_ms` where given.
    fn my_punches(&self, from_ms: Option<i64>, to_ms: Option<i64>) -> Result<Vec<PunchView>> {
        let me = self.user_id()?;
        let mut projects = Projects::default();
        let mut out: Vec<PunchView> = self
            .list(RecordKind::Punch)?
            .into_iter()
            .filter_map(|(r, _, pending)| match r {
                Record::Punch(p) if p.user == me => Some((p, pending)),
                _ => None,
            })
            .map(|(p, pending)| self.punch_view(p, pending, &mut projects))
            .filter(|v| {
                from_ms.is_none_or(|f| v.time_ms >= f) && to_ms.is_none_or(|t| v.time_ms < t)
            })
            .collect();
        out.sort_by_key(|v| (v.time_ms, v.punch.id.to_string()));
        Ok(out)
    }

    fn makeup(&self, id: &str) -> Result<MakeupView> {
        match self.load(id, RecordKind::Makeup)? {
            (Record::Makeup(m), conflicts, pending) => {
                Ok(self.makeup_view(m, conflicts, pending, &mut Projects::default()))
            }
            _ => Err(ClientError::not_found("make-up request", id)),
        }
    }

    /// Fetches the worker's month and caches its policy and assignments.
    fn fetch_month(&mut self, month: &str) -> Result<MonthAnswer> {
        let answer: MonthAnswer = self.call_get(&format!("/v1/attendance/me?month={month}"))?;
        self.cache_setup(&answer.policy, &answer.assignments)?;
        Ok(answer)
    }

    /// Fetches the policy and assignments alone (`GET /v1/attendance/setup`: no month computed).
    fn fetch_setup(&mut self) -> Result<()> {
        let answer: SetupAnswer = self.call_get("/v1/attendance/setup")?;
        self.cache_setup(&answer.policy, &answer.assignments)
    }

    fn cache_setup(&mut self, policy: &Policy, assignments: &[Assignment]) -> Result<()> {
        store::attendance_setup_put(
            &self.store.conn,
            &store::AttendanceSetupRow {
                policy: serde_json::to_string(policy).expect("BUG: a policy always serializes"),
                assignments: serde_json::to_string(assignments)
                    .expect("BUG: assignments always serialize"),
                fetched_at_ms: store::now_ms(),
            },
        )
    }

    /// Refreshes the cached policy and assignments, for [`Inner::sync`], when the cache is
    /// missing or older than [`SETUP_MAX_AGE_MS`] (so a sync with nothing new stays one
    /// request). Only a revocation (which has purged the device) is worth reporting; anything
    /// else leaves the cache as it was.
    pub(crate) fn refresh_attendance_setup(&mut self) -> Result<()> {
        let fresh = store::attendance_setup_get(&self.store.conn)?
            .is_some_and(|s| (store::now_ms() - s.fetched_at_ms).abs() < SETUP_MAX_AGE_MS);
        if fresh {
            return Ok(());
        }
        match self.fetch_setup() {
            Err(e @ ClientError::Revoked { .. }) => Err(e),
            _ => Ok(()),
        }
    }

    fn my_attendance(&mut self, month: &str) -> Result<MyAttendance> {
        let month = check_month(month)?;
        let answer = match self.fetch_month(&month) {
            Ok(a) => a,
            Err(e) if is_unreachable(&e) => {
                return Err(ClientError::Network {
                    code: "offline".into(),
                    message: format!(
                        "{} The month needs the server; your punches are kept on this phone until the next sync.",
                        e.message()
                    ),
                });
            }
            Err(e) => return Err(e),
        };
        // This month's punches the server has not got yet, by the month at their site.
        let mut projects = Projects::default();
        let pending_punches = self
            .my_punches(None, None)?
            .into_iter()
            .filter(|p| p.pending)
            .filter(|p| {
                let (_, site) = projects.site(self, p.punch.project, &p.punch.site);
                let tz = site
                    .and_then(|s| s.timezone.parse().ok())
                    .unwrap_or(Tz::UTC);
                month_of(p.time_ms, tz).as_deref() == Some(month.as_str())
            })
            .collect();
        Ok(MyAttendance {
            month: answer.month,
            user: answer.user,
            policy: answer.policy,
            assignments: answer.assignments,
            days: answer.days.unwrap_or_default(),
            summary: answer.summary.unwrap_or_default(),
            pending_punches,
        })
    }
}

impl crate::FieldsyncClient {
    /// Clocks in (`direction` `in`) or out (`out`) at a site of a project on this device, at
    /// `fix`, now. Returns the punch and its location verdict against the site's geofence.
    /// Punches are never changed afterwards; a wrong or missed one is fixed by a make-up request.
    pub fn punch(
        &self,
        project_id: String,
        site_id: String,
        direction: String,
        fix: LocationFix,
        note: Option<String>,
    ) -> Result<FieldEventView> {
        self.lock()
            .punch(&project_id, &site_id, &direction, fix, note)
    }

    /// The logged-in user's punches on this device dated `from_ms <= t < to_ms` (either bound
    /// may be left out), oldest first, synced or not.
    pub fn list_punches(&self, from_ms: Option<i64>, to_ms: Option<i64>) -> Result<Vec<PunchView>> {
        self.lock().my_punches(from_ms, to_ms)
    }

    /// Asks for a missed punch to be recorded: `local_time` is `YYYY-MM-DD HH:MM` in the site's
    /// time zone.
    pub fn request_makeup(
        &self,
        project_id: String,
        site_id: String,
        direction: String,
        local_time: String,
        reason: String,
    ) -> Result<MakeupView> {
        let mut inner = self.lock();
        let me = inner.user_id()?;
        let (project, site) = inner.project_site(&project_id, &site_id)?;
        inner.check_assigned(&project, &site)?;
        let direction: Direction = direction.trim().parse()?;
        let at_ms = local_to_utc_ms(&local_time, parse_tz(&site)?)?;
        let now = inner.stamp()?.time_ms();
        if at_ms > now + FUTURE_TOLERANCE_MS {
            return Err(ClientError::invalid(
                "future_time",
                format!(
                    "{} is {} in the future; a make-up request is for a punch that was missed.",
                    local_time.trim(),
                    trust::human_duration(at_ms - now)
                ),
            ));
        }
        let m = Makeup {
            id: DocId::new(),
            user: me,
            project: project.id,
            site: site.id,
            direction,
            at_ms,
            reason: reason.trim().to_owned(),
            decision: None,
        };
        let id = m.id.to_string();
        inner.create(Record::Makeup(m))?;
        inner.makeup(&id)
    }

    /// A manager approves or refuses a make-up request of someone in their team, once.
    pub fn decide_makeup(
        &self,
        makeup_id: String,
        approve: bool,
        comment: Option<String>,
    ) -> Result<MakeupView> {
        let mut inner = self.lock();
        let decision = MakeupDecision {
            status: if approve {
                MakeupStatus::Approved
            } else {
                MakeupStatus::Rejected
            },
            by: inner.user_id()?,
            at_ms: inner.stamp()?.time_ms(),
            comment: opt(comment),
        };
        inner.edit(
            &makeup_id,
            RecordKind::Makeup,
            with_makeup(|m| {
                m.decision = Some(decision);
                Ok(())
            }),
        )?;
        inner.makeup(&makeup_id)
    }

    /// Every make-up request on this device (a manager's phone holds the team's), latest
    /// missed punch first.
    pub fn list_makeups(&self) -> Result<Vec<MakeupView>> {
        let inner = self.lock();
        let mut projects = Projects::default();
        let mut out: Vec<MakeupView> = inner
            .list(RecordKind::Makeup)?
            .into_iter()
            .filter_map(|(r, c, p)| match r {
                Record::Makeup(m) => Some(inner.makeup_view(m, c, p, &mut projects)),
                _ => None,
            })
            .collect();
        out.sort_by_key(|v| std::cmp::Reverse((v.makeup.at_ms, v.makeup.id.to_string())));
        Ok(out)
    }

    /// The worker's month (`YYYY-MM`) from the server, with this month's punches not yet sent.
    /// Needs the server: unreachable, it fails with code `offline` (the punches stay listed by
    /// [`crate::FieldsyncClient::list_punches`]).
    pub fn my_attendance(&self, month: String) -> Result<MyAttendance> {
        self.lock().my_attendance(&month)
    }
}
