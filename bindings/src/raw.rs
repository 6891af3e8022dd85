//! Raw C entry points for the Kotlin `writeAll`, `OutputStream`, `InputStream` and
//! `chunks()` fast paths and Swift's `writeAll` and `chunks()` (declared for Swift in
//! swift/Sources/snap2pFFI/snap2p_raw.h, which cbindgen writes from this file and
//! bindings/raw-header checks, with Kotlin's declarations in RawIo.kt): FFI
//! plumbing only, each calls one `snap2p::Stream` method.
//!
//! uniffi's Kotlin (JNA) makes three native calls per `tryWrite` (clone the handle,
//! allocate a RustBuffer, the call) and allocates several JNA `Structure`s for them (the
//! RustBuffer, a call status per call), each backed by `malloc`ed memory registered with a
//! cleaner: that, not the copy, was most of a Kotlin sender's CPU (docs/BENCHMARKS.md).
//! These take only integers, which JNA's direct mapping passes without any allocation; the
//! bytes come from a native buffer the caller filled.
//!
//! Every argument is a 64-bit integer, pointers too (JNA passes a Kotlin `Long`; on a
//! 32-bit ABI a pointer parameter would not line up with it).
//!
//! The stream is named by a *weak* handle the caller takes once per stream
//! ([`snap2p_uniffi_stream_weak_raw`]) instead of a clone of the uniffi handle per call
//! (one more native call and call status each time). Weak, so that it never keeps the
//! stream alive: releasing the Kotlin object releases the stream as before, and a call
//! on a released stream is refused (-1). Errors are only flagged (-1): the caller repeats
//! the call through the uniffi method, which throws the typed error. Not part of the
//! uniffi interface.
//!
//! Swift gains for another reason: its generated `tryWrite` lowers `Data` by appending it
//! to a Swift array, which `rustbuffer_from_bytes` then copies into a Rust allocation (two
//! copies and two allocations per call before the core's own copy); Swift passes
//! `try_write_raw` a pointer into the `Data` itself.

use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

use snap2p::host;

use crate::session::Stream;

/// A weak handle to the stream behind the uniffi handle `stream`, for the other calls
/// here; free it with [`snap2p_uniffi_stream_weak_free_raw`].
///
/// # Safety
/// `stream` is a clone of a uniffi `Stream` handle owned by the caller (as uniffi passes
/// to methods): this call consumes it.
#[no_mangle]
pub unsafe extern "C" fn snap2p_uniffi_stream_weak_raw(stream: u64) -> u64 {
    // SAFETY: uniffi object handles are `Arc::into_raw` pointers; the caller passes a
    // clone of one, which this call owns and drops.
    let stream = unsafe { Arc::from_raw(stream as usize as *const Stream) };
    Weak::into_raw(Arc::downgrade(&stream)) as usize as u64
}

/// Frees a weak handle from [`snap2p_uniffi_stream_weak_raw`].
///
/// # Safety
/// `weak` came from [`snap2p_uniffi_stream_weak_raw`] and is not used after this call.
#[no_mangle]
pub unsafe extern "C" fn snap2p_uniffi_stream_weak_free_raw(weak: u64) {
    // SAFETY: the caller's guarantee: `weak` is a `Weak::into_raw` pointer it owns.
    drop(unsafe { Weak::from_raw(weak as usize as *const Stream) });
}

/// `Stream::try_write` for `len` bytes at `data`: the number of bytes queued (0: the send
/// buffer is full), -1 if the stream refused them (closed, reset, finished, released,
/// …), or [`PANICKED`].
///
/// # Safety
/// `weak` is a live handle from [`snap2p_uniffi_stream_weak_raw`]; `data` points to `len`
/// readable bytes (any value when `len` is 0), its address passed as an integer.
#[no_mangle]
pub unsafe extern "C" fn snap2p_uniffi_stream_try_write_raw(weak: u64, data: u64, len: u64) -> i64 {
    // SAFETY: the caller's guarantees, passed on.
    unsafe {
        with_raw_args(weak, data, len, |stream, data| {
            let stream = stream.core();
            match stream.try_write(data) {
                Ok(n) => {
                    if n > 0 {
                        stream.flush();
                    }
                    i64::try_from(n).unwrap_or(-1)
                }
                Err(_) => -1,
            }
        })
    }
}

