//! Certificate revocation lists (RFC 5280 §5): full CRLs and delta CRLs.
//!
//! Encoded here with `yasna` (the DER writer rcgen uses) rather than with rcgen's CRL builder:
//! that builder has no DeltaCRLIndicator and no way to add extensions, and a CRL of a million
//! entries must be built in well under a second — this writer emits each entry directly.

use time::OffsetDateTime;
use yasna::models::{GeneralizedTime, ObjectIdentifier};
use yasna::{DERWriter, Tag};

use crate::ca::CertificateAuthority;
use crate::der_writing::write_time;
use crate::revocation::RevocationReason;
use crate::{PkiError, Serial};

const OID_AUTHORITY_KEY_IDENTIFIER: &[u64] = &[2, 5, 29, 35];
const OID_CRL_NUMBER: &[u64] = &[2, 5, 29, 20];
const OID_DELTA_CRL_INDICATOR: &[u64] = &[2, 5, 29, 27];
const OID_FRESHEST_CRL: &[u64] = &[2, 5, 29, 46];
const OID_REASON_CODE: &[u64] = &[2, 5, 29, 21];
const OID_INVALIDITY_DATE: &[u64] = &[2, 5, 29, 24];

/// One revoked certificate.
#[derive(Clone, Debug)]
pub struct RevokedEntry {
    pub serial: Serial,
    pub revoked_at: OffsetDateTime,
    pub reason: RevocationReason,
    /// When the key is known or suspected to have been compromised, if known.
    pub invalidity_date: Option<OffsetDateTime>,
}

/// Full CRL, or delta CRL relative to a base CRL number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrlScope {
    Full,
    Delta { base_number: u64 },
}

/// What one CRL says.
pub struct CrlParams<'a> {
    /// CRLNumber: increasing over every CRL of this CA, full and delta alike.
    pub number: u64,
    pub scope: CrlScope,
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
    pub entries: &'a [RevokedEntry],
    /// For a full CRL: where the delta CRL is (FreshestCRL extension).
    pub freshest_crl_url: Option<&'a str>,
}

fn write_extension(w: DERWriter<'_>, oid: &[u64], critical: bool, value: Vec<u8>) {
    w.write_sequence(|w| {
        w.next().write_oid(&ObjectIdentifier::from_slice(oid));
        if critical {
            w.next().write_bool(true);
        }
        w.next().write_bytes(&value);
    });
}

fn write_entry(w: DERWriter<'_>, entry: &RevokedEntry) {
    w.write_sequence(|w| {
        w.next().write_bigint_bytes(entry.serial.as_bytes(), true);
        write_time(w.next(), entry.revoked_at);
        // RFC 5280 §5.3.1: the reason code unspecified SHOULD be absent.
        let reason = (entry.reason != RevocationReason::Unspecified).then_some(entry.reason);
        if reason.is_some() || entry.invalidity_date.is_some() {
            w.next().write_sequence(|w| {
                if let Some(reason) = reason {
                    let value = yasna::construct_der(|w| w.write_enum(i64::from(reason.code())));
                    write_extension(w.next(), OID_REASON_CODE, false, value);
                }
                if let Some(date) = entry.invalidity_date {
                    let value = yasna::construct_der(|w| {
                        w.write_generalized_time(&GeneralizedTime::from_datetime(
                            date.replace_nanosecond(0).unwrap_or(date),
                        ))
                    });
                    write_extension(w.next(), OID_INVALIDITY_DATE, false, value);
                }
            });
        }
    });
}

impl CertificateAuthority {
    /// Build and sign a CRL. Entries are written in the order given.
    pub fn sign_crl(&self, p: &CrlParams<'_>) -> Result<Vec<u8>, PkiError> {
        if p.next_update <= p.this_update {
            return Err(PkiError::InvalidValidity(
                "a CRL's nextUpdate must follow its thisUpdate".into(),
            ));
        }
        let algorithm = self.signature_algorithm_der();
        let tbs = yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next().write_u8(1); // v2
                w.next().write_der(&algorithm);
                w.next().write_der(self.subject_der());
                write_time(w.next(), p.this_update);
                write_time(w.next(), p.next_update);
                if !p.entries.is_empty() {
                    w.next().write_sequence(|w| {
                        for entry in p.entries {
                            write_entry(w.next(), entry);
                        }
                    });
                }
                w.next().write_tagged(Tag::context(0), |w| {
                    w.write_sequence(|w| {
                        let aki = yasna::construct_der(|w| {
                            w.write_sequence(|w| {
                                w.next().write_tagged_implicit(Tag::context(0), |w| {
                                    w.write_bytes(self.key_id())
                                });
                            })
                        });
                        write_extension(w.next(), OID_AUTHORITY_KEY_IDENTIFIER, false, aki);
                        let number = yasna::construct_der(|w| w.write_u64(p.number));
                        write_extension(w.next(), OID_CRL_NUMBER, false, number);
                        if let CrlScope::Delta { base_number } = p.scope {
                            let base = yasna::construct_der(|w| w.write_u64(base_number));
                            write_extension(w.next(), OID_DELTA_CRL_INDICATOR, true, base);
                        }
                        if let (CrlScope::Full, Some(url)) = (p.scope, p.freshest_crl_url) {
                            let value = crate::extensions::freshest_crl(url);
                            write_extension(
                                w.next(),
                                OID_FRESHEST_CRL,
                                false,
                                value.content().to_vec(),
                            );
                        }
                    });
                });
            })
        });
        self.sign_structure(tbs)
    }
}
