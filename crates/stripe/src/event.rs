//! The parts of Stripe events that Proofsheet reads. Every struct ignores
//! fields it does not name and treats the ones it names as optional where
//! Stripe may leave them out, so a new API version that adds fields is
//! still read.

use std::collections::HashMap;

use serde::Deserialize;

/// An event envelope. `data.object` stays raw JSON until the handler for
/// the event type reads it.
#[derive(Clone, Debug, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// Unix seconds when Stripe created the event.
    pub created: i64,
    /// The connected account the event happened on; `None` for events on
    /// the platform account.
    #[serde(default)]
    pub account: Option<String>,
    pub data: EventData,
}

/// The event's object, and on `*.updated` events the changed attributes.
#[derive(Clone, Debug, Deserialize)]
pub struct EventData {
    pub object: serde_json::Value,
}

impl Event {
    /// Parses an event body. Only `id`, `type`, `created` and `data.object`
    /// are required.
    ///
    /// # Errors
    ///
    /// The JSON error when the body is not an event.
    pub fn parse(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }

    /// Reads `data.object` as `T`.
    ///
    /// # Errors
    ///
    /// The JSON error naming the field that did not fit.
    pub fn object<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.data.object)
    }
}

/// `metadata` on Stripe objects: string keys and values.
pub type Metadata = HashMap<String, String>;

/// A Checkout Session (`checkout.session.*`).
#[derive(Clone, Debug, Deserialize)]
pub struct CheckoutSession {
    pub id: String,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub payment_status: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub amount_total: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    /// The PaymentIntent's id, or the object when the request expanded it.
    #[serde(default)]
    pub payment_intent: Option<Expandable<PaymentIntent>>,
    #[serde(default)]
    pub client_reference_id: Option<String>,
    #[serde(default)]
    pub customer: Option<String>,
    #[serde(default)]
    pub subscription: Option<String>,
    #[serde(default)]
    pub created: Option<i64>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub metadata: Metadata,
}

impl CheckoutSession {
    /// Returns the id of the session's PaymentIntent, expanded or not.
    pub fn payment_intent_id(&self) -> Option<&str> {
        self.payment_intent.as_ref().map(Expandable::id)
    }

    /// Returns when the payment succeeded, in Unix seconds: the `created`
    /// time of the PaymentIntent's latest charge, else of the PaymentIntent.
    /// Both are known only when the request expanded them.
    pub fn payment_created(&self) -> Option<i64> {
        let Some(Expandable::Object(intent)) = &self.payment_intent else {
            return None;
        };
        match &intent.latest_charge {
            Some(Expandable::Object(charge)) => charge.created.or(intent.created),
            _ => intent.created,
        }
    }
}

/// A field that contains an object's id, or the object itself when the request
/// asked Stripe to expand it (`expand[]=…`).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Expandable<T> {
    Id(String),
    Object(Box<T>),
}

/// An object with an `id`, so [`Expandable::id`] can read it.
pub trait HasId {
    /// Returns the object's id.
    fn id(&self) -> &str;
}

impl<T: HasId> Expandable<T> {
    /// Returns the id, from the object when it is expanded.
    pub fn id(&self) -> &str {
        match self {
            Expandable::Id(id) => id,
            Expandable::Object(object) => object.id(),
        }
    }
}

impl HasId for PaymentIntent {
    fn id(&self) -> &str {
        &self.id
    }
}

impl HasId for Charge {
    fn id(&self) -> &str {
        &self.id
    }
}

/// A PaymentIntent (`payment_intent.*`).
#[derive(Clone, Debug, Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default)]
    pub amount_received: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub created: Option<i64>,
    #[serde(default)]
    pub last_payment_error: Option<PaymentError>,
    /// The latest charge's id, or the charge when the request expanded it.
    #[serde(default)]
    pub latest_charge: Option<Expandable<Charge>>,
    #[serde(default)]
    pub metadata: Metadata,
}

/// Why a payment attempt failed.
#[derive(Clone, Debug, Deserialize)]
pub struct PaymentError {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub decline_code: Option<String>,
}

/// A Charge (`charge.*`). Events of API versions since 2022-11-15 carry no
/// `refunds` list, so refunds are read from `amount_refunded`.
#[derive(Clone, Debug, Deserialize)]
pub struct Charge {
    pub id: String,
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default)]
    pub amount_refunded: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub paid: Option<bool>,
    #[serde(default)]
    pub captured: Option<bool>,
    #[serde(default)]
    pub payment_intent: Option<String>,
    #[serde(default)]
    pub created: Option<i64>,
    #[serde(default)]
    pub metadata: Metadata,
}

