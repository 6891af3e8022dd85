package io.snap2p

import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.async
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.yield
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.security.MessageDigest
import java.util.Collections
import java.util.concurrent.atomic.AtomicInteger

/** Two Kotlin peers in one process, over real loopback sockets. */
class PeerTest {
    @Test
    fun dialOpenStreamEchoThroughCallbacks() = runTest {
        val server = Peer.create(PeerOptions(alias = "echo-server", displayName = "Echo"))
        val client = Peer.create(PeerOptions())
        val addr = server.listen("127.0.0.1:0")
        val callbackThreads = Collections.synchronizedSet(mutableSetOf<String>())
        val subscriptions = Collections.synchronizedList(mutableListOf<Subscription>())
        val accepted = CompletableDeferred<String>()

        // Echo server: connection callback -> stream callback -> data callback.
        val sub = server.onConnection(object : ConnectionHandler {
            override suspend fun onConnection(connection: Connection) {
                callbackThreads += Thread.currentThread().name
                accepted.complete(connection.remotePrincipal())
                subscriptions += connection.onStream(object : StreamHandler {
                    override suspend fun onStream(stream: Stream) {
                        subscriptions += stream.onData(object : DataHandler {
                            override suspend fun onData(data: ByteArray) = stream.write(data)
                            override suspend fun onEnd(error: ErrorInfo?) {
                                assertNull(error)
                                stream.finish()
                            }
                        })
                    }
                })
            }
        })

        val conn = client.dial(addr, expect = server.principal())
        assertEquals(server.principal(), conn.remotePrincipal())
        assertEquals(client.principal(), accepted.await())
        assertEquals("echo-server", conn.remoteAlias()?.alias)
        assertEquals("Echo", conn.remoteAlias()?.displayName)
        assertEquals(32, conn.sessionId().size)

        val stream = conn.openStream("echo")
        stream.writeAndFinish("hello snap2p".toByteArray())
        assertEquals("hello snap2p", String(stream.readToEnd(1024u)))
        assertTrue(callbackThreads.isNotEmpty())

        // Dial by principal reuses the live session (PX-1 lookup of a known peer).
        val again = client.dial(server.principal())
        assertArrayEquals(conn.sessionId(), again.sessionId())

        sub.cancel()
        assertFalse(sub.isActive())
        subscriptions.forEach { it.cancel(); it.close() }
        client.shutdown()
        server.shutdown()
        assertTrue(server.isShutDown())
        assertNull(server.accept())
        listOf(stream, conn, again, sub, client, server).forEach { it.close() }
    }

    @Test
    fun cancelledSubscriptionStopsDelivery() = runTest {
        val server = Peer.create(PeerOptions())
        val client = Peer.create(PeerOptions())
        val addr = server.listen("127.0.0.1:0")
        val delivered = AtomicInteger()
        val first = Channel<Connection>(1)
        val sub = server.onConnection(object : ConnectionHandler {
            override suspend fun onConnection(connection: Connection) {
                delivered.incrementAndGet()
                first.send(connection)
            }
        })
        step("first dial") { client.dial(addr) }.use { }
        step("first connection reaches the handler") { first.receive() }.close()
        sub.cancel()
        sub.close()
        // After cancel the next connection is queued for accept(), not the handler.
        val second = step("second dial") { client.dial(addr) }
        val viaAccept = step({ "second connection reaches accept() (handler calls: ${delivered.get()}, server connections: ${server.connections().size})" }) { server.accept() }
        assertNotNull(viaAccept)
        assertEquals(client.principal(), viaAccept!!.remotePrincipal())
        delay(200)
        assertEquals(1, delivered.get())
        // The Flow adapter: collecting subscribes, cancelling unsubscribes. runBlocking is
        // one thread: the undispatched collector suspends once its producer is queued, and
        // yield() lets that producer run (and subscribe) before the next dial. No sleeps.
        val flowed = async(start = CoroutineStart.UNDISPATCHED) { server.incomingConnections().first() }
        yield()
        val third = step("third dial") { client.dial(addr) }
        assertEquals(client.principal(), step("third connection reaches the Flow") { flowed.await() }.remotePrincipal())
        listOf(second, viaAccept, third).forEach { it.close() }
        client.shutdown(); server.shutdown()
        client.close(); server.close()
    }

