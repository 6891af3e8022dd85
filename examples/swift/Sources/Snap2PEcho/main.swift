import Foundation
import Snap2P

let server = try await Peer.create(options: PeerOptions(alias: "echo", displayName: "Echo server"))
let addr = try await server.listen(addr: "127.0.0.1:0")
print("server \(server.principal()) on \(addr)")
let serving = Task {
    for await conn in server.incomingConnections() {
        Task {
            for await stream in conn.incomingStreams() {
                Task { try await stream.writeAndFinish(try await stream.readToEnd(limit: 1 << 20)) }
            }
        }
    }
}

let client = try await Peer.create(options: PeerOptions())
do {
    let conn = try await client.dial(target: addr, expect: server.principal())
    print("connected to \(conn.remotePrincipal()) (\(conn.remoteAlias()?.displayName ?? "-"))")
    let s = try await conn.openStream(label: "echo")
    try await s.writeAndFinish(Data("hello snap2p".utf8))
    print("echoed: \(String(decoding: try await s.readToEnd(limit: 1024), as: UTF8.self))")
} catch let Snap2pError.Failure(code, name, reason) {
    print("failed: \(name) (\(code)): \(reason)")
}
serving.cancel()
await client.shutdown()
await server.shutdown()
