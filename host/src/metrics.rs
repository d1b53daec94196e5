//! Prometheus metrics, kept as plain atomics and small maps and rendered in the text format
//! on scrape: the service has a handful of series, not enough to justify a metrics stack.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The service's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    request_micros: AtomicU64,
    evaluations: AtomicU64,
    evaluation_micros: AtomicU64,
    fuel: AtomicU64,
    failures: Mutex<BTreeMap<&'static str, u64>>,
    fallbacks: AtomicU64,
    /// The last SLA clock census and when it was taken (see [`CLOCKS_MAX_AGE`]).
    pub(crate) clocks: tokio::sync::Mutex<Option<(std::time::Instant, BTreeMap<String, u64>)>>,
}

/// How old an SLA clock census may be when served. Counting reads every open-clock row, and
/// `/metrics` is unauthenticated: however often it is scraped, the census is taken at most
/// this often (and concurrent scrapes share one).
pub const CLOCKS_MAX_AGE: Duration = Duration::from_secs(15);

impl Metrics {
    /// Counts one HTTP request by route template, method and status.
    pub fn request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        *self
            .requests
            .lock()
            .expect("metrics lock")
            .entry((route.to_owned(), method.to_owned(), status))
            .or_default() += 1;
        self.request_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// Counts one rule evaluation.
    pub fn evaluation(&self, elapsed: Duration, fuel: u64, failure: Option<&'static str>) {
        self.evaluations.fetch_add(1, Ordering::Relaxed);
        self.evaluation_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        self.fuel.fetch_add(fuel, Ordering::Relaxed);
        if let Some(kind) = failure {
            *self
                .failures
                .lock()
                .expect("metrics lock")
                .entry(kind)
                .or_default() += 1;
        }
    }

    /// Counts one ticket routed by the fallback decision.
    pub fn fallback(&self) {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition, with `clocks` (SLA clocks by state) as a gauge.
    pub fn render(
        &self,
        clocks: &BTreeMap<String, u64>,
        store: &crate::store::WriterStats,
    ) -> String {
        let mut out = String::new();
        let head = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        let scalar = |out: &mut String, name: &str, help: &str, value: String| {
            head(out, name, "counter", help);
            let _ = writeln!(out, "{name} {value}");
        };
        let count = |a: &AtomicU64| a.load(Ordering::Relaxed).to_string();
        let seconds = |a: &AtomicU64| (a.load(Ordering::Relaxed) as f64 / 1e6).to_string();

        head(
            &mut out,
            "switchboard_http_requests_total",
            "counter",
            "HTTP requests by route, method and status.",
        );
        for ((route, method, status), n) in self.requests.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "switchboard_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}"
            );
        }
        scalar(
            &mut out,
            "switchboard_http_request_seconds_sum",
            "Time spent serving HTTP requests.",
            seconds(&self.request_micros),
        );
        scalar(
            &mut out,
            "switchboard_rule_evaluations_total",
            "Rule evaluations.",
            count(&self.evaluations),
        );
        scalar(
            &mut out,
            "switchboard_rule_evaluation_seconds_sum",
            "Time spent evaluating rules.",
            seconds(&self.evaluation_micros),
        );
        scalar(
            &mut out,
            "switchboard_rule_fuel_total",
            "Fuel consumed by rule evaluations.",
            count(&self.fuel),
        );
        head(
            &mut out,
            "switchboard_rule_failures_total",
            "counter",
            "Failed rule evaluations by kind (traps, limits, rule errors, invalid decisions).",
        );
        for (kind, n) in self.failures.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "switchboard_rule_failures_total{{kind=\"{kind}\"}} {n}"
            );
        }
        scalar(
            &mut out,
            "switchboard_fallbacks_total",
            "Tickets routed by the fallback decision.",
            count(&self.fallbacks),
        );
        scalar(
            &mut out,
            "switchboard_store_commits_total",
            "Durable (fsynced) group commits.",
            count(&store.commits),
        );
        scalar(
            &mut out,
            "switchboard_store_writes_total",
            "Writes carried by those commits.",
            count(&store.writes),
        );
        head(
            &mut out,
            "switchboard_sla_clocks",
            "gauge",
            "Open SLA clocks (of tickets not met or resolved) by standing.",
        );
        for (state, n) in clocks {
            let _ = writeln!(out, "switchboard_sla_clocks{{state=\"{state}\"}} {n}");
        }
        out
    }
}
