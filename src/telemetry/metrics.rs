//! Prometheus metrics (`GET /admin/metrics/prometheus`). Each component owns a [`Metrics`] (a
//! recorder of its own, not the process-global one): the scrape renders them one after the
//! other, so every `App` in a process — the tests run many — has its own numbers, and no
//! component needs another's handle. A family lives in exactly one component's recorder.
//!
//! [`HttpMetrics`] records Kratos' HTTP families with its names, labels and buckets (ory/x
//! prometheusx): `http_requests_total`, `http_requests_duration_seconds`,
//! `http_response_time_seconds`, `http_response_size_bytes`, `http_requests_size_bytes`,
//! `http_requests_statuses_total`, each with the constant labels `app`, `version`, `hash`,
//! `buildTime`.

use dashmap::DashMap;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Level, Metadata, Recorder, SharedString};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use std::sync::Arc;

/// client_golang's `DefBuckets`: Kratos uses them for every HTTP histogram (sizes included).
pub const DEFAULT_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Buckets for counts of things (batch sizes).
pub const COUNT_BUCKETS: [f64; 12] = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0];
/// Buckets for short waits and latencies, from 100 µs.
pub const LATENCY_BUCKETS: [f64; 14] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

static META: Metadata<'static> = Metadata::new("tessera::metrics", Level::INFO, None);

