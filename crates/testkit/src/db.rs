//! A fresh database per test.
//!
//! The first test to run migrates a template database whose name carries a
//! hash of the migration files, under an advisory lock so parallel test
//! processes migrate it once. Each test then gets `CREATE DATABASE … TEMPLATE`,
//! which copies files and takes a few milliseconds, and drops it when done.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;

use sqlx::migrate::Migrator;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

/// The cluster's superuser connection, for set-up only. Tests act as the
/// unprivileged application role through [`TestDb::app_url`].
pub fn admin_base_url() -> String {
    std::env::var("TEST_DATABASE_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

fn migrations_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../migrations")
}

/// A database that exists for the lifetime of one test.
#[derive(Debug)]
pub struct TestDb {
    name: String,
}

impl TestDb {
    /// Creates a migrated database for this test.
    ///
    /// # Panics
    /// When PostgreSQL cannot be reached or the migrations fail: a test cannot
    /// go on without its database.
    pub async fn new() -> TestDb {
        let template = ensure_template().await;
        let name = format!("proofsheet_test_{}", Uuid::new_v4().simple());
        let mut admin = admin_connection("postgres").await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE {name} TEMPLATE {template}"
        )))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("creating test database {name} from {template} failed: {e}"));
        let _ = admin.close().await;
        TestDb { name }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// URL for the superuser that owns the tables (migrations and set-up).
    pub fn admin_url(&self) -> String {
        format!("{}/{}", admin_base_url(), self.name)
    }

    /// URL for the application role that row-level security applies to.
    pub fn app_url(&self) -> String {
        let base = admin_base_url().replacen("postgres@", "proofsheet_app@", 1);
        format!("{base}/{}", self.name)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside any async context we can rely on, so the clean-up
        // gets its own small runtime on its own thread.
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(mut admin) = try_admin_connection("postgres").await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut admin)
                    .await;
                    let _ = admin.close().await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

async fn try_admin_connection(database: &str) -> Result<PgConnection, sqlx::Error> {
    PgConnection::connect(&format!("{}/{database}", admin_base_url())).await
}

async fn admin_connection(database: &str) -> PgConnection {
    try_admin_connection(database).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is not reachable at {} ({e}); start it (see README, 'make test')",
            admin_base_url()
        )
    })
}

async fn ensure_template() -> String {
    let migrator = Migrator::new(migrations_dir()).await.unwrap_or_else(|e| {
        panic!(
            "reading migrations from {} failed: {e}",
            migrations_dir().display()
        )
    });
    let mut hasher = DefaultHasher::new();
    for migration in migrator.iter() {
        migration.version.hash(&mut hasher);
        migration.checksum.hash(&mut hasher);
    }
    let template = format!("proofsheet_template_{:016x}", hasher.finish());

    let mut admin = admin_connection("postgres").await;
    sqlx::query("SELECT pg_advisory_lock(7291003)")
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("taking the template lock failed: {e}"));
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&template)
            .fetch_one(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("looking up the template failed: {e}"));
    if !exists {
        let building = format!("{template}_building");
        let statements = [
            format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"),
            format!("CREATE DATABASE {building}"),
        ];
        for statement in statements {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&mut admin)
                .await
                .unwrap_or_else(|e| panic!("preparing the template failed: {e}"));
        }
        let mut conn = admin_connection(&building).await;
        migrator
            .run(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("migrating the test template failed: {e}"));
        let _ = conn.close().await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {building} RENAME TO {template}"
        )))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("renaming the template failed: {e}"));
    }
    let _ = sqlx::query("SELECT pg_advisory_unlock(7291003)")
        .execute(&mut admin)
        .await;
    let _ = admin.close().await;
    template
}

/// A Redis key prefix of its own for one test's queues and live events.
pub fn queue_namespace() -> String {
    format!("proofsheet-test-{}", Uuid::new_v4().simple())
}
