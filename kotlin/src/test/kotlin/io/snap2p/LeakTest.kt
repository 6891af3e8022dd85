package io.snap2p

import kotlinx.coroutines.delay
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

/** Shutting everything down releases sockets and the core's threads (no growth across rounds). */
class LeakTest {
    private suspend fun round() {
        val server = Peer.create(PeerOptions())
        val client = Peer.create(PeerOptions())
        val addr = server.listen("127.0.0.1:0")
        val subs = mutableListOf<Subscription>()
        subs += server.onConnection(object : ConnectionHandler {
            override suspend fun onConnection(connection: Connection) {
                subs += connection.onStream(object : StreamHandler {
                    override suspend fun onStream(stream: Stream) {
                        stream.writeAndFinish(stream.readToEnd(1_048_576u))
                    }
                })
            }
        })
        repeat(3) {
            client.dial(addr).use { conn ->
                conn.openStream().use { s ->
                    s.writeAndFinish(ByteArray(100_000) { it.toByte() })
                    check(s.readToEnd(1_048_576u).size == 100_000)
                }
            }
        }
        client.shutdown(); server.shutdown()
        synchronized(subs) { subs.toList() }.forEach { it.cancel(); it.close() }
        client.close(); server.close()
    }

    private suspend fun settle(limitFds: Int, limitThreads: Int): Pair<Int, Int> {
        var fds = Proc.fds()
        var threads = runtimeThreads().toInt()
        repeat(150) { // up to 15 s: tokio ends an idle blocking-pool thread after 10 s
            if (fds <= limitFds && threads <= limitThreads) return fds to threads
            System.gc()
            delay(100)
            fds = Proc.fds()
            threads = runtimeThreads().toInt()
        }
        return fds to threads
    }

    @Test
    fun shutdownReleasesSocketsAndThreads() = runTest(seconds = 90) {
        round() // warm-up: runtime, JNA, coroutine pools
        delay(500)
        val baseFds = Proc.fds()
        // The runtime's own count: a thread another pool starts from a snap2p thread
        // inherits the name "snap2p" on Linux, so names overcount (seen in Swift).
        val baseThreads = runtimeThreads().toInt()
        assertTrue(baseThreads >= 2, "the runtime's two workers: $baseThreads")
        assertTrue(Proc.snap2pThreads() >= 2, "the runtime's threads are named snap2p")
        repeat(5) { round() }
        val (fds, threads) = settle(baseFds, baseThreads)
        assertTrue(fds <= baseFds, "file descriptors leaked: $baseFds -> $fds")
        assertTrue(threads <= baseThreads) {
            "snap2p runtime threads leaked: $baseThreads -> $threads; all threads now: ${Proc.threadNames().sorted()}"
        }
    }
}
