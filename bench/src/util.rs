//! Process statistics, checksums, the test pattern and small helpers shared by every system.

use std::time::Duration;

/// The runtime of a measuring process that must not take more of the 2-core machine than
/// its counterpart: multi-threaded, two workers, I/O and timers on. Callers add what is
/// theirs (a thread name, a thread-start hook) before `build()`. (snap2p-bench itself keeps
/// tokio's default worker count.)
#[allow(dead_code)]
pub fn runtime_builder() -> tokio::runtime::Builder {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(2).enable_all();
    b
}

/// Resident set size and its peak (KiB) from /proc/self/status.
pub fn rss_kib() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets VmHWM to the current RSS (Linux `clear_refs` value 5).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// User + system CPU time of this process.
pub fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Raises the soft open-file limit to the hard limit (idle-session workload).
pub fn raise_fd_limit() -> u64 {
    // SAFETY: plain libc calls on a struct we own.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
            return r.rlim_cur as u64;
        }
    }
    0
}

/// A 1 MiB pseudo-random pattern; payloads are windows of it so content varies along a
/// stream (a checksum catches reordering, loss and duplication).
pub fn pattern() -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..(1usize << 20))
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The `i`-th write of `size` bytes of a stream that starts at pattern offset `seed`.
pub fn chunk(pat: &[u8], seed: usize, i: usize, size: usize) -> &[u8] {
    let off = (seed.wrapping_mul(7919) + i.wrapping_mul(size)) % (pat.len() - size);
    &pat[off..off + size]
}

/// CRC-32 of the whole stream the sender will write (`total` bytes in `size` writes).
pub fn expected_crc(pat: &[u8], seed: usize, total: u64, size: usize) -> u32 {
    let mut h = crc32fast::Hasher::new();
    let n = total.div_ceil(size as u64) as usize;
    for i in 0..n {
        let left = (total - (i * size) as u64).min(size as u64) as usize;
        h.update(&chunk(pat, seed, i, size)[..left]);
    }
    h.finalize()
}

pub fn median(v: &[f64]) -> f64 {
    // NaN (a figure a system does not have, e.g. relay CPU of a direct session) drops out.
    let mut s: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// Smallest and largest of `v` (NaN, NaN if empty).
pub fn min_max(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let min = v.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let idx = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[idx.min(v.len() - 1)]
}

/// User + system CPU seconds of process `pid` (all its threads) from /proc/<pid>/stat,
/// fields 14 and 15 counted after the ")" that ends the command name; 0 if unreadable.
pub fn proc_cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks as f64 / hz
}

/// Runs `make(i)` for `i` in `0..n` as tasks, at most `at_once` at a time, and returns
/// what the finished ones gave (`None`: a failure, left out). Each task is joined as soon
/// as it ends. Why: the idle workloads spawned all `n` dials (32 running at a time) and
/// joined them only after the last was spawned, so every finished dial's task (its whole
/// future, several KB for a snap2p dial) stayed allocated until then, and the freed cells
/// were left as holes between the sessions' long-lived allocations: the dialer's RSS per
/// idle session measured that harness, not the sessions (docs/BENCHMARKS.md, "Idle
/// memory").
pub async fn run_bounded<T, F, Fut>(n: usize, at_once: usize, make: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Option<T>> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        while set.len() >= at_once.max(1) {
            if let Some(Ok(Some(v))) = set.join_next().await {
                out.push(v);
            }
        }
        set.spawn(make(i));
    }
    while let Some(r) = set.join_next().await {
        if let Ok(Some(v)) = r {
            out.push(v);
        }
    }
    out
}
