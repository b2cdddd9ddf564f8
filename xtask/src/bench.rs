//! `cargo xtask bench`: runs the benchmarks, compares with the Python
//! reference implementation and writes `docs/performance.md`.
//!
//! The report is made of sections, each delimited in the Markdown by
//! `<!-- section:ID -->` ... `<!-- /section:ID -->` markers. A run replaces
//! the sections it produced and keeps the others as they were, so further
//! benchmark families can be added as new [`Section`] producers in [`run`]
//! without touching the existing ones.
//!
//! Sections: `codec` (criterion, below), `codec-size` (encode/decode against
//! the payload size, [`codec_size`]), `network` (nodes on loopback,
//! [`network`]) and `scale` (meshes of 2 to 64 nodes, memory against the
//! number of connections, [`scale`]), and, when named, `libp2p` (rust-libp2p doing the same
//! broadcasts, [`libp2p`]). The curves are drawn as SVG by [`plot`].

mod codec_size;
mod libp2p;
mod network;
mod plot;
mod python;
mod scale;
mod ssl;

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

/// The sections `cargo xtask bench` knows, in report order.
const SECTIONS: [&str; 7] = [
    "codec",
    "codec-size",
    "network",
    "scale",
    "ssl",
    "python",
    "libp2p",
];

/// Where the report goes, relative to the repository root.
const REPORT: &str = "docs/performance.md";

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

/// Runs `cargo xtask bench`.
pub fn run(args: &BenchArgs) -> Result<()> {
    if let Some(bad) = args.only.iter().find(|s| !SECTIONS.contains(&s.as_str())) {
        return Err(err!(
            "unknown section `{bad}` (known: {})",
            SECTIONS.join(", ")
        ));
    }
    let wanted = |id: &str| args.only.is_empty() || args.only.iter().any(|s| s == id);
    // Every producer returns one section; add new benchmark families here.
    let mut sections = Vec::new();
    if wanted("codec") {
        sections.push(codec_section(args)?);
    }
    if wanted("codec-size") {
        sections.push(codec_size::section(args)?);
    }
    if wanted("network") {
        sections.push(network::section(args)?);
    }
    if wanted("scale") {
        sections.push(scale::section(args)?);
    }
    if wanted("ssl") {
        sections.push(ssl::section(args)?);
    }
    if wanted("python") {
        sections.push(python::section(args)?);
    }
    // rust-libp2p is large to build: only when asked for by name.
    if args.only.iter().any(|s| s == "libp2p") {
        sections.push(libp2p::section(args)?);
    }

    let machine = machine_description()?;
    let path = util::repo_root().join(REPORT);
    let old = fs::read_to_string(&path).unwrap_or_default();
    let text = render_report(&machine, &sections, &old);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).context(format_args!("cannot create {}", dir.display()))?;
    }
    fs::write(&path, text).context(format_args!("cannot write {}", path.display()))?;
    println!("wrote {}", path.display());
    let failures: Vec<&str> = sections
        .iter()
        .filter_map(|s| s.failure.as_deref())
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(err!(
            "the report was written, but checks failed: {}",
            failures.join("; ")
        ))
    }
}

// ---------------------------------------------------------------------------
// Section: message codec

/// Payload sizes of the codec benchmark (criterion ids and Python keys).
const SIZES: [&str; 2] = ["200B", "64KiB"];
/// Compressions of the codec benchmark, `none` first.
const COMPRESSIONS: [&str; 6] = ["none", "snappy", "zlib", "gzip", "bz2", "lzma"];

/// One row of a comparison table: median seconds per operation.
struct Row {
    op: String,
    ours: Option<f64>,
    reference: Option<f64>,
}

