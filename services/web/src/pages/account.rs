//! Sign-up, log-in, log-out and password reset.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::Cookie;
use proofsheet_domain::db::{auth, tenants};
use proofsheet_domain::{DomainError, secret};
use proofsheet_jobs::SendEmail;
use serde::Deserialize;

use super::{render, render_with_status};
use crate::AppState;
use crate::auth::{SESSION_COOKIE, StudioUser, csrf_token, session_cookie, verify_csrf};
use crate::error::{ApiError, PageError};
use crate::throttle::{Counter, LOGIN_WINDOW, MAX_FAILED_LOGINS, MAX_RESET_EMAILS};

fn form_context(token: &str) -> tera::Context {
    let mut context = tera::Context::new();
    context.insert("csrf_token", token);
    context
}

/// `GET /signup`.
pub async fn signup_form(
    State(state): State<AppState>,
    jar: CookieJar,
) -> Result<Response, PageError> {
    let (jar, token) = csrf_token(jar, state.config.cookie_secure);
    let mut context = form_context(&token);
    context.insert("time_zone", "Europe/London");
    Ok((jar, render(&state, "signup.html", &context)?).into_response())
}

#[derive(Deserialize)]
pub struct SignUpForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    studio_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    time_zone: String,
}

/// `POST /signup`: creates the studio and logs its owner in.
pub async fn signup(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<SignUpForm>,
) -> Result<Response, PageError> {
    verify_csrf(&jar, &form.csrf_token)?;
    let (name, email, password, zone) = (
        form.studio_name.clone(),
        form.email.clone(),
        form.password,
        form.time_zone.clone(),
    );
    let parsed = tokio::task::spawn_blocking(move || {
        tenants::NewStudio::parse(&name, &email, &password, &zone)
    })
    .await
    .map_err(|e| PageError::from(anyhow::Error::new(e)))?;
    let signed_up = match parsed {
        Ok(studio) => tenants::sign_up(&state.db, studio).await,
        Err(e) => Err(e),
    };
    let signed_up = match signed_up {
        Ok(signed_up) => signed_up,
        Err(e @ (DomainError::Invalid { .. } | DomainError::Conflict(_))) => {
            let mut context = form_context(&form.csrf_token);
            context.insert("error", &e.to_string().replace('_', " "));
            context.insert("studio_name", &form.studio_name);
            context.insert("email", &form.email);
            context.insert("time_zone", &form.time_zone);
            return Ok(render_with_status(
                &state,
                StatusCode::UNPROCESSABLE_ENTITY,
                "signup.html",
                &context,
            ));
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(tenant.id = %signed_up.tenant_id, "studio signed up");

    let mut tx = state.db.tenant(signed_up.tenant_id).await?;
    let session = auth::create_session(&mut tx, signed_up.user_id).await?;
    tx.commit().await?;
    let jar = jar.add(session_cookie(
        session.expose().to_owned(),
        state.config.cookie_secure,
    ));
    Ok((jar, Redirect::to("/projects")).into_response())
}

/// `GET /login`.
pub async fn login_form(
    State(state): State<AppState>,
    jar: CookieJar,
) -> Result<Response, PageError> {
    let (jar, token) = csrf_token(jar, state.config.cookie_secure);
    Ok((jar, render(&state, "login.html", &form_context(&token))?).into_response())
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// `POST /login`: checks the password and starts a session.
pub async fn login(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    verify_csrf(&jar, &form.csrf_token)?;
    let failures = Counter::failed_logins(&state, &form.email);
    if failures.count(&state).await >= MAX_FAILED_LOGINS {
        tracing::warn!("log-in rejected after too many failed attempts for one account");
        let mut context = form_context(&form.csrf_token);
        context.insert(
            "error",
            &format!(
                "Too many failed log-ins for this account. Wait {} minutes, or reset the password.",
                LOGIN_WINDOW.as_secs() / 60
            ),
        );
        context.insert("email", &form.email);
        return Ok(render_with_status(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            "login.html",
            &context,
        ));
    }
    let found = state.db.find_login(&form.email).await?;
    let stored_hash = found
        .as_ref()
        .map(|(_, _, hash)| hash.clone())
        .unwrap_or_else(|| secret::dummy_password_hash().to_owned());
    let password = form.password.clone();
    // Checked even for an unknown email, so timing does not tell which exist.
    let valid =
        tokio::task::spawn_blocking(move || secret::verify_password(&password, &stored_hash))
            .await
            .unwrap_or(false);
    let Some((tenant, user, _)) = found.filter(|_| valid) else {
        failures.increment(&state).await;
        let mut context = form_context(&form.csrf_token);
        context.insert(
            "error",
            "The email or password is not right. Try again, or reset the password.",
        );
        context.insert("email", &form.email);
        return Ok(render_with_status(
            &state,
            StatusCode::UNAUTHORIZED,
            "login.html",
            &context,
        ));
    };
    failures.reset(&state).await;
    let mut tx = state.db.tenant(tenant).await?;
    let session = auth::create_session(&mut tx, user).await?;
    tx.commit().await?;
    tracing::info!(tenant.id = %tenant, user.id = %user, "logged in");
    let jar = jar.add(session_cookie(
        session.expose().to_owned(),
        state.config.cookie_secure,
    ));
    Ok((jar, Redirect::to("/projects")).into_response())
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    pub csrf_token: String,
}

/// `POST /logout`: ends the session.
pub async fn logout(
    State(state): State<AppState>,
    user: StudioUser,
    jar: CookieJar,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    verify_csrf(&jar, &form.csrf_token)?;
    let mut tx = state.db.tenant(user.tenant_id).await?;
    auth::delete_session(&mut tx, user.session_id).await?;
    tx.commit().await?;
    let jar = jar.remove(Cookie::build(SESSION_COOKIE).path("/"));
    Ok((jar, Redirect::to("/login")).into_response())
}

/// `GET /forgot-password`.
pub async fn forgot_form(
    State(state): State<AppState>,
    jar: CookieJar,
) -> Result<Response, PageError> {
    let (jar, token) = csrf_token(jar, state.config.cookie_secure);
    Ok((jar, render(&state, "forgot.html", &form_context(&token))?).into_response())
}

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    email: String,
}

/// `POST /forgot-password`: emails a single-use reset link when the address
/// has an account, and responds the same either way.
pub async fn forgot(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<ForgotForm>,
) -> Result<Response, PageError> {
    verify_csrf(&jar, &form.csrf_token)?;
    let sent = Counter::reset_emails(&state, &form.email);
    let allowed = sent.count(&state).await < MAX_RESET_EMAILS;
    if !allowed {
        tracing::warn!("reset email skipped after too many for one address");
    }
    if let Some((tenant, user, _)) = state.db.find_login(&form.email).await?.filter(|_| allowed) {
        sent.increment(&state).await;
        let mut tx = state.db.tenant(tenant).await?;
        let token = auth::create_password_reset(&mut tx, user).await?;
        tx.commit().await?;
        let base = state.config.public_web_url.as_str().trim_end_matches('/');
        let job = SendEmail::PasswordReset {
            tenant_id: tenant,
            user_id: user,
            reset_url: format!("{base}/reset-password?token={}", token.expose()),
        };
        state
            .queues
            .enqueue_email(job)
            .await
            .map_err(|e| PageError::from(ApiError::from(e)))?;
        tracing::info!(tenant.id = %tenant, user.id = %user, "password reset email queued");
    }
    let mut context = tera::Context::new();
    context.insert("title", "Check your email");
    context.insert(
        "message",
        &format!(
            "If an account uses that address, an email with a reset link is on its way. The link works once, for {} minutes.",
            auth::RESET_MINUTES
        ),
    );
    Ok(render(&state, "message.html", &context)?.into_response())
}

#[derive(Deserialize)]
pub struct ResetQuery {
    #[serde(default)]
    token: String,
}

/// `GET /reset-password?token=…`.
pub async fn reset_form(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<ResetQuery>,
) -> Result<Response, PageError> {
    if state
        .db
        .resolve_password_reset(&query.token)
        .await?
        .is_none()
    {
        return Err(expired_reset());
    }
    let (jar, csrf) = csrf_token(jar, state.config.cookie_secure);
    let mut context = form_context(&csrf);
    context.insert("token", &query.token);
    Ok((jar, render(&state, "reset.html", &context)?).into_response())
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

/// `POST /reset-password`: sets the new password, uses up the link and ends
/// every session of the user.
pub async fn reset(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<ResetForm>,
) -> Result<Response, PageError> {
    verify_csrf(&jar, &form.csrf_token)?;
    let Some((tenant, reset_id)) = state.db.resolve_password_reset(&form.token).await? else {
        return Err(expired_reset());
    };
    let mut tx = state.db.tenant(tenant).await?;
    let password = form.password.clone();
    let result = auth::complete_password_reset(&mut tx, reset_id, &password).await;
    match result {
        Ok(user) => {
            tx.commit().await?;
            tracing::info!(tenant.id = %tenant, user.id = %user, "password reset");
            Ok(Redirect::to("/login").into_response())
        }
        Err(e @ DomainError::Invalid { .. }) => {
            let mut context = form_context(&form.csrf_token);
            context.insert("token", &form.token);
            context.insert("error", &e.to_string());
            Ok(render_with_status(
                &state,
                StatusCode::UNPROCESSABLE_ENTITY,
                "reset.html",
                &context,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

fn expired_reset() -> PageError {
    PageError::new(
        StatusCode::NOT_FOUND,
        "Link expired",
        "This reset link has expired or was already used. Ask for a new one on the log-in page.",
    )
}
