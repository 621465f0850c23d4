//! `Mailer` construction, the outbox mode and error reporting.

use std::net::TcpListener;

use mail_parser::MessageParser;
use proofsheet_mail::{MailError, Mailer, PortalLinkEmail, portal_link};
use url::Url;

fn portal_email() -> PortalLinkEmail {
    PortalLinkEmail {
        studio_name: "Müller, Jürgen".to_owned(),
        studio_email: "juergen@studio.example".to_owned(),
        sender_address: "studios@proofsheet.localhost".to_owned(),
        client_name: "Ilse Vermeulen".to_owned(),
        client_email: "ilse@client.example".to_owned(),
        project_title: "Babybauch".to_owned(),
        portal_url: "https://portal.proofsheet.localhost/p/abc".to_owned(),
        accent_colour: None,
        message: None,
    }
}

fn url(text: &str) -> Url {
    Url::parse(text).expect("test URL parses")
}

#[tokio::test]
async fn outbox_writes_one_eml_file() {
    let temp = tempfile::tempdir().expect("temp dir");
    let outbox = temp.path().join("mail").join("outbox");
    let mailer = Mailer::outbox(outbox.clone()).expect("outbox mailer");

    mailer
        .send(portal_link(&portal_email()).expect("message builds"))
        .await
        .expect("write to outbox");

    let files: Vec<_> = std::fs::read_dir(&outbox)
        .expect("outbox folder exists")
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().and_then(|e| e.to_str()), Some("eml"));
    let raw = std::fs::read(&files[0]).expect("read .eml file");
    let parsed = MessageParser::default()
        .parse(&raw)
        .expect("mail-parser parses the file");
    assert_eq!(
        parsed.subject(),
        Some("Your photos from Müller, Jürgen: Babybauch")
    );
    assert!(
        mailer.describe().contains("outbox"),
        "{}",
        mailer.describe()
    );
}

#[test]
fn outbox_reports_uncreatable_folder() {
    let temp = tempfile::tempdir().expect("temp dir");
    let file = temp.path().join("not-a-folder");
    std::fs::write(&file, b"").expect("create file");

    let error = Mailer::outbox(file.join("outbox")).expect_err("folder under a file");

    assert!(matches!(error, MailError::CreateOutbox { .. }), "{error:?}");
    assert!(error.to_string().contains("not-a-folder"), "{error}");
}

#[tokio::test]
async fn describe_hides_password() {
    let mailer =
        Mailer::smtp(&url("smtp://studio:s3cr%40t@127.0.0.1:2525")).expect("plain SMTP mailer");

    let description = mailer.describe();

    assert!(!description.contains("s3cr"), "{description}");
    assert!(
        description.contains("studio:***@127.0.0.1:2525"),
        "{description}"
    );
    assert!(description.contains("unencrypted"), "{description}");
    assert!(!format!("{mailer:?}").contains("s3cr"));
}

#[tokio::test]
async fn smtp_url_selects_tls_mode() {
    let cases = [
        ("smtps://mail.example.com", "(TLS)"),
        (
            "smtp://mail.example.com?tls=required",
            "(STARTTLS required)",
        ),
        (
            "smtp://mail.example.com:2587?tls=opportunistic",
            "(STARTTLS if the server offers it)",
        ),
        ("smtp://mail.example.com", "(unencrypted)"),
    ];
    for (text, expected) in cases {
        let mailer = Mailer::smtp(&url(text)).expect(text);
        let description = mailer.describe();
        assert!(description.ends_with(expected), "{text}: {description}");
    }
}

#[tokio::test]
async fn smtp_rejects_bad_urls() {
    for text in [
        "http://mail.example.com",
        "smtp://mail.example.com?tls=always",
        "smtp:relative",
        "smtp://user:p%40ss@mail.example.com?tls=maybe",
    ] {
        let error = Mailer::smtp(&url(text)).expect_err(text);
        let message = error.to_string();
        assert!(
            matches!(error, MailError::InvalidSmtpUrl { .. }),
            "{text}: {error:?}"
        );
        assert!(!message.contains("p%40ss"), "{message}");
    }
}

#[test]
fn smtp_outside_runtime_is_an_error() {
    let result = Mailer::smtp(&url("smtp://127.0.0.1:2525"));

    assert!(matches!(result, Err(MailError::NoRuntime)), "{result:?}");
}

#[tokio::test]
async fn send_reports_unreachable_server() {
    // Bind and release a port so that nothing listens on it.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let mailer = Mailer::smtp(&url(&format!("smtp://127.0.0.1:{port}"))).expect("mailer");

    let error = mailer
        .send(portal_link(&portal_email()).expect("message builds"))
        .await
        .expect_err("nothing listens");

    assert!(matches!(error, MailError::Smtp { .. }), "{error:?}");
    assert!(error.to_string().contains(&port.to_string()), "{error}");
}

#[test]
fn invalid_address_names_value() {
    let email = PortalLinkEmail {
        client_email: "Ilse Vermeulen, ilse@client.example".to_owned(),
        ..portal_email()
    };

    let error = portal_link(&email).expect_err("invalid client address");

    match &error {
        MailError::InvalidAddress { field, value, .. } => {
            assert_eq!(*field, "client_email");
            assert_eq!(value, "Ilse Vermeulen, ilse@client.example");
        }
        other => panic!("expected InvalidAddress, got {other:?}"),
    }
    assert!(
        error
            .to_string()
            .contains("\"Ilse Vermeulen, ilse@client.example\""),
        "{error}"
    );
}

#[test]
fn invalid_portal_url_names_value() {
    let email = PortalLinkEmail {
        portal_url: "portal/p/abc".to_owned(),
        ..portal_email()
    };

    let error = portal_link(&email).expect_err("relative URL");

    assert!(
        matches!(
            &error,
            MailError::InvalidUrl {
                field: "portal_url",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("\"portal/p/abc\""), "{error}");
}
