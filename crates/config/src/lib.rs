//! Configuration for all three services, read once at start-up from
//! environment variables. Every variable has a default that works on a
//! developer machine with PostgreSQL and Redis on 127.0.0.1; an invalid value
//! stops the service with the variable's name and the expected form.

use std::net::SocketAddr;
use std::path::PathBuf;

use url::Url;

/// A variable whose value could not be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {name}={value:?} is not {expected}")]
pub struct ConfigError {
    pub name: &'static str,
    /// The value as given, with any URL password replaced by `***`.
    pub value: String,
    pub expected: String,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines, for a terminal.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Every setting of the system. Each service reads the fields it needs.
#[derive(Clone, Debug)]
pub struct Config {
    /// PostgreSQL URL of the unprivileged application role.
    pub database_url: String,
    /// PostgreSQL URL of the role that owns the schema, for migrations and
    /// seeding only.
    pub database_admin_url: String,
    pub database_max_connections: u32,
    pub redis_url: String,
    /// Prefix of every Redis key: queues and live-update channels.
    pub queue_namespace: String,
    pub web_addr: SocketAddr,
    pub portal_addr: SocketAddr,
    pub web_admin_addr: SocketAddr,
    pub portal_admin_addr: SocketAddr,
    pub worker_admin_addr: SocketAddr,
    /// Base URL of the studio app as people reach it, for links in emails.
    pub public_web_url: Url,
    /// Base URL of the portal as clients reach it; portal links start here.
    pub public_portal_url: Url,
    pub media_dir: PathBuf,
    /// Storage backend of originals and renditions: `MEDIA_DIR` on local disk
    /// by default, or an S3 bucket when `MEDIA_STORE=s3`.
    pub media_store: MediaStoreConfig,
    pub outbox_dir: PathBuf,
    /// SMTP server; without one, emails are written to `outbox_dir`.
    pub smtp_url: Option<Url>,
    /// The address emails are sent from; the studio's name is its display name.
    pub mail_from: String,
    pub max_upload_bytes: u64,
    /// Whether session cookies carry `Secure`; on by default for https.
    pub cookie_secure: bool,
    /// Six-field cron expression (seconds first) for overdue detection.
    pub overdue_schedule: String,
    pub thumbnail_concurrency: usize,
    pub log_format: LogFormat,
    /// Stripe settings; `None` when `STRIPE_SECRET_KEY` is unset, which turns
    /// every Stripe feature off.
    pub stripe: Option<StripeConfig>,
}

/// Stripe API and webhook settings.
#[derive(Clone, Debug)]
pub struct StripeConfig {
    /// Platform secret key, `sk_…` or a restricted `rk_…` key.
    pub secret_key: Secret,
    /// Signing secret of the platform's webhook endpoint (plan
    /// subscription events), `whsec_…`. Without it and without
    /// `connect_webhook_secret`, `POST /webhooks/stripe` rejects every
    /// request.
    pub webhook_secret: Option<Secret>,
    /// Signing secret of the Connect webhook endpoint (events of studios'
    /// connected accounts), `whsec_…`. Stripe signs each endpoint's events
    /// with that endpoint's own secret, and a request passes when it
    /// verifies against either secret.
    pub connect_webhook_secret: Option<Secret>,
    /// Base URL of the Stripe API; tests point it at a local server.
    pub api_base: Url,
    /// Price (`price_…`) of the studio plan, for plan subscriptions.
    pub plan_price: Option<String>,
    /// Six-field cron expression of the job that heals lost payment webhooks.
    pub reconcile_schedule: String,
}

/// The backend of the media store, chosen by `MEDIA_STORE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaStoreConfig {
    /// Files under a local folder (`MEDIA_STORE=local`, the default).
    Local {
        /// The folder that contains the objects, from `MEDIA_DIR`.
        root: PathBuf,
    },
    /// A bucket on Amazon S3 or an S3-compatible server (`MEDIA_STORE=s3`).
    S3(S3Config),
}

/// Settings of an S3 or S3-compatible bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Config {
    /// Bucket name, from `S3_BUCKET`.
    pub bucket: String,
    /// Base URL of an S3-compatible server, from `S3_ENDPOINT`, or `None` for
    /// Amazon S3 itself.
    pub endpoint: Option<Url>,
    /// Region used to sign requests, from `S3_REGION`.
    pub region: String,
    /// Access key id, from `S3_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// Secret access key, from `S3_SECRET_ACCESS_KEY`.
    pub secret_access_key: Secret,
    /// Whether a plain `http://` endpoint is allowed, from `S3_ALLOW_HTTP`.
    pub allow_http: bool,
}

