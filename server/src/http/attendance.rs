//! Attendance over HTTP: the tenant's set-up (grading policy, shifts, work calendars, site
//! assignments, leave; admins and HR), a worker's own month, and the HR report as JSON, CSV or
//! XLSX.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiQuery as Query, Auth};
use super::parse_path_id;
use crate::app::AppState;
use crate::report::{self, Sheet};
use crate::store::{AssignmentRow, CalendarRow, ShiftRow, StoreError, now_ms};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use fieldsync_sync::attendance::{Calendar, Shift};
use fieldsync_sync::{DocId, Policy, Role, UserId};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

fn invalid(code: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

fn require_hr(auth: &Auth) -> ApiResult<()> {
    if matches!(auth.caller.role, Role::Admin | Role::Hr) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "forbidden",
            "Only admins and HR can change attendance settings.",
        ))
    }
}

fn parse_date(s: &str) -> ApiResult<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| invalid("invalid_date", format!("'{s}' is not a date (YYYY-MM-DD).")))
}

/// `GET /v1/attendance/policy`.
pub async fn get_policy(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Policy>> {
    Ok(Json(state.store.field_policy(auth.caller.tenant).await?))
}

/// `PUT /v1/attendance/policy`.
pub async fn put_policy(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(p): ApiJson<Policy>,
) -> ApiResult<Json<Policy>> {
    require_hr(&auth)?;
    let ok = fieldsync_sync::trust::RADIUS_RANGE_M.contains(&p.default_radius_m)
        && p.max_accuracy_m.is_finite()
        && p.max_accuracy_m > 0.0
        && p.max_speed_kmh.is_finite()
        && p.max_speed_kmh > 0.0
        && p.max_fix_age_ms > 0
        && p.max_clock_skew_ms > 0
        && (15 * 60_000..=7 * 86_400_000).contains(&p.visit_auto_close_ms);
    if !ok {
        return Err(invalid(
            "invalid_policy",
            "The default radius must be 100-3000 m, thresholds positive, and the visit auto-close time between 15 minutes and 7 days.",
        ));
    }
    state.store.set_field_policy(auth.caller.tenant, &p).await?;
    Ok(Json(p))
}

/// A shift as people write it: "09:00" to "17:00", with defaults for the rest.
#[derive(Deserialize)]
pub struct NewShift {
    pub name: String,
    pub start: String,
    pub end: String,
    pub grace_late_min: Option<u16>,
    pub grace_early_min: Option<u16>,
    pub serious_late_min: Option<u16>,
    pub absent_late_min: Option<u16>,
    pub window_before_min: Option<u16>,
    pub window_after_min: Option<u16>,
    pub break_min: Option<u16>,
    pub required_min: Option<u16>,
}

fn hh_mm(s: &str, field: &str) -> ApiResult<u16> {
    let bad = || {
        invalid(
            "invalid_time",
            format!("'{s}' in '{field}' is not a time of day (HH:MM)."),
        )
    };
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 || s.len() != 5 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

impl NewShift {
    pub fn into_shift(self) -> ApiResult<Shift> {
        let start_min = hh_mm(&self.start, "start")?;
        let end_min = hh_mm(&self.end, "end")?;
        let mut shift = Shift {
            name: self.name,
            start_min,
            end_min,
            grace_late_min: self.grace_late_min.unwrap_or(5),
            grace_early_min: self.grace_early_min.unwrap_or(5),
            serious_late_min: self.serious_late_min.unwrap_or(30),
            absent_late_min: 0,
            window_before_min: self.window_before_min.unwrap_or(120),
            window_after_min: self.window_after_min.unwrap_or(240),
            break_min: self.break_min.unwrap_or(60),
            required_min: 0,
        };
        let len = shift.length_min();
        shift.break_min = shift.break_min.min(len / 2);
        shift.absent_late_min = self
            .absent_late_min
            .unwrap_or(120.min(len).max(shift.serious_late_min));
        shift.required_min = self
            .required_min
            .unwrap_or(len.saturating_sub(shift.break_min));
        shift.validate().map_err(ApiError::bad_request)?;
        Ok(shift)
    }
}

fn conflict_or(e: StoreError) -> ApiError {
    e.into()
}

/// `GET /v1/attendance/shifts`.
pub async fn list_shifts(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Vec<ShiftRow>>> {
    Ok(Json(state.store.list_shifts(auth.caller.tenant).await?))
}

/// `POST /v1/attendance/shifts`.
pub async fn create_shift(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(req): ApiJson<NewShift>,
) -> ApiResult<(StatusCode, Json<ShiftRow>)> {
    require_hr(&auth)?;
    let shift = req.into_shift()?;
    let row = state
        .store
        .create_shift(auth.caller.tenant, &shift)
        .await
        .map_err(conflict_or)?;
    Ok((StatusCode::CREATED, Json(row)))
}

#[derive(Deserialize)]
pub struct Holiday {
    pub date: String,
    pub name: String,
}

#[derive(Deserialize)]
pub struct NewCalendar {
    pub name: String,
    /// e.g. ["mon","tue","wed","thu","fri"].
    pub workdays: Vec<String>,
    #[serde(default)]
    pub holidays: Vec<Holiday>,
    #[serde(default)]
    pub extra_workdays: Vec<String>,
}

/// `GET /v1/attendance/calendars`.
pub async fn list_calendars(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Vec<CalendarRow>>> {
    Ok(Json(state.store.list_calendars(auth.caller.tenant).await?))
}

/// `POST /v1/attendance/calendars`.
pub async fn create_calendar(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(req): ApiJson<NewCalendar>,
) -> ApiResult<(StatusCode, Json<CalendarRow>)> {
    require_hr(&auth)?;
    if req.name.trim().is_empty() || req.name.len() > 200 {
        return Err(invalid(
            "invalid_name",
            "A calendar needs a name of at most 200 characters.",
        ));
    }
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let mut workdays = [false; 7];
    for d in &req.workdays {
        let i = DAYS
            .iter()
            .position(|x| d.eq_ignore_ascii_case(x))
            .ok_or_else(|| {
                invalid(
                    "invalid_weekday",
                    format!("'{d}' is not a weekday; use mon, tue, wed, thu, fri, sat, sun."),
                )
            })?;
        workdays[i] = true;
    }
    let mut holidays = BTreeMap::new();
    for h in &req.holidays {
        holidays.insert(parse_date(&h.date)?, h.name.clone());
    }
    let extra_workdays = req
        .extra_workdays
        .iter()
        .map(|d| parse_date(d))
        .collect::<ApiResult<BTreeSet<_>>>()?;
    if holidays.len() + extra_workdays.len() > 2000 {
        return Err(invalid(
            "too_many_days",
            "A calendar can list at most 2000 holidays and extra working days.",
        ));
    }
    let cal = Calendar {
        workdays,
        holidays,
        extra_workdays,
    };
    let row = state
        .store
        .create_calendar(auth.caller.tenant, &req.name, &cal)
        .await?;
    Ok((StatusCode::CREATED, Json(row)))
}

#[derive(Deserialize)]
pub struct AssignmentQuery {
    pub user: Option<String>,
}

/// `GET /v1/attendance/assignments?user=`: admins and HR see everyone's, others their own.
pub async fn list_assignments(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<AssignmentQuery>,
) -> ApiResult<Json<Vec<AssignmentRow>>> {
    let user = match (&q.user, auth.caller.role) {
        (_, Role::FieldRep | Role::SiteManager | Role::Manager) => Some(auth.caller.user),
        (Some(u), _) => Some(parse_path_id::<UserId>(u, "user")?),
        (None, _) => None,
    };
    Ok(Json(
        state.store.assignments(auth.caller.tenant, user).await?,
    ))
}

#[derive(Deserialize)]
pub struct Assign {
    pub user: String,
    pub project: String,
    pub site: String,
    pub shift: Option<String>,
    pub calendar: Option<String>,
    /// First day work is due, YYYY-MM-DD (default: today); null for no start (history).
    #[serde(default = "today_marker")]
    pub from: Option<String>,
}

fn today_marker() -> Option<String> {
    Some("today".into())
}

/// `PUT /v1/attendance/assignments`: assigns a worker to a project site with a shift and a
/// calendar.
pub async fn assign(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(req): ApiJson<Assign>,
) -> ApiResult<Json<AssignmentRow>> {
    require_hr(&auth)?;
    let user: UserId = parse_path_id(&req.user, "user")?;
    let project: DocId = parse_path_id(&req.project, "project")?;
    let (Some(shift), Some(calendar)) = (req.shift.as_deref(), req.calendar.as_deref()) else {
        return Err(invalid(
            "missing_field",
            "An assignment needs a shift and a calendar.",
        ));
    };
    let starts_on = match req.from.as_deref() {
        None => None,
        Some("today") => Some(chrono::Utc::now().date_naive()),
        Some(d) => Some(parse_date(d)?),
    };
    match state
        .store
        .assign_site(
            auth.caller.tenant,
            user,
            project,
            &req.site,
            shift,
            calendar,
            starts_on,
        )
        .await
    {
        Ok(row) => Ok(Json(row)),
        Err(StoreError::NotFound(what)) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            &format!("unknown_{what}"),
            format!("The {what} of this assignment does not exist in this company."),
        )),
        Err(e) => Err(e.into()),
    }
}

/// `DELETE /v1/attendance/assignments`.
pub async fn unassign(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(req): ApiJson<Assign>,
) -> ApiResult<StatusCode> {
    require_hr(&auth)?;
    let user: UserId = parse_path_id(&req.user, "user")?;
    let project: DocId = parse_path_id(&req.project, "project")?;
    if state
        .store
        .unassign_site(auth.caller.tenant, user, project, &req.site)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("assignment"))
    }
}

