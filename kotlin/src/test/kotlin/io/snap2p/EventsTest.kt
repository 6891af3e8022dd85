package io.snap2p

import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.async
import kotlinx.coroutines.flow.filter
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

/** The next event of [kind], skipping others (docs/EVENTS.md). */
suspend fun EventSubscription.nextOf(kind: EventKind): PeerEvent = step("a $kind event") {
    while (true) {
        val ev = next() ?: throw AssertionError("the subscription ended before a $kind event")
        if (ev.kind == kind) return@step ev
    }
    @Suppress("UNREACHABLE_CODE")
    throw IllegalStateException()
}

/** Peer events and counters (Peer.events(), Peer.stats(), Connection.stats(), Connection.id()). */
class EventsTest {
    @Test
    fun aWrongInviteOnAStealthListenerIsReportedWithItsCode() = runTest {
        // Invite-only stealth listener: it answers nothing to a dialer without a valid invite.
        val server = Peer.create(PeerOptions(visibility = Visibility.STEALTH, allowlistGate = false))
        val events = server.events()
        val addr = server.listen("127.0.0.1:0")
        server.createInvite(null, false)
        val client = Peer.create(PeerOptions())
        expectError(5u, "ERR_INVITE_INVALID") { client.dial(addr, invite = "ab".repeat(32)) }

        val failed = events.nextOf(EventKind.HANDSHAKE_FAILED)
        assertEquals(5uL, failed.code, "$failed")
        assertEquals("ERR_INVITE_INVALID", errorCodeName(failed.code!!))
        assertEquals(Direction.INBOUND, failed.direction)
        assertEquals("tcp", failed.transport)
        assertEquals("127.0.0.1", failed.remoteAddr?.substringBeforeLast(':'))
        assertNotNull(failed.reason)
        assertNull(failed.connection, "no session, no connection id")
        assertEquals(1uL, server.stats().handshakesFailed[5uL], "${server.stats()}")
        assertEquals(0uL, server.stats().sessionsInbound)

        events.cancel()
        events.close()
        client.shutdown()
        server.shutdown()
        listOf(client, server).forEach { it.close() }
    }

