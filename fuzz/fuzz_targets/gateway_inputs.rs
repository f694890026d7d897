//! What the gateway reads from the network and from trusted CAs: client certificates (any
//! bytes a device sends in its TLS handshake) and CRLs fetched over HTTP.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = easgate_pki::client_cert::read_client_certificate(data);
    let _ = easgate_pki::crl_check::read_crl(data, data);
});
