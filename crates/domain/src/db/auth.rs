//! Studio credentials: sessions, API keys and password resets.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::TenantTx;
use crate::secret::{self, Secret};
use crate::{ApiKeyId, DomainError, TenantId, UserId};

/// How long a log-in lasts without logging in again.
pub const SESSION_DAYS: i64 = 14;

/// How long a password reset link works.
pub const RESET_MINUTES: i64 = 60;

/// A live session found by its cookie.
#[derive(Clone, Copy, Debug, sqlx::FromRow)]
pub struct SessionRef {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub session_id: Uuid,
}

/// An API key as listed to its studio; the key itself is shown only once.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: String,
    pub key_prefix: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Starts a session for `user` and returns the cookie value.
pub async fn create_session(tx: &mut TenantTx, user: UserId) -> Result<Secret, DomainError> {
    let token = secret::random_token("ps_sess_");
    let tenant = tx.tenant_id();
    sqlx::query("INSERT INTO sessions (id, tenant_id, user_id, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(Uuid::now_v7())
        .bind(tenant)
        .bind(user)
        .bind(secret::token_hash(token.expose()))
        .bind(Utc::now() + Duration::days(SESSION_DAYS))
        .execute(tx.conn())
        .await?;
    Ok(token)
}

/// Ends a session.
pub async fn delete_session(tx: &mut TenantTx, session: Uuid) -> Result<(), DomainError> {
    sqlx::query("DELETE FROM sessions WHERE id = $1")
        .bind(session)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Returns the email of a user.
pub async fn user_email(tx: &mut TenantTx, user: UserId) -> Result<String, DomainError> {
    sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(user)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(DomainError::NotFound("user"))
}

/// Creates an API key; the returned secret is the only copy of the key.
pub async fn create_api_key(
    tx: &mut TenantTx,
    name: &str,
) -> Result<(ApiKey, Secret), DomainError> {
    let name = crate::validate::required_text("name", name, 80)?;
    let key = secret::random_token("ps_key_");
    let prefix: String = key.expose().chars().take(12).collect();
    let tenant = tx.tenant_id();
    let row = sqlx::query_as(
        "INSERT INTO api_keys (id, tenant_id, name, key_hash, key_prefix) VALUES ($1, $2, $3, $4, $5) \
         RETURNING id, name, key_prefix, created_at, revoked_at",
    )
    .bind(ApiKeyId::new())
    .bind(tenant)
    .bind(name)
    .bind(secret::token_hash(key.expose()))
    .bind(prefix)
    .fetch_one(tx.conn())
    .await?;
    Ok((row, key))
}

/// Lists the studio's API keys, newest first.
pub async fn list_api_keys(tx: &mut TenantTx) -> Result<Vec<ApiKey>, DomainError> {
    Ok(sqlx::query_as(
        "SELECT id, name, key_prefix, created_at, revoked_at FROM api_keys ORDER BY created_at DESC",
    )
    .fetch_all(tx.conn())
    .await?)
}

/// Revokes an API key at once.
pub async fn revoke_api_key(tx: &mut TenantTx, id: ApiKeyId) -> Result<(), DomainError> {
    let done =
        sqlx::query("UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1")
            .bind(id)
            .execute(tx.conn())
            .await?;
    if done.rows_affected() == 0 {
        return Err(DomainError::NotFound("API key"));
    }
    Ok(())
}

/// Creates a single-use password reset for `user` and returns its token.
pub async fn create_password_reset(tx: &mut TenantTx, user: UserId) -> Result<Secret, DomainError> {
    let token = secret::random_token("ps_reset_");
    let tenant = tx.tenant_id();
    sqlx::query(
        "INSERT INTO password_resets (id, tenant_id, user_id, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::now_v7())
    .bind(tenant)
    .bind(user)
    .bind(secret::token_hash(token.expose()))
    .bind(Utc::now() + Duration::minutes(RESET_MINUTES))
    .execute(tx.conn())
    .await?;
    Ok(token)
}

/// Uses a password reset: sets the new password, marks the reset used and
/// ends every session of the user. Returns the user.
pub async fn complete_password_reset(
    tx: &mut TenantTx,
    reset: Uuid,
    new_password: &str,
) -> Result<UserId, DomainError> {
    let hash = secret::hash_password(new_password)?;
    let user: Option<UserId> = sqlx::query_scalar(
        "UPDATE password_resets SET used_at = now() \
         WHERE id = $1 AND used_at IS NULL AND expires_at > now() RETURNING user_id",
    )
    .bind(reset)
    .fetch_optional(tx.conn())
    .await?;
    let user = user.ok_or(DomainError::NotFound("password reset link"))?;
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(user)
        .execute(tx.conn())
        .await?;
    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user)
        .execute(tx.conn())
        .await?;
    Ok(user)
}
