//! The `codec` section of `cargo xtask bench`: encode and decode of 200 B and 64 KiB
//! messages per compression (criterion, `cargo bench -p py2p-wire --bench codec`) against
//! py2p 0.5.607 measured in the same run.

use super::common::{
    criterion_median_ns, fmt_secs, python_codec_reference, BenchArgs, Section, COMPRESSIONS,
};
use crate::util::{self, Result};

/// Payload sizes of the codec benchmark (criterion ids and Python keys).
const SIZES: [&str; 2] = ["200B", "64KiB"];

/// One row of a comparison table: median seconds per operation.
struct Row {
    op: String,
    ours: Option<f64>,
    reference: Option<f64>,
}

pub fn section(args: &BenchArgs) -> Result<Section> {
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