/// The scrape's content type (Prometheus text format 0.0.4, as Kratos answers).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One recorder: counters, gauges and histograms by name and labels.
#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(&[])
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A recorder whose histograms use `buckets` when named there, else [`DEFAULT_BUCKETS`].
    pub fn new(buckets: &[(&str, &[f64])]) -> Metrics {
        let build = || -> Result<PrometheusBuilder, metrics_exporter_prometheus::BuildError> {
            let mut builder = PrometheusBuilder::new().set_buckets(&DEFAULT_BUCKETS)?;
            for (name, b) in buckets {
                builder = builder.set_buckets_for_metric(Matcher::Full((*name).to_string()), b)?;
            }
            Ok(builder)
        };
        // Only empty bucket lists fail, and the callers pass constants.
        let recorder = build().unwrap_or_else(|_| PrometheusBuilder::new()).build_recorder();
        let handle = recorder.handle();
        Metrics { recorder: Arc::new(recorder), handle }
    }

    fn key(name: &'static str, labels: &[(&'static str, String)]) -> Key {
        let mut l: Vec<(&'static str, String)> = labels.to_vec();
        // client_golang prints labels sorted by name.
        l.sort_by(|a, b| a.0.cmp(b.0));
        Key::from_parts(name, l.into_iter().map(|(k, v)| Label::new(k, v)).collect::<Vec<_>>())
    }

    /// A counter; `help` becomes its `# HELP` line.
    pub fn counter(&self, name: &'static str, help: &'static str, labels: &[(&'static str, String)]) -> Counter {
        self.recorder.describe_counter(KeyName::from(name), None, SharedString::from(help));
        self.recorder.register_counter(&Self::key(name, labels), &META)
    }

    /// A gauge.
    pub fn gauge(&self, name: &'static str, help: &'static str, labels: &[(&'static str, String)]) -> Gauge {
        self.recorder.describe_gauge(KeyName::from(name), None, SharedString::from(help));
        self.recorder.register_gauge(&Self::key(name, labels), &META)
    }

    /// A histogram.
    pub fn histogram(&self, name: &'static str, help: &'static str, labels: &[(&'static str, String)]) -> Histogram {
        self.recorder.describe_histogram(KeyName::from(name), None, SharedString::from(help));
        self.recorder.register_histogram(&Self::key(name, labels), &META)
    }

    /// The text exposition of everything recorded here.
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }

    /// Folds pending histogram samples (call now and then so they do not pile up between scrapes).
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}

/// Kratos' HTTP request families, for both servers (one instance counts both, as in Kratos).
#[derive(Clone)]
pub struct HttpMetrics {
    metrics: Metrics,
    build: [(&'static str, String); 4],
    series: Arc<DashMap<(u16, String, String), Arc<HttpSeries>>>,
}

/// The handles of one (status, method, endpoint).
struct HttpSeries {
    requests: Counter,
    duration: Histogram,
    response_time: Histogram,
    response_size: Histogram,
    request_size: Histogram,
    statuses: Counter,
}

/// Most distinct (status, method, endpoint) series kept; past it, new ones are not recorded
/// (endpoints are route patterns, so this is never reached by honest traffic).
const MAX_HTTP_SERIES: usize = 10_000;

impl Default for HttpMetrics {
    fn default() -> Self {
        HttpMetrics::new(env!("CARGO_PKG_VERSION"))
    }
}

impl HttpMetrics {
    pub fn new(version: &str) -> HttpMetrics {
        HttpMetrics {
            metrics: Metrics::new(&[]),
            // As a Kratos build without ldflags, except the version.
            build: [
                ("app", "kratos".into()),
                ("buildTime", "undefined".into()),
                ("hash", "undefined".into()),
                ("version", version.to_string()),
            ],
            series: Arc::new(DashMap::new()),
        }
    }

    fn with_build(&self, labels: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
        self.build.iter().cloned().chain(labels.iter().cloned()).collect()
    }

    fn series(&self, status: u16, method: &str, endpoint: &str) -> Option<Arc<HttpSeries>> {
        let key = (status, method.to_string(), endpoint.to_string());
        if let Some(s) = self.series.get(&key) {
            return Some(s.clone());
        }
        if self.series.len() >= MAX_HTTP_SERIES {
            return None;
        }
        // promhttp: lower-case known methods, else `unknown`; the status-bucket counter keeps
        // the method as sent.
        let known = ["GET", "PUT", "HEAD", "POST", "DELETE", "CONNECT", "OPTIONS", "NOTIFY", "TRACE", "PATCH"];
        let lower = if known.contains(&method) { method.to_ascii_lowercase() } else { "unknown".into() };
        let bucket = match status {
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            500..=599 => "5xx",
            _ => "unknown",
        };
        let (code, ep, m) = (("code", status.to_string()), ("endpoint", endpoint.to_string()), ("method", lower));
        let mx = &self.metrics;
        let s = HttpSeries {
            requests: mx.counter(
                "http_requests_total",
                "number of requests",
                &self.with_build(&[code.clone(), ep.clone(), m.clone()]),
            ),
            duration: mx.histogram(
                "http_requests_duration_seconds",
                "duration of a requests in seconds",
                &self.with_build(&[code.clone(), ep.clone(), m.clone()]),
            ),
            response_time: mx.histogram("http_response_time_seconds", "Description", &self.with_build(&[ep])),
            response_size: mx.histogram(
                "http_response_size_bytes",
                "size of the responses in bytes",
                &self.with_build(&[code.clone(), m.clone()]),
            ),
            request_size: mx.histogram(
                "http_requests_size_bytes",
                "size of the requests in bytes",
                &self.with_build(&[code, m]),
            ),
            statuses: mx.counter(
                "http_requests_statuses_total",
                "count number of responses per status",
                &self.with_build(&[("method", method.to_string()), ("status_bucket", bucket.to_string())]),
            ),
        };
        let s = Arc::new(s);
        self.series.insert(key, s.clone());
        Some(s)
    }

    /// Records one answered request of a registered route (`pattern`: its path pattern).
    pub fn observe(
        &self,
        method: &str,
        status: u16,
        pattern: &str,
        seconds: f64,
        request_bytes: u64,
        response_bytes: u64,
    ) {
        let Some(s) = self.series(status, method, &endpoint_label(pattern)) else { return };
        s.requests.increment(1);
        s.duration.record(seconds);
        s.response_time.record(seconds);
        s.response_size.record(response_bytes as f64);
        s.request_size.record(request_bytes as f64);
        s.statuses.increment(1);
    }

    pub fn render(&self) -> String {
        self.metrics.render()
    }

    pub fn upkeep(&self) {
        self.metrics.upkeep();
    }
}

/// prometheusx' endpoint label: the route pattern with every `{name}` (or `{name:regex}`) as
/// `{param}`.
pub fn endpoint_label(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        match rest[open..].find('}') {
            Some(close) => {
                out.push_str("{param}");
                rest = &rest[open + close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Appends hand-made families (values read at scrape time, e.g. live actors) in the text format.
#[derive(Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    /// One family: `kind` is `counter` or `gauge`; each sample is (labels, value).
    pub fn family(&mut self, name: &str, kind: &str, help: &str, samples: &[(&[(&str, &str)], f64)]) {
        use std::fmt::Write as _;
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let mut sorted: Vec<&(&str, &str)> = labels.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            let l: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
            if l.is_empty() {
                let _ = writeln!(self.text, "{name} {value}");
            } else {
                let _ = writeln!(self.text, "{name}{{{}}} {value}", l.join(","));
            }
        }
        self.text.push('\n');
    }

    pub fn into_text(self) -> String {
        self.text
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_collapse_parameters() {
        assert_eq!(endpoint_label("/admin/identities/{id}/sessions"), "/admin/identities/{param}/sessions");
        assert_eq!(endpoint_label("/sessions/{id}"), "/sessions/{param}");
        assert_eq!(endpoint_label("/schemas/{id:.*}"), "/schemas/{param}");
        assert_eq!(endpoint_label("/health/alive"), "/health/alive");
    }

    #[test]
    fn http_families_carry_kratos_labels() {
        let m = HttpMetrics::new("1.2.3");
        m.observe("GET", 200, "/sessions/{id}", 0.003, 100, 2000);
        m.observe("GET", 200, "/sessions/{id}", 0.02, 100, 2000);
        m.observe("BREW", 418, "/x", 0.02, 1, 1);
        let text = m.render();
        let requests = "http_requests_total{app=\"kratos\",buildTime=\"undefined\",code=\"200\",\
                        endpoint=\"/sessions/{param}\",hash=\"undefined\",method=\"get\",version=\"1.2.3\"} 2";
        assert!(text.contains(requests), "{text}");
        assert!(text.contains("http_requests_statuses_total{app=\"kratos\",buildTime=\"undefined\",hash=\"undefined\",method=\"GET\",status_bucket=\"2xx\",version=\"1.2.3\"} 2"), "{text}");
        assert!(text.contains("method=\"unknown\""), "{text}");
        assert!(text.contains("status_bucket=\"4xx\""), "{text}");
        assert!(text.contains("# TYPE http_requests_duration_seconds histogram"), "{text}");
        assert!(text.contains("le=\"0.005\"} 1"), "{text}");
    }

    #[test]
    fn exposition_sorts_and_escapes_labels() {
        let mut e = Exposition::default();
        e.family("x_total", "counter", "things", &[(&[("z", "1"), ("a", "q\"x")], 3.0)]);
        assert_eq!(e.into_text(), "# HELP x_total things\n# TYPE x_total counter\nx_total{a=\"q\\\"x\",z=\"1\"} 3\n\n");
    }
}
