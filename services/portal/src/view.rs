//! The client's view of a project: loaded in one transaction, then shaped
//! for the page template and for the `/state` JSON.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use proofsheet_domain::db::TenantTx;
use proofsheet_domain::db::invoices::{self, Invoice, InvoiceJson};
use proofsheet_domain::db::photos::{self, Photo, PhotoStatus};
use proofsheet_domain::db::projects::{self, Project, Response};
use proofsheet_domain::db::stripe::{self, InvoicePayment};
use proofsheet_domain::db::tenants::{self, Tenant};
use proofsheet_domain::{
    DomainError, InvoiceId, InvoiceStatus, PhotoId, ProjectId, ResponseKind, Stage,
};
use proofsheet_media::RenditionSize;
use serde::Serialize;

/// Accent colour used when the stored one is not a `#rrggbb` colour.
const DEFAULT_ACCENT: &str = "3b5bdb";

/// A project as its client may see it, at one moment.
pub struct Snapshot {
    pub tenant: Tenant,
    pub project: Project,
    pub invoices: Vec<Invoice>,
    /// Stripe details of each invoice: refunds, failed attempts, open
    /// Checkout Sessions.
    pub payments: HashMap<InvoiceId, InvoicePayment>,
    /// Whether the studio's connected Stripe account takes card payments.
    /// The handler clears it when this portal has no Stripe client.
    pub online_payment: bool,
    /// Whether the client just came back from Stripe Checkout, so unpaid
    /// invoices with an open session show "Payment processing".
    pub returned_from_checkout: bool,
    /// Photos the client may see: none before the photos are ready, and never
    /// those whose thumbnails failed.
    pub photos: Vec<Photo>,
    pub favourites: HashSet<PhotoId>,
    /// Oldest first.
    pub responses: Vec<Response>,
}

impl Snapshot {
    /// Loads everything the portal shows of `project`.
    pub async fn load(tx: &mut TenantTx, project: ProjectId) -> Result<Self, DomainError> {
        let tenant = tenants::current(tx).await?;
        let project = projects::get(tx, project).await?;
        let invoices = invoices::for_project(tx, project.id).await?;
        let payments = stripe::invoice_payments(tx, project.id).await?;
        let account = stripe::account(tx).await?;
        let online_payment = account.stripe_account_id.is_some() && account.charges_enabled;
        let (photos, favourites) = if project.stage.photos_visible() {
            let photos: Vec<Photo> = photos::for_project(tx, project.id)
                .await?
                .into_iter()
                .filter(|photo| photo.status != PhotoStatus::Failed)
                .collect();
            let visible: HashSet<PhotoId> = photos.iter().map(|photo| photo.id).collect();
            let favourites = projects::favourites(tx, project.id)
                .await?
                .into_iter()
                .filter(|id| visible.contains(id))
                .collect();
            (photos, favourites)
        } else {
            (Vec::new(), HashSet::new())
        };
        let responses = projects::responses(tx, project.id).await?;
        Ok(Self {
            tenant,
            project,
            invoices,
            payments,
            online_payment,
            returned_from_checkout: false,
            photos,
            favourites,
            responses,
        })
    }

    /// Returns the `/state` JSON at `now`.
    pub fn state(&self, now: DateTime<Utc>) -> StateJson {
        let tz = self.tenant.tz();
        let stage = self.project.stage;
        StateJson {
            stage,
            stage_label: stage.label(),
            stage_index: stage.index(),
            photos_visible: stage.photos_visible(),
            invoices: self
                .invoices
                .iter()
                .map(|invoice| invoice.to_json(tz, now))
                .collect(),
            photo_count: self.photos.len(),
            favourite_count: self.favourites.len(),
            response_count: self.responses.len(),
        }
    }

