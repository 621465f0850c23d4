//! Start-up, the admin listener and the apalis monitor that runs the workers.

use std::future::Future;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::{
    Attempt, BackendExt, BoxDynError, Data, Monitor, TaskId, WorkerBuilder, WorkerBuilderExt,
    WorkerContext, WorkerError,
};
use apalis_cron::{CronScheduler, Tick};
use apalis_redis::RedisStorage;
use futures::FutureExt;
use proofsheet_config::Config;
use proofsheet_domain::db::Db;
use proofsheet_jobs::Queues;
use proofsheet_mail::Mailer;
use proofsheet_media::MediaStore;
use proofsheet_telemetry::{HealthCheck, admin_router};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::context::JobContext;
use crate::error::Error;
use crate::tasks::{self, Retry, RetrySettings};
use crate::vacuum::VACUUM_SCHEDULE;

/// Maximum number of Checkout Session expiry jobs one process runs at the
/// same time. Each job makes one Stripe call per stale session.
pub const CHECKOUT_EXPIRY_CONCURRENCY: usize = 2;

/// Maximum number of emails one process sends at the same time.
pub const EMAIL_CONCURRENCY: usize = 4;

/// Interval between two polls of an empty queue. It bounds how long a new
/// job waits before a worker picks it up.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Maximum time that running jobs get to finish after a shutdown signal.
/// Jobs still running then are dropped, and Redis hands them to another
/// worker once this one's heartbeat has expired (after five minutes with the
/// apalis-redis 1.0 defaults).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Number of times a worker whose queue failed is restarted at once before
/// all workers stop; [`run`] then starts them again after a pause.
///
/// NOTE: apalis 1.0 treats a job payload that does not decode, such as one
/// written by a newer producer, as a queue failure. The worker stops, and the
/// job stays in its in-flight set until Redis hands it to another worker
/// after the orphan timeout, where it stops that worker too.
const MAX_WORKER_RESTARTS: usize = 3;

/// Settings of the workers: concurrency, schedule, retries and timing.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// Maximum number of thumbnail jobs run at the same time.
    pub thumbnail_concurrency: usize,
    /// Maximum number of email jobs run at the same time.
    pub email_concurrency: usize,
    /// When the overdue check runs.
    pub overdue_schedule: cron::Schedule,
    /// When lost Stripe payment webhooks are healed; `None` without Stripe.
    pub stripe_reconcile_schedule: Option<cron::Schedule>,
    pub retry: RetrySettings,
    /// See [`POLL_INTERVAL`].
    pub poll_interval: Duration,
    /// See [`SHUTDOWN_GRACE`].
    pub shutdown_grace: Duration,
}

impl WorkerSettings {
    /// Takes the concurrency and schedule from `config` and the defaults for
    /// the rest.
    ///
    /// # Errors
    ///
    /// [`Error::Schedule`] when `OVERDUE_SCHEDULE` does not parse.
    pub fn from_config(config: &Config) -> Result<Self, Error> {
        Ok(Self {
            thumbnail_concurrency: config.thumbnail_concurrency,
            email_concurrency: EMAIL_CONCURRENCY,
            overdue_schedule: parse_schedule(&config.overdue_schedule)?,
            stripe_reconcile_schedule: match &config.stripe {
                Some(stripe) => Some(parse_schedule(&stripe.reconcile_schedule)?),
                None => None,
            },
            retry: RetrySettings::default(),
            poll_interval: POLL_INTERVAL,
            shutdown_grace: SHUTDOWN_GRACE,
        })
    }
}

/// Parses a six-field cron expression with seconds first, such as
/// `0 * * * * *` for every minute. Times are in UTC.
pub fn parse_schedule(value: &str) -> Result<cron::Schedule, Error> {
    cron::Schedule::from_str(value).map_err(|error| {
        // The cron crate's message repeats the expression with a caret under
        // the bad field, and its last line is the reason.
        let text = error.to_string();
        let reason = text.lines().rev().find(|line| !line.trim().is_empty());
        Error::Schedule {
            value: value.to_owned(),
            message: reason.unwrap_or(&text).trim().to_owned(),
        }
    })
}

