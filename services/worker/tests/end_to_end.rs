//! The whole service: `run` picks jobs from Redis, retries transient
//! failures, ends permanent ones at once, and serves `/healthz`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use common::{Harness, eventually, fixture};
use proofsheet_domain::db::photos::PhotoStatus;
use proofsheet_jobs::GenerateThumbnails;
use proofsheet_media::{ByteStream, LocalDiskStore, MediaStore, StoreError};
use proofsheet_worker::{GIVE_UP_REASON, RetrySettings, WorkerSettings, Workers, vacuum_queues};
use tokio::sync::oneshot;

/// Returns the `attempts` and `status` that apalis-redis stored for the only
/// thumbnail job of this test.
async fn thumbnail_job_record(harness: &Harness) -> (String, String) {
    let mut connection = harness.ctx.queues.connection();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:thumbnails:meta:*", harness.namespace))
        .query_async(&mut connection)
        .await
        .expect("meta keys");
    assert_eq!(keys.len(), 1, "one thumbnail job: {keys:?}");
    let (attempts, status): (Option<String>, Option<String>) = redis::cmd("HMGET")
        .arg(&keys[0])
        .arg("attempts")
        .arg("status")
        .query_async(&mut connection)
        .await
        .expect("job record");
    (attempts.unwrap_or_default(), status.unwrap_or_default())
}

fn free_local_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    listener.local_addr().expect("address").port()
}

#[tokio::test]
async fn run_processes_queued_jobs() {
    let harness = Harness::start().await;
    let tenant = harness.studio("Lichtblick", "Europe/Berlin").await;
    let project = harness.project(tenant).await;
    let photo = harness
        .upload(tenant, project.id, fixture("recurser-Landscape_6.jpg"))
        .await;
    let not_an_image = harness
        .upload(tenant, project.id, fixture("notanimage-blankpage-pdf.jpg"))
        .await;
    let mut config = harness.config.clone();
    let admin_port = free_local_port();
    config.worker_admin_addr = ([127, 0, 0, 1], admin_port).into();
    let (stop, stopped) = oneshot::channel::<()>();
    let service = tokio::spawn(proofsheet_worker::run(config, async move {
        let _ = stopped.await;
    }));

    for photo_id in [photo, not_an_image] {
        let job = GenerateThumbnails {
            tenant_id: tenant,
            photo_id,
        };
        harness
            .ctx
            .queues
            .enqueue_thumbnails(job)
            .await
            .expect("enqueue");
    }

    eventually("the photo is ready", || async {
        harness.photo(tenant, photo).await.status == PhotoStatus::Ready
    })
    .await;
    eventually("the PDF is marked failed", || async {
        harness.photo(tenant, not_an_image).await.status == PhotoStatus::Failed
    })
    .await;
    let ready = harness.photo(tenant, photo).await;
    assert_eq!(ready.width, Some(1800));
    assert_eq!(ready.height, Some(1200));
    assert_eq!(ready.grid_width, Some(480));
    assert_eq!(ready.grid_height, Some(320));

    let health = reqwest::get(format!("http://127.0.0.1:{admin_port}/healthz"))
        .await
        .expect("admin listener answers");
    assert_eq!(health.status(), reqwest::StatusCode::OK);
    let body: serde_json::Value = health.json().await.expect("JSON body");
    assert_eq!(body["checks"]["postgres"], "ok");
    assert_eq!(body["checks"]["redis"], "ok");

    let _ = stop.send(());
    let result = tokio::time::timeout(common::WAIT, service)
        .await
        .expect("the service stops in time")
        .expect("service task");
    assert!(result.is_ok(), "{result:?}");
    harness.finish().await;
}

