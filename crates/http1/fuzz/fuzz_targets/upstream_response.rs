//! What the gateway reads from the upstream mail server: a response head and its body, in any
//! framing, cut into reads of any size.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&first, wire)) = data.split_first() else {
        return;
    };
    let step = usize::from(first & 0x7f) + 1;
    let _ = easgate_http1::read_response(wire, step, first & 0x80 != 0);
});
