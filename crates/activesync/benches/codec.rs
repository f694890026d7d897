//! Criterion benchmarks: WBXML decode throughput (goal ≥ 200 MB/s on one core) and request-line
//! parsing rate (goal ≥ 2 M/s). `scripts/bench-activesync` runs them and compares decoding with
//! `wbxml2xml` on the same bytes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use easgate_activesync::{decode, encode, EasRequest};

fn wbxml(c: &mut Criterion) {
    let doc = easgate_activesync::sample::sync_response(1 << 20).expect("sample document");
    let bytes = encode(&doc).expect("encodes");
    assert!(bytes.len() >= 1 << 20);
    let mut group = c.benchmark_group("wbxml");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("decode 1 MB Sync response", |b| {
        b.iter(|| decode(std::hint::black_box(&bytes)).expect("decodes"))
    });
    group.bench_function("encode 1 MB Sync response", |b| {
        b.iter(|| encode(std::hint::black_box(&doc)).expect("encodes"))
    });
    group.finish();
}

fn query(c: &mut Criterion) {
    let mut raw = vec![141u8, 0, 0x09, 0x04, 16];
    raw.extend_from_slice(&[
        0x8D, 0xE7, 0x0F, 0x6A, 0x8F, 0xB4, 0x05, 0x38, 0x3C, 0x2B, 0xA4, 0xE9, 0x1D, 0x01, 0xA1,
        0x11,
    ]);
    raw.extend_from_slice(&[4, 0x59, 0x2B, 0x05, 0xEB, 6]);
    raw.extend_from_slice(b"iPhone");
    raw.extend_from_slice(&[8, 18]);
    raw.extend_from_slice(b"alice@corp.example");
    let base64 = base64::engine::general_purpose::STANDARD.encode(&raw);
    let plain = "Cmd=Sync&User=alice%40corp.example&DeviceId=ApplF17XK1ABC&DeviceType=iPhone";
    let headers = [
        ("MS-ASProtocolVersion", "16.1"),
        ("X-MS-PolicyKey", "1307199584"),
        ("User-Agent", "Apple-iPhone14C2/2104.96"),
    ];
    let mut group = c.benchmark_group("query");
    group.throughput(Throughput::Elements(1));
    group.bench_function("base64 request line", |b| {
        b.iter(|| EasRequest::parse(std::hint::black_box(&base64), headers).expect("parses"))
    });
    group.bench_function("plain request line", |b| {
        b.iter(|| EasRequest::parse(std::hint::black_box(plain), headers).expect("parses"))
    });
    group.finish();
}

criterion_group!(benches, wbxml, query);
criterion_main!(benches);
