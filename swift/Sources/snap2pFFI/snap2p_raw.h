// The raw entry points of libsnap2p_uniffi (bindings/src/raw.rs), beside the
// uniffi-generated snap2pFFI.h: Stream.writeAll (Sources/Snap2P/AsyncSequences.swift)
// hands the core a pointer into the caller's Data instead of lowering it into a
// RustBuffer (two copies and two allocations per call), and Stream.chunks() has the core
// copy into the memory of the Data it returns (a generated read lifts a RustBuffer).
// Every argument is a 64-bit integer, pointers too, as raw.rs documents.
#ifndef SNAP2P_RAW_H
#define SNAP2P_RAW_H

#include <stdint.h>

// A weak handle to the stream behind `stream`, a clone of a uniffi Stream handle (consumed).
uint64_t snap2p_uniffi_stream_weak_raw(uint64_t stream);
// Frees a weak handle from snap2p_uniffi_stream_weak_raw.
void snap2p_uniffi_stream_weak_free_raw(uint64_t weak);
// Queues what the send buffer has room for of `len` bytes at `data`: the count taken
// (0: full), -1 if the stream refused them, -3 if the core panicked.
int64_t snap2p_uniffi_stream_try_write_raw(uint64_t weak, uint64_t data, uint64_t len);
// Whether the send buffer has room: 1 now, -1 never (the next write says why), 0 not yet:
// then `callback` (the address of a `void (*)(uint64_t)`) is called once with `token`, on a
// snap2p thread, when room opens or the wait ends otherwise.
int64_t snap2p_uniffi_stream_writable_raw(uint64_t weak, uint64_t callback, uint64_t token);

// Copies what the stream holds, up to `cap` bytes and across the chunks it arrived in, into
// `buf`, without waiting: the count (0: nothing yet), -2 at the end (everything read), -1 if
// the stream failed (the generated read throws why), -3 if the core panicked.
int64_t snap2p_uniffi_stream_try_read_raw(uint64_t weak, uint64_t buf, uint64_t cap);
// Whether a read would answer now, taking nothing: 1 now, -1 never (released), 0 not yet:
// then `callback` is called once with `token`, on a snap2p thread, when bytes, the end or an
// error come, or the wait ends otherwise.
int64_t snap2p_uniffi_stream_readable_raw(uint64_t weak, uint64_t callback, uint64_t token);

#endif