    /// Returns the page template's context at `now`.
    pub fn page(&self, token: &str, asset_version: &str, now: DateTime<Utc>) -> PageContext {
        let tz = self.tenant.tz();
        let stage = self.project.stage;
        let total = self.photos.len();
        PageContext {
            token: token.to_owned(),
            asset_version: asset_version.to_owned(),
            studio_name: self.tenant.name.clone(),
            accent: accent_hex(&self.tenant.accent_colour),
            title: self.project.title.clone(),
            client_name: self.project.client_name.clone(),
            stages: stage_steps(stage),
            stage_label: stage.label(),
            invoices: self
                .invoices
                .iter()
                .map(|invoice| {
                    let payment = self.payments.get(&invoice.id);
                    let mut view = InvoiceView::new(invoice, tz, now);
                    view.add_payment(
                        invoice,
                        payment,
                        self.online_payment,
                        self.returned_from_checkout,
                    );
                    view
                })
                .collect(),
            photos_visible: stage.photos_visible(),
            expect_photos: expect_photos(stage),
            photos: self
                .photos
                .iter()
                .enumerate()
                .map(|(i, photo)| PhotoView::new(photo, i + 1, total, &self.favourites))
                .collect(),
            favourite_count: self.favourites.len(),
            can_respond: stage.photos_visible(),
            response_prompt: self.response_prompt(tz),
            responses: self
                .responses
                .iter()
                .rev()
                .map(|response| ResponseView::new(response, tz))
                .collect(),
        }
    }

    fn response_prompt(&self, tz: Tz) -> String {
        let studio = &self.tenant.name;
        let last = self.responses.last();
        let when = |response: &Response| format_time(response.created_at, tz);
        match (self.project.stage, last) {
            (Stage::Complete, _) => {
                format!("This project is complete. You can still send {studio} a response.")
            }
            (Stage::Approved, Some(response)) if response.kind.0 == ResponseKind::Approve => {
                format!(
                    "You approved the photos on {}. If you change your mind, you can still \
                     ask for changes.",
                    when(response)
                )
            }
            (_, Some(response)) if response.kind.0 == ResponseKind::Changes => format!(
                "You asked for changes on {}. You can add more or approve the photos at any \
                 time.",
                when(response)
            ),
            _ => format!(
                "When you are happy with the photos, choose \u{201c}Looks great!\u{201d}. If \
                 you would like something changed, choose \u{201c}Some changes\u{201d} and \
                 tell {studio} what."
            ),
        }
    }
}

/// The `/state` JSON: enough for an open page to tell whether it is stale.
#[derive(Debug, Serialize)]
pub struct StateJson {
    pub stage: Stage,
    pub stage_label: &'static str,
    pub stage_index: usize,
    pub photos_visible: bool,
    pub invoices: Vec<InvoiceJson>,
    pub photo_count: usize,
    pub favourite_count: usize,
    pub response_count: usize,
}

/// The page template's context.
#[derive(Debug, Serialize)]
pub struct PageContext {
    token: String,
    asset_version: String,
    studio_name: String,
    /// Six lowercase hex digits, without `#`.
    accent: String,
    title: String,
    client_name: String,
    stages: Vec<StageStep>,
    stage_label: &'static str,
    invoices: Vec<InvoiceView>,
    photos_visible: bool,
    expect_photos: &'static str,
    photos: Vec<PhotoView>,
    favourite_count: usize,
    can_respond: bool,
    response_prompt: String,
    /// Newest first.
    responses: Vec<ResponseView>,
}

/// One step of the status bar.
#[derive(Debug, Serialize)]
struct StageStep {
    label: &'static str,
    /// `done`, `current` or `upcoming`, used as a CSS class.
    state: &'static str,
    /// The state in words, for screen readers.
    state_text: &'static str,
}

fn stage_steps(current: Stage) -> Vec<StageStep> {
    Stage::ALL
        .into_iter()
        .map(|stage| {
            let (state, state_text) = match stage.cmp(&current) {
                std::cmp::Ordering::Less => ("done", "done"),
                std::cmp::Ordering::Equal => ("current", "current stage"),
                std::cmp::Ordering::Greater => ("upcoming", "to come"),
            };
            StageStep {
                label: stage.label(),
                state,
                state_text,
            }
        })
        .collect()
}

/// Returns the line shown in place of the gallery before the photos are ready.
fn expect_photos(stage: Stage) -> &'static str {
    match stage {
        Stage::Booked => "Your photos will appear here after the shoot, once editing is done.",
        Stage::ShootDone => "The shoot is done. Your photos will appear here once editing is done.",
        Stage::Editing => {
            "Your photos are being edited. They will appear here once editing is done."
        }
        Stage::PhotosReady | Stage::Approved | Stage::Complete => "",
    }
}

