//! Applies one verified Stripe event. Each event's id is recorded in the
//! same transaction as its effect, so a duplicate delivery finds the id and
//! changes nothing, and every effect is written to commute (see
//! `proofsheet_domain::db::stripe`), so delivery order does not change the
//! final state.

use chrono::{DateTime, Utc};
use proofsheet_domain::db::stripe::{
    self as store, PaymentOutcome, PaymentReceived, PlanStatus, RefundReported, SubscriptionChange,
};
use proofsheet_domain::db::{TenantTx, invoices, notices, tenants};
use proofsheet_domain::{InvoiceId, ProjectId, TenantId};
use proofsheet_jobs::live::{self, ProjectEvent};
use proofsheet_stripe::Event;
use proofsheet_stripe::event::{
    Account, Charge, CheckoutSession, Invoice, Metadata, PaymentIntent, Subscription,
};

use super::WebhookOutcome;
use crate::AppState;

/// The result of applying an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The effect was written; the name is the stored outcome.
    Applied(&'static str),
    /// Acknowledged without an effect, for the reason named.
    Ignored(&'static str),
    /// An event type this service does not handle.
    UnhandledType,
    /// The event id was already recorded.
    Duplicate,
    /// The event's shape does not fit its type; recorded with the reason.
    Malformed,
}

impl Applied {
    /// Returns the outcome name, as stored in `stripe_events.outcome`.
    pub fn as_str(self) -> &'static str {
        match self {
            Applied::Applied(name) | Applied::Ignored(name) => name,
            Applied::UnhandledType => "unhandled_type",
            Applied::Duplicate => "duplicate",
            Applied::Malformed => "malformed",
        }
    }

    /// Returns the outcome label of the webhook metrics.
    pub fn metric(self) -> WebhookOutcome {
        match self {
            Applied::Applied(_) => WebhookOutcome::Applied,
            Applied::Ignored(_) => WebhookOutcome::Ignored,
            Applied::UnhandledType => WebhookOutcome::UnhandledType,
            Applied::Duplicate => WebhookOutcome::Duplicate,
            Applied::Malformed => WebhookOutcome::Malformed,
        }
    }
}

/// A field of a signed event that does not have the shape its type needs,
/// such as an amount given as a string. Stripe would send the same event
/// again on every retry, so it is acknowledged and recorded, not retried.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Malformed {
    /// The path of the field in the event, such as `data.object.amount_total`.
    pub field: String,
    /// The reason, such as the deserializer's message.
    pub reason: String,
}

impl Malformed {
    fn new(field: &str, reason: String) -> Self {
        Self {
            field: format!("data.object.{field}"),
            reason,
        }
    }

    /// Builds the error from a deserializer's error, with `prefix` put in
    /// front of the path. A missing field is named in the path as well.
    pub fn from_path_error(
        prefix: &str,
        error: &serde_path_to_error::Error<serde_json::Error>,
    ) -> Self {
        let reason = error.inner().to_string();
        let mut field = prefix.to_owned();
        let path = error.path().to_string();
        if path != "." {
            // An index such as `[0]` follows its parent without a dot.
            if !field.is_empty() && !path.starts_with('[') {
                field.push('.');
            }
            field.push_str(&path);
        }
        let missing = reason
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split_once('`'))
            .map(|(name, _)| name);
        if let Some(name) = missing {
            if !field.is_empty() {
                field.push('.');
            }
            field.push_str(name);
        }
        if field.is_empty() {
            field.push_str("(the body)");
        }
        Self { field, reason }
    }
}

/// Reads `data.object` as `T`, naming the field that does not fit.
fn object<T: serde::de::DeserializeOwned>(event: &Event) -> Result<T, Malformed> {
    serde_path_to_error::deserialize(&event.data.object)
        .map_err(|error| Malformed::from_path_error("data.object", &error))
}

/// Checks an amount of the object: present, and zero or more minor units.
fn amount(field: &str, value: Option<i64>) -> Result<i64, Malformed> {
    match value {
        Some(value) if value >= 0 => Ok(value),
        Some(value) => Err(Malformed::new(
            field,
            format!("{value} is negative; amounts are zero or more minor units"),
        )),
        None => Err(Malformed::new(field, "missing".to_owned())),
    }
}

