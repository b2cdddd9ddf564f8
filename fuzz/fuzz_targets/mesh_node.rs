//! Fuzzes a real mesh node (handshake and every message handler) under a scripted peer in
//! the simulator; the script, and the checks after it, are `py2p_sim::exercise::mesh_node`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    py2p_sim::exercise::mesh_node(data);
});
