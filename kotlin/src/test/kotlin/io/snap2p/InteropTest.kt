package io.snap2p

import kotlinx.coroutines.async
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.io.File
import java.util.concurrent.TimeUnit

/** Kotlin talking to a plain-Rust peer (core/examples/echo_peer.rs) in another process. */
class InteropTest {
    private fun echoPeer(): File {
        val path = System.getProperty("snap2p.echoPeer")?.takeIf { it.isNotBlank() && it != "null" }
            ?: error("set SNAP2P_ECHO_PEER (or -Dsnap2p.echoPeer) to the echo_peer binary (cargo build -p snap2p --example echo_peer)")
        return File(path).also { assertTrue(it.canExecute(), "$it is not executable") }
    }

    private inline fun <T> withRustPeer(
        vararg extra: String,
        block: (addr: String, principal: String) -> T,
    ): T {
        val proc = ProcessBuilder(echoPeer().path, "--listen", "127.0.0.1:0", *extra)
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .start()
        try {
            val line = proc.inputStream.bufferedReader().readLine() ?: error("echo peer exited")
            val parts = line.split(" ")
            assertEquals("READY", parts[0], line)
            return block(parts[1], parts[2])
        } finally {
            proc.outputStream.close() // tells the peer to shut down
            if (!proc.waitFor(10, TimeUnit.SECONDS)) proc.destroyForcibly()
            assertEquals(0, proc.exitValue())
        }
    }

    /** The TypeScript wire profile (docs/PROTOCOL.md §12) against a Rust peer listening in it. */
    @Test
    fun echoWithRustPeerInTsProfile() = runTest(seconds = 120) {
        withRustPeer("--compat", "ts") { addr, principal ->
            val peer = Peer.create(PeerOptions(compat = "ts"))
            val conn = peer.dial(addr, expect = principal)
            assertEquals(principal, conn.remotePrincipal())
            conn.openStream("echo").use { s ->
                s.writeAndFinish("compat from kotlin".toByteArray())
                assertEquals("compat from kotlin", String(s.readToEnd(1024u)))
            }
            conn.shutdown()
            conn.close()
            // A standard dialer is told which profile the listener speaks.
            val standard = Peer.create(PeerOptions())
            val e = expectError(8u, "ERR_HANDSHAKE_FAILED") { standard.dial(addr) }
            assertTrue("this peer speaks the TypeScript profile" in e.reason, "$e")
            standard.shutdown()
            standard.close()
            peer.shutdown()
            peer.close()
        }
    }

    @Test
    fun echoAndSha256WithRustPeer() = runTest(seconds = 180) {
        withRustPeer { addr, principal ->
            val peer = Peer.create(PeerOptions())
            val conn = peer.dial(addr, expect = principal)
            assertEquals(principal, conn.remotePrincipal())

            conn.openStream("echo").use { s ->
                s.writeAndFinish("from kotlin".toByteArray())
                assertEquals("from kotlin", String(s.readToEnd(1024u)))
            }

            // 64 MiB to Rust, which hashes it; both ends' SHA-256 must agree.
            val size = 64 * 1024 * 1024
            val data = pattern(size, seed = 42)
            conn.openStream("sha256").use { s ->
                val digest = async { s.readToEnd(64u) }
                var off = 0
                while (off < size) {
                    val n = minOf(1 shl 20, size - off)
                    s.write(data.copyOfRange(off, off + n))
                    off += n
                }
                s.finish()
                assertArrayEquals(sha256(data), digest.await())
            }
            conn.shutdown()
            conn.close()
            peer.shutdown()
            peer.close()
        }
    }
}
