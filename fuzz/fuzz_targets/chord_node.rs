//! Fuzzes a real chord node (meta, notify, store, retrieve, retrieved, backup) under a
//! scripted peer in the simulator; the script, and the checks after it, are
//! `py2p_sim::chord_exercise::chord_node`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    py2p_sim::chord_exercise::chord_node(data);
});
