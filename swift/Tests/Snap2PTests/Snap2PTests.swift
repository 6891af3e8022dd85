import Foundation
import XCTest
import Snap2P
import SHA256Support

/// Echoes every stream of every inbound connection through the callback API, hashing what
/// it receives.
final class EchoServer: ConnectionHandler, StreamHandler, @unchecked Sendable {
    private let lock = NSLock()
    private var subscriptions: [Subscription] = []
    private var _digests: [Data] = []
    private var _threads: Set<String> = []

    var digests: [Data] { lock.withLock { _digests } }
    var callbackThreads: Set<String> { lock.withLock { _threads } }

    private func keep(_ s: Subscription) { lock.withLock { subscriptions.append(s) } }

    func onConnection(connection: Connection) async throws {
        // Called from a snap2p core thread through uniffi, run as a Swift task.
        lock.withLock { _ = _threads.insert(connection.remotePrincipal()) }
        keep(connection.onStream(handler: self))
    }

    func onStream(stream: Snap2P.Stream) async throws {
        keep(stream.onData(handler: EchoData(stream: stream, server: self)))
    }

    func finished(_ digest: Data) { lock.withLock { _digests.append(digest) } }

    func stop() {
        let subs = lock.withLock { let s = subscriptions; subscriptions = []; return s }
        subs.forEach { $0.cancel() }
    }
}

final class EchoData: DataHandler, @unchecked Sendable {
    let stream: Snap2P.Stream
    weak var server: EchoServer?
    private var sha = SHA256()
    init(stream: Snap2P.Stream, server: EchoServer) { self.stream = stream; self.server = server }

    func onData(data: Data) async throws {
        sha.update(data) // onData calls are sequential: the next comes after this returns
        try await stream.write(data: data)
    }

    func onEnd(error: ErrorInfo?) async throws {
        try stream.finish()
        if error == nil { server?.finished(sha.finalize()) }
    }
}

/// A Swift host signer standing in for a keychain / hardware wallet.
final class KeychainSigner: HostSigner, @unchecked Sendable {
    let device: Signer
    private let lock = NSLock()
    private var _requests: [SignRequest] = []
    var requests: [SignRequest] { lock.withLock { _requests } }
    init(device: Signer) { self.device = device }

    func sign(request: SignRequest) async throws -> Data {
        lock.withLock { _requests.append(request) }
        try await Task.sleep(nanoseconds: 2_000_000) // an asynchronous device round trip
        return try await device.sign(request: request)
    }
}

struct Declined: Error {}

final class FailingSigner: HostSigner, @unchecked Sendable {
    let error: Error
    init(_ error: Error) { self.error = error }
    func sign(request: SignRequest) async throws -> Data { throw error }
}

