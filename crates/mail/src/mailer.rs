use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::{SMTP_PORT, SUBMISSION_PORT, SUBMISSIONS_PORT};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use url::{Host, Url};

use crate::MailError;

/// Delivers messages either to an SMTP server or, when none is configured, as
/// `.eml` files into an outbox folder.
///
/// Cloning is cheap, and clones share one SMTP connection pool.
#[derive(Clone)]
pub struct Mailer {
    transport: Arc<Transport>,
}

enum Transport {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// Server URL with the password replaced, safe to log.
        server: String,
        security: Security,
    },
    Outbox {
        transport: AsyncFileTransport<Tokio1Executor>,
        dir: PathBuf,
    },
}

/// Transport security of the SMTP connection, chosen by the URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Security {
    /// `smtp://host`: no TLS at all.
    Plain,
    /// `smtp://host?tls=opportunistic`: STARTTLS when the server offers it.
    StartTlsOpportunistic,
    /// `smtp://host?tls=required`: STARTTLS, and fail if the server lacks it.
    StartTlsRequired,
    /// `smtps://host`: TLS from the first byte.
    ImplicitTls,
}

impl Security {
    fn describe(self) -> &'static str {
        match self {
            Security::Plain => "unencrypted",
            Security::StartTlsOpportunistic => "STARTTLS if the server offers it",
            Security::StartTlsRequired => "STARTTLS required",
            Security::ImplicitTls => "TLS",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Security::Plain => SMTP_PORT,
            Security::StartTlsOpportunistic | Security::StartTlsRequired => SUBMISSION_PORT,
            Security::ImplicitTls => SUBMISSIONS_PORT,
        }
    }
}

const ACCEPTED_SMTP_URLS: &str = "expected smtp://[user:password@]host[:port][/ehlo-name] \
     with an optional ?tls=required or ?tls=opportunistic for STARTTLS, \
     or smtps://[user:password@]host[:port] for TLS";

impl Mailer {
    /// Creates a mailer that delivers through the SMTP server at `url`.
    ///
    /// Accepted forms, following lettre's connection URLs:
    /// - `smtp://host[:port]`: unencrypted, port 25 by default.
    /// - `smtp://host[:port]?tls=required`: STARTTLS that must succeed, port
    ///   587 by default.
    /// - `smtp://host[:port]?tls=opportunistic`: STARTTLS only if offered,
    ///   port 587 by default.
    /// - `smtps://host[:port]`: TLS from the start, port 465 by default.
    ///
    /// Percent-encoded `user:password@` enables SMTP AUTH, and a path sets the
    /// EHLO name. Certificates are checked against the Mozilla roots in
    /// `webpki-roots`. No connection is opened until the first [`send`].
    ///
    /// Must be called inside a Tokio runtime, because lettre's connection pool
    /// starts a background task, and returns [`MailError::NoRuntime`]
    /// otherwise.
    ///
    /// [`send`]: Mailer::send
    pub fn smtp(url: &Url) -> Result<Mailer, MailError> {
        let server = redact_password(url);
        let invalid = |reason: String| MailError::InvalidSmtpUrl {
            url: server.clone(),
            reason,
        };

        let security = parse_security(url).map_err(&invalid)?;
        let host = match url.host() {
            Some(Host::Domain(domain)) if !domain.is_empty() => domain.to_owned(),
            Some(Host::Ipv4(address)) => address.to_string(),
            Some(Host::Ipv6(address)) => address.to_string(),
            _ => return Err(invalid(format!("missing host; {ACCEPTED_SMTP_URLS}"))),
        };
        let port = url.port().unwrap_or(security.default_port());
        let credentials = parse_credentials(url).map_err(&invalid)?;

        tokio::runtime::Handle::try_current().map_err(|_| MailError::NoRuntime)?;

        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(port)
            .tls(Tls::None);
        if security != Security::Plain {
            let parameters = TlsParameters::new(host.clone())
                .map_err(|error| invalid(format!("failed to set up TLS: {error}")))?;
            builder = builder.tls(match security {
                Security::StartTlsOpportunistic => Tls::Opportunistic(parameters),
                Security::StartTlsRequired => Tls::Required(parameters),
                Security::Plain | Security::ImplicitTls => Tls::Wrapper(parameters),
            });
        }
        let ehlo_name = url.path().trim_matches('/');
        if !ehlo_name.is_empty() {
            builder = builder.hello_name(ClientId::Domain(ehlo_name.to_owned()));
        }
        if let Some(credentials) = credentials {
            if security == Security::Plain && !is_loopback(url) {
                tracing::warn!(
                    server = %server,
                    "SMTP password will be sent unencrypted; use smtps:// or ?tls=required"
                );
            }
            builder = builder.credentials(credentials);
        }

        Ok(Mailer {
            transport: Arc::new(Transport::Smtp {
                transport: builder.build(),
                server,
                security,
            }),
        })
    }

    /// Creates a mailer that writes each message as `<uuid>.eml` into `dir`,
    /// creating the folder and its parents if they do not exist.
    pub fn outbox(dir: PathBuf) -> Result<Mailer, MailError> {
        std::fs::create_dir_all(&dir).map_err(|source| MailError::CreateOutbox {
            path: dir.clone(),
            source,
        })?;
        Ok(Mailer {
            transport: Arc::new(Transport::Outbox {
                transport: AsyncFileTransport::new(&dir),
                dir,
            }),
        })
    }