#[tokio::test]
async fn run_rejects_superuser_role() {
    let harness = Harness::start().await;
    let mut config = harness.config.clone();
    config.database_url = harness.test_db.admin_url();

    let result = proofsheet_worker::run(config, std::future::pending()).await;

    let error = result.expect_err("a superuser bypasses row-level security");
    let message = error.to_string();
    assert!(message.contains("bypasses row-level security"), "{message}");
    assert!(message.contains("DATABASE_URL"), "{message}");
    harness.finish().await;
}

#[tokio::test]
async fn rejected_photo_job_runs_once() {
    let harness = Harness::start().await;
    let tenant = harness.studio("Lichtblick", "Europe/Berlin").await;
    let project = harness.project(tenant).await;
    let photo = harness
        .upload(tenant, project.id, fixture("notanimage-blankpage-pdf.jpg"))
        .await;
    let stop = start_workers(&harness, fast_retries(4)).await;

    let job = GenerateThumbnails {
        tenant_id: tenant,
        photo_id: photo,
    };
    harness
        .ctx
        .queues
        .enqueue_thumbnails(job)
        .await
        .expect("enqueue");
    eventually("the job is recorded as done", || async {
        thumbnail_job_record(&harness).await.1 == "Done"
    })
    .await;

    let (attempts, _) = thumbnail_job_record(&harness).await;
    assert_eq!(attempts, "1");
    let stored = harness.photo(tenant, photo).await;
    assert_eq!(stored.status, PhotoStatus::Failed);
    stop.finish().await;
    harness.finish().await;
}

#[tokio::test]
async fn finished_job_is_vacuumed() {
    let harness = Harness::start().await;
    let tenant = harness.studio("Lichtblick", "Europe/Berlin").await;
    let project = harness.project(tenant).await;
    let photo = harness
        .upload(tenant, project.id, fixture("notanimage-blankpage-pdf.jpg"))
        .await;
    let stop = start_workers(&harness, fast_retries(4)).await;
    let job = GenerateThumbnails {
        tenant_id: tenant,
        photo_id: photo,
    };
    harness
        .ctx
        .queues
        .enqueue_thumbnails(job)
        .await
        .expect("enqueue");
    eventually("the job is recorded as done", || async {
        thumbnail_job_record(&harness).await.1 == "Done"
    })
    .await;
    stop.finish().await;

    let deleted_with_retention = vacuum_queues(&harness.ctx, Duration::from_secs(3600))
        .await
        .expect("vacuum with a long retention");
    let deleted_without_retention = vacuum_queues(&harness.ctx, Duration::ZERO)
        .await
        .expect("vacuum with no retention");

    assert_eq!(deleted_with_retention, 0);
    assert_eq!(deleted_without_retention, 1);
    let mut connection = harness.ctx.queues.connection();
    let payloads: i64 = redis::cmd("HLEN")
        .arg(format!("{}:thumbnails:data", harness.namespace))
        .query_async(&mut connection)
        .await
        .expect("payload count");
    assert_eq!(payloads, 0);
    harness.finish().await;
}

#[tokio::test]
async fn worker_restarts_after_undecodable_job() {
    let harness = Harness::start().await;
    let tenant = harness.studio("Lichtblick", "Europe/Berlin").await;
    let project = harness.project(tenant).await;
    let photo = harness
        .upload(tenant, project.id, fixture("recurser-Landscape_6.jpg"))
        .await;
    // A payload of another type in the thumbnail queue, as a producer of a
    // newer version might write.
    let queue_config = harness.ctx.queues.thumbnails().get_config().clone();
    let mut foreign = apalis_redis::RedisStorage::<String>::new(harness.ctx.queues.connection())
        .with_config(queue_config);
    apalis::prelude::TaskSink::push(&mut foreign, "not a thumbnail job".to_owned())
        .await
        .expect("push a foreign payload");
    let stop = start_workers(&harness, fast_retries(4)).await;

    let job = GenerateThumbnails {
        tenant_id: tenant,
        photo_id: photo,
    };
    harness
        .ctx
        .queues
        .enqueue_thumbnails(job)
        .await
        .expect("enqueue");
    eventually("the photo is ready", || async {
        harness.photo(tenant, photo).await.status == PhotoStatus::Ready
    })
    .await;
    stop.finish().await;
    harness.finish().await;
}

