//! The project list, the new-project form and the project page with its
//! actions.

use axum::Form;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use proofsheet_domain::db::invoices::InvoiceInput;
use proofsheet_domain::db::payment_state::StripePaymentState;
use proofsheet_domain::db::photos::PhotoStatus;
use proofsheet_domain::db::projects::{self, NewProject};
use proofsheet_domain::db::tenants;
use proofsheet_domain::plan::PlanStanding;
use proofsheet_domain::{Currency, InvoiceId, InvoiceKind, Money, ProjectId, Stage, validate};
use serde::{Deserialize, Serialize};

use super::account::CsrfOnly;
use super::{render, render_with_status};
use crate::api::parse_id;
use crate::auth::{CSRF_FIELD, StudioUser, csrf_token, verify_csrf};
use crate::error::{ApiError, PageError};
use crate::{AppState, ops, upload};

#[derive(Serialize)]
struct StageOption {
    value: &'static str,
    label: &'static str,
}

fn stage_options() -> Vec<StageOption> {
    Stage::ALL
        .iter()
        .map(|s| StageOption {
            value: s.as_str(),
            label: s.label(),
        })
        .collect()
}

fn base_context(token: &str, studio_name: &str) -> tera::Context {
    let mut context = tera::Context::new();
    context.insert("csrf_token", token);
    context.insert("studio_name", studio_name);
    context
}

#[derive(Deserialize)]
pub struct ListQuery {
    stage: Option<String>,
}

/// `GET /projects?stage=…`.
pub async fn list(
    State(state): State<AppState>,
    user: StudioUser,
    jar: CookieJar,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let stage = query
        .stage
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(str::parse::<Stage>)
        .transpose()?;
    let mut tx = state.db.tenant(user.tenant_id).await?;
    let studio = tenants::current(&mut tx).await?;
    let projects = projects::list(&mut tx, stage).await?;
    tx.commit().await?;

    let rows: Vec<_> = projects
        .iter()
        .map(|p| {
            serde_json::json!({
                "id": p.id, "title": p.title, "client_name": p.client_name,
                "shoot_date": p.shoot_date.to_string(), "stage_label": p.stage.label(),
            })
        })
        .collect();
    let (jar, token) = csrf_token(jar, state.config.cookie_secure);
    let mut context = base_context(&token, &studio.name);
    context.insert("projects", &rows);
    context.insert("stages", &stage_options());
    context.insert("filter", &stage.map(Stage::as_str).unwrap_or(""));
    let standing = PlanStanding::of(&studio, Utc::now());
    context.insert("plan_standing", standing.as_str());
    context.insert("plan_block", &standing.new_project_block(studio.tz()));
    context.insert(
        "trial_ends",
        &studio
            .trial_ends_at
            .with_timezone(&studio.tz())
            .format("%-d %B %Y")
            .to_string(),
    );
    Ok((jar, render(&state, "projects.html", &context)?).into_response())
}

/// `GET /projects/new`.
pub async fn new_form(
    State(state): State<AppState>,
    user: StudioUser,
    jar: CookieJar,
) -> Result<Response, PageError> {
    let mut tx = state.db.tenant(user.tenant_id).await?;
    let studio = tenants::current(&mut tx).await?;
    tx.commit().await?;
    let (jar, token) = csrf_token(jar, state.config.cookie_secure);
    let mut context = base_context(&token, &studio.name);
    let standing = PlanStanding::of(&studio, Utc::now());
    context.insert("plan_block", &standing.new_project_block(studio.tz()));
    Ok((jar, render(&state, "project_new.html", &context)?).into_response())
}

#[derive(Deserialize, Serialize)]
pub struct NewProjectForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    client_name: String,
    #[serde(default)]
    client_email: String,
    #[serde(default)]
    shoot_date: String,
}

