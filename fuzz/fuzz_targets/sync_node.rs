//! Fuzzes a real sync-table node (the mesh handlers and `store`) under a scripted peer in
//! the simulator; the script, and the checks after it, are `py2p_sim::exercise::sync_node`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    py2p_sim::exercise::sync_node(data);
});
