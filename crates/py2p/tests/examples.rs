//! The examples run as tests (`cargo test` builds and runs them here; `cargo run --example`
//! runs them by hand). The tokio one needs the `tokio` feature, which `cargo xtask test` sets.

// A test target: a failed unwrap is a failed test (the deny lists are for library code).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[path = "../examples/chat.rs"]
mod chat;
#[path = "../examples/chord_store.rs"]
mod chord_store;
#[path = "../examples/config_store.rs"]
mod config_store;
#[path = "../examples/request_response.rs"]
mod request_response;
#[cfg(feature = "tokio")]
#[path = "../examples/tokio_node.rs"]
mod tokio_node;

#[test]
fn chat_runs() {
    chat::main().unwrap();
}

#[test]
fn request_response_runs() {
    request_response::main().unwrap();
}

#[test]
fn config_store_runs() {
    config_store::main().unwrap();
}

#[test]
fn chord_store_runs() {
    chord_store::main().unwrap();
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_node_runs() {
    tokio_node::main().unwrap();
}