    @Test
    fun sessionEventsCarryTheConnectionIdAndCountersGrow() = runTest {
        val server = Peer.create(PeerOptions())
        val client = Peer.create(PeerOptions())
        val serverEvents = server.events()
        val clientEvents = client.events()
        val addr = server.listen("127.0.0.1:0")
        val echo = launch {
            val c = server.accept() ?: return@launch
            val s = c.acceptStream()
            s.writeAndFinish(s.readToEnd(4uL shl 20))
        }
        val conn = client.dial(addr)
        assertEquals(16, conn.id().length)

        val up = clientEvents.nextOf(EventKind.SESSION_ESTABLISHED)
        assertEquals(conn.id(), up.connection)
        assertEquals(Direction.OUTBOUND, up.direction)
        assertEquals("tcp", up.transport)
        assertEquals(addr, up.remoteAddr)
        assertEquals(server.principal(), up.remotePrincipal)
        assertTrue(up.duration!! > java.time.Duration.ZERO, "$up")
        assertEquals(true, up.hs2, "the default handshake is hs2")
        val down = serverEvents.nextOf(EventKind.SESSION_ESTABLISHED)
        assertEquals(true, down.hs2)
        assertEquals(conn.id(), down.connection, "both ends name the session alike")
        assertEquals(Direction.INBOUND, down.direction)
        assertEquals(client.principal(), down.remotePrincipal)

        // 1 MiB echoed: the byte counters of the connection and of the peer grow.
        val before = conn.stats()
        val data = pattern(1 shl 20)
        val s = conn.openStream("echo")
        s.writeAndFinish(data)
        assertArrayEquals(data, s.readToEnd(2uL shl 20))
        echo.join()
        val after = conn.stats()
        assertTrue(after.bytesSent >= before.bytesSent + (1uL shl 20), "$before -> $after")
        assertTrue(after.bytesReceived >= before.bytesReceived + (1uL shl 20), "$before -> $after")
        assertTrue(after.framesSent > 0uL, "$after")
        var opened = serverEvents.nextOf(EventKind.STREAM_OPENED)
        while (opened.label != "echo") opened = serverEvents.nextOf(EventKind.STREAM_OPENED) // skip px-1
        assertEquals(listOf(conn.id(), Direction.INBOUND, "echo"), listOf(opened.connection, opened.direction, opened.label))
        assertEquals("tcp", after.transport)
        assertEquals(addr, after.remoteAddr)
        assertNotNull(after.handshake)
        assertTrue(after.age >= after.handshake!!, "$after")
        val peerStats = client.stats()
        assertEquals(1uL, peerStats.sessionsOutbound)
        assertEquals(1uL, peerStats.sessionsOpen)
        assertTrue(peerStats.bytesSent >= after.bytesSent, "$peerStats")

        conn.shutdown(0u, "done")
        val gone = clientEvents.nextOf(EventKind.SESSION_CLOSED)
        assertEquals(conn.id(), gone.connection)
        assertEquals(0uL, gone.code, "$gone")
        assertTrue(gone.bytesSent!! >= 1uL shl 20, "$gone")
        val goneThere = serverEvents.nextOf(EventKind.SESSION_CLOSED)
        assertEquals(conn.id(), goneThere.connection)
        assertTrue(goneThere.bytesReceived!! >= 1uL shl 20, "$goneThere")
        assertEquals(1uL, server.stats().sessionsInbound)

        listOf(serverEvents, clientEvents).forEach { it.cancel(); it.close() }
        client.shutdown()
        server.shutdown()
        listOf(s, conn, client, server).forEach { it.close() }
    }

    @Test
    fun hs2IsOnByDefaultOffSpeaksV1AndADialerFallsBack() = runTest {
        // PROTOCOL.md §5.8: PeerOptions.hs2 reaches the core, ConnectionStats.hs2 says which
        // handshake each side ran.
        val both = Peer.create(PeerOptions())
        val v1 = Peer.create(PeerOptions(hs2 = false))
        val client = Peer.create(PeerOptions())
        val v1Client = Peer.create(PeerOptions(hs2 = false))
        val addrs = listOf(both, v1).associateWith { it.listen("127.0.0.1:0") }
        val conns = mutableListOf<Connection>()
        suspend fun pair(dialer: Peer, listener: Peer): List<Boolean> {
            val conn = dialer.dial(addrs.getValue(listener))
            val there = step("the inbound connection") { listener.accept() }!!
            conns += listOf(conn, there)
            return listOf(conn.stats().hs2, there.stats().hs2)
        }
        fun failed(p: Peer) = p.stats().handshakesFailed.values.sum()

        assertEquals(listOf(true, true), pair(client, both))
        // A dialer with hs2 = false is answered in v1, and nothing failed.
        assertEquals(listOf(false, false), pair(v1Client, both))
        assertEquals(0uL, failed(both))
        // A listener with hs2 = false closes on the offer; the dialer comes again with v1 at
        // once and dials that locator with v1 from then on: one failed handshake each side.
        assertEquals(listOf(false, false), pair(client, v1))
        assertEquals(listOf(false, false), pair(client, v1))
        assertEquals(listOf(1uL, 1uL), listOf(failed(client), failed(v1)))
        // Each peer counts its sessions that ran hs2: only the first pair's.
        val peers = listOf(client, v1Client, both, v1)
        assertEquals(listOf(1uL, 0uL, 1uL, 0uL), peers.map { it.stats().sessionsHs2 })

        peers.forEach { it.shutdown() }
        (conns + peers).forEach { it.close() }
    }

