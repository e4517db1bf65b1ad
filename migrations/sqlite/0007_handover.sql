-- Staff handover (issue 5, SQLite). Keep in step with migrations/postgres/0007_handover.sql.

-- One row per handover: every customer a user owned, moved in one step to another rep or
-- manager (to_user_id) or to the tenant's shared pool (to_user_id NULL). The row is written
-- before the customers move, naming the customers about to move, and then corrected to those
-- that did: nothing is ever moved without a row saying so. customer_ids is a JSON array of
-- customer (document) ids. disabled says whether the same step disabled the user.
-- Undoing sets undone_at / undone_by once (a second undo is refused) and keeps in undo_report
-- (JSON) which customers went back and which were skipped because they had moved since.
CREATE TABLE handovers (
    tenant_id    TEXT NOT NULL,
    id           TEXT NOT NULL,
    from_user_id TEXT NOT NULL,
    to_user_id   TEXT,
    by_user_id   TEXT NOT NULL,
    at           INTEGER NOT NULL,
    disabled     INTEGER NOT NULL DEFAULT 0,
    customer_ids TEXT NOT NULL,
    undone_at    INTEGER,
    undone_by    TEXT,
    undo_report  TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX handovers_by_from ON handovers (tenant_id, from_user_id, id);
