//! Prometheus metrics of the server, served as text on the admin listener's `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OcspLabels {
    /// good | revoked | unknown | malformed
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CrlLabels {
    pub ca: String,
    pub scope: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// allow | block | quarantine | refuse (identity, disabled user, bound certificate)
    pub action: &'static str,
    /// The rule's name, `override`, `default`, or the refusal's cause.
    pub matched: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TrustLabels {
    pub ca: String,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub ocsp_answers: Family<OcspLabels, Counter>,
    pub crls_published: Family<CrlLabels, Counter>,
    pub crl_number: Family<CrlLabels, Gauge>,
    pub change_revision: Gauge,
    pub job_failures: Counter,
    pub gateway_decisions: Family<DecisionLabels, Counter>,
    pub gateway_latency: Histogram,
    pub gateway_long_polls: Gauge,
    pub gateway_upstream_errors: Family<KindLabels, Counter>,
    pub gateway_cert_rejections: Family<KindLabels, Counter>,
    pub trusted_crl_failures: Family<TrustLabels, Counter>,
    /// 1 while a trusted CA's revocation state is unknown (its certificates fail closed).
    pub trusted_crl_unknown: Family<TrustLabels, Gauge>,
    /// Seconds since the in-memory state was last confirmed current with the store.
    pub store_snapshot_age: Gauge,
    /// 1 while this instance holds the CRL leader lease (makes and signs the CRLs).
    pub crl_leader: Gauge,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("easgate");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "public_requests",
            "Requests answered on the public PKI listener",
            requests.clone(),
        );
        let ocsp_answers = Family::<OcspLabels, Counter>::default();
        registry.register(
            "ocsp_answers",
            "Certificate statuses given by the OCSP responder",
            ocsp_answers.clone(),
        );
        let crls_published = Family::<CrlLabels, Counter>::default();
        registry.register(
            "crls_published",
            "CRLs signed and published",
            crls_published.clone(),
        );
        let crl_number = Family::<CrlLabels, Gauge>::default();
        registry.register("crl_number", "CRL number being served", crl_number.clone());
        let change_revision = Gauge::default();
        registry.register(
            "change_feed_revision",
            "Last store change applied",
            change_revision.clone(),
        );
        let job_failures = Counter::default();
        registry.register(
            "background_job_failures",
            "Failed CRL, responder or refresh jobs",
            job_failures.clone(),
        );
        let gateway_decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "gateway_decisions",
            "Gateway access decisions by action and what decided",
            gateway_decisions.clone(),
        );
        let gateway_latency = Histogram::new([
            0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.25, 1.0, 5.0, 30.0, 300.0, 3600.0,
        ]);
        registry.register(
            "gateway_request_seconds",
            "Gateway request time to the response head (long polls included)",
            gateway_latency.clone(),
        );
        let gateway_long_polls = Gauge::default();
        registry.register(
            "gateway_open_long_polls",
            "Ping and Sync requests waiting on the upstream",
            gateway_long_polls.clone(),
        );
        let gateway_upstream_errors = Family::<KindLabels, Counter>::default();
        registry.register(
            "gateway_upstream_errors",
            "Upstream failures by kind (connect, timeout, protocol, request, none)",
            gateway_upstream_errors.clone(),
        );
        let gateway_cert_rejections = Family::<KindLabels, Counter>::default();
        registry.register(
            "gateway_certificate_rejections",
            "Client certificates that failed a check, by check",
            gateway_cert_rejections.clone(),
        );
        let trusted_crl_failures = Family::<TrustLabels, Counter>::default();
        registry.register(
            "trusted_crl_fetch_failures",
            "Failed CRL fetches of trusted external CAs",
            trusted_crl_failures.clone(),
        );
        let trusted_crl_unknown = Family::<TrustLabels, Gauge>::default();
        registry.register(
            "trusted_crl_unknown",
            "1 while a trusted CA has no current CRL (its certificates are refused)",
            trusted_crl_unknown.clone(),
        );
        let store_snapshot_age = Gauge::default();
        registry.register(
            "store_snapshot_age_seconds",
            "Seconds since the in-memory state was last confirmed current with the store \
             (beyond --max-staleness, managed devices of our CAs are refused)",
            store_snapshot_age.clone(),
        );
        let crl_leader = Gauge::default();
        registry.register(
            "crl_leader",
            "1 while this instance holds the CRL leader lease and makes the CRLs",
            crl_leader.clone(),
        );
        Metrics {
            registry,
            store_snapshot_age,
            crl_leader,
            gateway_decisions,
            gateway_latency,
            gateway_long_polls,
            gateway_upstream_errors,
            gateway_cert_rejections,
            trusted_crl_failures,
            trusted_crl_unknown,
            requests,
            ocsp_answers,
            crls_published,
            crl_number,
            change_revision,
            job_failures,
        }
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