#[derive(Debug, Serialize)]
struct InvoiceView {
    label: &'static str,
    amount: String,
    due: String,
    /// `paid`, `unpaid` or `overdue`, used as a CSS class.
    status: &'static str,
    status_label: &'static str,
    /// The date it was paid, in the studio's time zone.
    paid_on: Option<String>,
    id: String,
    /// Whether the pay button is shown: unpaid, and the studio takes card
    /// payments through Stripe.
    payable: bool,
    /// Whether "Payment processing" is shown in place of the pay button.
    processing: bool,
    /// The refund line of a paid invoice, such as "Partially refunded (€150.00)".
    refunded: Option<String>,
    /// The reason the last card payment failed, with "try another card".
    payment_failed: Option<String>,
}

impl InvoiceView {
    fn new(invoice: &Invoice, tz: Tz, now: DateTime<Utc>) -> Self {
        let status = invoice.status(tz, now);
        let paid_on = match status {
            InvoiceStatus::Paid => invoice
                .paid_at
                .map(|at| format_date(at.with_timezone(&tz).date_naive())),
            InvoiceStatus::Unpaid | InvoiceStatus::Overdue => None,
        };
        Self {
            label: invoice.kind.label(),
            amount: invoice.amount.display(),
            due: format_date(invoice.due_date),
            status: status.as_str(),
            status_label: status.label(),
            paid_on,
            id: invoice.id.to_string(),
            payable: false,
            processing: false,
            refunded: None,
            payment_failed: None,
        }
    }

    /// Adds the invoice's Stripe state: the pay button, "Payment
    /// processing" after a return from Checkout, refunds and failed attempts.
    fn add_payment(
        &mut self,
        invoice: &Invoice,
        payment: Option<&InvoicePayment>,
        online_payment: bool,
        returned_from_checkout: bool,
    ) {
        let unpaid = invoice.paid_at.is_none();
        let checkout_open = payment.is_some_and(|p| p.checkout_open);
        self.processing = unpaid && online_payment && returned_from_checkout && checkout_open;
        self.payable = unpaid && online_payment && !self.processing;
        let Some(payment) = payment else {
            return;
        };
        if payment.amount_refunded_minor > 0 {
            let refunded = proofsheet_domain::Money {
                amount_minor: payment.amount_refunded_minor,
                currency: invoice.amount.currency,
            };
            let extent = if payment.amount_refunded_minor >= invoice.amount.amount_minor {
                "Refunded in full"
            } else {
                "Partially refunded"
            };
            self.refunded = Some(format!("{extent} ({})", refunded.display()));
        }
        if unpaid && payment.payment_error_code.is_some() {
            let reason = match payment.payment_error_decline_code.as_deref() {
                Some("insufficient_funds") => "The card has insufficient funds.",
                Some("expired_card") => "The card has expired.",
                _ => "The card was declined.",
            };
            self.payment_failed = Some(format!("Payment failed. {reason} Try another card."));
        }
    }
}

#[derive(Debug, Serialize)]
struct PhotoView {
    id: String,
    /// Position in the gallery, from 1.
    number: usize,
    total: usize,
    ready: bool,
    favourite: bool,
    /// Size of the grid rendition, so the page reserves its space before it
    /// loads. Square until the thumbnail job has measured it.
    width: i32,
    height: i32,
    /// Size of the lightbox rendition, for the viewer's `width` and `height`
    /// attributes. Square until the thumbnail job has measured the photo.
    lightbox_width: u32,
    lightbox_height: u32,
    /// Query appended to every rendition URL, `?v=` and the time the
    /// renditions were written in microseconds since the Unix epoch, or empty
    /// when that time is unknown. Renditions are cached as immutable, so a
    /// regenerated rendition reaches clients only under a new URL.
    version_query: String,
    /// Whether the tile is likely below the first screen, so its image may
    /// load lazily. The first tiles load at once, because lazy loading would
    /// delay what the client sees first.
    lazy: bool,
}

/// Number of tiles that load eagerly: two rows of the widest grid layout.
const EAGER_TILES: usize = 8;

