-- Customer import (issue 5, PostgreSQL). Keep in step with migrations/sqlite/0005_import.sql.

-- Which customer an imported row became, so that importing the same file again updates that
-- customer instead of creating a second one. The key is the row's External ID ('ext:…') or,
-- without one, its normalised name with phone or email ('np:…'); see server/src/import.rs.
-- A key is written before the push that creates its customer, with the customer's id chosen
-- up front: if the import stops between the two, the next run creates that same id, never a
-- duplicate. Rows are never updated; a key names one customer for good.
CREATE TABLE customer_import_keys (
    tenant_id     TEXT NOT NULL,
    import_key    TEXT NOT NULL,
    customer_id   TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, import_key)
);
