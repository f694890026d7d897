//! Is the client certificate of this request good, and whose is it?
//!
//! The chain is verified once per connection with webpki against the anchors in effect (no
//! CRLs: webpki's CRL support cannot use delta CRLs and would re-verify the CRL signature on
//! every handshake); validity and revocation are checked on every request, from memory.

use std::sync::Arc;

use easgate_pki::client_cert::{read_client_certificate, ClientCertificate};
use easgate_pki::ocsp::CertStatus;
use rustls_pki_types::{CertificateDer, UnixTime};
use webpki::{EndEntityCert, KeyUsage};

use crate::gateway::config::IdentitySource;
use crate::gateway::trust::{AnchorKind, Anchors, Revocation};
use crate::App;

/// A certificate that passed the chain check: where it chains to, what it says.
#[derive(Clone, Debug)]
pub struct Chained {
    pub anchor: AnchorKind,
    pub cert: ClientCertificate,
    /// The serial number in hex, as partnerships and logs show it.
    pub serial_hex: String,
    /// The user the certificate names (UPN or email, by the configured order).
    pub identity: String,
}

/// Why a certificate does not make the device managed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    Missing,
    Malformed(String),
    Untrusted(String),
    NotClientAuth,
    NoIdentity,
    Expired,
    NotYetValid,
    Revoked,
    RevocationUnknown(String),
    /// The store has been unreachable beyond `--max-staleness`: a revocation made through
    /// another instance may be missing from memory, so our CAs' certificates are refused.
    StoreUnreachable {
        seconds: u64,
    },
}

impl Rejection {
    /// Metric label and short log word.
    pub fn kind(&self) -> &'static str {
        match self {
            Rejection::Missing => "missing",
            Rejection::Malformed(_) => "malformed",
            Rejection::Untrusted(_) => "untrusted",
            Rejection::NotClientAuth => "no-client-auth-eku",
            Rejection::NoIdentity => "no-identity",
            Rejection::Expired => "expired",
            Rejection::NotYetValid => "not-yet-valid",
            Rejection::Revoked => "revoked",
            Rejection::RevocationUnknown(_) => "revocation-unknown",
            Rejection::StoreUnreachable { .. } => "store-unreachable",
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::Missing => f.write_str("no client certificate"),
            Rejection::Malformed(why) => write!(f, "client certificate unreadable: {why}"),
            Rejection::Untrusted(why) => write!(
                f,
                "client certificate does not chain to a CA of ours or a trusted CA: {why}"
            ),
            Rejection::NotClientAuth => {
                f.write_str("client certificate lacks extended key usage clientAuth")
            }
            Rejection::NoIdentity => {
                f.write_str("client certificate names no user (no UPN or email SAN)")
            }
            Rejection::Expired => f.write_str("client certificate has expired"),
            Rejection::NotYetValid => f.write_str("client certificate is not valid yet"),
            Rejection::Revoked => f.write_str("client certificate is revoked"),
            Rejection::StoreUnreachable { seconds } => write!(
                f,
                "revocation state is not current: the database has been unreachable for \
                 {seconds} s, beyond --max-staleness"
            ),
            Rejection::RevocationUnknown(why) => write!(
                f,
                "revocation state of the client certificate is unknown: {why}"
            ),
        }
    }
}

