//! What a node knows of each connection, and the peer-list JSON of the `peers` message.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use py2p_net::ConnId;
use py2p_wire::Compression;
use serde_json::Value;

/// One connection, before and after its handshake.
#[derive(Debug)]
pub(crate) struct Peer {
    pub conn: ConnId,
    pub tcp_addr: SocketAddr,
    pub outgoing: bool,
    pub opened: Instant,
    /// The id from the handshake; `None` until it arrives.
    pub id: Option<String>,
    /// The address the peer advertises (its `out_addr`).
    pub addr: Option<(String, u16)>,
    /// The peer's compression list as it sent it.
    pub theirs: Vec<Compression>,
    /// Our methods the peer also lists, in our order: the first is used to send.
    pub compression: Vec<Compression>,
    /// The last whisper or broadcast payload sent, for `renegotiate resend`.
    /// Shared between the peers a broadcast went to, so remembering it costs no copy each.
    pub last_sent: Option<LastSent>,
    /// Frames that failed to decode in a row.
    pub decode_errors: u32,
    /// How many more broadcasts from this peer have their snappy head peeked at before the
    /// whole body is decompressed: set when a copy of a seen broadcast arrives, one less per
    /// broadcast that is not one (see `MeshCore::take_frame`).
    pub peek_credit: u8,
    /// When another connection to the same id was kept in favour of this one, which is then
    /// closed after `conflict_grace`: its end is not a departure.
    pub superseded: Option<Instant>,
    /// The TLS version of the connection in SSL mode.
    pub tls_version: Option<&'static str>,
}

/// The last user message sent to a peer, for `renegotiate resend`: the very message, sent
/// again as it is (same time, so the same id: a peer that got it already drops the copy as
/// seen, instead of its users getting it twice). Shared between the peers a broadcast went
/// to, and with the send itself: remembering it costs one reference count, no copy.
pub type LastSent = Arc<py2p_wire::Message>;

impl Peer {
    /// Boxed: the node's map of peers then holds a pointer per slot, not the record (over
    /// 200 bytes). A hash map keeps up to twice the slots it has entries (1,000 peers fill
    /// 2,048), so inline records cost the memory per idle connection about 0.2 KiB more.
    pub fn new(conn: ConnId, tcp_addr: SocketAddr, outgoing: bool, now: Instant) -> Box<Peer> {
        Box::new(Peer {
            conn,
            tcp_addr,
            outgoing,
            opened: now,
            id: None,
            addr: None,
            theirs: Vec::new(),
            compression: Vec::new(),
            last_sent: None,
            decode_errors: 0,
            peek_credit: 0,
            superseded: None,
            tls_version: None,
        })
    }

    /// How log lines name the peer: its id when known, else its connection.
    pub fn label(&self) -> String {
        match &self.id {
            Some(id) => format!("peer {id} at {}", self.tcp_addr),
            None => format!("{} from {}", self.conn, self.tcp_addr),
        }
    }
}

/// `["host", port]` as py2p writes an address in a handshake.
pub(crate) fn addr_json(host: &str, port: u16) -> String {
    format!("[{}, {port}]", Value::String(host.to_owned()))
}

/// Reads `["host", port]`.
pub(crate) fn parse_addr(v: &Value) -> Option<(String, u16)> {
    let pair = v.as_array()?;
    let host = pair.first()?.as_str()?.to_owned();
    let port = u16::try_from(pair.get(1)?.as_u64()?).ok()?;
    Some((host, port))
}

/// The `peers` list: `[[["host", port], "id"], ...]`, written straight into the text (a
/// tree of JSON values first was a handful of small allocations per entry, made and dropped
/// at every handshake).
pub(crate) fn peer_list_json<'a>(
    peers: impl Iterator<Item = (&'a str, &'a (String, u16))>,
) -> String {
    let mut out = b"[".to_vec();
    for (i, (id, (host, port))) in peers.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"[[");
        // Writing to a Vec cannot fail; serde_json escapes as py2p's reader expects.
        let _ = serde_json::to_writer(&mut out, host);
        let _ = write!(out, ",{port}],");
        let _ = serde_json::to_writer(&mut out, id);
        out.push(b']');
    }
    out.push(b']');
    // JSON made of strings is UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// Reads a `peers` list, skipping malformed entries; `None` when it is not a list at all.
pub(crate) fn parse_peer_list(text: &[u8]) -> Option<Vec<((String, u16), String)>> {
    let v: Value = serde_json::from_slice(text).ok()?;
    let entries = v.as_array()?;
    Some(
        entries
            .iter()
            .filter_map(|e| {
                let pair = e.as_array()?;
                let addr = parse_addr(pair.first()?)?;
                let id = pair.get(1)?.as_str()?.to_owned();
                Some((addr, id))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_forms() {
        assert_eq!(addr_json("127.0.0.1", 4444), r#"["127.0.0.1", 4444]"#);
        let addr = ("10.0.0.1".to_owned(), 5);
        let text = peer_list_json([("abc", &addr)].into_iter());
        assert_eq!(text, r#"[[["10.0.0.1",5],"abc"]]"#);
        assert_eq!(
            parse_peer_list(text.as_bytes()).unwrap(),
            vec![(addr, "abc".to_owned())]
        );
        // py2p's own spacing, and junk entries skipped.
        let py = br#"[[["127.0.0.1", 4444], "id1"], [1, 2], [["h", 70000], "x"]]"#;
        assert_eq!(
            parse_peer_list(py).unwrap(),
            vec![(("127.0.0.1".to_owned(), 4444), "id1".to_owned())]
        );
        assert!(parse_peer_list(b"{").is_none());
    }

    /// The list written straight is the text serde_json makes of the same values (escapes
    /// included), which py2p reads.
    #[test]
    fn the_written_peer_list_is_serde_jsons_text() {
        let a = ("h\"o\\st\u{e9}\n".to_owned(), 65535);
        let b = ("::1".to_owned(), 0);
        let entries = [("id\"1", &a), ("\u{1}2", &b)];
        let tree: Vec<Value> = entries
            .iter()
            .map(|(id, (host, port))| serde_json::json!([[host, port], id]))
            .collect();
        assert_eq!(
            peer_list_json(entries.into_iter()),
            Value::Array(tree).to_string()
        );
        assert_eq!(peer_list_json(std::iter::empty()), "[]");
    }
}
