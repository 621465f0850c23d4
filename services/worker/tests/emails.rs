//! The email job, called directly, delivering to a real SMTP server.

mod common;

use common::{Harness, SENDER, parse_mail, portal_url};
use proofsheet_domain::db::{auth, projects};
use proofsheet_domain::{ProjectId, UserId};
use proofsheet_jobs::SendEmail;
use proofsheet_worker::{EmailOutcome, send_email};

#[tokio::test]
async fn portal_link_email_carries_current_link() {
    let harness = Harness::start().await;
    let tenant = harness
        .studio("Lichtblick Fotografie", "Europe/Berlin")
        .await;
    let project = harness.project(tenant).await;
    let old_token = project.portal_token.expose().to_owned();
    let mut tx = harness.db.tenant(tenant).await.expect("tenant tx");
    let current = projects::rotate_portal_token(&mut tx, project.id)
        .await
        .expect("rotate");
    tx.commit().await.expect("commit");
    let link = portal_url(current.expose());

    let job = SendEmail::PortalLink {
        tenant_id: tenant,
        project_id: project.id,
    };
    let outcome = send_email(&harness.ctx, &job).await.expect("sent");

    assert_eq!(outcome, EmailOutcome::Sent);
    let mail = parse_mail(&harness.next_mail().await);
    assert_eq!(mail.recipients, vec!["anna@client.test".to_owned()]);
    assert_eq!(mail.from_name.as_deref(), Some("Lichtblick Fotografie"));
    assert_eq!(mail.from_address.as_deref(), Some(SENDER));
    assert!(mail.text.contains(&link), "text part: {}", mail.text);
    assert!(mail.html.contains(&link), "HTML part: {}", mail.html);
    assert!(
        !mail.text.contains(&old_token),
        "text part has the old link"
    );
    assert!(
        !mail.html.contains(&old_token),
        "HTML part has the old link"
    );
    harness.finish().await;
}

#[tokio::test]
async fn password_reset_goes_to_user() {
    let harness = Harness::start().await;
    let tenant = harness.studio("Lichtblick", "Europe/Berlin").await;
    let mut tx = harness.db.tenant(tenant).await.expect("tenant tx");
    let user: UserId = sqlx::query_scalar("SELECT id FROM users")
        .fetch_one(tx.as_mut_connection())
        .await
        .expect("the owner");
    let token = auth::create_password_reset(&mut tx, user)
        .await
        .expect("reset");
    tx.commit().await.expect("commit");
    let reset_url = format!("https://studio.proofsheet.test/reset/{}", token.expose());

    let job = SendEmail::PasswordReset {
        tenant_id: tenant,
        user_id: user,
        reset_url: reset_url.clone(),
    };
    let outcome = send_email(&harness.ctx, &job).await.expect("sent");

    assert_eq!(outcome, EmailOutcome::Sent);
    let mail = parse_mail(&harness.next_mail().await);
    assert_eq!(mail.recipients, vec!["owner@lichtblick.test".to_owned()]);
    assert!(mail.text.contains(&reset_url), "text part: {}", mail.text);
    assert!(mail.html.contains(&reset_url), "HTML part: {}", mail.html);
    harness.finish().await;
}

#[tokio::test]
async fn portal_link_of_missing_project_is_not_found() {
    let harness = Harness::start().await;
    let tenant = harness.studio("Lichtblick", "Europe/Berlin").await;
    let job = SendEmail::PortalLink {
        tenant_id: tenant,
        project_id: ProjectId::new(),
    };

    let error = send_email(&harness.ctx, &job)
        .await
        .expect_err("no such project");

    assert!(error.is_not_found(), "{error}");
    harness
        .assert_no_more_mail(std::time::Duration::from_millis(300))
        .await;
    harness.finish().await;
}

#[tokio::test]
async fn unreachable_smtp_server_is_transient() {
    let mut harness = Harness::start().await;
    let tenant = harness.studio("Lichtblick", "Europe/Berlin").await;
    let project = harness.project(tenant).await;
    // Binding and dropping a listener leaves a port that refuses connections.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    let port = closed.local_addr().expect("address").port();
    drop(closed);
    let url = url::Url::parse(&format!("smtp://127.0.0.1:{port}")).expect("valid URL");
    harness.ctx.mailer = proofsheet_mail::Mailer::smtp(&url).expect("mailer");

    let job = SendEmail::PortalLink {
        tenant_id: tenant,
        project_id: project.id,
    };
    let error = send_email(&harness.ctx, &job)
        .await
        .expect_err("nothing listens");

    assert!(!error.is_permanent(), "{error}");
    let message = error.to_string();
    assert!(!message.contains("anna@client.test"), "{message}");
    assert!(
        !message.contains(project.portal_token.expose()),
        "{message}"
    );
    harness.finish().await;
}

