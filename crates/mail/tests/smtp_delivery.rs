//! Sends every message kind through `Mailer::smtp` to a real SMTP server on
//! 127.0.0.1 and checks what arrives with an independent MIME parser.

use std::time::Duration;

use mail_parser::{MessageParser, MimeHeaders};
use proofsheet_mail::{
    InvoiceKind, InvoiceOverdueClientEmail, InvoiceOverdueStudioEmail, Mailer, Message,
    PasswordResetEmail, PortalLinkEmail, invoice_overdue_client, invoice_overdue_studio,
    password_reset, portal_link,
};
use proofsheet_testkit::smtp::{ReceivedMail, SmtpSink};
use url::Url;

const PORTAL_URL: &str = "https://portal.proofsheet.localhost/p/3f9c2a7be1d04c55";
const SENDER: &str = "studios@proofsheet.localhost";
const WAIT: Duration = Duration::from_secs(10);

/// Display names that have broken other mailers: a comma with non-ASCII
/// letters, CJK text, quotes and angle brackets.
const TRICKY_NAMES: [&str; 6] = [
    "Müller, Jürgen",
    "井手 遥",
    "Ilse Vermeulen",
    "Smith, John",
    "O'Brien \"Studio\" <Test>",
    "Zoë (Fotografie) ; Co",
];

struct Delivery {
    sink: SmtpSink,
    mailer: Mailer,
}

impl Delivery {
    async fn start() -> Delivery {
        let sink = SmtpSink::start().await;
        let url = Url::parse(&sink.url()).expect("sink URL parses");
        let mailer = Mailer::smtp(&url).expect("mailer for the sink");
        Delivery { sink, mailer }
    }

    async fn deliver(&self, message: Message) -> ReceivedMail {
        self.mailer.send(message).await.expect("SMTP delivery");
        self.sink
            .next_message(WAIT)
            .await
            .expect("sink received the message")
    }
}

fn portal_email() -> PortalLinkEmail {
    PortalLinkEmail {
        studio_name: "Lichtblick Fotografie".to_owned(),
        studio_email: "hello@lichtblick.example".to_owned(),
        sender_address: SENDER.to_owned(),
        client_name: "Anna Schmidt".to_owned(),
        client_email: "anna@client.example".to_owned(),
        project_title: "Hochzeit im Schlosspark".to_owned(),
        portal_url: PORTAL_URL.to_owned(),
        accent_colour: Some("#8a5cf6".to_owned()),
        message: None,
    }
}

/// Returns the decoded contents of the first body part with this MIME type.
fn part_text(message: &mail_parser::Message<'_>, subtype: &str) -> Option<String> {
    message
        .parts
        .iter()
        .find(|part| {
            part.content_type()
                .is_some_and(|ct| ct.ctype() == "text" && ct.subtype() == Some(subtype))
        })
        .and_then(|part| part.text_contents())
        .map(str::to_owned)
}

fn longest_line(raw: &[u8]) -> usize {
    raw.split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line).len())
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn portal_link_arrives_complete() {
    let delivery = Delivery::start().await;
    let email = portal_email();

    let received = delivery
        .deliver(portal_link(&email).expect("message builds"))
        .await;
    let parsed = MessageParser::default()
        .parse(&received.raw)
        .expect("mail-parser parses the message");

    assert_eq!(received.from, SENDER);
    assert_eq!(received.recipients, ["anna@client.example"]);

    let from = parsed.from().and_then(|a| a.first()).expect("From");
    assert_eq!(from.name(), Some("Lichtblick Fotografie"));
    assert_eq!(from.address(), Some(SENDER));
    let reply_to = parsed.reply_to().and_then(|a| a.first()).expect("Reply-To");
    assert_eq!(reply_to.address(), Some("hello@lichtblick.example"));
    let to = parsed.to().and_then(|a| a.first()).expect("To");
    assert_eq!(to.name(), Some("Anna Schmidt"));
    assert_eq!(to.address(), Some("anna@client.example"));
    assert_eq!(
        parsed.subject(),
        Some("Your photos from Lichtblick Fotografie: Hochzeit im Schlosspark")
    );
    let message_id = parsed.message_id().expect("Message-ID");
    assert!(
        message_id.ends_with("@proofsheet.localhost"),
        "{message_id}"
    );

    let content_type = parsed.content_type().expect("Content-Type");
    assert_eq!(content_type.ctype(), "multipart");
    assert_eq!(content_type.subtype(), Some("alternative"));
    let text = part_text(&parsed, "plain").expect("text/plain part");
    let html = part_text(&parsed, "html").expect("text/html part");
    assert!(text.contains(PORTAL_URL), "text part: {text}");
    assert!(
        html.contains(&format!("href=\"{PORTAL_URL}\"")),
        "html part: {html}"
    );
    assert!(
        text.contains("Hochzeit im Schlosspark"),
        "text part: {text}"
    );
    assert!(html.contains("#8a5cf6"), "html part lacks accent colour");
    assert!(received.raw.is_ascii(), "message is not 7-bit");
}

