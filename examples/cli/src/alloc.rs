//! The `snap2p` process's allocator: jemalloc with small thread caches and a background
//! purging thread, so that memory freed after an attack goes back to the OS by itself.
//!
//! Why (measured with `snap2p-attack --soak-secs 60`, a reconnecting slowloris of 1,000
//! connections, ~550,000 attacking connections a minute; docs/RELIABILITY.md §7): with
//! glibc's malloc the listener's RSS stayed +7.5 MiB over its baseline after the attack.
//! None of it was in use (jemalloc heap profiles before/after: +0.1 MiB live): glibc keeps
//! the freed heap of the churn until `malloc_trim`, and even after a trim +2.0 MiB stayed,
//! pinned by the worker threads' tcache chunks (each thread caches up to 7 chunks of each
//! of 64 sizes, scattered over the heap: with `glibc.malloc.tcache_count=0` and a trim the
//! figure is +0.2 MiB). A library cannot flush another thread's tcache or set glibc
//! tunables after start; a binary can pick its allocator. Same soak:
//!
//! | allocator (LD_PRELOAD or MALLOC_CONF, same binary)     | before / peak / 20 s after (MiB) |
//! | ------------------------------------------------------- | -------------------------------- |
//! | glibc                                                   | 9.1 / 18.7 / 16.6 (+7.5)  |
//! | mimalloc 2.0 defaults                                   | 9.9 / 20.9 / 15.9 (+6.1)  |
//! | jemalloc defaults + background thread                   | 11.5 / 31.6 / 13.6 (+2.1) |
//! | jemalloc, no tcache, background thread                  | 10.1 / 43.6 / 10.4 (+0.3) |
//! | the same, dirty pages purged after 1 s                  | 10.1 / 25.9 / 10.4 (+0.4) |
//! | the same with one arena (`narenas:1`)                   | 9.7 / 18.8 / 9.9 (+0.2)   |
//! | small tcache (16 slots, ≤ 1 KiB), 1 s purge (this one)  | 10.2 / 25.8 / 10.9 (+0.7) |
//!
//! Speed (`snap2p-bench small connect --only snap2p`, the library with each allocator
//! preloaded, 7 alternated rounds on the shared 2-core machine, load 3–8, medians against
//! glibc): no tcache at all made one-at-a-time sessions 0.73x (1387 vs 1897 conn/s); the
//! small tcache 0.92x (1746; range 1237–2248 against glibc's 1344–2078), 16 in flight 0.86x
//! (ranges overlapping), 1 KiB writes 1.20x: within this machine's noise. One arena would
//! be smallest, but it puts every thread's allocations behind one lock, which a many-core
//! listener would feel; the default (4 per CPU) stays.
//!
//! ~1 MiB more at rest (jemalloc's arenas and its purging threads). Applications
//! embedding the library through Node, Python, the JVM or Swift keep their host's
//! allocator; RELIABILITY.md §7 says what to set there. `_RJEM_MALLOC_CONF` in the
//! environment still overrides these settings (jemalloc reads it after this string).

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc reads its build-time options from this symbol at start-up (the crate builds
/// jemalloc with the `_rjem_` prefix). `tcache_nslots_small_max:16,tcache_max:1024`: small
/// per-thread caches (jemalloc's default keeps up to 200 objects per size up to 32 KiB,
/// and cached objects pin their pages); `background_thread:true`: idle arenas are purged
/// on a timer, not only when the thread that owns them allocates again (after an attack
/// the workers sit idle); `dirty_decay_ms:1000,muzzy_decay_ms:0`: pages unused for ~1 s go
/// back to the OS at once (jemalloc's 10 s + 10 s let a churning attack hold 43.6 MiB at
/// its peak, 25.8 with this).
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8; 103] =
    b"tcache_nslots_small_max:16,tcache_max:1024,background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";
