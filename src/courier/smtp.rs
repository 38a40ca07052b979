//! The SMTP channel: lettre's pooled async transport built from `courier.smtp.connection_uri`.

use crate::config::SmtpConfig;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// A configured SMTP sender.
pub struct Smtp {
    /// Always `Some` until dropped (see `Drop`).
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
    headers: Vec<(String, String)>,
}

impl Clone for Smtp {
    fn clone(&self) -> Self {
        Smtp { transport: self.transport.clone(), from: self.from.clone(), headers: self.headers.clone() }
    }
}

// lettre's pool closes its connections on a task spawned when the last handle drops; without a
// Tokio runtime (a process tearing down without `App::stop`) that spawn panics. The handle is
// leaked instead: the process is ending and the sockets close with it.
impl Drop for Smtp {
    fn drop(&mut self) {
        if let Some(t) = self.transport.take()
            && tokio::runtime::Handle::try_current().is_err()
        {
            std::mem::forget(t);
        }
    }
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp").field("from", &self.from.to_string()).finish_non_exhaustive()
    }
}

fn flag(url: &url::Url, key: &str) -> bool {
    url.query_pairs().any(|(k, v)| k == key && (v == "true" || v == "1"))
}

impl Smtp {
    /// Builds the transport (no connection is made yet). `None` when no URI is configured.
    /// `connections`: how many pooled connections to keep (one per delivery worker: lettre
    /// writes a message's end separately, so each message costs a delayed-ACK wait on its
    /// connection, and throughput comes from sending on many connections at once).
    pub fn from_config(c: &SmtpConfig, connections: usize) -> Result<Option<Smtp>, String> {
        if c.connection_uri.is_empty() {
            return Ok(None);
        }
        let url =
            url::Url::parse(&c.connection_uri).map_err(|_| "courier.smtp.connection_uri is not a URL".to_string())?;
        let host = url.host_str().ok_or("courier.smtp.connection_uri has no host")?.to_string();
        let server_name =
            url.query_pairs().find(|(k, _)| k == "server_name").map(|(_, v)| v.into_owned()).unwrap_or(host.clone());
        let tls_params = || {
            TlsParameters::builder(server_name.clone())
                .dangerous_accept_invalid_certs(flag(&url, "skip_ssl_verify"))
                .dangerous_accept_invalid_hostnames(flag(&url, "skip_ssl_verify"))
                .build()
                .map_err(|e| format!("courier.smtp: TLS setup failed: {e}"))
        };
        let (tls, default_port) = match url.scheme() {
            "smtps" => (Tls::Wrapper(tls_params()?), 465),
            // As Kratos: STARTTLS when the server offers it, cleartext otherwise.
            "smtp" if flag(&url, "disable_starttls") => (Tls::Opportunistic(tls_params()?), 25),
            "smtp" => (Tls::Required(tls_params()?), 587),
            other => return Err(format!("courier.smtp.connection_uri: unsupported scheme {other:?} (smtp or smtps)")),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(url.port().unwrap_or(default_port))
            .tls(tls)
            .hello_name(lettre::transport::smtp::extension::ClientId::Domain(c.local_name.clone()))
            .pool_config(
                lettre::transport::smtp::PoolConfig::new()
                    .max_size(u32::try_from(connections.max(1)).unwrap_or(u32::MAX)),
            );
        if !url.username().is_empty() {
            let decode = |s: &str| percent_decode(s);
            builder = builder
                .credentials(Credentials::new(decode(url.username()), decode(url.password().unwrap_or_default())));
        }
        let address =
            c.from_address.parse().map_err(|_| "courier.smtp.from_address is not an e-mail address".to_string())?;
        let from = Mailbox::new(c.from_name.clone(), address);
        let headers = c.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        Ok(Some(Smtp { transport: Some(builder.build()), from, headers }))
    }

    /// Sends one e-mail (plain text, or text + HTML alternative).
    pub async fn send(&self, to: &str, subject: &str, text: &str, html: Option<&str>) -> Result<(), SendError> {
        let to: Mailbox = to
            .parse()
            .map_err(|_| SendError { message: format!("invalid recipient address {to:?}"), permanent: true })?;
        let mut builder = Message::builder().from(self.from.clone()).to(to).subject(subject);
        for (k, v) in &self.headers {
            builder = builder.raw_header(lettre::message::header::HeaderValue::new(
                lettre::message::header::HeaderName::new_from_ascii(k.clone())
                    .map_err(|e| SendError { message: e.to_string(), permanent: true })?,
                v.clone(),
            ));
        }
        let message = match html {
            Some(html) => builder
                .multipart(lettre::message::MultiPart::alternative_plain_html(text.to_string(), html.to_string())),
            None => builder.singlepart(lettre::message::SinglePart::plain(text.to_string())),
        }
        .map_err(|e| SendError { message: e.to_string(), permanent: true })?;
        let Some(transport) = &self.transport else {
            return Err(SendError { message: "the SMTP transport was closed".into(), permanent: false });
        };
        transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| SendError { permanent: e.is_permanent(), message: e.to_string() })
    }
}

/// Why a message could not be sent; `permanent` (an SMTP 5xx, a bad address) is not retried.
#[derive(Debug, Clone)]
pub struct SendError {
    pub message: String,
    pub permanent: bool,
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}
