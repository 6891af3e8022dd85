import Foundation
import XCTest
import Snap2P
import SHA256Support

/// `Stream.writeAll`'s raw path (bindings/src/raw.rs: the core copies straight from the
/// caller's `Data`), against an echo server that hashes what it receives.
final class WriteAllTests: XCTestCase {
    func testSlicesAndSizesAroundTheBuffersArriveIntact() async throws {
        try await withTimeout(120) {
            let pair = try await EchoPair.start()
            let stream = try await pair.conn.openStream(label: "write-all")
            // Below, at and above 64 KiB, and far above the 1 MiB send buffer: partial
            // takes and the wait for credit both happen. Each piece is a slice of one Data
            // (startIndex > 0, sharing its storage), as a parser's output would be.
            let sizes = [1, 4095, 65_536, 65_537, 200_000, 1 << 20, 3 << 20, 0, 77]
            let data = pattern(sizes.reduce(0, +) + 13).dropFirst(13)
            XCTAssertEqual(data.startIndex, 13)
            let reader = EchoPair.digest(of: stream)
            var off = data.startIndex
            for n in sizes {
                try await stream.writeAll(data[off..<off + n])
                off += n
            }
            try stream.finish()
            let expected = SHA256.hash(Data(data))
            let (total, echoed) = try await reader.value
            XCTAssertEqual(total, data.count)
            XCTAssertEqual(echoed, expected, "SHA-256 of the echo")
            XCTAssertEqual(pair.echo.digests, [expected], "server-side SHA-256")
            await pair.stop()
        }
    }

    func testRefusedWritesThrowTheTypedErrorOfTryWrite() async throws {
        try await withTimeout {
            let pair = try await EchoPair.start()
            let stream = try await pair.conn.openStream(label: "finished")
            try await stream.writeAll(Data("before".utf8))
            try stream.finish()
            // The raw call only flags the refusal; writeAll reports it as tryWrite does.
            let viaWriteAll = await expectError(11, "ERR_STREAM_CLOSED") {
                try await stream.writeAll(Data(count: 100_000))
            }
            let viaTryWrite = await expectError(11, "ERR_STREAM_CLOSED") {
                _ = try stream.tryWrite(data: Data(count: 10))
            }
            XCTAssertEqual(viaWriteAll.map { "\($0)" }, viaTryWrite.map { "\($0)" })
            // Nothing of the refused writes arrived: the echo is exactly "before".
            let echoed = try await stream.readToEnd(limit: 64)
            XCTAssertEqual(echoed, Data("before".utf8))
            await pair.stop()
        }
    }
}
