//! The `scale` section of `cargo xtask bench`: broadcast delivery in meshes of 2 to 64
//! nodes in one process, and a node's memory against its number of connections (0 to
//! 1,000). Ours: the `mesh` and `conns` measures of `cargo bench -p py2p --bench network`;
//! the reference: the same measures of `interop/bench_reference_net.py`, in the same run.
//! Plots: `docs/mesh-delivery.svg` and `docs/memory-connections.svg`.
//!
//! The 64-node row is checked: every node must get every one of the 10,000 broadcasts
//! exactly once, or the section fails (after the report is written).

use super::common::{BenchArgs, Section};
use super::network::{ratio, run_or_read, thousands, write, yes_no, NetRun, Results};
use super::plot::{self, Axis, Chart, Marker, Point, Series};
use crate::util::{self, Result};

/// Our results, relative to the target directory.
const OURS_JSON: &str = "bench-scale.json";
/// The reference's results, relative to the target directory.
const REFERENCE_JSON: &str = "bench-scale-reference.json";
/// The plots, relative to the repository root.
const SVG_MESH: &str = "docs/mesh-delivery.svg";
const SVG_MEMORY: &str = "docs/memory-connections.svg";
/// Mesh sizes, ours and py2p's together.
pub const MESH_SIZES: [u64; 6] = [2, 4, 8, 16, 32, 64];
/// Connection counts of the memory curve.
pub const CONN_COUNTS: [u64; 6] = [0, 10, 100, 250, 500, 1000];
/// The mesh whose delivery is checked, and its broadcasts.
const CHECKED_MESH: u64 = 64;
const CHECKED_BROADCASTS: f64 = 10_000.0;
/// Issue 14's target for the checked mesh: twice the 1,603 broadcasts/s of its first report.
const ISSUE14_MESH_RATE: f64 = 3_206.0;
const OURS_COLOR: &str = "#1f77b4";
const PY2P_COLOR: &str = "#d62728";
const LIBP2P_COLOR: &str = "#2ca02c";
const FLOODSUB_COLOR: &str = "#9467bd";

/// Produces the section (running the measures unless `--no-run`).
pub fn section(args: &BenchArgs) -> Result<Section> {
    let (ours, reference) = run_or_read(
        args,
        &NetRun {
            what: "mesh and connection measures",
            ours_only: "mesh,conns",
            ours_args: Vec::new(),
            reference_only: "mesh,conns",
            ours_json: OURS_JSON,
            reference_json: REFERENCE_JSON,
            make_with: "cargo xtask bench --only scale",
        },
    )?;

    for (path, chart) in [
        (SVG_MESH, mesh_chart(&ours, reference.as_ref())),
        (SVG_MEMORY, memory_chart(&ours, reference.as_ref())),
    ] {
        let path = util::repo_root().join(path);
        write(&path, &plot::render(&chart))?;
        println!("wrote {}", path.display());
    }
    Ok(Section {
        id: "scale",
        markdown: markdown(&ours, reference.as_ref()),
        failure: checked_mesh(&ours).err(),
    })
}

/// The check of the 64-node row: every node got every broadcast exactly once.
pub fn checked_mesh(ours: &Results) -> std::result::Result<(), String> {
    let key = format!("mesh.n{CHECKED_MESH}");
    let m = ours.f("mesh.m");
    let delivered = ours.f(&format!("{key}.delivered"));
    let expected = ours.f(&format!("{key}.expected"));
    let duplicates = ours.f(&format!("{key}.duplicates"));
    match (m, delivered, expected, duplicates) {
        (Some(m), Some(d), Some(e), Some(0.0)) if m >= CHECKED_BROADCASTS && d == e => Ok(()),
        (Some(m), Some(d), Some(e), Some(dups)) => Err(format!(
            "{CHECKED_MESH}-node mesh, {} broadcasts: {} of {} deliveries, {} duplicates \
             (every node must get every broadcast exactly once)",
            thousands(m),
            thousands(d),
            thousands(e),
            thousands(dups)
        )),
        _ => Err(format!(
            "{CHECKED_MESH}-node mesh: not measured{}",
            ours.get("mesh.error")
                .and_then(|v| v.as_str())
                .map_or(String::new(), |e| format!(" ({e})"))
        )),
    }
}

