//! Which CAs the gateway accepts device certificates from, and their revocation state.
//!
//! Anchors are our CAs (revocation: the live store state the change feed keeps in
//! [`crate::state::PkiState`]) and the admin-trusted external CAs (revocation: their full and
//! delta CRLs, fetched over HTTP by [`refresh_trusted_crls`], verified once on arrival, and
//! used no longer than their nextUpdate nor `--crl-max-age`). A trusted CA without a current
//! CRL fails closed unless `--danger-allow-unknown-revocation` is set.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use easgate_pki::crl_check::{read_crl, RevocationList};
use easgate_pki::Serial;
use easgate_store::TrustedCa;
use http_body_util::BodyExt;
use rustls::DistinguishedName;
use rustls_pki_types::{CertificateDer, TrustAnchor};
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use crate::metrics::TrustLabels;
use crate::App;

/// Where a verified chain ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnchorKind {
    /// One of our CAs, by name.
    Ours(String),
    /// A trusted external CA, by the name it was trusted under.
    Trusted(String),
}

/// One CA a client certificate may chain to.
pub struct Anchor {
    pub kind: AnchorKind,
    pub subject_der: Vec<u8>,
    pub spki_der: Vec<u8>,
}

/// The anchors in effect; replaced whole when CAs or trusted CAs change.
pub struct Anchors {
    pub list: Vec<Anchor>,
    pub webpki: Vec<TrustAnchor<'static>>,
    /// Subjects sent in the CertificateRequest, so devices pick the right certificate.
    pub hints: Vec<DistinguishedName>,
    /// Bumped on every rebuild: per-connection chain results are redone when it changes.
    pub generation: u64,
}

impl Anchors {
    pub fn build(certs: &[(AnchorKind, Vec<u8>)], generation: u64) -> Self {
        let mut list = Vec::new();
        let mut webpki = Vec::new();
        let mut hints = Vec::new();
        for (kind, der) in certs {
            let cert = CertificateDer::from(der.as_slice());
            match webpki::anchor_from_trusted_cert(&cert) {
                Ok(anchor) => {
                    let anchor = anchor.to_owned();
                    list.push(Anchor {
                        kind: kind.clone(),
                        subject_der: anchor.subject.as_ref().to_vec(),
                        spki_der: anchor.subject_public_key_info.as_ref().to_vec(),
                    });
                    hints.push(DistinguishedName::in_sequence(anchor.subject.as_ref()));
                    webpki.push(anchor);
                }
                Err(e) => {
                    warn!(anchor = ?kind, error = ?e, "CA certificate cannot be a trust anchor; ignored")
                }
            }
        }
        Anchors {
            list,
            webpki,
            hints,
            generation,
        }
    }

    pub fn find(&self, anchor: &TrustAnchor<'_>) -> Option<&AnchorKind> {
        self.list
            .iter()
            .find(|a| {
                a.subject_der == anchor.subject.as_ref()
                    && a.spki_der == anchor.subject_public_key_info.as_ref()
            })
            .map(|a| &a.kind)
    }
}

/// Revocation state of a trusted CA as last fetched.
#[derive(Default)]
pub struct TrustedRevocation {
    pub full: Option<RevocationList>,
    pub delta: Option<RevocationList>,
    /// Unix time after which this state may not be used (min of nextUpdate and fetch time +
    /// `--crl-max-age`); `None`: never fetched.
    pub usable_until: Option<i64>,
    pub last_error: Option<String>,
}

/// What a lookup says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Revocation {
    Good,
    Revoked,
    /// No current CRL; the string says why.
    Unknown(String),
}

impl TrustedRevocation {
    pub fn status(&self, serial: &Serial, now: i64) -> Revocation {
        let Some(full) = &self.full else {
            return Revocation::Unknown(
                self.last_error
                    .clone()
                    .unwrap_or_else(|| "no CRL fetched yet".into()),
            );
        };
        if self.usable_until.is_none_or(|until| now > until) {
            return Revocation::Unknown(format!(
                "the CRL has expired and could not be refreshed{}",
                self.last_error
                    .as_ref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ));
        }
        if let Some(delta) = &self.delta {
            if delta.revoked.contains(serial) {
                return Revocation::Revoked;
            }
            if delta.removed.contains(serial) {
                return Revocation::Good;
            }
        }
        if full.revoked.contains(serial) {
            Revocation::Revoked
        } else {
            Revocation::Good
        }
    }
}

/// Every trusted CA's revocation state, by name (foldhash: looked up on every request, keyed
/// by the admin's CA names only).
#[derive(Default)]
pub struct TrustedCrls {
    pub by_ca: RwLock<foldhash::HashMap<String, Arc<TrustedRevocation>>>,
}

