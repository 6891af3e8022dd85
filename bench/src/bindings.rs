//! Rows for the language packages: one stream (64 KiB writes) sent by a Node.js, Python,
//! Kotlin or Swift sender to the Rust bench listener, against the native Rust sender on the
//! same size in the same rounds. The senders are bench/bindings/sender.{mjs,py}, the
//! Kotlin and Swift interop runners' `bench-send` mode and, for the native figure, this
//! program's `send` mode; ci/bench-bindings.sh builds the language ones (release) and
//! exports their commands. Every sender is a process of its own against a fresh listener,
//! sends an untimed warm-up stream first, and prints `RESULT <MiB/s> <1|0 checksum ok> <CPU
//! seconds of the sender process over the timed stream>` or `NOT_BUILT <why>` (a package
//! that is not built shows "not built"). The order of the senders rotates round by round,
//! so no one always runs first or after the JVM. The sender's CPU per GiB (all its threads:
//! the host language's and the core's) tells a binding's extra work from time it only
//! waited: on 2 cores the sender and the listener share the CPU, so either costs
//! throughput.
//!
//! The receive rows turn it around: the native sender to a listener written with a
//! language package (bench/bindings/receiver.{mjs,py}; the Kotlin and Swift interop
//! runners' `bench-recv`; Kotlin twice, through the `chunks()` flow and through the
//! blocking `InputStream`; each package also through its read-into call, `readInto`,
//! `readinto` or `read(into:)`, into a 1 MiB buffer it reuses), against the native count-only listener (`serve snapcount`), in
//! the same rounds. A second native row (`serve snapread`) reads as a Rust application that
//! keeps the bytes would, through `AsyncRead` into a 64 KiB buffer of its own: one copy per
//! byte out of the session, as every package makes into its host's memory; each package
//! row's notes give its ratio to that one too. Each receiver prints `ADDR <locator>`,
//! then `STREAM <bytes> <CPU s of its process over the stream>` per stream it counted (the
//! warm-up, then the timed one), and answers each stream with its length; it runs until its
//! standard input closes.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::util::{median, min_max};
use crate::{Row, Server, Sys};

const WRITE: usize = 64 * 1024;

/// Issue 36's target for every binding: at least this share of the native sender's rate.
const TARGET: f64 = 0.95;

/// The Kotlin sender writing through the package's blocking `java.io.OutputStream`
/// (`Stream.outputStream()`, on `Dispatchers.IO`) instead of the suspending `writeAll`.
const KOTLIN_BLOCKING: &str = "Kotlin (OutputStream)";

/// The Kotlin receiver reading through the package's blocking `java.io.InputStream`
/// (`Stream.inputStream()`, on `Dispatchers.IO`) instead of the `chunks()` flow.
const KOTLIN_INPUT: &str = "Kotlin (InputStream)";

/// The Node.js receiver reading through `Stream.readInto` into one Buffer it reuses,
/// instead of async iteration (a Buffer per chunk).
const NODE_INTO: &str = "Node.js (readInto)";

/// The Python receiver reading through `Stream.readinto` into one bytearray it reuses,
/// instead of `async for` (a `bytes` per chunk).
const PYTHON_INTO: &str = "Python (readinto)";

/// The Kotlin receiver reading through `Stream.readInto` into one direct `ByteBuffer` it
/// reuses, instead of the `chunks()` flow.
const KOTLIN_INTO: &str = "Kotlin (readInto)";

/// The Swift receiver reading through `Stream.read(into:)` into one array it reuses,
/// instead of `chunks()`.
const SWIFT_INTO: &str = "Swift (read(into:))";

/// The native Rust sender: this program's `send` mode.
const NATIVE: &str = "native Rust";

/// Program and arguments of one sender: the command prefix ci/bench-bindings.sh exported
/// as `SNAP2P_BENCH_<LANG>` (split on whitespace), then `ADDR TOTAL WRITE`.
type SenderCmd = (String, Vec<String>);

/// The command for one binding, or why there is none.
fn command(name: &str, addr: &str, total: u64) -> Result<SenderCmd, String> {
    if name == NATIVE {
        let exe = std::env::current_exe().map_err(|e| format!("not built ({e})"))?;
        let args = ["send", addr, &total.to_string(), &WRITE.to_string()];
        return Ok((
            exe.to_string_lossy().into_owned(),
            args.map(String::from).to_vec(),
        ));
    }
    let args = [addr.to_string(), total.to_string(), WRITE.to_string()];
    package_command(name, "", &args)
}