/// Seconds as text with a fitting unit.
fn secs_text(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else {
        format!("{:.0} ms", s * 1e3)
    }
}

/// One side's cell of the mesh table: time, rate, deliveries, duplicates.
fn mesh_cell(r: &Results, n: u64) -> String {
    let key = format!("mesh.n{n}");
    let (Some(secs), Some(delivered), Some(expected)) = (
        r.f(&format!("{key}.secs")),
        r.f(&format!("{key}.delivered")),
        r.f(&format!("{key}.expected")),
    ) else {
        return match r.get(&format!("{key}.error")).and_then(|v| v.as_str()) {
            Some(e) => format!("failed: {e}"),
            None => "—".into(),
        };
    };
    let m = r.f("mesh.m").unwrap_or(0.0);
    let mut s = format!(
        "{} ({} broadcasts/s); {}/{} delivered",
        secs_text(secs),
        thousands(m / secs),
        thousands(delivered),
        thousands(expected)
    );
    if let Some(min) = r.f(&format!("{key}.delivered_min")) {
        if min < delivered {
            s.push_str(&format!(" (fewest {})", thousands(min)));
        }
    }
    let dups = r.f(&format!("{key}.duplicates")).unwrap_or(0.0);
    s.push_str(&format!(", {} duplicates", thousands(dups)));
    s
}

/// Broadcasts per second of one mesh size, and whether the run was whole (every
/// delivery, no duplicate).
fn mesh_rate(r: &Results, n: u64) -> Option<(f64, bool)> {
    let key = format!("mesh.n{n}");
    let secs = r.f(&format!("{key}.secs")).filter(|s| *s > 0.0)?;
    let m = r.f("mesh.m")?;
    let whole = r.f(&format!("{key}.delivered")) == r.f(&format!("{key}.expected"))
        && r.f(&format!("{key}.duplicates")) == Some(0.0);
    Some((m / secs, whole))
}

