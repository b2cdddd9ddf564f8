//! The `py2p` command: inspect and make py2p 0.5 frames, run nodes, demo a local network.
//!
//! Run `py2p --help` for the commands. Logs go to stderr and are set with `RUST_LOG`.

mod demo;
mod frames;
mod hex;
mod node;

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Parser, Subcommand};
use py2p_wire::{Compression, Encryption, Limits};

/// The compression names every `--compression` takes.
const COMPRESSIONS: [&str; 5] = ["snappy", "zlib", "gzip", "bz2", "lzma"];

/// The stdin commands of `mesh`, shown by `py2p mesh --help`.
const MESH_COMMANDS: &str = "\
Commands on stdin (one per line):
  TEXT               broadcast TEXT to every node
  /whisper ID TEXT   send TEXT to the node ID alone
  /peers             print the routing table as a `peers` event
  /quit              stop the node (SIGINT and SIGTERM do too)

Events on stdout, one JSON object per line: ready, connected, disconnected, message,
peers, error.";

/// The stdin commands of `sync`, shown by `py2p sync --help`.
const SYNC_COMMANDS: &str = "\
Commands on stdin (one per line):
  TEXT               broadcast TEXT to every node
  /whisper ID TEXT   send TEXT to the node ID alone
  /peers             print the routing table as a `peers` event
  /set KEY VALUE     store VALUE at KEY across the network
  /get KEY           print the value at KEY as a `value` event
  /del KEY           delete KEY across the network
  /quit              stop the node

Events on stdout, one JSON object per line: ready, connected, disconnected, message,
peers, error, stored, deleted, value.";

/// The stdin commands of `chord`, shown by `py2p chord --help`.
const CHORD_COMMANDS: &str = "\
Commands on stdin (one per line):
  TEXT               broadcast TEXT to every node
  /whisper ID TEXT   send TEXT to the node ID alone
  /peers             print the routing table as a `peers` event
  /set KEY VALUE     store VALUE at KEY in the hash table
  /get KEY           print the value at KEY as a `value` event (null when missing)
  /del KEY           delete KEY from the hash table
  /keys              print the keys this node knows as a `keys` event
  /quit              stop the node

Events on stdout, one JSON object per line: ready, connected, disconnected, message,
peers, error, value, keys.";

/// A `--compression` value: one of [`COMPRESSIONS`].
fn compression_parser() -> impl TypedValueParser<Value = Compression> {
    PossibleValuesParser::new(COMPRESSIONS).try_map(|name| name.parse::<Compression>())
}

/// A `--compression` value of a node: one of [`COMPRESSIONS`] or `none`.
fn node_compression_parser() -> impl TypedValueParser<Value = Option<Compression>> {
    let mut names = COMPRESSIONS.to_vec();
    names.push("none");
    PossibleValuesParser::new(names).try_map(|name| match name.as_str() {
        "none" => Ok(None),
        other => other.parse::<Compression>().map(Some),
    })
}

/// `HOST:PORT`, with a host name looked up (IPv4 first).
fn socket_addr(text: &str) -> Result<SocketAddr, String> {
    let mut addrs: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|e| format!("{text}: {e} (expected HOST:PORT)"))?
        .collect();
    addrs.sort_by_key(SocketAddr::is_ipv6);
    addrs
        .into_iter()
        .next()
        .ok_or_else(|| format!("{text}: no address"))
}

/// `HOST:PORT`, kept as text (the host is advertised as given).
fn host_port(text: &str) -> Result<(String, u16), String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text}: expected HOST:PORT"))?;
    let port = port
        .parse::<u16>()
        .map_err(|e| format!("{text}: port: {e}"))?;
    Ok((host.to_owned(), port))
}

/// Why the command failed, and so its exit code.
enum CliError {
    /// The command line was wrong (exit code 2); empty: already reported (by clap).
    Usage(String),
    /// Something failed while running (exit code 1); `None`: already reported.
    Runtime(Option<String>),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(e) | CliError::Runtime(Some(e)) => f.write_str(e),
            CliError::Runtime(None) => Ok(()),
        }
    }
}

