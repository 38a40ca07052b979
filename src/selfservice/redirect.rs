//! `return_to` allow-listing and default return URLs (behaviour.md §2.5).

use crate::config::Config;
use url::Url;

/// Why a `return_to` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Requested return_to URL \"{0}\" is not allowed.")]
pub struct Forbidden(pub String);

impl Forbidden {
    /// `self_service_flow_return_to_forbidden`.
    pub fn into_error(self) -> crate::error::Error {
        crate::error::Error::ReturnToForbidden(self.0)
    }
}

/// The global default return URL (`selfservice.default_browser_return_url`, else the public base).
pub fn default_return(config: &Config) -> String {
    config.selfservice.default_browser_return_url.clone().unwrap_or_else(|| config.public_base_url())
}

fn allowed(config: &Config) -> Vec<Url> {
    let mut list: Vec<Url> = config
        .selfservice
        .allowed_return_urls
        .iter()
        .filter_map(|u| Url::parse(u).ok())
        .filter(|u| {
            // Entries whose host is `*` allow anything, and wildcards other than a leading `*.`
            // label (`*example.org`, `a.*.org`) match more than they seem to: both are ignored.
            u.host_str().is_some_and(|h| {
                let rest = h.strip_prefix("*.").unwrap_or(h);
                !rest.contains('*') && !rest.contains("%2A") && rest.contains('.')
            })
        })
        .collect();
    if let Ok(u) = Url::parse(&format!("{}self-service", config.public_base_url())) {
        list.push(u);
    }
    list
}

/// `*.example.org` matches any subdomain of `example.org` (not `example.org` itself, nor
/// `evilexample.org`); any other entry matches its host exactly. Case-insensitive.
fn host_matches(allowed: &str, host: &str) -> bool {
    let (allowed, host) = (allowed.to_ascii_lowercase(), host.to_ascii_lowercase());
    match allowed.strip_prefix("*.") {
        Some(rest) => host.strip_suffix(&rest).is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
        None => allowed == host,
    }
}

