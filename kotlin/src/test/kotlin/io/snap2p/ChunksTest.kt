package io.snap2p

import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.collect
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.toList
import java.io.ByteArrayOutputStream

/** `chunks()`'s raw fast path (RawIo: direct JNA reads that gather, a native wait). */
class ChunksTest {
    /** A connection from a client to a server, and one stream on it from each side. */
    private class Pair2(val server: Peer, val client: Peer, val local: Stream, val remote: Stream) {
        suspend fun close() {
            client.shutdown(); server.shutdown()
            listOf(local, remote, client, server).forEach { it.close() }
        }
    }

    private suspend fun pair(): Pair2 {
        val server = Peer.create(PeerOptions())
        val addr = server.listen("127.0.0.1:0")
        val client = Peer.create(PeerOptions())
        val conn = client.dial(addr)
        val inbound = step("accept") { server.accept()!! }
        val local = conn.openStream("chunks")
        local.writeAll(byteArrayOf(1))
        val remote = step("accept stream") { inbound.acceptStream() }
        assertArrayEquals(byteArrayOf(1), remote.read(1u))
        listOf(conn, inbound).forEach { it.close() }
        return Pair2(server, client, local, remote)
    }

    @Test
    fun bytesArriveWholeInOrderAndGathered() = runTest(seconds = 120) {
        assertTrue(RawIo.available, "the raw entry points must be found in the library")
        val p = pair()
        // 3 MiB in 64 KiB writes; a frame carries at most 65,502 bytes, so a read of a
        // full 64 KiB gathers across two. Late data: the reader waits first.
        val data = pattern(3 shl 20, seed = 11)
        val reader = async {
            val out = ByteArrayOutputStream()
            var full = 0
            p.remote.chunks(100_000u).collect {
                assertTrue(it.size in 1..65_536, "chunk of ${it.size} bytes")
                if (it.size == 65_536) full++
                out.write(it)
            }
            out.toByteArray() to full
        }
        delay(200)
        var off = 0
        while (off < data.size) {
            p.local.writeAll(data.copyOfRange(off, minOf(off + 65_536, data.size)))
            off += 65_536
        }
        p.local.finish()
        val (got, full) = step("read to the end") { reader.await() }
        assertEquals(data.size, got.size)
        assertArrayEquals(data, got)
        assertTrue(full > 0, "no read took a full 64 KiB across two chunks")
        // After the end: nothing more, at once.
        assertEquals(0, step("read after the end") { p.remote.chunks().toList() }.size)
        p.close()
    }

    @Test
    fun anEmptyStreamHasNoChunksAndSmallChunksStaySmall() = runTest {
        val p = pair()
        p.local.writeAll("hello".toByteArray())
        assertArrayEquals("he".toByteArray(), step("first") { p.remote.chunks(2u).first() })
        assertArrayEquals("llo".toByteArray(), step("second") { p.remote.chunks().first() })
        p.local.finish()
        assertEquals(0, step("end") { p.remote.chunks().toList() }.size)
        p.close()
    }

    @Test
    fun aResetWhileWaitingThrowsThePeersCode() = runTest {
        val p = pair()
        val reader = async { runCatching { p.remote.chunks().collect { } }.exceptionOrNull() }
        delay(200)
        p.local.reset(42uL)
        val e = step("the reset reaches the waiting reader") { reader.await() }
        assertTrue(e is Snap2pException.Failure && e.code == 42uL, "expected code 42, got $e")
        p.close()
    }
}
