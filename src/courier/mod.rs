//! The courier (DESIGN.md §7, behaviour.md §16): messages are stored as `queued` (a durable
//! write) before anything is sent; a supervised dispatcher claims due messages and hands them
//! to a bounded pool of deliveries, rate-limited per channel; failures are retried with
//! exponential back-off and a message is `abandoned` after `courier.message_retries`.

pub mod dispatcher;
pub mod http;
pub mod smtp;
pub mod template;

use crate::clock::Clock;
use crate::error::Error;
use crate::persistence::courier::{self as rows, ABANDONED, DispatchRow, MessageRow, PROCESSING, QUEUED, SENT};
use crate::persistence::types::{Id, Json, Ts};
use crate::persistence::{Durability, Persister, Store, WriteOp};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::sync::Arc;
use uuid::Uuid;

/// `email` (type 1) or `sms` (type 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    Email,
    Sms,
}

impl MessageType {
    fn code(self) -> i16 {
        match self {
            MessageType::Email => 1,
            MessageType::Sms => 2,
        }
    }

    pub(crate) fn name(code: i16) -> &'static str {
        if code == 2 { "sms" } else { "email" }
    }
}

/// The status names the API uses for the stored codes.
pub fn status_name(code: i16) -> &'static str {
    match code {
        SENT => "sent",
        PROCESSING => "processing",
        ABANDONED => "abandoned",
        _ => "queued",
    }
}

/// Parses a status filter (`queued`, `sent`, `processing`, `abandoned`).
pub fn parse_status(s: &str) -> Option<i16> {
    match s {
        "queued" => Some(QUEUED),
        "sent" => Some(SENT),
        "processing" => Some(PROCESSING),
        "abandoned" => Some(ABANDONED),
        _ => None,
    }
}

/// Encrypts what a queued message says (subject, body, template data: they carry codes and
/// links) before it is stored, with AES-256-GCM keyed from `secrets.cipher` (else
/// `secrets.default`); every configured secret opens. Without secrets the text is stored as is.
#[derive(Clone, Default, Debug)]
pub struct Sealer {
    inner: crate::seal::Sealer,
}

/// Marks a sealed stored value (rows written before sealing, or without secrets, have none).
const SEALED: &str = "tsl1:";

impl Sealer {
    pub fn from_secrets(secrets: &crate::config::SecretsConfig) -> Sealer {
        let list = if secrets.cipher.is_empty() { &secrets.default } else { &secrets.cipher };
        Sealer { inner: crate::seal::Sealer::new(list, "courier") }
    }

    /// The stored form of `text`.
    pub fn seal(&self, text: &str) -> String {
        self.inner.seal(text).map_or_else(|| text.to_string(), |sealed| format!("{SEALED}{sealed}"))
    }

    /// The text of a stored value (values stored before sealing, or without secrets, as is);
    /// `None` when no configured secret opens it.
    pub fn open(&self, stored: &str) -> Option<String> {
        match stored.strip_prefix(SEALED) {
            Some(sealed) => self.inner.open(sealed),
            None => Some(stored.to_string()),
        }
    }

    /// A row as stored → as written; `None` when it cannot be opened (other secrets).
    pub fn open_row(&self, mut m: MessageRow) -> Option<MessageRow> {
        m.subject = self.open(&m.subject)?;
        m.body = self.open(&m.body)?;
        if let Some(Json(Value::String(s))) = &m.template_data {
            m.template_data = Some(Json(serde_json::from_str(&self.open(s)?).unwrap_or(Value::Null)));
        }
        Some(m)
    }

    /// A row for the admin API: what cannot be opened is shown as such.
    pub fn open_for_display(&self, m: MessageRow) -> MessageRow {
        let mut fallback = m.clone();
        self.open_row(m).unwrap_or_else(|| {
            fallback.subject = "<sealed with another secret>".into();
            fallback.body = "<sealed with another secret>".into();
            fallback.template_data = None;
            fallback
        })
    }
}

/// A message to queue.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub kind: MessageType,
    /// `email`, `sms` or a configured channel id.
    pub channel: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub template_type: String,
    pub template_data: Value,
}

/// Queues messages and reads them back.
#[derive(Clone)]
pub struct Courier {
    store: Store,
    persister: Persister,
    clock: Clock,
    wake: Arc<tokio::sync::Notify>,
    templates: template::Templates,
    sealer: Sealer,
    metrics: crate::telemetry::metrics::Metrics,
}

/// Counts messages by channel and what happened to them (`queued`, `sent`, `retried`, `abandoned`).
pub(crate) fn count_message(metrics: &crate::telemetry::metrics::Metrics, channel: &str, status: &'static str) {
    metrics
        .counter(
            "tessera_courier_messages_total",
            "messages by channel: queued, sent, retried (a failed attempt that will be retried) and abandoned",
            &[("channel", channel.to_string()), ("status", status.to_string())],
        )
        .increment(1);
}

