//! `migrate` and `seed-demo`: prepare a database and fill it with a demo
//! studio, for `make run` and for trying the product.

use anyhow::Context;
use bytes::Bytes;
use chrono::{Duration, Utc};
use proofsheet_config::Config;
use proofsheet_domain::db::invoices::{self, InvoiceInput};
use proofsheet_domain::db::projects::{self, NewProject};
use proofsheet_domain::db::{self, photos, tenants};
use proofsheet_domain::{InvoiceKind, Money, PhotoId, ProjectId, Stage, TenantId};
use proofsheet_jobs::GenerateThumbnails;
use proofsheet_media::{PhotoObject, StoreError, photo_key};

use crate::AppState;

/// Log-in of the demo studio's owner.
pub const DEMO_EMAIL: &str = "demo@proofsheet.localhost";
/// Password of the demo studio's owner. Public on purpose: it is a demo.
pub const DEMO_PASSWORD: &str = "proofsheet-demo";

/// Real camera files of the demo project, compiled in so the seed works from
/// any directory. Sources and licences: `demo/photos/SOURCES.md`.
const DEMO_PHOTOS: [(&str, &[u8]); 5] = [
    (
        "landscape-orientation-6.jpg",
        include_bytes!("../demo/photos/landscape-orientation-6.jpg"),
    ),
    (
        "landscape-orientation-8.jpg",
        include_bytes!("../demo/photos/landscape-orientation-8.jpg"),
    ),
    (
        "landscape-orientation-3.jpg",
        include_bytes!("../demo/photos/landscape-orientation-3.jpg"),
    ),
    (
        "greyscale-orientation-6.jpg",
        include_bytes!("../demo/photos/greyscale-orientation-6.jpg"),
    ),
    (
        "moto-g9-plus-16mp.jpg",
        include_bytes!("../demo/photos/moto-g9-plus-16mp.jpg"),
    ),
];

/// Title of the project the demo studio starts with, which a repeated
/// seed looks for.
const DEMO_PROJECT_TITLE: &str = "Ana & Ben: wedding";

/// Creates the database if needed and applies the migrations, as the owner
/// role of `DATABASE_ADMIN_URL`.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    db::ensure_database(&config.database_admin_url)
        .await
        .context("could not create the database (DATABASE_ADMIN_URL); is PostgreSQL running?")?;
    db::migrate(&config.database_admin_url)
        .await
        .context("could not apply the migrations (DATABASE_ADMIN_URL)")?;
    tracing::info!("database migrated");
    Ok(())
}

/// Seeds the demo studio with one project, two invoices and real photos, and
/// prints how to log in. Running it again leaves the existing demo as it is.
pub async fn seed(config: Config) -> anyhow::Result<()> {
    let state = AppState::connect(config).await?;
    if let Some((tenant, _, _)) = state.db.find_login(DEMO_EMAIL).await? {
        let mut tx = state.db.tenant(tenant).await?;
        // The studio may have made projects of its own since, and the list is
        // newest first, so the demo project is the oldest with its title.
        let project = projects::list(&mut tx, None)
            .await?
            .into_iter()
            .rfind(|p| p.title == DEMO_PROJECT_TITLE);
        tx.commit().await?;
        if let Some(project) = &project {
            restore_missing_photos(&state, tenant, project.id).await?;
        }
        print_summary(
            &state,
            project
                .as_ref()
                .map(|p| state.config.portal_link(p.portal_token.expose())),
            None,
        );
        return Ok(());
    }

    let studio = tenants::NewStudio::parse(
        "Lumen & Grain Studio",
        DEMO_EMAIL,
        DEMO_PASSWORD,
        "Europe/London",
    )?;
    let signed_up = tenants::sign_up(&state.db, studio).await?;
    let tenant = signed_up.tenant_id;

    let mut tx = state.db.tenant(tenant).await?;
    tenants::update_branding(&mut tx, "Lumen & Grain Studio", "#b0603a").await?;
    let today = Utc::now().date_naive();
    let new = NewProject::parse(
        DEMO_PROJECT_TITLE,
        "Ana Souza",
        "ana.souza@example.com",
        &(today - Duration::days(30)).to_string(),
    )?;
    let project = projects::create(&mut tx, new).await?;
    let eur = "EUR".parse()?;
    let deposit = InvoiceInput {
        kind: InvoiceKind::Deposit,
        amount: Money::new(50_000, eur)?,
        due_date: today - Duration::days(45),
    };
    let deposit = invoices::upsert(&mut tx, project.id, deposit).await?;
    invoices::mark_paid(&mut tx, project.id, deposit.id).await?;
    let final_invoice = InvoiceInput {
        kind: InvoiceKind::Final,
        amount: Money::new(145_000, eur)?,
        due_date: today + Duration::days(14),
    };
    invoices::upsert(&mut tx, project.id, final_invoice).await?;

    let mut photo_ids = Vec::new();
    for (name, bytes) in DEMO_PHOTOS {
        let id = PhotoId::new();
        let key = photo_key(tenant, project.id, id, PhotoObject::Original);
        state.media.put(&key, Bytes::from_static(bytes)).await?;
        photos::insert(&mut tx, id, project.id, name, bytes.len() as i64).await?;
        photo_ids.push(id);
    }
    projects::move_stage(&mut tx, project.id, Stage::PhotosReady).await?;
    tx.commit().await?;

    for photo_id in photo_ids {
        state
            .queues
            .enqueue_thumbnails(GenerateThumbnails {
                tenant_id: tenant,
                photo_id,
            })
            .await?;
    }
    tracing::info!(tenant.id = %tenant, "demo studio seeded");
    print_summary(
        &state,
        Some(state.config.portal_link(project.portal_token.expose())),
        Some(signed_up.api_key.expose()),
    );
    Ok(())
}

/// Puts back the demo photos whose files are gone, after `make clean-data`
/// or with a new `MEDIA_DIR`, and queues their thumbnails again, so the demo
/// portal never shows broken images.
async fn restore_missing_photos(
    state: &AppState,
    tenant: TenantId,
    project: ProjectId,
) -> anyhow::Result<()> {
    let mut tx = state.db.tenant(tenant).await?;
    let stored = photos::for_project(&mut tx, project).await?;
    tx.commit().await?;
    let mut restored = 0;
    for photo in stored {
        let key = photo_key(tenant, project, photo.id, PhotoObject::Original);
        match state.media.get(&key).await {
            Ok(_) => continue,
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let Some((_, bytes)) = DEMO_PHOTOS
            .iter()
            .find(|(name, _)| *name == photo.file_name)
        else {
            continue;
        };
        state.media.put(&key, Bytes::from_static(bytes)).await?;
        state
            .queues
            .enqueue_thumbnails(GenerateThumbnails {
                tenant_id: tenant,
                photo_id: photo.id,
            })
            .await?;
        restored += 1;
    }
    if restored > 0 {
        tracing::info!(tenant.id = %tenant, photos = restored, "restored missing demo photos");
    }
    Ok(())
}

fn print_summary(state: &AppState, portal_url: Option<String>, api_key: Option<&str>) {
    let web = state.config.public_web_url.as_str().trim_end_matches('/');
    println!();
    println!("  Studio app:   {web}/login");
    println!("  Log in as:    {DEMO_EMAIL} / {DEMO_PASSWORD}");
    if let Some(url) = portal_url {
        println!("  Demo portal:  {url}");
    }
    if let Some(key) = api_key {
        println!("  API key:      {key}");
    }
    println!();
}
