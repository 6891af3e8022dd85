//! Where the heap of an idle session goes (issue 36, "idle memory ≤ 4 KiB per session per
//! side"): a listener `Peer` and a dialing `Peer` in one process, each on its own 2-worker
//! runtime whose threads tag their allocations, N sessions dialed 32 at a time (as
//! `snap2p-bench idle`), then live heap per session and side by allocation size.
//!
//! Usage: snap2p-idleheap [N] [trace-size trace-side]
//! The RSS rows of `snap2p-bench idle` include malloc's per-chunk overhead and
//! fragmentation; this counts what the program asks for (and what glibc rounds it to).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use snap2p::{Peer, PeerConfig, SessionLimits};

#[allow(dead_code)]
#[path = "../util.rs"]
mod util;

const SMALL: usize = 8192;
struct Side {
    count: [AtomicI64; SMALL + 1],
    big_count: AtomicI64,
    big_bytes: AtomicI64,
}
#[allow(clippy::declare_interior_mutable_const)]
const Z: AtomicI64 = AtomicI64::new(0);
static SIDES: [Side; 3] = [
    Side {
        count: [Z; SMALL + 1],
        big_count: Z,
        big_bytes: Z,
    },
    Side {
        count: [Z; SMALL + 1],
        big_count: Z,
        big_bytes: Z,
    },
    Side {
        count: [Z; SMALL + 1],
        big_count: Z,
        big_bytes: Z,
    },
];
thread_local! {
    static TAG: Cell<usize> = const { Cell::new(0) };
    static IN: Cell<bool> = const { Cell::new(false) };
}
static TRACE_SIZE: AtomicUsize = AtomicUsize::new(0);
static TRACE_SIDE: AtomicUsize = AtomicUsize::new(9);
static TRACE_LEFT: AtomicI64 = AtomicI64::new(0);
static TRACING: AtomicBool = AtomicBool::new(false);

fn note(size: usize, d: i64) {
    let side = TAG.with(|t| t.get());
    let s = &SIDES[side];
    if size <= SMALL {
        s.count[size].fetch_add(d, Relaxed);
    } else {
        s.big_count.fetch_add(d, Relaxed);
        s.big_bytes.fetch_add(d * size as i64, Relaxed);
    }
    if d > 0
        && TRACING.load(Relaxed)
        && size == TRACE_SIZE.load(Relaxed)
        && side == TRACE_SIDE.load(Relaxed)
        && !IN.with(|i| i.replace(true))
    {
        if TRACE_LEFT.fetch_sub(1, Relaxed) > 0 {
            eprintln!(
                "---- alloc {size} on side {side}:\n{}",
                std::backtrace::Backtrace::force_capture()
            );
        }
        IN.with(|i| i.set(false));
    }
}

struct Counting;
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note(l.size(), 1);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        note(l.size(), -1);
        System.dealloc(p, l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note(l.size(), 1);
        System.alloc_zeroed(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note(l.size(), -1);
        note(n, 1);
        System.realloc(p, l, n)
    }
}
#[global_allocator]
static A: Counting = Counting;

fn snapshot(side: usize) -> (Vec<i64>, i64, i64) {
    let s = &SIDES[side];
    (
        s.count.iter().map(|c| c.load(Relaxed)).collect(),
        s.big_count.load(Relaxed),
        s.big_bytes.load(Relaxed),
    )
}

fn config() -> PeerConfig {
    let mut c = PeerConfig::default();
    c.limits = {
        let mut l = SessionLimits::default();
        l.max_streams = 64;
        l.keepalive_interval = Duration::from_secs(1);
        l
    };
    c.px1 = Some(false);
    c.preauth_rate_per_min = Some(0);
    c.max_pending_handshakes = 1024;
    c.accept_backlog = 16384;
    c
}

