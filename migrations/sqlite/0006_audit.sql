-- Audit (issue 5, SQLite). Keep in step with migrations/postgres/0006_audit.sql.

-- Who changed what: 'changes' entries of the change log now name the user who pushed them
-- (user_id), as grant and revoke entries always named the user whose access moved. A phone's
-- push names its device's user; an edit the server makes on someone's behalf (a review, a
-- make-up decision) is pushed under a fresh device id that is no phone's, and user_id is the
-- only trace of who asked for it. Entries written before this migration get their device's
-- user; the server's own edits from before it stay NULL (unknown).
UPDATE change_log SET user_id = (
    SELECT d.user_id FROM devices d WHERE d.tenant_id = change_log.tenant_id AND d.id = change_log.device_id
) WHERE entry = 'changes' AND user_id IS NULL;

-- A record's history walks its entries; the change search walks a user's or a period's.
CREATE INDEX change_log_by_doc ON change_log (tenant_id, doc_id, seq);
CREATE INDEX change_log_by_user ON change_log (tenant_id, user_id, seq);
CREATE INDEX change_log_by_time ON change_log (tenant_id, created_at);

-- Who looked at whose location or attendance data. One row per read and person read about;
-- a read over a large set (a whole-tenant report) is one row with subject_user_id NULL and the
-- set named in scope: 'tenant', 'team:<manager id>'. Otherwise scope says how the person was
-- chosen ('user', 'team:<id>', 'site:<project>:<site>', 'users', 'record:<id>', 'readable').
-- id is a UUIDv7: ordered by time, it is the page cursor. what names the route read
-- (attendance_report, field_events, visits, photos, geojson, customer_timeline, makeups);
-- detail is JSON with the request's filters and how many rows were shown.
CREATE TABLE access_log (
    tenant_id       TEXT NOT NULL,
    id              TEXT NOT NULL,
    at              INTEGER NOT NULL,
    viewer_user_id  TEXT NOT NULL,
    subject_user_id TEXT,
    scope           TEXT NOT NULL,
    what            TEXT NOT NULL,
    detail          TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX access_log_by_subject ON access_log (tenant_id, subject_user_id, id);
CREATE INDEX access_log_by_viewer ON access_log (tenant_id, viewer_user_id, id);