/// A package row's command: the prefix ci/bench-bindings.sh exported as
/// `SNAP2P_BENCH_<LANG><suffix>` (`""` for its sender, `"_RECV"` for its receiver; split on
/// whitespace), then `args`, then the row's own flag (the Kotlin rows that go through
/// `java.io` streams, the rows that read into a buffer they reuse); or why there is none.
fn package_command(name: &str, suffix: &str, args: &[String]) -> Result<SenderCmd, String> {
    let (var, flag) = match name {
        "Node.js" => ("NODE", None),
        "Python" => ("PYTHON", None),
        NODE_INTO => ("NODE", Some("--read-into")),
        PYTHON_INTO => ("PYTHON", Some("--readinto")),
        "Kotlin" => ("KOTLIN", None),
        KOTLIN_BLOCKING => ("KOTLIN", Some("--output-stream")),
        KOTLIN_INPUT => ("KOTLIN", Some("--input-stream")),
        KOTLIN_INTO => ("KOTLIN", Some("--read-into")),
        SWIFT_INTO => ("SWIFT", Some("--read-into")),
        "Swift" => ("SWIFT", None),
        _ => return Err("unknown".into()),
    };
    let key = format!("SNAP2P_BENCH_{var}{suffix}");
    let prefix = std::env::var(&key).map_err(|_| {
        let why = std::env::var(format!("SNAP2P_BENCH_{var}_WHY"))
            .unwrap_or_else(|_| format!("{key} unset: ci/bench.sh prepares it"));
        format!("not built ({why})")
    })?;
    let mut words = prefix.split_whitespace().map(String::from);
    let prog = words.next().ok_or_else(|| format!("{key} is empty"))?;
    let mut out: Vec<String> = words.collect();
    out.extend_from_slice(args);
    out.extend(flag.map(String::from));
    Ok((prog, out))
}

/// What one sender run printed: MiB/s, whether the checksum matched, its CPU seconds.
type SenderResult = (f64, bool, f64);

async fn run_sender(name: &str, total: u64) -> Result<SenderResult, String> {
    let srv = Server::start(Sys::Snap, 1024, Duration::from_secs(30)).await;
    let cmd = command(name, &srv.addr, total);
    let res = match cmd {
        Err(e) => Err(e),
        Ok((prog, args)) => {
            let mut c = tokio::process::Command::new(prog);
            c.args(args).kill_on_drop(true);
            match tokio::time::timeout(Duration::from_secs(300), c.output()).await {
                Err(_) => Err("timed out".into()),
                Ok(Err(e)) => Err(format!("not built ({e})")),
                Ok(Ok(out)) => {
                    let s = String::from_utf8_lossy(&out.stdout).to_string();
                    if let Some(l) = s.lines().find(|l| l.starts_with("RESULT ")) {
                        let f: Vec<&str> = l.split_whitespace().collect();
                        let num =
                            |i: usize| f.get(i).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
                        Ok((num(1), f.get(2) == Some(&"1"), num(3)))
                    } else if let Some(l) = s.lines().find(|l| l.starts_with("NOT_BUILT")) {
                        Err(format!(
                            "not built ({})",
                            l.trim_start_matches("NOT_BUILT ")
                        ))
                    } else {
                        let err = String::from_utf8_lossy(&out.stderr);
                        Err(format!(
                            "sender failed: {}",
                            err.lines()
                                .last()
                                .unwrap_or("no output")
                                .chars()
                                .take(120)
                                .collect::<String>()
                        ))
                    }
                }
            }
        }
    };
    srv.stop().await;
    res
}

/// What [`rotate`] measured, per participant.
struct Rounds {
    /// MiB/s of each round.
    figures: Vec<Vec<f64>>,
    /// CPU seconds of each round.
    cpu: Vec<Vec<f64>>,
    /// Why a participant stopped (not built, failed); it is not run again.
    why: Vec<Option<String>>,
    /// A round's checksum or length did not match.
    bad: Vec<bool>,
}

