-- Field check-in (PostgreSQL): visits, attendance punches, make-up requests, shifts, calendars,
-- site assignments, leave, and the graded location evidence of every field event.
-- Keep in step with migrations/sqlite/0002_field_checkin.sql.

-- A customer's own visit radius (metres), projected from the record.
ALTER TABLE customers ADD COLUMN visit_radius_m DOUBLE PRECISION;

-- The tenant's grading thresholds (sync::trust::Policy as JSON); absent = the defaults.
CREATE TABLE field_policies (
    tenant_id  TEXT PRIMARY KEY,
    policy     TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Every field event (visit check-in and check-out, punch) with the verdict the server gave its
-- location evidence when it first received it. Written once, never updated: the evidence is
-- immutable in its record, and so is the verdict. at_ms is the event's time on the server's
-- clock (monotonic dating when the phone had it, its wall clock otherwise).
CREATE TABLE field_events (
    tenant_id    TEXT NOT NULL,
    doc_id       TEXT NOT NULL,
    event        TEXT NOT NULL,      -- visit_check_in | visit_check_out | punch
    user_id      TEXT NOT NULL,
    at_ms        BIGINT NOT NULL,
    device_time_ms BIGINT NOT NULL,
    lat          DOUBLE PRECISION NOT NULL,
    lon          DOUBLE PRECISION NOT NULL,
    accuracy_m   DOUBLE PRECISION NOT NULL,
    provider     TEXT NOT NULL,
    mock         BOOLEAN NOT NULL,
    customer_id  TEXT,               -- visits
    project_id   TEXT,               -- punches
    site_id      TEXT,
    direction    TEXT,               -- punches: in | out
    target_name  TEXT,
    trust        TEXT NOT NULL,      -- verified | unverifiable | suspicious | rejected
    reasons      TEXT NOT NULL,      -- JSON list of {code, severity, message}
    distance_m   DOUBLE PRECISION,
    allowed_m    DOUBLE PRECISION,
    received_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, doc_id, event)
);
CREATE INDEX field_events_by_user ON field_events (tenant_id, user_id, at_ms);
CREATE INDEX field_events_by_time ON field_events (tenant_id, event, at_ms);

-- Visits, projected from their records.
CREATE TABLE visits (
    tenant_id      TEXT NOT NULL,
    id             TEXT NOT NULL,
    customer_id    TEXT NOT NULL,
    rep_id         TEXT NOT NULL,
    planned_date   TEXT,
    purpose        TEXT NOT NULL,
    cancelled      BOOLEAN NOT NULL,
    check_in_at    BIGINT,
    check_out_at   BIGINT,
    auto_close_at  BIGINT,          -- check_in_at + the tenant's auto-close time
    outcome        TEXT,
    notes          TEXT,
    next_follow_up TEXT,
    review_status  TEXT NOT NULL,    -- none | approved | commented
    reviews        TEXT NOT NULL,    -- JSON list of reviews
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX visits_by_customer ON visits (tenant_id, customer_id);
CREATE INDEX visits_by_rep ON visits (tenant_id, rep_id, check_in_at);

-- Make-up requests, projected from their records.
CREATE TABLE makeups (
    tenant_id  TEXT NOT NULL,
    id         TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    project_id TEXT NOT NULL,
    site_id    TEXT NOT NULL,
    direction  TEXT NOT NULL,
    at_ms      BIGINT NOT NULL,
    reason     TEXT NOT NULL,
    status     TEXT NOT NULL,        -- pending | approved | rejected
    decided_by TEXT,
    decided_at BIGINT,
    comment    TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX makeups_by_user ON makeups (tenant_id, user_id, at_ms);

-- Shifts (sync::attendance::Shift). Times are minutes after local midnight in the site's zone.
CREATE TABLE shifts (
    tenant_id         TEXT NOT NULL,
    id                TEXT NOT NULL,
    name              TEXT NOT NULL,
    start_min         BIGINT NOT NULL,
    end_min           BIGINT NOT NULL,
    grace_late_min    BIGINT NOT NULL,
    grace_early_min   BIGINT NOT NULL,
    serious_late_min  BIGINT NOT NULL,
    absent_late_min   BIGINT NOT NULL,
    window_before_min BIGINT NOT NULL,
    window_after_min  BIGINT NOT NULL,
    break_min         BIGINT NOT NULL,
    required_min      BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);

-- Work calendars: which weekdays are workdays, plus holidays and extra workdays.
CREATE TABLE calendars (
    tenant_id  TEXT NOT NULL,
    id         TEXT NOT NULL,
    name       TEXT NOT NULL,
    workdays   TEXT NOT NULL,        -- seven 0/1 flags, Monday first: '1111100'
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);
CREATE TABLE calendar_days (
    tenant_id   TEXT NOT NULL,
    calendar_id TEXT NOT NULL,
    day         TEXT NOT NULL,       -- YYYY-MM-DD
    kind        TEXT NOT NULL,       -- holiday | workday
    name        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, calendar_id, day)
);

-- Who works at which site, on which shift and calendar, from which day (starts_on, in the
-- site's calendar; NULL = no start). A user's first assignment (by created_at) is their primary
-- one: its shift, calendar and site time zone decide their day; before starts_on no work is due.
CREATE TABLE site_assignments (
    tenant_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    project_id  TEXT NOT NULL,
    site_id     TEXT NOT NULL,
    shift_id    TEXT NOT NULL,
    calendar_id TEXT NOT NULL,
    starts_on   TEXT,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, project_id, site_id)
);

-- Leave, one row per day.
CREATE TABLE leave_days (
    tenant_id TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    day       TEXT NOT NULL,
    kind      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, day)
);
