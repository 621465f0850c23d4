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