/// `Stream::write_all` for `len` bytes at `data`, blocking the calling thread until all of
/// them are queued: `len`, or -1 if the stream refused them (closed, reset, finished, the
/// session ended, released; bytes before the refusal may have been queued), [`ON_RUNTIME`]
/// if called on a snap2p runtime thread (it would wait on itself), or [`PANICKED`]. For Kotlin's
/// blocking `java.io.OutputStream`: the thread parks in the core's own wait for send room
/// and is woken by the session driver, with no async call and no callback into the JVM.
///
/// # Safety
/// As [`snap2p_uniffi_stream_try_write_raw`].
#[no_mangle]
pub unsafe extern "C" fn snap2p_uniffi_stream_write_blocking_raw(
    weak: u64,
    data: u64,
    len: u64,
) -> i64 {
    if tokio::runtime::Handle::try_current().is_ok() {
        return ON_RUNTIME;
    }
    // SAFETY: the caller's guarantees, passed on.
    unsafe {
        with_raw_args(weak, data, len, |stream, data| {
            match park_until_done(stream.core().write_all(data)) {
                Ok(()) => i64::try_from(data.len()).unwrap_or(-1),
                Err(_) => -1,
            }
        })
    }
}

/// Whether the stream's send buffer has room, for a suspending writer: 1 if it has now
/// (`callback` is not called), -1 if the stream cannot be written (its next write reports
/// why) or was released, 0 if not yet: then `callback(token)` is called exactly once,
/// later, on a snap2p thread and never inside a core lock: when room opens, or when the
/// wait ends otherwise (the stream failed or went away; the caller's next write learns
/// which). Replaces the generated async `writable()` in Kotlin's `writeAll`: one native
/// call and one callback instead of a uniffi future's five calls and call statuses.
///
/// # Safety
/// `weak` is a live handle from [`snap2p_uniffi_stream_weak_raw`]; `callback` is the
/// address of an `extern "C" fn(u64)` that stays callable for the life of the process.
#[no_mangle]
pub unsafe extern "C" fn snap2p_uniffi_stream_writable_raw(
    weak: u64,
    callback: u64,
    token: u64,
) -> i64 {
    // SAFETY: the caller's guarantees, passed on.
    unsafe {
        wait_raw(weak, callback, token, |stream, cx| {
            stream.poll_writable(cx).map(|r| r.is_ok())
        })
    }
}

/// `Stream::try_read_into` into the `cap` bytes at `buf`: the number of bytes copied
/// (across the chunks they arrived in), 0 if none are there yet (wait with
/// [`snap2p_uniffi_stream_readable_raw`]), [`END`] once the peer finished and everything
/// was read, -1 if the stream failed or was released (the caller repeats the read through
/// the uniffi method, which throws the typed error), or [`PANICKED`]. Kotlin's fast read
/// path: one native call per read, where the generated async `read` is a uniffi future
/// (five native calls, their call statuses and a RustBuffer, each a JNA allocation).
///
/// # Safety
/// `weak` is a live handle from [`snap2p_uniffi_stream_weak_raw`]; `buf` points to `cap`
/// writable bytes (any value when `cap` is 0), its address passed as an integer.
#[no_mangle]
pub unsafe extern "C" fn snap2p_uniffi_stream_try_read_raw(weak: u64, buf: u64, cap: u64) -> i64 {
    // SAFETY: the caller's guarantee: a live weak handle.
    let Some(stream) = (unsafe { upgrade(weak) }) else {
        return -1;
    };
    let Ok(cap) = usize::try_from(cap) else {
        return -1;
    };
    if cap == 0 {
        return 0;
    }
    // SAFETY: the caller guarantees `cap` writable bytes at `buf` during the call.
    let mut out = unsafe { std::slice::from_raw_parts_mut(buf as usize as *mut u8, cap) };
    let read = catch_unwind(AssertUnwindSafe(|| {
        stream.core().try_read_into(&mut out, cap)
    }));
    match read {
        Ok(Ok(snap2p::ReadInto::Bytes(n))) => i64::try_from(n).unwrap_or(-1),
        Ok(Ok(snap2p::ReadInto::Nothing)) => 0,
        Ok(Ok(snap2p::ReadInto::End)) => END,
        Ok(Err(_)) => -1,
        Err(_) => PANICKED,
    }
}

