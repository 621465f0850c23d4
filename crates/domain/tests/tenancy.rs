//! Row-level security, checked against the catalogue: every table with a
//! `tenant_id` column is covered, including tables added after this test.

use proofsheet_domain::db::{self, Db, auth, invoices, photos, projects, stripe, tenants};
use proofsheet_domain::response::NewResponse;
use proofsheet_domain::{PhotoId, Stage, TenantId};
use proofsheet_testkit::db::TestDb;
use sqlx::{Connection, PgConnection, Row};

async fn app_db(test_db: &TestDb) -> Db {
    Db::connect(&test_db.app_url(), 4)
        .await
        .expect("connect as the app role")
}

async fn studio(db: &Db, name: &str) -> TenantId {
    let new = tenants::NewStudio::parse(
        name,
        &format!("{name}@example.com"),
        "long enough password",
        "Europe/Berlin",
    )
    .expect("valid studio");
    tenants::sign_up(db, new).await.expect("sign up").tenant_id
}

/// Gives a studio at least one row in every tenant-owned table.
async fn fill(db: &Db, tenant: TenantId) {
    let mut tx = db.tenant(tenant).await.expect("tenant tx");
    let new = projects::NewProject::parse("Wedding", "Ana", "ana@example.com", "2026-06-01")
        .expect("valid project");
    let project = projects::create(&mut tx, new)
        .await
        .expect("create project");
    let input = invoices::InvoiceInput::parse("deposit", 50_000, "EUR", "2020-01-01")
        .expect("valid invoice");
    let invoice = invoices::upsert(&mut tx, project.id, input)
        .await
        .expect("invoice");
    stripe_rows(&mut tx, invoice.id).await;
    let photo = photos::insert(&mut tx, PhotoId::new(), project.id, "a.jpg", 10)
        .await
        .expect("photo");
    projects::toggle_favourite(&mut tx, project.id, photo.id)
        .await
        .expect("favourite");
    projects::move_stage(&mut tx, project.id, Stage::PhotosReady)
        .await
        .expect("stage");
    let response = NewResponse::parse("changes", "brighter").expect("valid response");
    projects::record_response(&mut tx, project.id, &response)
        .await
        .expect("response");
    let users: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM users")
        .fetch_all(&mut *raw(&mut tx))
        .await
        .expect("users");
    let user = proofsheet_domain::UserId(users[0]);
    auth::create_session(&mut tx, user).await.expect("session");
    auth::create_password_reset(&mut tx, user)
        .await
        .expect("reset");
    tx.commit().await.expect("commit");
    // The overdue job writes notices for the invoice due in 2020.
    db.mark_overdue_invoices().await.expect("overdue run");
}

/// Gives the invoice a Checkout Session and a Stripe payment.
async fn stripe_rows(tx: &mut db::TenantTx, invoice: proofsheet_domain::InvoiceId) {
    let session = stripe::CheckoutSession {
        session_id: format!("cs_test_{}", uuid::Uuid::new_v4().simple()),
        url: "https://checkout.stripe.test/session".to_owned(),
        amount_minor: 100,
        currency: "EUR".to_owned(),
        expire_requested: false,
        expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
    };
    stripe::insert_checkout(tx, invoice, &session)
        .await
        .expect("checkout session");
    let payment_intent = format!("pi_{}", uuid::Uuid::new_v4().simple());
    let payment = stripe::PaymentReceived {
        invoice_id: invoice,
        payment_intent_id: &payment_intent,
        amount_minor: 100,
        currency: "eur",
        paid_at: chrono::Utc::now(),
    };
    stripe::record_payment(tx, &payment).await.expect("payment");
}

fn raw(tx: &mut db::TenantTx) -> &mut PgConnection {
    tx.as_mut_connection()
}

async fn tenant_tables(admin: &mut PgConnection) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.table_name::text FROM information_schema.columns c \
         JOIN information_schema.tables t USING (table_schema, table_name) \
         WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id' AND t.table_type = 'BASE TABLE' \
         ORDER BY 1",
    )
    .fetch_all(admin)
    .await
    .expect("read the catalogue")
}

/// Checks, for every table with a tenant_id, that a session set to `a` sees
/// none of `b`'s rows and cannot insert a row for `b`. Returns the problems.
async fn isolation_problems(test_db: &TestDb, a: TenantId, b: TenantId) -> Vec<String> {
    let mut admin = PgConnection::connect(&test_db.admin_url())
        .await
        .expect("admin connection");
    let mut app = PgConnection::connect(&test_db.app_url())
        .await
        .expect("app connection");
    let mut problems = Vec::new();

    for table in tenant_tables(&mut admin).await {
        let b_rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE tenant_id = $1"
        )))
        .bind(b.0)
        .fetch_one(&mut admin)
        .await
        .expect("count as owner");
        if b_rows == 0 {
            problems.push(format!(
                "{table}: the test data gives tenant B no rows, so nothing was checked"
            ));
            continue;
        }

        let mut tx = app.begin().await.expect("begin");
        sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
            .bind(a.to_string())
            .execute(&mut *tx)
            .await
            .expect("set tenant");
        let seen: Result<i64, _> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE tenant_id <> $1"
        )))
        .bind(a.0)
        .fetch_one(&mut *tx)
        .await;
        match seen {
            Ok(0) => {}
            Ok(n) => problems.push(format!("{table}: tenant A sees {n} rows of another tenant")),
            Err(e) => problems.push(format!("{table}: reading as tenant A failed: {e}")),
        }
        tx.rollback().await.expect("rollback");

        // Copy one of B's rows with fresh ids and try to insert it as A.
        let row: serde_json::Value = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT to_jsonb(t) FROM {table} t WHERE tenant_id = $1 LIMIT 1"
        )))
        .bind(b.0)
        .fetch_one(&mut admin)
        .await
        .expect("read B's row");
        let mut row = row;
        for key in ["id", "photo_id", "token_hash", "key_hash"] {
            if let Some(value) = row.get_mut(key) {
                *value = match key {
                    "token_hash" | "key_hash" => {
                        serde_json::Value::String(format!("\\x{}", uuid::Uuid::new_v4().simple()))
                    }
                    _ => serde_json::Value::String(uuid::Uuid::new_v4().to_string()),
                };
            }
        }
        let mut tx = app.begin().await.expect("begin");
        sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
            .bind(a.to_string())
            .execute(&mut *tx)
            .await
            .expect("set tenant");
        let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {table} SELECT * FROM jsonb_populate_record(NULL::{table}, $1)"
        )))
        .bind(&row)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42501") => {}
            Err(e) => problems.push(format!(
                "{table}: inserting B's row as A failed for another reason: {e}"
            )),
            Ok(_) => problems.push(format!("{table}: tenant A inserted a row for tenant B")),
        }
        tx.rollback().await.expect("rollback");
    }
    problems
}

