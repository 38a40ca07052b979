//! Legacy pagination (`page`/`per_page`, or `page_token`/`page_size`) and its headers, as
//! Kratos' `migrationpagination`: nothing is ever refused, out-of-range values are clamped.

use super::state::{link_entry, query_pairs};
use actix_web::HttpRequest;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue, LINK};
use base64::Engine;

/// The largest offset a page may start at (beyond it every list is empty; bounded so that it
/// fits an SQL `OFFSET` and the link arithmetic).
const MAX_OFFSET: usize = 1 << 40;

/// The slice of a list one request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegacyPage {
    pub offset: usize,
    pub limit: usize,
}

impl LegacyPage {
    /// Reads the page from the query: the token form wins when `page_token` or `page_size`
    /// is present; `page` is 0-based; sizes are clamped to `1..=max_size`.
    pub fn from_request(req: &HttpRequest, default_size: usize, max_size: usize) -> LegacyPage {
        let pairs = query_pairs(req);
        let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        let size = |v: Option<&str>| match v.map(str::parse::<i64>) {
            Some(Ok(n)) if n < 1 => 1,
            Some(Ok(n)) => (n as usize).min(max_size),
            _ => default_size,
        };
        if get("page_token").is_some() || get("page_size").is_some() {
            let limit = size(get("page_size"));
            let offset = get("page_token").and_then(decode_token).unwrap_or(0);
            return LegacyPage { offset: ((offset / limit) * limit).min(MAX_OFFSET), limit };
        }
        let limit = size(get("per_page"));
        let page = get("page").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
        LegacyPage { offset: page.saturating_mul(limit).min(MAX_OFFSET), limit }
    }

    /// Sets `X-Total-Count` and `Link` (relative URLs, query keys sorted, bare-comma joined).
    pub fn write_headers(&self, req: &HttpRequest, total: usize, headers: &mut HeaderMap) {
        if let Ok(v) = HeaderValue::from_str(&total.to_string()) {
            headers.insert(HeaderName::from_static("x-total-count"), v);
        }
        if let Ok(v) = HeaderValue::from_str(&self.link(req, total)) {
            headers.insert(LINK, v);
        }
    }

    fn link(&self, req: &HttpRequest, total: usize) -> String {
        let ipp = self.limit;
        // Bounded so that offset arithmetic below cannot overflow.
        let off = (self.offset.min(i64::MAX as usize / 4)) as i64;
        let (ipp_i, total_i) = (ipp as i64, total as i64);
        let last = if total_i % ipp_i == 0 { total_i - ipp_i } else { (total_i / ipp_i) * ipp_i };
        let pairs = query_pairs(req);
        let entry = |offset: i64, size: i64, rel: &str| {
            let set = [
                ("page", (offset / size).to_string()),
                ("page_size", size.to_string()),
                ("page_token", encode_token(offset)),
                ("per_page", size.to_string()),
            ];
            link_entry(req, &pairs, &set, rel)
        };
        let rels = if off >= last {
            if total == 0 {
                vec![entry(0, ipp_i, "first"), entry(off + ipp_i, ipp_i, "next"), entry(off - ipp_i, ipp_i, "prev")]
            } else if total_i <= ipp_i {
                vec![entry(0, total_i, "first")]
            } else {
                vec![entry(0, ipp_i, "first"), entry(last - ipp_i, ipp_i, "prev")]
            }
        } else if off < ipp_i {
            vec![entry(ipp_i, ipp_i, "next"), entry(last, ipp_i, "last")]
        } else {
            vec![
                entry(0, ipp_i, "first"),
                entry(off + ipp_i, ipp_i, "next"),
                entry(off - ipp_i, ipp_i, "prev"),
                entry(last, ipp_i, "last"),
            ]
        };
        rels.join(",")
    }
}

/// `base64url-no-padding({"offset":"<n>","v":2})`.
pub fn encode_token(offset: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{{\"offset\":\"{offset}\",\"v\":2}}"))
}

fn decode_token(token: &str) -> Option<usize> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&raw).ok()?;
    v.get("offset")?.as_str()?.parse().ok()
}
