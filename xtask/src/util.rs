//! Small helpers shared by the subcommands: errors, paths, running commands.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// An xtask failure: a message meant for a human, printed by `main`.
#[derive(Debug)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// Result type of every xtask operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Builds an [`Error`] from anything printable (`err!("...", args)`).
#[macro_export]
macro_rules! err {
    ($($arg:tt)*) => { $crate::util::Error(format!($($arg)*)) };
}

/// Adds a human-readable context to I/O (or other) errors.
pub trait Context<T> {
    /// Replaces the error by `"{what}: {original error}"`.
    fn context(self, what: impl fmt::Display) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error(format!("{what}: {e}")))
    }
}

/// The repository root (the parent of the `xtask/` directory).
pub fn repo_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest_dir.to_path_buf())
}

/// Cargo's target directory (`$CARGO_TARGET_DIR`, else `<repo>/target`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => repo_root().join(dir),
        _ => repo_root().join("target"),
    }
}

/// A `cargo` command for the pinned toolchain, run from the repository root.
///
/// Uses `$CARGO` (set by `cargo run`, i.e. the very cargo that runs xtask)
/// when available, so the pinned toolchain is used without going through
/// rustup again.
pub fn cargo() -> Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(program);
    cmd.current_dir(repo_root());
    cmd
}

/// A `cargo +nightly ...` command (through the rustup proxy found in PATH).
///
/// Variables that rustup and cargo set for the *pinned* toolchain are removed
/// so that they cannot leak into the nightly build.
pub fn cargo_nightly() -> Command {
    let mut cmd = Command::new("cargo");
    cmd.arg("+nightly");
    for var in [
        "RUSTUP_TOOLCHAIN",
        "CARGO",
        "RUSTC",
        "RUSTDOC",
        "RUSTC_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    cmd.current_dir(repo_root());
    cmd
}

/// Renders a command line for logs (`$ program arg arg`).
///
/// The pinned cargo (an absolute path taken from `$CARGO`) is shown as plain `cargo`.
pub fn display_cmd(cmd: &Command) -> String {
    let program = Path::new(cmd.get_program());
    let mut s = if program.file_name().is_some_and(|n| n == "cargo") {
        "cargo".to_string()
    } else {
        program.to_string_lossy().into_owned()
    };
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&quote(arg));
    }
    s
}

fn quote(arg: &OsStr) -> String {
    let a = arg.to_string_lossy();
    if !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:+,@%".contains(c))
    {
        a.into_owned()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}

/// Describes an exit status for error messages.
pub fn describe_status(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit code {code}"),
        None => format!("{status} (killed by a signal)"),
    }
}

/// Runs `cmd` with inherited stdio, failing unless it exits successfully.
pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = display_cmd(cmd);
    println!("$ {shown}");
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .context(format_args!("cannot start `{shown}`"))?;
    if status.success() {
        Ok(())
    } else {
        Err(err!("`{shown}` failed with {}", describe_status(status)))
    }
}

/// Runs `cmd` like [`run`], also handing each line of its standard output to `on_line`
/// (the lines are still printed as they come).
pub fn run_streaming(cmd: &mut Command, mut on_line: impl FnMut(&str)) -> Result<()> {
    use std::io::{BufRead, BufReader, Write};
    let shown = display_cmd(cmd);
    println!("$ {shown}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context(format_args!("cannot start `{shown}`"))?;
    if let Some(stdout) = child.stdout.take() {
        let mut out = std::io::stdout().lock();
        for line in BufReader::new(stdout).split(b'\n') {
            let Ok(line) = line else { break };
            let text = String::from_utf8_lossy(&line);
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
            on_line(&text);
        }
    }
    let status = child
        .wait()
        .context(format_args!("cannot wait for `{shown}`"))?;
    if status.success() {
        Ok(())
    } else {
        Err(err!("`{shown}` failed with {}", describe_status(status)))
    }
}

/// Runs `cmd` and returns its standard output (stderr is inherited).
pub fn output(cmd: &mut Command) -> Result<String> {
    let shown = display_cmd(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context(format_args!("cannot start `{shown}`"))?;
    if !out.status.success() {
        return Err(err!(
            "`{shown}` failed with {}",
            describe_status(out.status)
        ));
    }
    String::from_utf8(out.stdout).context(format_args!("`{shown}` printed non-UTF-8 output"))
}

/// Runs `cmd` quietly and reports only whether it succeeded.
pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Formats a wall-clock duration as `12.3s` or `4m05s`.
pub fn fmt_elapsed(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let whole = d.as_secs();
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

/// Times a closure.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}

/// FNV-1a (64 bit) of `data`: a stable, dependency-free fingerprint.
pub fn fnv1a64(data: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in data {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The CPU's model name from `/proc/cpuinfo`, for the reports of bench and soak.
pub fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// Today's UTC date as `YYYY-MM-DD` (from the system clock, no time zone data).
pub fn utc_date_today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Converts days since 1970-01-01 to a (year, month, day) civil date
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses a JSON document with `serde_json`, reading the non-finite numbers that Python's
/// `json` module writes (`NaN`, `Infinity`, `-Infinity`, which JSON has not) as `null`.
pub fn parse_json(text: &str) -> Result<serde_json::Value> {
    serde_json::from_str(text).or_else(|first| {
        let nulled = null_non_finite(text);
        if nulled == text {
            return Err(Error(format!("invalid JSON: {first}")));
        }
        serde_json::from_str(&nulled).map_err(|e| Error(format!("invalid JSON: {e}")))
    })
}

/// `text` with Python's non-finite number words outside strings replaced by `null`.
fn null_non_finite(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else if let Some(word) = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|w| rest.starts_with(w))
        {
            out.push_str("null");
            rest = rest.get(word.len()..).unwrap_or_default();
            continue;
        }
        out.push(c);
        rest = rest.get(c.len_utf8()..).unwrap_or_default();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
    }

    #[test]
    fn fnv_reference_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn json_with_python_non_finite_numbers() {
        let v = parse_json(r#"{"a": NaN, "b": [-Infinity, 1.5], "s": "NaN \" Infinity"}"#).unwrap();
        assert!(v["a"].is_null());
        assert!(v["b"][0].is_null());
        assert_eq!(v["b"][1].as_f64(), Some(1.5));
        assert_eq!(v["s"].as_str(), Some(r#"NaN " Infinity"#));
        assert_eq!(
            parse_json(r#"{"k": [1, 2]}"#).unwrap()["k"][1].as_u64(),
            Some(2)
        );
        assert!(parse_json("{\"a\": 1} trailing").is_err());
        assert!(parse_json("garbage").is_err());
    }

    #[test]
    fn quoting() {
        let mut cmd = Command::new("echo");
        cmd.args(["a-b", "two words", "it's"]);
        assert_eq!(display_cmd(&cmd), r"echo a-b 'two words' 'it'\''s'");
    }
}