impl From<io::Error> for CliError {
    fn from(e: io::Error) -> Self {
        CliError::Runtime(Some(e.to_string()))
    }
}

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
        /// A method the frames may be compressed with; repeatable.
        #[arg(long = "compression", value_name = "NAME", value_parser = compression_parser())]
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
    #[command(after_help = MESH_COMMANDS)]
    Mesh(NodeArgs),
    /// Run one sync-table node: as `mesh`, plus /set, /del and /get.
    #[command(after_help = SYNC_COMMANDS)]
    Sync {
        #[command(flatten)]
        node: NodeArgs,
        /// Run without leases (subnet suffix 0): a newer write always wins.
        #[arg(long)]
        no_leasing: bool,
    },
    /// Run one chord (distributed hash table) node: as `mesh`, plus /set, /get, /del, /keys.
    /// It joins the ring (holds slots) as soon as it has a peer, unless --no-join.
    #[command(after_help = CHORD_COMMANDS)]
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
    /// Address to listen on, HOST:PORT (a host name is looked up; port 0: any free port).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:0", value_parser = socket_addr)]
    bind: SocketAddr,
    /// A node to connect to, HOST:PORT; repeatable. A dial that fails is an `error` event.
    #[arg(long, value_name = "HOST:PORT")]
    connect: Vec<String>,
    /// The subnet (mesh: default "mesh"; sync: default "sync", the leasing digit is appended;
    /// chord: default "chord").
    #[arg(long)]
    subnet: Option<String>,
    /// The address to advertise to peers, when it differs from the bound one.
    #[arg(long, value_name = "HOST:PORT", value_parser = host_port)]
    out_addr: Option<(String, u16)>,
    /// Offer only these compression methods, in this order (repeatable; "none" for none).
    #[arg(long = "compression", value_name = "NAME", value_parser = node_compression_parser())]
    compressions: Vec<Option<Compression>>,
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
    fn options(self, default_subnet: &str) -> node::NodeOptions {
        let compressions = if self.compressions.is_empty() {
            None
        } else {
            Some(self.compressions.into_iter().flatten().collect())
        };
        node::NodeOptions {
            bind: self.bind,
            connect: self.connect,
            subnet: self.subnet.unwrap_or_else(|| default_subnet.to_owned()),
            out_addr: self.out_addr,
            compressions,
            encryption: self.encryption,
            tls_files: self.tls_cert.zip(self.tls_key),
        }
    }
}

/// Exit codes, decided here alone: 0 success, 1 a runtime failure (for `decode` and
/// `encode`: any line failed), 2 a usage error.
fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    match try_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Usage(e)) => {
            if !e.is_empty() {
                eprintln!("py2p: {e}");
            }
            ExitCode::from(2)
        }
        Err(CliError::Runtime(why)) => {
            if let Some(e) = why {
                eprintln!("py2p: {e}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Lines of `decode` or `encode` that failed: a runtime failure when there are any.
fn lines_failed(failed: usize) -> Result<(), CliError> {
    match failed {
        0 => Ok(()),
        n => Err(CliError::Runtime(Some(format!("{n} line(s) failed")))),
    }
}

fn try_main() -> Result<(), CliError> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version print to stdout and succeed; usage errors exit 2.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return Ok(());
        }
        Err(e) => {
            // clap's message names the option and lists the valid values.
            let _ = e.print();
            return Err(CliError::Usage(String::new()));
        }
    };
    let broken_pipe_is_fine = |r: io::Result<usize>| match r {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(0),
        other => other,
    };
    match cli.command {
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
            let failed = broken_pipe_is_fine(frames::decode(
                io::stdin().lock(),
                io::stdout().lock(),
                &compressions,
                &limits,
            ))?;
            lines_failed(failed)
        }
        Command::Encode => {
            let failed =
                broken_pipe_is_fine(frames::encode(io::stdin().lock(), io::stdout().lock()))?;
            lines_failed(failed)
        }
        Command::Mesh(args) => node::run(node::Kind::Mesh, args.options("mesh"))
            .map_err(|e| CliError::Runtime(Some(e))),
        Command::Sync {
            node: args,
            no_leasing,
        } => {
            let kind = node::Kind::Sync {
                leasing: !no_leasing,
            };
            node::run(kind, args.options("sync")).map_err(|e| CliError::Runtime(Some(e)))
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
            node::run(kind, args.options("chord")).map_err(|e| CliError::Runtime(Some(e)))
        }
        Command::Demo {
            nodes,
            messages,
            senders,
            size,
            encryption,
        } => match demo::run(nodes, messages, senders, size, encryption) {
            Ok(true) => Ok(()),
            // The report says what went wrong.
            Ok(false) => Err(CliError::Runtime(None)),
            Err(e) => Err(CliError::Runtime(Some(e))),
        },
    }
}
