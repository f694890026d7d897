//! What the public listener answers from: per CA, its certificate, the latest full and delta
//! CRLs as signed bytes, the OCSP responder, and every certificate's revocation state — all in
//! memory, refreshed from the store's change feed. No request reaches the database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use axum::body::Bytes;
use easgate_ops::Easgate;
use easgate_pki::input::to_pem;
use easgate_pki::ocsp::{CertStatus, IssuerHashes, Responder};
use easgate_pki::revocation::RevocationReason;
use easgate_pki::Serial;
use easgate_store::{CertState, Crl, CrlScope};
use time::OffsetDateTime;

use crate::error::ServeError;

/// Revocation state of one certificate as the responder reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Known {
    pub revoked: Option<(OffsetDateTime, RevocationReason)>,
}

impl Known {
    pub fn from_state(state: &CertState) -> Self {
        Known {
            revoked: state.revoked_at.map(|at| {
                (
                    easgate_ops::time_fmt::from_unix(at),
                    state
                        .reason
                        .as_deref()
                        .and_then(|r| r.parse().ok())
                        .unwrap_or(RevocationReason::Unspecified),
                )
            }),
        }
    }

    pub fn status(&self) -> CertStatus {
        match self.revoked {
            Some((at, reason)) => CertStatus::Revoked { at, reason },
            None => CertStatus::Good,
        }
    }
}

/// A response signed without a nonce, reusable until `until`.
pub struct Presigned {
    pub der: Bytes,
    pub until: Instant,
}

/// Most pre-signed OCSP responses kept per CA before the cache starts over.
pub const PRESIGNED_MAX: usize = 100_000;

/// A published CRL as served: what the refresh job compares, and the signed bytes, shared
/// by every download rather than copied per request.
pub struct ServedCrl {
    pub number: i64,
    pub base_number: Option<i64>,
    pub this_update: i64,
    /// When relying parties stop trusting it (`/readyz` reports a CRL past it).
    pub next_update: i64,
    pub der: Bytes,
}

impl From<Crl> for ServedCrl {
    fn from(crl: Crl) -> Self {
        ServedCrl {
            number: crl.number,
            base_number: crl.base_number,
            this_update: crl.this_update,
            next_update: crl.next_update,
            der: Bytes::from(crl.der),
        }
    }
}

/// One CA's state.
pub struct CaState {
    pub name: String,
    pub cert_der: Bytes,
    pub cert_pem: Arc<String>,
    pub hashes: IssuerHashes,
    pub responder: RwLock<Arc<Responder>>,
    pub known: RwLock<HashMap<Serial, Known>>,
    pub full_crl: RwLock<Option<Arc<ServedCrl>>>,
    pub delta_crl: RwLock<Option<Arc<ServedCrl>>>,
    /// When a delta CRL must be made because of a revocation (none pending: `None`).
    pub delta_due: Mutex<Option<Instant>>,
    pub presigned: Mutex<HashMap<Vec<u8>, Presigned>>,
    /// The GetCACert answer: content type and body (the CA alone, or CA + RA as PKCS#7).
    pub scep_ca_cert: (&'static str, Bytes),
}

impl CaState {
    /// Load one CA: certificate, every certificate's state, latest CRLs, a fresh responder.
    pub async fn load(
        easgate: &Easgate,
        name: &str,
        responder_validity: time::Duration,
    ) -> Result<Self, ServeError> {
        let ca = easgate.get_ca(name).await?;
        let hashes = IssuerHashes::of(&ca.cert_der).map_err(easgate_ops::OpsError::from)?;
        let responder = easgate
            .issue_ocsp_responder(name, responder_validity)
            .await?;
        let states = easgate
            .store
            .certificate_states(name)
            .await
            .map_err(easgate_ops::OpsError::from)?;
        let mut known = HashMap::with_capacity(states.len());
        for state in &states {
            if let Ok(serial) = state.serial.parse::<Serial>() {
                known.insert(serial, Known::from_state(state));
            }
        }
        let scep = easgate.scep_certificates(name).await?;
        let scep_ca_cert = match &scep.ra_der {
            Some(ra) => (
                "application/x-x509-ca-ra-cert",
                Bytes::from(easgate_scep::certs_only(&[&scep.ca_der, ra])),
            ),
            None => ("application/x-x509-ca-cert", Bytes::from(scep.ca_der)),
        };
        let full = easgate
            .store
            .latest_crl(name, CrlScope::Full)
            .await
            .map_err(easgate_ops::OpsError::from)?;
        let delta = easgate
            .store
            .latest_crl(name, CrlScope::Delta)
            .await
            .map_err(easgate_ops::OpsError::from)?;
        Ok(CaState {
            name: name.to_string(),
            cert_pem: Arc::new(to_pem("CERTIFICATE", &ca.cert_der)),
            cert_der: Bytes::from(ca.cert_der),
            hashes,
            responder: RwLock::new(Arc::new(responder)),
            known: RwLock::new(known),
            full_crl: RwLock::new(full.map(|c| Arc::new(c.into()))),
            delta_crl: RwLock::new(delta.map(|c| Arc::new(c.into()))),
            delta_due: Mutex::new(None),
            presigned: Mutex::new(HashMap::new()),
            scep_ca_cert,
        })
    }

    pub fn status_of(&self, serial: &Serial) -> CertStatus {
        match self.known.read() {
            Ok(known) => known
                .get(serial)
                .map(Known::status)
                .unwrap_or(CertStatus::Unknown),
            Err(_) => CertStatus::Unknown,
        }
    }

    pub fn responder(&self) -> Arc<Responder> {
        match self.responder.read() {
            Ok(r) => Arc::clone(&r),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub fn crl(&self, scope: CrlScope) -> Option<Arc<ServedCrl>> {
        let slot = match scope {
            CrlScope::Full => &self.full_crl,
            CrlScope::Delta => &self.delta_crl,
        };
        slot.read().ok().and_then(|c| c.clone())
    }

    /// Serve `crl` from now on, unless a newer one is already served.
    pub fn publish(&self, crl: Crl) {
        let slot = match crl.scope {
            CrlScope::Full => &self.full_crl,
            CrlScope::Delta => &self.delta_crl,
        };
        if let Ok(mut current) = slot.write() {
            if current.as_ref().is_none_or(|c| c.number < crl.number) {
                *current = Some(Arc::new(crl.into()));
            }
        }
    }

    pub fn forget_presigned(&self) {
        if let Ok(mut cache) = self.presigned.lock() {
            cache.clear();
        }
    }
}

/// Every CA's state, by name.
#[derive(Default)]
pub struct PkiState {
    pub cas: RwLock<HashMap<String, Arc<CaState>>>,
}

impl PkiState {
    pub fn get(&self, name: &str) -> Option<Arc<CaState>> {
        self.cas.read().ok()?.get(name).cloned()
    }

    pub fn all(&self) -> Vec<Arc<CaState>> {
        self.cas
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Stop serving a CA (removed from the store).
    pub fn remove(&self, name: &str) {
        if let Ok(mut map) = self.cas.write() {
            map.remove(name);
        }
    }

    pub fn insert(&self, state: CaState) {
        if let Ok(mut map) = self.cas.write() {
            map.insert(state.name.clone(), Arc::new(state));
        }
    }
}
