//! The studio pages: sign-up, log-in, CSRF, projects and password reset.

mod common;

use common::{browser, csrf_of};
use proofsheet_domain::db::auth;

async fn page(client: &reqwest::Client, url: &str) -> String {
    client
        .get(url)
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body")
}

async fn sign_up(app: &common::TestApp, client: &reqwest::Client, email: &str) {
    let token = csrf_of(&page(client, &app.url("/signup")).await);
    let response = client
        .post(app.url("/signup"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("studio_name", "North Light"),
            ("email", email),
            ("password", "a long enough password"),
            ("time_zone", "Europe/Berlin"),
        ])
        .send()
        .await
        .expect("sign-up");
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/projects");
}

#[tokio::test]
async fn signup_then_create_project() {
    let app = common::spawn().await;
    let client = browser();
    sign_up(&app, &client, "owner@example.com").await;

    let list = page(&client, &app.url("/projects")).await;
    assert!(list.contains("Free trial until"), "{list}");
    let token = csrf_of(&list);
    let created = client
        .post(app.url("/projects"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("title", "Harbour wedding"),
            ("client_name", "Ana"),
            ("client_email", "ana@example.com"),
            ("shoot_date", "2026-06-20"),
        ])
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 303);
    let location = created.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let detail = page(&client, &app.url(&location)).await;
    assert!(detail.contains("Harbour wedding"));
    assert!(detail.contains("pp_"), "the portal link is shown at once");
    assert!(detail.contains("Booked"));
    // The upload form names every accepted format and gives the script the
    // per-file limit in bytes, so an oversized file is refused before sending.
    assert!(detail.contains("image/webp,image/tiff"), "{detail}");
    assert!(detail.contains("JPEG, PNG, WebP or TIFF"), "{detail}");
    let limit = format!("data-max-bytes=\"{}\"", app.state.config.max_upload_bytes);
    assert!(detail.contains(&limit), "{detail}");
}

#[tokio::test]
async fn forged_csrf_token_is_rejected() {
    let app = common::spawn().await;
    let client = browser();
    sign_up(&app, &client, "owner@example.com").await;
    page(&client, &app.url("/projects")).await;

    let forged = client
        .post(app.url("/projects"))
        .form(&[
            ("csrf_token", "forged-token"),
            ("title", "Sneaky"),
            ("client_name", "Eve"),
            ("client_email", "eve@example.com"),
            ("shoot_date", "2026-06-20"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), 403);
    let body = forged.text().await.expect("body");
    assert!(body.contains("could not be verified"));

    let list = page(&client, &app.url("/projects")).await;
    assert!(!list.contains("Sneaky"), "nothing was created");
}

#[tokio::test]
async fn pages_need_a_session() {
    let app = common::spawn().await;
    let response = browser()
        .get(app.url("/projects"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/login");
}

#[tokio::test]
async fn wrong_password_is_rejected_then_login_works() {
    let app = common::spawn().await;
    sign_up(&app, &browser(), "owner@example.com").await;

    let client = browser();
    let token = csrf_of(&page(&client, &app.url("/login")).await);
    let wrong = client
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", "owner@example.com"),
            ("password", "not the password"),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(wrong.status(), 401);

    let right = client
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", "owner@example.com"),
            ("password", "a long enough password"),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(right.status(), 303);
    let list = client
        .get(app.url("/projects"))
        .send()
        .await
        .expect("projects");
    assert_eq!(list.status(), 200);

    let token = csrf_of(&list.text().await.expect("body"));
    let out = client
        .post(app.url("/logout"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), 303);
    let after = client
        .get(app.url("/projects"))
        .send()
        .await
        .expect("projects");
    assert_eq!(after.status(), 303, "the session ended");
}

#[tokio::test]
async fn password_reset_link_works_once() {
    let app = common::spawn().await;
    sign_up(&app, &browser(), "owner@example.com").await;

    let client = browser();
    let token = csrf_of(&page(&client, &app.url("/forgot-password")).await);
    let asked = client
        .post(app.url("/forgot-password"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", "owner@example.com"),
        ])
        .send()
        .await
        .expect("forgot");
    assert_eq!(asked.status(), 200);
    let unknown = client
        .post(app.url("/forgot-password"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", "nobody@example.com"),
        ])
        .send()
        .await
        .expect("forgot");
    assert_eq!(
        unknown.status(),
        200,
        "the answer does not reveal which addresses exist"
    );

    // The emailed token is only in the queued job; make one the same way.
    let (tenant, user, _) = app
        .state
        .db
        .find_login("owner@example.com")
        .await
        .expect("lookup")
        .expect("user");
    let mut tx = app.state.db.tenant(tenant).await.expect("tx");
    let reset = auth::create_password_reset(&mut tx, user)
        .await
        .expect("reset");
    tx.commit().await.expect("commit");

    let form_page = page(
        &client,
        &app.url(&format!("/reset-password?token={}", reset.expose())),
    )
    .await;
    let csrf = csrf_of(&form_page);
    let short = client
        .post(app.url("/reset-password"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("token", reset.expose()),
            ("password", "short"),
        ])
        .send()
        .await
        .expect("reset");
    assert_eq!(short.status(), 422);
    let done = client
        .post(app.url("/reset-password"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("token", reset.expose()),
            ("password", "a brand new password"),
        ])
        .send()
        .await
        .expect("reset");
    assert_eq!(done.status(), 303);
    let again = client
        .post(app.url("/reset-password"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("token", reset.expose()),
            ("password", "yet another password"),
        ])
        .send()
        .await
        .expect("reset");
    assert_eq!(again.status(), 404, "the link works once");

    let login_token = csrf_of(&page(&client, &app.url("/login")).await);
    let new_login = client
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", login_token.as_str()),
            ("email", "owner@example.com"),
            ("password", "a brand new password"),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(new_login.status(), 303);
}

#[tokio::test]
async fn page_upload_rejects_non_image() {
    let app = common::spawn().await;
    let client = browser();
    sign_up(&app, &client, "owner@example.com").await;
    let token = csrf_of(&page(&client, &app.url("/projects")).await);
    let created = client
        .post(app.url("/projects"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("title", "Portraits"),
            ("client_name", "Ana"),
            ("client_email", "ana@example.com"),
            ("shoot_date", "2026-06-20"),
        ])
        .send()
        .await
        .expect("create");
    let location = created.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();

    let form = reqwest::multipart::Form::new()
        .text("csrf_token", token.clone())
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"hello, not a photo".to_vec()).file_name("notes.jpg"),
        );
    let response = client
        .post(app.url(&format!("{location}/photos")))
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(
        response.status(),
        303,
        "a rejected upload goes back to the project page"
    );
    let shown = page(&client, &app.url(&location)).await;
    assert!(
        shown.contains("notes.jpg"),
        "the reason is shown on the project page"
    );
    assert_eq!(app.media_files(), 0);

    let forged = reqwest::multipart::Form::new()
        .text("csrf_token", "forged")
        .part(
            "file",
            reqwest::multipart::Part::bytes(common::orientation_6_jpeg()).file_name("six.jpg"),
        );
    let response = client
        .post(app.url(&format!("{location}/photos")))
        .multipart(forged)
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), 403);
    assert_eq!(
        app.media_files(),
        0,
        "nothing is stored before the CSRF check"
    );

    let good = reqwest::multipart::Form::new()
        .text("csrf_token", token)
        .part(
            "file",
            reqwest::multipart::Part::bytes(common::orientation_6_jpeg()).file_name("six.jpg"),
        );
    let response = client
        .post(app.url(&format!("{location}/photos")))
        .multipart(good)
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), 303);
    assert_eq!(app.media_files(), 1);
}

