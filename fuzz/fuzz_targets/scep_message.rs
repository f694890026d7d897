//! PKIOperation bodies as they arrive on `/scep/{ca}`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(message) = easgate_scep::PkiMessage::parse(data) {
        let _ = easgate_scep::request::challenge_password(message.envelope());
    }
});