fn rt(tag: usize) -> tokio::runtime::Runtime {
    util::runtime_builder()
        .on_thread_start(move || TAG.with(|t| t.set(tag)))
        .build()
        .unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|x| x.parse().ok()).unwrap_or(2000);
    if let (Some(sz), Some(sd)) = (args.get(2), args.get(3)) {
        TRACE_SIZE.store(sz.parse().unwrap(), Relaxed);
        TRACE_SIDE.store(sd.parse().unwrap(), Relaxed);
        TRACE_LEFT.store(2, Relaxed);
    }
    util::raise_fd_limit();
    {
        use snap2p::unstable::{Session, SessionConfig, SessionInfo};
        println!(
            "size_of: Session {} SessionConfig {} SessionLimits {} SessionInfo {} Connection {} NodeKey {}",
            std::mem::size_of::<Session>(),
            std::mem::size_of::<SessionConfig>(),
            std::mem::size_of::<SessionLimits>(),
            std::mem::size_of::<SessionInfo>(),
            std::mem::size_of::<snap2p::Connection>(),
            std::mem::size_of::<snap2p::NodeKey>(),
        );
    }
    let srv_rt = rt(1);
    let cli_rt = rt(2);
    let (listener, addr) = srv_rt.block_on(async {
        let peer = Peer::builder(config()).build().await.unwrap();
        peer.listen("127.0.0.1:0").await.unwrap();
        let addr = peer.listen_locators().pop().unwrap().to_string();
        let p = peer.clone();
        tokio::spawn(async move {
            while let Some(conn) = p.accept().await {
                tokio::spawn(async move { while let Ok(_s) = conn.accept_stream().await {} });
            }
        });
        (peer, addr)
    });
    let client = cli_rt.block_on(async { Peer::builder(config()).build().await.unwrap() });
    // One session first, so lazily made peer-wide state is not counted per session.
    let warm = cli_rt.block_on(client.dial(&addr)).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let b1 = snapshot(1);
    let b2 = snapshot(2);
    TRACING.store(true, Relaxed);
    let conns = cli_rt.block_on(async {
        let sem = Arc::new(tokio::sync::Semaphore::new(32));
        let mut tasks = Vec::new();
        for _ in 0..n {
            let permit = sem.clone().acquire_owned().await.unwrap();
            let (c, a) = (client.clone(), addr.clone());
            tasks.push(tokio::spawn(async move {
                let r = c.dial(&a).await;
                drop(permit);
                r
            }));
        }
        let mut conns = Vec::with_capacity(n);
        for t in tasks {
            conns.push(t.await.unwrap().unwrap());
        }
        conns
    });
    TRACING.store(false, Relaxed);
    std::thread::sleep(Duration::from_secs(3));
    for (side, before, name) in [(1, b1, "server"), (2, b2, "client")] {
        let after = snapshot(side);
        let mut rows: Vec<(usize, i64)> = (0..=SMALL)
            .map(|s| (s, after.0[s] - before.0[s]))
            .filter(|x| x.1 != 0)
            .collect();
        rows.sort_by_key(|r| -(r.0 as i64 * r.1));
        let req: i64 = rows.iter().map(|r| r.0 as i64 * r.1).sum::<i64>() + after.2 - before.2;
        // glibc: 8-byte header, 16-byte granules, 32-byte minimum chunk.
        let chunk = |s: usize| ((s + 8 + 15) & !15).max(32) as i64;
        let glibc: i64 = rows.iter().map(|r| chunk(r.0) * r.1).sum::<i64>() + after.2 - before.2;
        println!(
            "{name}: {:.0} B requested, {:.0} B as glibc chunks per session; big (>8 KiB) {} allocs {} B",
            req as f64 / n as f64,
            glibc as f64 / n as f64,
            after.1 - before.1,
            after.2 - before.2
        );
        for (s, c) in rows.iter().take(25) {
            println!(
                "  size {s:6}: {:8.3} per session, {:7.1} B/session",
                *c as f64 / n as f64,
                (*s as i64 * c) as f64 / n as f64
            );
        }
    }
    drop(conns);
    drop(warm);
    drop(listener);
    std::process::exit(0);
}