/// Runs the worker service until `shutdown` resolves: connects to
/// PostgreSQL, Redis, the media store and the mailer, serves `/healthz` on
/// the admin address, and runs the thumbnail, email, Checkout Session
/// expiry, overdue and vacuum workers.
///
/// After `shutdown` resolves, running jobs get [`SHUTDOWN_GRACE`] to finish.
///
/// # Errors
///
/// Start-up failures, such as an unreachable database or a database role
/// that bypasses row-level security, and a worker that kept failing.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let settings = WorkerSettings::from_config(&config)?;
    let ctx = connect(Arc::new(config)).await?;
    let admin = start_admin(&ctx).await?;

    let (stop_sender, stop) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        stop_sender.send_replace(true);
    });
    let stopped = |mut stop: watch::Receiver<bool>| async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };

    // Workers that keep failing (Redis away for a while, an undecodable job)
    // are started again after a growing pause, so an outage does not end the
    // process: it heals when Redis is back.
    let mut pause = RESTART_PAUSE_MIN;
    let result = loop {
        let outcome = Workers::new(ctx.clone(), &settings)?
            .run_until(stopped(stop.clone()))
            .await;
        match outcome {
            Err(error) if !*stop.borrow() => {
                tracing::error!(
                    error = %error,
                    pause_s = pause.as_secs(),
                    "workers stopped after repeated failures; starting them again after a pause"
                );
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = stopped(stop.clone()) => break Ok(()),
                }
                pause = (pause * 2).min(RESTART_PAUSE_MAX);
            }
            other => break other,
        }
    };
    admin.abort();
    result
}

/// First pause before workers that stopped after repeated failures start
/// again; it doubles up to [`RESTART_PAUSE_MAX`].
pub const RESTART_PAUSE_MIN: Duration = Duration::from_secs(1);
/// Longest pause between two starts of the workers.
pub const RESTART_PAUSE_MAX: Duration = Duration::from_secs(60);

/// Opens every connection a job needs, and checks that the database role is
/// subject to row-level security.
///
/// # Errors
///
/// The first connection that fails, or [`Error::DatabaseRole`].
pub async fn connect(config: Arc<Config>) -> Result<JobContext, Error> {
    let db = Db::connect(&config.database_url, config.database_max_connections)
        .await
        .map_err(|source| Error::DatabaseConnect {
            url: proofsheet_jobs::redact_password(&config.database_url),
            source,
        })?;
    db.check_role().await?;

    let queues = Queues::connect(&config.redis_url, &config.queue_namespace).await?;
    let store: Arc<dyn MediaStore> = proofsheet_media::open_store(&config.media_store)?;
    let mailer = connect_mailer(&config)?;
    Ok(JobContext::new(db, queues, store, mailer, config))
}

fn connect_mailer(config: &Config) -> Result<Mailer, Error> {
    match &config.smtp_url {
        Some(url) => {
            let mailer = Mailer::smtp(url)?;
            tracing::info!("sending emails through {}", mailer.describe());
            Ok(mailer)
        }
        None => {
            let mailer = Mailer::outbox(config.outbox_dir.clone())?;
            tracing::info!(
                "no SMTP_URL set; writing emails to {}",
                config.outbox_dir.display()
            );
            Ok(mailer)
        }
    }
}

/// Binds the admin address and serves `/healthz` in the background.
async fn start_admin(ctx: &JobContext) -> Result<JoinHandle<()>, Error> {
    let addr = ctx.config.worker_admin_addr;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::AdminListener { addr, source })?;
    let bound: SocketAddr = listener.local_addr().unwrap_or(addr);
    // The worker has no metrics of its own yet; /metrics responds with an
    // empty registry, so every service's admin listener has the same routes.
    let registry = std::sync::Arc::new(proofsheet_telemetry::metrics::registry());
    let router = admin_router("worker", health_checks(ctx), registry);
    tracing::info!(admin.addr = %bound, "admin listener started");
    Ok(tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(error = %error, "admin listener stopped");
        }
    }))
}

fn health_checks(ctx: &JobContext) -> Vec<HealthCheck> {
    let db = ctx.db.clone();
    let queues = ctx.queues.clone();
    vec![
        HealthCheck {
            name: "postgres",
            check: Box::new(move || {
                let db = db.clone();
                async move { db.ping().await.map_err(|e| e.to_string()) }.boxed()
            }),
        },
        HealthCheck {
            name: "redis",
            check: Box::new(move || {
                let queues = queues.clone();
                async move { queues.ping().await.map_err(|e| e.to_string()) }.boxed()
            }),
        },
    ]
}

