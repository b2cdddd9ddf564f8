//! `py2p mesh`, `py2p sync` and `py2p chord`: one node, driven by lines on stdin, reporting JSON lines on
//! stdout.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;

use py2p::{
    ChordConfig, ChordSocket, Compression, Encryption, MeshConfig, MeshSocket, Message, PeerEvent,
    SyncEvent, SyncSocket,
};
use serde_json::{json, Value};

mod stdin;
use self::stdin::Flow;

/// What the node was started as.
pub enum Kind {
    /// A plain mesh node.
    Mesh,
    /// A sync-table node; `leasing` as py2p's `sync_socket`.
    Sync {
        /// Whether leases are enforced.
        leasing: bool,
    },
    /// A chord node.
    Chord {
        /// Whether it joins the ring once it has a peer.
        join: bool,
        /// How long a `/get` waits.
        get_timeout: std::time::Duration,
    },
}

/// Options shared by `mesh` and `sync`.
pub struct NodeOptions {
    pub bind: SocketAddr,
    pub connect: Vec<String>,
    pub subnet: String,
    pub out_addr: Option<(String, u16)>,
    pub compressions: Option<Vec<Compression>>,
    pub encryption: Encryption,
    /// SSL: PEM certificate and key files to serve.
    pub tls_files: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

enum Node {
    Mesh(MeshSocket),
    Sync(SyncSocket),
    Chord(ChordSocket, std::time::Duration),
}

impl Node {
    fn mesh(&self) -> &MeshSocket {
        match self {
            Node::Mesh(m) => m,
            Node::Sync(s) => s.mesh(),
            Node::Chord(c, _) => c.mesh(),
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Appends `s` as a JSON string, escaped exactly as serde_json escapes it (`"`, `\\` and
/// the control characters; everything else, non-ASCII included, as is), so that the message
/// lines are byte for byte what a `serde_json::Value` printed before.
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    push_json_chars(out, s);
    out.push(b'"');
}

/// Appends the text of `b` as a JSON string: `push_json_str` of `String::from_utf8_lossy(b)`,
/// in one pass over the usual text (ASCII that needs no escaping, found 32 bytes at a time)
/// instead of a UTF-8 check and then an escape scan.
fn push_json_bytes(out: &mut Vec<u8>, b: &[u8]) {
    let i = plain_len(b);
    if i == b.len() {
        // All of it plain ASCII (the usual text): no UTF-8 check, no escape scan.
        out.push(b'"');
        out.extend_from_slice(b);
        out.push(b'"');
        return;
    }
    let (plain, rest) = b.split_at(i);
    match std::str::from_utf8(rest) {
        Ok(rest) => {
            out.push(b'"');
            out.extend_from_slice(plain);
            push_json_chars(out, rest);
            out.push(b'"');
        }
        // `plain` is ASCII: the whole is invalid.
        Err(_) => push_json_str(out, &String::from_utf8_lossy(b)),
    }
}

/// How many bytes at the start of `b` JSON writes as they are: ASCII other than the
/// control characters, `"` and `\\`. Whole chunks are tested, the last one overlapping
/// the one before it; only a chunk with such a byte is searched byte by byte.
fn plain_len(b: &[u8]) -> usize {
    let mut i = 0;
    while let Some(chunk) = b.get(i..).and_then(<[u8]>::first_chunk) {
        if !chunk_is_plain(chunk) {
            break;
        }
        i += PLAIN_CHUNK;
    }
    if i == b.len() {
        return i;
    }
    if i + PLAIN_CHUNK > b.len() {
        // The tail, as the last whole chunk (if `b` has one).
        if b.last_chunk().is_some_and(chunk_is_plain) {
            return b.len();
        }
    }
    let rest = b.get(i..).unwrap_or_default();
    i + rest
        .iter()
        .position(|&c| needs_care(c))
        .unwrap_or(rest.len())
}

/// Bytes [`plain_len`] tests at once.
const PLAIN_CHUNK: usize = 32;

/// Whether none of the bytes of `chunk` needs care: one OR of every lane's test, without a
/// branch, which the compiler turns into vector compares and one mask test. (The earlier
/// fold into 16 bytes read as a `u128` came out byte by byte under the release profile's
/// LTO: the printing thread's instructions per line 1,450 -> 2,230, callgrind.)
#[inline(never)]
fn chunk_is_plain(chunk: &[u8; PLAIN_CHUNK]) -> bool {
    !chunk.iter().fold(false, |any, &c| any | needs_care(c))
}

/// Whether JSON cannot write `c` as it is: not ASCII (read as signed, 0x80 and up are
/// negative), a control character, `"` or `\\`.
fn needs_care(c: u8) -> bool {
    ((c as i8) < 0x20) | (c == b'"') | (c == b'\\')
}

/// Eight bytes as a little-endian word.
fn le_word(word: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(word);
    u64::from_le_bytes(w)
}

/// The characters of `s` escaped as serde_json escapes them, without the quotes.
fn push_json_chars(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Eight bytes at a time while none needs escaping (the usual text).
        if let Some(word) = bytes.get(i..i + 8) {
            if !word_needs_escape(le_word(word)) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => &[],
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        i += 1;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Whether any of the eight bytes of `w` is a control character, `"` or `\\`.
fn word_needs_escape(w: u64) -> bool {
    escape_bits(w) & 0x8080_8080_8080_8080 != 0
}

/// `w` with the high bit set of each byte that is a control character, `"` or `\\` (other
/// bits are noise: mask with `0x80..80`): the has-less-than and has-zero-byte word tricks,
/// exact as a yes/no for the word, OR'd without a branch.
fn escape_bits(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let quote = w ^ (ONES * u64::from(b'"'));
    let backslash = w ^ (ONES * u64::from(b'\\'));
    (w.wrapping_sub(ONES * 0x20) & !w)
        | (quote.wrapping_sub(ONES) & !quote)
        | (backslash.wrapping_sub(ONES) & !backslash)
}

/// Appends the `message` line of `m` (with its newline): the keys in the order the line
/// has always had, written straight into `out` (the hot path of the CLI: no
/// `serde_json::Value`, no `String` per field).
fn push_message_line(out: &mut Vec<u8>, cache: &mut LineCache, m: &Message) {
    // The id is base-58, checked on arrival: ASCII, written as `id()` would be, without
    // `id()`'s UTF-8 check (an eighth of this thread's instructions). Anything else is
    // written as `id()` gives it.
    let id = m.wire().id_bytes();
    let id = if id.is_ascii() { id } else { m.id().as_bytes() };
    cache.push(
        out,
        MessageFields {
            kind: m.kind().as_str(),
            sub_flag: m.sub_flag(),
            sender: m.wire().sender(),
            id,
            time: m.time(),
            packets: m.packets(),
        },
    );
}

/// What a `message` line shows.
struct MessageFields<'a> {
    kind: &'a str,
    sub_flag: Option<u8>,
    sender: &'a [u8],
    id: &'a [u8],
    time: u64,
    packets: py2p::Payload<'a>,
}

/// The text of the parts of `message` lines that repeat from one line to the next: the
/// head up to the id (kind, sub-flag and sender: the same for every message of one sender)
/// and the time (the same for a second). A line copies them instead of writing them again.
#[derive(Default)]
struct LineCache {
    /// The kind, sub-flag and sender `head` shows.
    kind: String,
    sub_flag: Option<u8>,
    sender: Vec<u8>,
    /// `{"event":"message","kind":…,"sub_flag":…,"sender":…,"id":`; empty until made.
    head: Vec<u8>,
    /// The time `time_text` shows.
    time: Option<u64>,
    /// `,"time":…,"packets":[`.
    time_text: Vec<u8>,
}

impl LineCache {
    /// Appends the `message` line of `m` (with its newline).
    fn push(&mut self, out: &mut Vec<u8>, m: MessageFields<'_>) {
        let mut digits = [0u8; 20];
        if self.head.is_empty()
            || self.sender != m.sender
            || self.sub_flag != m.sub_flag
            || self.kind != m.kind
        {
            let head = &mut self.head;
            head.clear();
            head.extend_from_slice(b"{\"event\":\"message\",\"kind\":");
            push_json_str(head, m.kind);
            head.extend_from_slice(b",\"sub_flag\":");
            match m.sub_flag {
                Some(f) => head.extend_from_slice(decimal(u64::from(f), &mut digits)),
                None => head.extend_from_slice(b"null"),
            }
            head.extend_from_slice(b",\"sender\":");
            push_json_bytes(head, m.sender);
            head.extend_from_slice(b",\"id\":");
            m.kind.clone_into(&mut self.kind);
            self.sub_flag = m.sub_flag;
            m.sender.clone_into(&mut self.sender);
        }
        if self.time != Some(m.time) {
            let text = &mut self.time_text;
            text.clear();
            text.extend_from_slice(b",\"time\":");
            text.extend_from_slice(decimal(m.time, &mut digits));
            text.extend_from_slice(b",\"packets\":[");
            self.time = Some(m.time);
        }
        out.extend_from_slice(&self.head);
        push_json_bytes(out, m.id);
        out.extend_from_slice(&self.time_text);
        for (i, p) in m.packets.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_json_bytes(out, p);
        }
        out.extend_from_slice(b"]}\n");
    }
}

/// `n` in decimal, in the tail of `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

fn sync_event_json(e: &SyncEvent) -> Value {
    match e {
        SyncEvent::Stored { key, value, owner } => {
            json!({"event": "stored", "key": text(key), "value": text(value), "owner": owner})
        }
        SyncEvent::Deleted { key } => json!({"event": "deleted", "key": text(key)}),
    }
}

fn error_json(message: impl std::fmt::Display) -> Value {
    json!({"event": "error", "message": message.to_string()})
}

/// Prints `bytes` (whole lines) to stdout in one locked write, so that lines of different
/// threads never interleave; stdout's line buffer passes whole lines straight through.
/// False once stdout is gone.
fn print_bytes(bytes: &[u8]) -> bool {
    let mut out = io::stdout().lock();
    out.write_all(bytes).and_then(|()| out.flush()).is_ok()
}

/// Prints one JSON line (the rare lines: ready, peer events, replies, errors).
fn print_line(v: &Value) -> bool {
    let mut line = v.to_string().into_bytes();
    line.push(b'\n');
    print_bytes(&line)
}

/// Prints the node's messages until it closes: waits for one, takes every other message
/// already waiting, and writes the lines of the whole batch at once.
fn print_messages(mesh: &MeshSocket) {
    /// Messages printed in one write at most.
    const BATCH: usize = 1024;
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut cache = LineCache::default();
    while let Some(first) = mesh.recv() {
        buf.clear();
        push_message_line(&mut buf, &mut cache, &first);
        for m in mesh.try_recv_many(BATCH - 1) {
            push_message_line(&mut buf, &mut cache, &m);
        }
        if !print_bytes(&buf) {
            return;
        }
    }
}

/// The TLS version of the connection to a peer (SSL mode), for the `connected` line.
fn tls_version(mesh: &MeshSocket, id: &str) -> Option<&'static str> {
    mesh.peers()
        .ok()?
        .into_iter()
        .find(|p| p.id == id)
        .and_then(|p| p.tls_version)
}

/// Outgoing connections a chord node makes from peer lists: the ring routes a slot to the
/// closest node a node knows, so chord nodes keep more links than mesh nodes (py2p's chord
/// dials its ring neighbours beyond its `max_outgoing` of 4 too).
const CHORD_MAX_OUTGOING: usize = 32;

/// The bytes waiting for peers above which the stdin thread waits (the library's default
/// is 1 MiB). The sending loop takes every stdin batch that waits in one drain of its
/// commands, and its frames leave as the drain goes; with 1 MiB of batches waiting, its
/// drains took 1.5 ms on average (`perf sched`, quick cli bench, under load), while the
/// receiving loop waited for their frames; with 256 KiB 0.7 ms, and the two loops overlap
/// more. Four stdin batches (64 KiB each) may still wait ahead of the loop.
const CLI_SEND_HIGH_WATER: usize = 256 << 10;

/// Runs a node until `/quit`, SIGINT or SIGTERM.
pub fn run(kind: Kind, opts: NodeOptions) -> Result<(), String> {
    let mut builder = MeshConfig::builder()
        .bind(opts.bind)
        .subnet(opts.subnet.clone())
        .encryption(opts.encryption);
    if let Some((cert, key)) = &opts.tls_files {
        builder = builder.tls_files(cert, key);
    }
    if let Some((host, port)) = &opts.out_addr {
        builder = builder.out_addr(host.clone(), *port);
    }
    if let Some(methods) = &opts.compressions {
        builder = builder.compressions(methods.clone());
    }
    if let Kind::Chord { .. } = kind {
        builder = builder.max_outgoing(CHORD_MAX_OUTGOING);
    }
    let mut config = builder.build();
    config.send_high_water = CLI_SEND_HIGH_WATER;
    let join = matches!(kind, Kind::Chord { join: true, .. });
    let node = Arc::new(match kind {
        Kind::Chord { get_timeout, .. } => Node::Chord(
            ChordSocket::bind(config, ChordConfig::default()).map_err(|e| e.to_string())?,
            get_timeout,
        ),
        Kind::Mesh => Node::Mesh(MeshSocket::bind(config).map_err(|e| e.to_string())?),
        Kind::Sync { leasing } => {
            Node::Sync(SyncSocket::bind(config, leasing).map_err(|e| e.to_string())?)
        }
    });
    let mesh = node.mesh();
    let addr = mesh.local_addr();
    print_line(&json!({
        "event": "ready",
        "id": mesh.id(),
        "addr": format!("{}:{}", addr.ip(), addr.port()),
        "protocol": mesh.protocol_id(),
    }));

    // Messages, peer events and table changes each have a thread that prints them; each
    // writes whole lines under stdout's lock.
    let mut printers = Vec::new();
    {
        let node = node.clone();
        printers.push(thread::spawn(move || print_messages(node.mesh())));
    }
    {
        let node = node.clone();
        printers.push(thread::spawn(move || {
            for e in node.mesh().events() {
                let v = match e {
                    PeerEvent::Connected { id, addr } => {
                        // A chord node joins the ring once it has a peer (join is idempotent).
                        if let (Node::Chord(c, _), true) = (&*node, join) {
                            if let Err(e) = c.join() {
                                print_line(&error_json(format!("cannot join: {e}")));
                            }
                        }
                        let mut v =
                            json!({"event": "connected", "peer": id, "addr": [addr.0, addr.1]});
                        if let Some(tls) = tls_version(node.mesh(), &id) {
                            v["tls"] = json!(tls);
                        }
                        v
                    }
                    PeerEvent::Disconnected { id } => json!({"event": "disconnected", "peer": id}),
                    PeerEvent::ConnectFailed { addr, error } => {
                        error_json(format!("cannot connect to {addr}: {error}"))
                    }
                    // Events added later are not printed.
                    _ => continue,
                };
                if !print_line(&v) {
                    break;
                }
            }
        }));
    }
    if let Node::Sync(_) = &*node {
        let node = node.clone();
        printers.push(thread::spawn(move || {
            if let Node::Sync(s) = &*node {
                for e in s.changes() {
                    if !print_line(&sync_event_json(&e)) {
                        break;
                    }
                }
            }
        }));
    }

    // Dials go out together; one that fails is an `error` event (from the events thread).
    for target in &opts.connect {
        if let Err(e) = mesh.connect_nonblocking(target.as_str()) {
            print_line(&error_json(format!("cannot connect to {target}: {e}")));
        }
    }

    // The stdin thread carries out the commands itself (no hop through this thread); this
    // thread waits for `/quit` from it or for a signal.
    let (quit_tx, quit_rx) = mpsc::channel::<()>();
    {
        let quit = quit_tx.clone();
        let _ = ctrlc::set_handler(move || {
            let _ = quit.send(());
        });
    }
    {
        let node = node.clone();
        thread::spawn(move || stdin_commands(&node, &quit_tx));
    }
    let _ = quit_rx.recv();
    node.mesh().close();
    // The printing threads end when the node's queues close.
    for p in printers {
        let _ = p.join();
    }
    Ok(())
}

/// Reads stdin's lines and carries each out, until `/quit` (which it passes on) or the node
/// closes. At the end of input the node keeps running until `/quit` or a signal.
fn stdin_commands(node: &Node, quit: &mpsc::Sender<()>) {
    stdin::read_lines(io::stdin().lock(), &mut StdinCommands { node, quit });
}

/// Carries out what stdin's lines ask: batches of broadcast lines and single commands.
struct StdinCommands<'a> {
    node: &'a Node,
    quit: &'a mpsc::Sender<()>,
}

impl stdin::Lines for StdinCommands<'_> {
    fn broadcasts(&mut self, block: Vec<u8>, ends: Vec<usize>) -> Flow {
        let mesh = self.node.mesh();
        if mesh.is_closed() {
            return Flow::Stop;
        }
        if let Err(e) = mesh.send_many_packed(block, ends) {
            if mesh.is_closed() {
                return Flow::Stop;
            }
            print_line(&error_json(e));
        }
        Flow::Go
    }