#[derive(Deserialize)]
pub struct Leave {
    pub user: String,
    pub from: String,
    pub to: String,
    /// e.g. "annual", "sick"; null removes leave on those days.
    pub kind: Option<String>,
}

/// `PUT /v1/attendance/leave`.
pub async fn set_leave(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(req): ApiJson<Leave>,
) -> ApiResult<StatusCode> {
    require_hr(&auth)?;
    let user: UserId = parse_path_id(&req.user, "user")?;
    let (from, to) = (parse_date(&req.from)?, parse_date(&req.to)?);
    if to < from || (to - from).num_days() > 366 {
        return Err(invalid(
            "invalid_period",
            "Leave runs from 'from' to 'to' (at most a year).",
        ));
    }
    if let Some(k) = &req.kind
        && (k.trim().is_empty() || k.len() > 50)
    {
        return Err(invalid(
            "invalid_kind",
            "A kind of leave is a short name such as annual or sick.",
        ));
    }
    let days: Vec<NaiveDate> = from.iter_days().take_while(|d| *d <= to).collect();
    state
        .store
        .set_leave(auth.caller.tenant, user, &days, req.kind.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's assignments with their shifts, as phones cache them.
async fn my_assignments(state: &AppState, auth: &Auth) -> ApiResult<Vec<serde_json::Value>> {
    let tenant = auth.caller.tenant;
    let assignments = state
        .store
        .assignments(tenant, Some(auth.caller.user))
        .await?;
    let shifts = state.store.list_shifts(tenant).await?;
    Ok(assignments
        .iter()
        .map(|a| {
            serde_json::json!({
                "project": a.project, "project_name": a.project_name, "site": a.site, "site_name": a.site_name,
                "timezone": a.timezone,
                "shift": shifts.iter().find(|s| s.id == a.shift_id).map(|s| &s.shift),
            })
        })
        .collect())
}

/// `GET /v1/attendance/setup`: the tenant's grading policy and the caller's site assignments,
/// for the phone's offline checks (cheap: no month is computed).
pub async fn my_setup(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(serde_json::json!({
        "user": auth.caller.user,
        "policy": state.store.field_policy(auth.caller.tenant).await?,
        "assignments": my_assignments(&state, &auth).await?,
    })))
}

#[derive(Deserialize)]
pub struct MonthQuery {
    pub month: String,
}

/// `GET /v1/attendance/me?month=YYYY-MM`: the caller's own days, with their set-up.
pub async fn my_month(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<MonthQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let first = parse_date(&format!("{}-01", q.month)).map_err(|_| {
        invalid(
            "invalid_month",
            format!("'{}' is not a month (YYYY-MM).", q.month),
        )
    })?;
    let last = first
        .checked_add_months(chrono::Months::new(1))
        .and_then(|d| d.pred_opt())
        .ok_or_else(|| invalid("invalid_month", "That month is out of range."))?;
    let tenant = auth.caller.tenant;
    let (from_ms, to_ms) = report::load_range_ms(first, last);
    let inputs = state
        .store
        .attendance_inputs(tenant, Some(&[auth.caller.user]), from_ms, to_ms)
        .await?;
    let rep = report::build(&inputs, first, last);
    let assignments = my_assignments(&state, &auth).await?;
    let me = rep.employees.into_iter().next();
    Ok(Json(serde_json::json!({
        "month": q.month,
        "user": auth.caller.user,
        "policy": state.store.field_policy(tenant).await?,
        "assignments": assignments,
        "days": me.as_ref().map(|e| &e.days),
        "summary": me.as_ref().map(|e| &e.summary),
    })))
}

#[derive(Deserialize)]
pub struct ReportQuery {
    pub from: String,
    pub to: String,
    /// json (default), csv or xlsx.
    pub format: Option<String>,
    /// For CSV: summary (default) or days.
    pub sheet: Option<Sheet>,
    /// Only people reporting to this manager (and the manager).
    pub team: Option<String>,
    /// Only people assigned to this site: `PROJECT_ID:SITE_ID`.
    pub site: Option<String>,
    /// Only these people: comma-separated user ids.
    pub users: Option<String>,
}

/// Who a report covers, given the caller's role and the filters: `None` = the whole tenant.
pub async fn report_people(
    state: &AppState,
    auth: &Auth,
    team: Option<&str>,
    site: Option<&str>,
    users: Option<&str>,
) -> ApiResult<Option<Vec<UserId>>> {
    let tenant = auth.caller.tenant;
    let all = state.store.list_users(tenant).await?;
    let mut chosen: Option<Vec<UserId>> = match auth.caller.role {
        Role::Admin | Role::Hr => None,
        Role::Manager => Some(
            all.iter()
                .filter(|u| u.id == auth.caller.user || u.manager == Some(auth.caller.user))
                .map(|u| u.id)
                .collect(),
        ),
        _ => {
            return Err(ApiError::forbidden(
                "forbidden",
                "Attendance reports are for HR, admins and managers (for their team).",
            ));
        }
    };
    let mut narrow = |keep: &dyn Fn(UserId) -> bool| {
        let base: Vec<UserId> = chosen
            .take()
            .unwrap_or_else(|| all.iter().map(|u| u.id).collect());
        chosen = Some(base.into_iter().filter(|u| keep(*u)).collect());
    };
    if let Some(t) = team {
        let lead: UserId = parse_path_id(t, "manager")?;
        let members: BTreeSet<UserId> = all
            .iter()
            .filter(|u| u.id == lead || u.manager == Some(lead))
            .map(|u| u.id)
            .collect();
        narrow(&|u| members.contains(&u));
    }
    if let Some(s) = site {
        let (p, site_id) = s
            .split_once(':')
            .ok_or_else(|| invalid("invalid_site", "A site is written PROJECT_ID:SITE_ID."))?;
        let at: BTreeSet<String> = state
            .store
            .assignments(tenant, None)
            .await?
            .into_iter()
            .filter(|a| a.project == p && a.site == site_id)
            .map(|a| a.user)
            .collect();
        narrow(&|u| at.contains(&u.as_string()));
    }
    if let Some(list) = users {
        let ids = list
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| parse_path_id::<UserId>(s.trim(), "user"))
            .collect::<ApiResult<BTreeSet<UserId>>>()?;
        narrow(&|u| ids.contains(&u));
    }
    Ok(chosen)
}

