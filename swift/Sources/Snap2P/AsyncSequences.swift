// Idiomatic async-sequence views over the callback subscriptions of the generated API.
// Ending the iteration (or cancelling the task) cancels the underlying Subscription.

import Foundation
#if canImport(snap2pFFI)
import snap2pFFI
#endif

private final class ConnectionSink: ConnectionHandler, @unchecked Sendable {
    let yield: (Connection) -> Void
    init(_ yield: @escaping (Connection) -> Void) { self.yield = yield }
    func onConnection(connection: Connection) async throws { yield(connection) }
}

private final class StreamSink: StreamHandler, @unchecked Sendable {
    let yield: (Stream) -> Void
    init(_ yield: @escaping (Stream) -> Void) { self.yield = yield }
    func onStream(stream: Stream) async throws { yield(stream) }
}

extension Peer {
    /// Inbound connections (see `onConnection(handler:)`). The subscription starts when the
    /// sequence is created, not when iteration begins.
    public func incomingConnections() -> AsyncStream<Connection> {
        AsyncStream { continuation in
            let subscription = onConnection(handler: ConnectionSink { continuation.yield($0) })
            continuation.onTermination = { _ in subscription.cancel() }
        }
    }
}

extension Connection {
    /// Streams the remote opens (see `onStream(handler:)`); subscribed from creation.
    public func incomingStreams() -> AsyncStream<Stream> {
        AsyncStream { continuation in
            let subscription = onStream(handler: StreamSink { continuation.yield($0) })
            continuation.onTermination = { _ in subscription.cancel() }
        }
    }
}

/// A peer's events (docs/EVENTS.md) as an async sequence, for one consumer:
/// `for await event in peer.events() { … }`. It ends when the subscription is closed or
/// the peer is gone; cancelling the iterating task closes the subscription.
extension EventSubscription: AsyncSequence {
    public typealias Element = PeerEvent

    public struct AsyncIterator: AsyncIteratorProtocol {
        let subscription: EventSubscription

        public mutating func next() async -> PeerEvent? {
            let s = subscription
            return await withTaskCancellationHandler {
                await s.next()
            } onCancel: {
                s.close()
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(subscription: self) }
}

/// A raw write's result when the core panicked (bindings/src/raw.rs, `PANICKED`; the
/// header generated from it, snap2p_raw.h, names it).
private let rawPanicked = Int64(SNAP2P_RAW_PANICKED)

/// ERR_INTERNAL (17, its name from the core): what `writeAll` throws when the core, not the
/// stream, went wrong.
private func internalError(_ reason: String) -> Snap2pError {
    .Failure(code: 17, name: errorCodeName(code: 17), reason: reason)
}

/// What a raw read returns once the peer finished and everything was read (raw.rs, `END`).
private let rawEnd = Int64(SNAP2P_RAW_END)

/// Raw waits suspended until the core calls back, by token: `Stream.writeAll` waiting for
/// room (`snap2p_uniffi_stream_writable_raw`) and `Stream.chunks()` waiting for bytes
/// (`snap2p_uniffi_stream_readable_raw`). The core calls `onReady` once per wait that it
/// did not answer at once, on one of its threads, outside its locks.
private final class RawWaiters: @unchecked Sendable {
    static let shared = RawWaiters()
    private let lock = NSLock()
    private var waiting: [UInt64: CheckedContinuation<Void, Never>] = [:]
    private var next: UInt64 = 1

    /// The callback's address, as the raw calls take it.
    private static let callback = UInt64(UInt(bitPattern: unsafeBitCast(
        onReady as @convention(c) (UInt64) -> Void, to: UnsafeRawPointer.self)))

    /// Until `start(weak, callback, token)` (one of the raw waits) is answered: at once
    /// (non-zero) or by the callback.
    func wait(_ weak: UInt64, _ start: (UInt64, UInt64, UInt64) -> Int64) async {
        await withCheckedContinuation { (cont: CheckedContinuation<Void, Never>) in
            let token = lock.withLock { () -> UInt64 in
                let t = next
                next += 1
                waiting[t] = cont
                return t
            }
            if start(weak, RawWaiters.callback, token) != 0 {
                // Ready now, or never (the next call says why): no callback will come.
                resume(token)
            }
        }
    }

    func resume(_ token: UInt64) {
        lock.withLock { waiting.removeValue(forKey: token) }?.resume()
    }
}

private func onReady(_ token: UInt64) {
    RawWaiters.shared.resume(token)
}

/// A stream's weak native handle, as the raw calls take it: it never keeps the stream
/// alive (raw.rs), and is freed with this object. Held by whoever makes raw calls for
/// as long as it makes them (a `chunks()` sequence, a `writeAll` call).
private final class RawHandle: @unchecked Sendable {
    let weak: UInt64

    init(_ stream: Stream) {
        weak = snap2p_uniffi_stream_weak_raw(stream.uniffiCloneHandle())
    }

    deinit { snap2p_uniffi_stream_weak_free_raw(weak) }
}

/// The state of one `chunks()` sequence: its raw handle and the generated stream, whose
/// `read` reports a failure as the typed error.
private final class RawReader: @unchecked Sendable {
    private let stream: Stream
    private let handle: RawHandle
    private let cap: Int

    init(_ stream: Stream, cap: Int) {
        self.stream = stream
        self.handle = RawHandle(stream)
        self.cap = cap
    }

