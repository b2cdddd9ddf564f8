//! Fuzzes `FrameDecoder` with arbitrary chunking, then `Message::decode_body` under every
//! compression set; the logic (and its checks) is `py2p_testkit::wire::frame_decoder`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| py2p_testkit::wire::frame_decoder(data));