fn codec_section(args: &BenchArgs) -> Result<Section> {
    if !args.no_run {
        let mut cmd = util::cargo();
        cmd.args(["bench", "-p", "py2p-wire", "--bench", "codec", "--"]);
        // The size curves (`encode_size/...`) are the `codec-size` section's.
        cmd.arg("^(encode|decode|floor)/");
        if args.quick {
            cmd.args([
                "--warm-up-time",
                "1",
                "--measurement-time",
                "2",
                "--sample-size",
                "20",
            ]);
        }
        util::run(&mut cmd)?;
    }

    let mut ids: Vec<String> = Vec::new();
    for group in ["encode", "decode"] {
        for size in SIZES {
            for c in COMPRESSIONS {
                ids.push(format!("{group}/{size}/{c}"));
            }
        }
    }
    for size in SIZES {
        ids.push(format!("floor/{size}"));
    }

    let criterion = util::target_dir().join("criterion");
    let mut rows = Vec::new();
    for id in &ids {
        let ours = criterion_median_ns(&criterion, id)? * 1e-9;
        rows.push(Row {
            op: id.clone(),
            ours: Some(ours),
            reference: None,
        });
    }

    let mut reference_info = String::from("not run (`--no-python`)");
    if !args.no_python {
        let reference = python_codec_reference(args, "base")?;
        for row in &mut rows {
            row.reference = reference.get(&row.op);
        }
        reference_info = reference.info;
    }

    let mut md = String::new();
    md.push_str("## Message codec: py2p-wire vs py2p 0.5.607\n\n");
    md.push_str(
        "Median time per operation. *encode* builds a message \
         (`Message::new(b\"\\x00\", sender, [b\"\\x00\", payload], time)`) and \
         produces its frame (`encode`), like py2p's `InternalMessage(...).string`; \
         *decode* parses a frame, decompressing and verifying the checksum \
         (`Message::decode_frame`), like `InternalMessage.feed_string`. \
         *floor* is the work every message needs whatever the implementation: \
         sha384 of the payload and base-58 time, then base-58 of the digest. \
         Payloads are deterministic, half text-like and half random \
         (the same bytes in both implementations). \
         Ratio > 1 means py2p-wire is faster.\n\n",
    );
    md.push_str(&format!(
        "Rust: criterion{}, `cargo bench -p py2p-wire --bench codec`. \
         Reference: {reference_info}, `interop/bench_reference.py`.\n\n",
        if args.quick { " (quick mode)" } else { "" }
    ));
    md.push_str("| operation | py2p-wire | py2p 0.5.607 | ratio (py2p / ours) |\n");
    md.push_str("|---|---:|---:|---:|\n");
    for row in &rows {
        md.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            row.op,
            fmt_secs(row.ours),
            fmt_secs(row.reference),
            match (row.ours, row.reference) {
                (Some(o), Some(r)) if o > 0.0 => format!("{:.1}×", r / o),
                _ => "—".to_string(),
            }
        ));
    }
    md.push_str(
        "\nNotes: `lzma` encodes with liblzma at preset 6 as py2p does (same frame sizes), \
         with a dictionary no larger than the message (py2p clears preset 6's 94 MiB of \
         tables for every message); it decodes with liblzma too (lzma-rs for a stream declaring a dictionary above the memory limit). `floor` bounds what any implementation can reach for large payloads, where \
         `none` decode is mostly the checksum.\n",
    );
    Ok(Section {
        id: "codec",
        markdown: md,
        failure: None,
    })
}

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
    let python = venv::ensure()?;
    let mut cmd = Command::new(&python);
    cmd.arg("interop/bench_reference.py")
        .args(["--part", part])
        .current_dir(util::repo_root());
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

// ---------------------------------------------------------------------------
// Report assembly

/// A Markdown list describing the machine the benchmarks ran on.
fn machine_description() -> Result<String> {
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get().to_string())
        .unwrap_or_else(|_| "?".into());
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let rustc = util::output(
        Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
            .arg("--version")
            .current_dir(util::repo_root()),
    )
    .map(|s| s.trim().to_string())
    .unwrap_or_else(|_| "unknown".into());
    // The benchmarks themselves keep about 2 threads busy: a load well above that means
    // other work shared the cores, and the timings are noisier and slower than on a quiet
    // machine.
    let load = fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|| "unknown".into());
    Ok(format!(
        "- date: {}\n- CPU: {cpu}\n- cores (nproc): {nproc}\n- rustc: {rustc}\n\
         - load average at the end of the run (1, 5, 15 min): {load}\n",
        util::utc_date_today()
    ))
}