impl PhotoView {
    fn new(photo: &Photo, number: usize, total: usize, favourites: &HashSet<PhotoId>) -> Self {
        let side = |value: Option<i32>| value.and_then(|v| u32::try_from(v).ok()).unwrap_or(1024);
        let (lightbox_width, lightbox_height) =
            RenditionSize::Lightbox.fit(side(photo.width), side(photo.height));
        Self {
            id: photo.id.to_string(),
            number,
            total,
            ready: photo.status == PhotoStatus::Ready,
            favourite: favourites.contains(&photo.id),
            width: photo.grid_width.unwrap_or(400),
            height: photo.grid_height.unwrap_or(400),
            lightbox_width,
            lightbox_height,
            version_query: photo
                .rendition_version()
                .map(|version| format!("?v={version}"))
                .unwrap_or_default(),
            lazy: number > EAGER_TILES,
        }
    }
}

#[derive(Debug, Serialize)]
struct ResponseView {
    /// `approve` or `changes`, used as a CSS class.
    kind: &'static str,
    label: &'static str,
    text: String,
    at: String,
}

impl ResponseView {
    fn new(response: &Response, tz: Tz) -> Self {
        let kind = response.kind.0;
        Self {
            kind: kind.as_str(),
            label: response_label(kind),
            text: response.text.clone(),
            at: format_time(response.created_at, tz),
        }
    }
}

/// Returns the button text of a response, which the history repeats.
pub fn response_label(kind: ResponseKind) -> &'static str {
    match kind {
        ResponseKind::Approve => "Looks great!",
        ResponseKind::Changes => "Some changes",
    }
}

/// Returns the accent colour as six lowercase hex digits, or the default
/// when `colour` is not of the form `#rrggbb`.
pub fn accent_hex(colour: &str) -> String {
    match colour.strip_prefix('#') {
        Some(hex) if is_hex_colour(hex) => hex.to_ascii_lowercase(),
        _ => DEFAULT_ACCENT.to_owned(),
    }
}

/// Returns whether `hex` is exactly six hex digits.
pub fn is_hex_colour(hex: &str) -> bool {
    hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit())
}

/// Formats a date the way people write it, e.g. `15 March 2026`.
fn format_date(date: NaiveDate) -> String {
    date.format("%-d %B %Y").to_string()
}

/// Formats a moment in the studio's time zone, e.g. `15 March 2026 at 14:05`.
fn format_time(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz)
        .format("%-d %B %Y at %H:%M")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_steps_mark_done_current_upcoming() {
        let steps = stage_steps(Stage::Editing);
        let states: Vec<_> = steps.iter().map(|step| step.state).collect();
        assert_eq!(
            states,
            [
                "done", "done", "current", "upcoming", "upcoming", "upcoming"
            ]
        );
        let labels: Vec<_> = steps.iter().map(|step| step.label).collect();
        assert_eq!(
            labels,
            [
                "Booked",
                "Shoot done",
                "Editing",
                "Photos ready",
                "Approved",
                "Complete"
            ]
        );
    }

    #[test]
    fn accent_hex_falls_back_on_bad_colour() {
        assert_eq!(accent_hex("#AABBCC"), "aabbcc");
        assert_eq!(accent_hex("red"), DEFAULT_ACCENT);
        assert_eq!(accent_hex("#12345"), DEFAULT_ACCENT);
        assert_eq!(accent_hex("#12345g"), DEFAULT_ACCENT);
    }

    #[test]
    fn dates_read_naturally() {
        let date = NaiveDate::from_ymd_opt(2026, 3, 5).expect("valid date");
        assert_eq!(format_date(date), "5 March 2026");
        let at = DateTime::parse_from_rfc3339("2026-03-05T23:30:00Z")
            .expect("valid timestamp")
            .with_timezone(&Utc);
        assert_eq!(
            format_time(at, chrono_tz::Europe::Berlin),
            "6 March 2026 at 00:30"
        );
    }

    #[test]
    fn every_stage_before_photos_has_an_expectation() {
        for stage in Stage::ALL {
            assert_eq!(expect_photos(stage).is_empty(), stage.photos_visible());
        }
    }
}
