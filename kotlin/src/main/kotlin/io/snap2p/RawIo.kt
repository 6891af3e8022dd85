package io.snap2p

import com.sun.jna.Callback
import com.sun.jna.CallbackReference
import com.sun.jna.CallbackThreadInitializer
import com.sun.jna.Native
import com.sun.jna.NativeLibrary
import com.sun.jna.Pointer
import java.nio.ByteBuffer
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicLong
import kotlinx.coroutines.CancellableContinuation
import kotlinx.coroutines.suspendCancellableCoroutine
import kotlin.coroutines.resume

/**
 * The native half of [writeAll]'s, [outputStream]'s, [inputStream]'s and [chunks]' fast paths
 * (bindings/src/raw.rs), bound with JNA direct mapping and only integer arguments, so a
 * call allocates nothing.
 * The generated [Stream.tryWrite] makes three JNA calls (clone the handle, allocate a
 * RustBuffer, the call) and allocates a JNA `Structure` with native memory, registered
 * with a cleaner, for the RustBuffer and for each call status; the collector's work on
 * those was most of a Kotlin sender's overhead (docs/BENCHMARKS.md). Here the bytes are
 * copied into a per-thread native buffer, from which the core copies them into the
 * stream's send buffer, and the stream is named by a weak native handle taken once per
 * stream ([handleOf]), so a write is one native call.
 */
internal object RawIo {
    /** Size of the per-thread native buffer: one call moves at most this many bytes. */
    const val SCRATCH = 64 * 1024

    private class Scratch {
        val buf: ByteBuffer = ByteBuffer.allocateDirect(SCRATCH)
        val address: Long = Pointer.nativeValue(Native.getDirectBufferPointer(buf))
    }

    private val scratch = ThreadLocal.withInitial { Scratch() }

    /** Whether the raw entry point was found (if not, [writeAll] uses the generated calls). */
    val available: Boolean = try {
        // The generated bindings load the library first; the same name gives JNA's
        // cached instance of it, not a second copy.
        UniffiLib.hashCode()
        val name = System.getProperty("uniffi.component.snap2p.libraryOverride") ?: "snap2p_uniffi"
        Native.register(RawIo::class.java, NativeLibrary.getInstance(name))
        true
    } catch (e: Throwable) {
        false
    }

    /** A raw write's result when the core panicked (`bindings/src/raw.rs`, `PANICKED`). */
    private const val PANICKED = -3L

    private fun panicked() =
        IllegalStateException("snap2p: internal error (the core panicked) in a write; the stream's state is unknown")

    @JvmStatic
    private external fun snap2p_uniffi_stream_weak_raw(stream: Long): Long

    @JvmStatic
    private external fun snap2p_uniffi_stream_weak_free_raw(weak: Long)

    @JvmStatic
    private external fun snap2p_uniffi_stream_writable_raw(weak: Long, callback: Long, token: Long): Long

    @JvmStatic
    private external fun snap2p_uniffi_stream_try_write_raw(weak: Long, data: Long, len: Long): Long

    @JvmStatic
    private external fun snap2p_uniffi_stream_write_blocking_raw(weak: Long, data: Long, len: Long): Long

    @JvmStatic
    private external fun snap2p_uniffi_stream_try_read_raw(weak: Long, buf: Long, cap: Long): Long

    @JvmStatic
    private external fun snap2p_uniffi_stream_read_blocking_raw(weak: Long, buf: Long, cap: Long): Long

    @JvmStatic
    private external fun snap2p_uniffi_stream_readable_len_raw(weak: Long): Long

    @JvmStatic
    private external fun snap2p_uniffi_stream_readable_raw(weak: Long, callback: Long, token: Long): Long

    /** A raw read's result once the peer finished and everything was read (`END`). */
    private const val END = -2L

    /** A blocking raw read's or write's result on a snap2p runtime thread (`ON_RUNTIME`). */
    private const val ON_RUNTIME = -4L

    /**
     * A weak native handle to one stream: it does not keep the stream alive (releasing the
     * [Stream] releases the stream as before; the raw calls then refuse, and the generated
     * retry throws as for any released object). Freed by the cleaner once unreachable.
     */
    class Handle internal constructor(stream: Stream) {
        // callWithHandle passes a clone of the object's handle; the native call consumes
        // it and returns a weak handle of its own.
        internal val weak: Long = stream.callWithHandle { snap2p_uniffi_stream_weak_raw(it) }

        init {
            val weak = weak
            UniffiLib.CLEANER.register(this, Runnable { snap2p_uniffi_stream_weak_free_raw(weak) })
        }
    }

