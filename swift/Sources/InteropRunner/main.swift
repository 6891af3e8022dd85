// The Swift runner of the interop matrix (contract: docs/INTEROP.md).
//
//   snap2p-interop-runner listen [--visibility V] [--allow P]… [--alias A] [--invite] [--bootstrap LOC] [--sign-form digest|message]
//                                [--ws | --wss --tls-cert PEM --tls-key PEM]
//                                [--permit RULES] [--grant-owner-mnemonic M] [--relay ADDR] [--v1]
//   snap2p-interop-runner dial --target T [--via LOC] [--invite HEX] [--streams N] [--bytes B]
//                              [--expect-principal P] [--expect-alias A] [--expect-code C] [--sign-form F]
//                              [--tls-root PEM]
//                              [--grant-label L --grant-owner-mnemonic M] [--expect-transport T]
//   snap2p-interop-runner relay   (serves RELAY-1 on 127.0.0.1:0 for the relay scenario)
//
// Its wallet signer is Swift: a HostSigner (the foreign protocol) the core calls back to sign
// the NodeKeyAttestation and AliasCard. It hashes Stacks messages itself and hands the
// 32-byte digest to its key holder; the secp256k1 operation is delegated to a wallet object
// of the binding (no secp256k1 library in the Linux toolchain), as a device bridge would.
// Built and run in the Swift chroot by ci/interop/runner-swift.sh.

import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Snap2P
import SHA256Support

/// A host-side signer: holds its key (a wallet object standing in for the device).
final class RunnerSigner: HostSigner, @unchecked Sendable {
    let key: Signer
    init(key: Signer) { self.key = key }

    func sign(request: SignRequest) async throws -> Data {
        let digest: Data
        switch request {
        case let .digest(d): digest = d
        case let .message(text): digest = stacksMessageHash(message: text)
        }
        return try await key.sign(request: .digest(digest: digest))
    }
}

struct Args {
    let a: [String]
    var mode: String { a.first ?? "" }
    func value(_ name: String) -> String? {
        guard let i = a.firstIndex(of: name), i + 1 < a.count else { return nil }
        return a[i + 1]
    }
    func values(_ name: String) -> [String] {
        guard a.count >= 2 else { return [] }
        return (0..<(a.count - 1)).filter { a[$0] == name }.map { a[$0 + 1] }
    }
    func flag(_ name: String) -> Bool { a.contains(name) }
}

// ---- JSON lines -------------------------------------------------------------------------

func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
        }
    }
    return out + "\""
}

func json(_ v: Any?) -> String {
    switch v {
    case nil: return "null"
    case let s as String: return jsonString(s)
    case let b as Bool: return b ? "true" : "false"
    case let i as Int: return String(i)
    case let i as UInt64: return String(i)
    case let i as Int64: return String(i)
    case let kv as [(String, Any?)]: return "{" + kv.map { jsonString($0.0) + ":" + json($0.1) }.joined(separator: ",") + "}"
    case let l as [Any?]: return "[" + l.map { json($0) }.joined(separator: ",") + "]"
    case let .some(x): return jsonString(String(describing: x))
    }
}

let outLock = NSLock()
func emit(_ kv: [(String, Any?)]) {
    let line = json(kv)
    outLock.lock()
    print(line)
    fflush(stdout)
    outLock.unlock()
}

func log(_ s: String) { FileHandle.standardError.write((s + "\n").data(using: .utf8)!) }



/// Random payload bytes: xorshift64* seeded from the system generator (fast in any build).
struct Payload {
    var x = UInt64.random(in: 1...UInt64.max)
    mutating func fill(_ n: Int) -> Data {
        var words = [UInt64](repeating: 0, count: (n + 7) / 8)
        for i in 0..<words.count {
            x ^= x >> 12; x ^= x << 25; x ^= x >> 27
            words[i] = x &* 0x2545F4914F6CDD1D
        }
        return words.withUnsafeBytes { Data($0.prefix(n)) }
    }
}

func errorCode(_ e: Error) -> UInt64? { (e as? Snap2pError)?.code }

// ---- peer -------------------------------------------------------------------------------

