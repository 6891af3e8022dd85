import Foundation
import XCTest
import Snap2P

/// The next event of `kind`, skipping others.
func nextEvent(_ events: EventSubscription, _ kind: EventKind, seconds: Double = 15) async throws -> PeerEvent {
    try await withTimeout(seconds) {
        while let ev = await events.next() {
            if ev.kind == kind { return ev }
        }
        throw NSError(domain: "test", code: 1, userInfo: [NSLocalizedDescriptionKey: "the subscription ended before a \(kind) event"])
    }
}

/// Accepts `count` connections and echoes one stream of each.
func echoOneStreamEach(_ server: Peer, count: Int = 1) -> Task<Void, Error> {
    Task {
        for _ in 0..<count {
            guard let c = await server.accept() else { return }
            let s = try await c.acceptStream()
            try await s.writeAndFinish(try await s.readToEnd(limit: 4 << 20))
        }
    }
}

/// Peer events and counters (Peer.events(), Peer.stats(), Connection.stats(), Connection.id()).
final class EventsTests: XCTestCase {
    func testAWrongInviteOnAStealthListenerIsReportedWithItsCode() async throws {
        try await withTimeout {
            // Invite-only stealth listener: it answers nothing to a dialer without a valid invite.
            let server = try await Peer.create(options: PeerOptions(visibility: .stealth, allowlistGate: false))
            let events = server.events()
            let addr = try await server.listen(addr: "127.0.0.1:0")
            _ = try server.createInvite()
            let client = try await Peer.create(options: PeerOptions())
            await expectError(5, "ERR_INVITE_INVALID") {
                _ = try await client.dial(target: addr, invite: String(repeating: "ab", count: 32))
            }

            let failed = try await nextEvent(events, .handshakeFailed)
            XCTAssertEqual(failed.code, 5, "\(failed)")
            XCTAssertEqual(errorCodeName(code: failed.code ?? 0), "ERR_INVITE_INVALID")
            XCTAssertEqual(failed.direction, .inbound)
            XCTAssertEqual(failed.transport, "tcp")
            XCTAssertTrue(failed.remoteAddr?.hasPrefix("127.0.0.1:") ?? false, "\(failed)")
            XCTAssertNotNil(failed.reason)
            XCTAssertNil(failed.connection, "no session, no connection id")
            XCTAssertEqual(server.stats().handshakesFailed[5], 1, "\(server.stats())")
            XCTAssertEqual(server.stats().sessionsInbound, 0)

            events.close()
            await client.shutdown()
            await server.shutdown()
        }
    }