impl TrustedCrls {
    pub fn status(&self, ca: &str, serial: &Serial, now: i64) -> Revocation {
        let state = self.by_ca.read().ok().and_then(|m| m.get(ca).cloned());
        match state {
            Some(s) => s.status(serial, now),
            None => Revocation::Unknown("no CRL fetched yet".into()),
        }
    }

    fn set(&self, ca: &str, state: TrustedRevocation) {
        if let Ok(mut map) = self.by_ca.write() {
            map.insert(ca.to_string(), Arc::new(state));
        }
    }

    fn get(&self, ca: &str) -> Option<Arc<TrustedRevocation>> {
        self.by_ca.read().ok().and_then(|m| m.get(ca).cloned())
    }

    fn retain(&self, names: &[String]) {
        if let Ok(mut map) = self.by_ca.write() {
            map.retain(|k, _| names.contains(k));
        }
    }
}

/// Largest CRL the gateway downloads.
const MAX_CRL_BYTES: usize = 256 * 1024 * 1024;
/// Longest retry pause after a failed fetch (shorter when `--crl-max-age` is).
const RETRY_AFTER: Duration = Duration::from_secs(10);

async fn fetch(app: &App, url: &str) -> Result<Vec<u8>, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
    let request = http::Request::get(uri)
        .header(http::header::USER_AGENT, "easgate")
        .body(crate::gateway::proxy::empty_body())
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(
        Duration::from_secs(30),
        app.gateway.http_client.request(request),
    )
    .await
    .map_err(|_| "timed out after 30 s".to_string())?
    .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    let limited = http_body_util::Limited::new(response.into_body(), MAX_CRL_BYTES);
    let body = tokio::time::timeout(Duration::from_secs(120), limited.collect())
        .await
        .map_err(|_| "download timed out".to_string())?
        .map_err(|e| format!("download failed: {e}"))?;
    Ok(body.to_bytes().to_vec())
}

/// Fetch and verify one trusted CA's CRLs; the new state, or why not.
async fn refresh_one(app: &App, ca: &TrustedCa) -> Result<TrustedRevocation, String> {
    let Some(url) = &ca.crl_url else {
        return Err("the CA was trusted without --crl-url".into());
    };
    let now = app.easgate.now().unix_timestamp();
    let full_bytes = fetch(app, url).await.map_err(|e| format!("{url}: {e}"))?;
    let full = read_crl(&full_bytes, &ca.cert_der).map_err(|e| format!("{url}: {e}"))?;
    if full.delta_base.is_some() {
        return Err(format!(
            "{url}: is a delta CRL; --crl-url must name the full CRL"
        ));
    }
    let max_age = i64::try_from(app.gateway.config.crl_max_age.as_secs()).unwrap_or(i64::MAX);
    let mut usable_until = now.saturating_add(max_age);
    match full.next_update {
        Some(next) if next < now => {
            return Err(format!(
                "{url}: the CRL expired (nextUpdate {next}) and no newer one is published"
            ))
        }
        Some(next) => usable_until = usable_until.min(next),
        None => {}
    }
    let delta = match &ca.delta_crl_url {
        Some(durl) => {
            let bytes = fetch(app, durl).await.map_err(|e| format!("{durl}: {e}"))?;
            let delta = read_crl(&bytes, &ca.cert_der).map_err(|e| format!("{durl}: {e}"))?;
            match (delta.delta_base, full.number) {
                (None, _) => return Err(format!("{durl}: not a delta CRL (no deltaCRLIndicator)")),
                (Some(base), Some(number)) if base > number => {
                    return Err(format!(
                        "{durl}: delta CRL needs base CRL {base}, the full CRL is number {number}"
                    ))
                }
                _ => {}
            }
            match delta.next_update {
                Some(next) if next < now => {
                    return Err(format!("{durl}: the delta CRL expired"));
                }
                Some(next) => usable_until = usable_until.min(next),
                None => {}
            }
            Some(delta)
        }
        None => None,
    };
    Ok(TrustedRevocation {
        full: Some(full),
        delta,
        usable_until: Some(usable_until),
        last_error: None,
    })
}

