//! Request lines and headers as they arrive at the gateway.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let (query, agent) = text.split_once('\n').unwrap_or((text, ""));
        if let Ok(request) = easgate_activesync::EasRequest::parse(query, [("User-Agent", agent), ("X-MS-PolicyKey", agent)]) {
            let _ = request.user_name();
            let _ = easgate_activesync::classify(request.device_type.as_deref(), request.user_agent.as_deref());
        }
    }
});
