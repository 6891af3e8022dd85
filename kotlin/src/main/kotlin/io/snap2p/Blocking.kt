package io.snap2p

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
