//! The `libp2p` section of `cargo xtask bench`: rust-libp2p (gossipsub and floodsub over
//! TCP + noise + yamux on loopback) doing the broadcast work of our `network` and `scale`
//! measures, as the anchor a Rust user would pick instead of py2p-rs.
//!
//! The program is the separate workspace `bench-libp2p/` (excluded from ours, with its own
//! target directory: libp2p is large and CI never builds it); this section builds and runs it
//! only when asked for (`--only libp2p`, or `--section libp2p`). Its JSON is kept in
//! `target/bench-libp2p.json`, where the `scale` section's plot also finds it.

use std::fs;

use serde_json::{Map, Value};

use super::common::{BenchArgs, Section};
use super::network::{thousands, write};
use crate::err;
use crate::util::{self, Context, Result};

/// The anchor's results, relative to our target directory.
pub const JSON: &str = "bench-libp2p.json";
/// Ours, as the `network` and `scale` sections keep them.
const OURS_NETWORK_JSON: &str = "bench-network.json";
const OURS_SCALE_JSON: &str = "bench-scale.json";
/// Ours must be at least this many times the anchor's broadcast rate.
const TARGET_RATIO: f64 = 3.0;

/// The last line of a program's output, as a JSON object.
pub fn parse_last_object(text: &str) -> Option<Map<String, Value>> {
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    match serde_json::from_str(line) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// The anchor's last results, if a `libp2p` run left some.
pub fn last_results() -> Option<Map<String, Value>> {
    let text = fs::read_to_string(util::target_dir().join(JSON)).ok()?;
    parse_last_object(&text)
}

fn ours(file: &str) -> Option<Map<String, Value>> {
    parse_last_object(&fs::read_to_string(util::target_dir().join(file)).ok()?)
}

fn f(map: Option<&Map<String, Value>>, key: &str) -> Option<f64> {
    map?.get(key)?.as_f64().filter(|x| x.is_finite())
}

/// Produces the section (building and running `bench-libp2p` unless `--no-run`).
pub fn section(args: &BenchArgs) -> Result<Section> {
    let path = util::target_dir().join(JSON);
    let text = if args.no_run {
        fs::read_to_string(&path).context(format_args!(
            "cannot read {} (run `cargo xtask bench --only libp2p` first)",
            path.display()
        ))?
    } else {
        let root = util::repo_root();
        let mut cmd = util::cargo();
        cmd.args(["run", "--release", "--manifest-path"])
            .arg(root.join("bench-libp2p/Cargo.toml"))
            .env("CARGO_TARGET_DIR", root.join("bench-libp2p/target"))
            .arg("--");
        if args.quick {
            cmd.arg("--quick");
        }
        let out = util::output(&mut cmd)?;
        write(&path, &out)?;
        out
    };
    let anchor = parse_last_object(&text).ok_or_else(|| err!("bench-libp2p printed no JSON"))?;
    let network = ours(OURS_NETWORK_JSON);
    let scale = ours(OURS_SCALE_JSON);
    let (markdown, failure) = markdown(&anchor, network.as_ref(), scale.as_ref());
    Ok(Section {
        id: "libp2p",
        markdown,
        failure,
    })
}

/// One comparison: ours and the anchor's broadcasts per second for one shape.
struct Shape {
    label: &'static str,
    nodes: u64,
    ours: Option<(f64, String)>,
}

fn markdown(
    anchor: &Map<String, Value>,
    network: Option<&Map<String, Value>>,
    scale: Option<&Map<String, Value>>,
) -> (String, Option<String>) {
    let a = Some(anchor);
    let mut md = String::new();
    md.push_str("## rust-libp2p as an anchor: gossipsub and floodsub\n\n");
    md.push_str(
        "The broadcast work of the `network` and `scale` sections done by rust-libp2p 0.57 \
         (the Rust stack a user would pick instead): 200-byte messages over TCP on loopback, \
         every node in one process (a tokio runtime of 2 worker threads). *Two nodes*: B \
         publishes N messages, timed until A has them all. *16 nodes*: node i dials node 0 and \
         up to three earlier nodes; M broadcasts spread over the nodes, timed until every node \
         has every broadcast it did not publish. A broadcast delivered twice to one node is a \
         duplicate. Medians of the runs.\n\n",
    );
    md.push_str(&format!(
        "Program: `bench-libp2p/` (its own workspace), `cargo xtask bench --only libp2p`. \
         Configuration: {}.\n\n",
        anchor
            .get("config")
            .and_then(Value::as_str)
            .unwrap_or("(not reported)")
    ));
    let shapes = [
        Shape {
            label: "two nodes",
            nodes: 2,
            ours: f(network, "broadcast.n100000.msg_per_s")
                .map(|r| (r, "N = 100,000, snappy".to_string())),
        },
        Shape {
            label: "16 nodes",
            nodes: 16,
            ours: f(scale, "mesh.n16.broadcasts_per_s").map(|r| {
                (
                    r,
                    format!(
                        "M = {}, {} duplicates",
                        thousands(f(scale, "mesh.m").unwrap_or(0.0)),
                        thousands(f(scale, "mesh.n16.duplicates").unwrap_or(0.0))
                    ),
                )
            }),
        },
    ];
    md.push_str(
        "| mesh | protocol | messages | libp2p: broadcasts/s | delivered (worst run) | duplicates | py2p-rs: broadcasts/s | ratio (ours / libp2p) | target ≥ 3× met? |\n",
    );
    md.push_str("|---|---|---:|---:|---:|---:|---:|---:|---|\n");
    let mut failures = Vec::new();
    for shape in &shapes {
        for proto in ["gossipsub", "floodsub"] {
            let key = format!("{proto}.n{}", shape.nodes);
            let rate = f(a, &format!("{key}.msg_per_s"));
            let delivered = f(a, &format!("{key}.delivered_min"));
            let expected = f(a, &format!("{key}.expected"));
            let dups = f(a, &format!("{key}.duplicates"));
            let whole = delivered.is_some() && delivered == expected;
            let ratio = match (&shape.ours, rate) {
                (Some((o, _)), Some(r)) if r > 0.0 => Some(o / r),
                _ => None,
            };
            let met = match ratio {
                Some(x) if x >= TARGET_RATIO => "yes".to_string(),
                Some(_) => {
                    failures.push(format!("{} {proto}", shape.label));
                    "no".to_string()
                }
                None => "—".to_string(),
            };
            md.push_str(&format!(
                "| {} | {proto} | {} | {} | {}/{}{} | {} | {} | {} | {met} |\n",
                shape.label,
                f(a, &format!("{key}.messages")).map_or("—".into(), thousands),
                rate.map_or("—".into(), thousands),
                delivered.map_or("—".into(), thousands),
                expected.map_or("—".into(), thousands),
                if whole { "" } else { " ⚠ lost" },
                dups.map_or("—".into(), thousands),
                shape.ours.as_ref().map_or("—".into(), |(o, how)| format!(
                    "{} ({how})",
                    thousands(*o)
                )),
                ratio.map_or("—".into(), |x| format!("{x:.1}×")),
            ));
        }
    }
    md.push_str(
        "\nOurs: the `network` section's two-node broadcast at N = 100,000 and the `scale` \
         section's 16-node mesh, from their last runs (`target/bench-network.json`, \
         `target/bench-scale.json`), with exact-once delivery checked there. A libp2p run that \
         lost messages is counted by the broadcasts it delivered.\n",
    );
    let failure = (!failures.is_empty()).then(|| {
        format!(
            "ours is under {TARGET_RATIO}× rust-libp2p for: {}",
            failures.join(", ")
        )
    });
    (md, failure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_compares_and_flags_losses() {
        let anchor = parse_last_object(
            "progress\n{\"gossipsub.n2.msg_per_s\":20000,\"gossipsub.n2.messages\":100000,\
             \"gossipsub.n2.delivered_min\":100000,\"gossipsub.n2.expected\":100000,\
             \"gossipsub.n2.duplicates\":0,\"floodsub.n16.msg_per_s\":500,\
             \"floodsub.n16.delivered_min\":140000,\"floodsub.n16.expected\":150000,\
             \"config\":\"defaults\"}",
        )
        .unwrap();
        let network = parse_last_object("{\"broadcast.n100000.msg_per_s\":200000}").unwrap();
        let scale =
            parse_last_object("{\"mesh.n16.broadcasts_per_s\":1000,\"mesh.m\":10000}").unwrap();
        let (md, failure) = markdown(&anchor, Some(&network), Some(&scale));
        assert!(md.contains(
            "| two nodes | gossipsub | 100,000 | 20,000 | 100,000/100,000 | 0 | 200,000"
        ));
        assert!(md.contains("| 10.0× | yes |"));
        assert!(md.contains("140,000/150,000 ⚠ lost"));
        assert!(md.contains("| 2.0× | no |"));
        assert_eq!(
            failure.as_deref(),
            Some("ours is under 3× rust-libp2p for: 16 nodes floodsub")
        );
    }
}
