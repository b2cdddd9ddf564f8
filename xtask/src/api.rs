//! `cargo xtask api`: the user crates' documented API shows no test machinery.
//!
//! Builds the docs of `py2p` and `py2p-wire` alone (`cargo doc --no-deps`, default
//! features) and fails on a public item without docs: the workspace's clippy cannot see
//! one, as it builds `py2p` with the `internals` feature py2p-sim turns on, which allows
//! `missing_docs`. Then reads each crate's `all.html`, rustdoc's list of every public item,
//! and fails if an item lives under a module or has a name that belongs to the simulator or
//! the fuzz harness (`sim`, `internals`, `exercise`).

use std::fs;
use std::process::Stdio;

use crate::err;
use crate::util::{self, Context, Result};

/// The crates users get, by their names in `target/doc`.
const USER_CRATES: [&str; 2] = ["py2p", "py2p_wire"];

/// Path segments (module or item names) that only test machinery has.
const FORBIDDEN: [&str; 3] = ["sim", "internals", "exercise"];

/// Runs `cargo xtask api`.
pub fn run() -> Result<()> {
    // The crates say `#![warn(missing_docs)]`, which outranks a `-D` on the command line:
    // read the warnings instead (cargo replays them when the docs are up to date).
    let args = ["doc", "--no-deps", "-p", "py2p", "-p", "py2p-wire"];
    println!("$ cargo {}", args.join(" "));
    let out = util::cargo()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot start cargo doc")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprint!("{stderr}");
    if !out.status.success() {
        return Err(err!(
            "cargo doc failed with {}",
            util::describe_status(out.status)
        ));
    }
    let undocumented = stderr
        .lines()
        .filter(|l| l.starts_with("warning: missing documentation"))
        .count();
    if undocumented > 0 {
        return Err(err!(
            "{undocumented} public item(s) without docs (see above)"
        ));
    }
    let mut found = Vec::new();
    for krate in USER_CRATES {
        let path = util::target_dir().join("doc").join(krate).join("all.html");
        let html = fs::read_to_string(&path).context(format!("read {}", path.display()))?;
        let items = item_paths(&html);
        if items.is_empty() {
            return Err(err!("{} lists no items (rustdoc changed?)", path.display()));
        }
        println!("{krate}: {} public items", items.len());
        found.extend(
            forbidden_items(&items)
                .into_iter()
                .map(|i| format!("{krate}::{i}")),
        );
    }
    if found.is_empty() {
        println!("no simulator, internals or exercises in the public API");
        Ok(())
    } else {
        Err(err!(
            "test machinery in the public API: {}",
            found.join(", ")
        ))
    }
}

/// The items `all.html` links to, as paths: `mesh/struct.Events.html` becomes
/// `mesh::Events`.
fn item_paths(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|href| {
            !href.starts_with("http") && !href.starts_with("..") && href.ends_with(".html")
        })
        .filter_map(|href| {
            let (dirs, file) = href.rsplit_once('/').unwrap_or(("", href));
            // `struct.Events.html` -> `Events`; pages that are not items (index.html) go.
            let name = file.strip_suffix(".html")?.split_once('.')?.1;
            let mut path: Vec<&str> = dirs.split('/').filter(|d| !d.is_empty()).collect();
            path.push(name);
            Some(path.join("::"))
        })
        .collect()
}

/// The items whose path has a segment of test machinery.
fn forbidden_items(items: &[String]) -> Vec<String> {
    items
        .iter()
        .filter(|item| {
            item.split("::").any(|segment| {
                let segment = segment.to_ascii_lowercase();
                FORBIDDEN
                    .iter()
                    .any(|word| segment == *word || segment.contains("exercise"))
            })
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_item_paths_and_finds_test_machinery() {
        let html = r#"<h3 id="structs">Structs</h3><ul class="all-items">
            <li><a href="struct.ChordConfig.html">ChordConfig</a></li>
            <li><a href="mesh/struct.Events.html">mesh::Events</a></li>
            <li><a href="sim/struct.Sim.html">sim::Sim</a></li>
            <li><a href="internals/struct.MeshCore.html">internals::MeshCore</a></li>
            <li><a href="fn.exercise_frames.html">exercise_frames</a></li>
            <li><a href="simple/struct.Simple.html">simple::Simple</a></li>
            </ul><a href="../static.files/x.html">x</a><a href="index.html">i</a>"#;
        let items = item_paths(html);
        assert_eq!(
            items,
            [
                "ChordConfig",
                "mesh::Events",
                "sim::Sim",
                "internals::MeshCore",
                "exercise_frames",
                "simple::Simple"
            ]
        );
        assert_eq!(
            forbidden_items(&items),
            ["sim::Sim", "internals::MeshCore", "exercise_frames"]
        );
    }
}
