-- Project files (PostgreSQL): tender documents, drawings and the like, attached to a project. The
-- bytes are blobs like photos' (by SHA-256, in the blob store); this is what each one is.
-- Keep in step with migrations/sqlite/0009_project_files.sql.
CREATE TABLE project_files (
    tenant_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    project_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    size        BIGINT NOT NULL,
    mime        TEXT NOT NULL,
    note        TEXT NOT NULL,
    added_by    TEXT NOT NULL,
    added_at    BIGINT NOT NULL,
    removed_by  TEXT,
    removed_at  BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX project_files_by_project ON project_files (tenant_id, project_id, added_at);
