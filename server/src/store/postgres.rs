//! The PostgreSQL backend. A push locks its tenant's row (`SELECT … FOR UPDATE`) for the length
//! of its transaction: pushes within one tenant are serialized, so log sequence numbers commit
//! in order and a pull never skips an entry; different tenants push in parallel.

use sqlx::postgres::PgPoolOptions;
use sqlx::{Pool, Postgres};
use std::time::Duration;

pub struct PgStore {
    pool: Pool<Postgres>,
}

impl PgStore {
    pub async fn connect(url: &str) -> super::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(Self { pool })
    }

    async fn run_migrations(&self) -> super::Result<()> {
        sqlx::migrate!("../migrations/postgres")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn begin_write(
        &self,
        tenant: &str,
    ) -> super::Result<sqlx::Transaction<'static, Postgres>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT log_seq FROM tenants WHERE id = $1 FOR UPDATE")
            .bind(tenant)
            .fetch_optional(&mut *tx)
            .await?;
        Ok(tx)
    }
}

super::sql::impl_store!(PgStore, sqlx::Postgres, "postgres");
super::audit::impl_audit_store!(PgStore, sqlx::Postgres);
super::handover::impl_handover_store!(PgStore, sqlx::Postgres);
