//! The `codec` section of `cargo xtask bench`: encode and decode of 200 B and 64 KiB
//! messages per compression (criterion, `cargo bench -p py2p-wire --bench codec`) against
//! py2p 0.5.607 measured in the same run.

use super::common::{
    criterion_median_ns, fmt_secs, near_parity, parity_rounds, python_codec_reference, BenchArgs,
    Runs, Section, COMPRESSIONS, NEAR_PARITY, PARITY_ROUNDS,
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
    let criterion_args: &[&str] = if args.quick {
        &[
            "--warm-up-time",
            "1",
            "--measurement-time",
            "2",
            "--sample-size",
            "20",
        ]
    } else {
        &[]
    };
    if !args.no_run {
        let mut cmd = util::cargo();
        cmd.args(["bench", "-p", "py2p-wire", "--bench", "codec", "--"]);
        // The size curves (`encode_size/...`) are the `codec-size` section's.
        cmd.arg("^(encode|decode|floor)/").args(criterion_args);
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
    let mut ours = Runs::default();
    for id in &ids {
        ours.push(id, criterion_median_ns(&criterion, id)? * 1e-9);
    }

    let mut reference = Runs::default();
    let mut reference_info = String::from("not run (`--no-python`)");
    let mut near = Vec::new();
    if !args.no_python {
        let first = python_codec_reference(args, "base")?;
        for (id, secs) in &first.results {
            reference.push(id, *secs);
        }
        reference_info = first.info;
        near = near_parity(&ours, &reference);
        parity_rounds(
            args,
            &near,
            criterion_args,
            "base",
            &mut ours,
            &mut reference,
        )?;
    }
    let rows: Vec<Row> = ids
        .iter()
        .map(|id| Row {
            op: id.clone(),
            ours: ours.median(id),
            reference: reference.median(id),
        })
        .collect();

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
    if !near.is_empty() && ours.rounds(&near[0]) > 1 {
        md.push_str(&format!(
            "The rows below {NEAR_PARITY}× after one round ({}) were measured \
             {PARITY_ROUNDS} more times, ours and py2p's alternately; their figures are the \
             medians of the {} rounds.\n\n",
            near.iter()
                .map(|id| format!("`{id}`"))
                .collect::<Vec<_>>()
                .join(", "),
            PARITY_ROUNDS + 1
        ));
    }
    md.push_str("| operation | py2p-wire | py2p 0.5.607 | ratio (py2p / ours) |\n");
    md.push_str("|---|---:|---:|---:|\n");
    for row in &rows {
        md.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            row.op,
            fmt_secs(row.ours),
            fmt_secs(row.reference),
            match (row.ours, row.reference) {
                // Two decimals near parity, where the first one would hide which side wins.
                (Some(o), Some(r)) if o > 0.0 && r / o < 2.0 => format!("{:.2}×", r / o),
                (Some(o), Some(r)) if o > 0.0 => format!("{:.1}×", r / o),
                _ => "—".to_string(),
            }
        ));
    }
    md.push_str(&format!("\n{}\n", target_line(&rows)));
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

/// The line for issue 14's codec target, "no row below 1.0× py2p", over the encode and
/// decode rows (the floor is not an implementation's row): met or not, with the rows below
/// (exact ratios: the table rounds them).
fn target_line(rows: &[Row]) -> String {
    let mut below = Vec::new();
    let mut lowest: Option<(f64, &str)> = None;
    for row in rows.iter().filter(|r| !r.op.starts_with("floor/")) {
        let (Some(ours), Some(reference)) = (row.ours, row.reference) else {
            continue;
        };
        if ours <= 0.0 {
            continue;
        }
        let r = reference / ours;
        if r < 1.0 {
            below.push(format!("`{}` {r:.2}×", row.op));
        }
        if lowest.is_none_or(|(l, _)| r < l) {
            lowest = Some((r, &row.op));
        }
    }
    match (lowest, below.is_empty()) {
        (None, _) => "**Target (issue 14), no row below 1.0× py2p: not shown** (no row has both \
                      sides measured)."
            .into(),
        (Some((r, op)), true) => format!(
            "**Target (issue 14), no row below 1.0× py2p: met** in this run (lowest: `{op}` \
             {r:.2}×)."
        ),
        (Some(_), false) => format!(
            "**Target (issue 14), no row below 1.0× py2p: not met** in this run: {}.",
            below.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(op: &str, ours: f64, reference: f64) -> Row {
        Row {
            op: op.into(),
            ours: Some(ours),
            reference: Some(reference),
        }
    }

    #[test]
    fn the_target_line_names_the_rows_below_parity_and_skips_the_floor() {
        let rows = [
            row("encode/200B/none", 1.0, 20.0),
            row("decode/64KiB/bz2", 2.0, 1.9),
            row("floor/64KiB", 2.0, 1.0),
        ];
        let line = target_line(&rows);
        assert!(line.contains("not met"), "{line}");
        assert!(line.contains("`decode/64KiB/bz2` 0.95×"), "{line}");
        assert!(!line.contains("floor"), "{line}");
        let line = target_line(&rows[..1]);
        assert!(
            line.contains("met** in this run (lowest: `encode/200B/none` 20.00×)"),
            "{line}"
        );
    }
}