final class Snap2PTests: XCTestCase {
    func testSha256Helper() {
        XCTAssertEqual(SHA256.hash(Data("abc".utf8)).hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hash(Data()).hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    func testDialEchoThroughCallbacks() async throws {
        try await withTimeout {
            let server = try await Peer.create(options: PeerOptions(alias: "echo-server", displayName: "Echo"))
            let client = try await Peer.create(options: PeerOptions())
            let addr = try await server.listen(addr: "127.0.0.1:0")
            let echo = EchoServer()
            let sub = server.onConnection(handler: echo)

            let conn = try await client.dial(target: addr, expect: server.principal())
            XCTAssertEqual(conn.remotePrincipal(), server.principal())
            XCTAssertEqual(conn.remoteAlias()?.alias, "echo-server")
            XCTAssertEqual(conn.sessionId().count, 32)

            let stream = try await conn.openStream(label: "echo")
            try await stream.writeAndFinish(Data("hello from swift".utf8))
            let back = try await stream.readToEnd(limit: 1024)
            XCTAssertEqual(String(decoding: back, as: UTF8.self), "hello from swift")
            XCTAssertFalse(echo.callbackThreads.isEmpty)

            // Dial by principal finds the live session.
            let again = try await client.dial(target: server.principal())
            XCTAssertEqual(again.sessionId(), conn.sessionId())

            sub.cancel()
            XCTAssertFalse(sub.isActive())
            // After cancel, connections queue for accept() instead of the handler.
            _ = try await client.dial(target: addr)
            let viaAccept = await server.accept()
            XCTAssertEqual(viaAccept?.remotePrincipal(), client.principal())

            echo.stop()
            await client.shutdown()
            await server.shutdown()
            XCTAssertTrue(server.isShutDown())
            let none = await server.accept()
            XCTAssertNil(none)
        }
    }

    func testAsyncSequenceOfConnections() async throws {
        try await withTimeout {
            let server = try await Peer.create(options: PeerOptions())
            let client = try await Peer.create(options: PeerOptions())
            let addr = try await server.listen(addr: "127.0.0.1:0")
            // The subscription starts when the sequence is created, so no connection made
            // after this line can miss it, however late the iterating task starts.
            let connections = server.incomingConnections()
            let first = Task { () -> String? in
                for await conn in connections { return conn.remotePrincipal() }
                return nil
            }
            _ = try await client.dial(target: addr)
            let got = await first.value
            XCTAssertEqual(got, client.principal())
            await client.shutdown()
            await server.shutdown()
        }
    }

    func testTransfer64MiBWithSha256AtBothEnds() async throws {
        try await withTimeout(240) {
            let size = 64 * 1024 * 1024
            let pair = try await EchoPair.start()
            let stream = try await pair.conn.openStream(label: "bulk")
            let data = pattern(size)
            let expected = SHA256.hash(data)
            let reader = EchoPair.digest(of: stream)
            var off = 0
            while off < size {
                let n = min(1 << 20, size - off)
                try await stream.writeAll(data.subdata(in: off..<off + n))
                off += n
            }
            try stream.finish()
            let (total, echoed) = try await reader.value
            XCTAssertEqual(total, size)
            XCTAssertEqual(echoed, expected, "client-side SHA-256 of the echo")
            XCTAssertEqual(pair.echo.digests, [expected], "server-side SHA-256")
            await pair.stop()
        }
    }

    func testPolicyErrorsCarryProtocolCodes() async throws {
        try await withTimeout {
            let client = try await Peer.create(options: PeerOptions())
            let priv = try await Peer.create(options: PeerOptions(visibility: .private))
            let privAddr = try await priv.listen(addr: "127.0.0.1:0")
            await expectError(4, "ERR_NOT_ALLOWED") { _ = try await client.dial(target: privAddr) }
            try priv.allow(principal: client.principal())
            let ok = try await client.dial(target: privAddr)
            XCTAssertEqual(ok.remotePrincipal(), priv.principal())

            let stealth = try await Peer.create(options: PeerOptions(visibility: .stealth, allowlist: [client.principal()]))
            let stealthAddr = try await stealth.listen(addr: "127.0.0.1:0")
            let invite = try stealth.createInvite(ttlSecs: 600)
            let viaInvite = try await client.dial(target: stealthAddr, invite: invite.token)
            XCTAssertEqual(viaInvite.remotePrincipal(), stealth.principal())
            do {
                _ = try await client.dial(target: stealthAddr, invite: String(repeating: "00", count: 32))
                XCTFail("a wrong invite must be refused")
            } catch let e as Snap2pError {
                XCTAssertNotEqual(e.code, 0)
            }

            await expectError(25, "ERR_INVALID_ARGUMENT") { _ = try await client.dial(target: privAddr, invite: "not hex") }
            await expectError(25, "ERR_INVALID_ARGUMENT") { _ = try await client.dial(target: "stacks:SP000000000000000000002Q6VF79") }
            await expectError(25, "ERR_INVALID_ARGUMENT") { _ = try await client.listen(addr: "300.1.2.3:99999") }
            await expectError(21, "ERR_NOT_FOUND") { _ = try await client.dial(target: Signer.generate(network: .mainnet).principal()) }
            await expectError(23, "ERR_PRINCIPAL_MISMATCH") { _ = try await client.dial(target: privAddr, expect: stealth.principal()) }
            XCTAssertEqual(errorCodeName(code: 4), "ERR_NOT_ALLOWED")
            for p in [client, priv, stealth] { await p.shutdown() }
            await expectError(12, "ERR_CONNECTION_CLOSED") { _ = try await client.dial(target: privAddr) }
        }
    }

    func testSwiftHostSigner() async throws {
        try await withTimeout {
            let device = try Signer.fromMnemonic(
                mnemonic: "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
                network: .mainnet)
            let host = KeychainSigner(device: device)
            let signer = try Signer.fromHost(principal: device.principal(), form: .digest, host: host)
            let alice = try await Peer.create(options: PeerOptions(alias: "alice", signer: signer))
            XCTAssertEqual(alice.principal(), device.principal())
            XCTAssertGreaterThanOrEqual(host.requests.count, 2)
            let bob = try await Peer.create(options: PeerOptions())
            let addr = try await alice.listen(addr: "127.0.0.1:0")
            let conn = try await bob.dial(target: addr)
            XCTAssertEqual(conn.remotePrincipal(), device.principal())
            XCTAssertEqual(conn.remoteAlias()?.alias, "alice")

            // The message form: the host gets text to sign.
            let textHost = KeychainSigner(device: Signer.generate(network: .testnet))
            let textSigner = try Signer.fromHost(principal: textHost.device.address(), form: .stacksMessage, host: textHost)
            let carol = try await Peer.create(options: PeerOptions(signer: textSigner))
            XCTAssertTrue(textHost.requests.allSatisfy { if case .message = $0 { return true } else { return false } })
            let carolAddr = try await carol.listen(addr: "127.0.0.1:0")
            let c2 = try await bob.dial(target: carolAddr)
            XCTAssertEqual(c2.remotePrincipal(), textHost.device.principal())

            // Thrown Swift errors become typed errors, never crashes.
            let declining = try Signer.fromHost(principal: device.principal(), form: .digest, host: FailingSigner(Declined()))
            await expectError(24, "ERR_WALLET") { _ = try await Peer.create(options: PeerOptions(signer: declining)) }
            let typed = try Signer.fromHost(principal: device.principal(), form: .digest,
                                            host: FailingSigner(Snap2pError.Failure(code: 13, name: "ERR_TIMEOUT", reason: "asleep")))
            await expectError(13, "ERR_TIMEOUT") { _ = try await Peer.create(options: PeerOptions(signer: typed)) }
            for p in [alice, bob, carol] { await p.shutdown() }
        }
    }

    func testWalletStore() async throws {
        try await withTimeout {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("snap2p-swift-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: dir) }
            let store = try WalletStore.open(dir: dir.path)
            let info = try store.create(name: "alice", password: "correct horse battery staple", network: .testnet)
            XCTAssertTrue(info.address.hasPrefix("ST"))
            XCTAssertEqual(try store.list().map(\.name), ["alice"])
            await expectError(24, "ERR_WALLET") { _ = try store.unlock(nameOrId: "alice", password: "wrong password!!") }
            let signer = try store.unlock(nameOrId: "alice", password: "correct horse battery staple")
            XCTAssertEqual(signer.address(), info.address)
            let peer = try await Peer.create(options: PeerOptions(signer: signer))
            XCTAssertEqual(peer.principal(), "stacks:" + info.address)
            await peer.shutdown()
        }
    }

    func testSharedIdentityVectors() throws {
        let path = ProcessInfo.processInfo.environment["SNAP2P_VECTORS"] ?? "../core/tests/vectors/identity.json"
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        let addresses = json["addresses"] as! [[String: Any]]
        XCTAssertFalse(addresses.isEmpty)
        for v in addresses {
            let address = v["address"] as! String
            let info = try parseAddress(address: address)
            XCTAssertEqual(Int(info.version), v["version"] as? Int)
            XCTAssertEqual(info.hash160.hex, v["hash160"] as? String)
            XCTAssertEqual(try principalFromHash160(version: info.version, hash160: Data(hex: v["hash160"] as! String)), address)
        }
        for v in json["message_hashes"] as! [[String: Any]] {
            XCTAssertEqual(stacksMessageHash(message: v["message"] as! String).hex, v["hash"] as? String)
        }
        for m in json["mnemonics"] as! [[String: Any]] {
            for a in m["accounts"] as! [[String: Any]] {
                let index = UInt32(a["index"] as! Int)
                XCTAssertEqual(try Signer.fromMnemonic(mnemonic: m["mnemonic"] as! String, accountIndex: index, network: .mainnet).address(), a["mainnet"] as? String)
                XCTAssertEqual(try Signer.fromMnemonic(mnemonic: m["mnemonic"] as! String, accountIndex: index, network: .testnet).address(), a["testnet"] as? String)
            }
        }
        var negatives = 0
        for v in json["negative"] as! [[String: Any]] where v["type"] as? String == "principal" {
            XCTAssertThrowsError(try parsePrincipal(text: v["input"] as! String)) { error in
                guard case let .Failure(code, name, _) = error as! Snap2pError else { return }
                XCTAssertEqual(code, 25)
                XCTAssertEqual(name, v["error"] as? String)
            }
            negatives += 1
        }
        XCTAssertGreaterThan(negatives, 0)
    }

    /// The TypeScript wire profile (docs/PROTOCOL.md §12) against a Rust peer listening in it.
    func testTsProfileWithRustPeer() async throws {
        guard let bin = ProcessInfo.processInfo.environment["SNAP2P_ECHO_PEER"] else {
            XCTFail("SNAP2P_ECHO_PEER must point at the echo_peer binary (core/examples/echo_peer.rs)"); return
        }
        let proc = Process()
        proc.executableURL = URL(fileURLWithPath: bin)
        proc.arguments = ["--listen", "127.0.0.1:0", "--compat", "ts"]
        let out = Pipe(), input = Pipe()
        proc.standardOutput = out
        proc.standardInput = input
        try proc.run()
        defer {
            try? input.fileHandleForWriting.close()
            proc.waitUntilExit()
        }
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let d = out.fileHandleForReading.availableData
            if d.isEmpty { break }
            line.append(d)
        }
        let parts = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ").map(String.init)
        XCTAssertEqual(parts.first, "READY")
        let addr = parts[1], principal = parts[2]
        try await withTimeout(120) {
            let peer = try await Peer.create(options: PeerOptions(compat: "ts"))
            let conn = try await peer.dial(target: addr, expect: principal)
            XCTAssertEqual(conn.remotePrincipal(), principal)
            let echo = try await conn.openStream(label: "echo")
            try await echo.writeAndFinish(Data("compat from swift".utf8))
            let echoed = try await echo.readToEnd(limit: 1024)
            XCTAssertEqual(String(decoding: echoed, as: UTF8.self), "compat from swift")
            conn.shutdown()
            let standard = try await Peer.create(options: PeerOptions())
            do {
                _ = try await standard.dial(target: addr)
                XCTFail("a standard dialer must be refused")
            } catch let Snap2pError.Failure(code, _, message) {
                XCTAssertEqual(code, 8)
                XCTAssertTrue(message.contains("this peer speaks the TypeScript profile"), message)
            }
            await standard.shutdown()
            await peer.shutdown()
        }
    }

    func testInteropWithRustPeer() async throws {
        guard let bin = ProcessInfo.processInfo.environment["SNAP2P_ECHO_PEER"] else {
            XCTFail("SNAP2P_ECHO_PEER must point at the echo_peer binary (core/examples/echo_peer.rs)"); return
        }
        let proc = Process()
        proc.executableURL = URL(fileURLWithPath: bin)
        proc.arguments = ["--listen", "127.0.0.1:0"]
        let out = Pipe(), input = Pipe()
        proc.standardOutput = out
        proc.standardInput = input
        try proc.run()
        defer {
            try? input.fileHandleForWriting.close() // the peer exits when stdin closes
            proc.waitUntilExit()
        }
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let d = out.fileHandleForReading.availableData
            if d.isEmpty { break }
            line.append(d)
        }
        let parts = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ").map(String.init)
        XCTAssertEqual(parts.first, "READY")
        let addr = parts[1], principal = parts[2]

        try await withTimeout(240) {
            let peer = try await Peer.create(options: PeerOptions())
            let conn = try await peer.dial(target: addr, expect: principal)
            XCTAssertEqual(conn.remotePrincipal(), principal)
            let echo = try await conn.openStream(label: "echo")
            try await echo.writeAndFinish(Data("from swift".utf8))
            let echoed = try await echo.readToEnd(limit: 1024)
            XCTAssertEqual(String(decoding: echoed, as: UTF8.self), "from swift")

            let size = 64 * 1024 * 1024
            let data = pattern(size, seed: 42)
            let s = try await conn.openStream(label: "sha256")
            let digest = Task { try await s.readToEnd(limit: 64) }
            var off = 0
            while off < size {
                let n = min(1 << 20, size - off)
                try await s.write(data: data.subdata(in: off..<off + n))
                off += n
            }
            try s.finish()
            let remote = try await digest.value
            XCTAssertEqual(remote, SHA256.hash(data), "Rust's SHA-256 equals Swift's")
            conn.shutdown()
            await peer.shutdown()
        }
    }

    func testShutdownReleasesSocketsAndThreads() async throws {
        try await withTimeout(120) {
            func round() async throws {
                let server = try await Peer.create(options: PeerOptions())
                let client = try await Peer.create(options: PeerOptions())
                let addr = try await server.listen(addr: "127.0.0.1:0")
                let echo = EchoServer()
                let sub = server.onConnection(handler: echo)
                for _ in 0..<3 {
                    let conn = try await client.dial(target: addr)
                    let s = try await conn.openStream()
                    try await s.writeAndFinish(pattern(100_000))
                    let back = try await s.readToEnd(limit: 1 << 20)
                    XCTAssertEqual(back.count, 100_000)
                }
                sub.cancel()
                echo.stop()
                await client.shutdown()
                await server.shutdown()
            }
            try await round() // warm-up: runtime threads, Swift executors
            try await Task.sleep(nanoseconds: 500_000_000)
            // The runtime's own count: on Linux a Dispatch worker started from a snap2p
            // thread inherits its name, so threads named "snap2p" are more than the
            // runtime's (one such test run saw 4 named, 2 of them the runtime's workers).
            let fds = Proc.fds, threads = runtimeThreads(), named = Proc.snap2pThreadDetails
            XCTAssertGreaterThanOrEqual(threads, 2, "the runtime's two workers")
            XCTAssertGreaterThanOrEqual(Proc.snap2pThreads, 2, "the runtime's threads are named snap2p")
            for _ in 0..<5 { try await round() }
            var nowFds = Proc.fds, nowThreads = runtimeThreads()
            // Up to 15 s: tokio ends an idle blocking-pool thread after 10 s.
            for _ in 0..<150 where nowFds > fds || nowThreads > threads {
                try await Task.sleep(nanoseconds: 100_000_000)
                nowFds = Proc.fds; nowThreads = runtimeThreads()
            }
            XCTAssertLessThanOrEqual(nowFds, fds, "file descriptors leaked")
            XCTAssertLessThanOrEqual(
                nowThreads, threads,
                "snap2p runtime threads leaked; threads named snap2p before: \(named), now: "
                    + "\(Proc.snap2pThreadDetails)")
        }
    }
}