#[tokio::test]
async fn repeatedly_failing_worker_stops_the_service() {
    let harness = Harness::start().await;
    let queue_config = harness.ctx.queues.thumbnails().get_config().clone();
    let mut foreign = apalis_redis::RedisStorage::<String>::new(harness.ctx.queues.connection())
        .with_config(queue_config);
    for _ in 0..4 {
        apalis::prelude::TaskSink::push(&mut foreign, "not a thumbnail job".to_owned())
            .await
            .expect("push a foreign payload");
    }
    let running = start_workers(&harness, fast_retries(4)).await;

    let result = tokio::time::timeout(common::WAIT, running.run)
        .await
        .expect("the workers stop in time")
        .expect("worker task");

    let error = result.expect_err("the fourth failure stops the workers");
    let message = error.to_string();
    assert!(message.contains("thumbnails-"), "{message}");
    assert!(message.contains("decoding"), "{message}");
    harness.finish().await;
}

/// A local store whose `get` fails with an I/O error a set number of times.
struct FlakyStore {
    inner: LocalDiskStore,
    failures_left: AtomicUsize,
}

#[async_trait]
impl MediaStore for FlakyStore {
    async fn put_stream<'s>(
        &self,
        key: &str,
        stream: ByteStream<'s>,
        max_bytes: u64,
    ) -> Result<u64, StoreError> {
        self.inner.put_stream(key, stream, max_bytes).await
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
        self.inner.put(key, data).await
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let fail = self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            return Err(StoreError::Io {
                key: key.to_owned(),
                source: std::io::Error::other("simulated outage"),
            });
        }
        self.inner.get(key).await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        self.inner.delete_prefix(prefix).await
    }
}

fn fast_retries(max_attempts: usize) -> RetrySettings {
    RetrySettings {
        max_attempts,
        first_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
    }
}

/// Workers running on the harness's context until [`RunningWorkers::finish`].
struct RunningWorkers {
    stop: oneshot::Sender<()>,
    run: tokio::task::JoinHandle<Result<(), proofsheet_worker::Error>>,
}

impl RunningWorkers {
    async fn finish(self) {
        let _ = self.stop.send(());
        let result = self.run.await.expect("worker task");
        assert!(result.is_ok(), "{result:?}");
    }
}

async fn start_workers(harness: &Harness, retry: RetrySettings) -> RunningWorkers {
    let mut settings = WorkerSettings::from_config(&harness.config).expect("settings");
    settings.retry = retry;
    settings.poll_interval = Duration::from_millis(100);
    let workers = Workers::new(harness.ctx.clone(), &settings).expect("workers");
    let (stop, stopped) = oneshot::channel::<()>();
    let run = tokio::spawn(workers.run_until(async move {
        let _ = stopped.await;
    }));
    RunningWorkers { stop, run }
}

fn flaky_store(harness: &Harness, failures: usize) -> Arc<dyn MediaStore> {
    Arc::new(FlakyStore {
        inner: LocalDiskStore::new(harness.config.media_dir.clone()),
        failures_left: AtomicUsize::new(failures),
    })
}

#[tokio::test]
async fn transient_failure_is_retried() {
    let mut harness = Harness::start().await;
    let tenant = harness.studio("Lichtblick", "Europe/Berlin").await;
    let project = harness.project(tenant).await;
    let photo = harness
        .upload(tenant, project.id, fixture("recurser-Landscape_8.jpg"))
        .await;
    harness.ctx.store = flaky_store(&harness, 2);
    let stop = start_workers(&harness, fast_retries(4)).await;

    let job = GenerateThumbnails {
        tenant_id: tenant,
        photo_id: photo,
    };
    harness
        .ctx
        .queues
        .enqueue_thumbnails(job)
        .await
        .expect("enqueue");
    eventually("the photo is ready", || async {
        harness.photo(tenant, photo).await.status == PhotoStatus::Ready
    })
    .await;
    eventually("the job is recorded as done", || async {
        thumbnail_job_record(&harness).await.1 == "Done"
    })
    .await;

    let (attempts, _) = thumbnail_job_record(&harness).await;
    assert_eq!(attempts, "3");
    stop.finish().await;
    harness.finish().await;
}