#[tokio::test]
async fn tricky_display_names_round_trip() {
    let delivery = Delivery::start().await;

    for name in TRICKY_NAMES {
        let email = PortalLinkEmail {
            studio_name: name.to_owned(),
            client_name: name.to_owned(),
            ..portal_email()
        };

        let received = delivery
            .deliver(portal_link(&email).expect("message builds"))
            .await;
        let parsed = MessageParser::default()
            .parse(&received.raw)
            .expect("mail-parser parses the message");

        assert_eq!(received.recipients, ["anna@client.example"], "{name}");
        let to = parsed.to().expect("To");
        assert_eq!(to.iter().count(), 1, "{name} split the To header");
        let to = to.first().expect("To entry");
        assert_eq!(to.name(), Some(name));
        assert_eq!(to.address(), Some("anna@client.example"), "{name}");
        let from = parsed.from().expect("From");
        assert_eq!(from.iter().count(), 1, "{name} split the From header");
        assert_eq!(from.first().and_then(|a| a.name()), Some(name));
        let reply_to = parsed.reply_to().and_then(|a| a.first()).expect("Reply-To");
        assert_eq!(reply_to.name(), Some(name));
        assert_eq!(
            parsed.subject(),
            Some(format!("Your photos from {name}: Hochzeit im Schlosspark").as_str())
        );
        assert!(received.raw.is_ascii(), "{name}: message is not 7-bit");
    }
}

#[tokio::test]
async fn long_text_arrives_intact() {
    let delivery = Delivery::start().await;
    let note: String = "Grüße aus dem Studio, ihr wart großartig! "
        .chars()
        .cycle()
        .take(5_000)
        .collect();
    let title: String = "Sommerfest über den Dächern "
        .chars()
        .cycle()
        .take(5_000)
        .collect();
    let email = PortalLinkEmail {
        project_title: title.clone(),
        message: Some(note.clone()),
        ..portal_email()
    };

    let received = delivery
        .deliver(portal_link(&email).expect("message builds"))
        .await;
    let parsed = MessageParser::default()
        .parse(&received.raw)
        .expect("mail-parser parses the message");

    let longest = longest_line(&received.raw);
    assert!(longest <= 998, "longest raw line has {longest} octets");
    let text = part_text(&parsed, "plain").expect("text/plain part");
    let html = part_text(&parsed, "html").expect("text/html part");
    assert!(text.contains(&note), "text part lost the note");
    assert!(html.contains(&note), "html part lost the note");
    assert!(text.contains(title.trim()), "text part lost the title");
    assert!(html.contains(title.trim()), "html part lost the title");
    // The subject keeps the first 149 characters of the title and an ellipsis.
    let shortened: String = title.chars().take(149).collect();
    assert_eq!(
        parsed.subject(),
        Some(format!("Your photos from Lichtblick Fotografie: {shortened}…").as_str())
    );
}

