import Foundation
import XCTest
@testable import Snap2P

private func address(_ principal: String) -> String {
    principal.hasPrefix("stacks:") ? String(principal.dropFirst("stacks:".count)) : principal
}

/// Sends `data` on a new stream of `conn` and checks the echo byte for byte.
private func relayEchoes(_ conn: Connection, _ data: Data, file: StaticString = #filePath, line: UInt = #line) async throws {
    let s = try await conn.openStream(label: "data")
    try await s.writeAndFinish(data)
    let back = try await s.readToEnd(limit: 4 << 20)
    XCTAssertEqual(back.count, data.count, file: file, line: line)
    XCTAssertTrue(back == data, "the echo differs", file: file, line: line)
}

/// RELAY-1 (issue 28, docs/PROTOCOL.md §32) through the uniffi package, over loopback: a
/// serving relay peer (PeerOptions.relay), a peer holding a reservation on it
/// (listen("relay://…")), a dialer reaching it through the relay, and the hole punch that
/// replaces the relayed session by a direct one. The core relays and punches; these tests
/// check that Swift reaches it and sees its values and codes.
final class RelayTests: XCTestCase {
    func testAPeerIsReachedThroughItsRelayAndThenPunchedDirect() async throws {
        try await withTimeout(120) {
            let relay = try await Peer.create(options: PeerOptions(relay: RelayOptions()))
            // What the three peers saw, for the failure messages.
            let log = EventLog()
            log.watch("relay", relay)
            let relayAddr = try await relay.listen(addr: "127.0.0.1:0")
            let b = try await Peer.create(options: PeerOptions())
            log.watch("B", b)
            _ = try await b.listen(addr: "relay://\(relayAddr)")
            let reservations = b.relayReservations()
            XCTAssertEqual(reservations.count, 1, "\(reservations)")
            XCTAssertEqual(reservations.first?.relay, "relay://\(relayAddr)")
            XCTAssertEqual(reservations.first?.active, true)
            let observed = try XCTUnwrap(reservations.first?.observed, "the relay tells B its address")
            XCTAssertTrue(observed.hasPrefix("127.0.0.1:"), observed)
            let bLocator = "relay://\(relayAddr)/\(address(b.principal()))"
            XCTAssertTrue(b.listenLocators().contains(bLocator), "\(b.listenLocators())")
            XCTAssertEqual(relay.relayStats().reservations, 1)
            // B does not serve: its own relay counters stay at zero.
            XCTAssertEqual(b.relayStats(), RelayStats(reservations: 0, circuits: 0, circuitsTotal: 0, splicedTotal: 0, bytesForwarded: 0, refused: 0))

            // B: the relayed session first, then the direct one; one echoed stream on each.
            let bSide = Task { () throws -> [String] in
                var seen: [String] = []
                for _ in 0..<2 {
                    guard let c = await b.accept() else { break }
                    seen.append("\(c.stats().transport) \(c.remotePrincipal())")
                    let s = try await c.acceptStream()
                    try await s.writeAndFinish(try await s.readToEnd(limit: 4 << 20))
                }
                return seen
            }
            let a = try await Peer.create(options: PeerOptions())
            log.watch("A", a)
            let relayed = try await a.dial(target: bLocator)
            XCTAssertEqual(relayed.remotePrincipal(), b.principal())
            XCTAssertEqual(relayed.stats().transport, "relay")
            try await relayEchoes(relayed, pattern(1 << 20, seed: 28))
            var stats = relay.relayStats()
            for _ in 0..<100 where stats.bytesForwarded < 2 << 20 {
                try await Task.sleep(nanoseconds: 20_000_000)
                stats = relay.relayStats()
            }
            XCTAssertEqual(stats.circuits, 1, "\(stats)")
            XCTAssertEqual(stats.circuitsTotal, 1, "\(stats); events:\n\(log.text)")
            XCTAssertEqual(stats.splicedTotal, 1, "spliced by default (PROTOCOL.md §32.3): \(stats)")
            XCTAssertGreaterThanOrEqual(stats.bytesForwarded, 2 << 20, "\(stats)")
            XCTAssertLessThan(stats.bytesForwarded, 3 << 20, "\(stats)")

            let direct = try await a.holePunch(connection: relayed)
            XCTAssertEqual(direct.stats().transport, "punch")
            XCTAssertEqual(direct.remotePrincipal(), b.principal())
            XCTAssertFalse(relayed.isClosed(), "the relayed session stays open")
            try await relayEchoes(direct, pattern(1 << 20, seed: 29))
            let seen = try await bSide.value
            XCTAssertEqual(seen, ["relay \(a.principal())", "punch \(a.principal())"])
            // The punched session does not go through the relay.
            XCTAssertEqual(relay.relayStats().circuitsTotal, 1)
            for p in [a, b, relay] { await p.shutdown() }
        }
    }

    func testRefusalsCarryTheirCodes() async throws {
        try await withTimeout {
            let allowed = Signer.generate(network: .mainnet)
            let relay = try await Peer.create(options: PeerOptions(
                relay: RelayOptions(allowlist: [address(allowed.principal())], maxCircuits: 8)))
            let relayAddr = try await relay.listen(addr: "127.0.0.1:0")
            // Not on the relay's allowlist: the reservation (the listen call) is refused with 4.
            let b = try await Peer.create(options: PeerOptions())
            await expectError(4, "ERR_NOT_ALLOWED") { _ = try await b.listen(addr: "relay://\(relayAddr)") }
            XCTAssertFalse(b.relayReservations().contains { $0.active }, "\(b.relayReservations())")
            XCTAssertEqual(relay.relayStats().refused, 1)
            XCTAssertEqual(relay.relayStats().reservations, 0)
            // On it: reserved.
            let ok = try await Peer.create(options: PeerOptions(signer: allowed))
            _ = try await ok.listen(addr: "relay://\(relayAddr)")
            XCTAssertEqual(relay.relayStats().reservations, 1)
            let a = try await Peer.create(options: PeerOptions())
            // B holds no reservation there: the circuit is refused with 20.
            await expectError(20, "ERR_STREAM_REFUSED") {
                _ = try await a.dial(target: "relay://\(relayAddr)/\(address(b.principal()))")
            }
            // A relay locator without a principal is not dialable.
            await expectError(25, "ERR_INVALID_ARGUMENT") { _ = try await a.dial(target: "relay://\(relayAddr)") }
            // A peer that does not serve refuses reservations with 20.
            let plainAddr = try await a.listen(addr: "127.0.0.1:0")
            await expectError(20, "ERR_STREAM_REFUSED") { _ = try await b.listen(addr: "relay://\(plainAddr)") }
            for p in [a, b, ok, relay] { await p.shutdown() }
        }
    }

    func testBadRelayOptionsAreInvalidArguments() async throws {
        try await withTimeout {
            let bad = [
                RelayOptions(allowlist: ["SPnotaprincipal"]),
                RelayOptions(maxReservations: 0),
                RelayOptions(maxCircuits: 0),
                RelayOptions(maxCircuitsPerPeer: 0),
                RelayOptions(circuitMaxDuration: 0),
            ]
            for options in bad {
                await expectError(25, "ERR_INVALID_ARGUMENT") { _ = try await Peer.create(options: PeerOptions(relay: options)) }
            }
            // The limits that take 0 as "no limit" accept it.
            let p = try await Peer.create(options: PeerOptions(relay: RelayOptions(circuitMaxBytes: 0, requestsPerMin: 0)))
            await p.shutdown()
        }
    }
}
