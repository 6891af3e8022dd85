import Foundation
import XCTest
@testable import Snap2P

/// The shared PermissionGrant vectors (core/tests/vectors/grants.json) through decodeGrant,
/// verifyGrant, nodeGrantDecision and Signer.issueGrantWithNonce: the same checks as
/// core/tests/permissions.rs.
final class GrantVectorsTests: XCTestCase {
    private func vectors() throws -> [String: Any] {
        let path = ProcessInfo.processInfo.environment["SNAP2P_GRANT_VECTORS"] ?? "../core/tests/vectors/grants.json"
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

    private func form(_ name: String) -> SignatureForm {
        switch name {
        case "digest": return .digest
        case "stacks_message": return .stacksMessage
        default: XCTFail("form \(name)"); return .digest
        }
    }

    private func int64(_ v: Any?) -> Int64 { Int64((v as! NSNumber).int64Value) }

    /// The error name a call fails with, or nil when it succeeds.
    private func failure(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch let e as Snap2pError {
            guard case let .Failure(_, n, _) = e else { return "?" }
            return n
        } catch {
            return "unexpected \(error)"
        }
    }

    func testFormatVersionAndCounts() throws {
        let v = try vectors()
        XCTAssertEqual(v["format_version"] as? Int, 1)
        XCTAssertEqual((v["grants"] as! [Any]).count, 4)
        XCTAssertGreaterThanOrEqual((v["negative"] as! [Any]).count, 10)
        XCTAssertGreaterThanOrEqual((v["node"] as! [Any]).count, 1)
    }

    func testDecodedFieldsDerivedBytesAndVerification() throws {
        let v = try vectors()
        for g in v["grants"] as! [[String: Any]] {
            let name = g["name"] as! String
            let wire = unhexed(g["wire_hex"] as! String)
            let d = try decodeGrant(wire: wire)
            XCTAssertEqual(d.id, g["id"] as? String, name)
            XCTAssertEqual(d.version, 1, name)
            XCTAssertEqual(d.issuer, g["issuer"] as? String, name)
            XCTAssertEqual(d.holder, g["holder"] as? String, name)
            XCTAssertEqual(d.labels, g["labels"] as? [String], name)
            XCTAssertEqual(d.delegable, g["delegable"] as? Bool, name)
            XCTAssertEqual(d.parent.map(hexOf) ?? "", g["parent_hex"] as? String, name)
            XCTAssertEqual(d.issuedAt, int64(g["issued_at"]), name)
            XCTAssertEqual(d.expiresAt, int64(g["expires_at"]), name)
            XCTAssertEqual(hexOf(d.nonce), g["nonce_hex"] as? String, name)
            XCTAssertEqual(d.form, form(g["form"] as! String), name)
            XCTAssertEqual(d.signature.count, 65, name)
            XCTAssertEqual(hexOf(d.signingBytes), g["signing_bytes_hex"] as? String, name)
            XCTAssertEqual(d.messageText, g["message_text"] as? String, name)
            XCTAssertEqual(hexOf(d.signedDigest), g["signed_digest_hex"] as? String, name)
            XCTAssertEqual(hexOf(d.wire), g["wire_hex"] as? String, name)

            let parent = try verifyGrant(wire: wire, now: int64(g["verify_now"]))
            let parentHex = g["parent_hex"] as! String
            if parentHex.isEmpty {
                XCTAssertNil(parent, name)
            } else {
                XCTAssertEqual(parent, try decodeGrant(wire: unhexed(parentHex)).id, name)
            }
            let late = int64(g["expires_at"]) + 100_000
            XCTAssertEqual(failure { _ = try verifyGrant(wire: wire, now: late) }, "ERR_AUTH_EXPIRED", name)
        }
    }

    func testNegativeWireFormsFailWithTheirCode() throws {
        let v = try vectors()
        for n in v["negative"] as! [[String: Any]] {
            let wire = unhexed(n["wire_hex"] as! String)
            let now = int64(n["now"])
            XCTAssertEqual(failure { _ = try verifyGrant(wire: wire, now: now) }, n["error"] as? String, n["name"] as? String ?? "")
        }
        XCTAssertEqual(failure { _ = try decodeGrant(wire: Data([0xa0])) }, "ERR_AUTH_INVALID")
    }

    func testNodeDecisions() throws {
        let v = try vectors()
        let grants = v["grants"] as! [[String: Any]]
        for n in v["node"] as! [[String: Any]] {
            let name = n["name"] as! String
            let g = grants.first { ($0["name"] as! String) == (n["grant"] as! String) }!
            let expected = n["error"] as? String // NSNull → nil
            var ids: [String] = []
            let got = failure {
                ids = try nodeGrantDecision(
                    wire: unhexed(g["wire_hex"] as! String),
                    owners: n["owners"] as! [String],
                    revoked: n["revoked"] as! [String],
                    presenter: n["presenter"] as! String,
                    now: int64(n["now"]))
            }
            XCTAssertEqual(got, expected, name)
            if expected == nil { XCTAssertEqual(ids.last, g["id"] as? String, name) }
        }
    }

    func testReissuedByteForByte() async throws {
        let v = try vectors()
        for g in v["grants"] as! [[String: Any]] {
            let name = g["name"] as! String
            let w = try Signer.fromMnemonicWithForm(
                mnemonic: v["mnemonic"] as! String,
                accountIndex: UInt32(g["issuer_account"] as! Int),
                network: .mainnet,
                form: form(g["form"] as! String))
            XCTAssertEqual(w.principal(), g["issuer"] as? String, name)
            let parentHex = g["parent_hex"] as! String
            let issuedAt = int64(g["issued_at"])
            let wire = try await w.issueGrantWithNonce(
                holder: g["holder"] as! String,
                labels: g["labels"] as! [String],
                issuedAt: issuedAt,
                ttlSecs: int64(g["expires_at"]) - issuedAt,
                nonce: unhexed(g["nonce_hex"] as! String),
                delegable: g["delegable"] as! Bool,
                parent: parentHex.isEmpty ? nil : unhexed(parentHex))
            XCTAssertEqual(hexOf(wire), g["wire_hex"] as? String, name)
        }
    }
}
