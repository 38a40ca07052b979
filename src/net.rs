//! Outgoing HTTP for user-configured targets (web hooks, the password-migration hook, tokenizer
//! keys and mappers): `clients.http.disallow_private_ip_ranges` refuses loopback, private,
//! link-local and other internal addresses — IP literals before connecting, host names as they
//! resolve — except for the exact URLs of `clients.http.private_ip_exception_urls`.

use crate::config::ClientsConfig;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Whether an address is internal (never reachable when private ranges are disallowed).
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// Resolves host names and drops internal addresses (none left: the connection fails).
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.filter(|a| !is_internal(a.ip())).collect();
            if addrs.is_empty() {
                return Err(format!(
                    "{host} resolves only to internal addresses (clients.http.disallow_private_ip_ranges)"
                )
                .into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Why a request was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is an internal address (clients.http.disallow_private_ip_ranges)")]
pub struct Blocked(pub String);

/// HTTP clients for configured targets, no redirects followed.
#[derive(Clone)]
pub struct Outbound {
    open: reqwest::Client,
    guarded: Option<reqwest::Client>,
    exceptions: Arc<Vec<String>>,
}

impl Outbound {
    pub fn new(clients: &ClientsConfig, timeout: Duration) -> Outbound {
        let builder = || reqwest::Client::builder().timeout(timeout).redirect(reqwest::redirect::Policy::none());
        let open = builder().build().unwrap_or_else(|_| reqwest::Client::new());
        let guarded = clients
            .http
            .disallow_private_ip_ranges
            .then(|| builder().dns_resolver(Arc::new(PublicOnly)).build().unwrap_or_else(|_| open.clone()));
        Outbound { open, guarded, exceptions: Arc::new(clients.http.private_ip_exception_urls.clone()) }
    }

    /// The client to call `url` with, or why it must not be called.
    pub fn client_for(&self, url: &str) -> Result<&reqwest::Client, Blocked> {
        let Some(guarded) = &self.guarded else { return Ok(&self.open) };
        if self.exceptions.iter().any(|e| e == url) {
            return Ok(&self.open);
        }
        let host = url::Url::parse(url).ok().and_then(|u| u.host().map(|h| h.to_owned()));
        match host {
            Some(url::Host::Ipv4(ip)) if is_internal(IpAddr::V4(ip)) => Err(Blocked(ip.to_string())),
            Some(url::Host::Ipv6(ip)) if is_internal(IpAddr::V6(ip)) => Err(Blocked(ip.to_string())),
            _ => Ok(guarded),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_ranges() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_internal(ip.parse().unwrap_or(IpAddr::from([8, 8, 8, 8]))), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "100.128.0.1"] {
            assert!(!is_internal(ip.parse().unwrap_or(IpAddr::from([127, 0, 0, 1]))), "{ip}");
        }
    }

    #[test]
    fn exceptions_are_exact_urls() {
        let mut c = ClientsConfig::default();
        c.http.disallow_private_ip_ranges = true;
        c.http.private_ip_exception_urls = vec!["http://127.0.0.1:9/hook".into()];
        let o = Outbound::new(&c, Duration::from_secs(1));
        assert!(o.client_for("http://127.0.0.1:9/hook").is_ok());
        assert_eq!(o.client_for("http://127.0.0.1:9/hook2").err(), Some(Blocked("127.0.0.1".into())));
        assert!(o.client_for("http://[::1]/x").is_err());
        assert!(o.client_for("https://example.org/x").is_ok(), "names are checked as they resolve");
        assert!(
            Outbound::new(&ClientsConfig::default(), Duration::from_secs(1)).client_for("http://127.0.0.1/").is_ok()
        );
    }
}
