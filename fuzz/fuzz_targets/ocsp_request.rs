//! OCSP request bodies as they arrive on `/ocsp/{ca}`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = easgate_pki::ocsp::parse_request(data);
});