/// `GET /v1/reports/attendance?from=&to=&format=json|csv|xlsx&sheet=&team=&site=&users=`.
pub async fn attendance_report(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<ReportQuery>,
) -> ApiResult<Response> {
    let (from, to) =
        report::period(&q.from, &q.to).map_err(|e| invalid("invalid_period", e.to_string()))?;
    let people = report_people(
        &state,
        &auth,
        q.team.as_deref(),
        q.site.as_deref(),
        q.users.as_deref(),
    )
    .await?;
    let (from_ms, to_ms) = report::load_range_ms(from, to);
    let inputs = state
        .store
        .attendance_inputs(auth.caller.tenant, people.as_deref(), from_ms, to_ms)
        .await?;
    let format = q.format.clone().unwrap_or_else(|| "json".into());
    crate::audit::viewed_report(&state, &auth.caller, &q, &inputs.people).await;
    let sheet = q.sheet.unwrap_or(Sheet::Summary);
    let name = format!("attendance-{from}-to-{to}");
    // Building and writing a big report is CPU work: off the async runtime.
    tokio::task::spawn_blocking(move || {
        let rep = report::build(&inputs, from, to);
        match format.as_str() {
            "json" => Ok(Json(rep).into_response()),
            "csv" => {
                let suffix = if sheet == Sheet::Days { "-days" } else { "" };
                Ok((
                    [
                        (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                        (
                            header::CONTENT_DISPOSITION,
                            format!("attachment; filename=\"{name}{suffix}.csv\""),
                        ),
                    ],
                    report::to_csv(&rep, sheet),
                )
                    .into_response())
            }
            "xlsx" => {
                let bytes = report::to_xlsx(&rep, now_ms()).map_err(|e| {
                    tracing::error!(error = %e, "xlsx report failed");
                    ApiError::internal()
                })?;
                Ok((
                    [
                        (
                            header::CONTENT_TYPE,
                            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                                .to_owned(),
                        ),
                        (
                            header::CONTENT_DISPOSITION,
                            format!("attachment; filename=\"{name}.xlsx\""),
                        ),
                    ],
                    bytes,
                )
                    .into_response())
            }
            other => Err(invalid(
                "invalid_format",
                format!("'{other}' is not a report format; use json, csv or xlsx."),
            )),
        }
    })
    .await
    .map_err(|_| ApiError::internal())?
}
