-- Proofsheet schema. Every tenant-owned table carries tenant_id and is covered
-- by a row-level-security policy keyed on the transaction-local setting
-- app.tenant_id, so a query that forgets its tenant filter still sees only the
-- current tenant's rows, and with no tenant set it sees nothing.

-- The services log in as this role. It owns nothing, is no superuser and does
-- not bypass RLS; the migration runner (the table owner) grants it DML only.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'proofsheet_app') THEN
        CREATE ROLE proofsheet_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;

-- NULLIF turns the empty string left behind by an ended transaction-local
-- setting into NULL, so policies compare against NULL and match no row.
CREATE FUNCTION app_current_tenant() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$ SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid $$;

CREATE TABLE tenants (
    id uuid PRIMARY KEY,
    name text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 120),
    time_zone text NOT NULL,
    accent_colour text NOT NULL DEFAULT '#3b5bdb' CHECK (accent_colour ~ '^#[0-9a-fA-F]{6}$'),
    plan_status text NOT NULL DEFAULT 'trialing'
        CHECK (plan_status IN ('trialing', 'active', 'past_due', 'cancelled')),
    trial_ends_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email text NOT NULL,
    password_hash text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id)
);
-- One login per address across all studios, so log-in needs no studio name.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE sessions (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    user_id uuid NOT NULL,
    token_hash bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE password_resets (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    user_id uuid NOT NULL,
    token_hash bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE api_keys (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name text NOT NULL,
    key_hash bytea NOT NULL UNIQUE,
    key_prefix text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

CREATE TABLE projects (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    title text NOT NULL,
    client_name text NOT NULL,
    client_email text NOT NULL,
    shoot_date date NOT NULL,
    stage text NOT NULL DEFAULT 'booked'
        CHECK (stage IN ('booked', 'shoot_done', 'editing', 'photos_ready', 'approved', 'complete')),
    portal_token text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id)
);
CREATE INDEX projects_tenant_stage ON projects (tenant_id, stage, created_at DESC);

CREATE TABLE invoices (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    project_id uuid NOT NULL,
    kind text NOT NULL CHECK (kind IN ('deposit', 'final')),
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    due_date date NOT NULL,
    status text NOT NULL DEFAULT 'unpaid' CHECK (status IN ('unpaid', 'paid', 'overdue')),
    paid_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, kind),
    CHECK ((status = 'paid') = (paid_at IS NOT NULL)),
    FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX invoices_unpaid_due ON invoices (due_date) WHERE status = 'unpaid';

CREATE TABLE photos (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    project_id uuid NOT NULL,
    file_name text NOT NULL,
    byte_size bigint NOT NULL,
    status text NOT NULL DEFAULT 'processing' CHECK (status IN ('processing', 'ready', 'failed')),
    width integer,
    height integer,
    grid_width integer,
    grid_height integer,
    error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    CHECK (status <> 'failed' OR error IS NOT NULL),
    FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX photos_project ON photos (project_id, created_at, id);

-- A project has one client, so a favourite is a property of the photo.
CREATE TABLE favourites (
    photo_id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    project_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, photo_id) REFERENCES photos (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id) ON DELETE CASCADE
);

-- Client responses are history: the app role may only insert and read them.
CREATE TABLE responses (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    project_id uuid NOT NULL,
    kind text NOT NULL CHECK (kind IN ('approve', 'changes')),
    text text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK (kind = 'approve' OR length(btrim(text)) > 0),
    FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX responses_project ON responses (project_id, created_at, id);

-- Email notices waiting to be sent. The unique key is what makes "one notice
-- per recipient per overdue invoice" hold however many workers run.
CREATE TABLE notices (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    invoice_id uuid NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('invoice_overdue')),
    recipient text NOT NULL CHECK (recipient IN ('client', 'studio')),
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    UNIQUE (invoice_id, kind, recipient)
);
CREATE INDEX notices_unsent ON notices (created_at) WHERE sent_at IS NULL;

-- Row-level security on every tenant-owned table, forced so that even the
-- owner is filtered.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (id = app_current_tenant())
    WITH CHECK (id = app_current_tenant());

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['users', 'sessions', 'password_resets', 'api_keys', 'projects',
                             'invoices', 'photos', 'favourites', 'responses', 'notices']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = app_current_tenant()) '
            'WITH CHECK (tenant_id = app_current_tenant())', t);
    END LOOP;
