import Foundation
import XCTest
@testable import Snap2P

/// The shared endpoint-advert vectors (core/tests/vectors/adverts.json, docs/PROTOCOL.md
/// §34) through issueAdvert, decodeAdvert and verifyAdvert (the checks of
/// core/tests/discovery_adverts.rs), and the resolver chain on a Peer (§35.5): a real
/// resolve through the px-1 step over loopback, and its error paths with the core's codes.
final class ResolveTests: XCTestCase {
    private func vectors() throws -> [String: Any] {
        let path = "../core/tests/vectors/adverts.json"
        return try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
    }

    private func hexOf(_ d: Data) -> String { d.map { String(format: "%02x", $0) }.joined() }

    private func unhexed(_ s: String) -> Data {
        var out = Data()
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            out.append(UInt8(s[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    private func int64(_ v: Any?) -> Int64 { Int64((v as! NSNumber).int64Value) }

    /// The (name, reason) a call fails with, or nil when it succeeds.
    private func failure(_ body: () throws -> Void) -> (String, String)? {
        do {
            try body()
            return nil
        } catch let e as Snap2pError {
            guard case let .Failure(_, n, r) = e else { return ("?", "") }
            return (n, r)
        } catch {
            return ("unexpected \(error)", "")
        }
    }

    func testAdvertVectorsReissuedDecodedVerified() throws {
        let v = try vectors()
        XCTAssertEqual(v["format_version"] as? Int, 1)
        XCTAssertEqual(v["domain"] as? String, "snap2p-endpoint-advert-v1")
        let valid = v["valid"] as! [[String: Any]]
        XCTAssertGreaterThanOrEqual(valid.count, 3)
        for a in valid {
            let name = a["name"] as! String
            let locators = a["locators"] as! [String]
            let wire = try issueAdvert(
                nodeSeed: unhexed(a["node_seed"] as! String),
                attestation: unhexed(a["attestation"] as! String),
                locators: locators,
                seq: UInt64(int64(a["seq"])),
                issuedAt: int64(a["issued_at"]),
                ttlSecs: int64(a["ttl_secs"])
            )
            XCTAssertEqual(hexOf(wire), a["advert"] as? String, name)
            XCTAssertEqual(wire.count, a["encoded_len"] as? Int, name)
            let checked = try verifyAdvert(
                wire: wire, now: int64(a["verify_at"]),
                expectedNodeKey: unhexed(a["node_key"] as! String),
                expectedPrincipal: a["principal"] as? String
            )
            for d in [try decodeAdvert(wire: wire), checked] {
                XCTAssertEqual(d.principal, a["principal"] as? String, name)
                XCTAssertEqual(hexOf(d.nodeKey), a["node_key"] as? String, name)
                XCTAssertEqual(d.seq, UInt64(int64(a["seq"])), name)
                XCTAssertEqual(d.issuedAt, int64(a["issued_at"]), name)
                XCTAssertEqual(d.expiresAt, int64(a["expires_at"]), name)
                XCTAssertEqual(d.locators, locators, name)
                XCTAssertEqual(hexOf(d.attestation), a["attestation"] as? String, name)
                XCTAssertEqual(hexOf(d.signature), a["signature"] as? String, name)
                XCTAssertEqual(hexOf(d.signingInput), a["signing_input"] as? String, name)
                XCTAssertEqual(hexOf(d.encoded), a["advert"] as? String, name)
            }
            let late = failure { _ = try verifyAdvert(wire: wire, now: int64(a["expires_at"]) + 100_000) }
            XCTAssertEqual(late?.0, "ERR_AUTH_EXPIRED", name)
        }
    }

    func testAdvertVectorsInvalidRefusedWithCodeAndReason() throws {
        let v = try vectors()
        let invalid = v["invalid"] as! [[String: Any]]
        XCTAssertGreaterThanOrEqual(invalid.count, 10)
        for n in invalid {
            let name = n["name"] as! String
            let key = (n["expected_node_key"] as? String).map(unhexed)
            let got = failure {
                _ = try verifyAdvert(
                    wire: unhexed(n["advert"] as! String), now: int64(n["verify_at"]),
                    expectedNodeKey: key, expectedPrincipal: n["expected_principal"] as? String
                )
            }
            XCTAssertEqual(got?.0, n["error"] as? String, name)
            XCTAssertTrue(got?.1.hasPrefix((n["reason"] as! String) + ":") ?? false, "\(name): \(String(describing: got))")
        }
    }

    func testPx1AnswersOverLoopback() async throws {
        try await withTimeout {
            let hub = try await Peer.create(options: PeerOptions())
            let hubAddr = try await hub.listen(addr: "127.0.0.1:0")
            let target = try await Peer.create(options: PeerOptions())
            let bound = try await target.listen(addr: "127.0.0.1:0")
            _ = try await target.dial(target: hubAddr, expect: hub.principal())
            let stranger = try await Peer.create(options: PeerOptions(
                resolver: ResolverOptions(steps: ["cache", "px-1"], timeouts: ["px-1": 3.0])
            ))
            _ = try await stranger.dial(target: hubAddr, expect: hub.principal())
            // The hub learns the target's locators just after the target's AUTH_OK.
            var report: ResolveReport?
            for i in 0..<100 {
                do {
                    report = try await stranger.resolve(target: target.principal())
                    break
                } catch let Snap2pError.Failure(_, name, _) where name == "ERR_NOT_FOUND" && i < 99 {
                    try await Task.sleep(nanoseconds: 20_000_000)
                }
            }
            let r = try XCTUnwrap(report)
            XCTAssertEqual(r.principal, target.principal())
            XCTAssertNil(r.name)
            XCTAssertEqual(r.answeredBy, "px-1")
            XCTAssertEqual(r.locators, [ResolvedLocator(locator: bound, verified: false)])
            XCTAssertEqual(r.steps.map { $0.name }, ["cache", "px-1"])
            XCTAssertEqual(r.steps.map { $0.outcome }, ["not_found", "found"])
            XCTAssertEqual(r.steps.map { $0.count }, [0, 1])
            XCTAssertTrue(r.steps.allSatisfy { $0.error == nil && $0.duration <= r.duration })
            // The hint is dialed with the principal expected: AUTH proves who is there.
            let conn = try await stranger.dial(target: r.locators[0].locator, expect: target.principal())
            XCTAssertEqual(conn.remotePrincipal(), target.principal())
            for p in [stranger, target, hub] { await p.shutdown() }
        }
    }

    func testNothingFoundAndBadOptions() async throws {
        try await withTimeout {
            let lonely = try await Peer.create(options: PeerOptions(
                resolver: ResolverOptions(steps: ["cache", "px-1", "mdns", "bns"])
            ))
            let nobody = try await Peer.create(options: PeerOptions())
            await expectError(21, "ERR_NOT_FOUND") { _ = try await lonely.resolve(target: nobody.principal()) }
            await expectError(25, "ERR_INVALID_ARGUMENT") { _ = try await lonely.resolve(target: "alice.btc") }
            for bad in [
                ResolverOptions(steps: ["cache", "nope"]),
                ResolverOptions(steps: ["cache", "cache"]),
                ResolverOptions(steps: ["cache"], timeouts: ["dht": 1.0]),
                ResolverOptions(timeouts: ["px-1": 0]),
                ResolverOptions(bnsProviders: ["not a url"]),
            ] {
                await expectError(25, "ERR_INVALID_ARGUMENT") { _ = try await Peer.create(options: PeerOptions(resolver: bad)) }
            }
            for p in [lonely, nobody] { await p.shutdown() }
        }
    }
}
