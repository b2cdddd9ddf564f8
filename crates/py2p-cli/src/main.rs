//! The `py2p` command: inspect and make py2p 0.5 frames, run nodes, demo a local network.
//!
//! Run `py2p --help` for the commands. Logs go to stderr and are set with `RUST_LOG`.

mod frames;
mod hex;

use std::io;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use py2p_wire::{Compression, Limits};

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
