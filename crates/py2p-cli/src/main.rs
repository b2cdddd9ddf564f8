//! The `py2p` command: inspect and make py2p 0.5 frames, run nodes, demo a local network.
//!
//! Run `py2p --help` for the commands. Logs go to stderr and are set with `RUST_LOG`.

mod demo;
mod frames;
mod hex;
mod node;

use std::io;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use py2p_wire::{Compression, Encryption, Limits};

/// py2p 0.5 peer-to-peer networking, wire-compatible with the Python package py2p 0.5.607.
#[derive(Parser)]
#[command(name = "py2p", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read frames (hex of the whole frame, one per line) from stdin; print each as JSON.
    Decode {
        /// A method the frames may be compressed with (snappy, zlib, gzip, bz2, lzma); repeatable.
        #[arg(long = "compression", value_name = "NAME")]
        compressions: Vec<Compression>,
        /// Largest frame body accepted, in bytes.
        #[arg(long, default_value_t = Limits::DEFAULT_MAX_FRAME_LEN)]
        max_frame_len: usize,
        /// Largest decompressed body accepted, in bytes.
        #[arg(long, default_value_t = Limits::DEFAULT_MAX_DECOMPRESSED_LEN)]
        max_decompressed_len: usize,
    },
    /// Read messages (JSON, one per line) from stdin; print each frame as a line of hex.
    Encode,
    /// Run one mesh node: stdin lines are broadcast, events are printed as JSON lines.
    Mesh(NodeArgs),
    /// Run one sync-table node: as `mesh`, plus /set, /del and /get.
    Sync {
        #[command(flatten)]
        node: NodeArgs,
        /// Run without leases (subnet suffix 0): a newer write always wins.
        #[arg(long)]
        no_leasing: bool,
    },
    /// Run one chord (distributed hash table) node: as `mesh`, plus /set, /get, /del, /keys.
    /// It joins the ring (holds slots) as soon as it has a peer, unless --no-join.
    Chord {
        #[command(flatten)]
        node: NodeArgs,
        /// Stay a leeching node: read and write the table, hold no slots.
        #[arg(long)]
        no_join: bool,
        /// How long a /get waits for three of the five slots to agree, in seconds.
        #[arg(long, default_value_t = 10.0)]
        get_timeout: f64,
    },
    /// Start a network of nodes in this process, broadcast through it, and report.
    Demo {
        /// Number of nodes.
        #[arg(long, default_value_t = 8)]
        nodes: usize,
        /// Number of broadcasts.
        #[arg(long, default_value_t = 10_000)]
        messages: usize,
        /// Number of nodes that broadcast.
        #[arg(long, default_value_t = 4)]
        senders: usize,
        /// Bytes per message.
        #[arg(long, default_value_t = 200)]
        size: usize,
        /// How connections are carried: "plaintext" or "ssl" (py2p's names, any case).
        #[arg(long, default_value = "plaintext", value_name = "plaintext|ssl")]
        encryption: Encryption,
    },
}

/// Options of a node.
#[derive(clap::Args)]
struct NodeArgs {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: std::net::SocketAddr,
    /// A node to connect to; repeatable.
    #[arg(long, value_name = "HOST:PORT")]
    connect: Vec<String>,
    /// The subnet (mesh: default "mesh"; sync: default "sync", the leasing digit is appended;
    /// chord: default "chord").
    #[arg(long)]
    subnet: Option<String>,
    /// The address to advertise to peers, when it differs from the bound one.
    #[arg(long, value_name = "HOST:PORT")]
    out_addr: Option<String>,
    /// Offer only these compression methods, in this order (repeatable; "none" for none).
    #[arg(long = "compression", value_name = "NAME")]
    compressions: Vec<String>,
    /// How connections are carried: "plaintext" or "ssl" (py2p's names, any case). SSL
    /// encrypts but authenticates no one.
    #[arg(long, default_value = "plaintext", value_name = "plaintext|ssl")]
    encryption: Encryption,
    /// SSL: serve this PEM certificate instead of a self-signed one (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// SSL: the PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
}

impl NodeArgs {
    fn options(self, default_subnet: &str) -> Result<node::NodeOptions, String> {
        let out_addr = match self.out_addr {
            Some(text) => {
                let (host, port) = text.rsplit_once(':').ok_or("--out-addr takes HOST:PORT")?;
                Some((
                    host.to_owned(),
                    port.parse::<u16>()
                        .map_err(|e| format!("--out-addr port: {e}"))?,
                ))
            }
            None => None,
        };
        let compressions = if self.compressions.is_empty() {
            None
        } else {
            let mut list = Vec::new();
            for name in &self.compressions {
                if name != "none" {
                    list.push(name.parse::<Compression>().map_err(|e| e.to_string())?);
                }
            }
            Some(list)
        };
        Ok(node::NodeOptions {
            bind: self.bind,
            connect: self.connect,
            subnet: self.subnet.unwrap_or_else(|| default_subnet.to_owned()),
            out_addr,
            compressions,
            encryption: self.encryption,
            tls_files: self.tls_cert.zip(self.tls_key),
        })
    }
}

fn finish(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("py2p: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Decode {
            compressions,
            max_frame_len,
            max_decompressed_len,
        } => {
            let limits = Limits {
                max_frame_len,
                max_decompressed_len,
                ..Limits::default()
            };
            frames::decode(
                io::stdin().lock(),
                io::stdout().lock(),
                &compressions,
                &limits,
            )
        }
        Command::Encode => frames::encode(io::stdin().lock(), io::stdout().lock()),
        Command::Mesh(args) => {
            return finish(
                args.options("mesh")
                    .and_then(|o| node::run(node::Kind::Mesh, o)),
            )
        }
        Command::Sync {
            node: args,
            no_leasing,
        } => {
            let kind = node::Kind::Sync {
                leasing: !no_leasing,
            };
            return finish(args.options("sync").and_then(|o| node::run(kind, o)));
        }
        Command::Chord {
            node: args,
            no_join,
            get_timeout,
        } => {
            let kind = node::Kind::Chord {
                join: !no_join,
                get_timeout: std::time::Duration::from_secs_f64(get_timeout.clamp(0.0, 3600.0)),
            };
            return finish(args.options("chord").and_then(|o| node::run(kind, o)));
        }
        Command::Demo {
            nodes,
            messages,
            senders,
            size,
            encryption,
        } => {
            return match demo::run(nodes, messages, senders, size, encryption) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => finish(Err(e)),
            };
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("py2p: {e}");
            ExitCode::FAILURE
        }
    }
}