fn begin_marker(id: &str) -> String {
    format!("<!-- section:{id} -->")
}

fn end_marker(id: &str) -> String {
    format!("<!-- /section:{id} -->")
}

/// Sections found in a previous report, in order: `(id, full block text)`.
fn old_sections(old: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = old;
    while let Some(start) = rest.find("<!-- section:") {
        let after = &rest[start + "<!-- section:".len()..];
        let Some(close) = after.find(" -->") else {
            break;
        };
        let id = after[..close].to_string();
        let end = end_marker(&id);
        let Some(end_pos) = rest[start..].find(&end) else {
            break;
        };
        let block_end = start + end_pos + end.len();
        found.push((id, rest[start..block_end].to_string()));
        rest = &rest[block_end..];
    }
    found
}

/// Builds the whole report: machine, then every section, the new ones and those
/// of the previous report that this run did not regenerate, in [`SECTIONS`] order
/// (unknown ones last, as they were).
fn render_report(machine: &str, sections: &[Section], old: &str) -> String {
    let mut blocks: Vec<(String, String)> = sections
        .iter()
        .map(|s| {
            let block = format!(
                "{}\n{}\n{}",
                begin_marker(s.id),
                s.markdown.trim_end(),
                end_marker(s.id)
            );
            (s.id.to_string(), block)
        })
        .collect();
    for (id, block) in old_sections(old) {
        if sections.iter().all(|s| s.id != id) {
            blocks.push((id, block));
        }
    }
    let rank = |id: &str| {
        SECTIONS
            .iter()
            .position(|s| *s == id)
            .unwrap_or(SECTIONS.len())
    };
    blocks.sort_by_key(|(id, _)| rank(id));

    let mut out = String::new();
    out.push_str("# Performance\n\n");
    out.push_str(
        "Generated by `cargo xtask bench` (`--quick` for a shorter run); \
         do not edit by hand, rerun it. Sections not regenerated by a run are kept.\n\n",
    );
    out.push_str("## Machine (last run)\n\n");
    out.push_str(machine);
    for (_, block) in blocks {
        out.push('\n');
        out.push_str(&block);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_sections_not_regenerated() {
        let first = render_report(
            "- m1\n",
            &[
                Section {
                    id: "codec",
                    markdown: "## Codec\nold\n".into(),
                    failure: None,
                },
                Section {
                    id: "net",
                    markdown: "## Net\nkept\n".into(),
                    failure: None,
                },
            ],
            "",
        );
        let second = render_report(
            "- m2\n",
            &[Section {
                id: "codec",
                markdown: "## Codec\nnew\n".into(),
                failure: None,
            }],
            &first,
        );
        assert!(second.contains("- m2"));
        assert!(second.contains("new") && !second.contains("old"));
        assert!(second.contains("## Net\nkept"));
        assert_eq!(old_sections(&second).len(), 2);
    }

    #[test]
    fn sections_keep_their_order() {
        let first = render_report(
            "- m1\n",
            &[
                Section {
                    id: "codec",
                    markdown: "## Codec\n".into(),
                    failure: None,
                },
                Section {
                    id: "network",
                    markdown: "## Network\nold\n".into(),
                    failure: None,
                },
            ],
            "",
        );
        let second = render_report(
            "- m2\n",
            &[Section {
                id: "network",
                markdown: "## Network\nnew\n".into(),
                failure: None,
            }],
            &first,
        );
        let ids: Vec<String> = old_sections(&second)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ids, ["codec", "network"]);
        assert!(second.contains("new") && !second.contains("old"));
    }

    #[test]
    fn formats_durations() {
        assert_eq!(fmt_secs(Some(812e-9)), "812 ns");
        assert_eq!(fmt_secs(Some(12.3456e-6)), "12.35 µs");
        assert_eq!(fmt_secs(Some(4.5e-3)), "4.50 ms");
        assert_eq!(fmt_secs(None), "—");
    }
}
