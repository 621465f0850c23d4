//! Overdue detection: flagging in the studio's time zone, and exactly one
//! email per recipient when several workers run at the same time.
//!
//! The due dates are relative to today in the studio's zone. A test that runs
//! across midnight in that zone can fail once, and a second run passes.

mod common;

use std::time::Duration;

use chrono::{Days, NaiveDate, Utc};
use common::{Harness, parse_mail, portal_url};
use proofsheet_domain::{NoticeId, TenantId};
use proofsheet_worker::{
    EmailOutcome, WorkerSettings, Workers, check_overdue_invoices, send_notice,
};
use sqlx::{Connection, PgConnection};
use tokio::sync::oneshot;

/// UTC+14 all year: yesterday there is often today in UTC, so a check that
/// compared due dates with the UTC date would miss the invoice.
const FAR_EAST: &str = "Pacific/Kiritimati";
/// UTC-11 all year: today there is often yesterday in UTC, so a check that
/// compared due dates with the UTC date would flag the invoice too early.
const FAR_WEST: &str = "Pacific/Pago_Pago";

fn today_in(zone: &str) -> NaiveDate {
    let tz: chrono_tz::Tz = zone.parse().expect("known zone");
    Utc::now().with_timezone(&tz).date_naive()
}

fn yesterday_in(zone: &str) -> String {
    let yesterday = today_in(zone)
        .checked_sub_days(Days::new(1))
        .expect("a valid date");
    yesterday.to_string()
}

/// Returns the number of jobs ever pushed to the email queue: apalis-redis
/// keeps each job's payload in one hash field.
async fn queued_emails(harness: &Harness) -> i64 {
    let mut connection = harness.ctx.queues.connection();
    redis::cmd("HLEN")
        .arg(format!("{}:emails:data", harness.namespace))
        .query_async(&mut connection)
        .await
        .expect("queue length")
}

#[tokio::test]
async fn overdue_invoice_notifies_each_recipient_once() {
    let harness = Harness::start().await;
    let tenant = harness.studio("Lichtblick", FAR_EAST).await;
    let project = harness.project(tenant).await;
    let invoice = harness
        .invoice(tenant, project.id, &yesterday_in(FAR_EAST))
        .await;
    let other_worker = harness.second_context().await;

    let (first, second) = tokio::join!(
        check_overdue_invoices(&harness.ctx),
        check_overdue_invoices(&other_worker)
    );
    let (first, second) = (first.expect("first check"), second.expect("second check"));

    let notices: Vec<(TenantId, NoticeId)> = first
        .flagged
        .iter()
        .chain(&second.flagged)
        .copied()
        .collect();
    assert_eq!(
        notices.len(),
        2,
        "one notice for the client, one for the studio"
    );
    assert!(first.requeued.is_empty());
    assert!(second.requeued.is_empty());
    assert_eq!(harness.invoice_status(tenant, invoice).await, "overdue");
    assert_eq!(queued_emails(&harness).await, 2);

    // Two workers send every notice at once, and the row lock lets one win.
    let sends = notices.iter().flat_map(|(tenant, notice)| {
        [
            send_notice(&harness.ctx, *tenant, *notice),
            send_notice(&other_worker, *tenant, *notice),
        ]
    });
    let outcomes: Vec<EmailOutcome> = futures::future::join_all(sends)
        .await
        .into_iter()
        .map(|outcome| outcome.expect("send"))
        .collect();
    let sent = outcomes
        .iter()
        .filter(|o| **o == EmailOutcome::Sent)
        .count();
    let skipped = outcomes
        .iter()
        .filter(|o| **o == EmailOutcome::AlreadySent)
        .count();
    assert_eq!(sent, 2);
    assert_eq!(skipped, 2);

    let mut mails = [
        parse_mail(&harness.next_mail().await),
        parse_mail(&harness.next_mail().await),
    ];
    mails.sort_by(|a, b| a.recipients.cmp(&b.recipients));
    let (client, studio) = (&mails[0], &mails[1]);
    assert_eq!(client.recipients, vec!["anna@client.test".to_owned()]);
    assert_eq!(studio.recipients, vec!["owner@lichtblick.test".to_owned()]);
    assert!(client.subject.contains("overdue"), "{}", client.subject);
    assert!(studio.subject.contains("Overdue"), "{}", studio.subject);
    let link = portal_url(project.portal_token.expose());
    assert!(client.text.contains(&link), "client text: {}", client.text);
    assert!(client.html.contains(&link), "client HTML: {}", client.html);
    assert!(
        client.text.contains("450.00"),
        "client text: {}",
        client.text
    );
    assert!(
        studio.text.contains("450.00"),
        "studio text: {}",
        studio.text
    );
    harness.assert_no_more_mail(Duration::from_secs(1)).await;

    let again = check_overdue_invoices(&harness.ctx)
        .await
        .expect("third check");
    assert!(again.flagged.is_empty(), "{again:?}");
    assert!(again.requeued.is_empty(), "{again:?}");
    assert_eq!(queued_emails(&harness).await, 2);
    harness.finish().await;
}