fn markdown(ours: &Results, reference: Option<&Results>) -> String {
    let mut md = String::new();
    md.push_str("## Scale: meshes of 2 to 64 nodes, memory against connections\n\n");
    md.push_str(&format!(
        "Ours: `cargo bench -p py2p --bench network -- --only mesh,conns`{}. Reference: {}. \
         Medians of the runs; ratio > 1 means ours is better.\n\n",
        if ours.flag("quick") == Some(true) {
            " (quick mode: one run each)"
        } else {
            ""
        },
        reference.map_or("not run (`--no-python`)".to_string(), |r| {
            let field = |k: &str| r.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_string();
            format!(
                "py2p {} on {} {}, `interop/bench_reference_net.py --only mesh,conns`",
                field("py2p"),
                field("implementation"),
                field("python")
            )
        })
    ));

    // Mesh delivery.
    let m = ours.f("mesh.m").unwrap_or(0.0);
    let ref_m = reference.and_then(|r| r.f("mesh.m"));
    md.push_str("### Broadcast delivery in a mesh in one process\n\n");
    md.push_str(&format!(
        "n nodes on loopback in one process (every node dials node 0, then they connect \
         from peer lists, up to 4 outgoing each, as py2p does). Ours: {} broadcasts of \
         200 bytes spread over all the nodes (broadcast i sent by node i mod n, one sending \
         thread per node), timed from the first send until every node holds every \
         broadcast it did not send; py2p: {} broadcasts the same way (sent in turn from \
         one thread), until delivered or nothing arrived for 2 s. *Duplicates*: a \
         broadcast received a second time by a node, or its own coming back. Ratio: \
         broadcasts per second, ours / py2p (py2p with fewer messages, which favours it: \
         its cost per message grows with traffic).\n\n",
        thousands(m),
        ref_m.map_or("—".into(), thousands)
    ));
    md.push_str("| nodes | links (ours) | ours | py2p 0.5.607 | ratio |\n");
    md.push_str("|---:|---:|---|---|---:|\n");
    for n in MESH_SIZES {
        let ours_rate = mesh_rate(ours, n);
        let ref_rate = reference.and_then(|r| mesh_rate(r, n));
        if ours_rate.is_none()
            && ref_rate.is_none()
            && ours.get(&format!("mesh.n{n}.error")).is_none()
        {
            continue;
        }
        let x = match (ours_rate, ref_rate) {
            (Some((o, _)), Some((p, _))) if p > 0.0 => Some(o / p),
            _ => None,
        };
        md.push_str(&format!(
            "| {n} | {} | {} | {} | {} |\n",
            ours.f(&format!("mesh.n{n}.links"))
                .map_or("—".into(), thousands),
            mesh_cell(ours, n),
            reference.map_or("not run".into(), |r| {
                let cell = mesh_cell(r, n);
                match (cell.as_str(), r.flag("quick")) {
                    ("—", Some(true)) => "not run in quick mode".into(),
                    ("—", _) => "not run".into(),
                    _ => cell,
                }
            }),
            ratio(x)
        ));
    }
    if let Some((rate, whole)) = mesh_rate(ours, CHECKED_MESH) {
        md.push_str(&format!(
            "\n**Target (issue 14):** the {CHECKED_MESH}-node mesh at least {} broadcasts/s \
             with every broadcast delivered once: {} broadcasts/s, {}.\n",
            thousands(ISSUE14_MESH_RATE),
            thousands(rate),
            yes_no(whole && rate >= ISSUE14_MESH_RATE)
        ));
    }
    md.push_str(&format!(
        "\n**Checked:** every node of the {CHECKED_MESH}-node mesh gets every one of {} \
         broadcasts exactly once: **{}**.{}\n\n",
        thousands(CHECKED_BROADCASTS),
        match checked_mesh(ours) {
            Ok(()) => "yes".to_string(),
            Err(_) => yes_no(false),
        },
        match checked_mesh(ours) {
            Ok(()) => String::new(),
            Err(e) => format!(" {e}."),
        }
    ));
    md.push_str("![Broadcasts per second against mesh size](mesh-delivery.svg)\n\n");

    // Memory.
    md.push_str("### Memory against the number of connections\n\n");
    md.push_str(
        "One node in a fresh process; N raw TCP clients each complete a py2p handshake and \
         read everything the node sends; the growth of the node process's `VmRSS` once idle \
         (the idle-connection measure of the network section, at each N). Ours: the clients \
         live in the node's process (their sockets are kernel memory); py2p: the node is a \
         `mesh_socket` alone in its Python process and the clients are in the benchmark's \
         process.\n\n",
    );
    md.push_str(
        "| connections | ours: RSS growth | per connection | py2p: RSS growth | per connection | ratio |\n",
    );
    md.push_str("|---:|---:|---:|---:|---:|---:|\n");
    for c in CONN_COUNTS {
        let key = format!("conns.n{c}.rss_growth");
        let o = ours.f(&key);
        let p = reference.and_then(|r| r.f(&key));
        if o.is_none()
            && p.is_none()
            && reference.is_none_or(|r| r.get(&format!("conns.n{c}.error")).is_none())
        {
            continue;
        }
        let kib = |b: Option<f64>| b.map_or("—".into(), |b| format!("{:.0} KiB", b / 1024.0));
        let per = |b: Option<f64>| match b {
            Some(b) if c > 0 => format!("{:.1} KiB", b / 1024.0 / c as f64),
            _ => "—".into(),
        };
        let p_text = match (
            p,
            reference.and_then(|r| r.get(&format!("conns.n{c}.error"))),
        ) {
            (Some(_), _) => kib(p),
            (None, Some(e)) => format!("failed: {}", e.as_str().unwrap_or("?")),
            (None, None) => "not run".into(),
        };
        let x = match (o, p) {
            (Some(o), Some(p)) if o > 0.0 && c > 0 => Some(p / o),
            _ => None,
        };
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            thousands(c as f64),
            kib(o),
            per(o),
            p_text,
            per(p),
            ratio(x)
        ));
    }
    md.push_str("\n![Memory against the number of connections](memory-connections.svg)\n\n");
    md.push_str(
        "RSS moves in pages and with the allocator's arenas, so small N are noisy (the 0 \
         row is the baseline's own drift, and ours starts from a 3 MiB process, py2p from \
         23 MiB). py2p's growth per connection rises with N: it answers every handshake \
         with its whole routing table and keeps the last whisper sent to each peer \
         (`last_sent`), that list, so N connections likely hold O(N²) bytes; ours caps \
         peer lists at 64 entries and keeps only user messages for resends. py2p reached \
         1,000 connections (its `select` loop would stop near 1,024 descriptors), but \
         connecting them took minutes, as every handshake sends the whole table.\n",
    );
    md
}