    func testSessionEventsCarryTheConnectionIdAndCountersGrow() async throws {
        try await withTimeout {
            let server = try await Peer.create(options: PeerOptions())
            let client = try await Peer.create(options: PeerOptions())
            let serverEvents = server.events(), clientEvents = client.events()
            let addr = try await server.listen(addr: "127.0.0.1:0")
            let echo = echoOneStreamEach(server)
            let conn = try await client.dial(target: addr)
            XCTAssertEqual(conn.id().count, 16)

            let up = try await nextEvent(clientEvents, .sessionEstablished)
            XCTAssertEqual(up.connection, conn.id())
            XCTAssertEqual(up.direction, .outbound)
            XCTAssertEqual(up.transport, "tcp")
            XCTAssertEqual(up.remoteAddr, addr)
            XCTAssertEqual(up.remotePrincipal, server.principal())
            XCTAssertGreaterThan(up.duration ?? 0, 0, "\(up)")
            XCTAssertEqual(up.hs2, true, "the default handshake is hs2")
            let down = try await nextEvent(serverEvents, .sessionEstablished)
            XCTAssertEqual(down.hs2, true)
            XCTAssertEqual(down.connection, conn.id(), "both ends name the session alike")
            XCTAssertEqual(down.direction, .inbound)
            XCTAssertEqual(down.remotePrincipal, client.principal())

            // 1 MiB echoed: the byte counters of the connection and of the peer grow.
            let before = conn.stats()
            let data = pattern(1 << 20)
            let s = try await conn.openStream(label: "echo")
            try await s.writeAndFinish(data)
            let back = try await s.readToEnd(limit: 2 << 20)
            XCTAssertEqual(back, data)
            try await echo.value
            let after = conn.stats()
            XCTAssertGreaterThanOrEqual(after.bytesSent, before.bytesSent + (1 << 20), "\(before) -> \(after)")
            XCTAssertGreaterThanOrEqual(after.bytesReceived, before.bytesReceived + (1 << 20), "\(before) -> \(after)")
            XCTAssertGreaterThan(after.framesSent, 0, "\(after)")
            var opened = try await nextEvent(serverEvents, .streamOpened)
            while opened.label != "echo" { opened = try await nextEvent(serverEvents, .streamOpened) } // skip px-1
            XCTAssertEqual(opened.connection, conn.id())
            XCTAssertEqual(opened.direction, .inbound)
            XCTAssertEqual(opened.label, "echo")
            XCTAssertEqual(after.transport, "tcp")
            XCTAssertEqual(after.remoteAddr, addr)
            XCTAssertNotNil(after.handshake)
            XCTAssertGreaterThanOrEqual(after.age, after.handshake ?? .infinity, "\(after)")
            let peerStats = client.stats()
            XCTAssertEqual(peerStats.sessionsOutbound, 1)
            XCTAssertEqual(peerStats.sessionsOpen, 1)
            XCTAssertGreaterThanOrEqual(peerStats.bytesSent, after.bytesSent, "\(peerStats)")

            conn.shutdown(code: 0, reason: "done")
            let gone = try await nextEvent(clientEvents, .sessionClosed)
            XCTAssertEqual(gone.connection, conn.id())
            XCTAssertEqual(gone.code, 0, "\(gone)")
            XCTAssertGreaterThanOrEqual(gone.bytesSent ?? 0, 1 << 20, "\(gone)")
            let goneThere = try await nextEvent(serverEvents, .sessionClosed)
            XCTAssertEqual(goneThere.connection, conn.id())
            XCTAssertGreaterThanOrEqual(goneThere.bytesReceived ?? 0, 1 << 20, "\(goneThere)")
            XCTAssertEqual(server.stats().sessionsInbound, 1)

            serverEvents.close()
            clientEvents.close()
            await client.shutdown()
            await server.shutdown()
        }
    }

    func testHs2IsOnByDefaultOffSpeaksV1AndADialerFallsBack() async throws {
        try await withTimeout {
            // PROTOCOL.md §5.8: PeerOptions.hs2 reaches the core, ConnectionStats.hs2 says
            // which handshake each side ran.
            let both = try await Peer.create(options: PeerOptions())
            let v1 = try await Peer.create(options: PeerOptions(hs2: false))
            let client = try await Peer.create(options: PeerOptions())
            let v1Client = try await Peer.create(options: PeerOptions(hs2: false))
            let bothAddr = try await both.listen(addr: "127.0.0.1:0")
            let v1Addr = try await v1.listen(addr: "127.0.0.1:0")
            func pair(_ dialer: Peer, _ listener: Peer, _ addr: String) async throws -> [Bool] {
                let conn = try await dialer.dial(target: addr)
                guard let there = await listener.accept() else { throw NSError(domain: "test", code: 2) }
                return [conn.stats().hs2, there.stats().hs2]
            }
            func failed(_ p: Peer) -> UInt64 { p.stats().handshakesFailed.values.reduce(0, +) }

            let first = try await pair(client, both, bothAddr)
            XCTAssertEqual(first, [true, true])
            // A dialer with hs2 = false is answered in v1, and nothing failed.
            let second = try await pair(v1Client, both, bothAddr)
            XCTAssertEqual(second, [false, false])
            XCTAssertEqual(failed(both), 0)
            // A listener with hs2 = false closes on the offer; the dialer comes again with v1
            // at once and dials that locator with v1 from then on: one failed handshake each.
            let fallback = try await pair(client, v1, v1Addr)
            XCTAssertEqual(fallback, [false, false])
            let remembered = try await pair(client, v1, v1Addr)
            XCTAssertEqual(remembered, [false, false])
            XCTAssertEqual([failed(client), failed(v1)], [1, 1])
            // Each peer counts its sessions that ran hs2: only the first pair's.
            XCTAssertEqual([client, v1Client, both, v1].map { $0.stats().sessionsHs2 }, [1, 0, 1, 0])

            for p in [client, v1Client, both, v1] { await p.shutdown() }
        }
    }