/// A Billing subscription (`customer.subscription.*`).
#[derive(Clone, Debug, Deserialize)]
pub struct Subscription {
    pub id: String,
    /// Unix seconds when the subscription was created.
    #[serde(default)]
    pub created: Option<i64>,
    #[serde(default)]
    pub customer: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub trial_end: Option<i64>,
    #[serde(default)]
    pub items: Option<List<SubscriptionItem>>,
    #[serde(default)]
    pub metadata: Metadata,
}

impl Subscription {
    /// The end of the current billing period. Since API version 2025-03-31
    /// it is on each item, not on the subscription.
    pub fn current_period_end(&self) -> Option<i64> {
        self.items
            .as_ref()
            .and_then(|items| items.data.iter().filter_map(|i| i.current_period_end).max())
    }
}

/// One item of a subscription.
#[derive(Clone, Debug, Deserialize)]
pub struct SubscriptionItem {
    #[serde(default)]
    pub current_period_end: Option<i64>,
}

/// A Billing invoice (`invoice.*`), of a studio's plan.
#[derive(Clone, Debug, Deserialize)]
pub struct Invoice {
    pub id: String,
    #[serde(default)]
    pub customer: Option<String>,
    /// The subscription, on API versions before 2025-03-31.
    #[serde(default)]
    pub subscription: Option<String>,
    /// The object the invoice belongs to. Since API version 2025-03-31 it
    /// names the subscription.
    #[serde(default)]
    pub parent: Option<InvoiceParent>,
}

impl Invoice {
    /// Returns the id of the subscription the invoice bills, whichever API
    /// version sent it.
    pub fn subscription_id(&self) -> Option<&str> {
        let from_parent = self
            .parent
            .as_ref()
            .and_then(|parent| parent.subscription_details.as_ref())
            .and_then(|details| details.subscription.as_deref());
        from_parent.or(self.subscription.as_deref())
    }
}

/// `parent` of an invoice.
#[derive(Clone, Debug, Deserialize)]
pub struct InvoiceParent {
    #[serde(default)]
    pub subscription_details: Option<SubscriptionDetails>,
}

/// `parent.subscription_details` of an invoice.
#[derive(Clone, Debug, Deserialize)]
pub struct SubscriptionDetails {
    #[serde(default)]
    pub subscription: Option<String>,
}

/// A connected account (`account.updated`).
#[derive(Clone, Debug, Deserialize)]
pub struct Account {
    pub id: String,
    #[serde(default)]
    pub charges_enabled: bool,
    #[serde(default)]
    pub details_submitted: bool,
}

/// A Stripe list object.
#[derive(Clone, Debug, Deserialize)]
pub struct List<T> {
    pub data: Vec<T>,
    #[serde(default)]
    pub has_more: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_ignored() {
        let body = br#"{"id":"evt_1","type":"x.y","created":5,"new_field":{"a":1},
            "data":{"object":{"id":"ch_1","amount":10,"brand_new":true}}}"#;
        let event = Event::parse(body).expect("event parses");
        assert_eq!(event.event_type, "x.y");
        let charge: Charge = event.object().expect("charge parses");
        assert_eq!(charge.amount, Some(10));
        assert_eq!(charge.amount_refunded, None);
    }

    #[test]
    fn expanded_payment_intent_gives_charge_time() {
        let session: CheckoutSession = serde_json::from_str(
            r#"{"id":"cs_1","created":100,"payment_intent":{"id":"pi_1","created":150,
                "latest_charge":{"id":"ch_1","created":170}}}"#,
        )
        .expect("session parses");
        assert_eq!(session.payment_intent_id(), Some("pi_1"));
        assert_eq!(session.payment_created(), Some(170));

        let plain: CheckoutSession =
            serde_json::from_str(r#"{"id":"cs_2","payment_intent":"pi_2"}"#)
                .expect("session parses");
        assert_eq!(plain.payment_intent_id(), Some("pi_2"));
        assert_eq!(plain.payment_created(), None);
    }

    #[test]
    fn period_end_comes_from_items() {
        let subscription: Subscription = serde_json::from_str(
            r#"{"id":"sub_1","items":{"data":[{"current_period_end":7},{"current_period_end":9}]}}"#,
        )
        .expect("subscription parses");
        assert_eq!(subscription.current_period_end(), Some(9));
    }
}