/// Keep every trusted CA's CRLs current until shutdown: fetch each when its state becomes
/// unusable (nextUpdate or max age) or the CA changed, retry failures every few seconds. The
/// list of trusted CAs is read from the store at start and again when the change feed reports
/// a trusted-CA change ([`crate::gateway::apply_change`]), not on every round.
pub async fn refresh_trusted_crls(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let mut cas: Option<Vec<TrustedCa>> = None;
    let mut next_try: HashMap<String, Instant> = HashMap::new();
    // Trusted CAs whose missing CRL has been reported in this outage (one error line when it
    // starts, one line when it ends, however many retries fail in between), and those whose
    // refresh fails while the previous CRL is still usable (one warning per failing streak).
    let mut reported: HashSet<String> = HashSet::new();
    let mut failing: HashSet<String> = HashSet::new();
    let retry_after = RETRY_AFTER.min(app.gateway.config.crl_max_age);
    loop {
        let changed = app.gateway.take_trust_changes();
        if cas.is_none() || !changed.is_empty() {
            match app.easgate.list_trusted_cas().await {
                Ok(list) => {
                    let names: Vec<String> = list.iter().map(|c| c.name.clone()).collect();
                    app.gateway.trusted_crls.retain(&names);
                    next_try.retain(|k, _| names.contains(k));
                    reported.retain(|k| names.contains(k));
                    failing.retain(|k| names.contains(k));
                    cas = Some(list);
                }
                Err(e) => warn!(error = %e, "cannot list trusted CAs; retrying"),
            }
        }
        let now_unix = app.easgate.now().unix_timestamp();
        for ca in cas.iter().flatten() {
            let current = app.gateway.trusted_crls.get(&ca.name);
            let labels = TrustLabels {
                ca: ca.name.clone(),
            };
            // A CRL that ran out while retries fail: say so at once, not at the next retry.
            if let Some(state) = &current {
                let unusable = state.usable_until.is_none_or(|until| now_unix > until);
                if unusable && reported.insert(ca.name.clone()) {
                    app.metrics
                        .trusted_crl_unknown
                        .get_or_create(&labels)
                        .set(1);
                    report_unknown(
                        &app,
                        &ca.name,
                        state.last_error.as_deref().unwrap_or("no CRL"),
                    );
                }
            }
            // Fetch a little before the state runs out so requests never see a gap.
            let due = current
                .as_ref()
                .is_none_or(|s| s.usable_until.is_none_or(|until| now_unix >= until - 1))
                || changed.contains(&ca.name);
            let waiting = next_try.get(&ca.name).is_some_and(|t| Instant::now() < *t);
            if !due || waiting {
                continue;
            }
            match refresh_one(&app, ca).await {
                Ok(state) => {
                    let entries = state.full.as_ref().map_or(0, |f| f.revoked.len());
                    info!(ca = %ca.name, revoked = entries, "trusted CA's CRL loaded");
                    app.gateway.trusted_crls.set(&ca.name, state);
                    app.metrics
                        .trusted_crl_unknown
                        .get_or_create(&labels)
                        .set(0);
                    next_try.remove(&ca.name);
                    failing.remove(&ca.name);
                    if reported.remove(&ca.name) {
                        warn!(ca = %ca.name, "trusted CA's CRL is current again: the outage is over, its certificates are checked against it");
                    }
                }
                Err(why) => {
                    app.metrics
                        .trusted_crl_failures
                        .get_or_create(&labels)
                        .inc();
                    let mut state = TrustedRevocation {
                        last_error: Some(why.clone()),
                        ..TrustedRevocation::default()
                    };
                    // Keep using the last CRL while it is still within its lifetime.
                    if let Some(old) = current.as_ref() {
                        if old.usable_until.is_some_and(|until| now_unix <= until) {
                            state.full = old.full.clone();
                            state.delta = old.delta.clone();
                            state.usable_until = old.usable_until;
                        }
                    }
                    if state.usable_until.is_none_or(|until| now_unix > until) {
                        app.metrics
                            .trusted_crl_unknown
                            .get_or_create(&labels)
                            .set(1);
                        if reported.insert(ca.name.clone()) {
                            report_unknown(&app, &ca.name, &why);
                        } else {
                            debug!(ca = %ca.name, error = %why, "trusted CA's CRL still cannot be fetched");
                        }
                    } else if failing.insert(ca.name.clone()) {
                        warn!(ca = %ca.name, error = %why, "cannot refresh trusted CA's CRL; the previous one is still valid");
                    } else {
                        debug!(ca = %ca.name, error = %why, "trusted CA's CRL still cannot be refreshed");
                    }
                    app.gateway.trusted_crls.set(&ca.name, state);
                    next_try.insert(ca.name.clone(), Instant::now() + retry_after);
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// The loud line for a trusted CA without a current CRL, once per outage.
fn report_unknown(app: &App, ca: &str, why: &str) {
    if app.gateway.config.allow_unknown_revocation {
        warn!(ca, error = why, "no current CRL for trusted CA; its certificates are ACCEPTED without a revocation check (--danger-allow-unknown-revocation)");
    } else {
        error!(
            ca,
            error = why,
            "no current CRL for trusted CA; its certificates are refused until one can be fetched"
        );
    }
}
