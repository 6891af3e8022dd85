package io.snap2p

import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test
import java.net.InetAddress
import java.net.InetSocketAddress
import java.net.ServerSocket
import java.net.Socket
import java.util.concurrent.atomic.AtomicInteger
import kotlin.concurrent.thread

/**
 * A TCP port forwarder on loopback (a router's forwarded port, a proxy) to [target], known
 * after it starts; counts the connections it forwards.
 */
class Forwarder(private val target: () -> Int) : AutoCloseable {
    private val server = ServerSocket(0, 16, InetAddress.getLoopbackAddress())
    private val sockets = java.util.concurrent.ConcurrentLinkedQueue<Socket>()
    val connections = AtomicInteger()
    val port: Int get() = server.localPort

    init {
        thread(isDaemon = true, name = "forwarder") {
            while (!server.isClosed) {
                val inbound = runCatching { server.accept() }.getOrNull() ?: break
                connections.incrementAndGet()
                val outbound = Socket().apply { connect(InetSocketAddress("127.0.0.1", target())) }
                sockets += inbound
                sockets += outbound
                pump(inbound, outbound)
                pump(outbound, inbound)
            }
        }
    }

    private fun pump(from: Socket, to: Socket) = thread(isDaemon = true, name = "forwarder-pump") {
        runCatching { from.getInputStream().copyTo(to.getOutputStream()) }
        runCatching { to.shutdownOutput() }
    }

    override fun close() {
        server.close()
        sockets.forEach { runCatching { it.close() } }
    }
}

/** PeerOptions.externalLocators (issue 27): advertised first by PX-1, and dialed. */
class ExternalLocatorsTest {
    @Test
    fun aStrangerDialsByPrincipalThroughTheExternalLocator() = runTest {
        var targetPort = 0
        Forwarder { targetPort }.use { fwd ->
            val external = "127.0.0.1:${fwd.port}"
            val hub = Peer.create(PeerOptions())
            val hubAddr = hub.listen("127.0.0.1:0")
            val target = Peer.create(PeerOptions(externalLocators = listOf(external)))
            val bound = target.listen("127.0.0.1:0")
            targetPort = bound.substringAfterLast(':').toInt()
            assertEquals(listOf(external, bound), target.reachableLocators())
            val echo = launch {
                val c = target.accept() ?: return@launch
                val s = c.acceptStream()
                s.writeAndFinish(s.readToEnd(2uL shl 20))
            }
            target.dial(hubAddr, expect = hub.principal())
            val stranger = Peer.create(PeerOptions())
            stranger.dial(hubAddr, expect = hub.principal())
            // The hub learns the target's locators just after the target's AUTH_OK.
            var conn: Connection? = null
            for (i in 0 until 100) {
                conn = runCatching { stranger.dial(target.principal()) }.getOrNull()
                if (conn != null) break
                delay(20)
            }
            checkNotNull(conn) { "could not dial ${target.principal()} by principal" }
            assertEquals(target.principal(), conn.remotePrincipal())
            assertEquals(1, fwd.connections.get(), "the dial did not go through the external locator")
            val data = pattern(1 shl 20, seed = 27)
            val s = conn.openStream("echo")
            s.writeAndFinish(data)
            assertArrayEquals(data, s.readToEnd(2uL shl 20))
            echo.join()
            listOf(stranger, target, hub).forEach { it.shutdown(); it.close() }
        }
    }

    @Test
    fun malformedExternalLocatorsAreRefusedAndGoodOnesWrittenCanonically() = runTest {
        for (bad in listOf("01.2.3.4:9000", "wss://node.example.org", "ws://h:0/p")) {
            expectError(25u, "ERR_INVALID_ARGUMENT") { Peer.create(PeerOptions(externalLocators = listOf(bad))) }
        }
        val peer = Peer.create(
            PeerOptions(externalLocators = listOf("wss://Node.Example.org:443/snap2p", "tcp://203.0.113.5:9000"))
        )
        // Host lower-cased, the tcp:// form bare (PROTOCOL.md §14).
        assertEquals(listOf("wss://node.example.org:443/snap2p", "203.0.113.5:9000"), peer.reachableLocators())
        peer.shutdown()
        peer.close()
    }
}