/// Verify the chain of a connection's certificates (leaf first).
pub fn check_chain(
    certs: &[CertificateDer<'static>],
    anchors: &Anchors,
    order: &[IdentitySource],
    now: UnixTime,
) -> Result<Chained, Rejection> {
    let Some(leaf) = certs.first() else {
        return Err(Rejection::Missing);
    };
    let parsed = read_client_certificate(leaf).map_err(|e| Rejection::Malformed(e.to_string()))?;
    let end_entity =
        EndEntityCert::try_from(leaf).map_err(|e| Rejection::Malformed(format!("{e:?}")))?;
    let algs = rustls::crypto::aws_lc_rs::default_provider()
        .signature_verification_algorithms
        .all;
    let path = end_entity
        .verify_for_usage(
            algs,
            &anchors.webpki,
            &certs[1..],
            now,
            KeyUsage::client_auth(),
            None,
            None,
        )
        .map_err(|e| match e {
            webpki::Error::CertExpired { .. } => Rejection::Expired,
            webpki::Error::CertNotValidYet { .. } => Rejection::NotYetValid,
            webpki::Error::UnknownIssuer => Rejection::Untrusted("unknown issuer".into()),
            other => Rejection::Untrusted(format!("{other:?}")),
        })?;
    if !parsed.client_auth {
        return Err(Rejection::NotClientAuth);
    }
    let anchor = anchors
        .find(path.anchor())
        .cloned()
        .ok_or_else(|| Rejection::Untrusted("anchor not found".into()))?;
    let identity = order
        .iter()
        .find_map(|source| match source {
            IdentitySource::Upn => parsed.upns.first(),
            IdentitySource::Email => parsed.emails.first(),
        })
        .cloned()
        .ok_or(Rejection::NoIdentity)?;
    Ok(Chained {
        anchor,
        serial_hex: parsed.serial.to_hex(),
        cert: parsed,
        identity,
    })
}

/// The per-request checks on a chained certificate: validity now, revocation now.
pub fn check_now(app: &App, chained: &Chained, now: i64) -> Result<(), Rejection> {
    if now > chained.cert.not_after {
        return Err(Rejection::Expired);
    }
    if now < chained.cert.not_before {
        return Err(Rejection::NotYetValid);
    }
    match &chained.anchor {
        AnchorKind::Ours(ca) => {
            if app.freshness.check_stale() {
                return Err(Rejection::StoreUnreachable {
                    seconds: app.freshness.age().as_secs(),
                });
            }
            let status = app
                .pki
                .get(ca)
                .map(|state| state.status_of(&chained.cert.serial))
                .unwrap_or(CertStatus::Unknown);
            match status {
                CertStatus::Good => Ok(()),
                CertStatus::Revoked { .. } => Err(Rejection::Revoked),
                CertStatus::Unknown => Err(Rejection::RevocationUnknown(format!(
                    "CA `{ca}` has no record of serial {}",
                    chained.cert.serial
                ))),
            }
        }
        AnchorKind::Trusted(name) => {
            match app
                .gateway
                .trusted_crls
                .status(name, &chained.cert.serial, now)
            {
                Revocation::Good => Ok(()),
                Revocation::Revoked => Err(Rejection::Revoked),
                Revocation::Unknown(_) if app.gateway.config.allow_unknown_revocation => Ok(()),
                Revocation::Unknown(why) => Err(Rejection::RevocationUnknown(format!(
                    "trusted CA `{name}`: {why}"
                ))),
            }
        }
    }
}

type ChainResult = Result<Arc<Chained>, Rejection>;

/// A connection's certificates and its cached chain result.
pub struct ConnectionCertificate {
    pub certs: Option<Arc<Vec<CertificateDer<'static>>>>,
    cached: std::sync::Mutex<Option<(u64, ChainResult)>>,
}

impl ConnectionCertificate {
    pub fn new(certs: Option<Vec<CertificateDer<'static>>>) -> Self {
        ConnectionCertificate {
            certs: certs.filter(|c| !c.is_empty()).map(Arc::new),
            cached: std::sync::Mutex::new(None),
        }
    }

    /// The serial number of the presented leaf certificate, if it can be read (for a
    /// certificate that failed a check: is it the one bound to the device?).
    pub fn leaf_serial(&self) -> Option<easgate_pki::Serial> {
        let leaf = self.certs.as_ref()?.first()?;
        read_client_certificate(leaf).ok().map(|c| c.serial)
    }

    /// The chain result under the anchors in effect (computed once per anchor generation).
    pub fn chained(&self, app: &App, now: UnixTime) -> Result<Arc<Chained>, Rejection> {
        let Some(certs) = &self.certs else {
            return Err(Rejection::Missing);
        };
        let anchors = app.gateway.anchors();
        if let Ok(cached) = self.cached.lock() {
            if let Some((generation, result)) = cached.as_ref() {
                if *generation == anchors.generation {
                    return result.clone();
                }
            }
        }
        let result =
            check_chain(certs, &anchors, &app.gateway.config.identity_order, now).map(Arc::new);
        if let Ok(mut cached) = self.cached.lock() {
            *cached = Some((anchors.generation, result.clone()));
        }
        result
    }
}
