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
import java.io.IOException
import java.util.concurrent.atomic.AtomicReference

/**
 * `chunks()`'s, `readInto`'s and `inputStream()`'s raw fast paths (RawIo: direct JNA reads that gather; a
 * native wait, suspending or blocking).
 */
class ChunksTest {
    /** A connection from a client to a server, and one stream on it from each side. */
    private class Pair2(val server: Peer, val client: Peer, val local: Stream, val remote: Stream) {
        /** Sends [data] from [local] in 64 KiB writes, then finishes the stream. */
        suspend fun sendAndFinish(data: ByteArray) {
            var off = 0
            while (off < data.size) {
                local.writeAll(data.copyOfRange(off, minOf(off + 65_536, data.size)))
                off += 65_536
            }
            local.finish()
        }

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
        p.sendAndFinish(data)
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

    @Test
    fun readIntoADirectBufferTakesWhatManyFramesBroughtThenMinusOne() = runTest(seconds = 120) {
        val p = pair()
        val data = pattern(3 shl 20, seed = 13)
        // 512 KiB sent and given time to arrive: one read into a direct buffer takes all of
        // it, many frames (a frame carries at most 65,502 bytes).
        p.local.writeAll(data.copyOfRange(0, 512 * 1024))
        delay(300)
        val buf = java.nio.ByteBuffer.allocateDirect(1 shl 20)
        val first = step("first read") { p.remote.readInto(buf) }
        assertTrue(first > 65_502, "first read of $first bytes")
        assertEquals(first, buf.position())
        val out = ByteArrayOutputStream()
        fun drain() {
            buf.flip()
            val chunk = ByteArray(buf.remaining())
            buf.get(chunk)
            out.write(chunk)
            buf.clear()
        }
        drain()
        val sender = async {
            var off = 512 * 1024
            while (off < data.size) {
                p.local.writeAll(data.copyOfRange(off, minOf(off + 65_536, data.size)))
                off += 65_536
            }
            p.local.finish()
        }
        while (true) {
            val n = step("read") { p.remote.readInto(buf) }
            if (n < 0) break
            assertEquals(n, buf.position())
            drain()
        }
        sender.await()
        assertArrayEquals(data, out.toByteArray())
        assertEquals(-1, step("read after the end") { p.remote.readInto(buf) })
        p.close()
    }

    @Test
    fun readIntoAHeapBufferSliceKeepsOrderAndItsBounds() = runTest(seconds = 60) {
        val p = pair()
        val data = pattern(200_000, seed = 14)
        val sender = async { p.sendAndFinish(data) }
        val backing = ByteArray(20) { '#'.code.toByte() }
        val out = ByteArrayOutputStream()
        while (true) {
            val buf = java.nio.ByteBuffer.wrap(backing, 5, 7) // position 5, limit 12
            val n = step("read") { p.remote.readInto(buf) }
            if (n < 0) break
            assertEquals(5 + n, buf.position())
            out.write(backing, 5, n)
        }
        sender.await()
        assertArrayEquals(data, out.toByteArray())
        assertTrue(backing.copyOfRange(0, 5).all { it == '#'.code.toByte() })
        assertTrue(backing.copyOfRange(12, 20).all { it == '#'.code.toByte() })
        // No room, or read-only: refused before any read.
        assertTrue(runCatching { p.remote.readInto(java.nio.ByteBuffer.allocate(0)) }.exceptionOrNull() is IllegalArgumentException)
        assertTrue(
            runCatching { p.remote.readInto(java.nio.ByteBuffer.allocate(8).asReadOnlyBuffer()) }.exceptionOrNull()
                is IllegalArgumentException,
        )
        p.close()
    }

    @Test
    fun readIntoWaitingThrowsThePeersResetCode() = runTest {
        val p = pair()
        val reader = async { runCatching { p.remote.readInto(java.nio.ByteBuffer.allocateDirect(100)) }.exceptionOrNull() }
        delay(200)
        p.local.reset(42uL)
        val e = step("the reset reaches the waiting reader") { reader.await() }
        assertTrue(e is Snap2pException.Failure && e.code == 42uL, "expected code 42, got $e")
        p.close()
    }

    /** Runs [body] on a plain thread (a blocking read must not run on a coroutine's). */
    private fun <T> onThread(body: () -> T): Pair<Thread, AtomicReference<Result<T>?>> {
        val result = AtomicReference<Result<T>?>(null)
        val t = Thread { result.set(runCatching(body)) }
        t.start()
        return t to result
    }

    @Test
    fun inputStreamBlocksForLateBytesAndReadsToTheEnd() = runTest(seconds = 120) {
        val p = pair()
        // The reader blocks before anything is sent; 3 MiB in 64 KiB writes, read through
        // a 100,000-byte array at odd offsets, then -1 at the end (and again after it).
        val data = pattern(3 shl 20, seed = 12)
        val (reader, result) = onThread {
            val input = p.remote.inputStream()
            val out = ByteArrayOutputStream()
            val buf = ByteArray(100_000)
            var sizes = 0
            while (true) {
                val n = input.read(buf, 7, buf.size - 7)
                if (n < 0) break
                assertTrue(n in 1..65_536, "read of $n bytes")
                sizes++
                out.write(buf, 7, n)
            }
            assertEquals(-1, input.read(buf, 0, 10))
            assertEquals(-1, input.read())
            assertEquals(0, input.read(buf, 0, 0))
            out.toByteArray() to sizes
        }
        delay(200)
        p.sendAndFinish(data)
        step("read to the end") { while (reader.isAlive) delay(10) }
        val (got, reads) = result.get()!!.getOrThrow()
        assertArrayEquals(data, got)
        assertTrue(reads >= data.size / 65_536, "$reads reads")
        p.close()
    }

    @Test
    fun inputStreamCountsAvailableReadsSingleBytesThrowsTheResetCodeAndRefusesReadsAfterClose() = runTest(seconds = 60) {
        val p = pair()
        val input = p.remote.inputStream()
        assertEquals(0, input.available())
        p.local.writeAll("ab".toByteArray())
        step("two bytes counted") { while (input.available() < 2) delay(10) }
        assertEquals(2, input.available())
        val (first, r1) = onThread { listOf(input.read(), input.read()) }
        step("two single bytes") { while (first.isAlive) delay(10) }
        assertEquals(listOf('a'.code, 'b'.code), r1.get()!!.getOrThrow())
        assertEquals(0, input.available())
        // Waiting when the peer resets: the typed error with the peer's code.
        val (waiting, r2) = onThread { input.read(ByteArray(10)) }
        delay(200)
        assertTrue(waiting.isAlive, "the read waits for bytes")
        p.local.reset(42uL)
        step("the reset reaches the blocked reader") { while (waiting.isAlive) delay(10) }
        val e = r2.get()!!.exceptionOrNull()
        assertTrue(e is Snap2pException.Failure && e.code == 42uL, "expected code 42, got $e")
        input.close()
        val closed = runCatching { input.read(ByteArray(1)) }.exceptionOrNull()
        assertTrue(closed is IOException, "expected IOException after close, got $closed")
        assertTrue(runCatching { input.available() }.exceptionOrNull() is IOException)
        p.close()
    }
}