    @Test
    fun transfer64MiBWithSha256AtBothEnds() = runTest(seconds = 180) {
        val size = 64 * 1024 * 1024
        val server = Peer.create(PeerOptions())
        val client = Peer.create(PeerOptions())
        val addr = server.listen("127.0.0.1:0")
        val serverDigest = CompletableDeferred<ByteArray>()
        val subs = Collections.synchronizedList(mutableListOf<Subscription>())
        subs += server.onConnection(object : ConnectionHandler {
            override suspend fun onConnection(connection: Connection) {
                subs += connection.onStream(object : StreamHandler {
                    override suspend fun onStream(stream: Stream) {
                        val md = MessageDigest.getInstance("SHA-256")
                        subs += stream.onData(object : DataHandler {
                            override suspend fun onData(data: ByteArray) {
                                md.update(data)
                                stream.write(data)
                            }
                            override suspend fun onEnd(error: ErrorInfo?) {
                                stream.finish()
                                if (error == null) serverDigest.complete(md.digest())
                                else serverDigest.completeExceptionally(IllegalStateException(error.toString()))
                            }
                        })
                    }
                })
            }
        })
        val conn = client.dial(addr)
        val stream = conn.openStream("bulk")
        val data = pattern(size)
        val expected = sha256(data)
        val reader = async {
            val md = MessageDigest.getInstance("SHA-256")
            var total = 0L
            stream.chunks(1_048_576u).collect { md.update(it); total += it.size }
            total to md.digest()
        }
        var off = 0
        while (off < size) {
            val n = minOf(1 shl 20, size - off)
            stream.writeAll(data.copyOfRange(off, off + n))
            off += n
        }
        stream.finish()
        val (total, echoed) = reader.await()
        assertEquals(size.toLong(), total)
        assertArrayEquals(expected, serverDigest.await(), "server-side SHA-256")
        assertArrayEquals(expected, echoed, "client-side SHA-256 of the echo")
        subs.forEach { it.cancel(); it.close() }
        client.shutdown(); server.shutdown()
        listOf(stream, conn, client, server).forEach { it.close() }
    }

    @Test
    fun policyErrorsCarryProtocolCodes() = runTest {
        val client = Peer.create(PeerOptions())
        // Private peer, client not on the allowlist: ERR_NOT_ALLOWED (4).
        val priv = Peer.create(PeerOptions(visibility = Visibility.PRIVATE))
        val privAddr = priv.listen("127.0.0.1:0")
        expectError(4u, "ERR_NOT_ALLOWED") { client.dial(privAddr) }
        priv.allow(client.principal())
        client.dial(privAddr).use { assertEquals(priv.principal(), it.remotePrincipal()) }

        // Stealth peer: needs an invite token.
        val stealth = Peer.create(PeerOptions(visibility = Visibility.STEALTH, allowlist = listOf(client.principal())))
        val stealthAddr = stealth.listen("127.0.0.1:0")
        val invite = stealth.createInvite(ttlSecs = 600, oneTime = false)
        assertEquals(64, invite.token.length)
        assertTrue(stealth.listInvites().any { it.id == invite.id })
        client.dial(stealthAddr, invite = invite.token).use { assertEquals(stealth.principal(), it.remotePrincipal()) }
        val wrongInvite = "00".repeat(32)
        val e = expectAnyError { client.dial(stealthAddr, invite = wrongInvite) }
        assertTrue(e.code != 0uL)
        assertTrue(stealth.revokeInvite(invite.id))

        // Bad input: typed errors, no crash.
        expectError(25u, "ERR_INVALID_ARGUMENT") { client.dial(privAddr, invite = "not hex") }
        expectError(25u, "ERR_INVALID_ARGUMENT") { client.dial("stacks:SP000000000000000000002Q6VF79") }
        expectError(25u, "ERR_INVALID_ARGUMENT") { client.listen("300.1.2.3:99999") }
        expectError(21u, "ERR_NOT_FOUND") { client.dial(Signer.generate(Network.MAINNET).principal()) }
        // Expecting another principal: ERR_PRINCIPAL_MISMATCH (23).
        expectError(23u, "ERR_PRINCIPAL_MISMATCH") {
            priv.allow(client.principal())
            client.dial(privAddr, expect = stealth.principal())
        }
        // Nothing listening: a typed connection error.
        val closedPort = Peer.create(PeerOptions()).let { p ->
            val a = p.listen("127.0.0.1:0"); p.shutdown(); p.close(); a
        }
        expectError(12u, "ERR_CONNECTION_CLOSED") { client.dial(closedPort) }
        assertEquals("ERR_NOT_ALLOWED", errorCodeName(4u))

        listOf(client, priv, stealth).forEach { it.shutdown() }
        expectError(12u, "ERR_CONNECTION_CLOSED") { client.dial(privAddr) }
        listOf(client, priv, stealth).forEach { it.close() }
    }

    private suspend fun expectAnyError(block: suspend () -> Unit): Snap2pException.Failure {
        try {
            block()
        } catch (e: Snap2pException.Failure) {
            return e
        }
        throw AssertionError("expected a Snap2pException")
    }
}