/// The thumbnail, email, Checkout Session expiry, overdue and vacuum workers
/// under one apalis monitor.
pub struct Workers {
    monitor: Monitor,
    /// Set to the reason when a worker failed more than
    /// [`MAX_WORKER_RESTARTS`] times.
    failure: watch::Receiver<Option<String>>,
    shutdown_grace: Duration,
}

impl Workers {
    /// Registers the workers without starting them. Each worker's name
    /// carries a random id for this process and its restart count, because
    /// the Redis backend refuses a name that another live worker has
    /// registered.
    ///
    /// # Errors
    ///
    /// [`Error::RetrySettings`] when `settings.retry` is inconsistent.
    pub fn new(ctx: JobContext, settings: &WorkerSettings) -> Result<Self, Error> {
        let (failure_sender, failure) = watch::channel(None);
        let names = WorkerNames::new();
        let policy = tasks::retry_policy(&settings.retry)?;
        let vacuum_schedule = parse_schedule(VACUUM_SCHEDULE)?;

        let monitor = Monitor::new()
            .should_restart(move |worker, error| restart_or_fail(worker, error, &failure_sender));
        let monitor = register_thumbnails(monitor, &ctx, settings, &policy, &names);
        let monitor = register_emails(monitor, &ctx, settings, &policy, &names);
        let monitor = register_checkout_expiry(monitor, &ctx, settings, &policy, &names);
        let monitor = register_cron(
            monitor,
            names.of("overdue"),
            settings.overdue_schedule.clone(),
            &ctx,
            tasks::overdue_task,
        );
        let monitor = register_cron(
            monitor,
            names.of("vacuum"),
            vacuum_schedule,
            &ctx,
            tasks::vacuum_task,
        );
        let monitor = match &settings.stripe_reconcile_schedule {
            Some(schedule) => register_cron(
                monitor,
                names.of("stripe-reconcile"),
                schedule.clone(),
                &ctx,
                tasks::stripe_reconcile_task,
            ),
            None => monitor,
        };

        Ok(Self {
            monitor,
            failure,
            shutdown_grace: settings.shutdown_grace,
        })
    }

    /// Runs the workers until `shutdown` resolves or a worker fails for
    /// good, then gives running jobs the shutdown grace time to finish.
    ///
    /// # Errors
    ///
    /// [`Error::Monitor`] when the workers stopped because one kept failing.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let mut failure = self.failure.clone();
        let signal = async move {
            tokio::select! {
                () = shutdown => tracing::info!("stopping the workers"),
                _ = failure.wait_for(Option::is_some) => {}
            }
            Ok(())
        };

        tracing::info!("workers started");
        // With a terminator, the monitor returns once every worker has
        // stopped or the grace time has passed, and its result carries
        // nothing more than the failure channel does.
        let _ = self
            .monitor
            .with_terminator(grace_period(self.shutdown_grace))
            .run_with_signal(signal)
            .await;
        tracing::info!("workers stopped");

        match self.failure.borrow().clone() {
            Some(reason) => Err(Error::Monitor(reason)),
            None => Ok(()),
        }
    }
}

/// Worker names of this process: `{kind}-{instance}-{restarts}`.
#[derive(Clone, Debug)]
struct WorkerNames {
    instance: String,
}

impl WorkerNames {
    fn new() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Self {
            instance: id.chars().take(8).collect(),
        }
    }

    /// Returns a function from the restart count to the name of a worker.
    fn of(&self, kind: &'static str) -> impl Fn(usize) -> String + Send + Sync + 'static {
        let instance = self.instance.clone();
        move |restarts| format!("{kind}-{instance}-{restarts}")
    }
}

/// Decides whether the monitor restarts a worker whose queue failed. After
/// [`MAX_WORKER_RESTARTS`] restarts it sends the reason to `failure`, which
/// stops every worker.
fn restart_or_fail(
    worker: &WorkerContext,
    error: &WorkerError,
    failure: &watch::Sender<Option<String>>,
) -> bool {
    if worker.restarts() < MAX_WORKER_RESTARTS {
        tracing::warn!(
            worker = worker.name(),
            error = %error,
            "worker stopped; restarting it"
        );
        return true;
    }
    tracing::error!(
        worker = worker.name(),
        error = %error,
        "worker stopped again; stopping all workers"
    );
    failure.send_replace(Some(format!("worker {} stopped: {error}", worker.name())));
    false
}

