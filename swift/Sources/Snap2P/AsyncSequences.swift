// Idiomatic async-sequence views over the callback subscriptions of the generated API.
// Ending the iteration (or cancelling the task) cancels the underlying Subscription.

import Foundation

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

extension Stream {
    /// The stream's chunks until the remote finishes; suspending reads give backpressure.
    public func chunks(max: UInt32 = 262_144) -> AsyncThrowingStream<Data, Error> {
        AsyncThrowingStream {
            try await self.read(max: max)
        }
    }

    /// Writes all of `data`: what the send buffer has room for is taken at once in one
    /// native call (`tryWrite`); only the rest waits for flow-control credit (`write`).
    public func writeAll(_ data: Data) async throws {
        let taken = Int(try tryWrite(data: data))
        if taken < data.count {
            try await write(data: taken == 0 ? data : data.subdata(in: data.startIndex + taken..<data.endIndex))
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