func makePeer(_ args: Args) async throws -> Peer {
    let form: SignatureForm = args.value("--sign-form") == "message" ? .stacksMessage : .digest
    let key = Signer.generate(network: .mainnet)
    let signer = try Signer.fromHost(principal: key.principal(), form: form, host: RunnerSigner(key: key))
    let visibility: Visibility
    switch args.value("--visibility") ?? "public" {
    case "private": visibility = .private
    case "stealth": visibility = .stealth
    default: visibility = .public
    }
    let alias = args.value("--alias")
    let allow = args.values("--allow")
    let peer = try await Peer.create(options: PeerOptions(
        visibility: visibility,
        allowlist: allow,
        // As the Rust runner: the allowlist gates private peers (or any given --allow);
        // a stealth listener is invite-only.
        allowlistGate: visibility == .private || !allow.isEmpty,
        alias: alias,
        displayName: alias.map { "\($0) (swift)" },
        // --v1: the handshake of three round trips only (PROTOCOL.md §5.8).
        hs2: !args.flag("--v1"),
        signer: signer,
        // wss: the listener's certificate and key, the dialer's extra trusted root.
        tlsCertFile: args.value("--tls-cert"),
        tlsKeyFile: args.value("--tls-key"),
        tlsRootFile: args.value("--tls-root"),
        // relay: `snap2p-interop-runner relay` serves RELAY-1 (PROTOCOL.md §32).
        relay: args.mode == "relay" ? RelayOptions() : nil
    ))
    if args.mode == "listen" {
        // grant: rules in their text form, and the owner wallet whose grants this node honours.
        if let rules = args.value("--permit") { try peer.setPermissions(rules: rules) }
        if let m = args.value("--grant-owner-mnemonic") {
            try peer.addGrantOwner(principal: try Signer.fromMnemonic(mnemonic: m, accountIndex: 0, network: .mainnet).principal())
        }
    }
    return peer
}

/// Opens `label`, writes a few bytes, reads the answer: 0 when served, else the error code.
func probe(_ conn: Connection, _ label: String) async -> Int64 {
    do {
        let s = try await conn.openStream(label: label)
        try await s.write(data: Data("probe".utf8))
        try s.finish()
        _ = try await s.readToEnd(limit: 128)
        return 0
    } catch {
        return errorCode(error).map { Int64($0) } ?? -1
    }
}

/// Reads a whole stream, answers with the hex SHA-256 of it.
func serveStream(_ stream: Snap2P.Stream) async {
    var sha = SHA256()
    var n = 0
    do {
        // chunks(): the raw read path, so the matrix reads through it.
        for try await chunk in stream.chunks() {
            n += chunk.count
            sha.update(chunk)
        }
        let digest = sha.finalize().hex
        try await stream.write(data: Data(digest.utf8))
        try stream.finish()
        emit([("event", "stream"), ("label", stream.label()), ("bytes", n), ("sha256", digest)])
    } catch {
        log("stream \(stream.label() ?? "-"): \(error)")
    }
}

func serveConnection(_ conn: Connection) async {
    await withTaskGroup(of: Void.self) { group in
        while true {
            guard let stream = try? await conn.acceptStream() else { break }
            group.addTask { await serveStream(stream) }
        }
    }
}

/// Returns once standard input reaches end of file (the orchestrator's stop signal).
func stdinClosed() async {
    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
        Thread.detachNewThread {
            var buf = [UInt8](repeating: 0, count: 256)
            while true {
                let n = read(0, &buf, buf.count)
                if n > 0 { continue }
                if n < 0 && errno == EINTR { continue }
                break
            }
            c.resume()
        }
    }
}

