//! Site diaries over HTTP, for site managers and the office: the days of a project, one day as
//! people read it (the crew pre-filled from that day's punches at the site, the photos taken
//! there that day), sign-off and reopening, and a printable export of a day or a range.
//!
//! Phones write the diary itself (see `sync::record::diary`). Sign-off and reopening made here
//! are changes to the diary's record through the push path (see `field::edit_record`), so the
//! same lock rule holds and every phone of the project receives them at its next sync.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiQuery as Query, Auth};
use super::field::edit_record;
use super::parse_path_id;
use crate::app::AppState;
use crate::store::{DiaryFilter, PhotoFilter, PhotoRow, SitePunch, now_ms};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::{NaiveDate, TimeZone};
use fieldsync_sync::record::diary::{DIARY_LISTS, DiaryAction, SignEvent};
use fieldsync_sync::record::project::Site;
use fieldsync_sync::{Caller, Diary, DocId, GeoPoint, Project, Record, UserId, trust};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// Most days one export holds.
pub const MAX_EXPORT_DAYS: usize = 62;

/// Someone on site, as the diary shows them: the diary's own crew list merged with who punched
/// in at the site that day.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CrewLine {
    pub key: String,
    pub user_id: Option<String>,
    pub name: String,
    pub present: bool,
    /// The diary's hours if someone entered them, else the punched time.
    pub hours: Option<f64>,
    /// `punches` (from attendance only), `diary` (entered by hand) or `punches+diary`.
    pub source: &'static str,
    pub first_in_ms: Option<i64>,
    pub last_out_ms: Option<i64>,
    pub punched_hours: Option<f64>,
    /// Punched in and not out yet.
    pub on_site: bool,
    pub note: String,
}

/// A diary day as people read it.
#[derive(Clone, Debug, Serialize)]
pub struct DiaryView {
    pub id: String,
    pub project_id: String,
    pub project_name: String,
    pub site_id: String,
    pub site_name: String,
    pub timezone: String,
    pub day: String,
    pub locked: bool,
    pub weather: String,
    pub temperature_c: Option<f64>,
    pub work: String,
    pub crew: Vec<CrewLine>,
    pub materials: Vec<Value>,
    pub equipment: Vec<Value>,
    pub delays: Vec<Value>,
    pub incidents: Vec<Value>,
    pub visitors: Vec<Value>,
    pub signoffs: Vec<Value>,
    pub photos: Vec<PhotoRow>,
}

fn bad_request(code: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

fn parse_day(value: &str, field: &str) -> ApiResult<NaiveDate> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| {
        bad_request(
            "invalid_date",
            format!("'{value}' in '{field}' is not a date (YYYY-MM-DD)."),
        )
    })
}

/// The UTC bounds of `day` in the time zone `tz` (a day is 23 or 25 hours across DST changes).
pub fn day_bounds_ms(day: &str, tz: &str) -> Option<(i64, i64)> {
    let tz: chrono_tz::Tz = tz.parse().ok()?;
    let d = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    let start = |d: NaiveDate| {
        tz.from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
            .earliest()
            .map(|t| t.timestamp_millis())
    };
    Some((start(d)?, start(d.succ_opt()?)?))
}

/// Who was on site from the punches: first in, last out, and the time between each in and its
/// out.
pub fn crew_from_punches(punches: &[SitePunch]) -> BTreeMap<String, (i64, Option<i64>, i64, bool)> {
    // user -> (first in, last out, worked ms, still in)
    let mut out: BTreeMap<String, (i64, Option<i64>, i64, bool)> = BTreeMap::new();
    let mut open: HashMap<&str, i64> = HashMap::new();
    for p in punches {
        let e = out
            .entry(p.user_id.clone())
            .or_insert((p.at_ms, None, 0, false));
        match p.direction.as_str() {
            "in" => {
                e.0 = e.0.min(p.at_ms);
                open.entry(p.user_id.as_str()).or_insert(p.at_ms);
                e.3 = true;
            }
            _ => {
                e.1 = Some(e.1.map_or(p.at_ms, |t: i64| t.max(p.at_ms)));
                if let Some(from) = open.remove(p.user_id.as_str()) {
                    e.2 += p.at_ms - from;
                }
                e.3 = false;
            }
        }
    }
    out
}