    func testClosingTheSubscriptionEndsNext() async throws {
        try await withTimeout {
            let peer = try await Peer.create(options: PeerOptions())
            let events = peer.events()
            let pending = Task { await events.next() }
            try await Task.sleep(nanoseconds: 50_000_000)
            XCTAssertFalse(events.isClosed())
            events.close()
            let ended = await pending.value
            XCTAssertNil(ended)
            XCTAssertTrue(events.isClosed())
            let again = await events.next()
            XCTAssertNil(again)
            events.close() // idempotent

            // As an async sequence: it ends when its subscription is closed...
            let other = peer.events()
            let collected = Task { () -> Int in
                var n = 0
                for await _ in other { n += 1 }
                return n
            }
            try await Task.sleep(nanoseconds: 50_000_000)
            other.close()
            let n = await collected.value
            XCTAssertEqual(n, 0)

            // ...delivers events in order, and cancelling the iterating task closes it.
            let server = try await Peer.create(options: PeerOptions())
            let addr = try await server.listen(addr: "127.0.0.1:0")
            let third = peer.events()
            let firstUp = Task { () -> PeerEvent? in
                for await ev in third where ev.kind == .sessionEstablished { return ev }
                return nil
            }
            let conn = try await peer.dial(target: addr)
            let up = await firstUp.value
            XCTAssertEqual(up?.connection, conn.id())
            let waiting = Task { () -> Int in
                var n = 0
                for await _ in third { n += 1 }
                return n
            }
            try await Task.sleep(nanoseconds: 50_000_000)
            waiting.cancel()
            _ = await waiting.value
            XCTAssertTrue(third.isClosed(), "cancelling the iterating task closed the subscription")

            await peer.shutdown()
            await server.shutdown()
        }
    }

    func testShutdownEndsTheSubscriptionsAfterWhatTheyQueued() async throws {
        try await withTimeout {
            // A pending next() returns nil at shutdown.
            let lonely = try await Peer.create(options: PeerOptions())
            let idle = lonely.events()
            let pending = Task { await idle.next() }
            try await Task.sleep(nanoseconds: 50_000_000)
            await lonely.shutdown()
            let ended = await pending.value
            XCTAssertNil(ended)
            let late = await lonely.events().next()
            XCTAssertNil(late, "a subscription made after shutdown ends")

            // The events queued before the shutdown are still read, then nil.
            let server = try await Peer.create(options: PeerOptions())
            let client = try await Peer.create(options: PeerOptions())
            let addr = try await server.listen(addr: "127.0.0.1:0")
            let events = client.events()
            let conn = try await client.dial(target: addr)
            await client.shutdown()
            let up = try await nextEvent(events, .sessionEstablished)
            XCTAssertEqual(up.connection, conn.id())
            var rest: [PeerEvent] = []
            for await ev in events { rest.append(ev) }
            // Its close, and the streams opened before it (the listener's `px-1` stream).
            XCTAssertTrue(
                rest.allSatisfy { $0.kind == .sessionClosed || $0.kind == .streamOpened }, "\(rest)")
            XCTAssertTrue(rest.contains { $0.kind == .sessionClosed }, "\(rest)")
            await server.shutdown()
        }
    }

    func testRekeyLimitsArePeerOptions() async throws {
        try await withTimeout {
            // Tiny thresholds: keys are replaced every few frames, the bytes still arrive intact.
            let server = try await Peer.create(options: PeerOptions(rekeyAfterBytes: 4096, rekeyAfterFrames: 3))
            let client = try await Peer.create(options: PeerOptions(rekeyAfterFrames: 5, rekeyInterval: 0.05))
            let addr = try await server.listen(addr: "127.0.0.1:0")
            let echo = echoOneStreamEach(server)
            let conn = try await client.dial(target: addr)
            XCTAssertTrue(conn.supports(cap: "rekey"))
            let data = pattern(1 << 20, seed: 29)
            let s = try await conn.openStream(label: "rekey")
            try await s.writeAndFinish(data)
            let back = try await s.readToEnd(limit: 2 << 20)
            XCTAssertEqual(back, data)
            try await echo.value
            await client.shutdown()
            await server.shutdown()
        }
    }
}