/// A secret value whose `Debug` output is redacted, so it never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Returns the secret value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Reads the configuration through `lookup`, which returns a variable's
    /// value or `None` when it is unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars(&lookup);
        let public_web_url = vars.url("PUBLIC_WEB_URL", "http://127.0.0.1:8080")?;
        let cookie_default = if public_web_url.scheme() == "https" {
            "true"
        } else {
            "false"
        };
        Ok(Config {
            database_url: vars.postgres_url(
                "DATABASE_URL",
                "postgres://proofsheet_app@127.0.0.1:5432/proofsheet",
            )?,
            database_admin_url: vars.postgres_url(
                "DATABASE_ADMIN_URL",
                "postgres://postgres@127.0.0.1:5432/proofsheet",
            )?,
            database_max_connections: vars.number("DATABASE_MAX_CONNECTIONS", "10", 1, 1000)?,
            redis_url: vars.redis_url("REDIS_URL", "redis://127.0.0.1:6379")?,
            queue_namespace: vars.name("QUEUE_NAMESPACE", "proofsheet")?,
            web_addr: vars.addr("WEB_ADDR", "127.0.0.1:8080")?,
            portal_addr: vars.addr("PORTAL_ADDR", "127.0.0.1:8081")?,
            web_admin_addr: vars.addr("WEB_ADMIN_ADDR", "127.0.0.1:9180")?,
            portal_admin_addr: vars.addr("PORTAL_ADMIN_ADDR", "127.0.0.1:9181")?,
            worker_admin_addr: vars.addr("WORKER_ADMIN_ADDR", "127.0.0.1:9182")?,
            public_web_url,
            public_portal_url: vars.url("PUBLIC_PORTAL_URL", "http://127.0.0.1:8081")?,
            media_dir: PathBuf::from(vars.get("MEDIA_DIR", ".data/media")),
            media_store: vars.media_store()?,
            outbox_dir: PathBuf::from(vars.get("OUTBOX_DIR", ".data/outbox")),
            smtp_url: vars.optional_smtp_url("SMTP_URL")?,
            mail_from: vars.email("MAIL_FROM", "studios@proofsheet.localhost")?,
            max_upload_bytes: vars.number("MAX_UPLOAD_BYTES", "52428800", 1024, 1 << 34)?,
            cookie_secure: vars.boolean("COOKIE_SECURE", cookie_default)?,
            overdue_schedule: vars.cron("OVERDUE_SCHEDULE", "0 * * * * *")?,
            thumbnail_concurrency: vars.number("THUMBNAIL_CONCURRENCY", "2", 1, 64)?,
            log_format: match vars.get("LOG_FORMAT", "text").as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => return Err(vars.error("LOG_FORMAT", other, "'text' or 'json'")),
            },
            stripe: vars.stripe()?,
        })
    }

    /// The portal URL of a token.
    pub fn portal_link(&self, token: &str) -> String {
        let base = self.public_portal_url.as_str().trim_end_matches('/');
        format!("{base}/p/{token}")
    }
}

/// Replaces the password of a URL-shaped value with `***`, so an error
/// message never prints a credential. A value that does not parse as a URL
/// but contains `@` is cut to what follows it, which cannot hold a password.
fn redact_password(value: &str) -> String {
    match Url::parse(value) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        Ok(_) => value.to_owned(),
        Err(_) if value.contains("://") && value.contains('@') => {
            let tail = value.rsplit('@').next().unwrap_or_default();
            format!("***@{tail}")
        }
        Err(_) => value.to_owned(),
    }
}

