//! Administrator-supplied text: DNs, templates, SAN templates, serials, master keys.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = easgate_pki::dn::split(text);
        let _ = easgate_pki::template::TemplateSpec::new(text, vec![]);
        let _ = text.parse::<easgate_pki::template::SanTemplate>();
        let _ = text.parse::<easgate_pki::Serial>();
        let _ = easgate_pki::sealed::MasterKey::from_text(text);
    }
});
