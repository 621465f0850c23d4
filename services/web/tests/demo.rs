//! The demo seed used by `make run`.

mod common;

#[tokio::test]
async fn seed_is_repeatable_and_restores_photos() {
    let app = common::spawn().await;
    let config = (*app.state.config).clone();

    proofsheet_web::demo::seed(config.clone())
        .await
        .expect("first seed");
    assert_eq!(app.media_files(), 5, "five demo originals are stored");
    let (tenant, _, _) = app
        .state
        .db
        .find_login(proofsheet_web::demo::DEMO_EMAIL)
        .await
        .expect("lookup")
        .expect("the demo owner exists");

    proofsheet_web::demo::seed(config.clone())
        .await
        .expect("second seed");
    assert_eq!(app.media_files(), 5, "a second seed adds nothing");

    // A project the studio made itself is newer than the demo project, and a
    // repeated seed must still find the demo project.
    let mut tx = app.state.db.tenant(tenant).await.expect("tx");
    let own = proofsheet_domain::db::projects::NewProject::parse(
        "Studio's own project",
        "Cora Diaz",
        "cora@example.com",
        "2026-11-02",
    )
    .expect("valid project");
    proofsheet_domain::db::projects::create(&mut tx, own)
        .await
        .expect("create project");
    tx.commit().await.expect("commit");

    // As after `make clean-data`: the rows stay, the files are gone.
    std::fs::remove_dir_all(app.media_dir.path().join("tenants")).expect("wipe media");
    assert_eq!(app.media_files(), 0);
    proofsheet_web::demo::seed(config)
        .await
        .expect("third seed");
    assert_eq!(app.media_files(), 5, "the missing originals are put back");

    let mut tx = app.state.db.tenant(tenant).await.expect("tx");
    let projects = proofsheet_domain::db::projects::list(&mut tx, None)
        .await
        .expect("projects");
    assert_eq!(projects.len(), 2, "the seed added no project");
}
