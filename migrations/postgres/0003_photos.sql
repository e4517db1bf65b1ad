-- Photos (PostgreSQL). Keep in step with migrations/sqlite/0003_photos.sql.

-- Photo records, projected: what the photo is of, where and when it was taken, its review
-- status (the latest review's decision, 'pending' before any) and its review history.
CREATE TABLE photos (
    tenant_id     TEXT NOT NULL,
    id            TEXT NOT NULL,
    author_id     TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    size          BIGINT NOT NULL,
    mime          TEXT NOT NULL,
    attach_kind   TEXT NOT NULL,      -- visit | project | site_day | customer
    attach_id     TEXT NOT NULL,
    project_id    TEXT,               -- for project and site_day photos
    site_id       TEXT,
    day           TEXT,               -- YYYY-MM-DD, site_day photos
    captured_at   BIGINT NOT NULL,
    lat           DOUBLE PRECISION,
    lon           DOUBLE PRECISION,
    accuracy_m    DOUBLE PRECISION,
    caption       TEXT NOT NULL,
    tags          TEXT NOT NULL,      -- JSON list
    status        TEXT NOT NULL,      -- pending | approved | rejected | retake
    reviews       TEXT NOT NULL,      -- JSON list
    comments      TEXT NOT NULL,      -- JSON list
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX photos_by_project ON photos (tenant_id, project_id, day);
CREATE INDEX photos_by_author ON photos (tenant_id, author_id, captured_at);
CREATE INDEX photos_by_sha ON photos (tenant_id, sha256);

-- What the server learnt from a photo's bytes, once per blob: upright size, EXIF capture time,
-- GPS and camera, the perceptual hash (16 hex digits), or why the bytes could not be read.
-- Thumbnails are files beside the blobs (see server/src/photo_media.rs).
CREATE TABLE photo_media (
    tenant_id    TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    width        BIGINT,
    height       BIGINT,
    exif_time_zoned BOOLEAN NOT NULL DEFAULT FALSE, -- the camera said its UTC offset
    exif_time_ms BIGINT,
    exif_lat     DOUBLE PRECISION,
    exif_lon     DOUBLE PRECISION,
    make         TEXT,
    model        TEXT,
    phash        TEXT,
    damaged      BOOLEAN NOT NULL,
    error        TEXT,
    processed_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, sha256)
);