func listen(_ args: Args) async throws -> Int32 {
    let peer = try await makePeer(args)
    // listen() returns the bound "ip:port"; the locator is the listen locator with it.
    var locator: String
    if args.flag("--wss") {
        // The full locator of the listener, named as its certificate is (localhost).
        _ = try await peer.listen(addr: "wss://127.0.0.1:0/interop")
        guard let l = peer.listenLocators().first(where: { $0.hasPrefix("wss://") }) else {
            throw NSError(domain: "runner", code: 1, userInfo: [NSLocalizedDescriptionKey: "no wss listener"])
        }
        locator = l.replacingOccurrences(of: "wss://127.0.0.1:", with: "wss://localhost:")
    } else if args.flag("--ws") {
        let bound = try await peer.listen(addr: "ws://127.0.0.1:0/interop")
        locator = "ws://\(bound)/interop"
    } else {
        locator = try await peer.listen(addr: "127.0.0.1:0")
    }
    if let r = args.value("--relay") {
        // relay: also reserve on the relay at ADDR; the printed locator is the relayed one.
        _ = try await peer.listen(addr: "relay://\(r)")
        guard let l = peer.listenLocators().first(where: { $0.hasPrefix("relay://") }) else {
            throw NSError(domain: "runner", code: 1, userInfo: [NSLocalizedDescriptionKey: "no relay locator"])
        }
        locator = l
    }
    let invite = args.flag("--invite") ? try peer.createInvite(ttlSecs: 3600, oneTime: false).token : nil
    var bootstrap: Connection? = nil
    if let b = args.value("--bootstrap") { bootstrap = try await peer.dial(target: b) }
    emit([("event", "ready"), ("principal", peer.principal()), ("locator", locator), ("invite", invite)])
    let acceptor = Task {
        await withTaskGroup(of: Void.self) { group in
            while let conn = await peer.accept() {
                let stats = conn.stats()
                emit([
                    ("event", "connection"), ("principal", conn.remotePrincipal()), ("transport", stats.transport),
                    ("hs2", stats.hs2), ("handshakes_failed", peer.stats().handshakesFailed.values.reduce(0, +)),
                ])
                group.addTask { await serveConnection(conn) }
            }
        }
    }
    // Serve until the orchestrator closes our stdin.
    await stdinClosed()
    bootstrap?.shutdown(code: 0, reason: "done")
    await peer.shutdown()
    acceptor.cancel()
    return 0
}

// ---- dial -------------------------------------------------------------------------------

func sendOne(_ conn: Connection, _ i: Int, _ bytes: Int, _ label: String? = nil) async throws -> [(String, Any?)] {
    let s = try await conn.openStream(label: label ?? "interop-\(i)")
    var sha = SHA256()
    var rnd = Payload()
    var left = bytes
    while left > 0 {
        let buf = rnd.fill(min(left, 65536))
        sha.update(buf)
        try await s.write(data: buf)
        left -= buf.count
    }
    try s.finish()
    let reply = try await s.readToEnd(limit: 128)
    let mine = sha.finalize().hex
    return [("sha256", mine), ("match", String(decoding: reply, as: UTF8.self) == mine)]
}