/// `POST /projects`: creates the project and opens its page.
pub async fn create(
    State(state): State<AppState>,
    user: StudioUser,
    jar: CookieJar,
    Form(form): Form<NewProjectForm>,
) -> Result<Response, PageError> {
    verify_csrf(&jar, &form.csrf_token)?;
    let parsed = NewProject::parse(
        &form.title,
        &form.client_name,
        &form.client_email,
        &form.shoot_date,
    );
    let created = match parsed {
        Ok(new) => ops::create_project(&state, user.tenant_id, new).await,
        Err(e) => Err(e.into()),
    };
    match created {
        Ok(project) => Ok(Redirect::to(&format!("/projects/{}", project.id)).into_response()),
        Err(ApiError::Invalid { field, message }) => {
            let mut tx = state.db.tenant(user.tenant_id).await?;
            let studio = tenants::current(&mut tx).await?;
            tx.commit().await?;
            let mut context = base_context(&form.csrf_token, &studio.name);
            context.insert("error", &format!("{}: {message}", field.replace('_', " ")));
            context.insert("form", &form);
            Ok(render_with_status(
                &state,
                StatusCode::UNPROCESSABLE_ENTITY,
                "project_new.html",
                &context,
            ))
        }
        // The plan does not allow new projects, so the form page shows the reason.
        Err(ApiError::Forbidden(message)) => {
            let mut tx = state.db.tenant(user.tenant_id).await?;
            let studio = tenants::current(&mut tx).await?;
            tx.commit().await?;
            let mut context = base_context(&form.csrf_token, &studio.name);
            context.insert("plan_block", &message);
            Ok(render_with_status(
                &state,
                StatusCode::FORBIDDEN,
                "project_new.html",
                &context,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct ShowQuery {
    notice: Option<String>,
}

/// Messages shown after an action redirects back to the project page.
fn notice_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "link-sent" => "The portal link is on its way to the client.",
        "link-rotated" => "The portal link was replaced. The old link no longer works.",
        "uploaded" => "Photos uploaded. Thumbnails appear as soon as they are ready.",
        "stage" => "Stage updated. Open portal pages update by themselves.",
        "invoice" => "Invoice saved.",
        "paid" => "Invoice marked paid.",
        _ => return None,
    })
}

/// `GET /projects/{id}`: stage, invoices, photos, favourites, responses and the
/// portal link.
pub async fn show(
    State(state): State<AppState>,
    user: StudioUser,
    jar: CookieJar,
    Path(id): Path<String>,
    Query(query): Query<ShowQuery>,
) -> Result<Response, PageError> {
    let id: ProjectId = parse_id(&id, "project")?;
    let detail = ops::project_detail(&state, user.tenant_id, id).await?;
    let tz = detail.tenant.tz();
    let now = Utc::now();

    let invoices: Vec<_> = [InvoiceKind::Deposit, InvoiceKind::Final]
        .iter()
        .map(|kind| {
            let invoice = detail.invoices.iter().find(|i| i.kind == *kind);
            serde_json::json!({
                "kind": kind.as_str(),
                "label": kind.label(),
                "exists": invoice.is_some(),
                "id": invoice.map(|i| i.id.to_string()),
                "amount": invoice.map(|i| i.amount.display()),
                "amount_input": invoice.map(|i| major_units(i.amount)),
                "currency": invoice.map(|i| i.amount.currency.code()).unwrap_or("EUR"),
                "due_date": invoice.map(|i| i.due_date.to_string()),
                "status": invoice.map(|i| i.status(tz, now).label()),
                "paid_at": invoice.and_then(|i| i.paid_at).map(|t| t.with_timezone(&tz).format("%-d %B %Y, %H:%M").to_string()),
                "stripe": invoice.and_then(|i| detail.stripe_payment(i.id)).map(|p| stripe_lines(p, tz)),
            })
        })
        .collect();
    let photos: Vec<_> = detail
        .photos
        .iter()
        .map(|p| {
            serde_json::json!({
                "id": p.id, "file_name": p.file_name,
                "status": match p.status { PhotoStatus::Processing => "processing", PhotoStatus::Ready => "ready", PhotoStatus::Failed => "failed" },
                "width": p.width, "height": p.height, "error": p.error,
                "favourite": detail.favourites.contains(&p.id),
            })
        })
        .collect();
    let responses: Vec<_> = detail
        .responses
        .iter()
        .map(|r| {
            serde_json::json!({
                "kind": r.kind.0.as_str(), "text": r.text,
                "at": r.created_at.with_timezone(&tz).format("%-d %B %Y, %H:%M").to_string(),
            })
        })
        .collect();

    let (jar, flash) = take_flash(jar, id);
    let (jar, token) = csrf_token(jar, state.config.cookie_secure);
    let mut context = base_context(&token, &detail.tenant.name);
    context.insert("project", &detail.project);
    context.insert("stage", detail.project.stage.as_str());
    context.insert("stage_label", detail.project.stage.label());
    context.insert("stages", &stage_options());
    context.insert("portal_url", &ops::portal_url(&state, &detail.project));
    context.insert("invoices", &invoices);
    context.insert("photos", &photos);
    context.insert("favourite_count", &detail.favourites.len());
    context.insert("responses", &responses);
    context.insert(
        "max_upload",
        &upload::human_bytes(state.config.max_upload_bytes),
    );
    context.insert("max_upload_bytes", &state.config.max_upload_bytes);
    context.insert("notice", &query.notice.as_deref().and_then(notice_text));
    context.insert("error", &flash);
    Ok((jar, render(&state, "project.html", &context)?).into_response())
}

/// One line of an invoice's Stripe payment state on the project page.
#[derive(Serialize)]
struct StripeLine {
    /// `paid`, `refunded`, `failed` or `mismatch`, for the line's style.
    kind: &'static str,
    text: String,
}

/// Describes what Stripe reported about an invoice, with times in the
/// studio's time zone.
fn stripe_lines(payment: &StripePaymentState, tz: chrono_tz::Tz) -> Vec<StripeLine> {
    let mut lines = Vec::new();
    if let Some(paid_at) = payment.paid_at {
        lines.push(StripeLine {
            kind: "paid",
            text: format!(
                "Paid through Stripe on {}.",
                paid_at.with_timezone(&tz).format("%-d %B %Y, %H:%M")
            ),
        });
    }
    if let Some(refund) = &payment.refund {
        let extent = if refund.full {
            "Refunded in full"
        } else {
            "Partially refunded"
        };
        lines.push(StripeLine {
            kind: "refunded",
            text: format!("{extent} through Stripe: {}.", refund.amount_display),
        });
    }
    if let Some(failure) = &payment.payment_failed {
        lines.push(StripeLine {
            kind: "failed",
            text: format!("Last payment attempt failed. {}", failure.reason),
        });
    }
    if let Some(mismatch) = &payment.amount_mismatch {
        lines.push(StripeLine {
            kind: "mismatch",
            text: format!(
                "Amount mismatch: Stripe received {} but the invoice is {}, so the invoice \
                 stays unpaid. Check the payment in your Stripe Dashboard, then refund it or \
                 mark the invoice paid by hand.",
                mismatch.paid_display, mismatch.invoice_display
            ),
        });
    }
    lines
}

fn major_units(money: Money) -> String {
    let digits = money.currency.minor_digits();
    if digits == 0 {
        return money.amount_minor.to_string();
    }
    let scale = 10_i64.pow(digits);
    format!(
        "{}.{:0width$}",
        money.amount_minor / scale,
        money.amount_minor % scale,
        width = digits as usize
    )
}

fn back_to(id: ProjectId, notice: &str) -> Response {
    Redirect::to(&format!("/projects/{id}?notice={notice}")).into_response()
}

/// Name of the cookie that carries a rejected action's message back to the
/// project page for one view.
const FLASH_COOKIE: &str = "ps_flash";

/// Ends a project action: back to the project page with a notice, or, when
/// the studio's input was rejected, back with the reason shown at the top of
/// the page, so the studio keeps its place. Other errors get the error page.
fn finish(id: ProjectId, jar: CookieJar, outcome: Result<(), PageError>, notice: &str) -> Response {
    match outcome {
        Ok(()) => back_to(id, notice),
        Err(e)
            if matches!(
                e.status,
                StatusCode::UNPROCESSABLE_ENTITY | StatusCode::CONFLICT
            ) =>
        {
            let message = URL_SAFE_NO_PAD.encode(e.message.as_bytes());
            let cookie = Cookie::build((FLASH_COOKIE, message))
                .path(format!("/projects/{id}"))
                .http_only(true)
                .same_site(SameSite::Lax)
                .max_age(cookie::time::Duration::minutes(5))
                .build();
            (jar.add(cookie), Redirect::to(&format!("/projects/{id}"))).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// Takes the flash message set by [`finish`], if any, and removes its cookie.
fn take_flash(jar: CookieJar, id: ProjectId) -> (CookieJar, Option<String>) {
    let Some(cookie) = jar.get(FLASH_COOKIE) else {
        return (jar, None);
    };
    let message = URL_SAFE_NO_PAD
        .decode(cookie.value())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    let jar = jar.remove(Cookie::build(FLASH_COOKIE).path(format!("/projects/{id}")));
    (jar, message)
}

#[derive(Deserialize)]
pub struct StageForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    stage: String,
}

/// `POST /projects/{id}/stage`.
pub async fn move_stage(
    State(state): State<AppState>,
    user: StudioUser,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(form): Form<StageForm>,
) -> Result<Response, PageError> {
    verify_csrf(&jar, &form.csrf_token)?;
    let id: ProjectId = parse_id(&id, "project")?;
    let outcome = async {
        let stage: Stage = form.stage.parse()?;
        ops::move_stage(&state, user.tenant_id, id, stage).await?;
        Ok(())
    }
    .await;
    Ok(finish(id, jar, outcome, "stage"))
}

#[derive(Deserialize)]
pub struct InvoiceForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    due_date: String,
}

/// `POST /projects/{id}/invoices`: the amount is typed in major units.
pub async fn save_invoice(
    State(state): State<AppState>,
    user: StudioUser,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(form): Form<InvoiceForm>,
) -> Result<Response, PageError> {
    verify_csrf(&jar, &form.csrf_token)?;
    let id: ProjectId = parse_id(&id, "project")?;
    let outcome = async {
        let currency: Currency = form.currency.parse()?;
        let amount = Money::parse_major(&form.amount, currency)?;
        let input = InvoiceInput {
            kind: form.kind.parse()?,
            amount,
            due_date: validate::date("due_date", &form.due_date)?,
        };
        ops::save_invoice(&state, user.tenant_id, id, input).await?;
        Ok(())
    }
    .await;
    Ok(finish(id, jar, outcome, "invoice"))
}

/// `POST /projects/{id}/invoices/{invoice_id}/paid`.
pub async fn mark_paid(
    State(state): State<AppState>,
    user: StudioUser,
    jar: CookieJar,
    Path((id, invoice_id)): Path<(String, String)>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    verify_csrf(&jar, &form.csrf_token)?;
    let id: ProjectId = parse_id(&id, "project")?;
    let invoice_id: InvoiceId = parse_id(&invoice_id, "invoice")?;
    let outcome = ops::mark_paid(&state, user.tenant_id, id, invoice_id)
        .await
        .map(|_| ())
        .map_err(PageError::from);
    Ok(finish(id, jar, outcome, "paid"))
}

/// `POST /projects/{id}/photos`: the form's CSRF field comes before its files,
/// and is checked before any file is stored. Responds with JSON to the page's
/// script (which shows per-file progress) and redirects a plain form post.
pub async fn upload_photos(
    State(state): State<AppState>,
    user: StudioUser,
    jar: CookieJar,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
    multipart: Multipart,
) -> Result<Response, PageError> {
    let id: ProjectId = parse_id(&id, "project")?;
    let wants_json = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let check = |_: &str, value: &str| -> Result<(), ApiError> {
        verify_csrf(&jar, value).map_err(|e| ApiError::Forbidden(e.message))
    };
    let received = upload::receive_photos(
        &state,
        user.tenant_id,
        id,
        multipart,
        Some((CSRF_FIELD, &check)),
    )
    .await;
    match (received, wants_json) {
        (Ok(photos), true) => Ok((
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({ "photos": photos })),
        )
            .into_response()),
        (Ok(_), false) => Ok(back_to(id, "uploaded")),
        (Err(e), true) => Ok(e.into_response()),
        (Err(ApiError::Forbidden(message)), false) => Err(PageError::new(
            StatusCode::FORBIDDEN,
            "Form expired",
            message,
        )),
        (Err(e), false) => Ok(finish(id, jar.clone(), Err(e.into()), "uploaded")),
    }
}

/// `POST /projects/{id}/resend-link`.
pub async fn resend_link(
    State(state): State<AppState>,
    user: StudioUser,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    verify_csrf(&jar, &form.csrf_token)?;
    let id: ProjectId = parse_id(&id, "project")?;
    let outcome = ops::resend_link(&state, user.tenant_id, id)
        .await
        .map_err(PageError::from);
    Ok(finish(id, jar, outcome, "link-sent"))
}

/// `POST /projects/{id}/rotate-link`.
pub async fn rotate_link(
    State(state): State<AppState>,
    user: StudioUser,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    verify_csrf(&jar, &form.csrf_token)?;
    let id: ProjectId = parse_id(&id, "project")?;
    let outcome = ops::rotate_link(&state, user.tenant_id, id)
        .await
        .map(|_| ())
        .map_err(PageError::from);
    Ok(finish(id, jar, outcome, "link-rotated"))
}