fn round2(h: f64) -> f64 {
    (h * 100.0).round() / 100.0
}

/// The diary's crew merged with the punches.
pub fn merge_crew(
    d: &Diary,
    punches: &[SitePunch],
    names: &HashMap<String, String>,
) -> Vec<CrewLine> {
    let punched = crew_from_punches(punches);
    let mut lines = Vec::new();
    for (user, (first_in, last_out, worked, on_site)) in &punched {
        let entry = d.crew.iter().find(|c| c.key == *user);
        let punched_hours = (*worked > 0).then(|| round2(*worked as f64 / 3_600_000.0));
        lines.push(CrewLine {
            key: user.clone(),
            user_id: Some(user.clone()),
            name: entry
                .map(|c| c.name.clone())
                .or_else(|| names.get(user).cloned())
                .unwrap_or_else(|| user.clone()),
            present: entry.is_none_or(|c| c.present),
            hours: entry.and_then(|c| c.hours).or(punched_hours),
            source: if entry.is_some() {
                "punches+diary"
            } else {
                "punches"
            },
            first_in_ms: Some(*first_in),
            last_out_ms: *last_out,
            punched_hours,
            on_site: *on_site,
            note: entry.map(|c| c.note.clone()).unwrap_or_default(),
        });
    }
    for c in d.crew.iter().filter(|c| !punched.contains_key(&c.key)) {
        lines.push(CrewLine {
            key: c.key.clone(),
            user_id: c.user.map(|u| u.as_string()),
            name: c.name.clone(),
            present: c.present,
            hours: c.hours,
            source: "diary",
            first_in_ms: None,
            last_out_ms: None,
            punched_hours: None,
            on_site: false,
            note: c.note.clone(),
        });
    }
    lines.sort_by(|a, b| (!a.present, &a.name).cmp(&(!b.present, &b.name)));
    lines
}

/// The diary record `id`, if `caller` may read it.
async fn load_diary(state: &AppState, caller: &Caller, id: DocId) -> ApiResult<Diary> {
    let (_, bytes) = state
        .store
        .readable_doc(caller, id)
        .await?
        .ok_or_else(|| ApiError::not_found("site diary"))?;
    let doc = automerge::Automerge::load(&bytes).map_err(|_| ApiError::internal())?;
    match Record::read(&doc) {
        Ok((Record::Diary(d), _)) => Ok(d),
        _ => Err(ApiError::not_found("site diary")),
    }
}

async fn load_project(state: &AppState, caller: &Caller, id: DocId) -> ApiResult<Project> {
    let (_, bytes) = state
        .store
        .readable_doc(caller, id)
        .await?
        .ok_or_else(|| ApiError::not_found("project"))?;
    let doc = automerge::Automerge::load(&bytes).map_err(|_| ApiError::internal())?;
    match Record::read(&doc) {
        Ok((Record::Project(p), _)) => Ok(p),
        _ => Err(ApiError::not_found("project")),
    }
}

/// Whether a photo of the project without a site of its own was taken at `site`: its fix
/// inside the site's area (with the GPS allowance photos get).
fn taken_at(p: &PhotoRow, site: &Site) -> bool {
    let (Some(lat), Some(lon), Some(fence)) = (p.lat, p.lon, site.geofence.as_ref()) else {
        return false;
    };
    trust::distance_to_fence_m(GeoPoint { lat, lon }, fence)
        <= crate::photo_media::GPS_MISMATCH_M + p.accuracy_m.unwrap_or(0.0)
}

