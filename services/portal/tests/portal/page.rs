//! The portal page, its state JSON, bad links and the headers every
//! response carries.

use axum::http::{StatusCode, header};
use proofsheet_domain::Stage;
use proofsheet_domain::db::projects;

use crate::support::{Portal, STUDIO, create_project};

#[tokio::test]
async fn page_shows_studio_stage_and_invoices() {
    let portal = Portal::new().await;
    portal
        .add_invoice("deposit", 125_000, "2026-01-10", true)
        .await;
    portal
        .add_invoice("final", 250_050, "2099-12-31", false)
        .await;
    portal.move_to(Stage::Editing).await;

    let response = portal.get(&portal.page()).await;
    assert_eq!(response.status, StatusCode::OK);
    let page = response.text();
    assert!(page.contains(STUDIO), "{page}");
    assert!(page.contains("Ana &amp; Ben wedding"), "{page}");

    assert!(page.contains("stage stage-done"), "{page}");
    assert!(
        page.contains(r#"stage stage-current" aria-current="step""#),
        "{page}"
    );
    let current = page.find("stage-current").expect("a current stage");
    let editing = page[current..]
        .find("Editing")
        .expect("Editing after the marker");
    let next = page[current..]
        .find("Photos ready")
        .expect("Photos ready later");
    assert!(editing < next, "the current stage is Editing");
    assert!(
        page.contains("Current stage: <strong>Editing</strong>"),
        "{page}"
    );

    assert!(page.contains("Deposit"), "{page}");
    assert!(page.contains("€1,250.00"), "{page}");
    assert!(page.contains("Paid on "), "{page}");
    assert!(page.contains("Final invoice"), "{page}");
    assert!(page.contains("€2,500.50"), "{page}");
    assert!(page.contains("Due 31 December 2099"), "{page}");
    assert!(page.contains(">Paid<"), "{page}");
    assert!(page.contains(">Unpaid<"), "{page}");
}

#[tokio::test]
async fn invoice_past_due_shows_overdue() {
    let portal = Portal::new().await;
    portal
        .add_invoice("final", 90_000, "2020-01-01", false)
        .await;

    let page = portal.get(&portal.page()).await.text();
    assert!(page.contains(">Overdue<"), "{page}");
    assert!(page.contains("Due 1 January 2020"), "{page}");
    assert!(!page.contains(">Unpaid<"), "{page}");
}

#[tokio::test]
async fn page_before_photos_says_when_to_expect_them() {
    let portal = Portal::new().await;
    portal.add_ready_photo().await;
    portal.move_to(Stage::Editing).await;

    let page = portal.get(&portal.page()).await.text();
    assert!(page.contains("once editing is done"), "{page}");
    assert!(!page.contains("class=\"grid\""), "{page}");
    assert!(
        !page.contains("/photos/"),
        "no photo URL before photos are ready"
    );
    assert!(page.contains("Once your photos are ready"), "{page}");
    assert!(!page.contains("Looks great!"), "no response buttons yet");
}

#[tokio::test]
async fn page_shows_ready_and_processing_photos() {
    let portal = Portal::new().await;
    let ready = portal.add_ready_photo().await;
    let processing = portal.add_processing_photo().await;
    let failed = portal.add_failed_photo().await;
    portal.move_to(Stage::PhotosReady).await;

    let page = portal.get(&portal.page()).await.text();
    let token = &portal.token;
    assert!(
        page.contains(&format!("/p/{token}/photos/{ready}/grid")),
        "{page}"
    );
    assert!(
        page.contains(&format!("/p/{token}/photos/{ready}/lightbox")),
        "{page}"
    );
    assert!(
        page.contains(&format!("/p/{token}/favourites/{ready}")),
        "{page}"
    );
    assert!(
        page.contains(&format!("id=\"photo-{processing}\"")),
        "{page}"
    );
    assert!(page.contains("still being prepared"), "{page}");
    assert!(
        !page.contains(&failed.to_string()),
        "failed photos are left out"
    );
    assert!(page.contains("2 photos"), "{page}");
    assert!(page.contains("Looks great!"), "{page}");
    assert!(page.contains("Some changes"), "{page}");
}

#[tokio::test]
async fn page_escapes_names() {
    let portal = Portal::new().await;
    let (_, token) = create_project(
        &portal.db,
        portal.tenant,
        "<b>Shoot</b>",
        "<script>alert(1)</script>",
    )
    .await;

    let page = portal.get(&format!("/p/{token}")).await.text();
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;&#x2F;script&gt;"),
        "{page}"
    );
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(!page.contains("<b>Shoot"), "{page}");
}

#[tokio::test]
async fn state_json_has_stage_invoices_and_counts() {
    let portal = Portal::new().await;
    portal
        .add_invoice("deposit", 125_000, "2026-01-10", true)
        .await;
    portal.add_ready_photo().await;
    portal.add_ready_photo().await;
    portal.move_to(Stage::PhotosReady).await;

    let response = portal.get_json(&format!("{}/state", portal.page())).await;
    assert_eq!(response.status, StatusCode::OK);
    let state = response.json();
    assert_eq!(state["stage"], "photos_ready");
    assert_eq!(state["stage_label"], "Photos ready");
    assert_eq!(state["stage_index"], 3);
    assert_eq!(state["photos_visible"], true);
    assert_eq!(state["photo_count"], 2);
    assert_eq!(state["favourite_count"], 0);
    assert_eq!(state["invoices"][0]["kind"], "deposit");
    assert_eq!(state["invoices"][0]["status"], "paid");
    assert_eq!(state["invoices"][0]["amount_display"], "€1,250.00");
}

