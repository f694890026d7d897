//! CSRs as `cert issue --csr` (PEM or DER) and SCEP read them.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = easgate_pki::csr::parse_and_verify(data);
    let _ = easgate_pki::csr::parse_and_verify_der(data);
});
