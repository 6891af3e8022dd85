package io.snap2p

import java.nio.ByteBuffer
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.flow.flow

/**
 * Inbound connections as a cold [Flow]: collecting starts a [Peer.onConnection]
 * subscription, cancelling the collector stops it.
 */
fun Peer.incomingConnections(): Flow<Connection> = callbackFlow {
    val subscription = onConnection(object : ConnectionHandler {
        override suspend fun onConnection(connection: Connection) {
            send(connection)
        }
    })
    awaitClose {
        subscription.cancel()
        subscription.close()
    }
}

/** Streams the remote opens, as a cold [Flow] (see [Connection.onStream]). */
fun Connection.incomingStreams(): Flow<Stream> = callbackFlow {
    val subscription = onStream(object : StreamHandler {
        override suspend fun onStream(stream: Stream) {
            send(stream)
        }
    })
    awaitClose {
        subscription.cancel()
        subscription.close()
    }
}

/**
 * This subscription's events (docs/EVENTS.md) as a [Flow], for one collector: it
 * completes when the subscription is cancelled or the peer is gone, and when the collector
 * stops (cancelled, or an operator like `first` or `take`) the subscription is cancelled and
 * released. Subscribe first, then start what should be observed:
 * `val events = peer.events(); launch { events.asFlow().collect { … } }; peer.dial(…)`.
 */
fun EventSubscription.asFlow(): Flow<PeerEvent> = flow {
    use {
        try {
            while (true) emit(next() ?: break)
        } finally {
            cancel()
        }
    }
}

/**
 * The stream's bytes until the remote finishes, in chunks of at most [maxChunk] bytes
 * (suspending reads, natural backpressure). Each chunk is one direct native call that
 * copies what has arrived, across the chunks it arrived in (up to 64 KiB a call); when
 * nothing has, it suspends until the session driver calls back. Same bytes as a loop of
 * [Stream.read], several times cheaper: the fast way to receive.
 */
fun Stream.chunks(maxChunk: UInt = 65_536u): Flow<ByteArray> = flow {
    if (!RawIo.available) {
        while (true) emit(read(maxChunk) ?: break)
        return@flow
    }
    val handle = RawIo.handleOf(this@chunks)
    val max = maxChunk.coerceAtMost(Int.MAX_VALUE.toUInt()).toInt()
    while (true) emit(RawIo.read(this@chunks, handle, max) ?: break)
}

/**
 * Reads into [dst], from its position and at most its remaining bytes, everything that has
 * arrived, across the chunks it arrived in, suspending while nothing has; advances the
 * position and returns the count, or -1 once the remote finished (as
 * `ReadableByteChannel.read`). With a direct buffer ([ByteBuffer.allocateDirect]) the core
 * copies straight into it and one call takes what many frames brought: the fast way to
 * receive many bytes into a buffer you keep, allocating nothing per read. Throws
 * [IllegalArgumentException] for a buffer with no room left or a read-only one.
 */
suspend fun Stream.readInto(dst: ByteBuffer): Int {
    require(!dst.isReadOnly) { "readInto needs a writable buffer" }
    require(dst.hasRemaining()) { "readInto needs a buffer with room (remaining() ≥ 1)" }
    if (!RawIo.available) {
        val bytes = read(dst.remaining().toUInt()) ?: return -1
        dst.put(bytes)
        return bytes.size
    }
    return RawIo.readInto(this, RawIo.handleOf(this), dst)
}

/**
 * Writes all of [data]: what the send buffer has room for is queued at once, on the
 * caller's thread, by direct native calls that allocate no JNA structures (64 KiB per
 * call); when the buffer is full it suspends until the session driver calls back with
 * room (no bytes cross into an async call) and goes on. Same effect as [Stream.write],
 * several times cheaper: the fast way to send many chunks.
 */
suspend fun Stream.writeAll(data: ByteArray) {
    if (!RawIo.available) {
        val off = tryWrite(data).toInt()
        if (off < data.size) write(if (off == 0) data else data.copyOfRange(off, data.size))
        return
    }
    val handle = RawIo.handleOf(this)
    var off = 0
    while (off < data.size) {
        val taken = RawIo.tryWrite(this, handle, data, off, minOf(data.size - off, RawIo.SCRATCH))
        off += taken
        // Full: wait for room (if the stream cannot be written, the next write throws).
        if (taken == 0) RawIo.awaitWritable(handle)
    }
}

/** Writes [data] and half-closes the stream. */
suspend fun Stream.writeAndFinish(data: ByteArray) {
    writeAll(data)
    finish()
}

/** The protocol error code of a [Snap2pException] (e.g. 4 = ERR_NOT_ALLOWED). */
val Snap2pException.code: ULong
    get() = when (this) {
        is Snap2pException.Failure -> this.code
    }
