import Foundation
import Snap2P

let server = try await Peer.create(options: PeerOptions(alias: "echo", displayName: "Echo server"))
let addr = try await server.listen(addr: "127.0.0.1:0")
print("server \(server.principal()) on \(addr)")
// What the server sees (docs/EVENTS.md): the loop ends at server.shutdown().
let events = server.events()
let watching = Task {
    for await ev in events {
        print("server event: \(ev.kind) \(ev.connection ?? "-") code \(ev.code.map(String.init) ?? "-")")
    }
}
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
    let st = conn.stats()
    print("connection \(conn.id()): \(st.bytesSent) bytes sent, \(st.bytesReceived) received over \(st.transport)")
} catch let Snap2pError.Failure(code, name, reason) {
    print("failed: \(name) (\(code)): \(reason)")
}
serving.cancel()
await client.shutdown()
await server.shutdown()
await watching.value
