//! `GET /openapi.json`: the HTTP API described for people and generators. Hand-written, kept
//! next to the router; the sync payloads are specified in `sync/PROTOCOL.md`.

use axum::Json;
use serde_json::{Value, json};

fn op(summary: &str, auth: bool, body: Option<&str>, ok: &str) -> Value {
    let mut o = json!({
        "summary": summary,
        "responses": {
            "200": { "description": ok },
            "4XX": { "description": "Client error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
        }
    });
    if auth {
        o["security"] = json!([{ "bearer": [] }]);
    }
    if let Some(b) = body {
        o["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{b}") } } } });
    }
    o
}

pub async fn openapi() -> Json<Value> {
    let obj = |props: Value, required: Value| json!({ "type": "object", "properties": props, "required": required });
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": { "title": "fieldsync", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Offline-first CRDT sync for field work. Errors are {\"error\": code, \"message\": sentence}. Sync messages: see sync/PROTOCOL.md." },
        "paths": {
            "/healthz": { "get": op("Liveness and backend", false, None, "Server is up") },
            "/metrics": { "get": op("Request and byte counters since start (no tenant data)", false, None, "{requests, bytes_in, bytes_out}") },
            "/openapi.json": { "get": op("This document", false, None, "OpenAPI document") },
            "/v1/auth/login": { "post": op("Password login for a device; returns tokens (429 too_many_attempts after 5 wrong passwords in 15 minutes)", false, Some("LoginRequest"), "TokenResponse") },
            "/v1/auth/refresh": { "post": op("Exchange a refresh token (single use) for a new pair", false, Some("RefreshRequest"), "TokenResponse") },
            "/v1/me": { "get": op("The caller", true, None, "User, tenant, device and role") },
            "/v1/sync/push": { "post": op("Push Automerge changes for many documents; idempotent per batch_id", true, Some("PushRequest"), "PushResponse: one result per document") },
            "/v1/sync/pull": { "post": op("Pull a page of changes since a cursor", true, Some("PullRequest"), "PullResponse") },
            "/v1/sync/repair": { "post": op("Compare document heads and list what differs", true, Some("RepairRequest"), "RepairResponse") },
            "/v1/sync/repair/sync": { "post": op("One round of Automerge sync for differing documents", true, Some("RepairSyncRequest"), "RepairSyncResponse") },
            "/v1/sync/live": { "get": op("WebSocket: server notices (hello, changed, revoked)", true, None, "101 Switching Protocols") },
            "/v1/customers": { "get": op("Customers the caller may read (projection)", true, None, "List of customers") },
            "/v1/customers/{id}": { "get": op("One customer with contacts", true, None, "Customer") },
            "/v1/projects": { "get": op("Projects the caller may read", true, None, "List of projects") },
            "/v1/projects/{id}": { "get": op("One project with sites, members and milestones", true, None, "Project") },
            "/v1/records/{id}": { "get": op("The merged record with conflicts and heads", true, None, "Record") },
            "/v1/admin/users": {
                "get": op("Users of the tenant (admin)", true, None, "Users"),
                "post": op("Create a user (admin)", true, Some("NewUser"), "Created user")
            },
            "/v1/admin/users/{id}/disable": { "post": op("Disable a user and revoke their devices (admin)", true, None, "204") },
            "/v1/admin/devices": { "get": op("Devices of the tenant (admin)", true, None, "Devices") },
            "/v1/admin/devices/{id}/revoke": { "post": op("Revoke a device (admin)", true, None, "204") }
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } },
            "schemas": {
                "Error": obj(json!({ "error": {"type": "string"}, "message": {"type": "string"} }), json!(["error", "message"])),
                "LoginRequest": obj(json!({ "tenant": {"type": "string"}, "email": {"type": "string"}, "password": {"type": "string"},
                                            "device_id": {"type": "string", "format": "uuid"}, "device_name": {"type": "string"} }), json!(["tenant", "email", "password"])),
                "RefreshRequest": obj(json!({ "refresh_token": {"type": "string"} }), json!(["refresh_token"])),
                "NewUser": obj(json!({ "email": {"type": "string"}, "password": {"type": "string"},
                                       "role": {"enum": ["field_rep", "manager", "site_manager", "hr", "admin"]}, "manager_email": {"type": "string"} }), json!(["email", "password", "role"])),
                "PushRequest": obj(json!({ "v": {"const": 1}, "batch_id": {"type": "string", "format": "uuid"},
                    "docs": {"type": "array", "items": obj(json!({ "doc_id": {"type": "string", "format": "uuid"}, "kind": {"type": "string"},
                        "changes": {"type": "array", "items": {"type": "string", "contentEncoding": "base64"}} }), json!(["doc_id", "kind", "changes"]))} }), json!(["v", "batch_id", "docs"])),
                "PullRequest": obj(json!({ "v": {"const": 1}, "cursor": {"type": ["string", "null"]}, "max_bytes": {"type": "integer"} }), json!(["v"])),
                "RepairRequest": obj(json!({ "v": {"const": 1}, "docs": {"type": "array", "items": obj(json!({ "doc_id": {"type": "string"}, "heads": {"type": "array", "items": {"type": "string"}} }), json!(["doc_id", "heads"]))} }), json!(["v", "docs"])),
                "NewReview": obj(json!({ "decision": {"enum": ["approved", "comment"]}, "comment": {"type": "string"} }), json!(["decision"])),
                "PhotoReview": obj(json!({ "decision": {"enum": ["approved", "rejected", "retake"]}, "reason": {"type": "string"} }), json!(["decision"])),
                "PhotoComment": obj(json!({ "text": {"type": "string"} }), json!(["text"])),
                "MakeupDecision": obj(json!({ "approve": {"type": "boolean"}, "comment": {"type": "string"} }), json!(["approve"])),
                "Policy": obj(json!({ "default_radius_m": {"type": "number", "minimum": 100, "maximum": 3000}, "max_accuracy_m": {"type": "number"},
                    "max_fix_age_ms": {"type": "integer"}, "max_clock_skew_ms": {"type": "integer"}, "max_speed_kmh": {"type": "number"}, "visit_auto_close_ms": {"type": "integer"} }),
                    json!(["default_radius_m", "max_accuracy_m", "max_fix_age_ms", "max_clock_skew_ms", "max_speed_kmh", "visit_auto_close_ms"])),
                "NewShift": obj(json!({ "name": {"type": "string"}, "start": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"}, "end": {"type": "string"},
                    "grace_late_min": {"type": "integer"}, "grace_early_min": {"type": "integer"}, "serious_late_min": {"type": "integer"}, "absent_late_min": {"type": "integer"},
                    "window_before_min": {"type": "integer"}, "window_after_min": {"type": "integer"}, "break_min": {"type": "integer"}, "required_min": {"type": "integer"} }), json!(["name", "start", "end"])),
                "NewCalendar": obj(json!({ "name": {"type": "string"}, "workdays": {"type": "array", "items": {"enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}},
                    "holidays": {"type": "array", "items": obj(json!({ "date": {"type": "string", "format": "date"}, "name": {"type": "string"} }), json!(["date", "name"]))},
                    "extra_workdays": {"type": "array", "items": {"type": "string", "format": "date"}} }), json!(["name", "workdays"])),
                "Assignment": obj(json!({ "user": {"type": "string", "format": "uuid"}, "project": {"type": "string", "format": "uuid"}, "site": {"type": "string"},
                    "shift": {"type": "string"}, "calendar": {"type": "string"} }), json!(["user", "project", "site"])),
                "Leave": obj(json!({ "user": {"type": "string", "format": "uuid"}, "from": {"type": "string", "format": "date"}, "to": {"type": "string", "format": "date"}, "kind": {"type": ["string", "null"]} }), json!(["user", "from", "to"])),
                "RepairSyncRequest": obj(json!({ "v": {"const": 1}, "docs": {"type": "array", "items": obj(json!({ "doc_id": {"type": "string"}, "message": {"type": ["string", "null"], "contentEncoding": "base64"} }), json!(["doc_id"]))} }), json!(["v", "docs"]))
            }
        }
    });
    // Field work, photos and reports: a second object, so no one macro call grows too deep.
    let more = json!({
            "/v1/customers/{id}/timeline": { "get": op("A customer's visits, reviews and follow-up, newest first, with the visit count, last visit and next follow-up", true, None, "{customer, visits, timeline}") },
            "/v1/visits": { "get": op("Visits: own, the team's (managers), all (admins). Query: rep, customer, state (planned|open|closed|auto_closed|cancelled), review (none|approved|commented), from, to (ms)", true, None, "Visits with their graded check-in and check-out") },
            "/v1/visits/follow-ups": { "get": op("Due and overdue follow-ups per customer. Query: rep, days (horizon, default 7), today (YYYY-MM-DD)", true, None, "{today, overdue, due}") },
            "/v1/visits/{id}/reviews": { "post": op("The rep's manager approves or comments on a visit report; the rep's phone receives it at its next sync", true, Some("NewReview"), "201 {review, visit}") },
            "/v1/field-events": { "get": op("Graded field events (check-ins, check-outs, punches) with their verdict and reasons. Query: user, event, trust, from, to", true, None, "Events") },
            "/v1/makeups": { "get": op("Make-up requests: own, the team's, all (admins and HR). Query: status (pending|approved|rejected)", true, None, "Make-up requests") },
            "/v1/makeups/{id}/decision": { "post": op("The worker's manager approves or refuses a make-up request", true, Some("MakeupDecision"), "{makeup}") },
            "/v1/attendance/policy": {
                "get": op("The tenant's location-trust thresholds and visit auto-close time", true, None, "Policy"),
                "put": op("Set them (admin, HR)", true, Some("Policy"), "Policy")
            },
            "/v1/attendance/shifts": {
                "get": op("Shifts", true, None, "Shifts"),
                "post": op("Create a shift: start/end as HH:MM (end before start crosses midnight), grace, thresholds, punch windows, break, required minutes (admin, HR)", true, Some("NewShift"), "201 Shift")
            },
            "/v1/attendance/calendars": {
                "get": op("Work calendars", true, None, "Calendars"),
                "post": op("Create a calendar: workdays, holidays, extra working days (admin, HR)", true, Some("NewCalendar"), "201 Calendar")
            },
            "/v1/attendance/assignments": {
                "get": op("Site assignments (own; all for admin and HR, or ?user=)", true, None, "Assignments"),
                "put": op("Assign a worker to a project site with a shift and calendar (admin, HR)", true, Some("Assignment"), "Assignment"),
                "delete": op("Remove an assignment (admin, HR)", true, Some("Assignment"), "204")
            },
            "/v1/attendance/leave": { "put": op("Record (kind) or clear (kind null) leave for a user over a period (admin, HR)", true, Some("Leave"), "204") },
            "/v1/attendance/me": { "get": op("The caller's own month: ?month=YYYY-MM; days with status and explanation, summary, assignments, policy", true, None, "MyAttendance") },
            "/v1/attendance/setup": { "get": op("The tenant's grading policy and the caller's site assignments with their shifts (what phones cache for offline checks)", true, None, "{user, policy, assignments}") },
            "/v1/photos": { "get": op("Photos the caller may see (author, their manager, the project's members, admins), newest first, with position and location grade. Query: project, site, day, author, status (pending|approved|rejected|retake), from, to", true, None, "Photos") },
            "/v1/photos/{id}/reviews": { "post": op("Approve, reject or ask for a retake (a reason is required for the last two); site managers, managers and admins, never of their own photo", true, Some("PhotoReview"), "201 {review, photo}") },
            "/v1/photos/{id}/comments": { "post": op("Comment under a photo", true, Some("PhotoComment"), "201 {comment}") },
            "/v1/blobs": { "post": op("Start or resume the upload of a photo's bytes: {sha256, size, mime}; says how many bytes the server holds (complete if it has them all)", true, None, "{sha256, size, received, complete}") },
            "/v1/blobs/{sha256}": {
                "get": op("Upload status", true, None, "{sha256, size, received, complete}"),
                "put": op("Append bytes at ?offset= (application/octet-stream, at most 8 MiB); the last chunk is verified against the hash (422 hash_mismatch); 409 offset_mismatch carries received", true, None, "{sha256, size, received, complete}")
            },
            "/v1/photos/{id}/file/{variant}": { "get": op("The photo's bytes: original, 320, 1600 (upright thumbnails without EXIF) or stamped; 409 not_uploaded until the bytes arrive", true, None, "image/jpeg (or the original's type)") },
            "/v1/geojson": { "get": op("Photos (and, without a project, visit check-ins) as a GeoJSON FeatureCollection. Query: project, from, to", true, None, "application/geo+json") },
            "/v1/reports/attendance": { "get": op("HR attendance report. Query: from, to (YYYY-MM-DD, at most 366 days), format (json|csv|xlsx), sheet (summary|days, for CSV), team (manager id), site (PROJECT_ID:SITE_ID), users (ids). Admins and HR: anyone; managers: their team", true, None, "Report (JSON), text/csv or XLSX") }
    });
    if let (Some(paths), Value::Object(more)) = (doc["paths"].as_object_mut(), more) {
        paths.extend(more);
    }
    // The audit (issue 5). Times: ms, RFC 3339 or YYYY-MM-DD; pages: limit, cursor (next_cursor).
    let audit = json!({
            "/v1/audit/records/{id}": { "get": op("A record's history from its Automerge changes, oldest first: per change the user, device (or 'server on behalf of' the user), receive time, fields changed (old → new; text: characters inserted/deleted and an excerpt) and the changes it was concurrent with. Admins and the managers of the record's people. Query: limit (1-500), cursor", true, None, "{doc_id, kind, total, changes, next_cursor}") },
            "/v1/audit/changes": { "get": op("Changes across the tenant, newest first (admin). Query: user (id or me), kind, from, to (receive time), limit (1-200), cursor", true, None, "{entries: [{seq, doc_id, kind, received_at, by, changes}], next_cursor}") },
            "/v1/audit/access": { "get": op("Who read whose location or attendance data, newest first (admins and HR; anyone with subject=me). Query: viewer, subject (id or me), from, to, limit (1-500), cursor", true, None, "{entries: [{id, at, viewer, subject, scope, what, detail}], next_cursor}") }
    });
    if let (Some(paths), Value::Object(audit)) = (doc["paths"].as_object_mut(), audit) {
        paths.extend(audit);
    }
    if let Some(paths) = doc["paths"].as_object_mut() {
        paths.insert("/v1/import/customers".into(), import_customers());
    }
    // Staff handover and the shared customer pool (issue 5).
    let handover = json!({
            "/v1/admin/users/{id}/handover": { "post": op("Move every customer the user owns, in one step, to an active rep or manager ({\"to\": user id}) or to the shared pool ({\"to\": \"pool\"}); \"disable\": true also disables the user (their devices purge at next contact). Recorded and undoable; a retry with nothing left to move moves nothing and says so (admin)", true, Some("HandoverRequest"), "{handover (null when nothing moved), moved, refused, disabled, message}") },
            "/v1/admin/users/{id}/enable": { "post": op("Let a disabled user sign in again; their old devices stay revoked (admin)", true, None, "204") },
            "/v1/admin/handovers": { "get": op("Handovers of the tenant, newest first: from, to (null: the pool), by, at, disabled, customer_ids, undone_at, undone_by, undo_report (admin)", true, None, "Handovers") },
            "/v1/admin/handovers/{id}/undo": { "post": op("Move back the customers still where the handover put them; those moved since are skipped and reported. 409 already_undone the second time; 409 user_disabled while the user is disabled (admin)", true, None, "{handover, moved_back, already_back, skipped, refused, message}") },
            "/v1/customers/pool": { "get": op("Customers in the shared pool (managers and admins)", true, None, "List of pooled customers") },
            "/v1/customers/{id}/assign": { "post": op("Give a customer (typically from the pool) to a rep or manager: managers only to themselves or their team (403 owner_not_allowed otherwise), admins to anyone", true, Some("AssignRequest"), "{customer}") }
    });
    if let (Some(paths), Value::Object(handover)) = (doc["paths"].as_object_mut(), handover) {
        paths.extend(handover);
    }
    // Site diaries, the 360 views and project files (issue 5).
    let views = json!({
            "/v1/diaries": { "get": op("Site diary days the caller may read (project members, admins). Query: project, site, from, to (YYYY-MM-DD), locked", true, None, "[{id, project_id, site_id, day, locked, signed_by, signed_at, weather, work_excerpt, counts}]") },
            "/v1/diaries/{id}": { "get": op("One diary day as people read it: the record, the crew merged with that day's punches at the site (first in, last out, hours; source punches|diary|punches+diary), and the photos taken there that day", true, None, "DiaryView") },
            "/v1/diaries/{id}/sign-off": { "post": op("Sign the day off (the project's site managers and admins): the diary locks and the server refuses every other change (diary_locked) until it is reopened. Body: {note}", true, None, "DiaryView") },
            "/v1/diaries/{id}/reopen": { "post": op("Reopen a signed-off day (site managers and admins; 422 not_signed_off otherwise). Body: {note}", true, None, "DiaryView") },
            "/v1/diaries/export": { "get": op("A diary day or range fit to print: one HTML page per day with crew, work, lists, photos (thumbnails embedded) and the sign-off log. Query: project, site, from, to (at most 62 days), format (html|json), photos (true|false)", true, None, "text/html or [DiaryView]") },
            "/v1/customers/{id}/360": { "get": op("Everything about a customer: the record with contacts and notes, one timeline newest first (visits and reports, reviews, photos, owner changes from the record's history), follow-ups due, planned visits, projects", true, None, "{customer, counts, last_visit_at, follow_ups, planned_visits, projects, owner_history, timeline}") },
            "/v1/projects/{id}/360": { "get": op("Everything about a project: sites, members, milestones, diary days, photos by status, files, and the headcount per site and local day. Query: from, to (YYYY-MM-DD; default the last 31 days, at most 366)", true, None, "{project, milestones_summary, diaries, photos, files, headcount}") },
            "/v1/projects/{id}/files": {
                "get": op("The project's files (readers of the project)", true, None, "[ProjectFile]"),
                "post": op("Attach uploaded bytes (POST /v1/blobs with purpose 'file' first; 409 not_uploaded otherwise) as a project file: {name, sha256, mime, note}. Site managers of the project, its creator, admins", true, None, "ProjectFile")
            },
            "/v1/projects/{id}/files/{file}": {
                "get": op("The file's bytes, streamed", true, None, "the file's type"),
                "delete": op("Remove a file (kept in the table with who and when). Site managers of the project, its creator, admins", true, None, "204")
            }
    });
    if let (Some(paths), Value::Object(views)) = (doc["paths"].as_object_mut(), views) {
        paths.extend(views);
    }
    if let Some(schemas) = doc["components"]["schemas"].as_object_mut() {
        schemas.insert("HandoverRequest".into(), obj(json!({ "to": {"type": "string", "description": "a user id, or \"pool\""}, "disable": {"type": "boolean", "default": false} }), json!(["to"])));
        schemas.insert(
            "AssignRequest".into(),
            obj(
                json!({ "owner": {"type": "string", "format": "uuid"} }),
                json!(["owner"]),
            ),
        );
    }
    Json(doc)
}