fn register_thumbnails(
    monitor: Monitor,
    ctx: &JobContext,
    settings: &WorkerSettings,
    policy: &Retry,
    names: &WorkerNames,
) -> Monitor {
    let queue = QueueWorker {
        name: names.of("thumbnails"),
        storage: Queues::thumbnails,
        concurrency: settings.thumbnail_concurrency,
    };
    register_queue(
        monitor,
        queue,
        ctx,
        settings,
        policy,
        tasks::thumbnails_task,
    )
}

fn register_emails(
    monitor: Monitor,
    ctx: &JobContext,
    settings: &WorkerSettings,
    policy: &Retry,
    names: &WorkerNames,
) -> Monitor {
    let queue = QueueWorker {
        name: names.of("emails"),
        storage: Queues::emails,
        concurrency: settings.email_concurrency,
    };
    register_queue(monitor, queue, ctx, settings, policy, tasks::email_task)
}

fn register_checkout_expiry(
    monitor: Monitor,
    ctx: &JobContext,
    settings: &WorkerSettings,
    policy: &Retry,
    names: &WorkerNames,
) -> Monitor {
    let queue = QueueWorker {
        name: names.of("checkout-expiry"),
        storage: Queues::checkout_expiry,
        concurrency: CHECKOUT_EXPIRY_CONCURRENCY,
    };
    register_queue(
        monitor,
        queue,
        ctx,
        settings,
        policy,
        tasks::checkout_expiry_task,
    )
}

/// A worker of one Redis queue: its name by restart count, the queue's
/// storage and how many jobs it runs at once.
struct QueueWorker<N, S> {
    name: N,
    storage: S,
    concurrency: usize,
}

/// Registers a worker that runs `task` on each job of a Redis queue, with
/// the retry policy and the job context and retry settings as task data.
fn register_queue<T, N, S, F, Fut>(
    monitor: Monitor,
    queue: QueueWorker<N, S>,
    ctx: &JobContext,
    settings: &WorkerSettings,
    policy: &Retry,
    task: F,
) -> Monitor
where
    T: Clone + serde::Serialize + serde::de::DeserializeOwned + Send + Sync + Unpin + 'static,
    N: Fn(usize) -> String + Send + Sync + 'static,
    S: Fn(&Queues) -> RedisStorage<T> + Send + Sync + 'static,
    F: Fn(T, Data<JobContext>, Data<RetrySettings>, TaskId, Attempt) -> Fut
        + Clone
        + Send
        + Sync
        + 'static,
    Fut: Future<Output = Result<(), BoxDynError>> + Send + 'static,
{
    let (ctx, retry, policy) = (ctx.clone(), settings.retry.clone(), policy.clone());
    let poll_interval = settings.poll_interval;
    monitor.register(move |restarts| {
        let storage = one_at_a_time((queue.storage)(&ctx.queues)).poll_with_interval(poll_interval);
        WorkerBuilder::new((queue.name)(restarts))
            .backend(storage)
            .concurrency(queue.concurrency)
            .retry(policy.clone())
            .data(ctx.clone())
            .data(retry.clone())
            .build(task.clone())
    })
}

/// Registers a worker that runs `task` on each tick of `schedule`.
fn register_cron<F, Fut>(
    monitor: Monitor,
    name: impl Fn(usize) -> String + Send + Sync + 'static,
    schedule: cron::Schedule,
    ctx: &JobContext,
    task: F,
) -> Monitor
where
    F: Fn(Tick, Data<JobContext>, TaskId) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), BoxDynError>> + Send + 'static,
{
    let ctx = ctx.clone();
    monitor.register(move |restarts| {
        WorkerBuilder::new(name(restarts))
            .backend(CronScheduler::new(schedule.clone()))
            .data(ctx.clone())
            .build(task.clone())
    })
}

/// Makes the storage fetch one job per Redis round trip. A larger batch
/// keeps fetched jobs in this worker's in-flight set while they wait for a
/// free slot, where no other worker can take them, and when a payload does
/// not decode, the whole batch waits for the orphan timeout.
fn one_at_a_time<T>(storage: RedisStorage<T>) -> RedisStorage<T> {
    let config = storage.get_config().clone().batch_size(1);
    storage.with_config(config)
}

/// Waits `grace` from its first poll, which is when the monitor starts
/// shutting down. `tokio::time::sleep` alone would count from start-up.
async fn grace_period(grace: Duration) {
    tokio::time::sleep(grace).await;
}