/// Whether `path` is `prefix` or lies under it: `/app` allows `/app` and `/app/x`, not `/apple`.
fn path_under(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

fn host_port(u: &Url) -> String {
    match (u.host_str(), u.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => String::new(),
    }
}

/// Validates `candidate` (absolute, or relative to `default`) against the allow-list.
pub fn validate(config: &Config, candidate: &str, default: &str) -> Result<String, Forbidden> {
    let base = Url::parse(default).map_err(|_| Forbidden(candidate.into()))?;
    let target = base.join(candidate).map_err(|_| Forbidden(candidate.into()))?;
    let ok = allowed(config).iter().any(|a| {
        a.scheme().eq_ignore_ascii_case(target.scheme())
            && host_matches(&host_port(a), &host_port(&target))
            && path_under(a.path(), target.path())
    });
    if ok { Ok(target.to_string()) } else { Err(Forbidden(candidate.into())) }
}

/// The `return_to` query value of a URL, if any.
pub fn return_to_of(url: &str) -> Option<String> {
    Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == "return_to")
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

/// The browser redirect after a flow: the flow's `return_to` (or that of its request URL) if
/// allowed, else `default`.
pub fn after_flow(
    config: &Config,
    return_to: Option<&str>,
    request_url: &str,
    default: &str,
) -> Result<String, Forbidden> {
    let candidate = return_to.map(str::to_string).or_else(|| return_to_of(request_url));
    match candidate {
        Some(c) => validate(config, &c, default),
        None => Ok(default.to_string()),
    }
}

/// The AAL2 login a session below the required AAL is sent to (`return_to` kept).
pub fn aal2_login_url(config: &Config, return_to: Option<&str>) -> String {
    let mut redirect = format!("{}self-service/login/browser?aal=aal2", config.public_base_url());
    if let Some(r) = return_to {
        redirect.push_str("&return_to=");
        redirect.extend(url::form_urlencoded::byte_serialize(r.as_bytes()));
    }
    redirect
}

/// Sets each `key=value` in a URL's query, replacing values the key had.
pub fn with_query_set(url: &str, set: &[(&str, String)]) -> String {
    if set.is_empty() {
        return url.to_string();
    }
    match Url::parse(url) {
        Ok(mut u) => {
            let kept: Vec<(String, String)> = u
                .query_pairs()
                .filter(|(k, _)| !set.iter().any(|(s, _)| s == k))
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            u.query_pairs_mut().clear().extend_pairs(kept).extend_pairs(set.iter().map(|(k, v)| (*k, v.as_str())));
            u.to_string()
        }
        Err(_) => url.to_string(),
    }
}

/// Appends `key=value` to a URL's query.
pub fn with_query(url: &str, key: &str, value: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) => {
            u.query_pairs_mut().append_pair(key, value);
            u.to_string()
        }
        Err(_) => {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}{key}={}", url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(allowed: &[&str]) -> Config {
        let mut c = Config::default();
        c.serve.public.base_url = Some("http://127.0.0.1:4433/".into());
        c.selfservice.default_browser_return_url = Some("https://app.example/".into());
        c.selfservice.allowed_return_urls = allowed.iter().map(|s| s.to_string()).collect();
        c
    }

    #[test]
    fn allow_list_matches_scheme_host_and_path_prefix() {
        let c = config(&["https://app.example/dashboard", "https://*.example.org/"]);
        let d = "https://app.example/";
        assert!(validate(&c, "https://app.example/dashboard/x", d).is_ok());
        assert!(validate(&c, "https://APP.example/dashboard", d).is_ok());
        assert!(validate(&c, "/dashboard", d).is_ok(), "relative URLs inherit the default's origin");
        assert!(validate(&c, "https://a.example.org/anything", d).is_ok());
        assert!(validate(&c, "http://app.example/dashboard", d).is_err(), "scheme must match");
        assert!(validate(&c, "https://evil.example/dashboard", d).is_err());
        assert!(validate(&c, "https://app.example/other", d).is_err());
        assert!(validate(&c, "http://127.0.0.1:4433/self-service/login/browser", d).is_ok());
    }

    #[test]
    fn wildcard_host_entries_are_ignored() {
        let c = config(&["https://*/", "https://*example.net/", "https://a.*.org/", "https://*.com/"]);
        let d = "https://app.example/";
        for evil in ["https://evil.example/", "https://evilexample.net/", "https://a.b.org/", "https://evil.com/"] {
            assert!(validate(&c, evil, d).is_err(), "{evil}");
        }
    }

    #[test]
    fn wildcards_match_subdomains_only() {
        let c = config(&["https://*.example.org/"]);
        let d = "https://app.example/";
        assert!(validate(&c, "https://a.example.org/", d).is_ok());
        assert!(validate(&c, "https://a.b.EXAMPLE.org/x", d).is_ok());
        assert!(validate(&c, "https://example.org/", d).is_err(), "the bare domain is not a subdomain");
        assert!(validate(&c, "https://evilexample.org/", d).is_err());
        assert!(validate(&c, "https://a.example.org.evil/", d).is_err());
    }

    #[test]
    fn paths_match_at_segment_boundaries() {
        let c = config(&["https://app.example/dashboard", "https://app.example/docs/"]);
        let d = "https://app.example/";
        assert!(validate(&c, "https://app.example/dashboard", d).is_ok());
        assert!(validate(&c, "https://app.example/dashboard/", d).is_ok());
        assert!(validate(&c, "https://app.example/dashboard?x=1", d).is_ok());
        assert!(validate(&c, "https://app.example/docs/a", d).is_ok());
        assert!(validate(&c, "https://app.example/dashboard-evil", d).is_err());
        assert!(validate(&c, "https://app.example/dashboardx/y", d).is_err());
        assert!(validate(&c, "https://app.example/docs", d).is_err());
        assert!(validate(&c, "http://127.0.0.1:4433/self-servicex", d).is_err());
        assert!(validate(&c, "http://127.0.0.1:4433/self-service/login", d).is_ok());
    }
}