#[tokio::test]
async fn job_gives_up_after_last_attempt() {
    let mut harness = Harness::start().await;
    let tenant = harness.studio("Lichtblick", "Europe/Berlin").await;
    let project = harness.project(tenant).await;
    let photo = harness
        .upload(tenant, project.id, fixture("recurser-Landscape_8.jpg"))
        .await;
    harness.ctx.store = flaky_store(&harness, usize::MAX);
    let stop = start_workers(&harness, fast_retries(3)).await;

    let job = GenerateThumbnails {
        tenant_id: tenant,
        photo_id: photo,
    };
    harness
        .ctx
        .queues
        .enqueue_thumbnails(job)
        .await
        .expect("enqueue");
    eventually("the photo is marked failed", || async {
        harness.photo(tenant, photo).await.status == PhotoStatus::Failed
    })
    .await;
    eventually("the job is recorded as killed", || async {
        thumbnail_job_record(&harness).await.1 == "Killed"
    })
    .await;
    // The Redis backend schedules a merely failed job again, but a killed
    // one must stay dead.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let (attempts, status) = thumbnail_job_record(&harness).await;
    assert_eq!(attempts, "3");
    assert_eq!(status, "Killed");
    let stored = harness.photo(tenant, photo).await;
    assert_eq!(stored.error.as_deref(), Some(GIVE_UP_REASON));
    stop.finish().await;
    harness.finish().await;
}

#[tokio::test]
async fn run_outlives_repeatedly_failing_workers() {
    let harness = Harness::start().await;
    let tenant = harness.studio("Lichtblick", "Europe/Berlin").await;
    let project = harness.project(tenant).await;
    let photo = harness
        .upload(tenant, project.id, fixture("recurser-Landscape_8.jpg"))
        .await;

    // Four undecodable payloads make the thumbnail worker fail more often
    // than it is restarted at once, so all workers stop.
    let queue_config = harness.ctx.queues.thumbnails().get_config().clone();
    let mut foreign = apalis_redis::RedisStorage::<String>::new(harness.ctx.queues.connection())
        .with_config(queue_config);
    for _ in 0..4 {
        apalis::prelude::TaskSink::push(&mut foreign, "not a thumbnail job".to_owned())
            .await
            .expect("push a foreign payload");
    }
    let mut config = harness.config.clone();
    config.worker_admin_addr = ([127, 0, 0, 1], free_local_port()).into();
    let (stop, stopped) = oneshot::channel::<()>();
    let service = tokio::spawn(proofsheet_worker::run(config, async move {
        let _ = stopped.await;
    }));

    // The service starts its workers again, and they take the next job. The
    // job is queued once the failures are over, because a job fetched in
    // the same batch as a bad payload waits for the orphan timeout.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let job = GenerateThumbnails {
        tenant_id: tenant,
        photo_id: photo,
    };
    harness
        .ctx
        .queues
        .enqueue_thumbnails(job)
        .await
        .expect("enqueue");
    eventually(
        "the photo is ready after the workers start again",
        || async { harness.photo(tenant, photo).await.status == PhotoStatus::Ready },
    )
    .await;
    assert!(!service.is_finished(), "the service is still running");

    let _ = stop.send(());
    let result = tokio::time::timeout(common::WAIT, service)
        .await
        .expect("the service stops in time")
        .expect("service task");
    assert!(result.is_ok(), "{result:?}");
    harness.finish().await;
}
