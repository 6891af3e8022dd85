package io.snap2p

import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import kotlinx.coroutines.async
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.delay
import java.util.Collections

/** `writeAll`'s and `outputStream`'s raw fast path (RawIo: direct JNA calls, no uniffi structures). */
class WriteAllTest {
    /** A peer whose streams answer with the SHA-256 of everything they received. */
    private suspend fun digestServer(subs: MutableList<Subscription>): Pair<Peer, String> {
        val server = Peer.create(PeerOptions())
        val addr = server.listen("127.0.0.1:0")
        subs += server.onConnection(object : ConnectionHandler {
            override suspend fun onConnection(connection: Connection) {
                subs += connection.onStream(object : StreamHandler {
                    override suspend fun onStream(stream: Stream) {
                        stream.writeAndFinish(sha256(stream.readToEnd(64uL shl 20)))
                    }
                })
            }
        })
        return server to addr
    }

    @Test
    fun mixedChunkSizesArriveIntactThroughTheFastPath() = runTest(seconds = 120) {
        assertTrue(RawIo.available, "the raw entry point must be found in the library")
        val subs = Collections.synchronizedList(mutableListOf<Subscription>())
        val (server, addr) = digestServer(subs)
        val client = Peer.create(PeerOptions())
        val conn = client.dial(addr)
        val stream = conn.openStream("write-all")
        // Below, at and above the 64 KiB native buffer, and far above the 1 MiB send
        // buffer: pieces, partial takes and the wait for credit all happen.
        val sizes = listOf(1, 4095, 65_536, 65_537, 200_000, 1 shl 20, 3 shl 20, 0, 77)
        val data = pattern(sizes.sum())
        var off = 0
        for (n in sizes) {
            step("writeAll of $n bytes at $off") { stream.writeAll(data.copyOfRange(off, off + n)) }
            off += n
        }
        // Many chunks in a row, each at most one native call while the buffer has room.
        val block = pattern(65_536, seed = 7)
        repeat(64) { stream.writeAll(block) }
        stream.finish()
        val expected = sha256(data, *Array(64) { block })
        assertArrayEquals(expected, step("digest reply") { stream.readToEnd(64u) })
        subs.forEach { it.cancel(); it.close() }
        client.shutdown(); server.shutdown()
        listOf(stream, conn, client, server).forEach { it.close() }
    }

    @Test
    fun refusedWritesThrowTheTypedErrorOfTryWrite() = runTest {
        val subs = Collections.synchronizedList(mutableListOf<Subscription>())
        val (server, addr) = digestServer(subs)
        val client = Peer.create(PeerOptions())
        val conn = client.dial(addr)
        val stream = conn.openStream("finished")
        stream.writeAll("before".toByteArray())
        stream.finish()
        // The raw call only flags the refusal; writeAll then reports it as tryWrite does.
        val viaWriteAll = expectError(11u, "ERR_STREAM_CLOSED") { stream.writeAll(ByteArray(100_000)) }
        val viaTryWrite = expectError(11u, "ERR_STREAM_CLOSED") { stream.tryWrite(ByteArray(10)) }
        expectError(11u, "ERR_STREAM_CLOSED") { stream.writable() }
        assertEquals(viaTryWrite.reason, viaWriteAll.reason)
        assertArrayEquals(sha256("before".toByteArray()), stream.readToEnd(64u))
        // A released stream object is refused on the Kotlin side, like any generated call.
        stream.close()
        val closed = runCatching { stream.writeAll(ByteArray(1)) }.exceptionOrNull()
        assertTrue(closed is IllegalStateException, "expected IllegalStateException, got $closed")
        subs.forEach { it.cancel(); it.close() }
        client.shutdown(); server.shutdown()
        listOf(conn, client, server).forEach { it.close() }
    }

