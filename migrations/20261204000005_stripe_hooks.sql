-- Webhook and reconciliation records for ops and the studio: why an event
-- could not be applied, which subscription is the studio's current one,
-- a payment that does not match its invoice, and email notices that come
-- from Stripe events.

-- Why an event was acknowledged without an effect, for outcomes that need
-- more than their name, such as 'malformed' ("amount_total: a negative
-- amount"). NULL for the other outcomes.
ALTER TABLE stripe_events ADD COLUMN detail text;

-- The `created` time (Unix seconds) of the studio's current subscription
-- object. An event of another subscription created before it belongs to a
-- subscription the studio has replaced, and never moves the plan.
ALTER TABLE tenants ADD COLUMN plan_subscription_created bigint;

-- Set on a payment whose amount or currency differs from its invoice's, the
-- first time it is reported, so the studio sees it and it is logged once.
ALTER TABLE payments ADD COLUMN amount_mismatch boolean NOT NULL DEFAULT false;

-- Email notices caused by Stripe events: a client's receipt for an invoice
-- paid through Stripe (one per invoice, like an overdue notice), and the
-- studio owner's "your plan payment failed" for each failed plan invoice,
-- which has no invoice row of ours and is keyed by the event id instead.
ALTER TABLE notices
    ALTER COLUMN invoice_id DROP NOT NULL,
    ADD COLUMN stripe_event_id text,
    DROP CONSTRAINT notices_kind_check,
    ADD CONSTRAINT notices_kind_check
        CHECK (kind IN ('invoice_overdue', 'payment_receipt', 'plan_payment_failed')),
    ADD CONSTRAINT notices_subject_check
        CHECK (CASE kind WHEN 'plan_payment_failed' THEN stripe_event_id IS NOT NULL
                         ELSE invoice_id IS NOT NULL END);
CREATE UNIQUE INDEX notices_stripe_event ON notices (stripe_event_id, kind, recipient)
    WHERE stripe_event_id IS NOT NULL;
