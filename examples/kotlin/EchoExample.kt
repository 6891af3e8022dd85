// snap2p from Kotlin: an echo server and a client in one process.
// Compiled with the Kotlin test sources by ci/steps/50-kotlin.sh (kotlin/pom.xml adds this
// directory); run it with `mvn -q -f kotlin/pom.xml test-compile exec:java` or from an IDE.
package io.snap2p.examples

import io.snap2p.Peer
import io.snap2p.PeerOptions
import io.snap2p.Snap2pException
import io.snap2p.incomingConnections
import io.snap2p.incomingStreams
import io.snap2p.writeAndFinish
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking

fun main() = runBlocking {
    val server = Peer.create(PeerOptions(alias = "echo", displayName = "Echo server"))
    val addr = server.listen("127.0.0.1:0")
    println("server ${server.principal()} on $addr")
    val serving = launch {
        server.incomingConnections().collect { conn ->
            launch {
                conn.incomingStreams().collect { s -> launch { s.writeAndFinish(s.readToEnd(1_048_576u)) } }
            }
        }
    }

    val client = Peer.create(PeerOptions())
    try {
        client.dial(addr, expect = server.principal()).use { conn ->
            println("connected to ${conn.remotePrincipal()} (${conn.remoteAlias()?.displayName})")
            conn.openStream("echo").use { s ->
                s.writeAndFinish("hello snap2p".toByteArray())
                println("echoed: ${String(s.readToEnd(1024u))}")
            }
        }
    } catch (e: Snap2pException.Failure) {
        println("failed: ${e.name} (${e.code}): ${e.reason}")
    }
    serving.cancelAndJoin()
    client.shutdown(); server.shutdown()
    client.close(); server.close()
}