    /// Delivers `message` to its envelope recipients.
    ///
    /// Returns once the SMTP server accepted the message or the `.eml` file is
    /// written.
    pub async fn send(&self, message: Message) -> Result<(), MailError> {
        let message_id = message
            .headers()
            .get_raw("Message-ID")
            .unwrap_or_default()
            .to_owned();
        let recipients = message.envelope().to().len();

        match self.transport.as_ref() {
            Transport::Smtp {
                transport, server, ..
            } => {
                transport
                    .send(message)
                    .await
                    .map_err(|source| MailError::Smtp {
                        server: server.clone(),
                        source,
                    })?;
                tracing::info!(%message_id, recipients, server = %server, "sent email via SMTP");
            }
            Transport::Outbox { transport, dir } => {
                let file_id =
                    transport
                        .send(message)
                        .await
                        .map_err(|source| MailError::WriteOutbox {
                            path: dir.clone(),
                            source,
                        })?;
                tracing::info!(
                    %message_id,
                    recipients,
                    file = %dir.join(format!("{file_id}.eml")).display(),
                    "wrote email to outbox"
                );
            }
        }
        Ok(())
    }

    /// Describes where messages go, for a start-up log line. Any SMTP
    /// password is replaced by `***`.
    pub fn describe(&self) -> String {
        match self.transport.as_ref() {
            Transport::Smtp {
                server, security, ..
            } => format!("SMTP server {server} ({})", security.describe()),
            Transport::Outbox { dir, .. } => format!(
                "outbox folder {} (no SMTP server configured, so messages are written as .eml files)",
                dir.display()
            ),
        }
    }
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Mailer").field(&self.describe()).finish()
    }
}

fn parse_security(url: &Url) -> Result<Security, String> {
    let mut tls = None;
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "tls" if tls.is_none() => tls = Some(value.into_owned()),
            "tls" => return Err("the tls parameter is given twice".to_owned()),
            other => {
                return Err(format!(
                    "unknown query parameter {other:?}; {ACCEPTED_SMTP_URLS}"
                ));
            }
        }
    }

    match (url.scheme(), tls.as_deref()) {
        ("smtp", None) => Ok(Security::Plain),
        ("smtp", Some("required")) => Ok(Security::StartTlsRequired),
        ("smtp", Some("opportunistic")) => Ok(Security::StartTlsOpportunistic),
        ("smtp", Some(other)) => Err(format!(
            "unknown tls value {other:?}; expected required or opportunistic"
        )),
        ("smtps", None) => Ok(Security::ImplicitTls),
        ("smtps", Some(_)) => {
            Err("smtps:// always uses TLS, so remove the tls parameter".to_owned())
        }
        (scheme, _) => Err(format!("unknown scheme {scheme:?}; {ACCEPTED_SMTP_URLS}")),
    }
}

fn parse_credentials(url: &Url) -> Result<Option<Credentials>, String> {
    let decode = |part: &str, what: &str| {
        percent_encoding::percent_decode_str(part)
            .decode_utf8()
            .map(|decoded| decoded.into_owned())
            .map_err(|_| format!("the {what} is not valid UTF-8 after percent-decoding"))
    };

    match (url.username(), url.password()) {
        ("", None) => Ok(None),
        ("", Some(_)) => Err("a password is given without a user name".to_owned()),
        (_, None) => Err("a user name is given without a password".to_owned()),
        (user, Some(password)) => Ok(Some(Credentials::new(
            decode(user, "user name")?,
            decode(password, "password")?,
        ))),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(address)) => address.is_loopback(),
        Some(Host::Ipv6(address)) => address.is_loopback(),
        None => false,
    }
}

/// Returns `url` as text with any password replaced by `***`.
fn redact_password(url: &Url) -> String {
    if url.password().is_none() {
        return url.to_string();
    }
    let mut redacted = url.clone();
    // The url crate's `set_password` fails only for URLs without a host, and
    // such URLs cannot carry a password, so the fallback never hides a real one.
    match redacted.set_password(Some("***")) {
        Ok(()) => redacted.to_string(),
        Err(()) => format!("{}://***", url.scheme()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).expect("test URL parses")
    }

    #[test]
    fn security_from_scheme_and_tls_parameter() {
        let cases = [
            ("smtp://mail.example.com", Security::Plain),
            (
                "smtp://mail.example.com?tls=required",
                Security::StartTlsRequired,
            ),
            (
                "smtp://mail.example.com?tls=opportunistic",
                Security::StartTlsOpportunistic,
            ),
            ("smtps://mail.example.com", Security::ImplicitTls),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_security(&url(text)), Ok(expected), "{text}");
        }
    }

    #[test]
    fn security_rejects_unknown_forms() {
        for text in [
            "http://mail.example.com",
            "smtp://mail.example.com?tls=yes",
            "smtp://mail.example.com?tls=required&tls=required",
            "smtp://mail.example.com?timeout=5",
            "smtps://mail.example.com?tls=required",
        ] {
            assert!(parse_security(&url(text)).is_err(), "{text}");
        }
    }

    #[test]
    fn redact_password_hides_only_password() {
        let redacted = redact_password(&url("smtps://user%40studio:s%3Acret@mail.example.com:465"));

        assert_eq!(redacted, "smtps://user%40studio:***@mail.example.com:465");
    }

    #[test]
    fn credentials_are_percent_decoded() {
        let credentials = parse_credentials(&url("smtp://a%40b:p%3Aw@mail.example.com"));

        assert_eq!(
            credentials,
            Ok(Some(Credentials::new("a@b".to_owned(), "p:w".to_owned())))
        );
    }

    #[test]
    fn credentials_need_both_parts() {
        assert!(parse_credentials(&url("smtp://user@mail.example.com")).is_err());
        assert!(parse_credentials(&url("smtp://:pw@mail.example.com")).is_err());
        assert_eq!(parse_credentials(&url("smtp://mail.example.com")), Ok(None));
    }
}