impl Courier {
    /// A courier over `store`; `wake` is the dispatcher's doorbell.
    pub fn new(
        store: Store,
        persister: Persister,
        clock: Clock,
        wake: Arc<tokio::sync::Notify>,
        config: Arc<crate::config::CourierConfig>,
        sealer: Sealer,
    ) -> Courier {
        let templates = template::Templates::new(config);
        let metrics = crate::telemetry::metrics::Metrics::new(&[(
            "tessera_courier_channel_wait_seconds",
            &crate::telemetry::metrics::LATENCY_BUCKETS,
        )]);
        Courier { store, persister, clock, wake, templates, sealer, metrics }
    }

    /// Message counts and channel waits (`tessera_courier_*`), shared with the dispatcher.
    pub fn metrics(&self) -> &crate::telemetry::metrics::Metrics {
        &self.metrics
    }

    /// The templates (their parsed forms are shared with the dispatcher).
    pub fn templates(&self) -> &template::Templates {
        &self.templates
    }

    /// Renders template `t` with `data` for `recipient` and queues it: an e-mail (subject and
    /// plain-text body stored; the HTML part is rendered at delivery), or an SMS on the `sms`
    /// channel. Returns the message id.
    pub async fn send_template(
        &self,
        kind: MessageType,
        recipient: &str,
        t: template::TemplateType,
        data: Value,
    ) -> Result<Uuid, Error> {
        let (subject, body, channel) = match kind {
            MessageType::Email => {
                let e = self.templates.email(t, &data).await.map_err(|e| Error::internal(&e))?;
                (e.subject, e.plaintext, "email")
            }
            MessageType::Sms => {
                (String::new(), self.templates.sms(t, &data).await.map_err(|e| Error::internal(&e))?, "sms")
            }
        };
        self.enqueue(NewMessage {
            kind,
            channel: channel.into(),
            recipient: recipient.into(),
            subject,
            body,
            template_type: t.as_str().into(),
            template_data: data,
        })
        .await
    }

    /// Stores a message as `queued` (durable) and wakes the dispatcher. Returns its id.
    pub async fn enqueue(&self, m: NewMessage) -> Result<Uuid, Error> {
        let now = self.clock.now();
        let id = Uuid::new_v4();
        let channel = m.channel.clone();
        let row = MessageRow {
            id: Id(id),
            kind: m.kind.code(),
            status: QUEUED,
            channel: Some(m.channel),
            recipient: m.recipient,
            subject: self.sealer.seal(&m.subject),
            body: self.sealer.seal(&m.body),
            template_type: m.template_type,
            template_data: Some(Json(Value::String(self.sealer.seal(&m.template_data.to_string())))),
            send_count: 0,
            next_attempt_at: None,
            created_at: Ts(now),
            updated_at: Ts(now),
        };
        self.persister
            .write(WriteOp::InsertMessage(Box::new(row)), Durability::Durable)
            .await
            .map_err(|e| Error::internal(&e))?;
        self.wake.notify_one();
        count_message(&self.metrics, &channel, "queued");
        Ok(id)
    }

    /// A page of messages, newest first.
    pub async fn list(
        &self,
        status: Option<i16>,
        recipient: Option<&str>,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> Result<Vec<MessageRow>, Error> {
        let mut pooled = self.store.get().await.map_err(Error::from)?;
        let rows = rows::list(&mut pooled.conn(), status, recipient, after, limit).await.map_err(Error::from)?;
        Ok(rows.into_iter().map(|m| self.sealer.open_for_display(m)).collect())
    }

    /// One message and its dispatches.
    pub async fn get(&self, id: Uuid) -> Result<Option<(MessageRow, Vec<DispatchRow>)>, Error> {
        let mut pooled = self.store.get().await.map_err(Error::from)?;
        let found = rows::get(&mut pooled.conn(), id).await.map_err(Error::from)?;
        Ok(found.map(|(m, d)| (self.sealer.open_for_display(m), d)))
    }
}

/// The API shape of a message (`courierMessage`); `body`/`subject` only in dev mode.
pub fn render(m: &MessageRow, dispatches: Option<&[DispatchRow]>, dev: bool) -> Value {
    let redact = |s: &str| if dev { s.to_string() } else { "<redacted-unless-dev-mode>".to_string() };
    let mut v = json!({
        "id": m.id.0,
        "status": status_name(m.status),
        "type": MessageType::name(m.kind),
        "recipient": m.recipient,
        "body": redact(&m.body),
        "subject": redact(&m.subject),
        "template_type": m.template_type,
        "channel": m.channel,
        "send_count": m.send_count,
        "created_at": crate::clock::ts(&m.created_at.0),
        "updated_at": crate::clock::ts(&m.updated_at.0),
    });
    if let (Some(ds), Some(o)) = (dispatches, v.as_object_mut()) {
        let list: Vec<Value> = ds
            .iter()
            .map(|d| {
                json!({
                    "id": d.id.0,
                    "message_id": d.message_id.0,
                    "status": d.status,
                    "error": d.error.as_ref().map(|e| e.0.clone()),
                    "created_at": crate::clock::ts(&d.created_at.0),
                    "updated_at": crate::clock::ts(&d.updated_at.0),
                })
            })
            .collect();
        o.insert("dispatches".into(), Value::Array(list));
    }
    v
}
