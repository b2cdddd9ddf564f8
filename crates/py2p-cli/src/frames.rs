//! `py2p decode` and `py2p encode`: frames as hex lines, messages as JSON lines.

use std::io::{self, BufRead, Write};

use py2p_wire::{Compression, Limits, Message};
use serde::{Deserialize, Serialize};

use crate::hex;

/// One decoded frame, as `py2p decode` prints it.
#[derive(Serialize)]
struct Decoded {
    msg_type: String,
    sender: String,
    id: String,
    time: u64,
    payload: Vec<String>,
}

/// One message to encode, as `py2p encode` reads it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToEncode {
    msg_type: String,
    sender: String,
    time: u64,
    payload: Vec<String>,
    #[serde(default)]
    compression: Option<String>,
}

fn decode_line(
    line: &str,
    compressions: &[Compression],
    limits: &Limits,
) -> Result<Decoded, String> {
    let frame = hex::decode(line)?;
    let msg = Message::decode_frame(&frame, compressions, limits).map_err(|e| e.to_string())?;
    Ok(Decoded {
        msg_type: hex::encode(msg.msg_type()),
        sender: hex::encode(msg.sender()),
        id: msg.id().to_owned(),
        time: msg.time(),
        payload: msg.payload().iter().map(hex::encode).collect(),
    })
}

fn encode_line(line: &str) -> Result<String, String> {
    let spec: ToEncode = serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
    let compression = spec
        .compression
        .as_deref()
        .map(str::parse::<Compression>)
        .transpose()
        .map_err(|e| e.to_string())?;
    let payload = spec
        .payload
        .iter()
        .map(|p| hex::decode(p))
        .collect::<Result<Vec<_>, _>>()?;
    let msg = Message::new(
        hex::decode(&spec.msg_type)?,
        hex::decode(&spec.sender)?,
        payload,
        spec.time,
    );
    Ok(hex::encode(&msg.encode(compression)))
}

fn error_json(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}

/// Reads hex frames line by line and prints one JSON object per line; returns how many
/// lines failed (each printed as `{"error": ...}`).
pub fn decode(
    input: impl BufRead,
    mut out: impl Write,
    compressions: &[Compression],
    limits: &Limits,
) -> io::Result<usize> {
    let mut failed = 0;
    for line in input.split(b'\n') {
        let line = line?;
        let line = String::from_utf8_lossy(&line);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        let text = match decode_line(line, compressions, limits) {
            Ok(decoded) => serde_json::to_string(&decoded).map_err(io::Error::other)?,
            Err(why) => {
                failed += 1;
                error_json(&why)
            }
        };
        writeln!(out, "{text}")?;
    }
    out.flush()?;
    Ok(failed)
}

/// Reads JSON messages line by line and prints each frame as a line of hex.
///
/// A line that cannot be encoded prints `{"error": ...}` in place of the frame; returns how
/// many did.
pub fn encode(input: impl BufRead, mut out: impl Write) -> io::Result<usize> {
    let mut failed = 0;
    for line in input.split(b'\n') {
        let line = line?;
        let line = String::from_utf8_lossy(&line);
        let text = match encode_line(line.trim_end()) {
            Ok(hex) => hex,
            Err(why) => {
                failed += 1;
                error_json(&why)
            }
        };
        writeln!(out, "{text}")?;
    }
    out.flush()?;
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_decode() {
        let input = concat!(
            r#"{"msg_type":"00","sender":"6162","time":58,"payload":["00","68656c6c6f"],"compression":null}"#,
            "\n",
            r#"{"msg_type":"02","sender":"","time":0,"payload":[],"compression":"bz2"}"#,
            "\n",
            r#"{"msg_type":"zz","sender":"","time":0,"payload":[]}"#,
            "\n"
        );
        let mut frames = Vec::new();
        assert_eq!(encode(input.as_bytes(), &mut frames).unwrap(), 1);
        let frames = String::from_utf8(frames).unwrap();
        let lines: Vec<&str> = frames.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[2].starts_with(r#"{"error":"#));

        let mut decoded = Vec::new();
        let hex_in = format!("{}\nnot hex\n{}\n", lines[0], lines[1]);
        let failed = decode(
            hex_in.as_bytes(),
            &mut decoded,
            &[Compression::Bz2],
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(failed, 1);
        let decoded: Vec<serde_json::Value> = String::from_utf8(decoded)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(decoded.len(), 3);
        assert_eq!(decoded[0]["sender"], "6162");
        assert_eq!(decoded[0]["time"], 58);
        assert_eq!(decoded[0]["payload"][1], "68656c6c6f");
        assert!(decoded[1]["error"].as_str().unwrap().contains("hex"));
        assert_eq!(decoded[2]["msg_type"], "02");
    }
}
