//! Certificates as `cert doctor`, `trust add` and the OCSP issuer hashing read them.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = easgate_pki::summary::summarize(data);
    let _ = easgate_pki::ocsp::IssuerHashes::of(data);
    let _ = easgate_pki::doctor::examine(data, &[], None, time::OffsetDateTime::UNIX_EPOCH, |_, _| {
        easgate_pki::doctor::StoreStatus::Unknown
    });
});