/// Customer import (issue 5): a CSV body and query parameters, so it is described apart.
fn import_customers() -> Value {
    let mut o = op(
        "Import customers from a CSV file (admins; managers, with owners in their team). Every row is validated; good rows are created or updated through the push path, bad rows store nothing and are reported with code, message and column. Re-importing a file never duplicates: rows are matched by External ID, else by name with phone or email. 413 payload_too_large (over 16 MiB) or too_many_rows (over 100,000 rows)",
        true,
        None,
        "{dry_run, summary, total, created, updated, unchanged, errors, mapping, ignored_columns, rows: [{row, status (created|updated|unchanged|error), customer_id, errors: [{code, message, column}]}]}",
    );
    o["requestBody"] =
        json!({ "required": true, "content": { "text/csv": { "schema": { "type": "string" } } } });
    let param = |name: &str, description: &str| json!({ "name": name, "in": "query", "required": false, "schema": { "type": "string" }, "description": description });
    o["parameters"] = json!([
        param("dry_run", "true: validate and report only, store nothing"),
        param(
            "owner",
            "Email of the owner of new customers whose row names none (default: the caller)"
        ),
        param(
            "map.{field}",
            "Read {field} (external_id, name, customer_kind, phone, email, address, lat, lon, visit_radius_m, tier, lifecycle, owner, tags, notes) from this column; empty: ignore the column"
        ),
    ]);
    json!({ "post": o })
}
