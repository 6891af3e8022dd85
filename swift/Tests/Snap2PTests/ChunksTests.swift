import Foundation
import XCTest
import Snap2P

/// `Stream.chunks()`'s and `Stream.read(into:)`'s raw path (bindings/src/raw.rs: the core copies what arrived, across
/// the chunks it arrived in, into the memory of the returned `Data`; a native wait).
final class ChunksTests: XCTestCase {
    /// A connection from a client to a server, and one stream on it from each side.
    struct Pair {
        let server: Peer
        let client: Peer
        let local: Snap2P.Stream
        let remote: Snap2P.Stream

        static func start() async throws -> Pair {
            let server = try await Peer.create(options: PeerOptions())
            let addr = try await server.listen(addr: "127.0.0.1:0")
            let client = try await Peer.create(options: PeerOptions())
            let conn = try await client.dial(target: addr)
            guard let inbound = await server.accept() else { throw TimedOut() }
            let local = try await conn.openStream(label: "chunks")
            try await local.writeAll(Data([1]))
            let remote = try await inbound.acceptStream()
            let first = try await remote.read(max: 1)
            XCTAssertEqual(first, Data([1]))
            return Pair(server: server, client: client, local: local, remote: remote)
        }

        func stop() async {
            await client.shutdown()
            await server.shutdown()
        }
    }

    static func collect(_ s: Snap2P.Stream, max: UInt32 = 65_536) async throws -> [Data] {
        var out: [Data] = []
        for try await c in s.chunks(max: max) { out.append(c) }
        return out
    }

    func testBytesArriveWholeInOrderAndGathered() async throws {
        try await withTimeout(120) {
            let p = try await Pair.start()
            // 3 MiB in 64 KiB writes; a frame carries at most 65,502 bytes, so a read of
            // 64 KiB or more gathers across two. Late data: the reader waits first.
            let data = pattern(3 << 20, seed: 11)
            let reader = Task { try await ChunksTests.collect(p.remote, max: 100_000) }
            try await Task.sleep(nanoseconds: 200_000_000)
            var off = 0
            while off < data.count {
                try await p.local.writeAll(data[off..<min(off + 65_536, data.count)])
                off += 65_536
            }
            try p.local.finish()
            let chunks = try await reader.value
            XCTAssert(chunks.allSatisfy { (1...100_000).contains($0.count) })
            XCTAssertEqual(chunks.reduce(Data(), +), data)
            // A frame carries less than 64 KiB: a read of 64 KiB or more spans two.
            XCTAssert(chunks.contains { $0.count >= 65_536 }, "no read spanned two chunks")
            // After the end: nothing more, at once.
            let after = try await ChunksTests.collect(p.remote)
            XCTAssertEqual(after.count, 0)
            await p.stop()
        }
    }

    func testSmallChunksStaySmallAndAnEmptyRestEnds() async throws {
        try await withTimeout {
            let p = try await Pair.start()
            try await p.local.writeAll(Data("hello".utf8))
            var it = p.remote.chunks(max: 2).makeAsyncIterator()
            let first = try await it.next()
            XCTAssertEqual(first, Data("he".utf8))
            var rest = p.remote.chunks().makeAsyncIterator()
            let second = try await rest.next()
            XCTAssertEqual(second, Data("llo".utf8))
            try p.local.finish()
            let end = try await rest.next()
            XCTAssertNil(end)
            await p.stop()
        }
    }

    func testAResetWhileWaitingThrowsThePeersCode() async throws {
        try await withTimeout {
            let p = try await Pair.start()
            let reader = Task { try await ChunksTests.collect(p.remote) }
            try await Task.sleep(nanoseconds: 200_000_000)
            p.local.reset(code: 42)
            do {
                _ = try await reader.value
                XCTFail("the reset did not reach the waiting reader")
            } catch let e as Snap2pError {
                XCTAssertEqual(e.code, 42, "\(e)")
            }
            await p.stop()
        }
    }

    func testReadIntoTakesWhatManyFramesBroughtThenZero() async throws {
        try await withTimeout(120) {
            let p = try await Pair.start()
            let data = pattern(3 << 20, seed: 13)
            // 512 KiB sent and given time to arrive: one read takes all of it, many frames
            // (a frame carries at most 65,502 bytes).
            try await p.local.writeAll(data[0..<(512 * 1024)])
            try await Task.sleep(nanoseconds: 300_000_000)
            var buf = [UInt8](repeating: 0, count: 1 << 20)
            let first = try await p.remote.read(into: &buf)
            XCTAssert(first > 65_502, "first read of \(first) bytes")
            var got = Data(buf[0..<first])
            let local = p.local
            let sender = Task {
                var off = 512 * 1024
                while off < data.count {
                    try await local.writeAll(data[off..<min(off + 65_536, data.count)])
                    off += 65_536
                }
                try local.finish()
            }
            while true {
                let n = try await p.remote.read(into: &buf)
                if n == 0 { break }
                got.append(contentsOf: buf[0..<n])
            }
            try await sender.value
            XCTAssertEqual(got, data)
            let after = try await p.remote.read(into: &buf)
            XCTAssertEqual(after, 0)
            await p.stop()
        }
    }

    func testReadIntoASmallBufferKeepsOrderAndRefusesAnEmptyOne() async throws {
        try await withTimeout {
            let p = try await Pair.start()
            try await p.local.writeAll(Data("hello, world".utf8))
            try p.local.finish()
            var small = [UInt8](repeating: 0, count: 5)
            var out: [UInt8] = []
            while true {
                let n = try await p.remote.read(into: &small)
                if n == 0 { break }
                out.append(contentsOf: small[0..<n])
            }
            XCTAssertEqual(String(decoding: out, as: UTF8.self), "hello, world")
            var empty: [UInt8] = []
            do {
                _ = try await p.remote.read(into: &empty)
                XCTFail("an empty buffer was accepted")
            } catch let e as Snap2pError {
                XCTAssertEqual(e.code, 25, "\(e)")
            }
            await p.stop()
        }
    }

    func testReadIntoWaitingThrowsThePeersResetCode() async throws {
        try await withTimeout {
            let p = try await Pair.start()
            let remote = p.remote
            let reader = Task { () -> Int in
                var buf = [UInt8](repeating: 0, count: 100)
                return try await remote.read(into: &buf)
            }
            try await Task.sleep(nanoseconds: 200_000_000)
            p.local.reset(code: 42)
            do {
                _ = try await reader.value
                XCTFail("the reset did not reach the waiting reader")
            } catch let e as Snap2pError {
                XCTAssertEqual(e.code, 42, "\(e)")
            }
            await p.stop()
        }
    }
}
