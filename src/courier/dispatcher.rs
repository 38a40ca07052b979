//! The dispatcher: a supervised actor that claims due messages and delivers them through a
//! bounded pool (`[courier.pool] workers`), one token bucket per channel
//! (`[courier.pool.rate_limits.<channel>]`, the governor crate). A failed attempt is recorded
//! and retried with exponential back-off; after `courier.message_retries` failed retries the
//! message is abandoned. One failing message never holds up the others.

use super::http::HttpChannel;
use super::smtp::{SendError, Smtp};
use super::template::{TemplateType, Templates};
use crate::clock::Clock;
use crate::config::CourierConfig;
use crate::persistence::courier::{self as rows, ABANDONED, DispatchRow, MessageRow, QUEUED, SENT};
use crate::persistence::types::{Id, Json, Ts};
use crate::persistence::{Durability, Persister, Store, WriteOp};
use actix::prelude::*;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use uuid::Uuid;

/// Messages left `processing` this long (a crashed instance) go back to the queue.
const STALE_PROCESSING: Duration = Duration::from_secs(300);

/// Everything a delivery needs; shared by the actor and its in-flight deliveries.
struct Shared {
    store: Store,
    persister: Persister,
    /// Set when the app stops: no more claims.
    stopped: std::sync::atomic::AtomicBool,
    config: CourierConfig,
    clock: Clock,
    /// Taken out (and dropped on the runtime) at shutdown: lettre's pool needs the runtime to close.
    smtp: std::sync::Mutex<Option<Smtp>>,
    limits: HashMap<String, Arc<DefaultDirectRateLimiter>>,
    /// HTTP channels by id (`sms`, …; `email` when e-mail goes over HTTP).
    http: HashMap<String, HttpChannel>,
    templates: Templates,
    sealer: super::Sealer,
    permits: Arc<Semaphore>,
    wake: Arc<Notify>,
    /// When stale `processing` messages were last looked for.
    last_stale_check: std::sync::Mutex<Option<std::time::Instant>>,
    /// The courier's metrics (`tessera_courier_*`).
    metrics: crate::telemetry::metrics::Metrics,
}

/// The dispatcher actor.
pub struct Dispatcher {
    shared: Arc<Shared>,
    polling: bool,
    /// The doorbell rang while a poll was running: poll again when it ends.
    again: bool,
}

impl Actor for Dispatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let wait = self.shared.config.worker.pull_wait.0.max(Duration::from_millis(10));
        ctx.run_interval(wait, |act, ctx| act.poll(ctx));
        // Enqueues ring the doorbell: poll at once instead of waiting for the interval.
        let shared = self.shared.clone();
        let addr = ctx.address();
        ctx.spawn(
            async move {
                loop {
                    shared.wake.notified().await;
                    addr.do_send(Poll);
                }
            }
            .into_actor(self),
        );
    }
}