func dial(_ args: Args) async throws -> Bool {
    let peer = try await makePeer(args)
    guard let target = args.value("--target") else { throw NSError(domain: "runner", code: 2, userInfo: [NSLocalizedDescriptionKey: "--target"]) }
    let started = Date()
    var via: Connection? = nil
    if let v = args.value("--via") { via = try await peer.dial(target: v) }
    let expectCode = args.value("--expect-code").flatMap { UInt64($0) }
    let conn: Connection
    do {
        conn = try await peer.dial(target: target, invite: args.value("--invite"))
    } catch {
        let code = errorCode(error)
        let ok = expectCode != nil && code == expectCode
        emit([("event", "result"), ("ok", ok), ("code", code), ("error", "\(error)")])
        await peer.shutdown()
        return ok
    }
    if expectCode != nil {
        emit([("event", "result"), ("ok", false), ("code", nil), ("error", "connected but an error was expected")])
        conn.shutdown(code: 0, reason: "done")
        await peer.shutdown()
        return false
    }
    // grant: opening the label must be refused (20); then the owner wallet (account 0 of the
    // mnemonic, as a host-side signer of this runner) grants it to our principal, we present
    // the grant and label the streams with it.
    let grantLabel = args.value("--grant-label")
    var refusedCode: Int64? = nil
    if let label = grantLabel {
        let code = await probe(conn, label)
        refusedCode = code
        var error: String? = code == 20 ? nil : "refusal code \(code) (want 20)"
        if error == nil {
            do {
                let key = try Signer.fromMnemonic(mnemonic: args.value("--grant-owner-mnemonic") ?? "", accountIndex: 0, network: .mainnet)
                let owner = try Signer.fromHost(principal: key.principal(), form: .stacksMessage, host: RunnerSigner(key: key))
                let grant = try await owner.issueGrant(holder: peer.principal(), labels: [label], ttlSecs: 3600)
                try await conn.presentGrant(grant: grant)
            } catch let e {
                error = "present: \(errorCode(e).map { String($0) } ?? "-") \(e)"
            }
        }
        if let error = error {
            emit([("event", "result"), ("ok", false), ("refused_code", Int(code)), ("error", error)])
            conn.shutdown(code: 0, reason: "done")
            await peer.shutdown()
            return false
        }
    }
    let streams = args.value("--streams").flatMap { Int($0) } ?? 1
    let bytes = args.value("--bytes").flatMap { Int($0) } ?? 1024
    let results: [[(String, Any?)]] = await withTaskGroup(of: (Int, [(String, Any?)]).self) { group in
        for i in 0..<streams {
            group.addTask {
                do { return (i, try await sendOne(conn, i, bytes, grantLabel)) } catch { return (i, [("error", "\(error)")]) }
            }
        }
        var byIndex = [Int: [(String, Any?)]]()
        for await (i, r) in group { byIndex[i] = r }
        return (0..<streams).map { byIndex[$0]! }
    }
    var ok = results.allSatisfy { r in r.contains { $0.0 == "match" && ($0.1 as? Bool) == true } }
    var alias = conn.remoteAlias()?.alias
    if let expected = args.value("--expect-alias") {
        // The card follows AUTH_OK; give it a moment to arrive.
        for _ in 0..<50 where alias != expected {
            try? await Task.sleep(nanoseconds: 20_000_000)
            alias = conn.remoteAlias()?.alias
        }
        ok = ok && alias == expected
    }
    if let p = args.value("--expect-principal") { ok = ok && conn.remotePrincipal() == p }
    let stats = conn.stats()
    let transport = stats.transport
    if let t = args.value("--expect-transport") { ok = ok && transport == t }
    emit([
        ("event", "result"), ("ok", ok), ("principal", conn.remotePrincipal()),
        ("alias", conn.remoteAlias()?.alias), ("streams", results.map { $0 as Any? }),
        ("refused_code", refusedCode.map { Int($0) } as Any?),
        ("transport", transport),
        ("hs2", stats.hs2),
        ("ms", Int(Date().timeIntervalSince(started) * 1000)),
    ])
    conn.shutdown(code: 0, reason: "done")
    via?.shutdown(code: 0, reason: "done")
    await peer.shutdown()
    return ok
}

// ---- benchmark hook ----------------------------------------------------------------------

/// CRC-32 (IEEE, reflected), as the Rust bench listener computes it.
struct CRC32 {
    static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }
    var value: UInt32 = 0xFFFF_FFFF
    mutating func update(_ d: Data) {
        for b in d { value = CRC32.table[Int((value ^ UInt32(b)) & 0xFF)] ^ (value >> 8) }
    }
    var final: UInt32 { value ^ 0xFFFF_FFFF }
}