#[tokio::test]
async fn unknown_token_is_404_without_studio() {
    let portal = Portal::new().await;
    let long = format!("/p/{}", "x".repeat(500));
    let paths = [
        "/p/pp_not_a_real_token".to_owned(),
        "/p/another-wrong-one".to_owned(),
        long,
        "/p/pp_wrong/state".to_owned(),
        "/p/pp_wrong/photos/0190a6c2-7d1e-7c3a-9f00-0123456789ab/grid".to_owned(),
    ];
    let first = portal.get(&paths[0]).await;
    assert_eq!(first.status, StatusCode::NOT_FOUND);
    assert!(!first.text().contains(STUDIO), "{}", first.text());
    assert!(first.text().contains("Link not found"), "{}", first.text());
    for path in &paths[1..] {
        let response = portal.get(path).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(response.body, first.body, "same page for {path}");
    }
}

#[tokio::test]
async fn rotated_token_stops_old_link() {
    let portal = Portal::new().await;
    let old = portal.page();
    assert_eq!(portal.get(&old).await.status, StatusCode::OK);

    let mut tx = portal.tx().await;
    let new = projects::rotate_portal_token(&mut tx, portal.project)
        .await
        .expect("rotate");
    tx.commit().await.expect("commit");

    let stale = portal.get(&old).await;
    assert_eq!(stale.status, StatusCode::NOT_FOUND);
    assert!(!stale.text().contains(STUDIO));
    let unknown = portal.get("/p/pp_never_issued").await;
    assert_eq!(
        stale.body, unknown.body,
        "a rotated link looks like any bad link"
    );
    let fresh = portal.get(&format!("/p/{}", new.expose())).await;
    assert_eq!(fresh.status, StatusCode::OK);
}

#[tokio::test]
async fn responses_carry_privacy_headers() {
    let portal = Portal::new().await;
    let photo = portal.add_ready_photo().await;
    portal.move_to(Stage::PhotosReady).await;
    let paths = [
        portal.page(),
        format!("{}/state", portal.page()),
        format!("{}/photos/{photo}/grid", portal.page()),
        "/p/pp_unknown".to_owned(),
        "/assets/portal.css".to_owned(),
        "/assets/portal.js".to_owned(),
        "/nowhere".to_owned(),
    ];
    for path in &paths {
        let response = portal.get(path).await;
        assert_eq!(
            response.header(header::REFERRER_POLICY),
            "no-referrer",
            "{path}"
        );
        assert_eq!(
            response
                .headers
                .get("x-robots-tag")
                .and_then(|v| v.to_str().ok()),
            Some("noindex, nofollow"),
            "{path}"
        );
        let csp = response.header(header::CONTENT_SECURITY_POLICY);
        assert!(csp.starts_with("default-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(response.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    }

    let page = portal.get(&portal.page()).await.text();
    assert!(page.contains(r#"<meta name="robots" content="noindex, nofollow">"#));
    assert!(page.contains(r#"<meta name="referrer" content="no-referrer">"#));
    assert!(!page.contains("<style"), "no inline style element");
    assert!(!page.contains("style="), "no inline style attribute");
    assert!(!page.contains("<script>"), "no inline script");
    let not_found = portal.get("/p/pp_unknown").await.text();
    assert!(not_found.contains(r#"<meta name="referrer" content="no-referrer">"#));
}

#[tokio::test]
async fn page_is_not_cached_but_assets_are() {
    let portal = Portal::new().await;
    let page = portal.get(&portal.page()).await;
    assert_eq!(page.header(header::CACHE_CONTROL), "private, no-cache");
    let css = portal.get("/assets/portal.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.header(header::CONTENT_TYPE).starts_with("text/css"));
    assert!(css.header(header::CACHE_CONTROL).contains("immutable"));
    let js = portal.get("/assets/portal.js").await;
    assert!(
        js.header(header::CONTENT_TYPE)
            .starts_with("text/javascript")
    );
}

#[tokio::test]
async fn accent_colour_served_as_stylesheet() {
    let portal = Portal::new().await;
    let mut tx = portal.tx().await;
    proofsheet_domain::db::tenants::update_branding(&mut tx, STUDIO, "#FFD43B")
        .await
        .expect("branding");
    tx.commit().await.expect("commit");

    let page = portal.get(&portal.page()).await.text();
    assert!(
        page.contains(r#"href="/assets/accent/ffd43b.css""#),
        "{page}"
    );
    let css = portal.get("/assets/accent/ffd43b.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.text().contains("--accent: #ffd43b;"), "{}", css.text());
    assert!(
        css.text().contains("--accent-ink: #111111;"),
        "{}",
        css.text()
    );

    for bad in [
        "/assets/accent/red.css",
        "/assets/accent/ffd43b",
        "/assets/accent/ffd43b;x.css",
    ] {
        assert_eq!(portal.get(bad).await.status, StatusCode::NOT_FOUND, "{bad}");
    }
}
