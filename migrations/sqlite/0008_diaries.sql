-- Site diaries (SQLite), projected from their records: one row per project site and day.
-- Keep in step with migrations/postgres/0008_diaries.sql.
CREATE TABLE diaries (
    tenant_id    TEXT NOT NULL,
    id           TEXT NOT NULL,
    project_id   TEXT NOT NULL,
    site_id      TEXT NOT NULL,
    day          TEXT NOT NULL,      -- YYYY-MM-DD in the site's time zone
    locked       INTEGER NOT NULL,   -- signed off and not reopened since
    signed_by    TEXT,               -- the latest sign-off, while locked
    signed_at    INTEGER,
    record       TEXT NOT NULL,      -- the whole diary (sync::Diary) as JSON
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX diaries_by_day ON diaries (tenant_id, project_id, site_id, day);
CREATE INDEX field_events_by_site ON field_events (tenant_id, project_id, site_id, at_ms);