/// wss:// through PeerOptions' TLS files. SNAP2P_TLS_DIR holds ca.pem and cert.pem + key.pem
/// (localhost and 127.0.0.1, signed by ca.pem); ci/steps/60-swift.sh makes them with openssl.
final class WssTests: XCTestCase {
    func tlsFile(_ name: String) throws -> String {
        guard let dir = ProcessInfo.processInfo.environment["SNAP2P_TLS_DIR"] else {
            XCTFail("SNAP2P_TLS_DIR must name a directory with ca.pem, cert.pem and key.pem (ci/steps/60-swift.sh)")
            throw TimedOut()
        }
        return dir + "/" + name
    }

    func testWssListenerAndDialerWithACustomRoot() async throws {
        let cert = try tlsFile("cert.pem"), key = try tlsFile("key.pem"), ca = try tlsFile("ca.pem")
        try await withTimeout {
            let server = try await Peer.create(options: PeerOptions(tlsCertFile: cert, tlsKeyFile: key))
            let bound = try await server.listen(addr: "wss://127.0.0.1:0/snap2p")
            let port = bound.split(separator: ":").last.map(String.init) ?? ""
            XCTAssertEqual(server.listenLocators(), ["wss://127.0.0.1:\(port)/snap2p"])
            XCTAssertEqual(server.listenAddrs(), [bound])
            let echo = echoOneStreamEach(server, count: 2)

            // Trusting the test CA, by name and by IP address (both in the certificate).
            let client = try await Peer.create(options: PeerOptions(tlsRootFile: ca))
            for target in ["wss://localhost:\(port)/snap2p", "wss://127.0.0.1:\(port)/snap2p"] {
                let conn = try await client.dial(target: target, expect: server.principal())
                let data = pattern(1 << 20, seed: UInt64(target.count))
                let s = try await conn.openStream(label: "echo")
                try await s.writeAndFinish(data)
                let back = try await s.readToEnd(limit: 2 << 20)
                XCTAssertEqual(back, data, target)
                XCTAssertEqual(conn.stats().transport, "wss")
                conn.shutdown(code: 0, reason: "done")
            }
            try await echo.value

            // Without the test CA (Mozilla's roots only) the TLS handshake fails, with the code.
            let stranger = try await Peer.create(options: PeerOptions())
            let e = await expectError(8, "ERR_HANDSHAKE_FAILED") {
                _ = try await stranger.dial(target: "wss://localhost:\(port)/snap2p")
            }
            if case let .Failure(_, _, reason)? = e {
                XCTAssertTrue(reason.contains("UnknownIssuer"), reason)
            }

            // A certificate without its key, a missing root file, a wss listener without a certificate.
            await expectError(25, "ERR_INVALID_ARGUMENT") { _ = try await Peer.create(options: PeerOptions(tlsCertFile: cert)) }
            await expectError(25, "ERR_INVALID_ARGUMENT") {
                _ = try await Peer.create(options: PeerOptions(tlsRootFile: ca + ".missing"))
            }
            await expectError(25, "ERR_INVALID_ARGUMENT") { _ = try await stranger.listen(addr: "wss://127.0.0.1:0") }

            for p in [client, stranger, server] { await p.shutdown() }
        }
    }
}

/// PeerOptions.externalLocators (issue 27): advertised first, written canonically, checked.
/// (The dial through one, by principal over PX-1, is tested in Rust, Node, Python and Kotlin.)
final class ExternalLocatorsTests: XCTestCase {
    func testExternalLocatorsAreAdvertisedFirstAndChecked() async throws {
        try await withTimeout {
            let peer = try await Peer.create(options: PeerOptions(
                externalLocators: ["wss://Node.Example.org:443/snap2p", "tcp://203.0.113.5:9000"]))
            let bound = try await peer.listen(addr: "127.0.0.1:0")
            // Host lower-cased, the tcp:// form bare (PROTOCOL.md §14), then the listener.
            XCTAssertEqual(peer.reachableLocators(), ["wss://node.example.org:443/snap2p", "203.0.113.5:9000", bound])
            for bad in ["01.2.3.4:9000", "wss://node.example.org", "ws://h:0/p"] {
                await expectError(25, "ERR_INVALID_ARGUMENT") {
                    _ = try await Peer.create(options: PeerOptions(externalLocators: [bad]))
                }
            }
            await peer.shutdown()
        }
    }
}
