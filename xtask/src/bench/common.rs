//! What every section of `cargo xtask bench` shares: the command's options, the section
//! type, the py2p reference runner for the codec benchmarks, criterion's medians, and time
//! formatting. The sections import this module; it imports none of them.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::err;
use crate::util::{self, Context, Result};
use crate::venv;

/// Options of `cargo xtask bench`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BenchArgs {
    /// Shorter measurements (criterion warm-up 1 s, measurement 2 s; fewer Python repetitions).
    #[arg(long)]
    pub quick: bool,
    /// Do not run the Python reference benchmark (its column stays empty).
    #[arg(long)]
    pub no_python: bool,
    /// Do not run the benchmarks; report the results of the last run (target/criterion,
    /// target/bench-network*.json). The codec section still runs the Python reference.
    #[arg(long)]
    pub no_run: bool,
    /// Run only these sections (comma-separated: codec, codec-size, network, scale, ssl,
    /// python, libp2p); the report keeps the others from its previous version. `libp2p`
    /// (rust-libp2p's broadcast, built from `bench-libp2p/`) runs only when named here.
    #[arg(long, alias = "section", value_delimiter = ',')]
    pub only: Vec<String>,
}

/// One section of the performance report.
pub struct Section {
    /// Stable identifier used in the section markers.
    pub id: &'static str,
    /// The Markdown of the section (starting with its `##` heading).
    pub markdown: String,
    /// A check of the section that failed (the report is still written, then
    /// `cargo xtask bench` fails with this).
    pub failure: Option<String>,
}

/// Compressions of the codec benchmark, `none` first.
pub const COMPRESSIONS: [&str; 6] = ["none", "snappy", "zlib", "gzip", "bz2", "lzma"];

/// The results of `interop/bench_reference.py`: seconds per operation by id.
pub struct CodecReference {
    /// `(id, seconds)` pairs.
    pub results: Vec<(String, f64)>,
    /// "py2p VERSION on IMPLEMENTATION VERSION".
    pub info: String,
}

impl CodecReference {
    /// Seconds per operation of `id`, if measured.
    pub fn get(&self, id: &str) -> Option<f64> {
        self.results.iter().find(|(k, _)| k == id).map(|(_, v)| *v)
    }
}

/// Runs `interop/bench_reference.py --part PART` in the venv.
pub fn python_codec_reference(args: &BenchArgs, part: &str) -> Result<CodecReference> {
    python_codec_reference_only(args, part, "")
}

/// [`python_codec_reference`] of the ids containing `only` (all when empty).
pub fn python_codec_reference_only(
    args: &BenchArgs,
    part: &str,
    only: &str,
) -> Result<CodecReference> {
    let python = venv::ensure()?;
    let mut cmd = Command::new(&python);
    cmd.arg("interop/bench_reference.py")
        .args(["--part", part])
        .current_dir(util::repo_root());
    if !only.is_empty() {
        cmd.args(["--only", only]);
    }
    if args.quick {
        cmd.arg("--quick");
    }
    println!("running the py2p reference benchmark ({part}; takes a while)");
    let out = util::output(&mut cmd)?;
    parse_codec_reference(&out)
}

/// Parses the JSON printed by `interop/bench_reference.py`.
fn parse_codec_reference(out: &str) -> Result<CodecReference> {
    let doc = util::parse_json(out).context("cannot parse interop/bench_reference.py output")?;
    let results = doc
        .get("results")
        .and_then(serde_json::Value::as_object)
        .ok_or_else(|| err!("interop/bench_reference.py output has no `results` object"))?
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
        .collect();
    let field = |k: &str| {
        doc.get(k)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("?")
            .to_string()
    };
    Ok(CodecReference {
        results,
        info: format!(
            "py2p {} on {} {}",
            field("py2p"),
            field("implementation"),
            field("python")
        ),
    })
}

/// Median (ns) of criterion benchmark `id` (`group/function/parameter`).
pub fn criterion_median_ns(criterion_dir: &Path, id: &str) -> Result<f64> {
    let path = criterion_dir.join(id).join("new").join("estimates.json");
    let text = fs::read_to_string(&path).context(format_args!(
        "cannot read criterion results {} (did `cargo bench -p py2p-wire --bench codec` run?)",
        path.display()
    ))?;
    let doc = util::parse_json(&text).context(format_args!("{}", path.display()))?;
    doc.pointer("/median/point_estimate")
        .and_then(serde_json::Value::as_f64)
        .ok_or_else(|| err!("{} has no median.point_estimate", path.display()))
}

/// Formats seconds per operation with a fitting unit.
pub fn fmt_secs(secs: Option<f64>) -> String {
    let Some(s) = secs else {
        return "—".to_string();
    };
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else if s >= 1e-6 {
        format!("{:.2} µs", s * 1e6)
    } else {
        format!("{:.0} ns", s * 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_durations() {
        assert_eq!(fmt_secs(Some(812e-9)), "812 ns");
        assert_eq!(fmt_secs(Some(12.3456e-6)), "12.35 µs");
        assert_eq!(fmt_secs(Some(4.5e-3)), "4.50 ms");
        assert_eq!(fmt_secs(None), "—");
    }
}