#[tokio::test]
async fn unbroken_words_stay_under_line_limit() {
    let delivery = Delivery::start().await;
    let title = "x".repeat(5_000);
    let name = "y".repeat(2_000);
    let note = "z".repeat(5_000);
    let email = PortalLinkEmail {
        studio_name: name.clone(),
        client_name: name.clone(),
        project_title: title.clone(),
        message: Some(note.clone()),
        ..portal_email()
    };

    let received = delivery
        .deliver(portal_link(&email).expect("message builds"))
        .await;
    let parsed = MessageParser::default()
        .parse(&received.raw)
        .expect("mail-parser parses the message");

    let longest = longest_line(&received.raw);
    assert!(longest <= 998, "longest raw line has {longest} octets");
    let text = part_text(&parsed, "plain").expect("text/plain part");
    assert!(text.contains(&title), "text part lost the title");
    assert!(text.contains(&note), "text part lost the note");
    let subject = parsed.subject().expect("Subject");
    assert!(subject.starts_with("Your photos from yyy"), "{subject}");
    assert!(subject.ends_with("x…"), "{subject}");
    let to = parsed.to().and_then(|a| a.first()).expect("To");
    assert_eq!(to.address(), Some("anna@client.example"));
    let to_name = to.name().expect("To display name");
    assert!(to_name.starts_with("yyy"), "{to_name}");
    assert!(to_name.ends_with('…'), "{to_name}");
}

