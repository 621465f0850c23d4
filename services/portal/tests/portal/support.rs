//! A studio with one project, its portal router, and request helpers.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use proofsheet_domain::db::photos::{self, ReadySizes};
use proofsheet_domain::db::{Db, TenantTx, invoices, projects, tenants};
use proofsheet_domain::{PhotoId, ProjectId, Stage, TenantId};
use proofsheet_jobs::Queues;
use proofsheet_media::{LocalDiskStore, MediaStore, PhotoObject};
use proofsheet_portal::{AppState, router};
use proofsheet_testkit::db::{TestDb, queue_namespace};
use tower::ServiceExt;

/// The name of the studio every test signs up.
pub const STUDIO: &str = "Lumen Studio";

/// Redis for the tests: `TEST_REDIS_URL` when set, else the local server.
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// One studio with one project, and a portal router over them.
pub struct Portal {
    pub router: Router,
    pub state: AppState,
    pub db: Db,
    pub queues: Queues,
    pub tenant: TenantId,
    pub project: ProjectId,
    pub token: String,
    pub media: Arc<LocalDiskStore>,
    _media_dir: tempfile::TempDir,
    _test_db: TestDb,
}

impl Portal {
    pub async fn new() -> Portal {
        let test_db = TestDb::new().await;
        let db = Db::connect(&test_db.app_url(), 4)
            .await
            .expect("connect as the app role");
        let tenant = sign_up(&db, STUDIO).await;
        let project = create_project(&db, tenant, "Ana & Ben wedding", "Ana Silva").await;

        let namespace = queue_namespace();
        let queues = Queues::connect(&redis_url(), &namespace)
            .await
            .expect("connect to Redis");
        let pubsub = redis::Client::open(redis_url()).expect("valid Redis URL");
        let media_dir = tempfile::tempdir().expect("temporary media folder");
        let media = Arc::new(LocalDiskStore::new(media_dir.path().to_path_buf()));
        let state =
            AppState::new(db.clone(), media.clone(), queues.clone(), pubsub).expect("portal state");

        Portal {
            router: router(state.clone()),
            state,
            db,
            queues,
            tenant,
            project: project.0,
            token: project.1,
            media,
            _media_dir: media_dir,
            _test_db: test_db,
        }
    }

    pub async fn tx(&self) -> TenantTx {
        self.db
            .tenant(self.tenant)
            .await
            .expect("tenant transaction")
    }

    pub fn page(&self) -> String {
        format!("/p/{}", self.token)
    }

    /// Moves the project to `stage` as the studio would.
    pub async fn move_to(&self, stage: Stage) {
        let mut tx = self.tx().await;
        projects::move_stage(&mut tx, self.project, stage)
            .await
            .expect("move stage");
        tx.commit().await.expect("commit");
    }

    /// Adds an invoice; `paid` marks it paid by hand.
    pub async fn add_invoice(&self, kind: &str, amount_minor: i64, due: &str, paid: bool) {
        let mut tx = self.tx().await;
        let input =
            invoices::InvoiceInput::parse(kind, amount_minor, "EUR", due).expect("valid invoice");
        let invoice = invoices::upsert(&mut tx, self.project, input)
            .await
            .expect("upsert invoice");
        if paid {
            invoices::mark_paid(&mut tx, self.project, invoice.id)
                .await
                .expect("mark paid");
        }
        tx.commit().await.expect("commit");
    }

    /// Adds a photo with both renditions stored, marked ready.
    pub async fn add_ready_photo(&self) -> PhotoId {
        add_photo(
            &self.db,
            self.tenant,
            self.project,
            &*self.media,
            PhotoState::Ready,
        )
        .await
    }

    /// Adds a photo whose thumbnails are still being made.
    pub async fn add_processing_photo(&self) -> PhotoId {
        add_photo(
            &self.db,
            self.tenant,
            self.project,
            &*self.media,
            PhotoState::Processing,
        )
        .await
    }

    /// Adds a photo whose thumbnails could not be made.
    pub async fn add_failed_photo(&self) -> PhotoId {
        add_photo(
            &self.db,
            self.tenant,
            self.project,
            &*self.media,
            PhotoState::Failed,
        )
        .await
    }

    pub async fn favourites(&self) -> Vec<PhotoId> {
        let mut tx = self.tx().await;
        projects::favourites(&mut tx, self.project)
            .await
            .expect("favourites")
    }

