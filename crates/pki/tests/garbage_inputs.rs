//! Every parser that reads network or file input, fed thousands of mutated valid inputs: each
//! must return an error or a value, never panic. A stable-toolchain companion to the
//! coverage-guided targets in `fuzz/` (which need nightly to run).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use easgate_pki::ca::CertificateAuthority;
use easgate_pki::issue::{EndEntity, PublicUrls, Purpose, SubjectKey};
use easgate_pki::template::{LookupValues, TemplateSpec};
use easgate_pki::{doctor, KeyType, Serial};

/// An OCSP request made by `openssl ocsp -serial 0x0123456789ABCDEF -reqout` (SHA-1 CertID,
/// nonce).
const OCSP_REQUEST_HEX: &str = "306e306c304530433041300906052b0e03021a050004149aee248154636ec01bb496bb3ef57acd7bc6251404144cda0d159b5a527ebf41889e784128455e45960202080123456789abcdefa2233021301f06092b0601050507300102041204102671fe970a272c3c127ca0c2b115434e";

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A mutation of `seed`: flipped bits, changed bytes, truncation, insertion or duplication.
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(5) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] = rng.next() as u8;
            }
            2 => {
                let keep = rng.below(data.len() + 1);
                data.truncate(keep);
            }
            3 => {
                let i = rng.below(data.len() + 1);
                data.insert(i, rng.next() as u8);
            }
            _ if !data.is_empty() => {
                let start = rng.below(data.len());
                let end = (start + rng.below(16)).min(data.len());
                let piece = data[start..end].to_vec();
                let at = rng.below(data.len() + 1);
                data.splice(at..at, piece);
            }
            _ => {}
        }
    }
    data
}

fn samples() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let now = time::OffsetDateTime::now_utc();
    let ca = CertificateAuthority::create("CN=Fuzz CA", KeyType::EcP256, 30, now).unwrap();
    let key = KeyType::EcP256.generate().unwrap();
    let spec = TemplateSpec::new(
        "CN={DeviceUid}",
        vec![
            "upn:{UserPrincipalName}".parse().unwrap(),
            "email:{EmailAddress}".parse().unwrap(),
        ],
    )
    .unwrap();
    let rendered = spec
        .render(&LookupValues {
            device_uid: "d".into(),
            user_principal_name: "a@b.example".into(),
            email_address: "a@b.example".into(),
            platform: "ios".into(),
            ..Default::default()
        })
        .unwrap();
    let cert = ca
        .issue_end_entity(&EndEntity {
            purpose: Purpose::ClientAuth,
            serial: &Serial::random().unwrap(),
            template: &rendered,
            key: &SubjectKey::from_spki_der(&key.public_key_der()).unwrap(),
            now,
            validity_days: 10,
            urls: &PublicUrls::for_ca("http://x.example", "fuzz"),
        })
        .unwrap();
    // A CSR from rcgen for the same key.
    let params = rcgen::CertificateParams::new(vec!["x.example".to_string()]).unwrap();
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let csr = params.serialize_request(&pair).unwrap().der().to_vec();
    (cert, csr, ca.cert_der().to_vec())
}

#[test]
fn parsers_survive_mutated_input() {
    let (cert, csr, ca) = samples();
    let ocsp = hex::decode(OCSP_REQUEST_HEX).unwrap();
    assert!(easgate_pki::ocsp::parse_request(&ocsp).is_ok());
    assert!(easgate_pki::csr::parse_and_verify_der(&csr).is_ok());
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let now = time::OffsetDateTime::now_utc();
    for _ in 0..4000 {
        let _ = easgate_pki::ocsp::parse_request(&mutate(&ocsp, &mut rng));
        let _ = easgate_pki::csr::parse_and_verify(&mutate(&csr, &mut rng));
        let _ = easgate_pki::summary::summarize(&mutate(&cert, &mut rng));
        let _ = easgate_pki::ocsp::IssuerHashes::of(&mutate(&ca, &mut rng));
        let mutated = mutate(&cert, &mut rng);
        let cas = [doctor::CandidateCa {
            name: "fuzz",
            cert_der: &ca,
        }];
        let _ = doctor::examine(&mutated, &cas, None, now, |_, _| doctor::StoreStatus::Valid);
        let pem = easgate_pki::input::to_pem("CERTIFICATE", &cert);
        let _ = easgate_pki::input::pem_or_der(
            &mutate(pem.as_bytes(), &mut rng),
            &["CERTIFICATE"],
            "certificate",
        );
        let text =
            String::from_utf8_lossy(&mutate(b"CN={DeviceUid},O=Example\\, Inc.,C=DE", &mut rng))
                .to_string();
        let _ = easgate_pki::dn::split(&text);
        let _ = TemplateSpec::new(&text, vec![]);
        let _ = text.parse::<easgate_pki::template::SanTemplate>();
        let _ = text.parse::<Serial>();
        let _ = easgate_pki::sealed::MasterKey::from_text(&text);
    }
}

/// What the gateway reads: client certificates and trusted CAs' CRLs, real ones first, then
/// mutated ones.
#[test]
fn gateway_readers_accept_real_input_and_survive_mutations() {
    use easgate_pki::client_cert::read_client_certificate;
    use easgate_pki::crl::{CrlParams, CrlScope, RevokedEntry};
    use easgate_pki::crl_check::read_crl;
    use easgate_pki::revocation::RevocationReason;

    let now = time::OffsetDateTime::now_utc();
    let ca = CertificateAuthority::create("CN=Trusted MDM", KeyType::EcP256, 30, now).unwrap();
    let other = CertificateAuthority::create("CN=Other", KeyType::EcP256, 30, now).unwrap();
    let (cert, _, _) = samples();
    let read = read_client_certificate(&cert).unwrap();
    assert_eq!(read.upns, ["a@b.example"]);
    assert_eq!(read.emails, ["a@b.example"]);
    assert!(read.client_auth);

    let revoked = Serial::random().unwrap();
    let entries = [RevokedEntry {
        serial: revoked.clone(),
        revoked_at: now,
        reason: RevocationReason::KeyCompromise,
        invalidity_date: None,
    }];
    let params = |scope, number| CrlParams {
        number,
        scope,
        this_update: now,
        next_update: now + time::Duration::hours(1),
        entries: &entries,
        freshest_crl_url: None,
    };
    let full = ca.sign_crl(&params(CrlScope::Full, 7)).unwrap();
    let delta = ca
        .sign_crl(&params(CrlScope::Delta { base_number: 7 }, 8))
        .unwrap();
    let list = read_crl(&full, ca.cert_der()).unwrap();
    assert!(list.revoked.contains(&revoked));
    assert_eq!((list.number, list.delta_base), (Some(7), None));
    let list = read_crl(&delta, ca.cert_der()).unwrap();
    assert_eq!((list.number, list.delta_base), (Some(8), Some(7)));
    // Signed by someone else: refused.
    assert!(read_crl(&full, other.cert_der()).is_err());

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..4000 {
        let _ = read_client_certificate(&mutate(&cert, &mut rng));
        let _ = read_crl(&mutate(&full, &mut rng), ca.cert_der());
        let _ = read_crl(&mutate(&delta, &mut rng), ca.cert_der());
    }
}
