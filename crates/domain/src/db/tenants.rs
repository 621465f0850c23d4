//! Studios: sign-up, settings and plan state.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::{Db, TenantTx, auth};
use crate::secret::Secret;
use crate::{DomainError, TenantId, UserId, invoice, validate};

/// Length of the free trial that starts at sign-up.
pub const TRIAL_DAYS: i64 = 14;

/// A studio as its pages and emails need it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub time_zone: String,
    pub accent_colour: String,
    pub plan_status: String,
    pub trial_ends_at: DateTime<Utc>,
    /// The Stripe Billing subscription of the plan, once the studio has
    /// subscribed; a cancelled one stays here.
    pub stripe_subscription_id: Option<String>,
}

impl Tenant {
    /// The studio's IANA time zone; UTC if the stored name is unknown to this
    /// build's time zone table.
    pub fn tz(&self) -> Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::UTC)
    }
}

/// Validated sign-up input.
#[derive(Debug)]
pub struct NewStudio {
    pub studio_name: String,
    pub email: String,
    pub password_hash: String,
    pub time_zone: Tz,
}

impl NewStudio {
    /// Validates the sign-up fields and hashes the password.
    pub fn parse(
        studio_name: &str,
        email: &str,
        password: &str,
        time_zone: &str,
    ) -> Result<Self, DomainError> {
        let studio_name = validate::required_text("studio_name", studio_name, 120)?;
        let email = validate::email("email", email)?;
        let time_zone = invoice::parse_time_zone(time_zone)?;
        let password_hash = crate::secret::hash_password(password)?;
        Ok(Self {
            studio_name,
            email,
            password_hash,
            time_zone,
        })
    }
}

/// What sign-up creates.
#[derive(Debug)]
pub struct SignedUp {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub api_key: Secret,
}

/// Creates the studio, its owner and a first API key in one transaction; the
/// trial ends [`TRIAL_DAYS`] later.
pub async fn sign_up(db: &Db, studio: NewStudio) -> Result<SignedUp, DomainError> {
    let tenant_id = TenantId::new();
    let user_id = UserId::new();
    let mut tx = db.tenant(tenant_id).await?;

    sqlx::query("INSERT INTO tenants (id, name, time_zone, trial_ends_at) VALUES ($1, $2, $3, $4)")
        .bind(tenant_id)
        .bind(&studio.studio_name)
        .bind(studio.time_zone.name())
        .bind(Utc::now() + Duration::days(TRIAL_DAYS))
        .execute(tx.conn())
        .await?;

    let inserted = sqlx::query(
        "INSERT INTO users (id, tenant_id, email, password_hash) VALUES ($1, $2, $3, $4)",
    )
    .bind(user_id)
    .bind(tenant_id)
    .bind(&studio.email)
    .bind(&studio.password_hash)
    .execute(tx.conn())
    .await;
    if let Err(sqlx::Error::Database(e)) = &inserted
        && e.constraint() == Some("users_email_key")
    {
        return Err(DomainError::Conflict(format!(
            "a studio account already uses {}; log in or reset the password instead",
            studio.email
        )));
    }
    inserted?;

    let (_, api_key) = auth::create_api_key(&mut tx, "Default key").await?;
    tx.commit().await?;
    Ok(SignedUp {
        tenant_id,
        user_id,
        api_key,
    })
}

/// Loads the current tenant.
pub async fn current(tx: &mut TenantTx) -> Result<Tenant, DomainError> {
    sqlx::query_as(
        "SELECT id, name, time_zone, accent_colour, plan_status, trial_ends_at, \
         stripe_subscription_id FROM tenants",
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or(DomainError::NotFound("studio"))
}

/// Changes the studio's name and accent colour.
pub async fn update_branding(
    tx: &mut TenantTx,
    name: &str,
    accent_colour: &str,
) -> Result<(), DomainError> {
    let name = validate::required_text("studio_name", name, 120)?;
    let colour = accent_colour.trim();
    let valid = colour.len() == 7
        && colour.starts_with('#')
        && colour[1..].chars().all(|c| c.is_ascii_hexdigit());
    if !valid {
        return Err(DomainError::invalid(
            "accent_colour",
            format!("'{colour}' is not a colour; use the form #1a2b3c"),
        ));
    }
    sqlx::query("UPDATE tenants SET name = $1, accent_colour = $2")
        .bind(name)
        .bind(colour)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Returns the email of the studio's owner, for notices to the studio.
pub async fn owner_email(tx: &mut TenantTx) -> Result<String, DomainError> {
    sqlx::query_scalar("SELECT email FROM users ORDER BY created_at LIMIT 1")
        .fetch_optional(tx.conn())
        .await?
        .ok_or(DomainError::NotFound("studio owner"))
}
