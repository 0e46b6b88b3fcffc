//! `/metrics` in the Prometheus text format: requests by route and status with latencies,
//! upstream errors, cache hits, decisions by code, and audits (running, by verdict, durations).
//! Label values come from fixed sets (route names, status codes, decision and verdict codes),
//! never from request input, so a client cannot grow the series without bound.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CauseLabel {
    cause: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HowLabel {
    how: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabel {
    op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabel {
    verdict: &'static str,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to about 16 s: page hits sit at the low end, cold pages and downloads higher.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0005, 2.0, 16,
    ))
}

fn state_histogram() -> Histogram {
    // 0.1 ms to about 3 s: a query on the same machine or rack, up to a struggling server.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0001, 2.0, 15,
    ))
}

fn audit_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.005, 2.0, 14,
    ))
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabel, Histogram, fn() -> Histogram>,
    upstream_errors: Counter,
    cache_hits: Family<KindLabel, Counter>,
    cache_evictions: Family<KindLabel, Counter>,
    decisions: Family<CodeLabel, Counter>,
    audits_running: Gauge,
    audits: Family<VerdictLabel, Counter>,
    audit_seconds: Histogram,
    audits_queued: Family<CauseLabel, Gauge>,
    audits_by_cause: Family<CauseLabel, Counter>,
    audits_running_by_cause: Family<CauseLabel, Gauge>,
    upstream_bytes: Family<KindLabel, Counter>,
    state: StateMetrics,
    environments: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("pipwall");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabel, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let upstream_errors = Counter::default();
        let cache_hits = Family::<KindLabel, Counter>::default();
        let cache_evictions = Family::<KindLabel, Counter>::default();
        registry.register(
            "cache_evictions",
            "Entries dropped from a cache to keep it under its size, by kind",
            cache_evictions.clone(),
        );
        let decisions = Family::<CodeLabel, Counter>::default();
        let audits_running = Gauge::default();
        let audits = Family::<VerdictLabel, Counter>::default();
        let audit_seconds = audit_histogram();
        registry.register(
            "requests",
            "Requests answered, by route and status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time to answer a request, by route",
            latency.clone(),
        );
        registry.register(
            "upstream_errors",
            "Requests that failed because an upstream did",
            upstream_errors.clone(),
        );
        registry.register(
            "cache_hits",
            "Pages served without asking upstream, and files served from the cache",
            cache_hits.clone(),
        );
        registry.register(
            "decisions",
            "Files decided, by reason code",
            decisions.clone(),
        );
        registry.register(
            "audits_running",
            "Wheel audits in progress",
            audits_running.clone(),
        );
        registry.register(
            "audits",
            "Wheel audits finished, by verdict",
            audits.clone(),
        );
        registry.register(
            "audit_duration_seconds",
            "Time to download (when not cached) and audit one wheel",
            audit_seconds.clone(),
        );
        let audits_queued = Family::<CauseLabel, Gauge>::default();
        registry.register(
            "audits_queued",
            "Wheel audits waiting for a worker, by cause (waiting: a request waits for it; fleet: the policy's declared fleet can install it; background: an environment seen before can)",
            audits_queued.clone(),
        );
        let audits_by_cause = Family::<CauseLabel, Counter>::default();
        registry.register(
            "audits_started",
            "Wheel audits started, by cause",
            audits_by_cause.clone(),
        );
        let audits_running_by_cause = Family::<CauseLabel, Gauge>::default();
        registry.register(
            "audits_running_by_cause",
            "Wheel audits in progress (downloading or parsing), by cause",
            audits_running_by_cause.clone(),
        );
        let upstream_bytes = Family::<KindLabel, Counter>::default();
        registry.register(
            "upstream_bytes",
            "Bytes received from upstream, by kind (page, file)",
            upstream_bytes.clone(),
        );
        let environments = Gauge::default();
        registry.register(
            "environments_known",
            "Installer environments remembered (seen from clients' User-Agents)",
            environments.clone(),
        );
        let state = StateMetrics::register(&mut registry);
        Self {
            state,
            audits_queued,
            audits_by_cause,
            audits_running_by_cause,
            upstream_bytes,
            environments,
            registry,
            requests,
            latency,
            upstream_errors,
            cache_hits,
            cache_evictions,
            decisions,
            audits_running,
            audits,
            audit_seconds,
        }
    }

    pub fn request(&self, route: &'static str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels { route, status })
            .inc();
        self.latency
            .get_or_create(&RouteLabel { route })
            .observe(seconds);
    }

    pub fn upstream_error(&self) {
        self.upstream_errors.inc();
    }

    pub fn cache_hit(&self, kind: &'static str) {
        self.cache_hits.get_or_create(&KindLabel { kind }).inc();
    }

    pub fn cache_evicted(&self, kind: &'static str) {
        self.cache_evictions
            .get_or_create(&KindLabel { kind })
            .inc();
    }

    pub fn decision(&self, code: &'static str) {
        self.decisions.get_or_create(&CodeLabel { code }).inc();
    }

    /// Counts an audit as running until the returned guard is dropped.
    pub fn audit_started(&self) -> AuditGuard<'_> {
        self.audits_running.inc();
        AuditGuard {
            metrics: self,
            started: std::time::Instant::now(),
        }
    }

    pub fn audit_queued(&self, cause: &'static str, delta: i64) {
        self.audits_queued
            .get_or_create(&CauseLabel { cause })
            .inc_by(delta);
    }

    /// Counts an audit started for `cause`, and as running for it until `audit_cause_ended`.
    pub fn audit_cause(&self, cause: &'static str) {
        self.audits_by_cause
            .get_or_create(&CauseLabel { cause })
            .inc();
        self.audits_running_by_cause
            .get_or_create(&CauseLabel { cause })
            .inc();
    }

    pub fn audit_cause_ended(&self, cause: &'static str) {
        self.audits_running_by_cause
            .get_or_create(&CauseLabel { cause })
            .dec();
    }

    /// Counts bytes received from upstream (`kind`: `page` or `file`).
    pub fn upstream_bytes(&self, kind: &'static str, bytes: u64) {
        self.upstream_bytes
            .get_or_create(&KindLabel { kind })
            .inc_by(bytes);
    }

    pub fn environments_known(&self, n: usize) {
        self.environments.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Counts an audit resolved through the shared state (`how`: claimed, waited, taken-over,
    /// reused).
    pub fn cluster_audit(&self, how: &'static str) {
        self.state
            .cluster_audits
            .get_or_create(&HowLabel { how })
            .inc();
    }

    /// Records one shared-state operation's time, and whether it failed.
    pub fn state_op(&self, op: &'static str, seconds: f64, ok: bool) {
        self.state
            .seconds
            .get_or_create(&OpLabel { op })
            .observe(seconds);
        if !ok {
            self.state.errors.get_or_create(&OpLabel { op }).inc();
        }
        self.state.up.set(i64::from(ok));
    }

    pub fn audit_finished(&self, verdict: &'static str) {
        self.audits.get_or_create(&VerdictLabel { verdict }).inc();
    }

    /// The text exposition format (`text/plain; version=0.0.4` compatible OpenMetrics).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// What a replica's shared state does (`serve --state`).
struct StateMetrics {
    cluster_audits: Family<HowLabel, Counter>,
    seconds: Family<OpLabel, Histogram, fn() -> Histogram>,
    errors: Family<OpLabel, Counter>,
    up: Gauge,
}

impl StateMetrics {
    fn register(registry: &mut Registry) -> Self {
        let cluster_audits = Family::<HowLabel, Counter>::default();
        registry.register(
            "cluster_audits",
            "Wheel audits resolved through the shared state, by how (claimed: this replica audits it; waited: another replica's audit was waited for; taken-over: claimed after its owner's lease expired; reused: another replica's stored verdict)",
            cluster_audits.clone(),
        );
        let seconds =
            Family::<OpLabel, Histogram, fn() -> Histogram>::new_with_constructor(state_histogram);
        registry.register(
            "state_query_duration_seconds",
            "Time of each shared-state (PostgreSQL) operation, by operation",
            seconds.clone(),
        );
        let errors = Family::<OpLabel, Counter>::default();
        registry.register(
            "state_errors",
            "Shared-state operations that failed, by operation",
            errors.clone(),
        );
        let up = Gauge::default();
        registry.register(
            "state_up",
            "1 while the shared state answers (or none is configured), 0 while it does not",
            up.clone(),
        );
        up.set(1);
        Self {
            cluster_audits,
            seconds,
            errors,
            up,
        }
    }
}

pub struct AuditGuard<'a> {
    metrics: &'a Metrics,
    started: std::time::Instant,
}

impl Drop for AuditGuard<'_> {
    fn drop(&mut self) {
        self.metrics.audits_running.dec();
        self.metrics
            .audit_seconds
            .observe(self.started.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_what_was_counted() {
        let m = Metrics::new();
        m.request("project", 200, 0.002);
        m.request("project", 200, 0.004);
        m.decision("sdist-hidden");
        {
            let _g = m.audit_started();
            assert!(m.render().contains("pipwall_audits_running 1"));
        }
        m.audit_finished("pass");
        let text = m.render();
        assert!(
            text.contains(r#"pipwall_requests_total{route="project",status="200"} 2"#),
            "{text}"
        );
        assert!(text.contains(r#"pipwall_decisions_total{code="sdist-hidden"} 1"#));
        assert!(text.contains("pipwall_audits_running 0"));
        assert!(text.contains(r#"pipwall_audits_total{verdict="pass"} 1"#));
        assert!(text.contains("pipwall_request_duration_seconds_bucket"));
        assert!(text.ends_with("# EOF\n"));
    }
}