/// Runs `run` for every participant in every round, the order rotating round by round so
/// that no one always runs first.
async fn rotate<F, Fut>(names: &[&'static str], rounds: usize, run: F) -> Rounds
where
    F: Fn(&'static str) -> Fut,
    Fut: std::future::Future<Output = Result<SenderResult, String>>,
{
    let n = names.len();
    let mut m = Rounds {
        figures: vec![Vec::new(); n],
        cpu: vec![Vec::new(); n],
        why: vec![None; n],
        bad: vec![false; n],
    };
    for r in 0..rounds {
        let mut order: Vec<usize> = (0..n).collect();
        order.rotate_left(r % n);
        for i in order {
            if m.why[i].is_some() {
                continue;
            }
            match run(names[i]).await {
                Ok((v, ok, secs)) => {
                    m.figures[i].push(v);
                    m.cpu[i].push(secs);
                    m.bad[i] |= !ok;
                }
                Err(e) => m.why[i] = Some(e),
            }
        }
    }
    m
}

/// The rows, and whether the native sender completed every round with matching checksums.
pub async fn run(total: u64, rounds: usize) -> (Vec<Row>, bool) {
    let mut rows = Vec::new();
    // Entry 0 is the native sender the others are compared with.
    let senders = [
        NATIVE,
        "Node.js",
        "Python",
        "Kotlin",
        KOTLIN_BLOCKING,
        "Swift",
    ];
    let Rounds {
        figures,
        cpu,
        why,
        bad,
    } = rotate(&senders, rounds, |name| run_sender(name, total)).await;
    if let Some(e) = &why[0] {
        eprintln!("bindings: the native sender failed: {e}");
    }
    let nat = if bad[0] {
        f64::NAN
    } else {
        median(&figures[0])
    };
    let range = |v: &[f64]| {
        let (lo, hi) = min_max(v);
        format!("{}–{}", crate::fmt(lo), crate::fmt(hi))
    };
    // The sender's median CPU seconds per GiB sent (NaN: a sender that did not report it).
    let gib = total as f64 / (1u64 << 30) as f64;
    let cpu_note = |i: usize| format!("sender CPU {:.2} s/GiB", median(&cpu[i]) / gib);
    rows.push(Row {
        workload: format!("1 stream, {} MiB, 64 KiB writes, native", total >> 20),
        system: "snap2p native Rust".into(),
        median: why[0]
            .as_ref()
            .map_or_else(|| crate::fmt(nat), |_| "failed".into()),
        range: range(&figures[0]),
        unit: "MiB/s".into(),
        ratio: String::new(),
        target: String::new(),
        met: String::new(),
        notes: match (&why[0], bad[0]) {
            (Some(e), _) => e.clone(),
            (None, true) => "CHECKSUM MISMATCH".into(),
            (None, false) => format!(
                "{}; the figure the rows below are compared with",
                cpu_note(0)
            ),
        },
    });
    for (i, name) in senders.iter().enumerate().skip(1) {
        let target = format!(
            "≥ {:.0}% of native ({} MiB/s)",
            TARGET * 100.0,
            crate::fmt(nat)
        );
        if let Some(e) = &why[i] {
            rows.push(Row {
                workload: format!("1 stream, {} MiB, 64 KiB writes, via {name}", total >> 20),
                system: format!("snap2p {name}"),
                median: "not built".into(),
                range: "–".into(),
                unit: "MiB/s".into(),
                ratio: "–".into(),
                target,
                met: "not built".into(),
                notes: e.clone(),
            });
            continue;
        }
        let v = &figures[i];
        let m = median(v);
        let r = m / nat;
        rows.push(Row {
            workload: format!("1 stream, {} MiB, 64 KiB writes, via {name}", total >> 20),
            system: format!("snap2p {name}"),
            median: crate::fmt(m),
            range: range(v),
            unit: "MiB/s".into(),
            ratio: format!("{r:.2}× native"),
            target,
            met: if r >= TARGET && !bad[i] { "yes" } else { "NO" }.into(),
            notes: if bad[i] {
                "CHECKSUM MISMATCH".into()
            } else {
                cpu_note(i)
            },
        });
    }
    let native_ok = why[0].is_none() && !bad[0] && figures[0].len() == rounds;
    rows.extend(receive_rows(total, rounds).await);
    (rows, native_ok)
}

/// The native receiver reading into a buffer of its own (`serve snapread`).
const NATIVE_READ: &str = "native Rust (AsyncRead)";

/// The receivers of the receive rows; entry 0 is the native one they are compared with
/// (the target), entry 1 the native one that copies as the packages must.
const RECEIVERS: [&str; 11] = [
    NATIVE,
    NATIVE_READ,
    "Node.js",
    NODE_INTO,
    "Python",
    PYTHON_INTO,
    "Kotlin",
    KOTLIN_INPUT,
    KOTLIN_INTO,
    "Swift",
    SWIFT_INTO,
];

/// Program and arguments of one receiver (`SNAP2P_BENCH_<LANG>_RECV`, from
/// ci/bench-bindings.sh), or why there is none.
fn receiver_command(name: &str) -> Result<SenderCmd, String> {
    if name == NATIVE || name == NATIVE_READ {
        let exe = std::env::current_exe().map_err(|e| format!("not built ({e})"))?;
        let kind = if name == NATIVE {
            "snapcount"
        } else {
            "snapread"
        };
        let args = ["serve", kind, "1024", "30000"].map(String::from).to_vec();
        return Ok((exe.to_string_lossy().into_owned(), args));
    }
    package_command(name, "_RECV", &[])
}

type ReceiverLines = tokio::io::Lines<BufReader<tokio::process::ChildStdout>>;

/// A receiver's next line (at most 300 s away).
async fn next_line(lines: &mut ReceiverLines) -> Result<String, String> {
    match tokio::time::timeout(Duration::from_secs(300), lines.next_line()).await {
        Ok(Ok(Some(l))) => Ok(l),
        Ok(_) => Err("receiver ended early".to_string()),
        Err(_) => Err("receiver timed out".to_string()),
    }
}

/// One round of one receiver: the native sender's MiB/s and whether the length it got
/// back matched, and the receiver's CPU seconds over the timed stream.
async fn run_receiver(name: &str, total: u64) -> Result<SenderResult, String> {
    let (prog, args) = receiver_command(name)?;
    let mut child = tokio::process::Command::new(prog)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("not built ({e})"))?;
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let addr = loop {
        let l = next_line(&mut lines).await?;
        if let Some(a) = l.strip_prefix("ADDR ") {
            break a.trim().to_string();
        }
        if let Some(w) = l.strip_prefix("NOT_BUILT ") {
            return Err(format!("not built ({w})"));
        }
    };
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = tokio::process::Command::new(exe)
        .args(["send", &addr, &total.to_string(), &WRITE.to_string()])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), out)
        .await
        .map_err(|_| "sender timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let s = String::from_utf8_lossy(&out.stdout);
    let f: Vec<&str> = s
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .ok_or("the native sender failed")?
        .split_whitespace()
        .collect();
    let mibs = f.get(1).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
    let ok = f.get(2) == Some(&"1");
    // The warm-up stream's line, then the timed one's.
    let mut cpu = f64::NAN;
    for _ in 0..2 {
        let l = next_line(&mut lines).await?;
        cpu = l
            .strip_prefix("STREAM ")
            .and_then(|r| r.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN);
    }
    drop(child.stdin.take());
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    Ok((mibs, ok, cpu))
}

/// The receive rows (see the module comment).
async fn receive_rows(total: u64, rounds: usize) -> Vec<Row> {
    let Rounds {
        figures,
        cpu,
        why,
        bad,
    } = rotate(&RECEIVERS, rounds, |name| run_receiver(name, total)).await;
    let reference = |i: usize| {
        if bad[i] || why[i].is_some() {
            f64::NAN
        } else {
            median(&figures[i])
        }
    };
    let (nat, nat_read) = (reference(0), reference(1));
    let gib = total as f64 / (1u64 << 30) as f64;
    let mut rows = Vec::new();
    for (i, name) in RECEIVERS.iter().enumerate() {
        let workload = format!(
            "1 stream, {} MiB, native sender, received via {name}",
            total >> 20
        );
        let (lo, hi) = min_max(&figures[i]);
        let m = median(&figures[i]);
        let (ratio, target, met) = if i == 0 {
            (String::new(), String::new(), String::new())
        } else if i == 1 {
            (
                format!("{:.2}× native", m / nat),
                String::new(),
                String::new(),
            )
        } else if why[i].is_some() {
            let target = format!("≥ {:.0}% of native", TARGET * 100.0);
            ("–".into(), target, "not built".into())
        } else {
            let r = m / nat;
            (
                format!("{r:.2}× native"),
                format!(
                    "≥ {:.0}% of native ({} MiB/s)",
                    TARGET * 100.0,
                    crate::fmt(nat)
                ),
                if r >= TARGET && !bad[i] { "yes" } else { "NO" }.into(),
            )
        };
        let mut note = format!("receiver CPU {:.2} s/GiB", median(&cpu[i]) / gib);
        if i >= 2 {
            note += &format!("; {:.2}× {NATIVE_READ}", m / nat_read);
        }
        rows.push(Row {
            workload,
            system: format!("snap2p {name}"),
            median: if why[i].is_some() {
                "not built".into()
            } else {
                crate::fmt(m)
            },
            range: if why[i].is_some() {
                "–".into()
            } else {
                format!("{}–{}", crate::fmt(lo), crate::fmt(hi))
            },
            unit: "MiB/s".into(),
            ratio,
            target,
            met,
            notes: match (&why[i], bad[i]) {
                (Some(e), _) => e.clone(),
                (None, true) => "LENGTH MISMATCH".into(),
                (None, false) if i == 0 => {
                    format!(
                        "{note}; count-only listener, the figure the rows below are compared with"
                    )
                }
                (None, false) if i == 1 => {
                    format!("{note}; reads into a 64 KiB buffer of its own: one copy per byte")
                }
                (None, false) => note,
            },
        });
    }
    rows
}
