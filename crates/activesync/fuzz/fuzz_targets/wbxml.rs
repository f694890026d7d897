//! WBXML bodies: decode, then what the gateway does with a decoded body, then re-encode.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = easgate_activesync::provision::read_request(data);
    if let Ok(doc) = easgate_activesync::decode(data) {
        let _ = easgate_activesync::device::device_information(doc.root());
        let _ = easgate_activesync::device::provision(doc.root());
        let tree = doc.to_element();
        let encoded = easgate_activesync::encode(&tree).expect("a decoded document encodes");
        assert_eq!(easgate_activesync::decode(&encoded).expect("our encoding decodes").to_element(), tree);
    }
});
