package io.snap2p

import kotlinx.coroutines.launch
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.io.File
import java.nio.file.Files
import java.util.concurrent.TimeUnit

/**
 * A test CA and a certificate for localhost and 127.0.0.1 it signed, made with `openssl`
 * (PEM files: ca.pem, cert.pem, key.pem in a fresh directory).
 */
object TestPki {
    val dir: File by lazy {
        val d = Files.createTempDirectory("snap2p-wss").toFile()
        d.deleteOnExit()
        val ec = arrayOf("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
        openssl(d, "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=snap2p test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
        openssl(d, "req", *ec, "-keyout", "key.pem", "-out", "leaf.csr", "-subj", "/CN=localhost")
        File(d, "leaf.ext").writeText(
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
        )
        openssl(d, "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "cert.pem", "-days", "2", "-extfile", "leaf.ext")
        d
    }

    fun path(name: String): String = File(dir, name).path

    private fun openssl(dir: File, vararg args: String) {
        val p = ProcessBuilder("openssl", *args).directory(dir).redirectErrorStream(true).start()
        val out = p.inputStream.bufferedReader().readText()
        check(p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0) { "openssl ${args.joinToString(" ")}: $out" }
    }
}

/** wss:// through PeerOptions' TLS files (the core's WebSocket transport with them). */
class WssTest {
    @Test
    fun wssListenerAndDialerWithACustomRoot() = runTest {
        val server = Peer.create(
            PeerOptions(tlsCertFile = TestPki.path("cert.pem"), tlsKeyFile = TestPki.path("key.pem"))
        )
        val bound = server.listen("wss://127.0.0.1:0/snap2p")
        val port = bound.substringAfterLast(':')
        assertEquals(listOf("wss://127.0.0.1:$port/snap2p"), server.listenLocators())
        assertEquals(listOf(bound), server.listenAddrs())
        val echo = launch {
            repeat(2) {
                val c = server.accept() ?: return@launch
                val s = c.acceptStream()
                s.writeAndFinish(s.readToEnd(4uL shl 20))
            }
        }

        // Trusting the test CA, by name and by IP address (both in the certificate).
        val client = Peer.create(PeerOptions(tlsRootFile = TestPki.path("ca.pem")))
        for (target in listOf("wss://localhost:$port/snap2p", "wss://127.0.0.1:$port/snap2p")) {
            val conn = step("dial $target") { client.dial(target, expect = server.principal()) }
            val data = pattern(1 shl 20, seed = target.hashCode().toLong())
            val s = conn.openStream("echo")
            s.writeAndFinish(data)
            assertArrayEquals(data, s.readToEnd(2uL shl 20))
            assertEquals("wss", conn.stats().transport)
            conn.shutdown(0u, "done")
            listOf(s, conn).forEach { it.close() }
        }
        echo.join()

        // Without the test CA (Mozilla's roots only) the TLS handshake fails, with the code.
        val stranger = Peer.create(PeerOptions())
        val e = expectError(8u, "ERR_HANDSHAKE_FAILED") { stranger.dial("wss://localhost:$port/snap2p") }
        assertTrue(e.reason.contains("UnknownIssuer"), e.reason)
        assertTrue(server.connections().size <= 1)

        listOf(client, stranger, server).forEach { it.shutdown(); it.close() }
    }

    @Test
    fun tlsOptionsAreChecked() = runTest {
        // A certificate without its key, a missing file, a wss listener without a certificate.
        expectError(25u, "ERR_INVALID_ARGUMENT") { Peer.create(PeerOptions(tlsCertFile = TestPki.path("cert.pem"))) }
        expectError(25u, "ERR_INVALID_ARGUMENT") {
            Peer.create(PeerOptions(tlsRootFile = TestPki.path("no-such-file.pem")))
        }
        val plain = Peer.create(PeerOptions())
        expectError(25u, "ERR_INVALID_ARGUMENT") { plain.listen("wss://127.0.0.1:0") }
        plain.shutdown()
        plain.close()
    }
}