/// Checks a currency of the object: a three-letter ISO 4217 code.
fn currency<'a>(field: &str, value: Option<&'a str>) -> Result<&'a str, Malformed> {
    match value {
        Some(code) if code.len() == 3 && code.bytes().all(|b| b.is_ascii_alphabetic()) => Ok(code),
        Some(code) => Err(Malformed::new(
            field,
            format!("'{code}' is not a three-letter ISO 4217 code"),
        )),
        None => Err(Malformed::new(field, "missing".to_owned())),
    }
}

/// Applies `event`, whose signature has been verified. An event whose
/// object does not fit its type is recorded as [`Applied::Malformed`], with
/// nothing of its effect kept.
///
/// # Errors
///
/// Database failures. Nothing of the event is kept then, so a redelivery
/// applies it in full.
pub async fn apply(state: &AppState, event: &Event) -> anyhow::Result<Applied> {
    match apply_by_type(state, event).await {
        Err(error) => match error.downcast::<Malformed>() {
            Ok(malformed) => {
                record_malformed(
                    state,
                    &event.id,
                    &event.event_type,
                    event.created,
                    &malformed,
                )
                .await
            }
            Err(error) => Err(error),
        },
        applied => applied,
    }
}

/// Logs a malformed event and records it with the reason, outside any
/// studio's transaction, so a redelivery finds it and changes nothing.
///
/// # Errors
///
/// Database failures.
pub async fn record_malformed(
    state: &AppState,
    event_id: &str,
    event_type: &str,
    created: i64,
    malformed: &Malformed,
) -> anyhow::Result<Applied> {
    let detail = malformed.to_string();
    let new = state
        .db
        .record_platform_event(event_id, event_type, created, "malformed", Some(&detail))
        .await?;
    if !new {
        return Ok(Applied::Duplicate);
    }
    tracing::warn!(
        event.id = event_id,
        event.type = event_type,
        field = %malformed.field,
        reason = %malformed.reason,
        "a signed Stripe event does not fit its type; acknowledged and recorded as malformed"
    );
    Ok(Applied::Malformed)
}

async fn apply_by_type(state: &AppState, event: &Event) -> anyhow::Result<Applied> {
    match event.event_type.as_str() {
        "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
            checkout_completed(state, event).await
        }
        "checkout.session.expired" => checkout_expired(state, event).await,
        "payment_intent.succeeded" => payment_succeeded(state, event).await,
        "payment_intent.payment_failed" => payment_failed(state, event).await,
        "charge.refunded" => charge_refunded(state, event).await,
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted" => subscription_changed(state, event).await,
        "account.updated" => account_updated(state, event).await,
        "invoice.payment_failed" => plan_payment_failed(state, event).await,
        // The plan state follows from customer.subscription.updated.
        "invoice.paid" => record_only(state, event, "acknowledged").await,
        _ => record_only(state, event, "unhandled_type").await,
    }
}

async fn checkout_completed(state: &AppState, event: &Event) -> anyhow::Result<Applied> {
    let session: CheckoutSession = object(event)?;
    if session.mode.as_deref() != Some("payment") {
        // Plan subscriptions take effect through customer.subscription.*.
        return record_only(state, event, "acknowledged").await;
    }
    let Some(tenant) = payment_tenant(state, event, &session.metadata).await? else {
        return record_only(state, event, "tenant_not_found").await;
    };
    let invoice = invoice_id(&session.metadata).or_else(|| {
        session
            .client_reference_id
            .as_deref()
            .and_then(|id| id.parse().ok())
    });
    let (Some(invoice), Some(payment_intent)) = (invoice, session.payment_intent_id()) else {
        return record_in_tenant(state, event, tenant, "not_ours").await;
    };
    let Some(mut tx) = begin(state, event, tenant).await? else {
        return Ok(Applied::Duplicate);
    };
    if session.payment_status.as_deref() != Some("paid") {
        // An asynchronous method (such as a bank debit) pays later, with
        // checkout.session.async_payment_succeeded.
        return finish(tx, event, Applied::Ignored("not_paid_yet")).await;
    }
    store::close_checkout(&mut tx, &session.id, "complete").await?;
    let payment = PaymentReceived {
        invoice_id: invoice,
        payment_intent_id: payment_intent,
        amount_minor: amount("amount_total", session.amount_total)?,
        currency: currency("currency", session.currency.as_deref())?,
        paid_at: unix(event.created),
    };
    let outcome = store::record_payment(&mut tx, &payment).await?;
    payment_result(state, tx, event, invoice, outcome, false).await
}