    @Test
    fun cancellingTheSubscriptionEndsNext() = runTest {
        val peer = Peer.create(PeerOptions())
        val events = peer.events()
        val pending = async(start = CoroutineStart.UNDISPATCHED) { events.next() }
        assertFalse(events.isClosed())
        events.cancel()
        assertNull(step("next() returns null once cancelled") { pending.await() })
        assertTrue(events.isClosed())
        assertNull(events.next())
        events.cancel() // idempotent
        events.close()

        // The Flow view: it ends when its subscription is cancelled, and stopping its
        // collector (first) cancels the subscription.
        val other = peer.events()
        val collected = async(start = CoroutineStart.UNDISPATCHED) { other.asFlow().toList() }
        other.cancel()
        assertEquals(emptyList<PeerEvent>(), step("the flow completes") { collected.await() })

        val server = Peer.create(PeerOptions())
        val addr = server.listen("127.0.0.1:0")
        val third = peer.events()
        val firstUp = async(start = CoroutineStart.UNDISPATCHED) {
            third.asFlow().filter { it.kind == EventKind.SESSION_ESTABLISHED }.first()
        }
        val conn = peer.dial(addr)
        assertEquals(conn.id(), step("an event through the flow") { firstUp.await() }.connection)

        peer.shutdown()
        server.shutdown()
        listOf(conn, peer, server).forEach { it.close() }
    }

    @Test
    fun shutdownEndsTheSubscriptionsAfterWhatTheyQueued() = runTest {
        // A pending next() returns null at shutdown.
        val lonely = Peer.create(PeerOptions())
        val idle = lonely.events()
        val pending = async(start = CoroutineStart.UNDISPATCHED) { idle.next() }
        lonely.shutdown()
        assertNull(step("a pending next() returns null at shutdown") { pending.await() })
        val late = lonely.events()
        assertNull(step("a subscription made after shutdown ends") { late.next() })

        // The events queued before the shutdown are still read, then null.
        val server = Peer.create(PeerOptions())
        val client = Peer.create(PeerOptions())
        val addr = server.listen("127.0.0.1:0")
        val events = client.events()
        val conn = client.dial(addr)
        client.shutdown()
        assertEquals(conn.id(), events.nextOf(EventKind.SESSION_ESTABLISHED).connection)
        val rest = step("the subscription ends") { events.asFlow().toList() }
        // What the session queued before it closed: its close, and the streams it opened
        // (the listener's PX-1 stream, `px-1`, may be reported as its session starts).
        assertTrue(
            rest.all { it.kind == EventKind.SESSION_CLOSED || it.kind == EventKind.STREAM_OPENED },
            "$rest"
        )
        assertTrue(rest.any { it.kind == EventKind.SESSION_CLOSED }, "$rest")
        server.shutdown()
        listOf(idle, late).forEach { it.close() }
        listOf(conn, lonely, client, server).forEach { it.close() }
    }

    @Test
    fun rekeyLimitsArePeerOptions() = runTest {
        // Tiny thresholds: keys are replaced every few frames, the bytes still arrive intact.
        val server = Peer.create(PeerOptions(rekeyAfterFrames = 3uL, rekeyAfterBytes = 4096uL))
        val client = Peer.create(
            PeerOptions(rekeyAfterFrames = 5uL, rekeyInterval = java.time.Duration.ofMillis(50))
        )
        val addr = server.listen("127.0.0.1:0")
        val echo = launch {
            val c = server.accept() ?: return@launch
            val s = c.acceptStream()
            s.writeAndFinish(s.readToEnd(4uL shl 20))
        }
        val conn = client.dial(addr)
        assertTrue(conn.supports("rekey"))
        val data = pattern(1 shl 20, seed = 29)
        val s = conn.openStream("rekey")
        s.writeAndFinish(data)
        assertArrayEquals(data, s.readToEnd(2uL shl 20))
        echo.join()
        client.shutdown()
        server.shutdown()
        listOf(s, conn, client, server).forEach { it.close() }
    }
}
