//! Caller authentication: an API key for `/api/v1`, a session cookie for pages, and
//! the CSRF check that every page form passes.
//!
//! CSRF uses the double-submit pattern: a random token lives in an HttpOnly,
//! SameSite=Strict cookie and in a hidden field of every form, and a POST is
//! accepted only when the two match. A cross-site page can make the browser
//! send the cookie, but cannot read it to fill the field.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use proofsheet_domain::secret;
use proofsheet_domain::{ApiKeyId, TenantId, UserId};

use crate::AppState;
use crate::error::{ApiError, PageError};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "ps_session";
/// Name of the CSRF cookie.
pub const CSRF_COOKIE: &str = "ps_csrf";
/// Name of the hidden form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf_token";

/// A caller authenticated by an API key.
#[derive(Clone, Copy, Debug)]
pub struct ApiCaller {
    pub tenant_id: TenantId,
    pub api_key_id: ApiKeyId,
}

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or(ApiError::Unauthorized(
                "missing Authorization header; send 'Authorization: Bearer <api key>'",
            ))?;
        let key = header
            .to_str()
            .ok()
            .and_then(|value| {
                // The scheme name is case-insensitive (RFC 9110, section 11.1).
                let (scheme, key) = value.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then_some(key)
            })
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .ok_or(ApiError::Unauthorized(
                "the Authorization header is not of the form 'Bearer <api key>'",
            ))?;
        let found = state.db.resolve_api_key(key).await?;
        let (tenant_id, api_key_id) = found.ok_or(ApiError::Unauthorized(
            "the API key is unknown or revoked; create a new one in the studio settings",
        ))?;
        Ok(Self {
            tenant_id,
            api_key_id,
        })
    }
}

/// A studio user logged in through the session cookie.
#[derive(Clone, Copy, Debug)]
pub struct StudioUser {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub session_id: uuid::Uuid,
}

/// Sends a visitor without a session to the log-in page.
pub struct LoginRedirect;

impl IntoResponse for LoginRedirect {
    fn into_response(self) -> Response {
        Redirect::to("/login").into_response()
    }
}

impl FromRequestParts<AppState> for StudioUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let jar = CookieJar::from_headers(&parts.headers);
        let Some(token) = jar.get(SESSION_COOKIE).map(|c| c.value().to_owned()) else {
            return Err(LoginRedirect.into_response());
        };
        match state.db.resolve_session(&token).await {
            Ok(Some(session)) => Ok(Self {
                tenant_id: session.tenant_id,
                user_id: session.user_id,
                session_id: session.session_id,
            }),
            Ok(None) => Err(LoginRedirect.into_response()),
            Err(e) => Err(PageError::from(e).into_response()),
        }
    }
}

/// Builds the session cookie for a new log-in.
pub fn session_cookie(token: String, secure: bool) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, token))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .max_age(time_days(proofsheet_domain::db::auth::SESSION_DAYS))
        .build()
}

fn time_days(days: i64) -> cookie::time::Duration {
    cookie::time::Duration::days(days)
}

/// Returns the CSRF token of this browser, creating the cookie if needed.
/// Pages with forms put the token in a hidden field.
pub fn csrf_token(jar: CookieJar, secure: bool) -> (CookieJar, String) {
    if let Some(existing) = jar.get(CSRF_COOKIE) {
        let token = existing.value().to_owned();
        return (jar, token);
    }
    let token = secret::random_token("").expose().to_owned();
    let cookie = Cookie::build((CSRF_COOKIE, token.clone()))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Strict)
        .build();
    (jar.add(cookie), token)
}

/// Checks a submitted form's CSRF token against the cookie.
pub fn verify_csrf(jar: &CookieJar, submitted: &str) -> Result<(), PageError> {
    let Some(cookie) = jar.get(CSRF_COOKIE) else {
        return Err(PageError::csrf());
    };
    if submitted.is_empty() || !secret::tokens_match(cookie.value(), submitted) {
        return Err(PageError::csrf());
    }
    Ok(())
}