    /** Streams' weak handles, taken on their first raw write and dropped with them. */
    private val handles = java.util.Collections.synchronizedMap(java.util.WeakHashMap<Stream, Handle>())

    /** The weak native handle of [stream] (taken once, then looked up). */
    fun handleOf(stream: Stream): Handle = handles.getOrPut(stream) { Handle(stream) }

    /** The callback of [awaitWritable]'s and [awaitReadable]'s native waits, by JNA from a snap2p thread. */
    interface ReadyCallback : Callback {
        fun invoke(token: Long)
    }

    /** Writers and readers suspended in [awaitWritable] and [awaitReadable], by token. */
    private val waiting = ConcurrentHashMap<Long, CancellableContinuation<Unit>>()
    private val nextToken = AtomicLong(1)

    private object OnReady : ReadyCallback {
        init {
            // A daemon, attached once per snap2p thread (as uniffi's own callbacks).
            Native.setCallbackThreadInitializer(this, CallbackThreadInitializer(true, false, "snap2p-runtime"))
        }

        override fun invoke(token: Long) {
            waiting.remove(token)?.resume(Unit)
        }
    }

    /** The callback's native address (JNA keeps it while [OnReady] lives: always). */
    private val onReady: Long by lazy { Pointer.nativeValue(CallbackReference.getFunctionPointer(OnReady)) }

    /**
     * Suspends until the send buffer has room or the stream can no longer be written
     * (the next write then reports why). One native call, and one callback from the
     * session driver when room opens, in place of the generated async [Stream.writable]
     * (a uniffi future: five native calls and their call statuses per wait).
     */
    suspend fun awaitWritable(handle: Handle) = awaitReady { token -> snap2p_uniffi_stream_writable_raw(handle.weak, onReady, token) }

    /**
     * Suspends until a read would answer (bytes, the end or an error are there), taking
     * nothing: one native call, and one callback from the session driver when data comes.
     */
    suspend fun awaitReadable(handle: Handle) = awaitReady { token -> snap2p_uniffi_stream_readable_raw(handle.weak, onReady, token) }

    /** One native wait: [register] returns 0 if [OnReady] will be called with the token. */
    private suspend inline fun awaitReady(crossinline register: (Long) -> Long) {
        suspendCancellableCoroutine<Unit> { cont ->
            val token = nextToken.getAndIncrement()
            waiting[token] = cont
            // A cancelled wait forgets its continuation; the native callback then finds none.
            cont.invokeOnCancellation { waiting.remove(token) }
            if (register(token) != 0L) {
                // Ready now, or the stream cannot be used: no callback will come.
                waiting.remove(token)
                cont.resume(Unit)
            }
        }
    }

    /**
     * The next bytes of [stream], at most [max] (≤ [SCRATCH]), across the chunks they
     * arrived in; null once the peer finished. Suspends while none are there. A failed
     * stream's read is repeated through the generated [Stream.read], which throws the typed
     * [Snap2pException].
     */
    suspend fun read(stream: Stream, handle: Handle, max: Int): ByteArray? {
        val n = minOf(max, SCRATCH).coerceAtLeast(1)
        while (true) {
            val s = scratch.get()
            val got = snap2p_uniffi_stream_try_read_raw(handle.weak, s.address, n.toLong())
            when {
                got > 0L -> {
                    val out = ByteArray(got.toInt())
                    s.buf.clear()
                    s.buf.get(out)
                    return out
                }
                got == 0L -> awaitReadable(handle)
                got == END -> return null
                got == PANICKED -> throw IllegalStateException("snap2p: internal error (the core panicked) in a read")
                else -> return stream.read(n.toUInt())
            }
        }
    }

    /**
     * Reads into [dst] (from its position, at most its remaining bytes, ≥ 1) what [stream]
     * holds, across the chunks they arrived in, suspending while none are there; advances
     * the position and returns the count, or -1 once the peer finished. A direct buffer is
     * written by the core itself (one copy in all, and no 64 KiB cap: one call takes what
     * many frames brought); a heap buffer goes through the per-thread native buffer. A
     * failed stream's read is repeated through the generated [Stream.read], which throws
     * the typed [Snap2pException].
     */
    suspend fun readInto(stream: Stream, handle: Handle, dst: ByteBuffer): Int {
        val direct = dst.isDirect
        while (true) {
            val n = if (direct) dst.remaining() else minOf(dst.remaining(), SCRATCH)
            val address =
                if (direct) Pointer.nativeValue(Native.getDirectBufferPointer(dst)) + dst.position() else scratch.get().address
            val got = snap2p_uniffi_stream_try_read_raw(handle.weak, address, n.toLong())
            when {
                got > 0L -> {
                    if (direct) {
                        dst.position(dst.position() + got.toInt())
                    } else {
                        val s = scratch.get()
                        s.buf.clear()
                        s.buf.limit(got.toInt())
                        dst.put(s.buf)
                    }
                    return got.toInt()
                }
                got == 0L -> awaitReadable(handle)
                got == END -> return -1
                got == PANICKED -> throw IllegalStateException("snap2p: internal error (the core panicked) in a read")
                else -> {
                    val bytes = stream.read(n.toUInt()) ?: return -1
                    dst.put(bytes)
                    return bytes.size
                }
            }
        }
    }