/// Builds the view of one day.
async fn view(
    state: &AppState,
    caller: &Caller,
    d: Diary,
    project: &Project,
    names: &HashMap<String, String>,
) -> ApiResult<DiaryView> {
    let site = project.sites.iter().find(|s| s.id == d.site);
    let tz = site.map_or("UTC", |s| s.timezone.as_str());
    let (from, to) = day_bounds_ms(&d.day, tz).ok_or_else(ApiError::internal)?;
    let punches = state
        .store
        .site_punches(caller.tenant, &d.project.as_string(), &d.site, from, to)
        .await?;
    let crew = merge_crew(&d, &punches, names);
    // The day's photos: those attached to this site and day, and those of the project taken at
    // the site that day.
    let pid = d.project.as_string();
    let mut photos = state
        .store
        .list_photos(
            caller,
            &PhotoFilter {
                project: Some(pid.clone()),
                site: Some(d.site.clone()),
                day: Some(d.day.clone()),
                ..Default::default()
            },
        )
        .await?;
    let same_time = state
        .store
        .list_photos(
            caller,
            &PhotoFilter {
                project: Some(pid),
                from: Some(from),
                to: Some(to),
                ..Default::default()
            },
        )
        .await?;
    for p in same_time {
        let here = match (&p.site_id, site) {
            (Some(s), _) => *s == d.site,
            (None, Some(site)) => taken_at(&p, site),
            (None, None) => false,
        };
        if here && !photos.iter().any(|q| q.id == p.id) {
            photos.push(p);
        }
    }
    photos.sort_by_key(|p| p.captured_at);
    // The day shows when people punched in and out, and where photos were taken.
    let subjects: Vec<&str> = punches
        .iter()
        .map(|p| p.user_id.as_str())
        .chain(photos.iter().map(|p| p.author_id.as_str()))
        .collect();
    crate::audit::log_access(
        state,
        caller,
        "diary_day",
        &format!("record:{}", d.id),
        subjects,
        json!({ "project": d.project, "site": d.site, "day": d.day }),
    )
    .await;
    let who = |u: UserId| {
        names
            .get(&u.as_string())
            .cloned()
            .unwrap_or_else(|| u.as_string())
    };
    let items = |name: &str| -> Vec<Value> {
        d.list(name)
            .map(|l| {
                l.iter()
                    .map(|i| {
                        let mut v = serde_json::to_value(i).unwrap_or(Value::Null);
                        v["by_name"] = Value::String(who(i.by));
                        v
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(DiaryView {
        id: d.id.as_string(),
        project_id: d.project.as_string(),
        project_name: project.name.clone(),
        site_id: d.site.clone(),
        site_name: site.map_or_else(|| d.site.clone(), |s| s.name.clone()),
        timezone: tz.to_owned(),
        day: d.day.clone(),
        locked: d.is_locked(),
        weather: d.weather.clone(),
        temperature_c: d.temperature_c,
        work: d.work.clone(),
        crew,
        materials: items("materials"),
        equipment: items("equipment"),
        delays: items("delays"),
        incidents: items("incidents"),
        visitors: items("visitors"),
        signoffs: d
            .signoffs
            .iter()
            .map(|e| {
                let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
                v["by_name"] = Value::String(who(e.by));
                v
            })
            .collect(),
        photos,
    })
}

async fn user_names(state: &AppState, caller: &Caller) -> ApiResult<HashMap<String, String>> {
    Ok(state
        .store
        .list_users(caller.tenant)
        .await?
        .into_iter()
        .map(|u| (u.id.as_string(), u.email))
        .collect())
}

fn check_filter(filter: &DiaryFilter) -> ApiResult<()> {
    if let Some(f) = &filter.from {
        parse_day(f, "from")?;
    }
    if let Some(t) = &filter.to {
        parse_day(t, "to")?;
    }
    if let Some(p) = &filter.project {
        parse_path_id::<DocId>(p, "project")?;
    }
    Ok(())
}

/// `GET /v1/diaries?project=&site=&from=&to=&locked=`: the days, with what each holds.
pub async fn list_diaries(
    State(state): State<AppState>,
    auth: Auth,
    Query(filter): Query<DiaryFilter>,
) -> ApiResult<Json<Vec<Value>>> {
    check_filter(&filter)?;
    let rows = state.store.list_diaries(&auth.caller, &filter).await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| {
                let d = &r.record;
                let mut counts = serde_json::Map::new();
                counts.insert("crew".into(), json!(d.crew.len()));
                for name in DIARY_LISTS {
                    counts.insert(name.into(), json!(d.list(name).map_or(0, Vec::len)));
                }
                json!({
                    "id": r.id,
                    "project_id": r.project_id,
                    "site_id": r.site_id,
                    "day": r.day,
                    "locked": r.locked,
                    "signed_by": r.signed_by,
                    "signed_at": r.signed_at,
                    "weather": d.weather,
                    "work_excerpt": d.work.chars().take(200).collect::<String>(),
                    "counts": counts,
                })
            })
            .collect(),
    ))
}

/// `GET /v1/diaries/{id}`: one day as people read it.
pub async fn get_diary(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<DiaryView>> {
    let id: DocId = parse_path_id(&id, "site diary")?;
    let d = load_diary(&state, &auth.caller, id).await?;
    let project = load_project(&state, &auth.caller, d.project).await?;
    let names = user_names(&state, &auth.caller).await?;
    Ok(Json(view(&state, &auth.caller, d, &project, &names).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignBody {
    #[serde(default)]
    pub note: String,
}

async fn sign(
    state: &AppState,
    auth: &Auth,
    id: &str,
    action: DiaryAction,
    note: String,
) -> ApiResult<Json<DiaryView>> {
    let id: DocId = parse_path_id(id, "site diary")?;
    let by = auth.caller.user;
    let record = edit_record(state, auth, id, "site diary", move |r| match r {
        Record::Diary(d) => {
            let seq = d.next_seq();
            d.signoffs.push(SignEvent {
                id: uuid::Uuid::now_v7().to_string(),
                seq,
                action,
                by,
                at_ms: now_ms(),
                note,
            });
            Ok(())
        }
        _ => Err(ApiError::not_found("site diary")),
    })
    .await?;
    let Record::Diary(d) = record else {
        return Err(ApiError::internal());
    };
    let project = load_project(state, &auth.caller, d.project).await?;
    let names = user_names(state, &auth.caller).await?;
    Ok(Json(view(state, &auth.caller, d, &project, &names).await?))
}

/// `POST /v1/diaries/{id}/sign-off` `{"note": "…"}`: site managers and admins.
pub async fn sign_off(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SignBody>,
) -> ApiResult<Json<DiaryView>> {
    sign(&state, &auth, &id, DiaryAction::SignOff, body.note).await
}

/// `POST /v1/diaries/{id}/reopen` `{"note": "…"}`: site managers and admins.
pub async fn reopen(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SignBody>,
) -> ApiResult<Json<DiaryView>> {
    sign(&state, &auth, &id, DiaryAction::Reopen, body.note).await
}

#[derive(Debug, Deserialize)]
pub struct ExportQuery {
    pub project: String,
    pub site: Option<String>,
    pub from: String,
    pub to: Option<String>,
    /// `html` (the default) or `json`.
    pub format: Option<String>,
    /// Whether to embed the photos' thumbnails (default yes).
    pub photos: Option<bool>,
}

/// `GET /v1/diaries/export?project=&site=&from=&to=&format=html`: a day or a range of days as
/// one document fit to print (each day on its own page, photos embedded), or as JSON.
pub async fn export(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    let project_id: DocId = parse_path_id(&q.project, "project")?;
    let from = parse_day(&q.from, "from")?;
    let to = match &q.to {
        Some(t) => parse_day(t, "to")?,
        None => from,
    };
    if to < from {
        return Err(bad_request("invalid_period", "'to' is before 'from'."));
    }
    if (to - from).num_days() >= MAX_EXPORT_DAYS as i64 {
        return Err(bad_request(
            "period_too_long",
            format!("One export holds at most {MAX_EXPORT_DAYS} days; export the range in parts."),
        ));
    }
    let format = q.format.as_deref().unwrap_or("html");
    if !matches!(format, "html" | "json") {
        return Err(bad_request(
            "invalid_format",
            format!("'{format}' is not an export format; use html or json."),
        ));
    }
    let project = load_project(&state, &auth.caller, project_id).await?;
    let rows = state
        .store
        .list_diaries(
            &auth.caller,
            &DiaryFilter {
                project: Some(q.project.clone()),
                site: q.site.clone(),
                from: Some(from.to_string()),
                to: Some(to.to_string()),
                locked: None,
            },
        )
        .await?;
    let names = user_names(&state, &auth.caller).await?;
    let mut views = Vec::with_capacity(rows.len());
    for r in rows {
        views.push(view(&state, &auth.caller, r.record, &project, &names).await?);
    }
    if format == "json" {
        return Ok(Json(views).into_response());
    }
    let mut thumbs: HashMap<String, String> = HashMap::new();
    if q.photos.unwrap_or(true) {
        for p in views.iter().flat_map(|v| &v.photos) {
            let Ok(hash) = p.sha256.parse::<crate::blobs::BlobHash>() else {
                continue;
            };
            match state
                .blobs
                .read_derived(auth.caller.tenant, &hash, 320)
                .await
            {
                Ok(Some(jpeg)) => {
                    thumbs.insert(
                        p.id.clone(),
                        base64::engine::general_purpose::STANDARD.encode(jpeg),
                    );
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "a diary export could not read a thumbnail"),
            }
        }
    }
    let title = format!(
        "Site diary: {} {}{}",
        project.name,
        from,
        if to != from {
            format!(" to {to}")
        } else {
            String::new()
        }
    );
    let html = render_html(&title, &views, &thumbs);
    let filename = format!("site-diary-{from}-{to}.html");
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/html; charset=utf-8".to_owned(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{filename}\""),
            ),
        ],
        html,
    )
        .into_response())
}

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn local_time(ms: i64, tz: &str) -> String {
    let Ok(tz) = tz.parse::<chrono_tz::Tz>() else {
        return String::new();
    };
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&tz).format("%H:%M").to_string())
        .unwrap_or_default()
}

