//! What a request says beyond its body: the session token it presents, the client address
//! and device, the URL it was sent to, and everything a flow step needs to know of it
//! ([`RequestInfo`]).

use super::cookies::csrf_from_request;
use super::negotiate::{is_browser_request, is_json_request};
use super::state::AppState;
use crate::config::{Cidr, canonical};
use crate::error::Error;
use crate::selfservice::step::RequestInfo;
use actix_web::HttpRequest;
use actix_web::http::header;
use chrono::{DateTime, Utc};
use std::net::IpAddr;
use uuid::Uuid;

/// The session token of a request: `X-Session-Token`, then the session cookie, then
/// `Authorization: Bearer` (behaviour.md §3.2).
pub fn request_token(state: &AppState, req: &HttpRequest) -> Option<String> {
    if let Some(t) = req.headers().get("x-session-token").and_then(|v| v.to_str().ok()).filter(|t| !t.is_empty()) {
        return Some(t.to_string());
    }
    if let Some(c) = req.cookie(&state.config.session.cookie.name)
        && let Some(t) = state.sessions.token_from_cookie(c.value())
    {
        return Some(t);
    }
    let auth = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let parts: Vec<&str> = auth.split(' ').collect();
    match parts.as_slice() {
        [scheme, token] if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() => Some(token.to_string()),
        _ => None,
    }
}

fn is_private(ip: &std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_private(),
        // Unique local addresses fc00::/7.
        std::net::IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// The client address as Kratos records it for a session device (behaviour.md §3.5):
/// `True-Client-IP`, `Cf-Connecting-IP`, `X-Real-IP`, then the right-most non-private
/// `X-Forwarded-For` entry, then the peer address.
pub fn client_ip(req: &HttpRequest) -> Option<String> {
    let header =
        |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    for name in ["true-client-ip", "cf-connecting-ip", "x-real-ip"] {
        if let Some(v) = header(name) {
            return Some(v.to_string());
        }
    }
    if let Some(xff) = header("x-forwarded-for") {
        return Some(
            xff.rsplit(',')
                .map(str::trim)
                .find(|entry| entry.parse::<std::net::IpAddr>().map_or(true, |ip| !is_private(&ip)))
                .unwrap_or_default()
                .to_string(),
        );
    }
    req.peer_addr().map(|a| a.to_string())
}

/// The device a request comes from: address, user agent and `Cf-Ipcity`/`Cf-Ipcountry`.
pub fn device_from_request(req: &HttpRequest, now: DateTime<Utc>) -> crate::session::Device {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let location = match (header("cf-ipcity"), header("cf-ipcountry")) {
        (Some(city), Some(country)) => Some(format!("{city}, {country}")),
        (Some(one), None) | (None, Some(one)) => Some(one),
        (None, None) => None,
    };
    crate::session::Device {
        id: Uuid::new_v4(),
        ip_address: client_ip(req),
        user_agent: header("user-agent"),
        location,
        created_at: now,
    }
}

/// The URL the client used (`X-Forwarded-Proto`/`-Host` honoured), as Kratos' `request_url`.
fn request_url(req: &HttpRequest) -> String {
    let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    let info = req.connection_info();
    let scheme = header("x-forwarded-proto").unwrap_or_else(|| info.scheme().to_string());
    let host = header("x-forwarded-host").unwrap_or_else(|| info.host().to_string());
    let pq = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    format!("{scheme}://{host}{pq}")
}

fn is_cloudflare_cookie(name: &str) -> bool {
    name.starts_with("__cf") || name.starts_with("_cf") || name.starts_with("cf_")
}

/// What a flow step needs to know about `req`.
pub async fn request_info(state: &AppState, req: &HttpRequest) -> Result<RequestInfo, Error> {
    let token = request_token(state, req);
    let session = match &token {
        Some(t) => state.sessions.authenticate(t).await?,
        None => None,
    };
    let cookies: Vec<(String, String)> = req
        .cookies()
        .map(|c| c.iter().map(|c| (c.name().to_string(), c.value().to_string())).collect())
        .unwrap_or_default();
    let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok());
    let ajax = matches!(header("sec-fetch-mode"), Some("cors" | "same-origin"));
    let now = state.clock.now();
    Ok(RequestInfo {
        is_json: is_json_request(req),
        is_browser: is_browser_request(req),
        csrf_cookie: csrf_from_request(&state.config, req),
        has_cookie_header: req.headers().contains_key(header::COOKIE),
        has_foreign_cookie: cookies.iter().any(|(n, _)| !is_cloudflare_cookie(n)),
        has_origin: req.headers().contains_key(header::ORIGIN),
        json_body: header("content-type").is_some_and(|v| v.starts_with("application/json")),
        ajax,
        session_token: session.as_ref().and(token),
        session,
        device: device_from_request(req, now),
        client_ip: abuse_address(&state.config.security.trusted_proxies, req),
        url: request_url(req),
        headers: req
            .headers()
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_string(), v.to_string())))
            .collect(),
        method: req.method().to_string(),
        cookies,
    })
}

/// The client address abuse limits count against (brute force, senders): the TCP peer, or,
/// when the peer is a trusted proxy (`security.trusted_proxies`), the address it forwards —
/// `True-Client-IP`, `Cf-Connecting-IP` or `X-Real-IP`, else the right-most `X-Forwarded-For`
/// entry outside the trusted networks. IPv6 addresses are counted per /64. `None`: no address
/// could be determined (the caller counts those together).
pub fn abuse_address(trusted: &[Cidr], req: &HttpRequest) -> Option<String> {
    let peer = canonical(req.peer_addr()?.ip());
    let ip = if trusted.iter().any(|n| n.contains(peer)) { forwarded_client(trusted, req)? } else { peer };
    Some(match canonical(ip) {
        IpAddr::V6(v6) => ipnet::Ipv6Net::new(v6, 64).map_or_else(|_| v6.to_string(), |n| n.trunc().to_string()),
        v4 => v4.to_string(),
    })
}

