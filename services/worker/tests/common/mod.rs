//! Shared set-up for the worker's integration tests: a database of its own,
//! a Redis namespace of its own, a media folder, and an SMTP sink.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mail_parser::MessageParser;
use proofsheet_config::Config;
use proofsheet_domain::db::photos::{self, Photo};
use proofsheet_domain::db::{Db, invoices, projects, tenants};
use proofsheet_domain::{InvoiceId, PhotoId, ProjectId, TenantId};
use proofsheet_jobs::Queues;
use proofsheet_mail::Mailer;
use proofsheet_media::{LocalDiskStore, MediaStore, PhotoObject, photo_key};
use proofsheet_testkit::db::{TestDb, queue_namespace};
use proofsheet_testkit::smtp::{ReceivedMail, SmtpSink};
use proofsheet_worker::JobContext;
use tempfile::TempDir;
use url::Url;

pub const SENDER: &str = "studios@proofsheet.test";
pub const PORTAL_BASE: &str = "https://portal.proofsheet.test";
pub const WAIT: Duration = Duration::from_secs(20);

/// Reads a file from `tests/fixtures`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Everything one test needs. Dropping it drops the database and the SMTP
/// sink, and [`Harness::finish`] also deletes the test's Redis keys.
pub struct Harness {
    pub test_db: TestDb,
    pub db: Db,
    pub namespace: String,
    pub media: TempDir,
    pub sink: SmtpSink,
    pub config: Config,
    pub ctx: JobContext,
}

impl Harness {
    /// Sets everything up with the default overdue schedule.
    pub async fn start() -> Harness {
        Harness::with_schedule("0 * * * * *").await
    }

    /// Sets everything up with `schedule` as `OVERDUE_SCHEDULE`.
    pub async fn with_schedule(schedule: &str) -> Harness {
        let test_db = TestDb::new().await;
        let namespace = queue_namespace();
        let media = TempDir::new().expect("media folder");
        let sink = SmtpSink::start().await;
        let config = test_config(&test_db, &namespace, media.path(), &sink.url(), schedule);
        let db = Db::connect(&config.database_url, 8)
            .await
            .expect("connect as the app role");
        let ctx = job_context(&config, db.clone()).await;
        Harness {
            test_db,
            db,
            namespace,
            media,
            sink,
            config,
            ctx,
        }
    }

    /// Returns a second job context on the same database, queues and sink,
    /// as a second worker process would have.
    pub async fn second_context(&self) -> JobContext {
        let db = Db::connect(&self.config.database_url, 8)
            .await
            .expect("connect as the app role");
        job_context(&self.config, db).await
    }

    /// Creates a studio in `time_zone` and returns its id.
    pub async fn studio(&self, name: &str, time_zone: &str) -> TenantId {
        let owner = format!("owner@{}.test", name.to_lowercase().replace(' ', "-"));
        let new = tenants::NewStudio::parse(name, &owner, "long enough password", time_zone)
            .expect("valid studio");
        tenants::sign_up(&self.db, new)
            .await
            .expect("sign up")
            .tenant_id
    }

    /// Creates a project for Anna Schmidt and returns it.
    pub async fn project(&self, tenant: TenantId) -> projects::Project {
        let mut tx = self.db.tenant(tenant).await.expect("tenant tx");
        let new = projects::NewProject::parse(
            "Wedding in the park",
            "Anna Schmidt",
            "anna@client.test",
            "2026-06-01",
        )
        .expect("valid project");
        let project = projects::create(&mut tx, new).await.expect("project");
        tx.commit().await.expect("commit");
        project
    }

    /// Stores `bytes` as a photo's original and records the photo.
    pub async fn upload(&self, tenant: TenantId, project: ProjectId, bytes: Vec<u8>) -> PhotoId {
        let photo = PhotoId::new();
        let key = photo_key(tenant, project, photo, PhotoObject::Original);
        let size = i64::try_from(bytes.len()).expect("small file");
        self.ctx
            .store
            .put(&key, Bytes::from(bytes))
            .await
            .expect("store original");
        let mut tx = self.db.tenant(tenant).await.expect("tenant tx");
        photos::insert(&mut tx, photo, project, "upload.jpg", size)
            .await
            .expect("insert photo");
        tx.commit().await.expect("commit");
        photo
    }

    /// Loads a photo.
    pub async fn photo(&self, tenant: TenantId, photo: PhotoId) -> Photo {
        let mut tx = self.db.tenant(tenant).await.expect("tenant tx");
        photos::get(&mut tx, photo).await.expect("photo")
    }

    /// Returns whether the store has the object of a photo.
    pub async fn has_object(
        &self,
        tenant: TenantId,
        project: ProjectId,
        photo: PhotoId,
        object: PhotoObject,
    ) -> bool {
        let key = photo_key(tenant, project, photo, object);
        self.ctx.store.get(&key).await.is_ok()
    }

