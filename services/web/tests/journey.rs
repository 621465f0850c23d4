//! The main journey end to end, over HTTP, against the three real service
//! binaries, real PostgreSQL and Redis, and a real SMTP server started here:
//! a studio signs up, uploads real camera photos, the worker makes rotated
//! thumbnails, the client hearts a photo, asks for changes, approves, and the
//! studio sees it all and resends the portal link by email.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proofsheet_testkit::db::{TestDb, queue_namespace};
use proofsheet_testkit::smtp::SmtpSink;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

/// The service binaries sit next to the test's own folder in `target/debug`.
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/debug");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing; build the services first with 'cargo build --workspace --bins' (make test does)",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Child processes that are killed when the test ends, pass or fail.
struct Services(Vec<Child>);

impl Drop for Services {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn wait_healthy(port: u16, name: &str, services: &mut Services) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let url = format!("http://127.0.0.1:{port}/healthz");
    while Instant::now() < deadline {
        if let Ok(response) = reqwest::get(&url).await
            && response.status() == 200
        {
            return;
        }
        for child in &mut services.0 {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("a service exited early with {status} while waiting for {name}");
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{name} did not become healthy on port {port}");
}

fn jpeg(name: &str) -> Part {
    let path = format!("{}/demo/photos/{name}", env!("CARGO_MANIFEST_DIR"));
    Part::bytes(std::fs::read(path).expect("demo photo"))
        .file_name(name.to_owned())
        .mime_str("image/jpeg")
        .expect("mime")
}

#[tokio::test]
async fn studio_and_client_complete_the_journey() {
    let db = TestDb::new().await;
    let smtp = SmtpSink::start().await;
    let data = tempfile::tempdir().expect("temp dir");
    let namespace = queue_namespace();
    let (web, portal) = (free_port(), free_port());
    let (web_admin, portal_admin, worker_admin) = (free_port(), free_port(), free_port());
    let env: Vec<(&str, String)> = vec![
        ("DATABASE_URL", db.app_url()),
        ("QUEUE_NAMESPACE", namespace),
        ("MEDIA_DIR", data.path().join("media").display().to_string()),
        (
            "OUTBOX_DIR",
            data.path().join("outbox").display().to_string(),
        ),
        ("SMTP_URL", smtp.url()),
        ("WEB_ADDR", format!("127.0.0.1:{web}")),
        ("PORTAL_ADDR", format!("127.0.0.1:{portal}")),
        ("WEB_ADMIN_ADDR", format!("127.0.0.1:{web_admin}")),
        ("PORTAL_ADMIN_ADDR", format!("127.0.0.1:{portal_admin}")),
        ("WORKER_ADMIN_ADDR", format!("127.0.0.1:{worker_admin}")),
        ("PUBLIC_WEB_URL", format!("http://127.0.0.1:{web}")),
        ("PUBLIC_PORTAL_URL", format!("http://127.0.0.1:{portal}")),
        ("RUST_LOG", "warn".to_owned()),
    ];
    let mut services = Services(Vec::new());
    for name in ["proofsheet-web", "proofsheet-portal", "proofsheet-worker"] {
        let child = Command::new(binary(name))
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name} failed: {e}"));
        services.0.push(child);
    }
    wait_healthy(web_admin, "web", &mut services).await;
    wait_healthy(portal_admin, "portal", &mut services).await;
    wait_healthy(worker_admin, "worker", &mut services).await;

    let api = |path: &str| format!("http://127.0.0.1:{web}/api/v1{path}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");

    // The studio signs up and creates a project.
    let signed_up: Value = http
        .post(api("/signup"))
        .json(&json!({"studio_name": "Lumen & Grain", "email": "owner@example.com", "password": "a long enough password", "time_zone": "Europe/London"}))
        .send()
        .await
        .expect("sign up")
        .json()
        .await
        .expect("sign-up body");
    let key = signed_up["api_key"].as_str().expect("api key").to_owned();
    let project: Value = http
        .post(api("/projects"))
        .bearer_auth(&key)
        .json(&json!({"title": "Harbour wedding", "client_name": "Ana Souza", "client_email": "ana@example.com", "shoot_date": "2026-06-20"}))
        .send()
        .await
        .expect("create project")
        .json()
        .await
        .expect("project body");
    let id = project["id"].as_str().expect("project id").to_owned();
    let portal_url = project["portal_url"]
        .as_str()
        .expect("portal url")
        .to_owned();

    // Two real camera JPEGs stored sideways, with EXIF orientation 6 and 8.
    let upload = http
        .post(api(&format!("/projects/{id}/photos")))
        .bearer_auth(&key)
        .multipart(
            Form::new()
                .part("file", jpeg("landscape-orientation-6.jpg"))
                .part("file", jpeg("landscape-orientation-8.jpg")),
        )
        .send()
        .await
        .expect("upload");
    assert_eq!(upload.status(), 202);

    // Invoices, then the worker's thumbnails.
    for (kind, amount, due) in [
        ("deposit", 50_000, "2026-05-01"),
        ("final", 145_000, "2099-12-31"),
    ] {
        let saved = http
            .post(api(&format!("/projects/{id}/invoices")))
            .bearer_auth(&key)
            .json(
                &json!({"kind": kind, "amount_minor": amount, "currency": "EUR", "due_date": due}),
            )
            .send()
            .await
            .expect("invoice");
        assert_eq!(saved.status(), 201);
    }
    let detail_url = api(&format!("/projects/{id}"));
    let deadline = Instant::now() + Duration::from_secs(90);
    let detail = loop {
        let detail: Value = http
            .get(&detail_url)
            .bearer_auth(&key)
            .send()
            .await
            .expect("detail")
            .json()
            .await
            .expect("body");
        let photos = detail["photos"].as_array().cloned().unwrap_or_default();
        if photos.len() == 2 && photos.iter().all(|p| p["status"] != "processing") {
            break detail;
        }
        assert!(
            Instant::now() < deadline,
            "thumbnails were not ready in time: {detail}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let photos = detail["photos"].as_array().expect("photos");
    for photo in photos {
        assert_eq!(photo["status"], "ready", "{photo}");
        // Stored 1200×1800; correctly oriented they are landscape.
        assert_eq!(photo["width"], 1800, "{photo}");
        assert_eq!(photo["height"], 1200, "{photo}");
    }
    let tenant = signed_up["tenant_id"].as_str().expect("tenant id");
    for photo in photos {
        let photo_id = photo["id"].as_str().expect("photo id");
        let grid = data.path().join(format!(
            "media/tenants/{tenant}/projects/{id}/photos/{photo_id}/grid.jpg"
        ));
        let (w, h) = image::image_dimensions(&grid).expect("grid thumbnail readable");
        assert_eq!(
            (w, h),
            (480, 320),
            "the grid thumbnail of {photo_id} is rotated upright"
        );
    }
    let first_photo = photos[0]["id"].as_str().expect("photo id").to_owned();

    let moved = http
        .put(api(&format!("/projects/{id}/stage")))
        .bearer_auth(&key)
        .json(&json!({"stage": "photos_ready"}))
        .send()
        .await
        .expect("move stage");
    assert_eq!(moved.status(), 200);

    // The client opens the portal.
    let page = http
        .get(&portal_url)
        .send()
        .await
        .expect("portal")
        .text()
        .await
        .expect("portal body");
    assert!(
        page.contains("Lumen &amp; Grain"),
        "studio name on the portal"
    );
    assert!(
        page.contains("aria-current=\"step\""),
        "a current stage is marked"
    );
    let current = page
        .split("aria-current=\"step\"")
        .nth(1)
        .unwrap_or_default();
    assert!(
        current.trim_start().starts_with('>') && current.contains("Photos ready"),
        "Photos ready is the current stage"
    );
    assert!(
        page.contains("€500.00") && page.contains("€1,450.00"),
        "both invoices are shown"
    );
    assert!(
        page.contains("Overdue"),
        "the deposit due in May is overdue"
    );
    for photo in photos {
        assert!(
            page.contains(photo["id"].as_str().expect("photo id")),
            "photo {photo} is in the gallery"
        );
    }

    // A heart, then "Some changes", then "Looks great!".
    let heart = http
        .post(format!("{portal_url}/favourites/{first_photo}"))
        .send()
        .await
        .expect("heart");
    assert_eq!(heart.status(), 303);
    let changes = http
        .post(format!("{portal_url}/responses"))
        .form(&[
            ("kind", "changes"),
            ("text", "Could the second one be a little warmer?"),
        ])
        .send()
        .await
        .expect("changes");
    assert_eq!(changes.status(), 303);
    let approve = http
        .post(format!("{portal_url}/responses"))
        .form(&[("kind", "approve"), ("text", "")])
        .send()
        .await
        .expect("approve");
    assert_eq!(approve.status(), 303);

    // The studio sees the outcome.
    let detail: Value = http
        .get(&detail_url)
        .bearer_auth(&key)
        .send()
        .await
        .expect("detail")
        .json()
        .await
        .expect("body");
    assert_eq!(detail["stage"], "approved");
    assert_eq!(detail["favourites"], json!([first_photo]));
    let responses = detail["responses"].as_array().expect("responses");
    assert_eq!(responses.len(), 2);
    assert_eq!(responses[0]["kind"], "changes");
    assert_eq!(
        responses[0]["text"],
        "Could the second one be a little warmer?"
    );
    assert_eq!(responses[1]["kind"], "approve");

    // The link goes out by email, the same link in both parts.
    let resend = http
        .post(api(&format!("/projects/{id}/resend-link")))
        .bearer_auth(&key)
        .send()
        .await
        .expect("resend");
    assert_eq!(resend.status(), 202);
    let mail = smtp
        .next_message(Duration::from_secs(30))
        .await
        .expect("the link email arrives");
    assert_eq!(mail.recipients, vec!["ana@example.com".to_owned()]);
    let parsed = mail_parser::MessageParser::default()
        .parse(&mail.raw)
        .expect("parse email");
    let text = parsed.body_text(0).expect("plain-text part");
    let html = parsed.body_html(0).expect("HTML part");
    assert!(text.contains(&portal_url), "the text part has the link");
    assert!(html.contains(&portal_url), "the HTML part has the link");
    let from = parsed
        .from()
        .and_then(|f| f.first())
        .and_then(|a| a.name())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(from, "Lumen & Grain");
}