/// The client a trusted proxy forwards; the proxy itself when it forwards nothing; `None`
/// when what it forwards is not an address.
fn forwarded_client(trusted: &[Cidr], req: &HttpRequest) -> Option<IpAddr> {
    let header =
        |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    for name in ["true-client-ip", "cf-connecting-ip", "x-real-ip"] {
        if let Some(v) = header(name) {
            return v.parse().ok();
        }
    }
    let Some(xff) = header("x-forwarded-for") else { return req.peer_addr().map(|a| a.ip()) };
    let mut leftmost = None;
    for entry in xff.rsplit(',').map(str::trim) {
        let ip: IpAddr = entry.parse().ok()?;
        if !trusted.iter().any(|n| n.contains(ip)) {
            return Some(ip);
        }
        leftmost = Some(ip);
    }
    // Every hop is a trusted network: the first one is the client.
    leftmost
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn from(peer: &str, headers: &[(&str, &str)]) -> HttpRequest {
        let mut req = TestRequest::default().peer_addr(peer.parse().unwrap());
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        req.to_http_request()
    }

    #[test]
    fn abuse_address_believes_only_trusted_proxies() {
        let trusted: Vec<Cidr> = ["10.0.0.0/8", "2001:db8:ffff::/48"].iter().map(|c| Cidr::parse(c).unwrap()).collect();
        let addr = |peer: &str, headers: &[(&str, &str)]| abuse_address(&trusted, &from(peer, headers));
        // An untrusted peer: its headers are ignored.
        let spoof = [("X-Forwarded-For", "198.51.100.1"), ("True-Client-IP", "198.51.100.2")];
        assert_eq!(addr("203.0.113.5:1234", &spoof).as_deref(), Some("203.0.113.5"));
        assert_eq!(abuse_address(&[], &from("10.0.0.1:1", &spoof)).as_deref(), Some("10.0.0.1"), "nothing trusted");
        // A trusted proxy: the right-most entry outside the trusted networks.
        let xff = [("X-Forwarded-For", "198.51.100.1, 203.0.113.9, 10.1.1.1")];
        assert_eq!(addr("10.0.0.1:1", &xff).as_deref(), Some("203.0.113.9"));
        assert_eq!(addr("10.0.0.1:1", &[("X-Forwarded-For", "10.9.9.9, 10.1.1.1")]).as_deref(), Some("10.9.9.9"));
        assert_eq!(addr("10.0.0.1:1", &[("X-Real-IP", "192.0.2.7")]).as_deref(), Some("192.0.2.7"));
        assert_eq!(addr("10.0.0.1:1", &[]).as_deref(), Some("10.0.0.1"), "the proxy's own request");
        assert_eq!(addr("10.0.0.1:1", &[("X-Forwarded-For", "garbage, 10.1.1.1")]), None);
        assert_eq!(addr("10.0.0.1:1", &[("True-Client-IP", "not-an-ip")]), None);
        // IPv6 per /64; IPv4-mapped addresses as IPv4.
        assert_eq!(addr("[2001:db8:1:2:3:4:5:6]:1", &[]).as_deref(), Some("2001:db8:1:2::/64"));
        let v6 = [("X-Forwarded-For", "2001:db8:1:2::99")];
        assert_eq!(addr("[2001:db8:ffff::1]:1", &v6).as_deref(), Some("2001:db8:1:2::/64"));
        assert_eq!(addr("[::ffff:10.0.0.1]:1", &xff).as_deref(), Some("203.0.113.9"));
    }

    #[test]
    fn device_address_follows_kratos_precedence() {
        let req = TestRequest::default()
            .insert_header(("X-Forwarded-For", "203.0.113.9, 10.0.0.1, 192.168.1.1"))
            .to_http_request();
        assert_eq!(client_ip(&req).as_deref(), Some("203.0.113.9"));
        let req = TestRequest::default().insert_header(("X-Forwarded-For", "10.0.0.1, 127.0.0.1")).to_http_request();
        assert_eq!(client_ip(&req).as_deref(), Some("127.0.0.1"), "loopback is not private");
        let req = TestRequest::default().insert_header(("X-Forwarded-For", "10.0.0.1, 172.16.0.2")).to_http_request();
        assert_eq!(client_ip(&req).as_deref(), Some(""));
        let req = TestRequest::default()
            .insert_header(("X-Forwarded-For", "203.0.113.9"))
            .insert_header(("X-Real-IP", "198.51.100.7"))
            .insert_header(("True-Client-IP", "192.0.2.5"))
            .to_http_request();
        assert_eq!(client_ip(&req).as_deref(), Some("192.0.2.5"));
        let req = TestRequest::default()
            .insert_header(("Cf-Ipcity", "Berlin"))
            .insert_header(("Cf-Ipcountry", "DE"))
            .insert_header(("User-Agent", "ua"))
            .to_http_request();
        let d = device_from_request(&req, crate::clock::Clock::system().now());
        assert_eq!(d.location.as_deref(), Some("Berlin, DE"));
        assert_eq!(d.user_agent.as_deref(), Some("ua"));
    }
}