#[tokio::test]
async fn invoice_due_today_is_not_flagged() {
    let harness = Harness::start().await;
    let tenant = harness.studio("Lichtblick", FAR_WEST).await;
    let project = harness.project(tenant).await;
    let today = today_in(FAR_WEST).to_string();
    let invoice = harness.invoice(tenant, project.id, &today).await;

    let check = check_overdue_invoices(&harness.ctx).await.expect("check");

    assert!(check.flagged.is_empty(), "{check:?}");
    assert_eq!(harness.invoice_status(tenant, invoice).await, "unpaid");
    assert_eq!(queued_emails(&harness).await, 0);
    harness.finish().await;
}

#[tokio::test]
async fn lost_enqueue_is_repaired() {
    let harness = Harness::start().await;
    let tenant = harness.studio("Lichtblick", FAR_EAST).await;
    let project = harness.project(tenant).await;
    harness
        .invoice(tenant, project.id, &yesterday_in(FAR_EAST))
        .await;
    // Flag without enqueueing, as a worker that crashed after the commit
    // would, and age the notices past the re-enqueue threshold.
    let lost = harness.db.mark_overdue_invoices().await.expect("flag");
    assert_eq!(lost.len(), 2);
    let mut admin = PgConnection::connect(&harness.test_db.admin_url())
        .await
        .expect("owner connection");
    sqlx::query("UPDATE notices SET created_at = now() - interval '11 minutes'")
        .execute(&mut admin)
        .await
        .expect("age the notices");

    let check = check_overdue_invoices(&harness.ctx).await.expect("check");
    let repeat = check_overdue_invoices(&harness.ctx).await.expect("repeat");

    assert!(check.flagged.is_empty(), "{check:?}");
    let mut requeued = check.requeued.clone();
    let mut expected = lost.clone();
    requeued.sort();
    expected.sort();
    assert_eq!(requeued, expected);
    assert!(repeat.requeued.is_empty(), "{repeat:?}");
    assert_eq!(queued_emails(&harness).await, 2);
    for (tenant, notice) in lost {
        let outcome = send_notice(&harness.ctx, tenant, notice)
            .await
            .expect("send");
        assert_eq!(outcome, EmailOutcome::Sent);
    }
    harness.next_mail().await;
    harness.next_mail().await;
    harness.finish().await;
}

#[tokio::test]
async fn two_running_workers_send_each_notice_once() {
    // The overdue check runs every second in both workers.
    let harness = Harness::with_schedule("* * * * * *").await;
    let tenant = harness.studio("Lichtblick", FAR_EAST).await;
    let project = harness.project(tenant).await;
    let invoice = harness
        .invoice(tenant, project.id, &yesterday_in(FAR_EAST))
        .await;
    let settings = WorkerSettings::from_config(&harness.config).expect("settings");

    let mut stops = Vec::new();
    let mut runs = Vec::new();
    for ctx in [harness.ctx.clone(), harness.second_context().await] {
        let (stop, stopped) = oneshot::channel::<()>();
        let workers = Workers::new(ctx, &settings).expect("workers");
        runs.push(tokio::spawn(workers.run_until(async move {
            let _ = stopped.await;
        })));
        stops.push(stop);
    }

    let mut recipients = vec![
        harness.next_mail().await.recipients,
        harness.next_mail().await.recipients,
    ];
    recipients.sort();
    assert_eq!(
        recipients,
        vec![
            vec!["anna@client.test".to_owned()],
            vec!["owner@lichtblick.test".to_owned()],
        ]
    );
    // Several more ticks in both workers must send nothing.
    harness.assert_no_more_mail(Duration::from_secs(4)).await;
    assert_eq!(harness.invoice_status(tenant, invoice).await, "overdue");

    for stop in stops {
        let _ = stop.send(());
    }
    for run in runs {
        let result = run.await.expect("worker task");
        assert!(result.is_ok(), "{result:?}");
    }
    harness.finish().await;
}