    @Test
    fun outputStreamBlocksForCreditAndDeliversIntact() = runTest(seconds = 120) {
        val subs = Collections.synchronizedList(mutableListOf<Subscription>())
        val (server, addr) = digestServer(subs)
        val client = Peer.create(PeerOptions())
        val conn = client.dial(addr)
        val stream = conn.openStream("output-stream")
        // Far above the 1 MiB send buffer (the thread parks for room many times), in
        // pieces below, at and above the 64 KiB native buffer, from a plain thread.
        val sizes = listOf(1, 65_535, 65_536, 65_537, 3 shl 20, 0, 77)
        val data = pattern(sizes.sum(), seed = 11)
        val failure = java.util.concurrent.atomic.AtomicReference<Throwable?>()
        val writer = Thread {
            try {
                stream.outputStream().use { out ->
                    var off = 0
                    for (n in sizes) {
                        out.write(data, off, n)
                        off += n
                    }
                    out.write(0x42)
                }
            } catch (e: Throwable) {
                failure.set(e)
            }
        }
        writer.start()
        val reply = step("digest reply") { stream.readToEnd(64u) }
        writer.join()
        failure.get()?.let { throw it }
        assertArrayEquals(sha256(data, byteArrayOf(0x42)), reply)
        // The stream is finished (close): further writes are refused with the typed error.
        val refused = runCatching { stream.outputStream().write(ByteArray(10)) }.exceptionOrNull()
        assertTrue(
            refused is Snap2pException.Failure && refused.code == 11uL,
            "expected ERR_STREAM_CLOSED, got $refused",
        )
        subs.forEach { it.cancel(); it.close() }
        client.shutdown(); server.shutdown()
        listOf(stream, conn, client, server).forEach { it.close() }
    }

    /**
     * A writeAll suspended for room (the peer reads nothing) ends on each way the wait can
     * end: the peer resets (the typed error), the stream object is released (as any
     * released object), the writer is cancelled (the stream stays writable).
     */
    @Test
    fun aWriterWaitingForRoomEndsOnResetReleaseAndCancel() = runTest(seconds = 120) {
        val subs = Collections.synchronizedList(mutableListOf<Subscription>())
        val server = Peer.create(PeerOptions())
        val addr = server.listen("127.0.0.1:0")
        val accepted = Channel<Stream>(8)
        subs += server.onConnection(object : ConnectionHandler {
            override suspend fun onConnection(connection: Connection) {
                subs += connection.onStream(object : StreamHandler {
                    override suspend fun onStream(stream: Stream) {
                        accepted.send(stream)
                    }
                })
            }
        })
        val client = Peer.create(PeerOptions())
        val conn = client.dial(addr)
        // Far more than the send buffer and the peer's window together: the writer waits.
        val big = pattern(16 shl 20, seed = 3)
        suspend fun waitingWriter(stream: Stream) = async {
            runCatching { stream.writeAll(big) }.exceptionOrNull()
        }.also {
            delay(300)
            assertTrue(it.isActive, "the writer should be waiting for room")
        }

        val a = conn.openStream("reset")
        val wa = waitingWriter(a)
        val remoteA = step("accept reset") { accepted.receive() }
        remoteA.reset(22u)
        val ea = step("writer ends on reset") { wa.await() }
        assertTrue(
            ea is Snap2pException.Failure && (ea.code == 22uL || ea.code == 11uL),
            "expected ERR_STREAM_REFUSED or ERR_STREAM_CLOSED, got $ea",
        )

        val b = conn.openStream("release")
        val wb = waitingWriter(b)
        step("accept release") { accepted.receive() }
        b.close()
        val eb = step("writer ends on release") { wb.await() }
        assertTrue(eb is IllegalStateException, "expected IllegalStateException, got $eb")

        val c = conn.openStream("cancel")
        val wc = waitingWriter(c)
        val remoteC = step("accept cancel") { accepted.receive() }
        step("writer cancelled") { wc.cancelAndJoin() }
        // The abandoned wait does not disturb the next one: the peer now reads to the end.
        val drained = async { remoteC.readToEnd(64uL shl 20).size }
        step("write after cancel") { c.writeAll(big) }
        c.finish()
        val got = step("peer reads to the end") { drained.await() }
        assertTrue(got >= big.size, "the peer got $got bytes, expected at least ${big.size}")

        subs.forEach { it.cancel(); it.close() }
        client.shutdown(); server.shutdown()
        listOf(a, c, remoteA, remoteC, conn, client, server).forEach { it.close() }
    }
}
