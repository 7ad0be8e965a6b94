//! `/metrics`: Prometheus text. Decisions by outcome, policy and rule; a
//! latency histogram of decisions; reloads; limit-store failures; audit
//! records dropped.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Upper bounds of the latency buckets, in nanoseconds (rendered in
/// seconds, as Prometheus names them).
const BUCKETS_NS: [u64; 12] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 5_000_000,
    25_000_000,
];

/// A bucket's bound in seconds: `ns / 1e9` rounded once, the same `f64`
/// as the decimal literal, so it prints as `0.0000025`, not a long tail.
fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// Decision counts by outcome, then policy, then rule: nested so that
/// counting a decision seen before allocates nothing. Hashed with
/// foldhash (seeded at random), which costs a fraction of std's SipHash
/// for these short keys; the keys are the loaded policy's own names.
type Counts = Map<&'static str, Map<String, Map<String, u64>>>;

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    decisions: Mutex<Counts>,
    buckets: [AtomicU64; BUCKETS_NS.len()],
    count: AtomicU64,
    sum_ns: AtomicU64,
    /// Shared with the [`CountingStore`] the policies count limits in.
    pub store_failures: std::sync::Arc<AtomicU64>,
    pub auth_failures: AtomicU64,
    pub requests: AtomicU64,
}

impl Metrics {
    /// Counters, the limit store's failures counted in `store_failures`
    /// (shared with its [`CountingStore`]).
    #[must_use]
    pub fn with_store_failures(store_failures: std::sync::Arc<AtomicU64>) -> Metrics {
        Metrics {
            store_failures,
            ..Metrics::default()
        }
    }