#[tokio::test]
async fn every_tenant_table_isolates_tenants() {
    let test_db = TestDb::new().await;
    let db = app_db(&test_db).await;
    let a = studio(&db, "alpha").await;
    let b = studio(&db, "bravo").await;
    fill(&db, a).await;
    fill(&db, b).await;

    let problems = isolation_problems(&test_db, a, b).await;
    assert!(problems.is_empty(), "isolation problems: {problems:#?}");
}

#[tokio::test]
async fn table_without_policy_fails_the_check() {
    let test_db = TestDb::new().await;
    let db = app_db(&test_db).await;
    let a = studio(&db, "alpha").await;
    let b = studio(&db, "bravo").await;
    fill(&db, a).await;
    fill(&db, b).await;

    let mut admin = PgConnection::connect(&test_db.admin_url())
        .await
        .expect("admin connection");
    for statement in [
        "CREATE TABLE leaky_notes (id uuid PRIMARY KEY, tenant_id uuid NOT NULL, body text)",
        "GRANT SELECT, INSERT ON leaky_notes TO proofsheet_app",
    ] {
        sqlx::query(statement)
            .execute(&mut admin)
            .await
            .expect("create leaky table");
    }
    sqlx::query("INSERT INTO leaky_notes VALUES (gen_random_uuid(), $1, 'secret')")
        .bind(b.0)
        .execute(&mut admin)
        .await
        .expect("seed leaky table");

    let problems = isolation_problems(&test_db, a, b).await;
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("leaky_notes: tenant A sees")),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("leaky_notes: tenant A inserted")),
        "{problems:#?}"
    );
    assert_eq!(problems.len(), 2, "only the new table fails: {problems:#?}");
}

#[tokio::test]
async fn tenants_table_shows_only_own_studio() {
    let test_db = TestDb::new().await;
    let db = app_db(&test_db).await;
    let a = studio(&db, "alpha").await;
    studio(&db, "bravo").await;

    let mut tx = db.tenant(a).await.expect("tenant tx");
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM tenants")
        .fetch_all(raw(&mut tx))
        .await
        .expect("read tenants");
    assert_eq!(ids, vec![a.0]);
}

#[tokio::test]
async fn no_tenant_set_sees_nothing() {
    let test_db = TestDb::new().await;
    let db = app_db(&test_db).await;
    let a = studio(&db, "alpha").await;
    fill(&db, a).await;

    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM projects")
        .fetch_one(db.pool())
        .await
        .expect("count without tenant");
    assert_eq!(count, 0);
}

#[tokio::test]
async fn interleaved_tenants_on_small_pool_never_mix() {
    let test_db = TestDb::new().await;
    let db = Db::connect(&test_db.app_url(), 2)
        .await
        .expect("pool of two");
    let a = studio(&db, "alpha").await;
    let b = studio(&db, "bravo").await;
    fill(&db, a).await;
    fill(&db, b).await;

    let mut tasks = Vec::new();
    for i in 0..1000 {
        let db = db.clone();
        let tenant = if i % 2 == 0 { a } else { b };
        tasks.push(tokio::spawn(async move {
            let mut tx = db.tenant(tenant).await.expect("tenant tx");
            let rows = sqlx::query("SELECT tenant_id FROM projects")
                .fetch_all(raw(&mut tx))
                .await
                .expect("list projects");
            rows.iter()
                .all(|row| row.get::<uuid::Uuid, _>(0) == tenant.0)
                && rows.len() == 1
        }));
    }
    for task in tasks {
        assert!(
            task.await.expect("task"),
            "a request saw no rows or another tenant's rows"
        );
    }
}

#[tokio::test]
async fn service_refuses_superuser_role() {
    let test_db = TestDb::new().await;
    let owner = Db::connect(&test_db.admin_url(), 1)
        .await
        .expect("connect as owner");
    let err = owner.check_role().await.err().map(|e| e.to_string());
    assert!(
        err.as_deref().is_some_and(|e| e.contains("superuser")),
        "{err:?}"
    );

    let app = app_db(&test_db).await;
    assert!(app.check_role().await.is_ok());
}

#[tokio::test]
async fn responses_cannot_be_rewritten() {
    let test_db = TestDb::new().await;
    let db = app_db(&test_db).await;
    let a = studio(&db, "alpha").await;
    fill(&db, a).await;

    let mut tx = db.tenant(a).await.expect("tenant tx");
    let updated = sqlx::query("UPDATE responses SET text = 'rewritten'")
        .execute(raw(&mut tx))
        .await;
    assert!(
        updated.is_err(),
        "the app role must not be able to change history"
    );
}
