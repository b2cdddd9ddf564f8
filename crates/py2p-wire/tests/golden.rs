//! Golden vectors made by py2p 0.5.607 itself (`interop/make_vectors.py`): every encoding this
//! crate produces or reads must agree with the reference byte for byte.

// A test target: a failed unwrap is a failed test (the deny lists are for library code).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::str::FromStr;

use num_bigint::BigUint;
use py2p_wire::{base58, compression, Compression, Limits, Message, Protocol, WireError};
use serde_json::Value;

fn golden() -> Value {
    let text = include_str!("data/golden.json");
    serde_json::from_str(text).expect("golden.json parses")
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn list<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} is a list"))
}

#[test]
fn base58_integers() {
    let g = golden();
    let cases = list(&g, "base58");
    assert!(cases.len() > 30);
    for case in cases {
        let n = BigUint::from_str(case["int"].as_str().unwrap()).unwrap();
        let text = case["text"].as_str().unwrap();
        assert_eq!(base58::encode_be_bytes(&n.to_bytes_be()), text);
        assert_eq!(
            BigUint::from_bytes_be(&base58::decode_be_bytes(text).unwrap()),
            n
        );
        if let Ok(small) = u64::try_from(&n) {
            assert_eq!(base58::encode_u64(small), text);
            assert_eq!(base58::decode_u64(text).unwrap(), small);
        } else {
            assert_eq!(base58::decode_u64(text), Err(WireError::Base58Overflow));
        }
    }
}

#[test]
fn base58_digests_with_leading_zero_bytes() {
    let g = golden();
    let cases = list(&g, "base58_bytes");
    let leading_zero = cases
        .iter()
        .filter(|c| c["hex"].as_str().unwrap().starts_with("00"))
        .count();
    assert!(
        leading_zero >= 4,
        "vectors cover digests with leading zero bytes"
    );
    for case in cases {
        let bytes = hex(case["hex"].as_str().unwrap());
        assert_eq!(
            base58::encode_be_bytes(&bytes),
            case["text"].as_str().unwrap()
        );
    }
}

#[test]
fn protocol_ids() {
    let g = golden();
    for case in list(&g, "protocols") {
        let p = Protocol::parse(
            case["subnet"].as_str().unwrap(),
            case["encryption"].as_str().unwrap(),
        )
        .unwrap();
        assert_eq!(p.id(), case["id"].as_str().unwrap(), "{p}");
    }
}

#[test]
fn compression_list_json() {
    let g = golden();
    let json = g["compression_json"].as_str().unwrap();
    assert_eq!(compression::to_json(&Compression::PREFERENCE), json);
    assert_eq!(
        compression::from_json(json).unwrap(),
        Compression::PREFERENCE.to_vec()
    );
}

fn message_of(case: &Value) -> Message {
    Message::new(
        hex(case["msg_type"].as_str().unwrap()),
        hex(case["sender"].as_str().unwrap()),
        case["payload"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| hex(p.as_str().unwrap()))
            .collect(),
        case["time"].as_u64().unwrap(),
    )
}

#[test]
fn uncompressed_frames_are_byte_identical() {
    let g = golden();
    let cases = list(&g, "messages");
    assert!(cases.len() >= 25);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let msg = message_of(case);
        assert_eq!(msg.id(), case["id"].as_str().unwrap(), "{name}");
        let frame = hex(case["frame"].as_str().unwrap());
        assert!(
            msg.encode(None) == frame,
            "{name}: frame differs from py2p's"
        );
        let back = Message::decode_frame(&frame, &[], &Limits::default()).unwrap();
        assert_eq!(back, msg, "{name}");
    }
}

#[test]
fn python_compressed_frames_decode() {
    let g = golden();
    for case in list(&g, "messages") {
        let name = case["name"].as_str().unwrap();
        let msg = message_of(case);
        let compressed = case["compressed"].as_object().unwrap();
        assert_eq!(compressed.len(), 5, "{name}: all five methods");
        for (method, frame) in compressed {
            let method: Compression = method.parse().unwrap();
            let frame = hex(frame.as_str().unwrap());
            // With just that method negotiated, and with all five in py2p's order.
            for methods in [&[method][..], &Compression::PREFERENCE[..]] {
                let back = Message::decode_frame(&frame, methods, &Limits::default())
                    .unwrap_or_else(|e| panic!("{name}/{method}: {e}"));
                assert_eq!(back, msg, "{name}/{method}");
            }
            // Our own compressed frames read back too (py2p reading them is the crosscheck).
            let ours = msg.encode(Some(method));
            assert_eq!(
                Message::decode_frame(&ours, &[method], &Limits::default()).unwrap(),
                msg
            );
        }
    }
}

/// Our snappy frames are py2p's byte for byte (python-snappy and `snap` make the same
/// stream): py2p 0.5.607's own suite asserts it of any implementation
/// (`test_InternalMessage`: a message's compressed `string` equals `base.compress` of its
/// plain frame), which the bindings step runs against `py2p_rs`. A valid but different
/// encoding (one that stored the head packets as a literal of their own) failed it.
#[test]
fn snappy_frames_are_byte_identical() {
    let g = golden();
    for case in list(&g, "messages") {
        let name = case["name"].as_str().unwrap();
        let msg = message_of(case);
        let theirs = hex(case["compressed"]["snappy"].as_str().unwrap());
        assert_eq!(msg.encode(Some(Compression::Snappy)), theirs, "{name}");
    }
}

#[test]
fn frames_py2p_rejects_are_rejected() {
    let g = golden();
    let cases = list(&g, "bad_frames");
    assert!(cases.len() >= 10);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let frame = hex(case["frame"].as_str().unwrap());
        for methods in [&[][..], &Compression::PREFERENCE[..]] {
            let result = Message::decode_frame(&frame, methods, &Limits::default());
            assert!(
                result.is_err(),
                "{name}: accepted a frame py2p rejects ({})",
                case["why"]
            );
        }
    }
}
