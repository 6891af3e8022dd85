import Foundation
import XCTest
import Snap2P
import SHA256Support

struct TimedOut: Error {}

/// Runs `body` with a hard deadline (XCTest on Linux has no per-test time limit).
func withTimeout<T: Sendable>(_ seconds: Double = 60, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(nanoseconds: UInt64(seconds * 1_000_000_000))
            throw TimedOut()
        }
        let result = try await group.next()!
        group.cancelAll()
        return result
    }
}

/// Asserts that `body` throws Snap2pError.Failure with `code` and `name`.
@discardableResult
func expectError(_ code: UInt64, _ name: String, file: StaticString = #filePath, line: UInt = #line,
                 _ body: () async throws -> Void) async -> Snap2pError? {
    do {
        try await body()
        XCTFail("expected \(name) (\(code))", file: file, line: line)
        return nil
    } catch let e as Snap2pError {
        guard case let .Failure(c, n, _) = e else { return nil }
        XCTAssertEqual(c, code, "unexpected \(e)", file: file, line: line)
        XCTAssertEqual(n, name, file: file, line: line)
        return e
    } catch {
        XCTFail("unexpected error type \(error)", file: file, line: line)
        return nil
    }
}

/// Two peers on loopback: `server` echoes every stream (`EchoServer`, which also hashes
/// what it receives) and `conn` is `client`'s connection to it.
struct EchoPair {
    let server: Peer
    let client: Peer
    let echo: EchoServer
    let sub: Subscription
    let conn: Connection

    static func start() async throws -> EchoPair {
        let server = try await Peer.create(options: PeerOptions())
        let client = try await Peer.create(options: PeerOptions())
        let addr = try await server.listen(addr: "127.0.0.1:0")
        let echo = EchoServer()
        let sub = server.onConnection(handler: echo)
        let conn = try await client.dial(target: addr)
        return EchoPair(server: server, client: client, echo: echo, sub: sub, conn: conn)
    }

    /// Reads `stream`'s echo to the end: how many bytes came back, and their SHA-256.
    static func digest(of stream: Snap2P.Stream) -> Task<(Int, Data), Error> {
        Task {
            var sha = SHA256()
            var total = 0
            for try await chunk in stream.chunks(max: 1 << 20) {
                sha.update(chunk)
                total += chunk.count
            }
            return (total, sha.finalize())
        }
    }

    func stop() async {
        sub.cancel()
        echo.stop()
        await client.shutdown()
        await server.shutdown()
    }
}

/// Deterministic pseudo-random bytes (xorshift).
func pattern(_ size: Int, seed: UInt64 = 0x5eed) -> Data {
    var x = seed
    var out = [UInt8](repeating: 0, count: size)
    for i in 0..<size {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17
        out[i] = UInt8(truncatingIfNeeded: x)
    }
    return Data(out)
}

extension Data {
    init(hex: String) {
        var bytes = [UInt8]()
        var i = hex.startIndex
        while i < hex.endIndex {
            let j = hex.index(i, offsetBy: 2)
            bytes.append(UInt8(hex[i..<j], radix: 16)!)
            i = j
        }
        self.init(bytes)
    }
}

enum Proc {
    static func count(_ dir: String) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: dir).count) ?? -1
    }
    static var fds: Int { count("/proc/self/fd") }
    static var threads: Int { count("/proc/self/task") }

    /// The names (`comm`) of this process's threads.
    static var threadNames: [String] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return tasks.compactMap { tid in
            (try? String(contentsOfFile: "/proc/self/task/\(tid)/comm", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    /// Threads the snap2p core started (its tokio runtime names every worker and blocking
    /// thread "snap2p"). Swift's and Dispatch's own pools grow and shrink on their own
    /// schedule, so a leak check counts only these.
    static var snap2pThreads: Int { threadNames.filter { $0.hasPrefix("snap2p") }.count }

    /// Each snap2p thread as "tid start=<ticks since boot> state=<S|R|…> syscall=<nr and
    /// args>": for a leak report, which thread is new and what it waits in (a tokio worker
    /// waits in epoll_wait (232) or futex (202), an idle blocking-pool thread in futex with
    /// a timeout).
    static var snap2pThreadDetails: [String] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        func read(_ tid: String, _ file: String) -> String {
            ((try? String(contentsOfFile: "/proc/self/task/\(tid)/\(file)", encoding: .utf8)) ?? "?")
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return tasks.sorted().compactMap { tid in
            guard read(tid, "comm").hasPrefix("snap2p") else { return nil }
            // stat: "pid (comm) state ... field 22 = starttime"; comm has no spaces here.
            let stat = read(tid, "stat").split(separator: " ")
            let state = stat.count > 2 ? String(stat[2]) : "?"
            let start = stat.count > 21 ? String(stat[21]) : "?"
            let syscall = read(tid, "syscall").split(separator: " ").prefix(3).joined(separator: " ")
            return "\(tid) start=\(start) state=\(state) syscall=\(syscall)"
        }
    }
}


/// Records the events of a few peers, one line each, for failure messages: what a flaky
/// count was made of (a dial retried, a handshake failed, and why). Stops with the peers.
final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []

    func watch(_ name: String, _ peer: Peer) {
        let events = peer.events()
        Task {
            for await e in events {
                let line = "[\(name)] \(e.kind) code=\(e.code.map(String.init) ?? "-") "
                    + "transport=\(e.transport ?? "-") connection=\(e.connection ?? "-") "
                    + "reason=\(e.reason ?? "-")"
                lock.withLock { lines.append(line) }
            }
        }
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return lines.joined(separator: "\n")
    }
}