#[tokio::test]
async fn decimal_comma_amount_is_rejected_on_page() {
    let app = common::spawn().await;
    let client = browser();
    sign_up(&app, &client, "owner@example.com").await;
    let token = csrf_of(&page(&client, &app.url("/projects")).await);
    let created = client
        .post(app.url("/projects"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("title", "Portraits"),
            ("client_name", "Ana"),
            ("client_email", "ana@example.com"),
            ("shoot_date", "2026-06-20"),
        ])
        .send()
        .await
        .expect("create");
    let location = created.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();

    let saved = client
        .post(app.url(&format!("{location}/invoices")))
        .form(&[
            ("csrf_token", token.as_str()),
            ("kind", "deposit"),
            ("amount", "12,50"),
            ("currency", "EUR"),
            ("due_date", "2026-12-31"),
        ])
        .send()
        .await
        .expect("save invoice");
    assert_eq!(saved.status(), 303);
    let shown = page(&client, &app.url(&location)).await;
    assert!(shown.contains("dot for decimals"), "the reason is shown");
    assert!(!shown.contains("€1,250.00"), "nothing was saved");
    let again = page(&client, &app.url(&location)).await;
    assert!(
        !again.contains("dot for decimals"),
        "the message is shown once"
    );
}

#[tokio::test]
async fn repeated_wrong_passwords_lock_the_account() {
    let app = common::spawn().await;
    sign_up(&app, &browser(), "owner@example.com").await;

    let client = browser();
    let token = csrf_of(&page(&client, &app.url("/login")).await);
    let attempt = |password: &'static str| {
        let client = client.clone();
        let token = token.clone();
        let url = app.url("/login");
        async move {
            client
                .post(url)
                .form(&[
                    ("csrf_token", token.as_str()),
                    ("email", "owner@example.com"),
                    ("password", password),
                ])
                .send()
                .await
                .expect("login")
                .status()
        }
    };
    for _ in 0..proofsheet_web::throttle::MAX_FAILED_LOGINS {
        assert_eq!(attempt("not the password").await, 401);
    }
    assert_eq!(
        attempt("a long enough password").await,
        429,
        "even the right password waits"
    );
}
