//! Operations shared by the pages and the JSON API. Each one opens a
//! tenant-scoped transaction, applies a domain rule, commits, and then notifies
//! the rest of the system (live portal pages, the job queues).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use proofsheet_domain::db::invoices::{self, Invoice, InvoiceInput, InvoiceJson};
use proofsheet_domain::db::payment_state::{self, StripePaymentState};
use proofsheet_domain::db::photos::{self, Photo};
use proofsheet_domain::db::projects::{self, NewProject, Project, Response};
use proofsheet_domain::db::stripe as stripe_store;
use proofsheet_domain::db::tenants::{self, Tenant};
use proofsheet_domain::plan::PlanStanding;
use proofsheet_domain::{InvoiceId, PhotoId, ProjectId, Stage, TenantId};
use proofsheet_jobs::SendEmail;
use proofsheet_jobs::live::{self, ProjectEvent};
use serde::Serialize;

use crate::AppState;
use crate::error::ApiError;
use crate::stripe::expire::queue_checkout_expiry;

/// Everything the project page and `GET /api/v1/projects/{id}` show.
#[derive(Debug)]
pub struct ProjectDetail {
    pub tenant: Tenant,
    pub project: Project,
    pub invoices: Vec<Invoice>,
    /// Stripe's reports on each invoice, by invoice id.
    pub stripe_payments: HashMap<InvoiceId, StripePaymentState>,
    pub photos: Vec<Photo>,
    pub favourites: Vec<PhotoId>,
    pub responses: Vec<Response>,
}

/// The JSON shape of an invoice in a project's API response.
#[derive(Debug, Serialize)]
pub struct ProjectInvoiceJson {
    #[serde(flatten)]
    pub invoice: InvoiceJson,
    /// Stripe's reports on the invoice's payments; `null` when Stripe
    /// reported nothing.
    pub stripe: Option<StripePaymentState>,
}

/// The JSON shape of a project in API responses.
#[derive(Debug, Serialize)]
pub struct ProjectJson {
    pub id: ProjectId,
    pub title: String,
    pub client_name: String,
    pub client_email: String,
    pub shoot_date: NaiveDate,
    pub stage: Stage,
    pub portal_url: String,
    pub created_at: DateTime<Utc>,
    pub invoices: Vec<ProjectInvoiceJson>,
    pub photos: Vec<Photo>,
    pub favourites: Vec<PhotoId>,
    pub responses: Vec<Response>,
}

impl ProjectDetail {
    /// Renders the detail for the API at `now`.
    pub fn to_json(&self, state: &AppState, now: DateTime<Utc>) -> ProjectJson {
        let tz = self.tenant.tz();
        ProjectJson {
            id: self.project.id,
            title: self.project.title.clone(),
            client_name: self.project.client_name.clone(),
            client_email: self.project.client_email.clone(),
            shoot_date: self.project.shoot_date,
            stage: self.project.stage,
            portal_url: portal_url(state, &self.project),
            created_at: self.project.created_at,
            invoices: self
                .invoices
                .iter()
                .map(|invoice| ProjectInvoiceJson {
                    invoice: invoice.to_json(tz, now),
                    stripe: self.stripe_payment(invoice.id).cloned(),
                })
                .collect(),
            photos: self.photos.clone(),
            favourites: self.favourites.clone(),
            responses: self.responses.clone(),
        }
    }
}

impl ProjectDetail {
    /// Returns what Stripe reported about an invoice, or `None` when it
    /// reported nothing.
    pub fn stripe_payment(&self, invoice: InvoiceId) -> Option<&StripePaymentState> {
        self.stripe_payments
            .get(&invoice)
            .filter(|state| !state.is_empty())
    }
}

/// Returns the portal link of a project.
pub fn portal_url(state: &AppState, project: &Project) -> String {
    state.config.portal_link(project.portal_token.expose())
}

/// Creates a project; its portal link exists from this moment.
pub async fn create_project(
    state: &AppState,
    tenant: TenantId,
    new: NewProject,
) -> Result<Project, ApiError> {
    let mut tx = state.db.tenant(tenant).await?;
    let studio = tenants::current(&mut tx).await?;
    PlanStanding::of(&studio, Utc::now()).check_new_project(studio.tz())?;
    let project = projects::create(&mut tx, new).await?;
    tx.commit().await?;
    tracing::info!(tenant.id = %tenant, project.id = %project.id, "project created");
    Ok(project)
}

