//! `cert doctor`: explain, check by check, whether a certificate is fit for EAS certificate
//! authentication through easgate — in words a newcomer to PKI understands.

use std::fmt;

use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

use crate::extensions::{decode_upn_value, UPN_OID};
use crate::input::pem_or_der;
use crate::revocation::RevocationReason;
use crate::Serial;

/// The outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    /// Could not be checked because an earlier check failed.
    Skip,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "SKIP",
        })
    }
}

/// One line of the report.
#[derive(Clone, Debug)]
pub struct Check {
    /// Short stable identifier, e.g. `eku-client-auth`.
    pub id: &'static str,
    pub verdict: Verdict,
    pub detail: String,
}

/// A CA the certificate may chain to.
pub struct CandidateCa<'a> {
    pub name: &'a str,
    pub cert_der: &'a [u8],
}

/// What the store knows about the certificate's serial at the CA it chains to.
#[derive(Clone, Debug)]
pub enum StoreStatus {
    /// Not in the store: the CA key signed something easgate did not record.
    Unknown,
    Valid,
    Revoked {
        at: OffsetDateTime,
        reason: RevocationReason,
    },
}

/// The full report.
#[derive(Clone, Debug)]
pub struct Report {
    pub checks: Vec<Check>,
    /// Serial (if the certificate parsed) and the CA it chains to (if any): the caller looks the
    /// revocation state up with these and passes it to [`Report::revocation`].
    pub serial: Option<Serial>,
    pub chained_ca: Option<String>,
}

impl Report {
    /// Fit for EAS certificate authentication: every check passed.
    /// No check failed (a SKIP is a check that could not be made, not a failure).
    pub fn fit(&self) -> bool {
        self.failures() == 0
    }

    /// How many checks failed.
    pub fn failures(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .count()
    }

    /// Why the input is not a certificate at all, if it is not.
    pub fn unreadable(&self) -> Option<&str> {
        self.checks
            .first()
            .filter(|c| c.id == "parse" && c.verdict == Verdict::Fail)
            .map(|c| c.detail.as_str())
    }
}

fn check(id: &'static str, verdict: Verdict, detail: impl Into<String>) -> Check {
    Check {
        id,
        verdict,
        detail: detail.into(),
    }
}

fn pass_fail(ok: bool) -> Verdict {
    if ok {
        Verdict::Pass
    } else {
        Verdict::Fail
    }
}

/// The order of the report's lines.
const ORDER: [&str; 10] = [
    "parse",
    "chain",
    "validity",
    "revocation",
    "eku-client-auth",
    "key-usage",
    "san-email",
    "san-upn",
    "key-strength",
    "signature-algorithm",
];

