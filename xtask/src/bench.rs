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

mod codec;
mod codec_size;
mod common;
mod libp2p;
mod network;
mod plot;
mod python;
mod scale;
mod ssl;

use std::fs;
use std::process::Command;

pub use self::common::BenchArgs;
use self::common::Section;
use crate::err;
use crate::util::{self, Context, Result};

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
        sections.push(codec::section(args)?);
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
// Report assembly

/// A Markdown list describing the machine the benchmarks ran on.
fn machine_description() -> Result<String> {
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get().to_string())
        .unwrap_or_else(|_| "?".into());
    let cpu = util::cpu_model().unwrap_or_else(|| "unknown".into());
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
}
