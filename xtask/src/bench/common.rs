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

/// Seconds per operation by id, over the rounds that measured it.
#[derive(Debug, Default)]
pub struct Runs(Vec<(String, Vec<f64>)>);

impl Runs {
    /// Records one round's `secs` for `id`.
    pub fn push(&mut self, id: &str, secs: f64) {
        match self.0.iter_mut().find(|(k, _)| k == id) {
            Some((_, v)) => v.push(secs),
            None => self.0.push((id.to_string(), vec![secs])),
        }
    }

    /// The median of `id`'s rounds (the upper one of an even count).
    pub fn median(&self, id: &str) -> Option<f64> {
        let (_, v) = self.0.iter().find(|(k, _)| k == id)?;
        let mut v = v.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    }

    /// How many rounds measured `id`.
    pub fn rounds(&self, id: &str) -> usize {
        self.0
            .iter()
            .find(|(k, _)| k == id)
            .map_or(0, |(_, v)| v.len())
    }

    /// The ids measured, in the order first seen.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }
}

/// Rows whose ratio (py2p / ours) is below this after one round are measured again
/// ([`parity_rounds`]): near parity, or below it, one round's load on the shared machine
/// decides which side looks faster.
pub const NEAR_PARITY: f64 = 1.25;

/// The further rounds of the rows near parity (so that each has three).
pub const PARITY_ROUNDS: usize = 2;

/// The ids measured on both sides whose ratio is below [`NEAR_PARITY`].
pub fn near_parity(ours: &Runs, reference: &Runs) -> Vec<String> {
    ours.ids()
        .filter(|id| match (ours.median(id), reference.median(id)) {
            (Some(o), Some(r)) if o > 0.0 => r / o < NEAR_PARITY,
            _ => false,
        })
        .map(str::to_string)
        .collect()
}

/// A criterion filter matching exactly `ids` (criterion ids hold no regex metacharacters but
/// `/`, which is none).
fn exact_filter(ids: &[String]) -> String {
    format!("^({})$", ids.join("|"))
}

/// Measures `ids` [`PARITY_ROUNDS`] more times, ours (criterion, with `criterion_args`) and
/// py2p's (`interop/bench_reference.py --part PART`) alternately, adding to `ours` and
/// `reference`.
pub fn parity_rounds(
    args: &BenchArgs,
    ids: &[String],
    criterion_args: &[&str],
    part: &str,
    ours: &mut Runs,
    reference: &mut Runs,
) -> Result<()> {
    if ids.is_empty() || args.no_run || args.no_python {
        return Ok(());
    }
    let criterion = util::target_dir().join("criterion");
    for round in 0..PARITY_ROUNDS {
        println!(
            "rows below {NEAR_PARITY}x, round {} of {}: {}",
            round + 2,
            PARITY_ROUNDS + 1,
            ids.join(", ")
        );
        let mut cmd = util::cargo();
        cmd.args(["bench", "-p", "py2p-wire", "--bench", "codec", "--"]);
        cmd.arg(exact_filter(ids)).args(criterion_args);
        util::run(&mut cmd)?;
        for id in ids {
            ours.push(id, criterion_median_ns(&criterion, id)? * 1e-9);
        }
        let r = python_codec_reference_only(args, part, &ids.join(","))?;
        for (id, secs) in &r.results {
            if ids.contains(id) {
                reference.push(id, *secs);
            }
        }
    }
    Ok(())
}

/// Runs `interop/bench_reference.py --part PART` in the venv.
pub fn python_codec_reference(args: &BenchArgs, part: &str) -> Result<CodecReference> {
    python_codec_reference_only(args, part, "")
}

/// [`python_codec_reference`] of the ids containing `only` (all when empty; several texts
/// separated by commas: the ids containing any of them).
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

    #[test]
    fn runs_take_the_median_and_parity_picks_the_close_rows() {
        let mut ours = Runs::default();
        let mut reference = Runs::default();
        for (id, o, r) in [
            ("a", 1.0, 1.2),
            ("b", 1.0, 3.0),
            ("c", 1.0, 0.85),
            ("d", 2.0, 1.0),
            ("e", 1.0, 1.3),
        ] {
            ours.push(id, o);
            reference.push(id, r);
        }
        ours.push("c", 3.0);
        ours.push("c", 0.5);
        assert_eq!(ours.median("c"), Some(1.0));
        assert_eq!(ours.rounds("c"), 3);
        assert_eq!(ours.median("z"), None);
        assert_eq!(near_parity(&ours, &reference), ["a", "c", "d"]);
        assert_eq!(exact_filter(&["a/1".into(), "b/2".into()]), "^(a/1|b/2)$");
    }
}
