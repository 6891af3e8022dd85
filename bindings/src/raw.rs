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

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

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
    // SAFETY: uniffi object handles are `Arc::into_raw` pointers; the caller passes a
    // clone of one (see above), which this call owns and drops.
    let stream = unsafe { Arc::from_raw(stream as usize as *const Stream) };
    if len == 0 {
        return 0;
    }
    let Ok(len) = usize::try_from(len) else {
        return -1;
    };
    // SAFETY: the caller guarantees `len` readable bytes at `data` during the call.
    let data = unsafe { std::slice::from_raw_parts(data, len) };
    // A panic must not unwind into the JVM: report it as an error (the uniffi retry
    // reports it properly).
    catch_unwind(AssertUnwindSafe(|| match stream.try_write_slice(data) {
        Ok(n) => i64::try_from(n).unwrap_or(-1),
        Err(_) => -1,
    }))
    .unwrap_or(-1)
}