async fn checkout_expired(state: &AppState, event: &Event) -> anyhow::Result<Applied> {
    let session: CheckoutSession = object(event)?;
    let Some(tenant) = payment_tenant(state, event, &session.metadata).await? else {
        return record_only(state, event, "tenant_not_found").await;
    };
    let Some(mut tx) = begin(state, event, tenant).await? else {
        return Ok(Applied::Duplicate);
    };
    store::close_checkout(&mut tx, &session.id, "expired").await?;
    let project = match invoice_id(&session.metadata) {
        Some(invoice) => project_of(&mut tx, invoice).await?,
        None => None,
    };
    finish(tx, event, Applied::Applied("applied")).await?;
    if let Some(project) = project {
        publish(state, project).await;
    }
    Ok(Applied::Applied("applied"))
}

async fn payment_succeeded(state: &AppState, event: &Event) -> anyhow::Result<Applied> {
    let intent: PaymentIntent = object(event)?;
    let Some(tenant) = payment_tenant(state, event, &intent.metadata).await? else {
        return record_only(state, event, "tenant_not_found").await;
    };
    let Some(invoice) = invoice_id(&intent.metadata) else {
        return record_in_tenant(state, event, tenant, "not_ours").await;
    };
    let Some(mut tx) = begin(state, event, tenant).await? else {
        return Ok(Applied::Duplicate);
    };
    let payment = PaymentReceived {
        invoice_id: invoice,
        payment_intent_id: &intent.id,
        amount_minor: match intent.amount_received {
            Some(received) => amount("amount_received", Some(received))?,
            None => amount("amount", intent.amount)?,
        },
        currency: currency("currency", intent.currency.as_deref())?,
        paid_at: unix(event.created),
    };
    let outcome = store::record_payment(&mut tx, &payment).await?;
    payment_result(state, tx, event, invoice, outcome, false).await
}

async fn payment_failed(state: &AppState, event: &Event) -> anyhow::Result<Applied> {
    let intent: PaymentIntent = object(event)?;
    let Some(tenant) = payment_tenant(state, event, &intent.metadata).await? else {
        return record_only(state, event, "tenant_not_found").await;
    };
    let Some(invoice) = invoice_id(&intent.metadata) else {
        return record_in_tenant(state, event, tenant, "not_ours").await;
    };
    let Some(mut tx) = begin(state, event, tenant).await? else {
        return Ok(Applied::Duplicate);
    };
    let error = intent.last_payment_error.as_ref();
    let recorded = store::record_payment_failure(
        &mut tx,
        invoice,
        error.and_then(|e| e.code.as_deref()),
        error.and_then(|e| e.decline_code.as_deref()),
        event.created,
    )
    .await?;
    let project = project_of(&mut tx, invoice).await?;
    if !recorded {
        return finish(tx, event, Applied::Ignored("ignored_older")).await;
    }
    let applied = finish(tx, event, Applied::Applied("applied")).await?;
    if let Some(project) = project {
        publish(state, project).await;
    }
    Ok(applied)
}

