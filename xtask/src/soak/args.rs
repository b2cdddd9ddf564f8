//! The options of `cargo xtask soak`, their checks, and the command line that repeats them.

use std::path::PathBuf;

use crate::err;
use crate::util::Result;

/// Options of `cargo xtask soak`.
#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    /// Minutes of traffic (fractions allowed, e.g. 0.1).
    #[arg(long, default_value_t = 2.0, value_name = "M")]
    pub minutes: f64,
    /// Nodes in all, the Python node included.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub nodes: usize,
    /// Seed of the random choices (topology, traffic, restarts, payloads). Timing is real, so
    /// a seed fixes the plan, not the interleaving.
    #[arg(long, default_value_t = 1, value_name = "S")]
    pub seed: u64,
    /// Rust nodes only.
    #[arg(long)]
    pub no_python: bool,
    /// Broadcasts per second of each Rust node (on average; Poisson).
    #[arg(long, default_value_t = 2.0, value_name = "PER_SEC")]
    pub rate: f64,
    /// Broadcasts per second of the Python node.
    #[arg(long, default_value_t = 0.5, value_name = "PER_SEC")]
    pub python_rate: f64,
    /// Mean seconds between restarts (0: no restarts).
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub restart_every: f64,
    /// Largest payload, in bytes (each message gets a random size up to this).
    #[arg(long, default_value_t = 300, value_name = "BYTES")]
    pub max_size: usize,
    /// Fail when a Rust node's mean resident memory grows by more than this from the first to
    /// the last quarter of the steady part of the run (and by more than 20%).
    #[arg(long, default_value_t = 2048, value_name = "KIB")]
    pub max_growth_kib: u64,
    /// The `py2p` binary to run (default: build `py2p-cli` in release mode and use it).
    #[arg(long, value_name = "PATH")]
    pub bin: Option<PathBuf>,
    /// Also put the figures into docs/reliability.md (its Soak section).
    #[arg(long)]
    pub write_docs: bool,
}

/// Refuses options that cannot make a run.
pub(super) fn validate(args: &SoakArgs) -> Result<()> {
    let rust = args.nodes - usize::from(!args.no_python).min(args.nodes);
    if rust < 2 {
        return Err(err!(
            "--nodes {} leaves {rust} Rust node(s); at least 2 are needed",
            args.nodes
        ));
    }
    for (name, v) in [
        ("--minutes", args.minutes),
        ("--rate", args.rate),
        ("--python-rate", args.python_rate),
        ("--restart-every", args.restart_every),
    ] {
        if !v.is_finite() || v < 0.0 {
            return Err(err!("{name} must be a non-negative number, not {v}"));
        }
    }
    if args.minutes <= 0.0 {
        return Err(err!("--minutes must be more than 0"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_options_are_refused() {
        let ok = SoakArgs {
            minutes: 1.0,
            nodes: 16,
            seed: 1,
            no_python: false,
            rate: 2.0,
            python_rate: 0.5,
            restart_every: 10.0,
            max_size: 300,
            max_growth_kib: 2048,
            bin: None,
            write_docs: false,
        };
        assert!(validate(&ok).is_ok());
        let bad = [
            SoakArgs {
                nodes: 2,
                ..ok.clone()
            },
            SoakArgs {
                nodes: 0,
                ..ok.clone()
            },
            SoakArgs {
                minutes: 0.0,
                ..ok.clone()
            },
            SoakArgs {
                rate: -1.0,
                ..ok.clone()
            },
            SoakArgs {
                restart_every: f64::NAN,
                ..ok.clone()
            },
        ];
        for args in bad {
            assert!(validate(&args).is_err(), "{args:?}");
        }
        assert!(validate(&SoakArgs {
            nodes: 2,
            no_python: true,
            ..ok
        })
        .is_ok());
    }
}