fn local_stamp(ms: i64, tz: &str) -> String {
    let Ok(tz) = tz.parse::<chrono_tz::Tz>() else {
        return String::new();
    };
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string())
        .unwrap_or_default()
}

/// The printable document: one page per day.
pub fn render_html(title: &str, days: &[DiaryView], thumbs: &HashMap<String, String>) -> String {
    use std::fmt::Write;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>\n\
         body{{font-family:system-ui,sans-serif;font-size:11pt;color:#111;margin:0 auto;max-width:190mm}}\n\
         h1{{font-size:16pt;margin:0 0 2mm}} h2{{font-size:12pt;margin:5mm 0 1mm;border-bottom:1px solid #999}}\n\
         table{{border-collapse:collapse;width:100%}} td,th{{border:1px solid #bbb;padding:1mm 2mm;text-align:left;vertical-align:top}}\n\
         .meta{{color:#444}} .locked{{color:#075;font-weight:bold}} .open{{color:#a50;font-weight:bold}}\n\
         .work{{white-space:pre-wrap}} .photos{{display:flex;flex-wrap:wrap;gap:3mm}} figure{{margin:0;width:55mm}}\n\
         figure img{{max-width:55mm;max-height:55mm}} figcaption{{font-size:8pt}}\n\
         section.day{{page-break-after:always;break-after:page}} section.day:last-child{{page-break-after:auto;break-after:auto}}\n\
         @page{{size:A4;margin:15mm}} @media print{{a{{color:inherit;text-decoration:none}}}}\n\
         </style></head><body>\n",
        esc(title)
    );
    if days.is_empty() {
        let _ = write!(
            h,
            "<h1>{}</h1><p>No diary was kept for these days.</p>",
            esc(title)
        );
    }
    for d in days {
        let tz = d.timezone.as_str();
        let _ = write!(
            h,
            "<section class=\"day\"><h1>{} · {} · {}</h1>\n<p class=\"meta\">Site diary, {} ({})",
            esc(&d.project_name),
            esc(&d.site_name),
            esc(&d.day),
            esc(&d.day),
            esc(tz)
        );
        match d.signoffs.last() {
            Some(e) if d.locked => {
                let _ = write!(
                    h,
                    " · <span class=\"locked\">Signed off by {} at {}</span>",
                    esc(e["by_name"].as_str().unwrap_or("")),
                    esc(&local_stamp(e["at_ms"].as_i64().unwrap_or(0), tz))
                );
            }
            _ => {
                let _ = write!(h, " · <span class=\"open\">Not signed off</span>");
            }
        }
        let _ = write!(h, "</p>\n<h2>Weather</h2><p>{}", esc(&d.weather));
        if let Some(t) = d.temperature_c {
            let _ = write!(h, ", {t} °C");
        }
        let _ = write!(h, "</p>\n<h2>Crew on site</h2>");
        if d.crew.is_empty() {
            h.push_str("<p>Nobody recorded.</p>");
        } else {
            h.push_str("<table><tr><th>Name</th><th>In</th><th>Out</th><th>Hours</th><th>Source</th><th>Note</th></tr>");
            for c in &d.crew {
                let _ = write!(
                    h,
                    "<tr><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&c.name),
                    if c.present { "" } else { " (not present)" },
                    c.first_in_ms.map(|t| local_time(t, tz)).unwrap_or_default(),
                    c.last_out_ms
                        .map(|t| local_time(t, tz))
                        .unwrap_or_else(|| if c.on_site {
                            "on site".into()
                        } else {
                            String::new()
                        }),
                    c.hours.map(|x| format!("{x:.2}")).unwrap_or_default(),
                    c.source,
                    esc(&c.note)
                );
            }
            h.push_str("</table>");
        }
        let _ = write!(
            h,
            "\n<h2>Work performed</h2><p class=\"work\">{}</p>",
            esc(&d.work)
        );
        for (name, title, items) in [
            ("materials", "Materials", &d.materials),
            ("equipment", "Equipment", &d.equipment),
            ("delays", "Delays and issues", &d.delays),
            ("incidents", "Safety incidents", &d.incidents),
            ("visitors", "Visitors", &d.visitors),
        ] {
            let _ = write!(h, "\n<h2>{title}</h2>");
            if items.is_empty() {
                h.push_str("<p>None recorded.</p>");
                continue;
            }
            h.push_str("<table>");
            for i in items {
                let qty = match (i["quantity"].as_f64(), i["unit"].as_str()) {
                    (Some(q), Some(u)) => format!("{q} {u}"),
                    (Some(q), None) => q.to_string(),
                    _ => String::new(),
                };
                let _ = write!(
                    h,
                    "<tr><td>{}{}</td><td>{}</td><td>{}</td><td class=\"meta\">{}</td></tr>",
                    esc(i["text"].as_str().unwrap_or("")),
                    if name == "incidents" {
                        format!(
                            " <b>[{}]</b>",
                            esc(&i["severity"].as_str().unwrap_or("").replace('_', " "))
                        )
                    } else {
                        String::new()
                    },
                    esc(&qty),
                    esc(i["note"].as_str().unwrap_or("")),
                    esc(i["by_name"].as_str().unwrap_or(""))
                );
            }
            h.push_str("</table>");
        }
        let _ = write!(h, "\n<h2>Photos ({})</h2>", d.photos.len());
        if d.photos.is_empty() {
            h.push_str("<p>No photos that day.</p>");
        } else {
            h.push_str("<div class=\"photos\">");
            for p in &d.photos {
                let img = match thumbs.get(&p.id) {
                    Some(b64) => format!("<img alt=\"\" src=\"data:image/jpeg;base64,{b64}\">"),
                    None => "<p class=\"meta\">(not uploaded yet)</p>".into(),
                };
                let _ = write!(
                    h,
                    "<figure>{img}<figcaption>{} · {}{}</figcaption></figure>",
                    esc(&local_time(p.captured_at, tz)),
                    esc(&p.caption),
                    p.lat
                        .zip(p.lon)
                        .map(|(a, b)| format!(" · {a:.5}, {b:.5}"))
                        .unwrap_or_default()
                );
            }
            h.push_str("</div>");
        }
        if !d.signoffs.is_empty() {
            h.push_str("\n<h2>Sign-off log</h2><table>");
            for e in &d.signoffs {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&local_stamp(e["at_ms"].as_i64().unwrap_or(0), tz)),
                    esc(&e["action"].as_str().unwrap_or("").replace('_', " ")),
                    esc(e["by_name"].as_str().unwrap_or("")),
                    esc(e["note"].as_str().unwrap_or(""))
                );
            }
            h.push_str("</table>");
        }
        h.push_str("</section>\n");
    }
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn punch(user: &str, dir: &str, at_ms: i64) -> SitePunch {
        SitePunch {
            user_id: user.into(),
            direction: dir.into(),
            at_ms,
            trust: "verified".into(),
        }
    }

    const H: i64 = 3_600_000;

    #[test]
    fn punches_give_first_in_last_out_and_the_time_between() {
        let p = [
            punch("a", "in", 8 * H),
            punch("a", "out", 12 * H),
            punch("a", "in", 13 * H),
            punch("a", "out", 17 * H + H / 2),
            punch("b", "in", 7 * H),
        ];
        let c = crew_from_punches(&p);
        assert_eq!(c["a"], (8 * H, Some(17 * H + H / 2), 8 * H + H / 2, false));
        assert_eq!(c["b"], (7 * H, None, 0, true));
    }

    #[test]
    fn the_diary_crew_overrides_and_adds_to_the_punches() {
        let project = DocId::new();
        let mut d = Diary::new(project, "depot", "2026-11-18");
        let (a, b) = (UserId::new(), UserId::new());
        d.crew.push(fieldsync_sync::CrewEntry {
            key: a.as_string(),
            user: Some(a),
            name: "Ana".into(),
            present: false,
            hours: None,
            note: "Sent to the yard".into(),
            by: b,
        });
        d.crew.push(fieldsync_sync::CrewEntry {
            key: "mueller-1".into(),
            user: None,
            name: "Müller GmbH (3)".into(),
            present: true,
            hours: Some(6.0),
            note: String::new(),
            by: b,
        });
        let p = [
            punch(&a.as_string(), "in", 8 * H),
            punch(&a.as_string(), "out", 9 * H),
            punch(&b.as_string(), "in", 8 * H),
            punch(&b.as_string(), "out", 16 * H),
        ];
        let names = HashMap::from([(b.as_string(), "ben@acme.test".to_owned())]);
        let lines = merge_crew(&d, &p, &names);
        let by_name: HashMap<&str, &CrewLine> =
            lines.iter().map(|l| (l.name.as_str(), l)).collect();
        let ben = by_name["ben@acme.test"];
        assert_eq!(
            (ben.present, ben.hours, ben.source),
            (true, Some(8.0), "punches")
        );
        let ana = by_name["Ana"];
        assert_eq!(
            (ana.present, ana.hours, ana.source, ana.punched_hours),
            (false, Some(1.0), "punches+diary", Some(1.0))
        );
        let sub = by_name["Müller GmbH (3)"];
        assert_eq!((sub.hours, sub.source), (Some(6.0), "diary"));
        // Those not present come last.
        assert_eq!(lines.last().map(|l| l.name.as_str()), Some("Ana"));
    }

    #[test]
    fn a_day_is_bounded_in_the_sites_zone() {
        // 25 Oct 2026 in Berlin has 25 hours.
        let (a, b) = day_bounds_ms("2026-10-25", "Europe/Berlin").expect("bounds");
        assert_eq!(b - a, 25 * H);
        let (a, _) = day_bounds_ms("2026-11-18", "Asia/Shanghai").expect("bounds");
        assert_eq!(a, 1_794_931_200_000); // 2026-11-17 16:00 UTC
        assert!(day_bounds_ms("2026-02-30", "UTC").is_none());
        assert!(day_bounds_ms("2026-11-18", "Mars/Olympus").is_none());
    }

    #[test]
    fn the_printable_export_escapes_what_people_wrote() {
        let v = DiaryView {
            id: "x".into(),
            project_id: "p".into(),
            project_name: "Depot <East>".into(),
            site_id: "depot".into(),
            site_name: "Depot".into(),
            timezone: "Europe/Berlin".into(),
            day: "2026-11-18".into(),
            locked: false,
            weather: "Rain & wind".into(),
            temperature_c: Some(4.0),
            work: "<script>alert(1)</script>".into(),
            crew: Vec::new(),
            materials: Vec::new(),
            equipment: Vec::new(),
            delays: Vec::new(),
            incidents: Vec::new(),
            visitors: Vec::new(),
            signoffs: Vec::new(),
            photos: Vec::new(),
        };
        let h = render_html("Site diary", &[v], &HashMap::new());
        assert!(!h.contains("<script>"), "{h}");
        assert!(h.contains("&lt;script&gt;"));
        assert!(h.contains("Depot &lt;East&gt;") && h.contains("Rain &amp; wind, 4 °C"));
        assert!(h.contains("Not signed off"));
    }
}