    func next() async throws -> Data? {
        guard let mem = malloc(cap) else { throw internalError("out of memory for a read") }
        while true {
            let n = snap2p_uniffi_stream_try_read_raw(handle.weak, UInt64(UInt(bitPattern: mem)), UInt64(cap))
            if n > 0 {
                // The Data owns the memory the core wrote: no copy. A short read keeps only
                // its bytes' worth (realloc shrinks in place).
                let kept = Int(n) < cap / 2 ? (realloc(mem, Int(n)) ?? mem) : mem
                return Data(bytesNoCopy: kept, count: Int(n), deallocator: .free)
            }
            if n == 0 {
                await RawWaiters.shared.wait(handle.weak, snap2p_uniffi_stream_readable_raw)
                continue
            }
            free(mem)
            if n == rawEnd { return nil }
            if n == rawPanicked {
                throw internalError("the core panicked in a read; the stream's state is unknown")
            }
            // Failed (reset, session over, …): the generated read throws the typed error.
            return try await stream.read(max: UInt32(cap))
        }
    }
}

extension Stream {
    /// The stream's bytes until the remote finishes, in chunks of at most `max` bytes
    /// (suspending reads give backpressure). Through the raw entry points of
    /// bindings/src/raw.rs: each chunk is one native call in which the core copies what
    /// has arrived, across the chunks it arrived in, straight into the memory of the
    /// returned `Data`; when nothing has, the task suspends until the session driver calls
    /// back. The same bytes as a loop of the generated `read(max:)`, which lifts each
    /// received frame's payload out of a RustBuffer through a future polled by callbacks
    /// (a quarter more CPU per GiB, docs/BENCHMARKS.md). As with that read, a task
    /// cancelled while waiting goes on waiting until bytes, the end or an error come.
    /// Errors are the typed `Snap2pError`.
    public func chunks(max: UInt32 = 65_536) -> AsyncThrowingStream<Data, Error> {
        let reader = RawReader(self, cap: Int(Swift.max(max, 1)))
        return AsyncThrowingStream { try await reader.next() }
    }

    /// Reads into `buffer`, from its start, everything that has arrived, up to
    /// `buffer.count` and across the chunks it arrived in, suspending while nothing has:
    /// the count, or 0 once the remote finished. One native call per read in which the core
    /// copies straight into `buffer`: the fast way to receive many bytes into a buffer you
    /// keep, allocating nothing per read (`chunks()` makes a `Data` per chunk). Errors are
    /// the typed `Snap2pError`; an empty buffer is ERR_INVALID_ARGUMENT (25).
    public func read(into buffer: inout [UInt8]) async throws -> Int {
        if buffer.isEmpty {
            throw Snap2pError.Failure(code: 25, name: errorCodeName(code: 25), reason: "read(into:) needs a buffer of at least 1 byte")
        }
        let handle = RawHandle(self)
        while true {
            let n = buffer.withUnsafeMutableBytes { raw in
                snap2p_uniffi_stream_try_read_raw(handle.weak, UInt64(UInt(bitPattern: raw.baseAddress)), UInt64(raw.count))
            }
            if n > 0 { return Int(n) }
            if n == 0 {
                await RawWaiters.shared.wait(handle.weak, snap2p_uniffi_stream_readable_raw)
                continue
            }
            if n == rawEnd { return 0 }
            if n == rawPanicked {
                throw internalError("the core panicked in a read; the stream's state is unknown")
            }
            // Failed (reset, session over, …): the generated read throws the typed error.
            guard let data = try await read(max: UInt32(clamping: buffer.count)) else { return 0 }
            buffer.replaceSubrange(0..<data.count, with: data)
            return data.count
        }
    }

    /// Writes all of `data`, waiting for flow-control credit when the send buffer is full.
    /// Through the raw entry points of bindings/src/raw.rs: the core copies straight from
    /// `data` (the generated `tryWrite` and `write` first copy it into a Swift array and
    /// then into a RustBuffer: two copies and two allocations per call), and a full buffer
    /// is waited for with one native call and one callback (a generated async call polls
    /// its future twice, each poll a callback and a hop to Swift's executor), which
    /// matters because the writer must refill the buffer before the half left in it is
    /// sent (docs/BENCHMARKS.md). Errors are the typed `Snap2pError` of `tryWrite`. A
    /// cancelled task's wait ends when room opens or the stream ends, as before.
    public func writeAll(_ data: Data) async throws {
        if data.isEmpty { return }
        let handle = RawHandle(self)
        // Freed when this call returns, not at its last use (the native call using it).
        defer { withExtendedLifetime(handle) {} }
        let weak = handle.weak
        var off = 0
        while off < data.count {
            let taken = data.withUnsafeBytes { (p: UnsafeRawBufferPointer) -> Int64 in
                snap2p_uniffi_stream_try_write_raw(
                    weak, UInt64(UInt(bitPattern: p.baseAddress! + off)), UInt64(p.count - off))
            }
            if taken > 0 {
                off += Int(taken)
            } else if taken == 0 {
                // Full: if the stream cannot be written, the next write throws.
                await RawWaiters.shared.wait(weak, snap2p_uniffi_stream_writable_raw)
            } else if taken == rawPanicked {
                throw internalError("the core panicked in a write; the stream's state is unknown")
            } else {
                // Refused (closed, reset, finished, session over): final, so the generated
                // call takes nothing and throws the same refusal as the typed error.
                _ = try tryWrite(data: Data([0]))
                throw internalError("the stream refused a write but reports no error")
            }
        }
    }

    /// Writes `data` and half-closes the stream.
    public func writeAndFinish(_ data: Data) async throws {
        try await writeAll(data)
        try finish()
    }
}

extension Snap2pError {
    /// The protocol error code (e.g. 4 = ERR_NOT_ALLOWED).
    public var code: UInt64 {
        switch self {
        case let .Failure(code, _, _): return code
        }
    }
}