    /**
     * Reads into `b[off, off + len)` (`len` ≥ 1) what [stream] holds, at most [SCRATCH]
     * bytes, across the chunks they arrived in, blocking the calling thread while none are
     * there (it parks in native code until the session driver has bytes, the end or an
     * error for it: no async call, no callback into the JVM); the count, or -1 once the
     * peer finished. A failed stream's read is repeated through the generated
     * [Stream.read], which throws the typed [Snap2pException].
     */
    fun readBlocking(stream: Stream, handle: Handle, b: ByteArray, off: Int, len: Int): Int {
        val n = minOf(len, SCRATCH)
        val s = scratch.get()
        val got = snap2p_uniffi_stream_read_blocking_raw(handle.weak, s.address, n.toLong())
        return when {
            got > 0L -> {
                s.buf.clear()
                s.buf.get(b, off, got.toInt())
                got.toInt()
            }
            got == END -> -1
            got == ON_RUNTIME -> throw IllegalStateException("blocking read on a snap2p runtime thread")
            got == PANICKED -> throw IllegalStateException("snap2p: internal error (the core panicked) in a read")
            else -> {
                val bytes = kotlinx.coroutines.runBlocking { stream.read(n.toUInt()) } ?: return -1
                bytes.copyInto(b, off)
                bytes.size
            }
        }
    }

    /** How many bytes a read would return now without waiting (0 at the end or after an error). */
    fun readableLen(handle: Handle): Int {
        val n = snap2p_uniffi_stream_readable_len_raw(handle.weak)
        if (n == PANICKED) throw IllegalStateException("snap2p: internal error (the core panicked) in a read")
        return n.coerceIn(0L, Int.MAX_VALUE.toLong()).toInt()
    }

    /**
     * Queues what the send buffer has room for of `data[off, off + len)`, at most [SCRATCH]
     * bytes, without waiting; returns how many bytes were taken (0: the buffer is full).
     * If the stream refuses the bytes, the call is repeated through [Stream.tryWrite],
     * which throws the typed [Snap2pException].
     */
    fun tryWrite(stream: Stream, handle: Handle, data: ByteArray, off: Int, len: Int): Int {
        val n = minOf(len, SCRATCH)
        val s = scratch.get()
        s.buf.clear()
        s.buf.put(data, off, n)
        val taken = snap2p_uniffi_stream_try_write_raw(handle.weak, s.address, n.toLong())
        if (taken >= 0) return taken.toInt()
        if (taken == PANICKED) throw panicked()
        return stream.tryWrite(data.copyOfRange(off, off + n)).toInt()
    }

    /**
     * Queues all of `data[off, off + len)`, blocking the calling thread while the send
     * buffer is full (the thread parks in native code until the session driver makes room:
     * no async call, no callback into the JVM). If the stream refuses the bytes, throws the
     * typed [Snap2pException] that [Stream.tryWrite] reports for it.
     */
    fun writeBlocking(stream: Stream, handle: Handle, data: ByteArray, off: Int, len: Int) {
        val s = scratch.get()
        var done = 0
        while (done < len) {
            val n = minOf(len - done, SCRATCH)
            s.buf.clear()
            s.buf.put(data, off + done, n)
            val r = snap2p_uniffi_stream_write_blocking_raw(handle.weak, s.address, n.toLong())
            if (r == ON_RUNTIME) throw IllegalStateException("blocking write on a snap2p runtime thread")
            // Not a refusal: probing with a one-byte write could queue that byte.
            if (r == PANICKED) throw panicked()
            if (r < 0) {
                // Refusals are final (closed, reset, finished, session over, released): the
                // generated call reports the same refusal as a typed error (or, released,
                // IllegalStateException), and takes nothing.
                stream.tryWrite(byteArrayOf(0))
                throw IllegalStateException("the stream refused a write but reports no error")
            }
            done += n
        }
    }
}
