//! Replay of every recorded Stripe event, three times each, shuffled and
//! concurrent: the final state must equal that of one ordered delivery.

mod common;
mod stripe_support;

use stripe_support::*;

/// Number of shuffled replays, each against its own database.
const ROUNDS: u64 = 4;

async fn ordered_state() -> serde_json::Value {
    let app = spawn_with_fixtures().await;
    let client = reqwest::Client::new();
    for name in FIXTURES {
        let (status, body) = deliver_signed(&client, &app, &fixture(name)).await;
        assert_eq!(status, 200, "{name}: {body}");
    }
    snapshot(&app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shuffled_concurrent_triple_delivery_matches_ordered() {
    let expected = ordered_state().await;
    assert_eq!(expected["events"].as_array().map(Vec::len), Some(9));

    let base_seed =
        u64::try_from(chrono::Utc::now().timestamp_nanos_opt().unwrap_or(1)).unwrap_or(1);
    for round in 0..ROUNDS {
        let seed = base_seed.wrapping_add(round.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let app = spawn_with_fixtures().await;
        let mut deliveries: Vec<&str> = FIXTURES.iter().flat_map(|name| [*name; 3]).collect();
        shuffle(&mut deliveries, seed);

        let client = reqwest::Client::new();
        let requests = deliveries.iter().map(|name| {
            let client = client.clone();
            let body = fixture(name);
            let app = &app;
            async move { (name, deliver_signed(&client, app, &body).await) }
        });
        let answers = futures::future::join_all(requests).await;
        for (name, (status, body)) in &answers {
            assert_eq!(*status, 200, "seed {seed}: {name}: {body}");
        }
        let duplicates = answers
            .iter()
            .filter(|(_, (_, body))| body["outcome"] == "duplicate")
            .count();
        assert_eq!(
            duplicates, 18,
            "seed {seed}: two of three deliveries are duplicates"
        );

        let state = snapshot(&app).await;
        assert_eq!(state, expected, "seed {seed}: order {deliveries:?}");
    }
}
