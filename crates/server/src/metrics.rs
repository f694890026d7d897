//! Prometheus metrics of the server, served as text on the admin listener's `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
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

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub ocsp_answers: Family<OcspLabels, Counter>,
    pub crls_published: Family<CrlLabels, Counter>,
    pub crl_number: Family<CrlLabels, Gauge>,
    pub change_revision: Gauge,
    pub job_failures: Counter,
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
        Metrics {
            registry,
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