/// [`snap2p_uniffi_stream_try_read_raw`], blocking the calling thread until a read
/// answers: the number of bytes copied (at least 1), [`END`], -1 if the stream failed or
/// was released (the host repeats the read through the uniffi method, which throws the
/// typed error), [`PANICKED`], or [`ON_RUNTIME`] if called on a snap2p runtime thread (it
/// would wait on itself); 0 only when `cap` is 0. For Kotlin's blocking
/// `java.io.InputStream`: the thread parks in the core's own wait for bytes
/// (`Stream::poll_readable`) and is woken by the session driver, with no async call and
/// no callback into the JVM; the bytes land in the caller's memory, one copy per read.
///
/// # Safety
/// As [`snap2p_uniffi_stream_try_read_raw`].
#[no_mangle]
pub unsafe extern "C" fn snap2p_uniffi_stream_read_blocking_raw(
    weak: u64,
    buf: u64,
    cap: u64,
) -> i64 {
    if tokio::runtime::Handle::try_current().is_ok() {
        return ON_RUNTIME;
    }
    loop {
        // SAFETY: the caller's guarantees, passed on.
        let n = unsafe { snap2p_uniffi_stream_try_read_raw(weak, buf, cap) };
        if n != 0 || cap == 0 {
            return n;
        }
        // Nothing yet: park until a read would answer (bytes, the end or an error).
        // SAFETY: the caller's guarantee: a live weak handle.
        let Some(stream) = (unsafe { upgrade(weak) }) else {
            return -1;
        };
        let waited = catch_unwind(AssertUnwindSafe(|| {
            park_until_done(std::future::poll_fn(|cx| stream.core().poll_readable(cx)))
        }));
        if waited.is_err() {
            return PANICKED;
        }
    }
}

/// How many bytes a read of the stream would return now without waiting
/// (`Stream::readable_len`): 0 when none have arrived, at the end, or after an error;
/// -1 if the stream was released, or [`PANICKED`]. For Kotlin's
/// `InputStream.available()`.
///
/// # Safety
/// `weak` is a live handle from [`snap2p_uniffi_stream_weak_raw`].
#[no_mangle]
pub unsafe extern "C" fn snap2p_uniffi_stream_readable_len_raw(weak: u64) -> i64 {
    // SAFETY: the caller's guarantee: a live weak handle.
    let Some(stream) = (unsafe { upgrade(weak) }) else {
        return -1;
    };
    catch_unwind(AssertUnwindSafe(|| stream.core().readable_len()))
        .map_or(PANICKED, |n| i64::try_from(n).unwrap_or(i64::MAX))
}

/// Whether a read of the stream would answer now, taking nothing: 1 if it would
/// (`callback` is not called), -1 if the stream was released (or the look panicked; the
/// next read reports it), 0 if not yet: then
/// `callback(token)` is called exactly once, later, on a snap2p thread and never inside a
/// core lock: when bytes, the end or an error came, or when the wait ends otherwise (the
/// caller's next read learns which). As [`snap2p_uniffi_stream_writable_raw`], for reads.
///
/// # Safety
/// As [`snap2p_uniffi_stream_writable_raw`].
#[no_mangle]
pub unsafe extern "C" fn snap2p_uniffi_stream_readable_raw(
    weak: u64,
    callback: u64,
    token: u64,
) -> i64 {
    // SAFETY: the caller's guarantees, passed on. A wait that ends is ready: the next
    // read reports the state.
    unsafe {
        wait_raw(weak, callback, token, |stream, cx| {
            stream.poll_readable(cx).map(|()| true)
        })
    }
}