    fn line(&mut self, line: &str) -> Flow {
        if line == "/quit" {
            let _ = self.quit.send(());
            return Flow::Stop;
        }
        if self.node.mesh().is_closed() {
            return Flow::Stop;
        }
        if let Some(v) = command(self.node, line) {
            if self.node.mesh().is_closed() {
                return Flow::Stop;
            }
            print_line(&v);
        }
        Flow::Go
    }
}

/// Carries out one input line; returns a line to print, if any.
fn command(node: &Node, line: &str) -> Option<Value> {
    let mesh = node.mesh();
    let (head, rest) = line.split_once(' ').unwrap_or((line, ""));
    let result: Result<Option<Value>, String> = match (head, node) {
        ("/peers", _) => mesh.peers().map_err(|e| e.to_string()).map(|peers| {
            let list: Vec<Value> = peers
                .iter()
                .map(|p| json!({"id": p.id, "addr": [p.addr.0, p.addr.1]}))
                .collect();
            Some(json!({"event": "peers", "peers": list}))
        }),
        ("/whisper", _) => match rest.split_once(' ') {
            Some((id, text)) if !id.is_empty() && !text.is_empty() => mesh
                .whisper(id, &[text])
                .map(|()| None)
                .map_err(|e| e.to_string()),
            _ => Err("usage: /whisper ID TEXT".into()),
        },
        ("/set", Node::Sync(s)) => match rest.split_once(' ') {
            Some((key, value)) if !key.is_empty() => {
                s.set(key, value).map(|()| None).map_err(|e| e.to_string())
            }
            _ => Err("usage: /set KEY VALUE".into()),
        },
        ("/del", Node::Sync(s)) if !rest.is_empty() => {
            s.delete(rest).map(|()| None).map_err(|e| e.to_string())
        }
        ("/get", Node::Sync(s)) if !rest.is_empty() => Ok(Some(
            json!({"event": "value", "key": rest, "value": s.get(rest).map(|v| text(&v))}),
        )),
        ("/set", Node::Chord(c, _)) => match rest.split_once(' ') {
            Some((key, value)) if !key.is_empty() => {
                c.set(key, value).map(|()| None).map_err(|e| e.to_string())
            }
            _ => Err("usage: /set KEY VALUE".into()),
        },
        ("/del", Node::Chord(c, _)) if !rest.is_empty() => {
            c.delete(rest).map(|_| None).map_err(|e| e.to_string())
        }
        ("/get", Node::Chord(c, timeout)) if !rest.is_empty() => c
            .get(rest, *timeout)
            .map(|v| Some(json!({"event": "value", "key": rest, "value": v.map(|v| text(&v))})))
            .map_err(|e| e.to_string()),
        ("/keys", Node::Chord(c, _)) => c
            .keys()
            .map(|keys| {
                let keys: Vec<String> = keys.iter().map(|k| text(k)).collect();
                Some(json!({"event": "keys", "keys": keys}))
            })
            .map_err(|e| e.to_string()),
        ("/set" | "/del" | "/get", _) => {
            Err(format!("{head}: not a sync or chord node, or missing key"))
        }
        _ if !stdin::is_broadcast(head.as_bytes()) => Err(format!("unknown command {head}")),
        _ => mesh.send(&[line]).map(|()| None).map_err(|e| e.to_string()),
    };
    match result {
        Ok(v) => v,
        Err(e) => Some(error_json(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line as the CLI printed it before the hand-written form: a `serde_json::Value`
    /// (keys in insertion order).
    fn value_line(m: &MessageFields<'_>) -> String {
        let v = json!({
            "event": "message",
            "kind": m.kind,
            "sub_flag": m.sub_flag,
            "sender": text(m.sender),
            "id": text(m.id),
            "time": m.time,
            "packets": m.packets.iter().map(text).collect::<Vec<_>>(),
        });
        format!("{v}\n")
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut every_ascii = String::new();
        for c in 0u8..=0x7f {
            every_ascii.push(char::from(c));
        }
        for s in [
            "",
            "plain",
            every_ascii.as_str(),
            "é ☃ 𝄞 \u{2028}\u{7f}",
            "\"\\\"",
            "end\\",
            "0123456789abcdef\"0123456\\789abcdef\u{1}01234567\u{7f}é\u{1f}x\n",
            "no escape needed in these thirty-two bytes, none at all",
        ] {
            let mut out = Vec::new();
            push_json_str(&mut out, s);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(s).unwrap()
            );
        }
    }

    #[test]
    fn bytes_are_written_as_their_lossy_text() {
        let mut cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"plain".to_vec(),
            vec![b'a'; 64],
            "é ☃ 𝄞".as_bytes().to_vec(),
            vec![0xff, 0xfe, b'a', 0x01],
            b"\xc3(".to_vec(),
        ];
        // Every byte at every position of 72 plain bytes (two whole chunks and a tail
        // tested as an overlapping chunk), and a cut multi-byte character at each.
        for pos in 0..72 {
            for b in 0..=255u8 {
                let mut v = vec![b'x'; 72];
                v[pos] = b;
                cases.push(v);
            }
            let mut v = vec![b'y'; 72];
            v.splice(pos..pos, "€".as_bytes()[..2].iter().copied());
            cases.push(v);
        }
        for case in cases {
            let mut out = Vec::new();
            push_json_bytes(&mut out, &case);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&String::from_utf8_lossy(&case)).unwrap(),
                "{case:?}"
            );
        }
    }

