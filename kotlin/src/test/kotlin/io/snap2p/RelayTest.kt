package io.snap2p

import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

/**
 * RELAY-1 (issue 28, docs/PROTOCOL.md §32) through the uniffi package, over loopback: a
 * serving relay peer (PeerOptions.relay), a peer holding a reservation on it
 * (listen("relay://…")), a dialer reaching that peer through it, and the hole punch that
 * replaces the relayed session by a direct one. The core relays and punches; these tests
 * check that Kotlin reaches it and sees its values and codes.
 */
class RelayTest {
    private fun address(principal: String) = principal.removePrefix("stacks:")

    /** Reads [conn]'s next stream to its end and writes it back. */
    private suspend fun echoOneStream(conn: Connection) {
        val s = conn.acceptStream()
        s.writeAndFinish(s.readToEnd(4uL shl 20))
    }

    /** Sends [data] on a new stream of [conn] and checks the echo byte for byte. */
    private suspend fun echoes(conn: Connection, data: ByteArray) {
        val s = conn.openStream("data")
        s.writeAndFinish(data)
        assertArrayEquals(data, s.readToEnd(4uL shl 20))
    }

    @Test
    fun aPeerIsReachedThroughItsRelayAndThenPunchedDirect() = runTest(120) {
        val relay = Peer.create(PeerOptions(relay = RelayOptions()))
        val relayAddr = relay.listen("127.0.0.1:0")
        val b = Peer.create(PeerOptions())
        step("B reserves on the relay") { b.listen("relay://$relayAddr") }
        val reservations = b.relayReservations()
        assertEquals(1, reservations.size, "$reservations")
        assertEquals("relay://$relayAddr", reservations[0].relay)
        assertTrue(reservations[0].active, "$reservations")
        val observed = checkNotNull(reservations[0].observed) { "the relay tells B its address" }
        assertTrue(observed.startsWith("127.0.0.1:"), observed)
        val bLocator = "relay://$relayAddr/${address(b.principal())}"
        assertTrue(bLocator in b.listenLocators(), "${b.listenLocators()}")
        assertEquals(1uL, relay.relayStats().reservations)
        // B does not serve: its own relay counters stay at zero.
        assertEquals(RelayStats(0uL, 0uL, 0uL, 0uL, 0uL, 0uL), b.relayStats())

        // B: the relayed session first, then the direct one; one echoed stream on each.
        val bSide = async {
            val relayed = checkNotNull(b.accept())
            val first = relayed.stats().transport to relayed.remotePrincipal()
            echoOneStream(relayed)
            val direct = checkNotNull(b.accept())
            val second = direct.stats().transport to direct.remotePrincipal()
            echoOneStream(direct)
            listOf(first, second)
        }
        val a = Peer.create(PeerOptions())
        val relayed = step("A dials B through the relay") { a.dial(bLocator) }
        assertEquals(b.principal(), relayed.remotePrincipal())
        assertEquals("relay", relayed.stats().transport)
        step("1 MiB echoed through the relay") { echoes(relayed, pattern(1 shl 20, seed = 28)) }
        var stats = relay.relayStats()
        for (i in 0 until 100) {
            if (stats.bytesForwarded >= (2uL shl 20)) break
            delay(20)
            stats = relay.relayStats()
        }
        assertEquals(1uL, stats.circuits, "$stats")
        assertEquals(1uL, stats.circuitsTotal, "$stats")
        assertEquals(1uL, stats.splicedTotal, "spliced by default (PROTOCOL.md §32.3): $stats")
        assertTrue(stats.bytesForwarded >= (2uL shl 20), "$stats")
        assertTrue(stats.bytesForwarded < (3uL shl 20), "$stats")

        val direct = step("hole punch", 20_000) { a.holePunch(relayed) }
        assertEquals("punch", direct.stats().transport)
        assertEquals(b.principal(), direct.remotePrincipal())
        assertFalse(relayed.isClosed(), "the relayed session stays open")
        step("1 MiB echoed on the direct session") { echoes(direct, pattern(1 shl 20, seed = 29)) }
        assertEquals(
            listOf("relay" to a.principal(), "punch" to a.principal()),
            step("B's side") { bSide.await() },
        )
        // The punched session does not go through the relay.
        assertEquals(1uL, relay.relayStats().circuitsTotal)
        listOf(a, b, relay).forEach { it.shutdown(); it.close() }
    }

    @Test
    fun refusalsCarryTheirCodes() = runTest(60) {
        val allowed = Signer.generate(Network.MAINNET)
        val relay = Peer.create(
            PeerOptions(relay = RelayOptions(allowlist = listOf(address(allowed.principal())), maxCircuits = 8uL))
        )
        val relayAddr = relay.listen("127.0.0.1:0")
        // Not on the relay's allowlist: the reservation (the listen call) is refused with 4.
        val b = Peer.create(PeerOptions())
        expectError(4u, "ERR_NOT_ALLOWED") { b.listen("relay://$relayAddr") }
        assertTrue(b.relayReservations().none { it.active }, "${b.relayReservations()}")
        assertEquals(1uL, relay.relayStats().refused)
        assertEquals(0uL, relay.relayStats().reservations)
        // On it (a bare SP… address is accepted too): reserved.
        val ok = Peer.create(PeerOptions(signer = allowed))
        ok.listen("relay://$relayAddr")
        assertEquals(1uL, relay.relayStats().reservations)
        val a = Peer.create(PeerOptions())
        // B holds no reservation there: the circuit is refused with 20.
        expectError(20u, "ERR_STREAM_REFUSED") { a.dial("relay://$relayAddr/${address(b.principal())}") }
        // A relay locator without a principal is not dialable.
        expectError(25u, "ERR_INVALID_ARGUMENT") { a.dial("relay://$relayAddr") }
        // A peer that does not serve refuses reservations with 20.
        val plainAddr = a.listen("127.0.0.1:0")
        expectError(20u, "ERR_STREAM_REFUSED") { b.listen("relay://$plainAddr") }
        listOf(a, b, ok, relay).forEach { it.shutdown(); it.close() }
    }

    @Test
    fun badRelayOptionsAreInvalidArguments() = runTest {
        val bad = listOf(
            RelayOptions(allowlist = listOf("SPnotaprincipal")),
            RelayOptions(maxReservations = 0uL),
            RelayOptions(maxCircuits = 0uL),
            RelayOptions(maxCircuitsPerPeer = 0uL),
            RelayOptions(circuitMaxDuration = java.time.Duration.ZERO),
        )
        for (options in bad) {
            expectError(25u, "ERR_INVALID_ARGUMENT") { Peer.create(PeerOptions(relay = options)) }
        }
        // The limits that take 0 as "no limit" accept it.
        val p = Peer.create(PeerOptions(relay = RelayOptions(circuitMaxBytes = 0uL, requestsPerMin = 0u)))
        p.shutdown()
        p.close()
    }
}
