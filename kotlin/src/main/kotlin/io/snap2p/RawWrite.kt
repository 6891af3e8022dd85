package io.snap2p

import com.sun.jna.Native
import com.sun.jna.NativeLibrary
import com.sun.jna.Pointer
import java.nio.ByteBuffer

/**
 * The native half of [writeAll]'s fast path: `snap2p_uniffi_stream_try_write_raw`
 * (bindings/src/raw.rs), bound with JNA direct mapping and only integer arguments, so the
 * call itself allocates nothing. The generated [Stream.tryWrite] makes three JNA calls
 * (clone the handle, allocate a RustBuffer, the call) and allocates a JNA `Structure` with
 * native memory, registered with a cleaner, for the RustBuffer and for each call status;
 * the collector's work on those was most of a Kotlin sender's overhead
 * (docs/BENCHMARKS.md). Here the bytes are copied into a per-thread native buffer, from
 * which the core copies them into the stream's send buffer; the only other native call is
 * the handle clone every generated method makes.
 */
internal object RawWrite {
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
        Native.register(RawWrite::class.java, NativeLibrary.getInstance(name))
        true
    } catch (e: Throwable) {
        false
    }

    @JvmStatic
    private external fun snap2p_uniffi_stream_try_write_raw(stream: Long, data: Long, len: Long): Long

    @JvmStatic
    private external fun snap2p_uniffi_stream_write_blocking_raw(stream: Long, data: Long, len: Long): Long

    /**
     * Queues what the send buffer has room for of `data[off, off + len)`, at most [SCRATCH]
     * bytes, without waiting; returns how many bytes were taken (0: the buffer is full).
     * If the stream refuses the bytes, the call is repeated through [Stream.tryWrite],
     * which throws the typed [Snap2pException].
     */
    fun tryWrite(stream: Stream, data: ByteArray, off: Int, len: Int): Int {
        val n = minOf(len, SCRATCH)
        val s = scratch.get()
        s.buf.clear()
        s.buf.put(data, off, n)
        // callWithHandle keeps the object alive and passes a clone of its handle, which the
        // native call consumes (as every generated method does).
        val taken = stream.callWithHandle { handle ->
            snap2p_uniffi_stream_try_write_raw(handle, s.address, n.toLong())
        }
        if (taken >= 0) return taken.toInt()
        return stream.tryWrite(data.copyOfRange(off, off + n)).toInt()
    }

    /**
     * Queues all of `data[off, off + len)`, blocking the calling thread while the send
     * buffer is full (the thread parks in native code until the session driver makes room:
     * no async call, no callback into the JVM). If the stream refuses the bytes, throws the
     * typed [Snap2pException] that [Stream.tryWrite] reports for it.
     */
    fun writeBlocking(stream: Stream, data: ByteArray, off: Int, len: Int) {
        val s = scratch.get()
        var done = 0
        while (done < len) {
            val n = minOf(len - done, SCRATCH)
            s.buf.clear()
            s.buf.put(data, off + done, n)
            val r = stream.callWithHandle { handle ->
                snap2p_uniffi_stream_write_blocking_raw(handle, s.address, n.toLong())
            }
            if (r == -2L) throw IllegalStateException("blocking write on a snap2p runtime thread")
            if (r < 0) {
                // Refusals are final (closed, reset, finished, session over): the generated
                // call reports the same refusal as a typed error, and takes nothing.
                stream.tryWrite(byteArrayOf(0))
                throw IllegalStateException("the stream refused a write but reports no error")
            }
            done += n
        }
    }
}
