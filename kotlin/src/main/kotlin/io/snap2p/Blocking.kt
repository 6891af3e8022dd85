package io.snap2p

import java.io.IOException
import java.io.InputStream
import java.io.OutputStream

/**
 * A blocking [OutputStream] over this stream, for Java code and threads that are not
 * coroutines: `write` returns once the bytes are queued, blocking the calling thread while
 * the send buffer is full (never on a coroutine dispatcher that must not block: use
 * `Dispatchers.IO` or a thread of your own). `flush` has nothing to do (queued bytes go
 * out as fast as the session can send them); `close` finishes the stream (the peer reads
 * to the end). Errors are the typed [Snap2pException] of [Stream.tryWrite].
 */
fun Stream.outputStream(): OutputStream = StreamOutputStream(this)

private class StreamOutputStream(private val stream: Stream) : OutputStream() {
    @Volatile private var closed = false
    private val handle = if (RawIo.available) RawIo.handleOf(stream) else null

    override fun write(b: Int) = write(byteArrayOf(b.toByte()), 0, 1)

    override fun write(b: ByteArray, off: Int, len: Int) {
        java.util.Objects.checkFromIndexSize(off, len, b.size)
        if (closed) throw java.io.IOException("stream closed")
        if (len == 0) return
        if (handle == null) {
            // No raw entry point: the generated async call, waited for on this thread.
            kotlinx.coroutines.runBlocking { stream.write(b.copyOfRange(off, off + len)) }
            return
        }
        RawIo.writeBlocking(stream, handle, b, off, len)
    }

    override fun close() {
        if (closed) return
        closed = true
        stream.finish()
    }
}

/**
 * A blocking [InputStream] over this stream, for Java code and threads that are not
 * coroutines: `read` returns what has arrived (at least one byte, at most 64 KiB per call,
 * across the frames it came in), blocking the calling thread while nothing has (never on
 * a coroutine dispatcher that must not block: use `Dispatchers.IO` or a thread of your
 * own), and -1 once the peer finished. The bytes are copied into the caller's array: no
 * allocation per read, where [chunks] makes a `ByteArray` per chunk. Reading is what
 * returns flow-control credit to the sender. `available` is how many bytes a read would
 * return now without blocking (0 at the end). `close` stops this InputStream only (later
 * reads throw [IOException]); the stream itself stays open for writing, as [Stream.reset]
 * or the connection's end closes it. Errors are the typed [Snap2pException] of
 * [Stream.read].
 */
fun Stream.inputStream(): InputStream = StreamInputStream(this)

private class StreamInputStream(private val stream: Stream) : InputStream() {
    @Volatile private var closed = false
    private var ended = false
    private val handle = if (RawIo.available) RawIo.handleOf(stream) else null

    override fun read(): Int {
        val one = ByteArray(1)
        return if (read(one, 0, 1) < 0) -1 else one[0].toInt() and 0xff
    }

    override fun read(b: ByteArray, off: Int, len: Int): Int {
        java.util.Objects.checkFromIndexSize(off, len, b.size)
        if (closed) throw IOException("stream closed")
        if (len == 0) return 0
        if (ended) return -1
        val n = if (handle == null) {
            // No raw entry point: the generated async call, waited for on this thread.
            val bytes = kotlinx.coroutines.runBlocking { stream.read(minOf(len, RawIo.SCRATCH).toUInt()) }
            bytes?.copyInto(b, off)
            bytes?.size ?: -1
        } else {
            RawIo.readBlocking(stream, handle, b, off, len)
        }
        if (n < 0) ended = true
        return n
    }

    override fun available(): Int {
        if (closed) throw IOException("stream closed")
        return if (handle == null || ended) 0 else RawIo.readableLen(handle)
    }

    override fun close() {
        closed = true
    }
}