#[tokio::test]
async fn payment_receipt_goes_to_client_once() {
    use proofsheet_domain::db::notices;
    use proofsheet_domain::db::stripe::{self, PaymentOutcome, PaymentReceived};

    let harness = Harness::start().await;
    let tenant = harness
        .studio("Lichtblick Fotografie", "Europe/Berlin")
        .await;
    let project = harness.project(tenant).await;
    let invoice = harness.invoice(tenant, project.id, "2099-01-31").await;

    // What the webhook writes when Checkout reports the payment.
    let mut tx = harness.db.tenant(tenant).await.expect("tenant tx");
    let payment = PaymentReceived {
        invoice_id: invoice,
        payment_intent_id: "pi_receipt",
        amount_minor: 45_000,
        currency: "eur",
        paid_at: chrono::DateTime::from_timestamp(1_795_011_726, 0).expect("time"),
    };
    let outcome = stripe::record_payment(&mut tx, &payment)
        .await
        .expect("payment");
    assert_eq!(outcome, PaymentOutcome::MarkedPaid);
    let notice = notices::queue_payment_receipt(&mut tx, invoice)
        .await
        .expect("queue receipt")
        .expect("a new notice");
    let again = notices::queue_payment_receipt(&mut tx, invoice)
        .await
        .expect("queue receipt again");
    assert_eq!(again, None);
    tx.commit().await.expect("commit");

    let job = SendEmail::Notice {
        tenant_id: tenant,
        notice_id: notice,
    };
    assert_eq!(
        send_email(&harness.ctx, &job).await.expect("sent"),
        EmailOutcome::Sent
    );
    let mail = parse_mail(&harness.next_mail().await);
    assert_eq!(mail.recipients, vec!["anna@client.test".to_owned()]);
    assert_eq!(mail.from_name.as_deref(), Some("Lichtblick Fotografie"));
    assert_eq!(mail.from_address.as_deref(), Some(SENDER));
    assert!(
        mail.subject.contains("Payment received"),
        "{}",
        mail.subject
    );
    let link = portal_url(project.portal_token.expose());
    for part in [&mail.text, &mail.html] {
        assert!(part.contains("€450.00"), "{part}");
        assert!(part.contains("deposit invoice"), "{part}");
        assert!(part.contains("Lichtblick Fotografie"), "{part}");
        assert!(part.contains("18 November 2026"), "{part}");
        assert!(part.contains(&link), "{part}");
    }

    assert_eq!(
        send_email(&harness.ctx, &job).await.expect("second job"),
        EmailOutcome::AlreadySent
    );
    harness
        .assert_no_more_mail(std::time::Duration::from_millis(300))
        .await;
    harness.finish().await;
}

#[tokio::test]
async fn plan_payment_failed_goes_to_owner() {
    use proofsheet_domain::db::notices;

    let harness = Harness::start().await;
    let tenant = harness.studio("Lichtblick", "Europe/Berlin").await;
    let mut tx = harness.db.tenant(tenant).await.expect("tenant tx");
    let notice = notices::queue_plan_payment_failed(&mut tx, "evt_plan_failed_1")
        .await
        .expect("queue notice")
        .expect("a new notice");
    let again = notices::queue_plan_payment_failed(&mut tx, "evt_plan_failed_1")
        .await
        .expect("queue notice again");
    assert_eq!(again, None);
    tx.commit().await.expect("commit");

    let job = SendEmail::Notice {
        tenant_id: tenant,
        notice_id: notice,
    };
    assert_eq!(
        send_email(&harness.ctx, &job).await.expect("sent"),
        EmailOutcome::Sent
    );
    let mail = parse_mail(&harness.next_mail().await);
    assert_eq!(mail.recipients, vec!["owner@lichtblick.test".to_owned()]);
    assert_eq!(mail.from_address.as_deref(), Some(SENDER));
    assert!(
        mail.subject.contains("update your card"),
        "{}",
        mail.subject
    );
    let settings = format!(
        "{}/settings",
        harness.config.public_web_url.as_str().trim_end_matches('/')
    );
    for part in [&mail.text, &mail.html] {
        assert!(part.contains(&settings), "{part}");
        assert!(part.contains("Lichtblick"), "{part}");
    }
    assert_eq!(
        send_email(&harness.ctx, &job).await.expect("second job"),
        EmailOutcome::AlreadySent
    );
    harness.finish().await;
}