/// CPU time of the whole process (every thread), in seconds.
func processCpuSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// One stream of TOTAL bytes in WRITE-byte writes to the Rust bench listener (bench/), which
/// answers with the CRC-32 of what it read. Prints `RESULT <MiB/s> <1 if the CRC matched>
/// <CPU seconds of the process over the timed stream>`; the clock runs from opening the
/// stream to the reply, as for every row of that table.
func benchSend(_ a: [String]) async throws -> Int32 {
    guard a.count == 4, let total = Int(a[2]), let size = Int(a[3]) else { return 2 }
    let block = Data((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) })
    let n = total / size
    var crc = CRC32()
    for _ in 0..<n { crc.update(block) }
    let peer = try await Peer.create(options: PeerOptions(px1: false))
    let conn = try await peer.dial(target: a[1])
    // Untimed warm-up stream (as long as the timed one), as the other language senders do.
    let warm = try await conn.openStream(label: "warm-up")
    for _ in 0..<n { try await warm.writeAll(block) }
    try warm.finish()
    _ = try await warm.readToEnd(limit: 16)
    let t0 = DispatchTime.now().uptimeNanoseconds
    let cpu0 = processCpuSeconds()
    let s = try await conn.openStream(label: "bench")
    for _ in 0..<n { try await s.writeAll(block) }
    try s.finish()
    let reply = try await s.readToEnd(limit: 16)
    let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    let cpu = processCpuSeconds() - cpu0
    let got = reply.reduce(UInt32(0)) { ($0 << 8) | UInt32($1) }
    let ok = reply.count == 4 && got == crc.final
    print(String(format: "RESULT %.1f %d %.4f", Double(n * size) / 1_048_576 / dt, ok ? 1 : 0, cpu))
    conn.shutdown(code: 0, reason: "done")
    await peer.shutdown()
    return ok ? 0 : 1
}

/// A listener written with the package, for the native sender of the receive rows
/// (bench/src/bindings.rs). Prints `ADDR <ip:port>`, then `STREAM <bytes> <CPU seconds of
/// the process over the stream>` for each stream, which it reads to its end with
/// `chunks()` (`--read`: a loop of the generated `read(max: 65536)` instead, for
/// comparison; `--read-into`: `read(into:)` into one array of 1 MiB, reused) (counting only: a checksum would weigh more than the read paths compared)
/// and answers with its length (8 bytes, big endian); serves until its standard input
/// closes.
func benchRecv(how: String) async throws -> Int32 {
    let peer = try await Peer.create(options: PeerOptions(px1: false))
    print("ADDR \(try await peer.listen(addr: "127.0.0.1:0"))")
    fflush(stdout)
    let acceptor = Task {
        await withTaskGroup(of: Void.self) { group in
            while let conn = await peer.accept() {
                group.addTask {
                    await withTaskGroup(of: Void.self) { streams in
                        while let s = try? await conn.acceptStream() {
                            streams.addTask {
                                let cpu0 = processCpuSeconds()
                                var n: UInt64 = 0
                                do {
                                    switch how {
                                    case "--read":
                                        while let chunk = try await s.read(max: 65536) { n += UInt64(chunk.count) }
                                    case "--read-into":
                                        var buf = [UInt8](repeating: 0, count: 1 << 20)
                                        while true {
                                            let k = try await s.read(into: &buf)
                                            if k == 0 { break }
                                            n += UInt64(k)
                                        }
                                    default:
                                        for try await chunk in s.chunks() { n += UInt64(chunk.count) }
                                    }
                                    let cpu = processCpuSeconds() - cpu0
                                    try await s.writeAll(withUnsafeBytes(of: n.bigEndian) { Data($0) })
                                    try s.finish()
                                    print(String(format: "STREAM %llu %.4f", n, cpu))
                                    fflush(stdout)
                                } catch {
                                    log("bench-recv stream: \(error)")
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    await stdinClosed()
    await peer.shutdown()
    acceptor.cancel()
    return 0
}

let args = Args(a: Array(CommandLine.arguments.dropFirst()))
var status: Int32 = 1
do {
    switch args.mode {
    case "listen", "relay": status = try await listen(args)
    case "dial": status = try await dial(args) ? 0 : 1
    case "bench-send": status = try await benchSend(Array(CommandLine.arguments.dropFirst()))
    case "bench-recv": status = try await benchRecv(how: CommandLine.arguments.dropFirst(2).first ?? "")
    default:
        log("usage: snap2p-interop-runner listen|dial [options] (see docs/INTEROP.md) | bench-send ADDR TOTAL WRITE | bench-recv [--read|--read-into]")
        status = 2
    }
} catch {
    log("runner: \(error)")
    if args.mode == "dial" { emit([("event", "result"), ("ok", false), ("code", errorCode(error)), ("error", "\(error)")]) }
    status = 1
}
fflush(stdout)
exit(status)