    #[test]
    fn the_plain_prefix_ends_at_the_first_byte_that_needs_care() {
        let care = |c: u8| !(0x20..0x80).contains(&c) || c == b'"' || c == b'\\';
        // Every length around the chunk size and its multiples, with none, one or two
        // such bytes at every position (the second one later, in the overlapping tail).
        for len in 0..100 {
            assert_eq!(plain_len(&vec![b'p'; len]), len);
            for pos in 0..len {
                for c in [0u8, 0x1f, b'"', b'\\', 0x7f, 0x80, 0xff, b' '] {
                    let mut v = vec![b'p'; len];
                    v[pos] = c;
                    let want = if care(c) { pos } else { len };
                    assert_eq!(plain_len(&v), want, "{len} {pos} {c}");
                    v[len - 1] = b'"';
                    let want = if care(c) { pos } else { len - 1 };
                    assert_eq!(plain_len(&v), want, "{len} {pos} {c} and a quote last");
                }
            }
        }
    }

    #[test]
    fn the_word_check_finds_every_byte_that_needs_escaping() {
        let needs = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
        for filler in [b'a', b' ', 0x7f, 0x80, 0xc3, 0xff] {
            for pos in 0..8 {
                for b in 0..=255u8 {
                    let mut w = [filler; 8];
                    w[pos] = b;
                    assert_eq!(
                        word_needs_escape(u64::from_le_bytes(w)),
                        needs(b) || needs(filler),
                        "{w:?}"
                    );
                }
            }
        }
        // Pseudo-random words against the byte-by-byte answer.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let want = x.to_le_bytes().iter().any(|&b| needs(b));
            assert_eq!(word_needs_escape(x), want, "{x:#x}");
        }
    }

    const SENDER: &[u8] = b"6Jh3gSuk\xc3(xyz";

    #[test]
    fn message_lines_are_byte_for_byte_the_value_lines() {
        let packets = [
            b"hello \"world\"\n".to_vec(),
            vec![0xff, 0xfe, b'a', 0x01],
            Vec::new(),
        ];
        // One cache through all the lines, as the printing thread keeps it: lines that
        // share the head or the time with the line before, and lines that change either.
        let mut cache = LineCache::default();
        for (kind, sub_flag, sender, time, packets) in [
            (
                "broadcast",
                Some(0u8),
                SENDER,
                1_700_000_000u64,
                &packets[..],
            ),
            (
                "broadcast",
                Some(0u8),
                SENDER,
                1_700_000_000u64,
                &packets[..1],
            ),
            (
                "broadcast",
                Some(0u8),
                SENDER,
                1_700_000_001u64,
                &packets[..],
            ),
            (
                "broadcast",
                Some(0u8),
                b"other \"one\"",
                1_700_000_001u64,
                &packets[..],
            ),
            (
                "broadcast",
                Some(0u8),
                SENDER,
                1_700_000_001u64,
                &packets[..],
            ),
            ("whisper", Some(0u8), SENDER, 1_700_000_001u64, &packets[..]),
            ("whisper", Some(2), SENDER, 0, &packets[..1]),
            ("broadcast", Some(255), SENDER, u64::MAX, &[][..]),
            ("broadcast", None, SENDER, 9, &packets[1..]),
            ("broadcast", None, SENDER, 9, &packets[1..]),
        ] {
            let msg = py2p_wire::Message::new(vec![0], b"s".to_vec(), packets.to_vec(), time);
            let packets = msg.payload();
            let fields = MessageFields {
                kind,
                sub_flag,
                sender,
                id: b"3Tx7pBvUqZ",
                time,
                packets,
            };
            let want = value_line(&fields);
            let mut out = Vec::new();
            cache.push(&mut out, fields);
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }
}
