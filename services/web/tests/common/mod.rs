//! Starts the web service on a random port against a database and a Redis
//! namespace of the test's own.

#![allow(dead_code)]

use std::path::PathBuf;

use proofsheet_config::Config;
use proofsheet_testkit::db::{TestDb, queue_namespace};
use proofsheet_web::AppState;
use serde_json::{Value, json};

pub struct TestApp {
    pub base: String,
    pub state: AppState,
    pub media_dir: tempfile::TempDir,
    pub db: TestDb,
}

pub async fn spawn() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let db = TestDb::new().await;
    let media_dir = tempfile::tempdir().expect("temp dir");
    let namespace = queue_namespace();
    let database_url = db.app_url();
    let media = media_dir.path().to_string_lossy().into_owned();
    let mut config = Config::from_lookup(|name| match name {
        "DATABASE_URL" => Some(database_url.clone()),
        "QUEUE_NAMESPACE" => Some(namespace.clone()),
        "MEDIA_DIR" => Some(media.clone()),
        _ => None,
    })
    .expect("test config");
    adjust(&mut config);

    let state = AppState::connect(config).await.expect("connect app state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("local addr"));
    let router = proofsheet_web::router(state.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    TestApp {
        base,
        state,
        media_dir,
        db,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Signs up a studio through the API and returns its API key.
    pub async fn sign_up(&self, email: &str) -> String {
        let response = reqwest::Client::new()
            .post(self.url("/api/v1/signup"))
            .json(&json!({
                "studio_name": "North Light", "email": email,
                "password": "a long enough password", "time_zone": "Europe/Berlin",
            }))
            .send()
            .await
            .expect("sign-up request");
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.expect("sign-up body");
        body["api_key"].as_str().expect("api key").to_owned()
    }

    /// Creates a project through the API and returns its JSON.
    pub async fn create_project(&self, key: &str) -> Value {
        let response = reqwest::Client::new()
            .post(self.url("/api/v1/projects"))
            .bearer_auth(key)
            .json(&json!({
                "title": "Harbour wedding", "client_name": "Müller, Jürgen",
                "client_email": "jurgen@example.com", "shoot_date": "2026-06-20",
            }))
            .send()
            .await
            .expect("create project");
        assert_eq!(response.status(), 201);
        response.json().await.expect("project body")
    }

    /// Counts files below the media folder.
    pub fn media_files(&self) -> usize {
        count_files(self.media_dir.path().to_path_buf())
    }
}

fn count_files(dir: PathBuf) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            if e.path().is_dir() {
                count_files(e.path())
            } else {
                1
            }
        })
        .sum()
}

/// A real camera JPEG with EXIF orientation 6, from the demo photos.
pub fn orientation_6_jpeg() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/demo/photos/landscape-orientation-6.jpg"
    ))
    .expect("demo photo")
}

/// A real camera JPEG with EXIF orientation 8, from the demo photos.
pub fn orientation_8_jpeg() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/demo/photos/landscape-orientation-8.jpg"
    ))
    .expect("demo photo")
}

/// Builds a browser-like client that keeps cookies and does not follow
/// redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Reads the CSRF token out of a page's first form.
pub fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html
        .find(marker)
        .map(|i| i + marker.len())
        .expect("page has a CSRF field");
    html[start..].split('"').next().expect("token").to_owned()
}

/// Requests a page and returns its status and body.
pub async fn page(client: &reqwest::Client, url: &str) -> (u16, String) {
    let response = client.get(url).send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// Posts the log-in form for `email` with the password [`TestApp::sign_up`]
/// uses, and checks that the session starts.
pub async fn log_in(app: &TestApp, client: &reqwest::Client, email: &str) {
    let token = csrf_of(&page(client, &app.url("/login")).await.1);
    let response = client
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", email),
            ("password", "a long enough password"),
        ])
        .send()
        .await
        .expect("log in");
    assert_eq!(response.status(), 303);
}

/// Runs one statement on the test's database as its owner, which row-level
/// security does not filter, such as setting a studio's plan state.
pub async fn as_owner(app: &TestApp, statement: &'static str) {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(&app.db.admin_url())
        .await
        .expect("admin connection");
    sqlx::query(statement)
        .execute(&mut admin)
        .await
        .expect("owner statement");
}