struct Vars<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Vars<'_> {
    fn media_store(&self) -> Result<MediaStoreConfig, ConfigError> {
        match self.get("MEDIA_STORE", "local").as_str() {
            "local" => Ok(MediaStoreConfig::Local {
                root: PathBuf::from(self.get("MEDIA_DIR", ".data/media")),
            }),
            "s3" => Ok(MediaStoreConfig::S3(self.s3()?)),
            other => Err(self.error("MEDIA_STORE", other, "'local' or 's3'")),
        }
    }

    /// Reads the S3 settings. Credentials are required, so the store never
    /// falls back to the instance metadata endpoint or other ambient sources.
    fn s3(&self) -> Result<S3Config, ConfigError> {
        let bucket = self.required("S3_BUCKET", "a bucket name such as proofsheet-media")?;
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'));
        if !valid_bucket {
            return Err(self.error(
                "S3_BUCKET",
                &bucket,
                "a bucket name of 3 to 63 lowercase letters, digits, '-' or '.'",
            ));
        }

        let endpoint = match (self.0)("S3_ENDPOINT") {
            Some(_) => Some(self.url("S3_ENDPOINT", "")?),
            None => None,
        };

        let region = self.get("S3_REGION", "us-east-1");
        let valid_region = !region.is_empty()
            && region.len() <= 64
            && region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid_region {
            return Err(self.error("S3_REGION", &region, "a region name such as us-east-1"));
        }

        let access_key_id = self.required("S3_ACCESS_KEY_ID", "an access key id")?;
        let Some(secret_access_key) = (self.0)("S3_SECRET_ACCESS_KEY") else {
            return Err(self.error(
                "S3_SECRET_ACCESS_KEY",
                "",
                "set when MEDIA_STORE=s3: the secret access key",
            ));
        };

        let allow_http = self.boolean("S3_ALLOW_HTTP", "false")?;
        if let Some(url) = &endpoint
            && url.scheme() == "http"
            && !allow_http
        {
            return Err(self.error(
                "S3_ENDPOINT",
                url.as_str(),
                "an https:// URL, or set S3_ALLOW_HTTP=true for an http:// endpoint",
            ));
        }
        Ok(S3Config {
            bucket,
            endpoint,
            region,
            access_key_id,
            secret_access_key: Secret::new(secret_access_key),
            allow_http,
        })
    }

    /// Returns the value of a variable that must be set when `MEDIA_STORE=s3`.
    fn required(&self, name: &'static str, expected: &str) -> Result<String, ConfigError> {
        (self.0)(name)
            .ok_or_else(|| self.error(name, "", format!("set when MEDIA_STORE=s3: {expected}")))
    }

    fn webhook_secret(&self, name: &'static str) -> Result<Option<Secret>, ConfigError> {
        match (self.0)(name) {
            Some(value) if value.starts_with("whsec_") && value.len() > 6 => {
                Ok(Some(Secret::new(value)))
            }
            // The value is a secret, so the error does not repeat it.
            Some(_) => Err(self.error(
                name,
                "(hidden)",
                "a webhook signing secret starting with whsec_",
            )),
            None => Ok(None),
        }
    }

    fn stripe(&self) -> Result<Option<StripeConfig>, ConfigError> {
        let webhook_secret = self.webhook_secret("STRIPE_WEBHOOK_SECRET")?;
        let connect_webhook_secret = self.webhook_secret("STRIPE_CONNECT_WEBHOOK_SECRET")?;
        let Some(secret_key) = (self.0)("STRIPE_SECRET_KEY") else {
            if webhook_secret.is_some() || connect_webhook_secret.is_some() {
                return Err(self.error(
                    "STRIPE_SECRET_KEY",
                    "",
                    "set when STRIPE_WEBHOOK_SECRET or STRIPE_CONNECT_WEBHOOK_SECRET is set: \
                     a secret key starting with sk_ or rk_",
                ));
            }
            return Ok(None);
        };
        let valid_key = (secret_key.starts_with("sk_") || secret_key.starts_with("rk_"))
            && secret_key.len() > 3
            && !secret_key.contains(char::is_whitespace);
        if !valid_key {
            return Err(self.error(
                "STRIPE_SECRET_KEY",
                "(hidden)",
                "a secret key starting with sk_ or rk_",
            ));
        }
        let plan_price = match (self.0)("STRIPE_PLAN_PRICE") {
            Some(price) if price.starts_with("price_") => Some(price),
            Some(price) => {
                return Err(self.error(
                    "STRIPE_PLAN_PRICE",
                    &price,
                    "a price id starting with price_",
                ));
            }
            None => None,
        };
        Ok(Some(StripeConfig {
            secret_key: Secret::new(secret_key),
            webhook_secret,
            connect_webhook_secret,
            api_base: self.url("STRIPE_API_BASE", "https://api.stripe.com")?,
            plan_price,
            reconcile_schedule: self.cron("STRIPE_RECONCILE_SCHEDULE", "0 */10 * * * *")?,
        }))
    }

    fn get(&self, name: &str, default: &str) -> String {
        (self.0)(name).unwrap_or_else(|| default.to_owned())
    }

    fn error(&self, name: &'static str, value: &str, expected: impl Into<String>) -> ConfigError {
        ConfigError {
            name,
            value: redact_password(value),
            expected: expected.into(),
        }
    }

    fn addr(&self, name: &'static str, default: &str) -> Result<SocketAddr, ConfigError> {
        let value = self.get(name, default);
        value
            .parse()
            .map_err(|_| self.error(name, &value, "a socket address such as 127.0.0.1:8080"))
    }

    fn url(&self, name: &'static str, default: &str) -> Result<Url, ConfigError> {
        let value = self.get(name, default);
        match Url::parse(&value) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(url),
            _ => Err(self.error(
                name,
                &value,
                "an http:// or https:// URL such as http://127.0.0.1:8080",
            )),
        }
    }

    fn postgres_url(&self, name: &'static str, default: &str) -> Result<String, ConfigError> {
        let value = self.get(name, default);
        match Url::parse(&value) {
            Ok(url) if matches!(url.scheme(), "postgres" | "postgresql") => Ok(value),
            _ => Err(self.error(
                name,
                &value,
                "a URL such as postgres://user@host:5432/database",
            )),
        }
    }

    fn redis_url(&self, name: &'static str, default: &str) -> Result<String, ConfigError> {
        let value = self.get(name, default);
        match Url::parse(&value) {
            Ok(url) if matches!(url.scheme(), "redis" | "rediss") => Ok(value),
            _ => Err(self.error(name, &value, "a URL such as redis://127.0.0.1:6379")),
        }
    }

    fn optional_smtp_url(&self, name: &'static str) -> Result<Option<Url>, ConfigError> {
        let Some(value) = (self.0)(name) else {
            return Ok(None);
        };
        match Url::parse(&value) {
            Ok(url) if matches!(url.scheme(), "smtp" | "smtps") && url.has_host() => Ok(Some(url)),
            _ => Err(self.error(
                name,
                &value,
                "a URL such as smtp://user:password@mail.example.com:587",
            )),
        }
    }

    fn email(&self, name: &'static str, default: &str) -> Result<String, ConfigError> {
        let value = self.get(name, default);
        match value.split_once('@') {
            Some((local, domain))
                if !local.is_empty() && !domain.is_empty() && !value.contains(' ') =>
            {
                Ok(value)
            }
            _ => Err(self.error(name, &value, "an email address such as studios@example.com")),
        }
    }

    fn name(&self, name: &'static str, default: &str) -> Result<String, ConfigError> {
        let value = self.get(name, default);
        let valid = !value.is_empty()
            && value.len() <= 64
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if valid {
            Ok(value)
        } else {
            Err(self.error(name, &value, "1 to 64 letters, digits, '-' or '_'"))
        }
    }

    fn number<T>(&self, name: &'static str, default: &str, min: T, max: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display,
    {
        let value = self.get(name, default);
        match value.parse::<T>() {
            Ok(n) if n >= min && n <= max => Ok(n),
            _ => Err(self.error(name, &value, format!("a whole number from {min} to {max}"))),
        }
    }

    fn boolean(&self, name: &'static str, default: &str) -> Result<bool, ConfigError> {
        let value = self.get(name, default);
        match value.as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(self.error(name, &value, "'true' or 'false'")),
        }
    }

    fn cron(&self, name: &'static str, default: &str) -> Result<String, ConfigError> {
        let value = self.get(name, default);
        if value.split_whitespace().count() == 6 {
            Ok(value)
        } else {
            Err(self.error(
                name,
                &value,
                "a six-field cron expression such as '0 * * * * *' (seconds first)",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn defaults_work_on_a_developer_machine() {
        let config = with(&[]).expect("defaults are valid");
        assert_eq!(config.web_addr.port(), 8080);
        assert_eq!(config.portal_addr.port(), 8081);
        assert_eq!(config.web_admin_addr.port(), 9180);
        assert_eq!(config.portal_admin_addr.port(), 9181);
        assert_eq!(config.worker_admin_addr.port(), 9182);
        assert!(
            config
                .database_url
                .contains("proofsheet_app@127.0.0.1:5432/proofsheet")
        );
        assert_eq!(config.redis_url, "redis://127.0.0.1:6379");
        assert!(config.smtp_url.is_none());
        assert_eq!(config.outbox_dir, PathBuf::from(".data/outbox"));
        assert!(!config.cookie_secure);
    }

    #[test]
    fn invalid_value_names_the_variable() {
        let err = with(&[("WEB_ADDR", "eighty")]).err().map(|e| e.to_string());
        let err = err.unwrap_or_default();
        assert!(err.contains("WEB_ADDR"), "{err}");
        assert!(err.contains("\"eighty\""), "{err}");
        assert!(err.contains("socket address"), "{err}");
    }

    #[test]
    fn invalid_urls_are_rejected() {
        assert!(with(&[("DATABASE_URL", "mysql://x")]).is_err());
        assert!(with(&[("REDIS_URL", "127.0.0.1:6379")]).is_err());
        assert!(with(&[("SMTP_URL", "mail.example.com")]).is_err());
        assert!(with(&[("PUBLIC_PORTAL_URL", "ftp://x")]).is_err());
    }

    #[test]
    fn numbers_are_range_checked() {
        let err = with(&[("THUMBNAIL_CONCURRENCY", "100")])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("from 1 to 64"), "{err}");
        assert!(with(&[("MAX_UPLOAD_BYTES", "10")]).is_err());
        assert!(with(&[("THUMBNAIL_CONCURRENCY", "0")]).is_err());
        assert!(with(&[("THUMBNAIL_CONCURRENCY", "4")]).is_ok());
    }

    #[test]
    fn errors_never_print_passwords() {
        for value in ["smtp://user:s3cretpw@@", "ftp://u:s3cretpw@x"] {
            let err = with(&[("SMTP_URL", value)])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("SMTP_URL"), "{err}");
            assert!(!err.contains("s3cretpw"), "{err}");
        }
    }

    #[test]
    fn https_turns_secure_cookies_on() {
        let config = with(&[("PUBLIC_WEB_URL", "https://studio.example.com")]).expect("valid");
        assert!(config.cookie_secure);
    }

    #[test]
    fn portal_link_joins_base_and_token() {
        let config = with(&[("PUBLIC_PORTAL_URL", "https://p.example.com/")]).expect("valid");
        assert_eq!(
            config.portal_link("pp_abc"),
            "https://p.example.com/p/pp_abc"
        );
    }

    #[test]
    fn connect_webhook_secret_is_read_and_hidden() {
        let config = with(&[
            ("STRIPE_SECRET_KEY", "sk_test_123"),
            ("STRIPE_CONNECT_WEBHOOK_SECRET", "whsec_connect"),
        ])
        .expect("valid");
        let stripe = config.stripe.expect("stripe is on");
        assert!(stripe.webhook_secret.is_none());
        let connect = stripe.connect_webhook_secret.expect("connect secret");
        assert_eq!(connect.expose(), "whsec_connect");
        assert_eq!(format!("{connect:?}"), "Secret(***)");

        let err = with(&[
            ("STRIPE_SECRET_KEY", "sk_x"),
            ("STRIPE_CONNECT_WEBHOOK_SECRET", "not_a_whsec_value"),
        ])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("STRIPE_CONNECT_WEBHOOK_SECRET"), "{err}");
        assert!(!err.contains("not_a_whsec_value"), "{err}");
        assert!(with(&[("STRIPE_CONNECT_WEBHOOK_SECRET", "whsec_abc")]).is_err());
    }

    #[test]
    fn stripe_is_off_without_a_secret_key() {
        let config = with(&[]).expect("defaults are valid");
        assert!(config.stripe.is_none());
    }

    #[test]
    fn stripe_settings_are_validated() {
        let config = with(&[
            ("STRIPE_SECRET_KEY", "sk_test_123"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_abc"),
            ("STRIPE_API_BASE", "http://127.0.0.1:12111"),
        ])
        .expect("valid");
        let stripe = config.stripe.expect("stripe is on");
        assert_eq!(stripe.api_base.as_str(), "http://127.0.0.1:12111/");
        assert_eq!(format!("{:?}", stripe.secret_key), "Secret(***)");

        let err = with(&[("STRIPE_SECRET_KEY", "pk_live_oops")])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("STRIPE_SECRET_KEY"), "{err}");
        assert!(
            !err.contains("pk_live_oops"),
            "the key must not be echoed: {err}"
        );
        assert!(
            with(&[
                ("STRIPE_SECRET_KEY", "sk_x"),
                ("STRIPE_WEBHOOK_SECRET", "abc")
            ])
            .is_err()
        );
        assert!(with(&[("STRIPE_WEBHOOK_SECRET", "whsec_abc")]).is_err());
        assert!(
            with(&[
                ("STRIPE_SECRET_KEY", "sk_x"),
                ("STRIPE_API_BASE", "api.stripe.com")
            ])
            .is_err()
        );
    }

    #[test]
    fn media_store_defaults_to_local() {
        let config = with(&[("MEDIA_DIR", "/srv/media")]).expect("valid");
        assert_eq!(
            config.media_store,
            MediaStoreConfig::Local {
                root: PathBuf::from("/srv/media")
            }
        );
        let config = with(&[("MEDIA_STORE", "local")]).expect("valid");
        assert_eq!(
            config.media_store,
            MediaStoreConfig::Local {
                root: PathBuf::from(".data/media")
            }
        );
    }

    const S3_VARS: [(&str, &str); 4] = [
        ("MEDIA_STORE", "s3"),
        ("S3_BUCKET", "studio-media"),
        ("S3_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("S3_SECRET_ACCESS_KEY", "s3cretkey"),
    ];

    fn s3_with(extra: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        let mut pairs: Vec<(&str, &str)> = S3_VARS
            .iter()
            .filter(|(name, _)| !extra.iter().any(|(extra_name, _)| extra_name == name))
            .copied()
            .collect();
        pairs.extend(extra.iter().filter(|(_, value)| !value.is_empty()));
        with(&pairs)
    }

    fn error_text(result: Result<Config, ConfigError>) -> String {
        result.err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn media_store_s3_settings() {
        let config = s3_with(&[]).expect("valid");
        let MediaStoreConfig::S3(s3) = config.media_store else {
            panic!("MEDIA_STORE=s3 must select S3");
        };
        assert_eq!(s3.bucket, "studio-media");
        assert_eq!(s3.endpoint, None);
        assert_eq!(s3.region, "us-east-1");
        assert_eq!(s3.access_key_id, "AKIDEXAMPLE");
        assert_eq!(s3.secret_access_key.expose(), "s3cretkey");
        assert!(!s3.allow_http);
        assert!(!format!("{s3:?}").contains("s3cretkey"));

        let config = s3_with(&[
            ("S3_ENDPOINT", "http://127.0.0.1:9000"),
            ("S3_ALLOW_HTTP", "true"),
            ("S3_REGION", "eu-west-3"),
        ])
        .expect("valid");
        let MediaStoreConfig::S3(s3) = config.media_store else {
            panic!("MEDIA_STORE=s3 must select S3");
        };
        assert_eq!(
            s3.endpoint.as_ref().map(Url::as_str),
            Some("http://127.0.0.1:9000/")
        );
        assert_eq!(s3.region, "eu-west-3");
        assert!(s3.allow_http);
    }

    #[test]
    fn media_store_rejects_unknown_backend() {
        let err = error_text(with(&[("MEDIA_STORE", "ftp")]));
        assert!(err.contains("MEDIA_STORE"), "{err}");
        assert!(err.contains("\"ftp\""), "{err}");
        assert!(err.contains("'local' or 's3'"), "{err}");
    }

    #[test]
    fn media_store_s3_requires_settings() {
        for name in ["S3_BUCKET", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"] {
            let err = error_text(s3_with(&[(name, "")]));
            assert!(err.contains(name), "{err}");
            assert!(err.contains("MEDIA_STORE=s3"), "{err}");
        }
    }

    #[test]
    fn media_store_s3_validates_values() {
        let cases = [
            ("S3_BUCKET", "Bad_Bucket"),
            ("S3_BUCKET", "ab"),
            ("S3_REGION", "US East"),
            ("S3_ENDPOINT", "127.0.0.1:9000"),
            ("S3_ALLOW_HTTP", "yes"),
        ];
        for (name, value) in cases {
            let err = error_text(s3_with(&[(name, value)]));
            assert!(err.contains(name), "{name}={value}: {err}");
        }
        // A plain http endpoint needs S3_ALLOW_HTTP=true.
        let err = error_text(s3_with(&[("S3_ENDPOINT", "http://127.0.0.1:9000")]));
        assert!(err.contains("S3_ALLOW_HTTP"), "{err}");
    }

    #[test]
    fn media_store_errors_hide_secret_key() {
        let results = [
            s3_with(&[("S3_BUCKET", "")]),
            s3_with(&[("S3_ENDPOINT", "http://127.0.0.1:9000")]),
            s3_with(&[("S3_ALLOW_HTTP", "maybe")]),
        ];
        for result in results {
            let err = error_text(result);
            assert!(!err.is_empty(), "the settings must be rejected");
            assert!(!err.contains("s3cretkey"), "{err}");
        }
    }

    #[test]
    fn cron_needs_six_fields() {
        assert!(with(&[("OVERDUE_SCHEDULE", "* * * * *")]).is_err());
    }
}
