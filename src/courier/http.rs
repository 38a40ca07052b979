//! The HTTP channel (behaviour.md §16.2): a message becomes one HTTP request whose body is
//! built by a Jsonnet template from `ctx = {recipient, subject, body, template_type,
//! template_data, message_type, request_headers}`. SMS has no built-in provider: a channel with
//! id `sms` and this type delivers it. A 2xx answer is success.

use super::smtp::SendError;
use crate::config::HttpRequestConfig;
use serde_json::Value as Json;
use std::time::Duration;

/// The body Kratos sends when none is configured: the recipient, the template type and the
/// template's codes and links, subject and body.
pub const DEFAULT_BODY: &str = r#"function(ctx) {
  local data = if std.objectHas(ctx, "template_data") && ctx.template_data != null then ctx.template_data else {},
  local field(name) = if std.objectHas(data, name) then data[name] else null,
  recipient: ctx.recipient,
  template_type: ctx.template_type,
  to: field("to"),
  recovery_code: field("recovery_code"),
  recovery_url: field("recovery_url"),
  verification_url: field("verification_url"),
  verification_code: field("verification_code"),
  subject: ctx.subject,
  body: ctx.body,
}
"#;

/// A configured HTTP channel.
#[derive(Clone)]
pub struct HttpChannel {
    config: HttpRequestConfig,
    client: reqwest::Client,
    /// The Jsonnet source (loaded once).
    body: std::sync::Arc<tokio::sync::OnceCell<String>>,
}

impl std::fmt::Debug for HttpChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpChannel").field("config", &self.config).finish_non_exhaustive()
    }
}

fn temporary(message: String) -> SendError {
    SendError { message, permanent: false }
}

impl HttpChannel {
    pub fn new(config: HttpRequestConfig) -> Result<HttpChannel, String> {
        url::Url::parse(&config.url)
            .map_err(|_| format!("courier: request_config.url {:?} is not a URL", config.url))?;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(HttpChannel { config, client, body: Default::default() })
    }

    async fn template(&self) -> Result<&str, SendError> {
        self.body
            .get_or_try_init(|| async {
                match self.config.body.as_deref().filter(|b| !b.is_empty()) {
                    Some(uri) => crate::jsonnet::load(uri, &self.client).await,
                    None => Ok(DEFAULT_BODY.to_string()),
                }
            })
            .await
            .map(String::as_str)
            // The URI may carry credentials: not repeated.
            .map_err(|_| temporary("the request body template could not be loaded".into()))
    }

    /// Sends one message; `ctx` is the Jsonnet context.
    pub async fn send(&self, ctx: Json) -> Result<(), SendError> {
        let method = reqwest::Method::from_bytes(self.config.method.to_ascii_uppercase().as_bytes()).map_err(|_| {
            SendError { message: format!("invalid HTTP method {:?}", self.config.method), permanent: true }
        })?;
        let mut request = self.client.request(method.clone(), &self.config.url);
        for (k, v) in &self.config.headers {
            request = request.header(k, v);
        }
        if let Some(auth) = &self.config.auth {
            let get = |k: &str| auth.config.get(k).cloned().unwrap_or_default();
            match auth.kind.as_str() {
                "basic_auth" => request = request.basic_auth(get("user"), Some(get("password"))),
                "api_key" => {
                    if get("in") == "cookie" {
                        request = request.header("Cookie", format!("{}={}", get("name"), get("value")));
                    } else {
                        request = request.header(get("name"), get("value"));
                    }
                }
                other => {
                    return Err(SendError {
                        message: format!("unknown request_config.auth.type {other:?}"),
                        permanent: true,
                    });
                }
            }
        }
        if !matches!(method, reqwest::Method::GET | reqwest::Method::HEAD | reqwest::Method::DELETE) {
            let template = self.template().await?.to_string();
            let rendered = crate::jsonnet::render(template, ctx).await.map_err(|_| SendError {
                // The evaluation error may quote the context (codes): not repeated here.
                message: "the request body template could not be evaluated".into(),
                permanent: true,
            })?;
            // `error "cancel"` in the template: nothing is sent, as in Kratos.
            let Some(body) = rendered else { return Ok(()) };
            request = request.header("Content-Type", "application/json").body(body.to_string());
        }
        // Without the URL: it may carry credentials.
        let response =
            request.send().await.map_err(|e| temporary(format!("HTTP channel request failed: {}", e.without_url())))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        Err(temporary(format!("upstream server replied with status code {}", status.as_u16())))
    }
}