async fn charge_refunded(state: &AppState, event: &Event) -> anyhow::Result<Applied> {
    let charge: Charge = object(event)?;
    let Some(tenant) = payment_tenant(state, event, &charge.metadata).await? else {
        return record_only(state, event, "tenant_not_found").await;
    };
    // NOTE: the invoice is found through the charge's metadata, which our
    // Checkout Sessions copy onto the PaymentIntent and so onto its charges.
    let (Some(invoice), Some(payment_intent)) = (
        invoice_id(&charge.metadata),
        charge.payment_intent.as_deref(),
    ) else {
        return record_in_tenant(state, event, tenant, "not_ours").await;
    };
    let Some(mut tx) = begin(state, event, tenant).await? else {
        return Ok(Applied::Duplicate);
    };
    let refund = RefundReported {
        payment: PaymentReceived {
            invoice_id: invoice,
            payment_intent_id: payment_intent,
            amount_minor: amount("amount", charge.amount)?,
            currency: currency("currency", charge.currency.as_deref())?,
            paid_at: unix(charge.created.unwrap_or(event.created)),
        },
        amount_refunded_minor: amount(
            "amount_refunded",
            Some(charge.amount_refunded.unwrap_or(0)),
        )?,
    };
    if refund.amount_refunded_minor > refund.payment.amount_minor {
        return Err(Malformed::new(
            "amount_refunded",
            format!(
                "{} is more than the charge's amount of {}; a charge cannot refund more than it took",
                refund.amount_refunded_minor, refund.payment.amount_minor
            ),
        )
        .into());
    }
    let outcome = store::record_refund(&mut tx, &refund).await?;
    // A refund that arrives before the payment's own reports marks the
    // invoice paid, so it queues the receipt, which those reports then skip.
    payment_result(
        state,
        tx,
        event,
        invoice,
        outcome.payment,
        outcome.refund_grew,
    )
    .await
}

async fn subscription_changed(state: &AppState, event: &Event) -> anyhow::Result<Applied> {
    // Plan subscriptions live on the platform account. A subscription on a
    // studio's connected account is the studio's own business, and its
    // metadata must not move any studio's plan.
    if event.account.is_some() {
        return record_only(state, event, "not_ours").await;
    }
    let subscription: Subscription = object(event)?;
    let claimed = claimed_tenant(&subscription.metadata);
    let tenant = match claimed {
        Some(tenant) if state.db.tenant_exists(tenant).await? => Some(tenant),
        Some(_) => None,
        None => match subscription.customer.as_deref() {
            Some(customer) => state.db.resolve_stripe_customer(customer).await?,
            None => None,
        },
    };
    let Some(tenant) = tenant else {
        return record_only(state, event, "tenant_not_found").await;
    };
    // A customer id belongs to one studio only, so an event whose metadata
    // names another studio than the customer's cannot be applied to either.
    if let Some(customer) = subscription.customer.as_deref()
        && let Some(owner) = state.db.resolve_stripe_customer(customer).await?
        && owner != tenant
    {
        let malformed = Malformed::new(
            "customer",
            format!(
                "the customer belongs to studio {owner}, but metadata.studio_id names studio {tenant}"
            ),
        );
        return record_malformed(
            state,
            &event.id,
            &event.event_type,
            event.created,
            &malformed,
        )
        .await;
    }
    let status = if event.event_type == "customer.subscription.deleted" {
        Some(PlanStatus::Cancelled)
    } else {
        subscription
            .status
            .as_deref()
            .and_then(PlanStatus::from_stripe)
    };
    let Some(status) = status else {
        return record_in_tenant(state, event, tenant, "status_not_mapped").await;
    };
    let Some(mut tx) = begin(state, event, tenant).await? else {
        return Ok(Applied::Duplicate);
    };
    let change = SubscriptionChange {
        subscription_id: &subscription.id,
        customer_id: subscription.customer.as_deref(),
        status,
        trial_end: subscription.trial_end.map(unix),
        period_end: subscription.current_period_end().map(unix),
        event_created: event.created,
        subscription_created: subscription.created,
    };
    if store::apply_subscription(&mut tx, &change).await? {
        tracing::info!(tenant.id = %tenant, plan_status = status.as_str(), "plan status changed");
        finish(tx, event, Applied::Applied("applied")).await
    } else {
        finish(tx, event, Applied::Ignored("ignored_older")).await
    }
}

