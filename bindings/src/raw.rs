//! Raw C entry points for the Kotlin `writeAll` fast path: FFI plumbing only, each calls
//! one `snap2p::Stream` method.
//!
//! uniffi's Kotlin (JNA) makes three native calls per `tryWrite` (clone the handle,
//! allocate a RustBuffer, the call) and allocates several JNA `Structure`s for them (the
//! RustBuffer, a call status per call), each backed by `malloc`ed memory registered with a
//! cleaner: that, not the copy, was most of a Kotlin sender's CPU (docs/BENCHMARKS.md).
//! These take only integers, which JNA's direct mapping passes without any allocation; the
//! bytes come from a native buffer the caller filled. Errors are only flagged (-1): the
//! caller repeats the call through the uniffi method, which throws the typed error. Not
//! part of the uniffi interface (Swift calls the library directly and does not need it).

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

use crate::session::Stream;

/// `Stream::try_write` for `len` bytes at `data`: the number of bytes queued (0: the send
/// buffer is full), or -1 if the stream refused them (closed, reset, finished, …).
///
/// # Safety
/// `stream` is a handle to a `Stream` owned by the caller for this call (a clone, as
/// uniffi passes to methods: this call consumes it); `data` points to `len` readable bytes
/// (any value when `len` is 0).
#[no_mangle]
pub unsafe extern "C" fn snap2p_uniffi_stream_try_write_raw(
    stream: u64,
    data: *const u8,
    len: u64,
) -> i64 {
    // SAFETY: the caller's guarantees, passed on.
    unsafe {
        with_raw_args(stream, data, len, |stream, data| {
            match stream.core().try_write(data) {
                Ok(n) => i64::try_from(n).unwrap_or(-1),
                Err(_) => -1,
            }
        })
    }
}

/// The arguments of a raw entry point as Rust values: takes ownership of the handle clone
/// (dropped when the call ends), 0 for no bytes, -1 for a length that does not fit, and
/// a panic reported as -1 (it must not unwind into the JVM; the uniffi retry reports the
/// error properly).
///
/// # Safety
/// As [`snap2p_uniffi_stream_try_write_raw`].
unsafe fn with_raw_args(
    stream: u64,
    data: *const u8,
    len: u64,
    call: impl FnOnce(&Stream, &[u8]) -> i64,
) -> i64 {
    // SAFETY: uniffi object handles are `Arc::into_raw` pointers; the caller passes a
    // clone of one, which this call owns and drops.
    let stream = unsafe { Arc::from_raw(stream as usize as *const Stream) };
    if len == 0 {
        return 0;
    }
    let Ok(len) = usize::try_from(len) else {
        return -1;
    };
    // SAFETY: the caller guarantees `len` readable bytes at `data` during the call.
    let data = unsafe { std::slice::from_raw_parts(data, len) };
    catch_unwind(AssertUnwindSafe(|| call(&stream, data))).unwrap_or(-1)
}

/// `Stream::write_all` for `len` bytes at `data`, blocking the calling thread until all of
/// them are queued: `len`, or -1 if the stream refused them (closed, reset, finished, the
/// session ended; bytes before the refusal may have been queued), -2 if called on a
/// snap2p runtime thread (it would wait on itself). For Kotlin's blocking
/// `java.io.OutputStream`: the thread parks in the core's own wait for send room and is
/// woken by the session driver, with no async call and no callback into the JVM.
///
/// # Safety
/// As [`snap2p_uniffi_stream_try_write_raw`].
#[no_mangle]
pub unsafe extern "C" fn snap2p_uniffi_stream_write_blocking_raw(
    stream: u64,
    data: *const u8,
    len: u64,
) -> i64 {
    if tokio::runtime::Handle::try_current().is_ok() {
        // SAFETY: the handle clone is still ours to drop.
        drop(unsafe { Arc::from_raw(stream as usize as *const Stream) });
        return -2;
    }
    // SAFETY: the caller's guarantees, passed on.
    unsafe {
        with_raw_args(stream, data, len, |stream, data| {
            match park_until_done(stream.core().write_all(data)) {
                Ok(()) => i64::try_from(data.len()).unwrap_or(-1),
                Err(_) => -1,
            }
        })
    }
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