#[tokio::test]
async fn user_text_cannot_inject_markup_or_headers() {
    let delivery = Delivery::start().await;
    let email = PortalLinkEmail {
        project_title: "Tom & Jerry\r\nBcc: intruder@evil.example".to_owned(),
        message: Some("<script>alert('x')</script>\r\nSecond line".to_owned()),
        ..portal_email()
    };

    let received = delivery
        .deliver(portal_link(&email).expect("message builds"))
        .await;
    let parsed = MessageParser::default()
        .parse(&received.raw)
        .expect("mail-parser parses the message");

    assert_eq!(received.recipients, ["anna@client.example"]);
    assert!(parsed.bcc().is_none(), "a Bcc header was injected");
    let html = part_text(&parsed, "html").expect("text/html part");
    assert!(!html.contains("<script>"), "html part: {html}");
    assert!(html.contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"));
    assert!(html.contains("Tom &amp; Jerry"), "html part: {html}");
    // lettre sends every line break as CRLF, so compare with LF only.
    let text = part_text(&parsed, "plain")
        .expect("text/plain part")
        .replace("\r\n", "\n");
    assert!(
        text.contains("<script>alert('x')</script>\nSecond line"),
        "text part: {text}"
    );
}

#[tokio::test]
async fn invoice_overdue_client_names_invoice() {
    let delivery = Delivery::start().await;
    let email = InvoiceOverdueClientEmail {
        studio_name: "Müller, Jürgen".to_owned(),
        studio_email: "juergen@studio.example".to_owned(),
        sender_address: SENDER.to_owned(),
        client_name: "井手 遥".to_owned(),
        client_email: "haruka@client.example".to_owned(),
        project_title: "Familienfotos".to_owned(),
        invoice_kind: InvoiceKind::Deposit,
        amount: "€1,250.00".to_owned(),
        due_date: "3 March 2026".to_owned(),
        portal_url: PORTAL_URL.to_owned(),
        accent_colour: None,
    };

    let received = delivery
        .deliver(invoice_overdue_client(&email).expect("message builds"))
        .await;
    let parsed = MessageParser::default()
        .parse(&received.raw)
        .expect("mail-parser parses the message");

    assert_eq!(received.recipients, ["haruka@client.example"]);
    let from = parsed.from().and_then(|a| a.first()).expect("From");
    assert_eq!(from.name(), Some("Müller, Jürgen"));
    assert_eq!(from.address(), Some(SENDER));
    let reply_to = parsed.reply_to().and_then(|a| a.first()).expect("Reply-To");
    assert_eq!(reply_to.address(), Some("juergen@studio.example"));
    assert_eq!(
        parsed.subject(),
        Some("Payment reminder: deposit invoice for Familienfotos is overdue")
    );
    let text = part_text(&parsed, "plain").expect("text/plain part");
    let html = part_text(&parsed, "html").expect("text/html part");
    for expected in [
        "Familienfotos",
        "deposit invoice",
        "€1,250.00",
        "3 March 2026",
        PORTAL_URL,
    ] {
        assert!(
            text.contains(expected),
            "text part lacks {expected}: {text}"
        );
        assert!(
            html.contains(expected),
            "html part lacks {expected}: {html}"
        );
    }
}

#[tokio::test]
async fn invoice_overdue_studio_names_client() {
    let delivery = Delivery::start().await;
    let email = InvoiceOverdueStudioEmail {
        studio_name: "Ilse Vermeulen".to_owned(),
        studio_email: "ilse@studio.example".to_owned(),
        sender_address: SENDER.to_owned(),
        client_name: "Smith, John".to_owned(),
        client_email: "john@client.example".to_owned(),
        project_title: "Portraits".to_owned(),
        invoice_kind: InvoiceKind::Final,
        amount: "£980.00".to_owned(),
        due_date: "2026-04-01".to_owned(),
    };

    let received = delivery
        .deliver(invoice_overdue_studio(&email).expect("message builds"))
        .await;
    let parsed = MessageParser::default()
        .parse(&received.raw)
        .expect("mail-parser parses the message");

    assert_eq!(received.recipients, ["ilse@studio.example"]);
    let from = parsed.from().and_then(|a| a.first()).expect("From");
    assert_eq!(from.name(), Some("Proofsheet"));
    let to = parsed.to().and_then(|a| a.first()).expect("To");
    assert_eq!(to.name(), Some("Ilse Vermeulen"));
    assert_eq!(
        parsed.subject(),
        Some("Overdue final invoice: Portraits (Smith, John)")
    );
    let text = part_text(&parsed, "plain").expect("text/plain part");
    let html = part_text(&parsed, "html").expect("text/html part");
    for expected in [
        "Portraits",
        "final invoice",
        "Smith, John",
        "john@client.example",
        "£980.00",
        "2026-04-01",
    ] {
        assert!(
            text.contains(expected),
            "text part lacks {expected}: {text}"
        );
        assert!(
            html.contains(expected),
            "html part lacks {expected}: {html}"
        );
    }
}

#[tokio::test]
async fn password_reset_contains_link_and_validity() {
    let delivery = Delivery::start().await;
    let reset_url = "https://app.proofsheet.localhost/reset?token=Zm9vYmFy";
    let email = PasswordResetEmail {
        user_name: "Müller, Jürgen".to_owned(),
        user_email: "juergen@studio.example".to_owned(),
        sender_address: SENDER.to_owned(),
        reset_url: reset_url.to_owned(),
        valid_for: Duration::from_secs(3600),
    };

    let received = delivery
        .deliver(password_reset(&email).expect("message builds"))
        .await;
    let parsed = MessageParser::default()
        .parse(&received.raw)
        .expect("mail-parser parses the message");

    assert_eq!(received.recipients, ["juergen@studio.example"]);
    let to = parsed.to().and_then(|a| a.first()).expect("To");
    assert_eq!(to.name(), Some("Müller, Jürgen"));
    assert_eq!(parsed.subject(), Some("Reset your Proofsheet password"));
    let text = part_text(&parsed, "plain").expect("text/plain part");
    let html = part_text(&parsed, "html").expect("text/html part");
    assert!(text.contains(reset_url), "text part: {text}");
    assert!(html.contains(reset_url), "html part: {html}");
    assert!(text.contains("expires in 1 hour"), "text part: {text}");
    assert!(html.contains("expires in 1 hour"), "html part: {html}");
}

#[tokio::test]
async fn pooled_connection_delivers_several_messages() {
    let delivery = Delivery::start().await;

    for index in 0..3 {
        let email = PortalLinkEmail {
            project_title: format!("Project {index}"),
            ..portal_email()
        };
        let received = delivery
            .deliver(portal_link(&email).expect("message builds"))
            .await;
        let parsed = MessageParser::default()
            .parse(&received.raw)
            .expect("mail-parser parses the message");
        assert_eq!(
            parsed.subject(),
            Some(format!("Your photos from Lichtblick Fotografie: Project {index}").as_str())
        );
    }
}

#[tokio::test]
async fn leading_dots_survive_transport() {
    let delivery = Delivery::start().await;
    let note = ".hidden\n..two dots\n.";
    let email = PortalLinkEmail {
        message: Some(note.to_owned()),
        ..portal_email()
    };

    let received = delivery
        .deliver(portal_link(&email).expect("message builds"))
        .await;
    let parsed = MessageParser::default()
        .parse(&received.raw)
        .expect("mail-parser parses the message");

    // The dots must reach SMTP literally, or the sink's dot-unstuffing would
    // go untested.
    let raw = String::from_utf8_lossy(&received.raw);
    assert!(raw.contains("\r\n..two dots\r\n"), "raw message: {raw}");
    let text = part_text(&parsed, "plain")
        .expect("text/plain part")
        .replace("\r\n", "\n");
    assert!(text.contains(note), "text part: {text}");
}