async fn account_updated(state: &AppState, event: &Event) -> anyhow::Result<Applied> {
    let account: Account = object(event)?;
    let Some(tenant) = state.db.resolve_stripe_account(&account.id).await? else {
        return record_only(state, event, "tenant_not_found").await;
    };
    let Some(mut tx) = begin(state, event, tenant).await? else {
        return Ok(Applied::Duplicate);
    };
    // NOTE: account flags carry no ordering field, so an older
    // account.updated arriving late can restore an older pair of flags
    // until the next one; the settings page re-reads the account from
    // Stripe when the studio returns from onboarding.
    store::set_account_state(
        &mut tx,
        &account.id,
        account.charges_enabled,
        account.details_submitted,
    )
    .await?;
    finish(tx, event, Applied::Applied("applied")).await
}

/// Finishes a payment event: queues the client's receipt when the invoice
/// became paid, stores the outcome, commits, and notifies open portal pages
/// that the invoice changed. `refund_grew` makes a report on a paid invoice
/// count as applied, because it recorded a refund.
async fn payment_result(
    state: &AppState,
    mut tx: TenantTx,
    event: &Event,
    invoice: InvoiceId,
    outcome: PaymentOutcome,
    refund_grew: bool,
) -> anyhow::Result<Applied> {
    // Only the report that moves the invoice to paid queues a receipt, and
    // the invoice row lock in record_payment lets one report do that.
    let notice = if outcome == PaymentOutcome::MarkedPaid {
        notices::queue_payment_receipt(&mut tx, invoice).await?
    } else {
        None
    };
    let applied = match outcome {
        PaymentOutcome::MarkedPaid => Applied::Applied(outcome.as_str()),
        PaymentOutcome::AmountMismatch { first_report } => {
            if first_report {
                log_amount_mismatch(event, tx.tenant_id(), invoice);
            }
            Applied::Ignored(outcome.as_str())
        }
        PaymentOutcome::AlreadyPaid if refund_grew => Applied::Applied("refund_recorded"),
        PaymentOutcome::AlreadyPaid | PaymentOutcome::InvoiceNotFound => {
            Applied::Ignored(outcome.as_str())
        }
    };
    let project = project_of(&mut tx, invoice).await?;
    let tenant = tx.tenant_id();
    finish(tx, event, applied).await?;
    if let Some(notice) = notice {
        state.queues.enqueue_committed_notice(tenant, notice).await;
    }
    if let Some(project) = project {
        publish(state, project).await;
    }
    Ok(applied)
}

