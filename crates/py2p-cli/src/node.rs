//! `py2p mesh`, `py2p sync` and `py2p chord`: one node, driven by lines on stdin, reporting JSON lines on
//! stdout.

use std::io::{self, BufRead, Write};
use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread;

use py2p::{
    ChordConfig, ChordSocket, Compression, Encryption, MeshConfig, MeshSocket, Message, PeerEvent,
    SyncEvent, SyncSocket,
};
use serde_json::{json, Value};

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

fn message_json(m: &Message) -> Value {
    json!({
        "event": "message",
        "kind": m.kind().as_str(),
        "sub_flag": m.sub_flag(),
        "sender": m.sender(),
        "id": m.id(),
        "time": m.time(),
        "packets": m.packets().iter().map(|p| text(p)).collect::<Vec<_>>(),
    })
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

/// Writes lines as they come, flushing whenever nothing more is waiting.
fn writer(rx: Receiver<Value>) {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    while let Ok(v) = rx.recv() {
        let mut next = Some(v);
        while let Some(v) = next.take() {
            if writeln!(out, "{v}").is_err() {
                return;
            }
            next = rx.try_recv().ok();
        }
        if out.flush().is_err() {
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

enum Control {
    Line(String),
    Quit,
}

/// Outgoing connections a chord node makes from peer lists: the ring routes a slot to the
/// closest node a node knows, so chord nodes keep more links than mesh nodes (py2p's chord
/// dials its ring neighbours beyond its `max_outgoing` of 4 too).
const CHORD_MAX_OUTGOING: usize = 32;

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
    let config = builder.build();
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
    let (out_tx, out_rx) = mpsc::channel::<Value>();
    let writer = thread::spawn(move || writer(out_rx));
    let mesh = node.mesh();
    let addr = mesh.local_addr();
    let _ = out_tx.send(json!({
        "event": "ready",
        "id": mesh.id(),
        "addr": format!("{}:{}", addr.ip(), addr.port()),
        "protocol": mesh.protocol_id(),
    }));

    // Messages, peer events and table changes each have a thread that turns them into lines.
    {
        let (node, tx) = (node.clone(), out_tx.clone());
        thread::spawn(move || {
            while let Some(m) = node.mesh().recv() {
                if tx.send(message_json(&m)).is_err() {
                    break;
                }
            }
        });
    }
    {
        let (node, tx) = (node.clone(), out_tx.clone());
        thread::spawn(move || {
            for e in node.mesh().events() {
                let v = match e {
                    PeerEvent::Connected { id, addr } => {
                        // A chord node joins the ring once it has a peer (join is idempotent).
                        if let (Node::Chord(c, _), true) = (&*node, join) {
                            if let Err(e) = c.join() {
                                let _ = tx.send(error_json(format!("cannot join: {e}")));
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
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
    }
    if let Node::Sync(_) = &*node {
        let (node, tx) = (node.clone(), out_tx.clone());
        thread::spawn(move || {
            if let Node::Sync(s) = &*node {
                for e in s.changes() {
                    if tx.send(sync_event_json(&e)).is_err() {
                        break;
                    }
                }
            }
        });
    }

    // Dials go out together; one that fails is an `error` event (from the events thread).
    for target in &opts.connect {
        if let Err(e) = mesh.connect_nonblocking(target.as_str()) {
            let _ = out_tx.send(error_json(format!("cannot connect to {target}: {e}")));
        }
    }

    let (ctl_tx, ctl_rx) = mpsc::channel::<Control>();
    {
        let ctl = ctl_tx.clone();
        let _ = ctrlc::set_handler(move || {
            let _ = ctl.send(Control::Quit);
        });
    }
    thread::spawn(move || stdin_reader(ctl_tx));

    while let Ok(ctl) = ctl_rx.recv() {
        match ctl {
            Control::Quit => break,
            Control::Line(line) => {
                if line == "/quit" {
                    break;
                }
                if let Some(v) = command(&node, &line) {
                    let _ = out_tx.send(v);
                }
            }
        }
    }
    node.mesh().close();
    drop(out_tx);
    // The printing threads end when the node's queues close; the writer when they are gone.
    let _ = writer.join();
    Ok(())
}

fn stdin_reader(ctl: Sender<Control>) {
    let stdin = io::stdin();
    for line in stdin.lock().split(b'\n') {
        let Ok(line) = line else { break };
        let line = String::from_utf8_lossy(&line);
        let line = line.strip_suffix('\r').unwrap_or(&line).to_owned();
        if ctl.send(Control::Line(line)).is_err() {
            return;
        }
    }
    // End of input: the node keeps running until /quit or a signal.
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
        _ if head.starts_with('/') && head.len() > 1 => Err(format!("unknown command {head}")),
        _ => mesh.send(&[line]).map(|()| None).map_err(|e| e.to_string()),
    };
    match result {
        Ok(v) => v,
        Err(e) => Some(error_json(e)),
    }
}
