//! Rows for the language packages: one stream (64 KiB writes) sent by a Node.js, Python,
//! Kotlin or Swift sender to the Rust bench listener, against the native Rust client on the
//! same size in the same rounds. The senders are bench/bindings/sender.{mjs,py} and the
//! Kotlin and Swift interop runners' `bench-send` mode; ci/bench-bindings.sh builds them
//! (release) and exports their commands. Each prints `RESULT <MiB/s> <1|0 checksum ok>`
//! or `NOT_BUILT <why>`; a package that is not built shows "not built".

use std::sync::Arc;
use std::time::Duration;

use crate::util::median;
use crate::{Row, Server, Sys};

const WRITE: usize = 64 * 1024;

/// The Kotlin sender writing through the package's blocking `java.io.OutputStream`
/// (`Stream.outputStream()`, on `Dispatchers.IO`) instead of the suspending `writeAll`.
const KOTLIN_BLOCKING: &str = "Kotlin (OutputStream)";

/// Program and arguments of one sender: the command prefix ci/bench-bindings.sh exported
/// as `SNAP2P_BENCH_<LANG>` (split on whitespace), then `ADDR TOTAL WRITE`.
type SenderCmd = (String, Vec<String>);

/// The command for one binding, or why there is none.
fn command(name: &str, addr: &str, total: u64) -> Result<SenderCmd, String> {
    let (var, extra) = match name {
        "Node.js" => ("NODE", None),
        "Python" => ("PYTHON", None),
        "Kotlin" => ("KOTLIN", None),
        KOTLIN_BLOCKING => ("KOTLIN", Some("--output-stream")),
        "Swift" => ("SWIFT", None),
        _ => return Err("unknown".into()),
    };
    let Ok(prefix) = std::env::var(format!("SNAP2P_BENCH_{var}")) else {
        let why = std::env::var(format!("SNAP2P_BENCH_{var}_WHY"))
            .unwrap_or_else(|_| format!("SNAP2P_BENCH_{var} unset: ci/bench.sh prepares it"));
        return Err(format!("not built ({why})"));
    };
    let mut words = prefix.split_whitespace().map(String::from);
    let prog = words
        .next()
        .ok_or_else(|| format!("SNAP2P_BENCH_{var} is empty"))?;
    let mut args: Vec<String> = words.collect();
    args.extend([addr.to_string(), total.to_string(), WRITE.to_string()]);
    args.extend(extra.map(String::from));
    Ok((prog, args))
}

async fn run_binding(name: &str, total: u64) -> Result<(f64, bool), String> {
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
                        Ok((f[1].parse().unwrap_or(f64::NAN), f.get(2) == Some(&"1")))
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

pub async fn run(pat: &Arc<Vec<u8>>, total: u64, rounds: usize) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut native = Vec::new();
    let bindings = [
        ("Node.js", 0.8),
        ("Python", 0.8),
        ("Kotlin", 0.7),
        (KOTLIN_BLOCKING, 0.7),
        ("Swift", 0.7),
    ];
    let mut figures: Vec<Vec<f64>> = vec![Vec::new(); bindings.len()];
    let mut why: Vec<Option<String>> = vec![None; bindings.len()];
    let mut bad: Vec<bool> = vec![false; bindings.len()];
    for _ in 0..rounds {
        let srv = Server::start(Sys::Snap, 1024, Duration::from_secs(30)).await;
        let (dt_native, ok) = crate::snap::bulk(&srv.addr, pat.clone(), total, WRITE).await;
        srv.stop().await;
        if ok {
            native.push(total as f64 / 1048576.0 / dt_native.as_secs_f64());
        }
        for (i, (name, _)) in bindings.iter().enumerate() {
            if why[i].is_some() {
                continue;
            }
            match run_binding(name, total).await {
                Ok((v, ok)) => {
                    figures[i].push(v);
                    bad[i] |= !ok;
                }
                Err(e) => why[i] = Some(e),
            }
        }
    }
    let nat = median(&native);
    for (i, (name, want)) in bindings.iter().enumerate() {
        let target = format!(
            "≥ {:.0}% of native ({} MiB/s)",
            want * 100.0,
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
        let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let r = m / nat;
        rows.push(Row {
            workload: format!("1 stream, {} MiB, 64 KiB writes, via {name}", total >> 20),
            system: format!("snap2p {name}"),
            median: crate::fmt(m),
            range: format!("{}–{}", crate::fmt(lo), crate::fmt(hi)),
            unit: "MiB/s".into(),
            ratio: format!("{r:.2}× native"),
            target,
            met: if r >= *want && !bad[i] { "yes" } else { "NO" }.into(),
            notes: if bad[i] {
                "CHECKSUM MISMATCH".into()
            } else {
                String::new()
            },
        });
    }
    rows
}