/// Broadcasts per second against the mesh size, log-log.
fn mesh_chart(ours: &Results, reference: Option<&Results>) -> Chart {
    let points = |r: &Results| -> Vec<Point> {
        MESH_SIZES
            .iter()
            .filter_map(|&n| {
                let (rate, whole) = mesh_rate(r, n)?;
                Some(Point {
                    x: n as f64,
                    y: rate,
                    hollow: !whole,
                })
            })
            .collect()
    };
    let mut series = vec![Series {
        label: format!(
            "py2p-rs, {} broadcasts",
            thousands(ours.f("mesh.m").unwrap_or(0.0))
        ),
        color: OURS_COLOR,
        dashed: false,
        marker: Marker::Circle,
        points: points(ours),
    }];
    if let Some(r) = reference {
        series.push(Series {
            label: format!(
                "py2p 0.5.607, {} broadcasts",
                thousands(r.f("mesh.m").unwrap_or(0.0))
            ),
            color: PY2P_COLOR,
            dashed: true,
            marker: Marker::Square,
            points: points(r),
        });
    }
    // rust-libp2p's last run (`--only libp2p`), where there is one: its 2- and 16-node points.
    if let Some(anchor) = super::libp2p::last_results() {
        for (proto, color, dashed) in [
            ("gossipsub", LIBP2P_COLOR, true),
            ("floodsub", FLOODSUB_COLOR, true),
        ] {
            let points: Vec<Point> = [2u64, 16]
                .iter()
                .filter_map(|&n| {
                    let get = |k: &str| {
                        anchor
                            .get(&format!("{proto}.n{n}.{k}"))
                            .and_then(|v| v.as_f64())
                    };
                    let rate = get("msg_per_s")?;
                    Some(Point {
                        x: n as f64,
                        y: rate,
                        hollow: get("delivered_min") != get("expected")
                            || get("duplicates") != Some(0.0),
                    })
                })
                .collect();
            if !points.is_empty() {
                series.push(Series {
                    label: format!("rust-libp2p 0.57 {proto}"),
                    color,
                    dashed,
                    marker: Marker::Square,
                    points,
                });
            }
        }
    }
    Chart {
        title: "Mesh in one process: broadcasts per second until all have all".into(),
        x: Axis {
            label: "nodes in the mesh".into(),
            log: true,
            ticks: MESH_SIZES.iter().map(|&n| n as f64).collect(),
            format: |v| format!("{v}"),
        },
        y: Axis {
            label: "broadcasts / s (every node has every one)".into(),
            log: true,
            ticks: Vec::new(),
            format: |v| {
                if v >= 1000.0 {
                    format!("{}k", v / 1000.0)
                } else {
                    format!("{v}")
                }
            },
        },
        series,
        notes: vec![
            "hollow: messages missing or duplicated".into(),
            "(ours and py2p's counts differ)".into(),
        ],
    }
}