/// The native wait of [`snap2p_uniffi_stream_writable_raw`] and
/// [`snap2p_uniffi_stream_readable_raw`]: 1 if `poll` is ready with `true` now, -1 if ready
/// with `false` or the stream was released, 0 if pending: then `callback(token)` is called
/// exactly once, when woken or when the waker is dropped unwoken (a wait the core abandons
/// still ends), never inside a core lock (`host::poll_or_notify`). A panic in `poll` is
/// ready with `false`.
///
/// # Safety
/// As [`snap2p_uniffi_stream_writable_raw`].
unsafe fn wait_raw(
    weak: u64,
    callback: u64,
    token: u64,
    poll: impl Fn(&snap2p::Stream, &mut Context<'_>) -> Poll<bool>,
) -> i64 {
    // SAFETY: the caller's guarantee: a live weak handle.
    let Some(stream) = (unsafe { upgrade(weak) }) else {
        return -1;
    };
    // SAFETY: the caller's guarantee: the address of a callable `extern "C" fn(u64)`.
    let callback: extern "C" fn(u64) =
        unsafe { std::mem::transmute::<usize, extern "C" fn(u64)>(callback as usize) };
    let polled = host::poll_or_notify(
        (callback, token),
        |(f, t)| f(t),
        |cx| {
            catch_unwind(AssertUnwindSafe(|| poll(stream.core(), cx))).unwrap_or(Poll::Ready(false))
        },
    );
    match polled {
        None => 0,
        Some((true, _)) => 1,
        Some((false, _)) => -1,
    }
}

/// What a raw read returns once the peer finished and everything was read.
pub const END: i64 = -2;

/// What a blocking raw read or write returns on a snap2p runtime thread, where it would
/// wait on the very threads that must wake it.
pub const ON_RUNTIME: i64 = -4;

/// The arguments of a raw entry point as Rust values: the stream held for the call (-1
/// if it was released), 0 for no bytes, -1 for a length that does not fit, and a panic
/// reported as -1 (it must not unwind into the JVM; the uniffi retry reports the error
/// properly).
///
/// # Safety
/// As [`snap2p_uniffi_stream_try_write_raw`].
unsafe fn with_raw_args(
    weak: u64,
    data: u64,
    len: u64,
    call: impl FnOnce(&Stream, &[u8]) -> i64,
) -> i64 {
    // SAFETY: the caller's guarantee, passed on.
    let Some(stream) = (unsafe { upgrade(weak) }) else {
        return -1;
    };
    if len == 0 {
        return 0;
    }
    let Ok(len) = usize::try_from(len) else {
        return -1;
    };
    // SAFETY: the caller guarantees `len` readable bytes at `data` during the call.
    let data = unsafe { std::slice::from_raw_parts(data as usize as *const u8, len) };
    catch_unwind(AssertUnwindSafe(|| call(&stream, data))).unwrap_or(PANICKED)
}

/// What a raw write returns if the core panicked (a bug): unlike -1 (a final refusal, which
/// the host then learns as a typed error by repeating the call through the generated
/// bindings), the stream's state is unknown, so the host must not probe it with a write
/// that could queue bytes.
pub const PANICKED: i64 = -3;

/// The stream behind a weak handle, held for the call (a concurrent release of the Kotlin
/// object cannot free it), or None if it was released.
///
/// # Safety
/// `weak` is a live handle from [`snap2p_uniffi_stream_weak_raw`], borrowed: the caller
/// still owns it (hence `ManuallyDrop`).
unsafe fn upgrade(weak: u64) -> Option<Arc<Stream>> {
    // SAFETY: the caller's guarantee: a live `Weak::into_raw` pointer.
    let weak = ManuallyDrop::new(unsafe { Weak::from_raw(weak as usize as *const Stream) });
    weak.upgrade()
}

/// Drives `fut` on the calling thread, parking it between polls (the future's waker
/// unparks it).
fn park_until_done<F: Future>(fut: F) -> F::Output {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        thread::park();
    }
}