    /// Adds a deposit invoice of €450.00 due on `due_date` (YYYY-MM-DD).
    pub async fn invoice(&self, tenant: TenantId, project: ProjectId, due_date: &str) -> InvoiceId {
        let mut tx = self.db.tenant(tenant).await.expect("tenant tx");
        let input = invoices::InvoiceInput::parse("deposit", 45_000, "EUR", due_date)
            .expect("valid invoice");
        let invoice = invoices::upsert(&mut tx, project, input)
            .await
            .expect("invoice");
        tx.commit().await.expect("commit");
        invoice.id
    }

    /// Returns the status stored for an invoice: unpaid, overdue or paid.
    pub async fn invoice_status(&self, tenant: TenantId, invoice: InvoiceId) -> String {
        let mut tx = self.db.tenant(tenant).await.expect("tenant tx");
        sqlx::query_scalar("SELECT status FROM invoices WHERE id = $1")
            .bind(invoice)
            .fetch_one(tx.as_mut_connection())
            .await
            .expect("invoice status")
    }

    /// Waits for the next message that the SMTP sink accepts.
    pub async fn next_mail(&self) -> ReceivedMail {
        self.sink
            .next_message(WAIT)
            .await
            .expect("the SMTP sink received a message in time")
    }

    /// Asserts that no further message arrives within `quiet`.
    pub async fn assert_no_more_mail(&self, quiet: Duration) {
        if let Some(extra) = self.sink.next_message(quiet).await {
            panic!(
                "unexpected extra email to {:?}:\n{}",
                extra.recipients,
                String::from_utf8_lossy(&extra.raw)
            );
        }
    }

    /// Deletes every Redis key of this test's namespace, and its queues from
    /// the list that apalis keeps of all queues.
    pub async fn finish(self) {
        let mut connection = self.ctx.queues.connection();
        let _: Result<(), _> = redis::cmd("ZREM")
            .arg("core:apalis:queues:list")
            .arg(format!("{}:thumbnails:workers", self.namespace))
            .arg(format!("{}:emails:workers", self.namespace))
            .query_async(&mut connection)
            .await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.namespace))
            .query_async(&mut connection)
            .await
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<(), _> = redis::cmd("DEL")
                .arg(keys)
                .query_async(&mut connection)
                .await;
        }
    }
}

/// Builds the configuration that a worker process of this test would read.
fn test_config(
    test_db: &TestDb,
    namespace: &str,
    media: &Path,
    smtp_url: &str,
    schedule: &str,
) -> Config {
    let vars: HashMap<&str, String> = HashMap::from([
        ("DATABASE_URL", test_db.app_url()),
        ("DATABASE_ADMIN_URL", test_db.admin_url()),
        ("REDIS_URL", redis_url()),
        ("QUEUE_NAMESPACE", namespace.to_owned()),
        ("MEDIA_DIR", media.display().to_string()),
        ("OUTBOX_DIR", media.join("outbox").display().to_string()),
        ("SMTP_URL", smtp_url.to_owned()),
        ("MAIL_FROM", SENDER.to_owned()),
        ("PUBLIC_PORTAL_URL", PORTAL_BASE.to_owned()),
        ("WORKER_ADMIN_ADDR", "127.0.0.1:0".to_owned()),
        ("OVERDUE_SCHEDULE", schedule.to_owned()),
        ("DATABASE_MAX_CONNECTIONS", "8".to_owned()),
    ]);
    Config::from_lookup(move |name| vars.get(name).cloned()).expect("valid test configuration")
}

async fn job_context(config: &Config, db: Db) -> JobContext {
    let queues = Queues::connect(&config.redis_url, &config.queue_namespace)
        .await
        .expect("Redis is reachable");
    let store: Arc<dyn MediaStore> = Arc::new(LocalDiskStore::new(config.media_dir.clone()));
    let smtp_url = config.smtp_url.clone().expect("tests set SMTP_URL");
    let mailer = Mailer::smtp(&smtp_url).expect("mailer for the sink");
    JobContext::new(db, queues, store, mailer, Arc::new(config.clone()))
}

/// A delivered message, parsed.
pub struct ParsedMail {
    pub recipients: Vec<String>,
    pub from_name: Option<String>,
    pub from_address: Option<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Parses a delivered message with an independent MIME parser.
pub fn parse_mail(mail: &ReceivedMail) -> ParsedMail {
    let message = MessageParser::default()
        .parse(&mail.raw)
        .expect("a parseable message");
    let from = message.from().and_then(|a| a.first());
    ParsedMail {
        recipients: mail.recipients.clone(),
        from_name: from.and_then(|a| a.name()).map(str::to_owned),
        from_address: from.and_then(|a| a.address()).map(str::to_owned),
        subject: message.subject().unwrap_or_default().to_owned(),
        text: message
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default(),
        html: message
            .body_html(0)
            .map(|t| t.into_owned())
            .unwrap_or_default(),
    }
}

/// Returns the portal URL of a token, as emails must contain it.
pub fn portal_url(token: &str) -> String {
    let base = Url::parse(PORTAL_BASE).expect("valid base");
    format!("{}p/{token}", base.as_str())
}

/// Polls `check` every 100 ms until it returns true or [`WAIT`] passes.
pub async fn eventually<F, Fut>(condition: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out after {WAIT:?} waiting until {condition}");
}
