package io.snap2p

import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.TimeoutCancellationException
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.fail
import java.io.File
import java.security.MessageDigest

/**
 * Runs a suspending test body with a hard deadline. Returns Unit on purpose: JUnit 5
 * silently skips test methods that return a value.
 */
fun runTest(seconds: Long = 60, block: suspend CoroutineScope.() -> Unit) {
    runBlocking { withTimeout(seconds * 1000) { block() } }
}

/**
 * Runs one awaited step of a test with its own deadline, so a hang names the step that
 * hung instead of surfacing as the whole test's timeout.
 */
suspend fun <T> step(what: String, millis: Long = 15_000, block: suspend CoroutineScope.() -> T): T =
    step({ what }, millis, block)

/** [step] whose description is computed when it times out (to report the state then). */
suspend fun <T> step(what: () -> String, millis: Long = 15_000, block: suspend CoroutineScope.() -> T): T =
    try {
        withTimeout(millis, block)
    } catch (e: TimeoutCancellationException) {
        throw AssertionError("timed out after $millis ms: ${what()}", e)
    }

/** Asserts that [block] throws a [Snap2pException] with protocol [code] and [name]. */
suspend fun expectError(code: ULong, name: String, block: suspend () -> Unit): Snap2pException.Failure {
    try {
        block()
    } catch (e: Snap2pException.Failure) {
        assertEquals(code, e.code, "unexpected error $e")
        assertEquals(name, e.name)
        return e
    }
    fail<Unit>("expected $name ($code)")
    throw IllegalStateException()
}

fun sha256(vararg parts: ByteArray): ByteArray =
    MessageDigest.getInstance("SHA-256").apply { parts.forEach { update(it) } }.digest()

fun ByteArray.hex(): String = joinToString("") { "%02x".format(it) }

fun String.unhex(): ByteArray = chunked(2).map { it.toInt(16).toByte() }.toByteArray()

/** Deterministic pseudo-random bytes (xorshift) so both ends can be checked. */
fun pattern(size: Int, seed: Long = 0x5eed): ByteArray {
    var x = seed
    return ByteArray(size) {
        x = x xor (x shl 13); x = x xor (x ushr 7); x = x xor (x shl 17)
        x.toByte()
    }
}

object Proc {
    fun fds(): Int = File("/proc/self/fd").list()!!.size

    /** The names (`comm`) of this process's threads. */
    fun threadNames(): List<String> =
        File("/proc/self/task").listFiles().orEmpty().mapNotNull { task ->
            runCatching { File(task, "comm").readText().trim() }.getOrNull()
        }

    /**
     * Threads the snap2p core started (its tokio runtime names every worker and blocking
     * thread "snap2p"). The JVM's and the coroutine dispatchers' pools grow and shrink on
     * their own schedule (Dispatchers.IO keeps idle threads for a minute), so a leak check
     * counts only these.
     */
    fun snap2pThreads(): Int = threadNames().count { it.startsWith("snap2p") }
}
