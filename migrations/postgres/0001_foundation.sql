-- fieldsync foundation schema (PostgreSQL). Keep in step with migrations/sqlite/0001_foundation.sql:
-- the same tables, columns and keys; only the type names differ.
-- Every table carries tenant_id first in its key, so the data can later be distributed by tenant.
-- Ids are UUID strings; times are milliseconds since the Unix epoch.

-- Server-wide settings (the JWT signing secret lives here, generated at first start).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- A company. log_seq is the last sequence number handed out in its change log; taking it
-- (UPDATE ... RETURNING) is what serializes pushes within one tenant.
CREATE TABLE tenants (
    id         TEXT PRIMARY KEY,
    slug       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    log_seq    BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    id            TEXT NOT NULL,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    manager_id    TEXT,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, email)
);
CREATE INDEX users_by_manager ON users (tenant_id, manager_id);

-- One install of the app on one phone, bound to the user who logged in on it.
CREATE TABLE devices (
    tenant_id    TEXT NOT NULL,
    id           TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    name         TEXT NOT NULL,
    revoked      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- Rotating refresh tokens, stored as SHA-256 hashes. used_at is set when a token is exchanged and
-- replaced_by names its successor. Presenting a used one again revokes the device, except within
-- a short grace window while its successor is still unused (the phone lost the answer).
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    replaced_by TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_by_device ON refresh_tokens (tenant_id, device_id);

-- The merged Automerge document of every record, compacted (Automerge::save).
CREATE TABLE documents (
    tenant_id   TEXT NOT NULL,
    doc_id      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    snapshot    BYTEA NOT NULL,
    heads       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    updated_seq BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, doc_id)
);

-- The principals of each document (customer owner; project creator and members). Who may read
-- a document is decided from these rows (see sync::access::can_read).
CREATE TABLE doc_access (
    tenant_id TEXT NOT NULL,
    doc_id    TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, doc_id, user_id)
);
CREATE INDEX doc_access_by_user ON doc_access (tenant_id, user_id);

-- The per-tenant change log that pull cursors walk. entry is 'changes' (data = the new Automerge
-- changes, each framed by its length; device_id = the device that pushed them, which already
-- has them and is not sent them back), 'grant' or 'revoke' (user_id = whose access moved).
CREATE TABLE change_log (
    tenant_id  TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    doc_id     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    entry      TEXT NOT NULL,
    user_id    TEXT,
    device_id  TEXT,
    data       BYTEA,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

-- The answer to every push, so a retried batch gets the same answer and stores nothing twice.
CREATE TABLE push_batches (
    tenant_id  TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    batch_id   TEXT NOT NULL,
    response   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, device_id, batch_id)
);

-- Projections: the merged records as plain rows for reports and dashboards. Rebuilt from the
-- document on every accepted change, in the same transaction.
CREATE TABLE customers (
    tenant_id     TEXT NOT NULL,
    id            TEXT NOT NULL,
    name          TEXT NOT NULL,
    customer_kind TEXT NOT NULL,
    phone         TEXT,
    email         TEXT,
    address       TEXT,
    lat           DOUBLE PRECISION,
    lon           DOUBLE PRECISION,
    tier          TEXT,
    lifecycle     TEXT NOT NULL,
    owner_id      TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    tags          TEXT NOT NULL,
    notes         TEXT NOT NULL,
    conflicts     TEXT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX customers_by_owner ON customers (tenant_id, owner_id);

CREATE TABLE customer_contacts (
    tenant_id   TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    contact_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    title       TEXT,
    phone       TEXT,
    email       TEXT,
    PRIMARY KEY (tenant_id, customer_id, contact_id)
);

CREATE TABLE projects (
    tenant_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    customer_id TEXT,
    name        TEXT NOT NULL,
    code        TEXT,
    status      TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE project_sites (
    tenant_id   TEXT NOT NULL,
    project_id  TEXT NOT NULL,
    site_id     TEXT NOT NULL,
    name        TEXT NOT NULL,
    address     TEXT,
    timezone    TEXT NOT NULL,
    fence_shape TEXT,
    center_lat  DOUBLE PRECISION,
    center_lon  DOUBLE PRECISION,
    radius_m    DOUBLE PRECISION,
    polygon     TEXT,
    PRIMARY KEY (tenant_id, project_id, site_id)
);

CREATE TABLE project_members (
    tenant_id  TEXT NOT NULL,
    project_id TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    role       TEXT NOT NULL,
    PRIMARY KEY (tenant_id, project_id, user_id)
);

CREATE TABLE project_milestones (
    tenant_id    TEXT NOT NULL,
    project_id   TEXT NOT NULL,
    milestone_id TEXT NOT NULL,
    name         TEXT NOT NULL,
    due          TEXT,
    status       TEXT NOT NULL,
    PRIMARY KEY (tenant_id, project_id, milestone_id)
);
