//! Storage on PostgreSQL, behind row-level security.
//!
//! [`Db`] holds the pool. Tenant-owned tables are reached only through a
//! [`TenantTx`]: a transaction whose first statement sets `app.tenant_id`
//! transaction-locally, so it can never leak to the next user of a pooled
//! connection. The few look-ups that must run before the tenant is known go
//! through `SECURITY DEFINER` functions that return ids only.

pub mod auth;
pub mod invoices;
pub mod notices;
pub mod payment_state;
pub mod photos;
pub mod projects;
pub mod stripe;
pub mod tenants;

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool, Postgres, Transaction};

use crate::ids::NoticeId;
use crate::{DomainError, ProjectId, TenantId, UserId};

/// The schema migrations, embedded at build time.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

/// The connection pool of a service.
#[derive(Clone, Debug)]
pub struct Db {
    pool: PgPool,
}

/// Reason a service rejects the database role it was given at start-up.
#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    #[error(
        "the database role '{role}' bypasses row-level security ({why}); connect as the \
         unprivileged role proofsheet_app instead (set DATABASE_URL)"
    )]
    BypassesRls { role: String, why: &'static str },
    #[error("could not check the database role: {0}")]
    Query(#[from] sqlx::Error),
}

impl Db {
    /// Connects a pool of at most `max_connections`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, sqlx::Error> {
        let options: PgConnectOptions = url.parse()?;
        let options = options
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    /// Wraps an existing pool.
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Returns the underlying pool, for health checks.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Checks that the database responds.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    /// Refuses a role that row-level security does not apply to: a superuser
    /// or a role with BYPASSRLS.
    pub async fn check_role(&self) -> Result<(), RoleError> {
        let (role, superuser, bypass): (String, bool, bool) = sqlx::query_as(
            "SELECT rolname::text, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user",
        )
        .fetch_one(&self.pool)
        .await?;
        if superuser {
            return Err(RoleError::BypassesRls {
                role,
                why: "it is a superuser",
            });
        }
        if bypass {
            return Err(RoleError::BypassesRls {
                role,
                why: "it has BYPASSRLS",
            });
        }
        Ok(())
    }

    /// Starts a unit of work for one tenant.
    pub async fn tenant(&self, tenant: TenantId) -> Result<TenantTx, DomainError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
            .bind(tenant.to_string())
            .execute(&mut *tx)
            .await?;
        Ok(TenantTx { tx, tenant })
    }

    /// Finds the project behind a portal token.
    pub async fn resolve_portal_token(
        &self,
        token: &str,
    ) -> Result<Option<(TenantId, ProjectId)>, DomainError> {
        Ok(
            sqlx::query_as("SELECT tenant_id, project_id FROM app_resolve_portal_token($1)")
                .bind(token)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Finds the live session behind a cookie value.
    pub async fn resolve_session(
        &self,
        token: &str,
    ) -> Result<Option<auth::SessionRef>, DomainError> {
        Ok(
            sqlx::query_as("SELECT tenant_id, user_id, session_id FROM app_resolve_session($1)")
                .bind(crate::secret::token_hash(token))
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Finds the tenant behind an unrevoked API key.
    pub async fn resolve_api_key(
        &self,
        key: &str,
    ) -> Result<Option<(TenantId, crate::ApiKeyId)>, DomainError> {
        Ok(
            sqlx::query_as("SELECT tenant_id, api_key_id FROM app_resolve_api_key($1)")
                .bind(crate::secret::token_hash(key))
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Finds the user that logs in with `email`, with the stored password hash.
    pub async fn find_login(
        &self,
        email: &str,
    ) -> Result<Option<(TenantId, UserId, String)>, DomainError> {
        Ok(
            sqlx::query_as("SELECT tenant_id, user_id, password_hash FROM app_find_login($1)")
                .bind(email.trim())
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Finds an unused, unexpired password reset by its token.
    pub async fn resolve_password_reset(
        &self,
        token: &str,
    ) -> Result<Option<(TenantId, uuid::Uuid)>, DomainError> {
        Ok(
            sqlx::query_as("SELECT tenant_id, reset_id FROM app_resolve_password_reset($1)")
                .bind(crate::secret::token_hash(token))
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Flags every unpaid invoice past its due date in its studio's time zone
    /// as overdue, in one statement, and returns the notices it queued.
    pub async fn mark_overdue_invoices(&self) -> Result<Vec<(TenantId, NoticeId)>, DomainError> {
        Ok(
            sqlx::query_as("SELECT tenant_id, notice_id FROM app_mark_overdue_invoices()")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Returns notices still unsent `older_than` after they were queued.
    pub async fn unsent_notices(
        &self,
        older_than: Duration,
    ) -> Result<Vec<(TenantId, NoticeId)>, DomainError> {
        let seconds = older_than.as_secs_f64();
        Ok(sqlx::query_as(
            "SELECT tenant_id, notice_id FROM app_unsent_notices(make_interval(secs => $1))",
        )
        .bind(seconds)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Returns photos still processing `older_than` after upload, whose
    /// thumbnail job was lost or is stuck.
    pub async fn stale_processing_photos(
        &self,
        older_than: Duration,
    ) -> Result<Vec<(TenantId, crate::PhotoId)>, DomainError> {
        Ok(sqlx::query_as(
            "SELECT tenant_id, photo_id FROM app_stale_processing_photos(make_interval(secs => $1))",
        )
        .bind(older_than.as_secs_f64())
        .fetch_all(&self.pool)
        .await?)
    }
}

/// A transaction scoped to one tenant. Every repository function takes one,
/// so there is no way to reach tenant tables without a tenant.
#[derive(Debug)]
pub struct TenantTx {
    tx: Transaction<'static, Postgres>,
    tenant: TenantId,
}

impl TenantTx {
    /// Returns the tenant this unit of work runs as.
    pub fn tenant_id(&self) -> TenantId {
        self.tenant
    }

    /// Commits the unit of work.
    pub async fn commit(self) -> Result<(), DomainError> {
        Ok(self.tx.commit().await?)
    }

    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// The raw connection, for tests and checks that run their own SQL. It is
    /// still inside this tenant's transaction, so RLS applies.
    pub fn as_mut_connection(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}

/// Creates the database named in `url` when it does not exist yet, connecting
/// to the `postgres` maintenance database of the same server.
pub async fn ensure_database(url: &str) -> Result<(), sqlx::Error> {
    let options: PgConnectOptions = url.parse()?;
    let name = options.get_database().unwrap_or("proofsheet").to_owned();
    let mut admin = PgConnection::connect_with(&options.clone().database("postgres")).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        // Identifiers cannot be bound as parameters; quote it instead.
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {quoted}")))
            .execute(&mut admin)
            .await?;
    }
    admin.close().await
}

/// Applies the migrations, as the owner role given in `url`.
pub async fn migrate(url: &str) -> Result<(), sqlx::migrate::MigrateError> {
    let mut conn = PgConnection::connect(url).await?;
    MIGRATOR.run(&mut conn).await?;
    conn.close().await.map_err(Into::into)
}
