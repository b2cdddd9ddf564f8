//! The `ssl` section of `cargo xtask bench`: what SSL mode costs
//! (`cargo bench -p py2p --bench ssl`: two-node broadcast plaintext vs SSL, handshake rate)
//! against py2p 0.5.607 over SSL (`interop/bench_reference_ssl.py`) in the same run.

use std::process::Command;

use super::common::{BenchArgs, Section};
use super::network::{ratio, thousands, Results};
use crate::util::{self, Result};
use crate::venv;

/// Runs both programs and renders the section.
pub fn section(args: &BenchArgs) -> Result<Section> {
    let mut cmd = util::cargo();
    cmd.args(["bench", "-p", "py2p", "--bench", "ssl", "--"]);
    if args.quick {
        cmd.arg("--quick");
    }
    let ours = Results::parse(&util::output(&mut cmd)?, "the ssl bench")?;
    let reference = if args.no_python {
        None
    } else {
        let python = venv::ensure()?;
        let mut cmd = Command::new(&python);
        cmd.arg("interop/bench_reference_ssl.py")
            .current_dir(util::repo_root());
        if args.quick {
            cmd.arg("--quick");
        }
        Some(Results::parse(
            &util::output(&mut cmd)?,
            "interop/bench_reference_ssl.py",
        )?)
    };
    Ok(Section {
        id: "ssl",
        markdown: markdown(&ours, reference.as_ref()),
        failure: (ours.flag("ok") != Some(true)).then(|| "the ssl bench was incomplete".into()),
    })
}

fn rate(x: Option<f64>, unit: &str) -> String {
    x.map_or_else(|| "—".into(), |v| format!("{} {unit}", thousands(v)))
}

fn markdown(ours: &Results, reference: Option<&Results>) -> String {
    let py_ssl = reference.and_then(|r| r.f("ssl.broadcast.n2000.msg_per_s"));
    let mut s = String::from(
        "## SSL mode: what TLS costs, against py2p 0.5.607 SSL\n\n\
         Ours: `cargo bench -p py2p --bench ssl` (plaintext and SSL runs alternate, fresh nodes, \
         median). Reference: `interop/bench_reference_ssl.py` (py2p 0.5.607, `protocol(\"mesh\", \"SSL\")`), \
         in the same `cargo xtask bench` run.\n\n\
         | measure | ours plaintext | ours SSL | py2p SSL | SSL vs our plaintext (target ≥ 0.8) | ours vs py2p, SSL (target ≥ 100×) |\n\
         |---|---|---|---|---|---|\n",
    );
    for n in [2_000, 10_000] {
        let p = ours.f(&format!("broadcast.n{n}.plaintext.msg_per_s"));
        let t = ours.f(&format!("broadcast.n{n}.ssl.msg_per_s"));
        let py = if n == 2_000 { py_ssl } else { None };
        s.push_str(&format!(
            "| two-node broadcast, {} × 200 B | {} | {} | {} | {} | {} |\n",
            thousands(n as f64),
            rate(p, "msg/s"),
            rate(t, "msg/s"),
            rate(py, "msg/s"),
            ours.f(&format!("broadcast.n{n}.ssl_vs_plaintext"))
                .map_or_else(|| "—".into(), |r| format!("{r:.2}")),
            ratio(t.zip(py).map(|(a, b)| a / b)),
        ));
    }
    s.push_str(&format!(
        "| handshakes (50 nodes dial one: TCP + TLS + py2p) | {} | {} | — | {} | — |\n",
        rate(ours.f("handshakes.k50.plaintext.conn_per_s"), "conn/s"),
        rate(ours.f("handshakes.k50.ssl.conn_per_s"), "conn/s"),
        ours.f("handshakes.k50.ssl.conn_per_s")
            .zip(ours.f("handshakes.k50.plaintext.conn_per_s"))
            .map_or_else(|| "—".into(), |(a, b)| format!("{:.2}", a / b)),
    ));
    s
}