/// Examine certificate `bytes` (PEM or DER) against `cas` at time `now`. The revocation line is
/// filled in from `status_of`, asked with the CA name and serial when the certificate chains.
pub fn examine(
    bytes: &[u8],
    cas: &[CandidateCa<'_>],
    expected_ca: Option<&str>,
    now: OffsetDateTime,
    status_of: impl FnOnce(&str, &Serial) -> StoreStatus,
) -> Report {
    let mut checks = Vec::new();
    let der = match pem_or_der(bytes, &["CERTIFICATE", "X509 CERTIFICATE"], "certificate") {
        Ok(der) => der,
        Err(e) => return unparsable(format!("{e}")),
    };
    let cert = match X509Certificate::from_der(&der) {
        Ok(([], cert)) => cert,
        Ok(_) => return unparsable("trailing bytes after the certificate".into()),
        Err(e) => return unparsable(format!("not an X.509 certificate: {e}")),
    };
    let serial = Serial::from_be_bytes(cert.raw_serial());
    checks.push(check(
        "parse",
        Verdict::Pass,
        format!(
            "X.509 v{} certificate, serial {serial}, subject `{}`",
            cert.version().0 + 1,
            cert.subject()
        ),
    ));

    if let Some(ca) = cas.iter().find(|ca| ca.cert_der == der.as_slice()) {
        return ca_certificate_report(&cert, ca.name, checks, serial, now);
    }
    let (chain, chained_ca) = chain_check(&cert, cas, expected_ca);
    checks.push(chain);
    checks.push(validity_check(&cert, now));
    checks.push(match &chained_ca {
        None => check(
            "revocation",
            Verdict::Skip,
            "not checked: revocation is known only for certificates of our own CAs",
        ),
        Some(ca) => match status_of(ca, &serial) {
            StoreStatus::Valid => check("revocation", Verdict::Pass, "not revoked"),
            StoreStatus::Revoked { at, reason } => check(
                "revocation",
                Verdict::Fail,
                format!(
                    "revoked on {} (reason: {reason}); the gateway refuses it — issue a new certificate for the device",
                    crate_time(at)
                ),
            ),
            StoreStatus::Unknown => check(
                "revocation",
                Verdict::Fail,
                format!("CA `{ca}` signed it but easgate has no record of serial {serial}: it was not issued through easgate (the CA key may be in use elsewhere)"),
            ),
        },
    });
    checks.push(eku_check(&cert));
    checks.push(key_usage_check(&cert));
    let (email, upn) = san_checks(&cert, chained_ca.is_some());
    checks.push(email);
    checks.push(upn);
    checks.push(key_strength_check(&cert));
    checks.push(signature_algorithm_check(&cert));
    checks.sort_by_key(|c| ORDER.iter().position(|id| *id == c.id));
    Report {
        checks,
        serial: Some(serial),
        chained_ca,
    }
}

/// The report on one of easgate's own CA certificates: no alarm about its revocation (a CA is
/// not in its own CRL) and no device checks, one clear line that it is not a device certificate.
fn ca_certificate_report(
    cert: &X509Certificate<'_>,
    ca: &str,
    mut checks: Vec<Check>,
    serial: Serial,
    now: OffsetDateTime,
) -> Report {
    let not_device = "not checked: a CA certificate, not a device certificate";
    checks.push(check(
        "chain",
        Verdict::Pass,
        format!("this is the certificate of easgate's CA `{ca}` itself"),
    ));
    checks.push(validity_check(cert, now));
    checks.push(check(
        "revocation",
        Verdict::Skip,
        "not checked: a CA certificate is not listed in its own CRL",
    ));
    checks.push(check("eku-client-auth", Verdict::Skip, not_device));
    checks.push(check(
        "key-usage",
        Verdict::Fail,
        format!("this is CA `{ca}`'s own certificate, not a device certificate: check a device's certificate (`easgate cert list`, then the file `cert issue` wrote)"),
    ));
    checks.push(check("san-email", Verdict::Skip, not_device));
    checks.push(check("san-upn", Verdict::Skip, not_device));
    checks.push(key_strength_check(cert));
    checks.push(signature_algorithm_check(cert));
    Report {
        checks,
        serial: Some(serial),
        chained_ca: Some(ca.to_string()),
    }
}

fn unparsable(why: String) -> Report {
    let mut checks = vec![check("parse", Verdict::Fail, why)];
    for id in &ORDER[1..] {
        checks.push(check(
            id,
            Verdict::Skip,
            "not checked: the certificate could not be read",
        ));
    }
    Report {
        checks,
        serial: None,
        chained_ca: None,
    }
}

fn crate_time(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn chain_check(
    cert: &X509Certificate<'_>,
    cas: &[CandidateCa<'_>],
    expected_ca: Option<&str>,
) -> (Check, Option<String>) {
    let names: Vec<&str> = cas.iter().map(|c| c.name).collect();
    let scope = match expected_ca {
        Some(name) => format!("CA `{name}`"),
        None => format!(
            "one of easgate's CAs ({})",
            if names.is_empty() {
                "none exist yet".to_string()
            } else {
                names.join(", ")
            }
        ),
    };
    for ca in cas {
        let Ok((_, ca_cert)) = X509Certificate::from_der(ca.cert_der) else {
            continue;
        };
        if ca_cert.subject().as_raw() != cert.issuer().as_raw() {
            continue;
        }
        return match cert.verify_signature(Some(ca_cert.public_key())) {
            Ok(()) => (
                check("chain", Verdict::Pass, format!("issued and signed by CA `{}` ({})", ca.name, ca_cert.subject())),
                Some(ca.name.to_string()),
            ),
            Err(_) => (
                check(
                    "chain",
                    Verdict::Fail,
                    format!(
                        "the issuer name matches CA `{}` but its signature does not verify: the certificate was altered, or made by another key under the same name",
                        ca.name
                    ),
                ),
                None,
            ),
        };
    }
    (
        check(
            "chain",
            Verdict::Fail,
            format!(
                "issuer `{}` is not {scope}: the gateway only accepts device certificates from CAs it trusts",
                cert.issuer()
            ),
        ),
        None,
    )
}

fn validity_check(cert: &X509Certificate<'_>, now: OffsetDateTime) -> Check {
    let v = cert.validity();
    let (nb, na) = (v.not_before.to_datetime(), v.not_after.to_datetime());
    if now < nb {
        check(
            "validity",
            Verdict::Fail,
            format!(
                "not valid yet: valid from {} (check the clock of whoever issued it)",
                crate_time(nb)
            ),
        )
    } else if now > na {
        let days = (now - na).whole_days();
        check(
            "validity",
            Verdict::Fail,
            format!(
                "expired on {} ({days} days ago): the device needs a renewed certificate",
                crate_time(na)
            ),
        )
    } else {
        check(
            "validity",
            Verdict::Pass,
            format!(
                "valid from {} until {} ({} days left)",
                crate_time(nb),
                crate_time(na),
                (na - now).whole_days()
            ),
        )
    }
}

fn eku_check(cert: &X509Certificate<'_>) -> Check {
    match cert.extended_key_usage() {
        Ok(Some(eku)) if eku.value.client_auth => {
            check("eku-client-auth", Verdict::Pass, "extendedKeyUsage includes clientAuth")
        }
        Ok(Some(eku)) => {
            let mut present = Vec::new();
            if eku.value.server_auth {
                present.push("serverAuth".to_string());
            }
            if eku.value.email_protection {
                present.push("emailProtection".to_string());
            }
            if eku.value.code_signing {
                present.push("codeSigning".to_string());
            }
            present.extend(eku.value.other.iter().map(|o| o.to_id_string()));
            check(
                "eku-client-auth",
                Verdict::Fail,
                format!(
                    "extendedKeyUsage lacks clientAuth (has: {}); a certificate used to log in to mail must allow client authentication (1.3.6.1.5.5.7.3.2)",
                    if present.is_empty() { "nothing".to_string() } else { present.join(", ") }
                ),
            )
        }
        Ok(None) => check(
            "eku-client-auth",
            Verdict::Fail,
            "no extendedKeyUsage extension: iOS, Entra and the gateway expect clientAuth (1.3.6.1.5.5.7.3.2) to be stated",
        ),
        Err(e) => check("eku-client-auth", Verdict::Fail, format!("extendedKeyUsage is malformed: {e}")),
    }
}

fn key_usage_check(cert: &X509Certificate<'_>) -> Check {
    if cert.is_ca() {
        return check(
            "key-usage",
            Verdict::Fail,
            "this is a CA certificate (basicConstraints CA:true), not a device certificate",
        );
    }
    match cert.key_usage() {
        Ok(Some(ku)) if ku.value.digital_signature() => {
            let mut uses = vec!["digitalSignature"];
            if ku.value.key_encipherment() {
                uses.push("keyEncipherment");
            }
            check("key-usage", Verdict::Pass, format!("keyUsage {} fits TLS client authentication", uses.join(", ")))
        }
        Ok(Some(_)) => check(
            "key-usage",
            Verdict::Fail,
            "keyUsage lacks digitalSignature: the device signs the TLS handshake with this key and must be allowed to",
        ),
        Ok(None) => check("key-usage", Verdict::Pass, "no keyUsage extension: any key use is allowed"),
        Err(e) => check("key-usage", Verdict::Fail, format!("keyUsage is malformed: {e}")),
    }
}

/// The SAN lines. `ours`: the certificate comes from a CA of ours, so the advice is about
/// easgate's template; for another CA's certificate it is about that CA.
fn san_checks(cert: &X509Certificate<'_>, ours: bool) -> (Check, Check) {
    let fix = |template: &str| {
        if ours {
            format!("add `--san {template}` to the template")
        } else {
            "the CA that issued it must include one".to_string()
        }
    };
    let mut emails = Vec::new();
    let mut upns = Vec::new();
    let mut malformed = None;
    match cert.subject_alternative_name() {
        Ok(Some(san)) => {
            for name in &san.value.general_names {
                match name {
                    GeneralName::RFC822Name(e) => emails.push(e.to_string()),
                    GeneralName::OtherName(oid, value) if oid.to_id_string() == UPN_OID => {
                        match decode_upn_value(value) {
                            Some(upn) => upns.push(upn),
                            None => malformed = Some("a UPN otherName is not a UTF8String"),
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(None) => {}
        Err(_) => malformed = Some("subjectAltName is malformed"),
    }
    let email = if !emails.is_empty() {
        check(
            "san-email",
            Verdict::Pass,
            format!("email SAN {}", emails.join(", ")),
        )
    } else {
        check(
            "san-email",
            Verdict::Fail,
            format!(
                "no email (rfc822Name) SAN: Exchange and Entra find the mailbox by it; {}",
                fix("email:{EmailAddress}")
            ),
        )
    };
    let upn = match (upns.is_empty(), malformed) {
        (false, _) => check("san-upn", Verdict::Pass, format!("UPN SAN {}", upns.join(", "))),
        (true, Some(why)) => check("san-upn", Verdict::Fail, why),
        (true, None) => check(
            "san-upn",
            Verdict::Fail,
            format!(
                "no UPN SAN (otherName 1.3.6.1.4.1.311.20.2.3): the gateway and Entra map the certificate to the user by it; {}",
                fix("upn:{UserPrincipalName}")
            ),
        ),
    };
    (email, upn)
}

fn key_strength_check(cert: &X509Certificate<'_>) -> Check {
    let spki = cert.public_key();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => {
            let bits = rsa.key_size();
            if bits >= 2048 {
                check("key-strength", Verdict::Pass, format!("RSA-{bits} key"))
            } else {
                check(
                    "key-strength",
                    Verdict::Fail,
                    format!("RSA-{bits} key is too weak: use at least RSA-2048"),
                )
            }
        }
        Ok(PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .unwrap_or_default();
            match curve.as_str() {
                "1.2.840.10045.3.1.7" => check("key-strength", Verdict::Pass, "EC P-256 key"),
                "1.3.132.0.34" => check("key-strength", Verdict::Pass, "EC P-384 key"),
                "1.3.132.0.35" => check("key-strength", Verdict::Pass, "EC P-521 key"),
                other => check(
                    "key-strength",
                    Verdict::Fail,
                    format!(
                        "EC key on curve {other}: devices and the gateway support P-256 or P-384"
                    ),
                ),
            }
        }
        Ok(_) => check(
            "key-strength",
            Verdict::Fail,
            format!(
                "public key algorithm {} is not RSA or EC",
                spki.algorithm.algorithm
            ),
        ),
        Err(e) => check(
            "key-strength",
            Verdict::Fail,
            format!("public key is unreadable: {e}"),
        ),
    }
}

fn signature_algorithm_check(cert: &X509Certificate<'_>) -> Check {
    let oid = cert.signature_algorithm.algorithm.to_id_string();
    let name = match oid.as_str() {
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "RSASSA-PSS",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        other => other,
    };
    let weak = matches!(
        oid.as_str(),
        "1.2.840.113549.1.1.5" | "1.2.840.10045.4.1" | "1.2.840.113549.1.1.4"
    );
    check(
        "signature-algorithm",
        pass_fail(!weak),
        if weak {
            format!("signed with {name}: SHA-1 and MD5 signatures are broken and refused by current clients; reissue with SHA-256")
        } else {
            format!("signed with {name}")
        },
    )
}
