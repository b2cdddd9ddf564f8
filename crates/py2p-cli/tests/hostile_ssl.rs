//! Hostile peers against our SSL node (`py2p mesh --encryption ssl`): TCP clients that never
//! speak, a ClientHello then silence, random bytes, a maximum-size TLS record of garbage,
//! alerts, a second ClientHello inside an established session, and 500 half-open TLS
//! connections. After each, an honest SSL peer still connects and talks, and memory stays
//! bounded. Waits are on events; nothing sleeps to synchronise.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use common::{peak_rss, Node};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

fn ssl_node(name: &str, extra: &[&str]) -> Node {
    let mut args = vec!["mesh", "--bind", "127.0.0.1:0", "--encryption", "ssl"];
    args.extend_from_slice(extra);
    Node::rust(name, &args)
}

/// An honest SSL node joins `target` and a broadcast goes through both ways.
fn honest_peer_is_served(target: &mut Node, tag: &str) {
    let mut h = ssl_node("honest", &["--connect", &target.addr.clone()]);
    target.wait_connected(&h);
    h.wait_connected(target);
    h.send(&format!("honest {tag}"));
    target.wait_message(&format!("honest {tag}"));
    target.send(&format!("answer {tag}"));
    h.wait_message(&format!("answer {tag}"));
    h.quit();
}

#[derive(Debug)]
struct Anything;

impl ServerCertVerifier for Anything {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn client() -> rustls::ClientConnection {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(Anything))
    .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    rustls::ClientConnection::new(Arc::new(config), name).unwrap()
}

/// The bytes of a real ClientHello.
fn client_hello() -> Vec<u8> {
    let mut c = client();
    let mut out = Vec::new();
    c.write_tls(&mut out).unwrap();
    assert_eq!(out[0], 0x16, "a handshake record");
    out
}

/// Waits until the node closed `stream` (EOF or reset).
fn expect_closed(stream: &mut TcpStream, what: &str) {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => continue, // an alert, the server's handshake
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!("{what}: the node did not close the connection within 30 s")
            }
            Err(_) => return,
        }
    }
}

#[test]
fn garbage_before_and_inside_tls_closes_one_connection_only() {
    let mut node = ssl_node("R", &[]);
    let addr = node.addr.clone();
    // A silent TCP client and a ClientHello then silence: held, they cost the node nothing.
    let _silent = TcpStream::connect(&addr).unwrap();
    let mut hello_only = TcpStream::connect(&addr).unwrap();
    hello_only.write_all(&client_hello()).unwrap();
    // Random bytes.
    let mut random = TcpStream::connect(&addr).unwrap();
    let noise: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    random.write_all(&noise).unwrap();
    expect_closed(&mut random, "random bytes");
    // A record header announcing the largest ciphertext (2^14 + 2048) and that much garbage.
    let mut big = TcpStream::connect(&addr).unwrap();
    let len: u16 = (1 << 14) + 2048;
    let mut record = vec![0x17, 0x03, 0x03];
    record.extend_from_slice(&len.to_be_bytes());
    record.extend(std::iter::repeat_n(0xA5, len as usize));
    let _ = big.write_all(&record);
    expect_closed(&mut big, "max-size garbage record");
    // Alerts before any handshake: a warning and a fatal one.
    for level in [1u8, 2u8] {
        let mut alert = TcpStream::connect(&addr).unwrap();
        let _ = alert.write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, level, 40]);
        expect_closed(&mut alert, "an alert");
    }
    honest_peer_is_served(&mut node, "after garbage");
    assert!(node.alive(), "the node survived");
    node.quit();
}

#[test]
fn a_second_client_hello_in_an_established_session_closes_it() {
    let mut node = ssl_node("R", &[]);
    let mut tcp = TcpStream::connect(&node.addr).unwrap();
    let mut c = client();
    // Complete the TLS handshake by hand.
    let mut stream = rustls::Stream::new(&mut c, &mut tcp);
    stream.flush().unwrap();
    let mut first = [0u8; 4];
    // The node's py2p handshake frame follows the TLS handshake at once.
    stream.read_exact(&mut first).unwrap();
    assert!(u32::from_be_bytes(first) > 0, "a py2p frame header");
    assert!(!c.is_handshaking());
    // A renegotiation attempt: a cleartext ClientHello inside the encrypted session.
    tcp.write_all(&client_hello()).unwrap();
    expect_closed(&mut tcp, "a second ClientHello");
    honest_peer_is_served(&mut node, "after renegotiation");
    node.quit();
}

#[test]
fn five_hundred_half_open_tls_connections_cost_little() {
    let mut node = ssl_node("R", &[]);
    let hello = client_hello();
    let mut held = Vec::new();
    for i in 0..500 {
        let mut s = TcpStream::connect(&node.addr).unwrap();
        // Half of them stop inside the ClientHello, half after it.
        let part = if i % 2 == 0 {
            &hello[..hello.len() / 2]
        } else {
            &hello[..]
        };
        s.write_all(part).unwrap();
        held.push(s);
    }
    honest_peer_is_served(&mut node, "beside 500 half-open");
    let rss = peak_rss(node.pid());
    assert!(rss > 0, "cannot read the node's peak RSS");
    eprintln!(
        "peak RSS with 500 half-open TLS connections: {:.1} MiB",
        rss as f64 / f64::from(1 << 20)
    );
    assert!(rss < 200 << 20, "peak RSS {rss} bytes");
    drop(held);
    node.quit();
}

#[test]
fn an_unknown_encryption_is_a_usage_error_naming_the_valid_ones() {
    for cmd in ["mesh", "sync", "demo"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_py2p"))
            .args([cmd, "--encryption", "Rot13"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("Plaintext") && err.contains("SSL"),
            "{cmd}: {err}"
        );
    }
}