END
$$;

-- Entry points that must find a row before the tenant is known: a portal token,
-- a session cookie, an API key, a log-in email and a reset link. Each runs with
-- the rights of its owner, the superuser that applies migrations (superusers
-- are not subject to RLS), reads rows by an unguessable key or the address,
-- and returns ids only.
CREATE FUNCTION app_resolve_portal_token(p_token text)
    RETURNS TABLE (tenant_id uuid, project_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$ SELECT p.tenant_id, p.id FROM public.projects p WHERE p.portal_token = p_token $$;

CREATE FUNCTION app_resolve_session(p_token_hash bytea)
    RETURNS TABLE (tenant_id uuid, user_id uuid, session_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$
        SELECT s.tenant_id, s.user_id, s.id FROM public.sessions s
        WHERE s.token_hash = p_token_hash AND s.expires_at > now()
    $$;

CREATE FUNCTION app_resolve_api_key(p_key_hash bytea)
    RETURNS TABLE (tenant_id uuid, api_key_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$
        SELECT k.tenant_id, k.id FROM public.api_keys k
        WHERE k.key_hash = p_key_hash AND k.revoked_at IS NULL
    $$;

CREATE FUNCTION app_find_login(p_email text)
    RETURNS TABLE (tenant_id uuid, user_id uuid, password_hash text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$ SELECT u.tenant_id, u.id, u.password_hash FROM public.users u WHERE lower(u.email) = lower(p_email) $$;

CREATE FUNCTION app_resolve_password_reset(p_token_hash bytea)
    RETURNS TABLE (tenant_id uuid, reset_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$
        SELECT r.tenant_id, r.id FROM public.password_resets r
        WHERE r.token_hash = p_token_hash AND r.used_at IS NULL AND r.expires_at > now()
    $$;

-- Marks every unpaid invoice whose due date has passed in its studio's own
-- time zone as overdue, and queues one client and one studio notice for each,
-- in one statement. Concurrent runs cannot both flip the same invoice, because
-- the UPDATE re-checks status = 'unpaid' under the row lock.
CREATE FUNCTION app_mark_overdue_invoices()
    RETURNS TABLE (tenant_id uuid, notice_id uuid)
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$
        WITH flipped AS (
            UPDATE public.invoices i
            SET status = 'overdue', updated_at = now()
            FROM public.tenants t
            WHERE t.id = i.tenant_id
              AND i.status = 'unpaid'
              AND i.due_date < (now() AT TIME ZONE t.time_zone)::date
            RETURNING i.tenant_id, i.id
        ), queued AS (
            INSERT INTO public.notices (id, tenant_id, invoice_id, kind, recipient)
            SELECT gen_random_uuid(), f.tenant_id, f.id, 'invoice_overdue', r.recipient
            FROM flipped f CROSS JOIN (VALUES ('client'), ('studio')) AS r (recipient)
            ON CONFLICT (invoice_id, kind, recipient) DO NOTHING
            RETURNING notices.tenant_id, notices.id
        )
        SELECT q.tenant_id, q.id FROM queued q
    $$;

-- Notices still unsent some time after they were queued, so a lost enqueue
-- or a crashed worker heals on the next scheduled run.
CREATE FUNCTION app_unsent_notices(p_older_than interval)
    RETURNS TABLE (tenant_id uuid, notice_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$
        SELECT n.tenant_id, n.id FROM public.notices n
        WHERE n.sent_at IS NULL AND n.created_at < now() - p_older_than
        ORDER BY n.created_at LIMIT 1000
    $$;

-- Photos still waiting for thumbnails some time after upload, so a lost
-- enqueue (Redis down right after the upload committed) heals by itself.
CREATE FUNCTION app_stale_processing_photos(p_older_than interval)
    RETURNS TABLE (tenant_id uuid, photo_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$
        SELECT p.tenant_id, p.id FROM public.photos p
        WHERE p.status = 'processing' AND p.created_at < now() - p_older_than
        ORDER BY p.created_at LIMIT 1000
    $$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO proofsheet_app;
GRANT USAGE ON SCHEMA public TO proofsheet_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO proofsheet_app;
REVOKE UPDATE, DELETE ON responses FROM proofsheet_app;
REVOKE ALL ON _sqlx_migrations FROM proofsheet_app;
