import Foundation
import XCTest
@testable import Snap2P

/// An echo node owned by `owner` (EchoServer echoes every permitted stream).
private func permNode(_ owner: Signer) async throws -> (Peer, String, EchoServer, Subscription) {
    let node = try await Peer.create(options: PeerOptions(signer: owner))
    let echo = EchoServer()
    let sub = node.onConnection(handler: echo)
    return (node, try await node.listen(addr: "127.0.0.1:0"), echo, sub)
}

private func permOpens(_ conn: Connection, _ label: String, file: StaticString = #filePath, line: UInt = #line) async throws {
    let data = pattern(4096, seed: UInt64(label.count))
    let s = try await conn.openStream(label: label)
    try await s.writeAndFinish(data)
    let back = try await s.readToEnd(limit: 1 << 20)
    XCTAssertEqual(back, data, label, file: file, line: line)
}

private func permRefused(_ conn: Connection, _ label: String, file: StaticString = #filePath, line: UInt = #line) async {
    await expectError(20, "ERR_STREAM_REFUSED", file: file, line: line) {
        let s = try await conn.openStream(label: label)
        try await s.writeAndFinish(Data("x".utf8))
        _ = try await s.readToEnd(limit: 1024)
    }
}

/// Permissions and PermissionGrants (issue 34, docs/PROTOCOL.md §33) through the uniffi
/// package: rules on a node decide which labels a principal may open; a grant signed by the
/// node's owner admits its holder to exactly its labels. The core decides; these tests check
/// that Swift reaches it and sees its codes.
final class PermissionsTests: XCTestCase {
    func testRulesPermitTheirLabelsRefuseTheRestAndChangeAtRunTime() async throws {
        try await withTimeout {
            let owner = Signer.generate(network: .mainnet), friend = Signer.generate(network: .mainnet)
            let (node, addr, echo, sub) = try await permNode(owner)
            try node.setPermissions(rules: "\(friend.principal()):files*,chat\n*:catalog")
            let fromFriend = try await Peer.create(options: PeerOptions(signer: friend))
            let stranger = try await Peer.create(options: PeerOptions())
            let f = try await fromFriend.dial(target: addr, expect: node.principal())
            let s = try await stranger.dial(target: addr, expect: node.principal())
            try await permOpens(f, "files/a")
            try await permOpens(f, "catalog")
            await permRefused(f, "admin")
            try await permOpens(s, "catalog")
            await permRefused(s, "files/a")
            // Replaced at run time: the same sessions, the next opens.
            try node.setPermissions(rules: "*:admin")
            try await permOpens(s, "admin")
            await permRefused(f, "files/a")
            try node.setPermissions(rules: nil)
            try await permOpens(f, "files/a")
            await expectError(25, "ERR_INVALID_ARGUMENT") { try node.setPermissions(rules: "not a rule") }
            sub.cancel(); echo.stop()
            for p in [fromFriend, stranger, node] { await p.shutdown() }
        }
    }

    func testGrantsInBothFormsAdmitTheirLabelsAndBadOnesAreRefused() async throws {
        try await withTimeout(90) {
            let device = Signer.generate(network: .mainnet)
            let owners = [
                try Signer.fromHost(principal: device.principal(), form: .stacksMessage, host: KeychainSigner(device: device)),
                device,
            ]
            for owner in owners {
                let (node, addr, echo, sub) = try await permNode(owner)
                try node.setPermissions(rules: "*:catalog")
                let holder = Signer.generate(network: .mainnet)
                let peer = try await Peer.create(options: PeerOptions(signer: holder))
                let conn = try await peer.dial(target: addr, expect: node.principal())
                await permRefused(conn, "files/a")
                let good = try await owner.issueGrant(holder: holder.principal(), labels: ["files*"], ttlSecs: 3600)
                try await conn.presentGrant(grant: good)
                try await permOpens(conn, "files/a")
                await permRefused(conn, "admin")

                var tampered = good
                tampered[tampered.count - 1] ^= 1
                await expectError(6, "ERR_AUTH_INVALID") { try await conn.presentGrant(grant: tampered) }
                let other = Signer.generate(network: .mainnet)
                let foreign = try await other.issueGrant(holder: holder.principal(), labels: ["admin"], ttlSecs: 3600)
                await expectError(4, "ERR_NOT_ALLOWED") { try await conn.presentGrant(grant: foreign) }
                let notTheirs = try await owner.issueGrant(holder: other.principal(), labels: ["admin"], ttlSecs: 3600)
                await expectError(4, "ERR_NOT_ALLOWED") { try await conn.presentGrant(grant: notTheirs) }
                try node.revokeGrant(idOrPrincipal: holder.principal())
                await permRefused(conn, "files/a")
                await expectError(4, "ERR_NOT_ALLOWED") { try await conn.presentGrant(grant: good) }
                try await permOpens(conn, "catalog")
                sub.cancel(); echo.stop()
                for p in [peer, node] { await p.shutdown() }
            }
        }
    }
}
