//! Content negotiation exactly as Kratos decides "JSON or redirect" (behaviour.md §2.1).

use actix_web::HttpRequest;
use actix_web::http::header;

struct Spec {
    value: String,
    q: f64,
}

fn parse_accept(req: &HttpRequest) -> Vec<Spec> {
    let mut out = Vec::new();
    for h in req.headers().get_all(header::ACCEPT) {
        let Ok(h) = h.to_str() else { continue };
        for part in h.split(',') {
            let mut pieces = part.split(';');
            let value = pieces.next().unwrap_or_default().trim().to_ascii_lowercase();
            if value.is_empty() {
                continue;
            }
            let mut q = 1.0;
            for p in pieces {
                if let Some((k, v)) = p.split_once('=')
                    && k.trim() == "q"
                {
                    q = v.trim().parse().unwrap_or(0.0);
                }
            }
            out.push(Spec { value, q });
        }
    }
    out
}

/// The best of `offers` for the request's `Accept` header (golang/gddo's algorithm): highest
/// q wins, then the most specific match, then the earlier offer; no match → `default`.
pub fn negotiate<'a>(req: &HttpRequest, offers: &[&'a str], default: &'a str) -> &'a str {
    let specs = parse_accept(req);
    let (mut best, mut best_q, mut best_wild) = (default, -1.0f64, 3);
    for offer in offers {
        for spec in &specs {
            if spec.q == 0.0 || spec.q < best_q {
                continue;
            }
            if spec.value == "*/*" {
                if spec.q > best_q || best_wild > 2 {
                    (best, best_q, best_wild) = (offer, spec.q, 2);
                }
            } else if let Some(prefix) = spec.value.strip_suffix('*') {
                if offer.starts_with(prefix) && (spec.q > best_q || best_wild > 1) {
                    (best, best_q, best_wild) = (offer, spec.q, 1);
                }
            } else if spec.value == *offer && (spec.q > best_q || best_wild > 0) {
                (best, best_q, best_wild) = (offer, spec.q, 0);
            }
        }
    }
    best
}

const FOUR: [&str; 4] = ["text/html", "text/*", "*/*", "application/json"];

/// Kratos' `IsJSONRequest`: negotiation picks JSON, or `Content-Type` is exactly `application/json`.
pub fn is_json_request(req: &HttpRequest) -> bool {
    negotiate(req, &FOUR, "text/html") == "application/json"
        || req.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes() == b"application/json")
}

/// Kratos' `IsBrowserRequest`: negotiation picks HTML (no `Accept` counts as a browser).
pub fn is_browser_request(req: &HttpRequest) -> bool {
    negotiate(req, &FOUR, "text/html") == "text/html"
}

/// Kratos' `AcceptsJSON`: negotiation over HTML and JSON picks JSON.
pub fn accepts_json(req: &HttpRequest) -> bool {
    negotiate(req, &["text/html", "application/json"], "text/html") == "application/json"
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn json(accept: Option<&str>, ct: Option<&str>) -> bool {
        let mut r = TestRequest::get();
        if let Some(a) = accept {
            r = r.insert_header((header::ACCEPT, a));
        }
        if let Some(c) = ct {
            r = r.insert_header((header::CONTENT_TYPE, c));
        }
        is_json_request(&r.to_http_request())
    }

    #[test]
    fn negotiation_matches_kratos() {
        assert!(!json(None, None), "no Accept → HTML");
        assert!(!json(Some("*/*"), None));
        assert!(!json(Some("application/json, text/html"), None), "a tie goes to the earlier offer");
        assert!(json(Some("application/json"), None));
        assert!(json(Some("text/html;q=0.5, application/json"), None));
        assert!(json(None, Some("application/json")));
        assert!(!json(None, Some("application/json; charset=utf-8")), "only the exact content type counts");
    }
}