/// RSS growth (MiB) against connections, linear.
fn memory_chart(ours: &Results, reference: Option<&Results>) -> Chart {
    let points = |r: &Results| -> Vec<Point> {
        CONN_COUNTS
            .iter()
            .filter_map(|&c| {
                let b = r.f(&format!("conns.n{c}.rss_growth"))?;
                Some(Point::new(c as f64, b / 1_048_576.0))
            })
            .collect()
    };
    let mut series = vec![Series {
        label: "py2p-rs".into(),
        color: OURS_COLOR,
        dashed: false,
        marker: Marker::Circle,
        points: points(ours),
    }];
    if let Some(r) = reference {
        series.push(Series {
            label: "py2p 0.5.607".into(),
            color: PY2P_COLOR,
            dashed: true,
            marker: Marker::Square,
            points: points(r),
        });
    }
    Chart {
        title: "Memory of a node against its idle connections".into(),
        x: Axis {
            label: "connections (handshaken, idle)".into(),
            log: false,
            ticks: Vec::new(),
            format: |v| format!("{v}"),
        },
        y: Axis {
            label: "VmRSS growth (MiB)".into(),
            log: false,
            ticks: Vec::new(),
            format: |v| format!("{v}"),
        },
        series,
        notes: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(text: &str) -> Results {
        Results::parse(text, "test").unwrap()
    }

    const OURS: &str = "{\"quick\":false,\"mesh.m\":10000,\
        \"mesh.n2.secs\":0.1,\"mesh.n2.delivered\":10000,\"mesh.n2.expected\":10000,\
        \"mesh.n2.duplicates\":0,\"mesh.n2.links\":1,\
        \"mesh.n64.secs\":10.0,\"mesh.n64.delivered\":630000,\"mesh.n64.expected\":630000,\
        \"mesh.n64.duplicates\":0,\"mesh.n64.links\":250,\
        \"conns.n0.rss_growth\":4096,\"conns.n1000.rss_growth\":2097152}";
    const PY2P: &str = "{\"py2p\":\"0.5.607\",\"mesh.m\":200,\
        \"mesh.n2.secs\":0.2,\"mesh.n2.delivered\":139,\"mesh.n2.delivered_min\":139,\
        \"mesh.n2.expected\":200,\"mesh.n2.duplicates\":0,\
        \"conns.n1000.rss_growth\":67108864,\"conns.n500.error\":\"timed out\"}";

    #[test]
    fn the_64_node_row_is_checked() {
        assert_eq!(checked_mesh(&results(OURS)), Ok(()));
        let lost = OURS.replace(
            "\"mesh.n64.delivered\":630000",
            "\"mesh.n64.delivered\":629999",
        );
        let err = checked_mesh(&results(&lost)).unwrap_err();
        assert!(err.contains("629,999 of 630,000"), "{err}");
        let dup = OURS.replace("\"mesh.n64.duplicates\":0", "\"mesh.n64.duplicates\":3");
        assert!(checked_mesh(&results(&dup))
            .unwrap_err()
            .contains("3 duplicates"));
        let fewer = OURS.replace("\"mesh.m\":10000", "\"mesh.m\":1000");
        assert!(checked_mesh(&results(&fewer)).is_err());
        let missing = "{\"mesh.error\":\"the mesh of 64 did not become whole\"}";
        assert!(checked_mesh(&results(missing))
            .unwrap_err()
            .contains("did not become whole"));
    }

    #[test]
    fn tables() {
        let (ours, py2p) = (results(OURS), results(PY2P));
        let md = markdown(&ours, Some(&py2p));
        let row2 = md.lines().find(|l| l.starts_with("| 2 |")).unwrap();
        // 100,000 vs 1,000 broadcasts/s.
        assert!(row2.ends_with("| 100× |"), "{row2}");
        assert!(row2.contains("139/200 delivered"), "{row2}");
        let row64 = md.lines().find(|l| l.starts_with("| 64 |")).unwrap();
        assert!(
            row64.contains("630,000/630,000 delivered, 0 duplicates"),
            "{row64}"
        );
        assert!(row64.contains("not run"), "{row64}");
        assert!(md.contains("exactly once: **yes**"));
        let mem = md.lines().find(|l| l.starts_with("| 1,000 |")).unwrap();
        assert_eq!(
            mem,
            "| 1,000 | 2048 KiB | 2.0 KiB | 65536 KiB | 65.5 KiB | 32× |"
        );
        let failed = md.lines().find(|l| l.starts_with("| 500 |")).unwrap();
        assert!(failed.contains("failed: timed out"), "{failed}");
    }

    #[test]
    fn charts() {
        let (ours, py2p) = (results(OURS), results(PY2P));
        let mesh = mesh_chart(&ours, Some(&py2p));
        assert_eq!(mesh.series[0].points.len(), 2);
        assert_eq!(mesh.series[0].points[1].y, 1000.0);
        // py2p lost messages at 2 nodes: hollow.
        assert!(mesh.series[1].points[0].hollow);
        let mem = memory_chart(&ours, Some(&py2p));
        assert_eq!(mem.series[0].points[1], Point::new(1000.0, 2.0));
        assert_eq!(mem.series[1].points, [Point::new(1000.0, 64.0)]);
        for chart in [mesh, mem] {
            let svg = plot::render(&chart);
            assert!(svg.trim_end().ends_with("</svg>"));
        }
    }
}