    /// Counts one decision and the time it took.
    pub fn decision(
        &self,
        outcome: &'static str,
        policy: Option<&str>,
        rule: Option<&str>,
        ns: u64,
    ) {
        {
            let mut m = match self.decisions.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            let policies = m.entry(outcome).or_default();
            let (policy, rule) = (policy.unwrap_or(""), rule.unwrap_or(""));
            if !policies.contains_key(policy) {
                policies.insert(policy.to_owned(), Map::default());
            }
            if let Some(rules) = policies.get_mut(policy) {
                if let Some(n) = rules.get_mut(rule) {
                    *n += 1;
                } else {
                    rules.insert(rule.to_owned(), 1);
                }
            }
        }
        // One count in the first bucket that holds `ns`; `render` sums
        // them into Prometheus's cumulative buckets. Past the last bound:
        // only `count` (the `+Inf` bucket).
        if let Some(b) = BUCKETS_NS
            .iter()
            .position(|&bound| ns <= bound)
            .and_then(|i| self.buckets.get(i))
        {
            b.fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
    }

    /// The Prometheus text exposition.
    #[must_use]
    pub fn render(&self, reloads: (u64, u64), audit: AuditCounts, revision: &str) -> String {
        let mut out = String::new();
        out.push_str("# HELP writ_decisions_total Decisions by outcome, policy and rule.\n");
        out.push_str("# TYPE writ_decisions_total counter\n");
        let mut rows: Vec<((&'static str, String, String), u64)> = {
            let m = match self.decisions.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            m.iter()
                .flat_map(|(outcome, policies)| {
                    policies.iter().flat_map(move |(policy, rules)| {
                        rules
                            .iter()
                            .map(move |(rule, n)| ((*outcome, policy.clone(), rule.clone()), *n))
                    })
                })
                .collect()
        };
        rows.sort();
        for ((outcome, policy, rule), n) in rows {
            let _ = writeln!(
                out,
                "writ_decisions_total{{outcome=\"{outcome}\",policy=\"{}\",rule=\"{}\"}} {n}",
                label(&policy),
                label(&rule)
            );
        }
        out.push_str(
            "# HELP writ_decision_seconds Time to decide a request (policy evaluation only).\n",
        );
        out.push_str("# TYPE writ_decision_seconds histogram\n");
        let mut cumulative = 0;
        for (b, &bound_ns) in self.buckets.iter().zip(&BUCKETS_NS) {
            let bound = seconds(bound_ns);
            cumulative += b.load(Relaxed);
            let _ = writeln!(
                out,
                "writ_decision_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "writ_decision_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "writ_decision_seconds_sum {}",
            self.sum_ns.load(Relaxed) as f64 / 1e9
        );
        let _ = writeln!(out, "writ_decision_seconds_count {count}");
        let counters = [
            (
                "writ_reloads_total",
                "Policy reloads that took effect.",
                reloads.0,
            ),
            (
                "writ_reload_failures_total",
                "Policy reloads refused (the last good policy kept serving).",
                reloads.1,
            ),
            (
                "writ_limit_store_failures_total",
                "Times the limit store could not be asked (counted whether the decision then denied or allowed).",
                self.store_failures.load(Relaxed),
            ),
            (
                "writ_auth_failures_total",
                "Requests refused for a missing, bad, expired or revoked token.",
                self.auth_failures.load(Relaxed),
            ),
            (
                "writ_http_requests_total",
                "HTTP requests answered.",
                self.requests.load(Relaxed),
            ),
            (
                "writ_audit_dropped_total",
                "Audit records dropped because the writer had stopped.",
                audit.dropped,
            ),
            (
                "writ_audit_pruned_records_total",
                "Audit records removed for being older than AUDIT_RETENTION_DAYS.",
                audit.pruned,
            ),
            (
                "writ_audit_prune_failures_total",
                "Audit prunes that failed (the records stayed).",
                audit.prune_failures,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP writ_policy_info The policy revision served.\n# TYPE writ_policy_info gauge\nwrit_policy_info{{revision=\"{}\"}} 1",
            label(revision)
        );
        out
    }
}

/// The audit log's counters, as `/metrics` shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuditCounts {
    /// Records dropped because the writer had stopped.
    pub dropped: u64,
    /// Records removed by retention.
    pub pruned: u64,
    /// Prunes that failed.
    pub prune_failures: u64,
}

/// A label value escaped for the text format.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_and_latencies_are_exposed() {
        let m = Metrics::default();
        m.decision("allow", Some("p"), Some("r\"1"), 800);
        m.decision("deny", None, None, 30_000_000);
        let text = m.render((2, 1), AuditCounts::default(), "abc");
        assert!(
            text.contains("writ_decisions_total{outcome=\"allow\",policy=\"p\",rule=\"r\\\"1\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("writ_decision_seconds_bucket{le=\"0.000001\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("writ_decision_seconds_bucket{le=\"+Inf\"} 2"),
            "{text}"
        );
        assert!(text.contains("writ_reload_failures_total 1"), "{text}");
    }

    /// Buckets are cumulative, as Prometheus reads them: a latency at a
    /// bound is in that bucket and every later one; the bounds print as
    /// written in seconds.
    #[test]
    fn the_histogram_is_cumulative_at_every_bound() {
        let labels = [
            "0.000001",
            "0.0000025",
            "0.000005",
            "0.00001",
            "0.000025",
            "0.00005",
            "0.0001",
            "0.00025",
            "0.0005",
            "0.001",
            "0.005",
            "0.025",
        ];
        let m = Metrics::default();
        let samples = [
            0,
            1_000,
            1_001,
            2_500,
            9_999,
            25_000_000,
            25_000_001,
            u64::MAX,
        ];
        for ns in samples {
            m.decision("allow", None, None, ns);
        }
        let text = m.render((0, 0), AuditCounts::default(), "abc");
        for (bound_ns, label) in BUCKETS_NS.iter().zip(labels) {
            let want = samples.iter().filter(|&&ns| ns <= *bound_ns).count();
            let row = format!("writ_decision_seconds_bucket{{le=\"{label}\"}} {want}\n");
            assert!(text.contains(&row), "{row} in {text}");
        }
        assert!(
            text.contains("writ_decision_seconds_bucket{le=\"+Inf\"} 8\n"),
            "{text}"
        );
    }

    #[test]
    fn the_same_decision_counts_up_and_others_apart() {
        let m = Metrics::default();
        for _ in 0..3 {
            m.decision("allow", Some("p"), Some("r"), 10);
        }
        m.decision("allow", Some("p"), Some("s"), 10);
        m.decision("deny", Some("p"), Some("r"), 10);
        m.decision("allow", None, Some("r"), 10);
        let text = m.render((0, 0), AuditCounts::default(), "abc");
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("writ_decisions_total{"))
            .collect();
        assert_eq!(
            rows,
            [
                "writ_decisions_total{outcome=\"allow\",policy=\"\",rule=\"r\"} 1",
                "writ_decisions_total{outcome=\"allow\",policy=\"p\",rule=\"r\"} 3",
                "writ_decisions_total{outcome=\"allow\",policy=\"p\",rule=\"s\"} 1",
                "writ_decisions_total{outcome=\"deny\",policy=\"p\",rule=\"r\"} 1",
            ],
            "{text}"
        );
    }
}

/// A limit store that counts the times it could not be asked (Redis
/// down, say), whatever the runtime then does (deny, or allow with
/// `--on-store-failure allow`).
#[derive(Debug)]
pub struct CountingStore {
    pub inner: std::sync::Arc<dyn writ_runtime::LimitStore>,
    pub failures: std::sync::Arc<AtomicU64>,
}

impl CountingStore {
    fn count<T>(
        &self,
        r: Result<T, writ_runtime::limiter::Refusal>,
    ) -> Result<T, writ_runtime::limiter::Refusal> {
        if let Err(writ_runtime::limiter::Refusal::Unavailable(_)) = &r {
            self.failures.fetch_add(1, Relaxed);
        }
        r
    }
}

impl writ_runtime::LimitStore for CountingStore {
    fn peek(
        &self,
        item: &writ_runtime::limiter::Acquire<'_>,
        now_ms: i64,
    ) -> Result<(), writ_runtime::limiter::Refusal> {
        self.count(self.inner.peek(item, now_ms))
    }

    fn acquire(
        &self,
        items: &[writ_runtime::limiter::Acquire<'_>],
        now_ms: i64,
    ) -> Result<(), writ_runtime::limiter::Refusal> {
        self.count(self.inner.acquire(items, now_ms))
    }
}
