//! DER for the certificate extensions rcgen does not build itself: Authority Information
//! Access (OCSP + caIssuers) and FreshestCRL (where the delta CRL lives). Written with `yasna`,
//! the DER writer rcgen itself uses.

use rcgen::CustomExtension;
use yasna::models::ObjectIdentifier;
use yasna::Tag;

/// id-pe-authorityInfoAccess
pub const OID_AUTHORITY_INFO_ACCESS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
/// id-ce-freshestCRL
pub const OID_FRESHEST_CRL: &[u64] = &[2, 5, 29, 46];
const OID_AD_OCSP: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1];
const OID_AD_CA_ISSUERS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 2];
/// Microsoft's UPN otherName type.
pub const OID_MS_UPN: &[u64] = &[1, 3, 6, 1, 4, 1, 311, 20, 2, 3];

/// AuthorityInfoAccessSyntax with one OCSP and one caIssuers URL (non-critical).
pub fn authority_info_access(ocsp_url: &str, ca_issuers_url: &str) -> CustomExtension {
    let der = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            for (method, url) in [(OID_AD_OCSP, ocsp_url), (OID_AD_CA_ISSUERS, ca_issuers_url)] {
                w.next().write_sequence(|w| {
                    w.next().write_oid(&ObjectIdentifier::from_slice(method));
                    w.next()
                        .write_tagged_implicit(Tag::context(6), |w| w.write_ia5_string(url));
                });
            }
        })
    });
    CustomExtension::from_oid_content(OID_AUTHORITY_INFO_ACCESS, der)
}

/// FreshestCRL: one distribution point with one URI (non-critical, as RFC 5280 requires).
pub fn freshest_crl(url: &str) -> CustomExtension {
    let der = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_sequence(|w| {
                // distributionPoint [0] DistributionPointName (a CHOICE: explicit tag)
                w.next().write_tagged(Tag::context(0), |w| {
                    // fullName [0] IMPLICIT GeneralNames
                    w.write_tagged_implicit(Tag::context(0), |w| {
                        w.write_sequence(|w| {
                            w.next().write_tagged_implicit(Tag::context(6), |w| {
                                w.write_ia5_string(url)
                            });
                        })
                    });
                });
            });
        })
    });
    CustomExtension::from_oid_content(OID_FRESHEST_CRL, der)
}

/// OID of the Microsoft UPN otherName SAN, as x509-parser prints OIDs.
pub const UPN_OID: &str = "1.3.6.1.4.1.311.20.2.3";

/// Decode the value of a UPN otherName (`[0] EXPLICIT UTF8String`).
pub fn decode_upn_value(value: &[u8]) -> Option<String> {
    yasna::parse_der(value, |r| {
        r.read_tagged(Tag::context(0), |r| r.read_utf8string())
    })
    .ok()
}