impl Supervised for Dispatcher {
    fn restarting(&mut self, _: &mut Self::Context) {
        self.polling = false;
        self.again = true;
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Poll;

impl Handler<Poll> for Dispatcher {
    type Result = ();

    fn handle(&mut self, _: Poll, ctx: &mut Self::Context) {
        self.poll(ctx);
    }
}

/// Stop claiming messages (the app is shutting down); deliveries in flight finish.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

impl Handler<Shutdown> for Dispatcher {
    type Result = ();

    fn handle(&mut self, _: Shutdown, _: &mut Self::Context) {
        self.shared.stopped.store(true, std::sync::atomic::Ordering::Release);
        drop(self.shared.smtp.lock().unwrap_or_else(|p| p.into_inner()).take());
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct PollDone;

impl Handler<PollDone> for Dispatcher {
    type Result = ();

    fn handle(&mut self, _: PollDone, ctx: &mut Self::Context) {
        self.polling = false;
        if std::mem::take(&mut self.again) {
            self.poll(ctx);
        }
    }
}

impl Dispatcher {
    fn poll(&mut self, ctx: &mut Context<Self>) {
        if self.shared.stopped.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        if self.polling {
            // Messages queued while the running poll drains may be missed by it.
            self.again = true;
            return;
        }
        self.polling = true;
        let shared = self.shared.clone();
        let addr = ctx.address();
        ctx.spawn(
            async move {
                if let Err(e) = drain(&shared).await {
                    tracing::warn!(error = %e, "courier: polling the queue failed");
                }
                addr.do_send(PollDone);
            }
            .into_actor(self),
        );
    }
}

/// Claims and starts deliveries until the queue has nothing due.
async fn drain(shared: &Arc<Shared>) -> Result<(), crate::persistence::StoreError> {
    let check_stale = {
        let mut last = shared.last_stale_check.lock().unwrap_or_else(|p| p.into_inner());
        let due = last.is_none_or(|t| t.elapsed() >= STALE_PROCESSING / 5);
        if due {
            *last = Some(std::time::Instant::now());
        }
        due
    };
    if check_stale {
        let mut pooled = shared.store.get().await?;
        let stale = shared.clock.now() - chrono::Duration::from_std(STALE_PROCESSING).unwrap_or_default();
        rows::requeue_stale(&mut pooled.conn(), stale).await?;
    }
    loop {
        if shared.stopped.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(());
        }
        // One claim per batch of `pull_count`: claimed messages start as workers free up.
        let claimed = {
            let mut pooled = shared.store.get().await?;
            rows::claim(&mut pooled.conn(), shared.clock.now(), shared.config.worker.pull_count.max(1) as i64).await?
        };
        if claimed.is_empty() {
            return Ok(());
        }
        for message in claimed {
            let Ok(permit) = Arc::clone(&shared.permits).acquire_owned().await else { return Ok(()) };
            let shared = shared.clone();
            tokio::spawn(async move {
                let attempt = match shared.sealer.open_row(message.clone()) {
                    Some(opened) => deliver(&shared, opened).await,
                    None => unreadable(&shared, message),
                };
                // The worker is free as soon as the SMTP exchange is over; recording waits
                // for the group commit on its own.
                drop(permit);
                record(&shared, attempt).await;
            });
        }
    }
}

/// One attempt at one message; returns what must be recorded.
async fn deliver(shared: &Shared, m: MessageRow) -> rows::Attempt {
    let channel = m.channel.clone().unwrap_or_else(|| "email".into());
    if let Some(limit) = shared.limits.get(&channel) {
        let asked = std::time::Instant::now();
        limit.until_ready().await;
        shared
            .metrics
            .histogram(
                "tessera_courier_channel_wait_seconds",
                "time a message waited for its channel's rate limit",
                &[("channel", channel.clone())],
            )
            .record(asked.elapsed().as_secs_f64());
    }
    let smtp = shared.smtp.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let outcome = match (channel.as_str(), &smtp) {
        (id, _) if shared.http.contains_key(id) => match shared.http.get(id) {
            Some(h) => h.send(http_context(shared, &m).await).await,
            None => Ok(()),
        },
        ("email", Some(smtp)) => {
            // As Kratos: the HTML alternative is rendered at delivery from the template data.
            let html = html_body(shared, &m).await;
            smtp.send(&m.recipient, &m.subject, &m.body, html.as_deref()).await
        }
        ("email", None) => {
            Err(SendError { message: "courier.smtp.connection_uri is not configured".into(), permanent: false })
        }
        (other, _) => {
            Err(SendError { message: format!("no courier channel {other:?} is configured"), permanent: false })
        }
    };
    let now = shared.clock.now();
    let send_count = m.send_count + 1;
    let dispatch = DispatchRow {
        id: Id(Uuid::new_v4()),
        message_id: m.id,
        status: if outcome.is_ok() { "success".into() } else { "failed".into() },
        error: outcome.as_ref().err().map(|e| Json(serde_json::json!({ "message": e.message }))),
        created_at: Ts(now),
        updated_at: Ts(now),
    };
    let (status, next) = match &outcome {
        Ok(()) => (SENT, None),
        // The server refused the message for good (5xx, bad address), or retries are used up.
        Err(e) if e.permanent || send_count > shared.config.message_retries as i32 => (ABANDONED, None),
        Err(_) => {
            let base = shared.config.worker.pull_wait.0.max(Duration::from_millis(10));
            let wait = base
                .saturating_mul(1u32 << send_count.clamp(0, 16) as u32)
                .min(shared.config.worker.retry_max_wait.0.max(base));
            (QUEUED, Some(now + chrono::Duration::from_std(wait).unwrap_or_default()))
        }
    };
    let counted = match status {
        SENT => "sent",
        ABANDONED => "abandoned",
        _ => "retried",
    };
    super::count_message(&shared.metrics, &channel, counted);
    if let Err(e) = &outcome {
        // The error text comes from the transport; it never contains the message body.
        tracing::warn!(message_id = %m.id.0, attempt = send_count, error = %e.message, "courier: delivery failed");
    }
    rows::Attempt { message_id: m.id.0, status, send_count, next_attempt_at: next, dispatch, at: now }
}

/// A message no configured secret opens (`secrets.cipher` differs between instances): it
/// cannot be sent; it is abandoned with a dispatch saying why.
fn unreadable(shared: &Shared, m: MessageRow) -> rows::Attempt {
    let now = shared.clock.now();
    tracing::error!(message_id = %m.id.0, "courier: the message was sealed with a secret this instance does not have");
    let dispatch = DispatchRow {
        id: Id(Uuid::new_v4()),
        message_id: m.id,
        status: "failed".into(),
        error: Some(Json(serde_json::json!({
            "message": "the message was encrypted with a secret this instance does not have (secrets.cipher)"
        }))),
        created_at: Ts(now),
        updated_at: Ts(now),
    };
    rows::Attempt {
        message_id: m.id.0,
        status: ABANDONED,
        send_count: m.send_count,
        next_attempt_at: None,
        dispatch,
        at: now,
    }
}

async fn html_body(shared: &Shared, m: &MessageRow) -> Option<String> {
    let t = TemplateType::parse(&m.template_type)?;
    let data = m.template_data.as_ref()?;
    match shared.templates.render(t, super::template::Part::Html, &data.0).await {
        Ok(html) => Some(html),
        Err(e) => {
            tracing::warn!(message_id = %m.id.0, error = %e, "courier: HTML body could not be rendered; sending text only");
            None
        }
    }
}

/// The Jsonnet `ctx` of an HTTP delivery.
async fn http_context(shared: &Shared, m: &MessageRow) -> serde_json::Value {
    let data = m.template_data.as_ref().map(|d| d.0.clone()).unwrap_or(serde_json::Value::Null);
    let headers = data.get("request_headers").cloned().unwrap_or_else(|| serde_json::json!({}));
    let mut template_data = data.clone();
    if let Some(o) = template_data.as_object_mut() {
        o.remove("request_headers");
    }
    let mut ctx = serde_json::json!({
        "recipient": m.recipient,
        "subject": m.subject,
        "body": m.body,
        "template_type": m.template_type,
        "template_data": template_data,
        "message_type": super::MessageType::name(m.kind),
        "request_headers": headers,
    });
    if m.kind == 1
        && let (Some(html), Some(o)) = (html_body(shared, m).await, ctx.as_object_mut())
    {
        o.insert("html_body".into(), serde_json::Value::String(html));
    }
    ctx
}

/// Records an attempt: a durable write through the Persister (concurrent deliveries share one
/// transaction; it is retried for as long as the database is unreachable). A message to retry
/// rings the doorbell so its next attempt is planned.
async fn record(shared: &Shared, attempt: rows::Attempt) {
    let retry = attempt.status == QUEUED;
    if let Err(e) = shared.persister.write(WriteOp::RecordAttempt(Box::new(attempt)), Durability::Durable).await {
        tracing::warn!(error = %e, "courier: could not record a delivery");
    }
    if retry {
        shared.wake.notify_one();
    }
}

/// Starts the dispatcher under a supervisor.
#[allow(clippy::too_many_arguments)]
pub fn start(
    store: Store,
    persister: Persister,
    config: CourierConfig,
    clock: Clock,
    wake: Arc<Notify>,
    sealer: super::Sealer,
    templates: Templates,
    metrics: crate::telemetry::metrics::Metrics,
) -> Result<Addr<Dispatcher>, String> {
    let mut http = HashMap::new();
    for c in &config.channels {
        http.entry(c.id.clone()).or_insert(HttpChannel::new(c.request_config.clone())?);
    }
    if config.delivery_strategy == "http"
        && !http.contains_key("email")
        && let Some(rc) = &config.http.request_config
    {
        http.insert("email".into(), HttpChannel::new(rc.clone())?);
    }
    let smtp = if http.contains_key("email") { None } else { Smtp::from_config(&config.smtp, config.pool.workers)? };
    let mut limits = HashMap::new();
    for (channel, limit) in &config.pool.rate_limits {
        let per_second = NonZeroU32::new(limit.per_second)
            .ok_or_else(|| format!("courier.pool.rate_limits.{channel}.per_second must be at least 1"))?;
        let burst = NonZeroU32::new(limit.burst.unwrap_or(limit.per_second)).unwrap_or(per_second);
        limits.insert(channel.clone(), Arc::new(RateLimiter::direct(Quota::per_second(per_second).allow_burst(burst))));
    }
    let shared = Arc::new(Shared {
        permits: Arc::new(Semaphore::new(config.pool.workers.max(1))),
        store,
        persister,
        stopped: std::sync::atomic::AtomicBool::new(false),
        config,
        clock,
        smtp: std::sync::Mutex::new(smtp),
        limits,
        http,
        templates,
        sealer,
        wake,
        last_stale_check: std::sync::Mutex::new(None),
        metrics,
    });
    Ok(Supervisor::start(move |_| Dispatcher { shared, polling: false, again: false }))
}