    pub async fn responses(&self) -> Vec<projects::Response> {
        let mut tx = self.tx().await;
        projects::responses(&mut tx, self.project)
            .await
            .expect("responses")
    }

    pub async fn stage(&self) -> Stage {
        let mut tx = self.tx().await;
        projects::get(&mut tx, self.project)
            .await
            .expect("project")
            .stage
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        self.send(Method::GET, path, None, false).await
    }

    /// Sends a GET with one extra request header.
    pub async fn get_with_header(
        &self,
        path: &str,
        name: header::HeaderName,
        value: &str,
    ) -> TestResponse {
        let request = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header(name, value)
            .body(Body::empty())
            .expect("valid request");
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router never fails");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 10 * 1024 * 1024)
            .await
            .expect("read body");
        TestResponse {
            status,
            headers,
            body,
        }
    }

    pub async fn get_json(&self, path: &str) -> TestResponse {
        self.send(Method::GET, path, None, true).await
    }

    /// Posts a form-urlencoded `body`, asking for JSON when `json` is set.
    pub async fn post_form(&self, path: &str, body: &str, json: bool) -> TestResponse {
        self.send(Method::POST, path, Some(body), json).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        form: Option<&str>,
        json: bool,
    ) -> TestResponse {
        let accept = if json {
            "application/json"
        } else {
            "text/html,application/xhtml+xml,*/*;q=0.8"
        };
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::ACCEPT, accept);
        if form.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let body = form
            .map(|form| Body::from(form.to_owned()))
            .unwrap_or_default();
        let request = request.body(body).expect("valid request");
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router never fails");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 10 * 1024 * 1024)
            .await
            .expect("read body");
        TestResponse {
            status,
            headers,
            body,
        }
    }
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(&name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }
}

pub async fn sign_up(db: &Db, name: &str) -> TenantId {
    let email = format!("{}@example.com", name.to_lowercase().replace(' ', "-"));
    let new = tenants::NewStudio::parse(name, &email, "long enough password", "Europe/Berlin")
        .expect("valid studio");
    tenants::sign_up(db, new).await.expect("sign up").tenant_id
}

/// Creates a project and returns its id and portal token.
pub async fn create_project(
    db: &Db,
    tenant: TenantId,
    title: &str,
    client: &str,
) -> (ProjectId, String) {
    let mut tx = db.tenant(tenant).await.expect("tenant transaction");
    let new = projects::NewProject::parse(title, client, "client@example.com", "2026-06-01")
        .expect("valid project");
    let project = projects::create(&mut tx, new)
        .await
        .expect("create project");
    tx.commit().await.expect("commit");
    (project.id, project.portal_token.expose().to_owned())
}

pub enum PhotoState {
    Processing,
    Ready,
    Failed,
}

/// Sizes of every ready photo that [`add_photo`] adds.
pub const READY_SIZES: ReadySizes = ReadySizes {
    width: 3000,
    height: 2000,
    grid_width: 600,
    grid_height: 400,
};

/// Bytes stored as a photo's rendition: the portal serves them as they are.
pub fn rendition_bytes(photo: PhotoId, name: &str) -> Vec<u8> {
    format!("\u{ff}jpeg {name} of {photo}").into_bytes()
}

pub async fn add_photo(
    db: &Db,
    tenant: TenantId,
    project: ProjectId,
    media: &dyn MediaStore,
    state: PhotoState,
) -> PhotoId {
    let id = PhotoId::new();
    let mut tx = db.tenant(tenant).await.expect("tenant transaction");
    photos::insert(&mut tx, id, project, "IMG_0001.jpg", 1000)
        .await
        .expect("insert photo");
    match state {
        PhotoState::Processing => {}
        PhotoState::Ready => {
            for object in [
                PhotoObject::Grid,
                PhotoObject::Grid2x,
                PhotoObject::Lightbox,
                PhotoObject::Lightbox2x,
            ] {
                let name = object.file_name();
                let key = proofsheet_media::photo_key(tenant, project, id, object);
                media
                    .put(&key, Bytes::from(rendition_bytes(id, name)))
                    .await
                    .expect("store rendition");
            }
            photos::mark_ready(&mut tx, id, READY_SIZES)
                .await
                .expect("mark ready");
        }
        PhotoState::Failed => {
            photos::mark_failed(&mut tx, id, "not an image")
                .await
                .expect("mark failed");
        }
    }
    tx.commit().await.expect("commit");
    id
}
