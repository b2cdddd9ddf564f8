//! Fuzzes every `Compression::decompress` with a small limit, and compress/decompress
//! round trips; the logic (and its checks) is `py2p_testkit::wire::decompress`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| py2p_testkit::wire::decompress(data));