/// Sends the studio owner "your plan payment failed" when an invoice of the
/// studio's current plan subscription could not be charged. The plan state
/// itself follows from `customer.subscription.updated`.
async fn plan_payment_failed(state: &AppState, event: &Event) -> anyhow::Result<Applied> {
    if event.account.is_some() {
        return record_only(state, event, "not_ours").await;
    }
    let invoice: Invoice = object(event)?;

    let tenant = match invoice.customer.as_deref() {
        Some(customer) => state.db.resolve_stripe_customer(customer).await?,
        None => None,
    };
    let Some(tenant) = tenant else {
        return record_only(state, event, "tenant_not_found").await;
    };
    let Some(mut tx) = begin(state, event, tenant).await? else {
        return Ok(Applied::Duplicate);
    };
    // An invoice of a replaced subscription, or one that is not for a
    // subscription at all, is no reason to ask for a new card.
    let current = store::account(&mut tx).await?.stripe_subscription_id;
    let ours = match (invoice.subscription_id(), current.as_deref()) {
        (Some(billed), Some(current)) => billed == current,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if !ours {
        return finish(tx, event, Applied::Ignored("not_current_subscription")).await;
    }
    // Stripe can report a final failed payment after the subscription was
    // deleted. A cancelled plan is not past due, so the notice would be false.
    if tenants::current(&mut tx).await?.plan_status == PlanStatus::Cancelled.as_str() {
        return finish(tx, event, Applied::Ignored("plan_cancelled")).await;
    }

    let notice = notices::queue_plan_payment_failed(&mut tx, &event.id).await?;
    let applied = finish(tx, event, Applied::Applied("applied")).await?;
    if let Some(notice) = notice {
        state.queues.enqueue_committed_notice(tenant, notice).await;
    }
    Ok(applied)
}

fn log_amount_mismatch(event: &Event, tenant: TenantId, invoice: InvoiceId) {
    tracing::error!(
        event.id = %event.id,
        tenant.id = %tenant,
        invoice.id = %invoice,
        "a Stripe payment does not match the invoice's amount or currency; \
         the payment is recorded and the invoice left unpaid"
    );
}

/// Opens the studio's transaction and records the event id in it. Returns
/// `None` for an id already recorded; the transaction is rolled back then.
async fn begin(
    state: &AppState,
    event: &Event,
    tenant: TenantId,
) -> anyhow::Result<Option<TenantTx>> {
    let mut tx = state.db.tenant(tenant).await?;
    let new = store::record_event(&mut tx, &event.id, &event.event_type, event.created).await?;
    Ok(new.then_some(tx))
}

/// Stores a non-default outcome with the event and commits.
async fn finish(mut tx: TenantTx, event: &Event, applied: Applied) -> anyhow::Result<Applied> {
    if applied.as_str() != "applied" {
        store::set_event_outcome(&mut tx, &event.id, applied.as_str()).await?;
    }
    tx.commit().await?;
    Ok(applied)
}

/// Records an event that has no effect in the studio's transaction.
async fn record_in_tenant(
    state: &AppState,
    event: &Event,
    tenant: TenantId,
    outcome: &'static str,
) -> anyhow::Result<Applied> {
    let Some(tx) = begin(state, event, tenant).await? else {
        return Ok(Applied::Duplicate);
    };
    finish(tx, event, Applied::Ignored(outcome)).await
}

/// Records an event that belongs to no studio.
async fn record_only(
    state: &AppState,
    event: &Event,
    outcome: &'static str,
) -> anyhow::Result<Applied> {
    let new = state
        .db
        .record_platform_event(&event.id, &event.event_type, event.created, outcome, None)
        .await?;
    Ok(match (new, outcome) {
        (false, _) => Applied::Duplicate,
        (true, "unhandled_type") => Applied::UnhandledType,
        (true, _) => Applied::Ignored(outcome),
    })
}

/// Finds the studio a payment event belongs to. An event on a connected
/// account belongs to the studio that owns the account, and its metadata
/// must not name another studio: a studio could otherwise create a session
/// on its own account naming another studio's invoice. An event on the
/// platform account belongs to the studio in its metadata.
async fn payment_tenant(
    state: &AppState,
    event: &Event,
    metadata: &Metadata,
) -> anyhow::Result<Option<TenantId>> {
    let claimed = claimed_tenant(metadata);
    match event.account.as_deref() {
        Some(account) => {
            let owner = state.db.resolve_stripe_account(account).await?;
            match (owner, claimed) {
                (Some(owner), Some(claimed)) if owner != claimed => {
                    tracing::warn!(
                        event.id = %event.id,
                        tenant.id = %owner,
                        "a Stripe event's metadata names another studio than the account's owner; ignored"
                    );
                    Ok(None)
                }
                (owner, _) => Ok(owner),
            }
        }
        None => match claimed {
            Some(tenant) if state.db.tenant_exists(tenant).await? => Ok(Some(tenant)),
            _ => Ok(None),
        },
    }
}

fn claimed_tenant(metadata: &Metadata) -> Option<TenantId> {
    metadata.get("studio_id").and_then(|id| id.parse().ok())
}

fn invoice_id(metadata: &Metadata) -> Option<InvoiceId> {
    metadata.get("invoice_id").and_then(|id| id.parse().ok())
}

async fn project_of(tx: &mut TenantTx, invoice: InvoiceId) -> anyhow::Result<Option<ProjectId>> {
    match invoices::get(tx, invoice).await {
        Ok(invoice) => Ok(Some(invoice.project_id)),
        Err(proofsheet_domain::DomainError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn publish(state: &AppState, project: ProjectId) {
    live::publish(
        &state.queues.connection(),
        state.queues.namespace(),
        project,
        ProjectEvent::Invoices,
    )
    .await;
}

fn unix(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or(DateTime::UNIX_EPOCH)
}
