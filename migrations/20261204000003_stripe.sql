-- Stripe: studios' connected accounts, their clients' Checkout payments, the
-- studios' own plan subscriptions, and the log of applied webhook events.

-- The studio's connected account (Stripe Connect), its Billing customer and
-- the subscription state. plan_event_created is the `created` time of the
-- newest subscription event applied, so an older event arriving late never
-- moves plan_status backwards.
ALTER TABLE tenants
    ADD COLUMN stripe_account_id text UNIQUE,
    ADD COLUMN stripe_charges_enabled boolean NOT NULL DEFAULT false,
    ADD COLUMN stripe_details_submitted boolean NOT NULL DEFAULT false,
    ADD COLUMN stripe_customer_id text UNIQUE,
    ADD COLUMN stripe_subscription_id text,
    ADD COLUMN plan_period_end timestamptz,
    ADD COLUMN plan_event_created bigint;

-- The last failed payment attempt on an invoice, for the portal's "payment
-- failed, try another card", and the refunded part of a paid invoice.
ALTER TABLE invoices
    ADD COLUMN payment_error_code text,
    ADD COLUMN payment_error_decline_code text,
    ADD COLUMN payment_error_event_created bigint,
    ADD COLUMN amount_refunded_minor bigint NOT NULL DEFAULT 0 CHECK (amount_refunded_minor >= 0);

-- One row per Stripe payment (PaymentIntent) received for an invoice. The
-- unique payment_intent_id is what makes the Checkout Session event and the
-- PaymentIntent event of the same payment record it once.
CREATE TABLE payments (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    invoice_id uuid NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    payment_intent_id text NOT NULL UNIQUE,
    amount_minor bigint NOT NULL CHECK (amount_minor >= 0),
    currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    amount_refunded_minor bigint NOT NULL DEFAULT 0 CHECK (amount_refunded_minor >= 0),
    paid_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE
);
CREATE INDEX payments_invoice ON payments (invoice_id);

-- Checkout Sessions created for invoices. An open, unexpired session is
-- reused instead of creating another, so a client cannot start two charges,
-- but only while its amount and currency are still the invoice's.
-- expire_requested marks an open session that must be expired at Stripe
-- because the studio edited the invoice's amount or marked it paid by hand;
-- the web service, the portal and the reconciliation job expire it.
CREATE TABLE checkout_sessions (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    invoice_id uuid NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    session_id text NOT NULL UNIQUE,
    url text NOT NULL,
    amount_minor bigint NOT NULL CHECK (amount_minor >= 0),
    currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'complete', 'expired')),
    expire_requested boolean NOT NULL DEFAULT false,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX checkout_sessions_invoice ON checkout_sessions (invoice_id, created_at DESC);
CREATE INDEX checkout_sessions_expire_requested ON checkout_sessions (tenant_id)
    WHERE expire_requested AND status = 'open';

ALTER TABLE payments ENABLE ROW LEVEL SECURITY;
ALTER TABLE payments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON payments
    USING (tenant_id = app_current_tenant())
    WITH CHECK (tenant_id = app_current_tenant());

ALTER TABLE checkout_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE checkout_sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON checkout_sessions
    USING (tenant_id = app_current_tenant())
    WITH CHECK (tenant_id = app_current_tenant());

-- Every webhook event applied or acknowledged, by Stripe's event id. It is a
-- platform table without tenant_id: the row is written in the same
-- transaction as the event's effect, so a second delivery of the same id
-- finds it and changes nothing.
CREATE TABLE stripe_events (
    id text PRIMARY KEY,
    type text NOT NULL,
    outcome text NOT NULL,
    created bigint NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Order of plan states within one second of Stripe event time, so that two
-- subscription events with the same `created` apply in the same order
-- whichever arrives first.
CREATE FUNCTION app_plan_rank(p_status text) RETURNS integer
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT CASE p_status WHEN 'trialing' THEN 0 WHEN 'active' THEN 1
                               WHEN 'past_due' THEN 2 ELSE 3 END $$;

-- Pre-tenant look-ups for webhooks and reconciliation, returning ids only.
CREATE FUNCTION app_resolve_stripe_account(p_account text)
    RETURNS TABLE (tenant_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$ SELECT t.id FROM public.tenants t WHERE t.stripe_account_id = p_account $$;

CREATE FUNCTION app_resolve_stripe_customer(p_customer text)
    RETURNS TABLE (tenant_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$ SELECT t.id FROM public.tenants t WHERE t.stripe_customer_id = p_customer $$;

CREATE FUNCTION app_tenant_exists(p_tenant uuid)
    RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$ SELECT EXISTS (SELECT 1 FROM public.tenants t WHERE t.id = p_tenant) $$;

-- Studios whose connected account can take payments and that have invoices
-- still open, for the job that heals lost payment webhooks.
CREATE FUNCTION app_stripe_accounts_with_open_invoices()
    RETURNS TABLE (tenant_id uuid, stripe_account_id text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$
        SELECT t.id, t.stripe_account_id FROM public.tenants t
        WHERE t.stripe_account_id IS NOT NULL
          AND EXISTS (SELECT 1 FROM public.invoices i WHERE i.tenant_id = t.id AND i.status <> 'paid')
        ORDER BY t.id
    $$;

-- Studios with open Checkout Sessions marked for expiry, for the job that
-- retries expiring them when the first call to Stripe failed.
CREATE FUNCTION app_stripe_accounts_with_stale_checkouts()
    RETURNS TABLE (tenant_id uuid, stripe_account_id text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$
        SELECT t.id, t.stripe_account_id FROM public.tenants t
        WHERE t.stripe_account_id IS NOT NULL
          AND EXISTS (SELECT 1 FROM public.checkout_sessions s
                      WHERE s.tenant_id = t.id AND s.expire_requested AND s.status = 'open')
        ORDER BY t.id
    $$;

REVOKE ALL ON FUNCTION app_resolve_stripe_account(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION app_stripe_accounts_with_stale_checkouts() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_stripe_accounts_with_stale_checkouts() TO proofsheet_app;
REVOKE ALL ON FUNCTION app_resolve_stripe_customer(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION app_tenant_exists(uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION app_stripe_accounts_with_open_invoices() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_resolve_stripe_account(text) TO proofsheet_app;
GRANT EXECUTE ON FUNCTION app_resolve_stripe_customer(text) TO proofsheet_app;
GRANT EXECUTE ON FUNCTION app_tenant_exists(uuid) TO proofsheet_app;
GRANT EXECUTE ON FUNCTION app_stripe_accounts_with_open_invoices() TO proofsheet_app;
GRANT EXECUTE ON FUNCTION app_plan_rank(text) TO proofsheet_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON payments, checkout_sessions TO proofsheet_app;
-- Event records are evidence of what was applied: the app role inserts them
-- and may only set the outcome of the row it inserted in the same transaction.
GRANT SELECT, INSERT ON stripe_events TO proofsheet_app;
GRANT UPDATE (outcome) ON stripe_events TO proofsheet_app;