/// Loads a project with its invoices, photos, favourites and responses.
pub async fn project_detail(
    state: &AppState,
    tenant: TenantId,
    id: ProjectId,
) -> Result<ProjectDetail, ApiError> {
    let mut tx = state.db.tenant(tenant).await?;
    let invoices = invoices::for_project(&mut tx, id).await?;
    let detail = ProjectDetail {
        tenant: tenants::current(&mut tx).await?,
        project: projects::get(&mut tx, id).await?,
        stripe_payments: payment_state::for_project(&mut tx, id, &invoices).await?,
        invoices,
        photos: photos::for_project(&mut tx, id).await?,
        favourites: projects::favourites(&mut tx, id).await?,
        responses: projects::responses(&mut tx, id).await?,
    };
    tx.commit().await?;
    Ok(detail)
}

/// Moves a project to another stage and updates open portal pages.
pub async fn move_stage(
    state: &AppState,
    tenant: TenantId,
    id: ProjectId,
    to: Stage,
) -> Result<Stage, ApiError> {
    let mut tx = state.db.tenant(tenant).await?;
    let stage = projects::move_stage(&mut tx, id, to).await?;
    tx.commit().await?;
    tracing::info!(tenant.id = %tenant, project.id = %id, stage = stage.as_str(), "stage moved");
    publish(state, id, ProjectEvent::Stage).await;
    Ok(stage)
}

/// Adds or edits the deposit or final invoice.
pub async fn save_invoice(
    state: &AppState,
    tenant: TenantId,
    project: ProjectId,
    input: InvoiceInput,
) -> Result<InvoiceJson, ApiError> {
    let mut tx = state.db.tenant(tenant).await?;
    let tz = tenants::current(&mut tx).await?.tz();
    let invoice = invoices::upsert(&mut tx, project, input).await?;
    let stale_checkouts = stripe_store::has_checkouts_to_expire(&mut tx).await?;
    tx.commit().await?;
    if stale_checkouts {
        queue_checkout_expiry(state, tenant).await;
    }
    publish(state, project, ProjectEvent::Invoices).await;
    Ok(invoice.to_json(tz, Utc::now()))
}

/// Marks an invoice paid by hand.
pub async fn mark_paid(
    state: &AppState,
    tenant: TenantId,
    project: ProjectId,
    invoice: InvoiceId,
) -> Result<InvoiceJson, ApiError> {
    let mut tx = state.db.tenant(tenant).await?;
    let tz = tenants::current(&mut tx).await?.tz();
    let invoice = invoices::mark_paid(&mut tx, project, invoice).await?;
    let stale_checkouts = stripe_store::has_checkouts_to_expire(&mut tx).await?;
    tx.commit().await?;
    if stale_checkouts {
        queue_checkout_expiry(state, tenant).await;
    }
    tracing::info!(tenant.id = %tenant, invoice.id = %invoice.id, "invoice marked paid");
    publish(state, project, ProjectEvent::Invoices).await;
    Ok(invoice.to_json(tz, Utc::now()))
}

/// Queues an email with the project's current portal link to its client.
pub async fn resend_link(
    state: &AppState,
    tenant: TenantId,
    project: ProjectId,
) -> Result<(), ApiError> {
    let mut tx = state.db.tenant(tenant).await?;
    projects::get(&mut tx, project).await?;
    tx.commit().await?;
    state
        .queues
        .enqueue_email(SendEmail::PortalLink {
            tenant_id: tenant,
            project_id: project,
        })
        .await?;
    tracing::info!(tenant.id = %tenant, project.id = %project, "portal link email queued");
    Ok(())
}

/// Replaces a leaked portal link. The old link stops working at once.
pub async fn rotate_link(
    state: &AppState,
    tenant: TenantId,
    project: ProjectId,
) -> Result<String, ApiError> {
    let mut tx = state.db.tenant(tenant).await?;
    let token = projects::rotate_portal_token(&mut tx, project).await?;
    tx.commit().await?;
    tracing::info!(tenant.id = %tenant, project.id = %project, "portal link rotated");
    Ok(state.config.portal_link(token.expose()))
}

async fn publish(state: &AppState, project: ProjectId, event: ProjectEvent) {
    live::publish(
        &state.queues.connection(),
        state.queues.namespace(),
        project,
        event,
    )
    .await;
}
