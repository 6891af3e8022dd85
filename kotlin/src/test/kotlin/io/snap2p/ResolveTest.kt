package io.snap2p

import com.sun.net.httpserver.HttpServer
import kotlinx.coroutines.delay
import org.json.JSONObject
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.io.File
import java.net.InetSocketAddress
import java.time.Duration

/**
 * The resolver chain on a Peer (issue 30, docs/PROTOCOL.md §35.5) through
 * `PeerOptions.resolver` and `Peer.resolve`: a real resolve through the px-1 step over
 * loopback, a BNS name through two local Stacks API servers answering with the recorded
 * response shapes of core/tests/fixtures/bns (see its README; core/tests/bns_http.rs
 * serves the same documents), and the error paths with the core's codes.
 */
class ResolveTest {
    private val fixtures = File("../core/tests/fixtures/bns")
    private val noSuchName = File(fixtures, "bns-no-such-name.example.json").readBytes()

    /** The recorded 200 document for a name owned by [principal], [locators] in its zonefile. */
    private fun nameDocument(principal: String, locators: List<String>): ByteArray {
        val doc = JSONObject(File(fixtures, "get-name-info.response.example.json").readText())
        doc.put("address", principal.removePrefix("stacks:"))
        doc.put("blockchain", "stacks")
        if (locators.isNotEmpty()) {
            val txt = locators.joinToString(" ") { "\"$it\"" }
            doc.put("zonefile", doc.getString("zonefile") + "_snap2p IN TXT $txt\n")
        }
        return doc.toString().toByteArray()
    }

    /** A Stacks API server on loopback answering `GET /v1/names/{name}` with [body] (null: 404). */
    private fun stacksApi(body: ByteArray?, servers: MutableList<HttpServer>): String {
        val server = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0)
        server.createContext("/") { ex ->
            val ok = ex.requestMethod == "GET" && ex.requestURI.path.startsWith("/v1/names/") && body != null
            val out = if (ok) body!! else noSuchName
            ex.responseHeaders.add("content-type", "application/json")
            ex.sendResponseHeaders(if (ok) 200 else 404, out.size.toLong())
            ex.responseBody.use { it.write(out) }
        }
        server.start()
        servers.add(server)
        return "http://127.0.0.1:${server.address.port}"
    }

    @Test
    fun px1AnswersOverLoopback() = runTest {
        val hub = Peer.create(PeerOptions())
        val hubAddr = hub.listen("127.0.0.1:0")
        val target = Peer.create(PeerOptions())
        val bound = target.listen("127.0.0.1:0")
        target.dial(hubAddr, expect = hub.principal())
        val stranger = Peer.create(
            PeerOptions(
                resolver = ResolverOptions(
                    steps = listOf("cache", "px-1"),
                    timeouts = mapOf("px-1" to Duration.ofSeconds(3)),
                ),
            ),
        )
        stranger.dial(hubAddr, expect = hub.principal())
        // The hub learns the target's locators just after the target's AUTH_OK.
        var r: ResolveReport? = null
        for (i in 0 until 100) {
            try {
                r = stranger.resolve(target.principal())
                break
            } catch (e: Snap2pException.Failure) {
                if (i == 99 || e.name != "ERR_NOT_FOUND") throw e
                delay(20)
            }
        }
        checkNotNull(r)
        assertEquals(target.principal(), r.principal)
        assertNull(r.name)
        assertEquals("px-1", r.answeredBy)
        assertEquals(listOf(ResolvedLocator(bound, false)), r.locators)
        assertEquals(
            listOf(Triple("cache", "not_found", 0u), Triple("px-1", "found", 1u)),
            r.steps.map { Triple(it.name, it.outcome, it.count) },
        )
        assertTrue(r.steps.all { it.error == null && it.duration <= r.duration })
        // The hint is dialed with the principal expected: AUTH proves who is there.
        val conn = stranger.dial(r.locators[0].locator, expect = target.principal())
        assertEquals(target.principal(), conn.remotePrincipal())
        listOf(stranger, target, hub).forEach { it.shutdown(); it.close() }
    }

    @Test
    fun nothingFoundAndBadOptions() = runTest {
        val lonely = Peer.create(PeerOptions(resolver = ResolverOptions(steps = listOf("cache", "px-1", "mdns", "bns"))))
        val nobody = Peer.create(PeerOptions())
        expectError(21u, "ERR_NOT_FOUND") { lonely.resolve(nobody.principal()) }
        expectError(21u, "ERR_NOT_FOUND") { lonely.resolve(nobody.principal().removePrefix("stacks:")) }
        expectError(25u, "ERR_INVALID_ARGUMENT") { lonely.resolve("alice.btc") } // no providers
        for (bad in listOf(
            ResolverOptions(steps = listOf("cache", "nope")),
            ResolverOptions(steps = listOf("cache", "cache")),
            ResolverOptions(steps = listOf("cache"), timeouts = mapOf("dht" to Duration.ofSeconds(1))),
            ResolverOptions(timeouts = mapOf("px-1" to Duration.ZERO)),
            ResolverOptions(bnsProviders = listOf("not a url")),
        )) {
            expectError(25u, "ERR_INVALID_ARGUMENT") { Peer.create(PeerOptions(resolver = bad)) }
        }
        listOf(lonely, nobody).forEach { it.shutdown(); it.close() }
    }

    @Test
    fun bnsNameAgreeAndDisagree() = runTest {
        val servers = mutableListOf<HttpServer>()
        try {
            val owner = Peer.create(PeerOptions())
            val bound = owner.listen("127.0.0.1:0")
            val doc = nameDocument(owner.principal(), listOf(bound))
            val agree = listOf(stacksApi(doc, servers), stacksApi(doc, servers))
            val peer = Peer.create(PeerOptions(resolver = ResolverOptions(bnsProviders = agree, steps = listOf("cache", "px-1"))))
            val r = peer.resolve("Alice.BTC")
            assertEquals("alice.btc", r.name)
            assertEquals(owner.principal(), r.principal)
            assertEquals("bns-name", r.answeredBy)
            // A zonefile is a hint: only AUTH proves the owner is there.
            assertEquals(listOf(ResolvedLocator(bound, false)), r.locators)
            val conn = peer.dial(r.locators[0].locator, expect = r.principal)
            assertEquals(owner.principal(), conn.remotePrincipal())

            val other = nameDocument(owner.principal(), listOf("203.0.113.9:4000"))
            val missing = listOf(stacksApi(null, servers), stacksApi(null, servers))
            val cases = listOf(
                listOf(agree[0], stacksApi(other, servers)) to "ERR_PROVIDERS_DISAGREE",
                listOf(agree[0], missing[0]) to "ERR_PROVIDERS_DISAGREE",
                missing to "ERR_NOT_FOUND",
            )
            for ((providers, name) in cases) {
                val p = Peer.create(PeerOptions(resolver = ResolverOptions(bnsProviders = providers)))
                val code: ULong = if (name == "ERR_PROVIDERS_DISAGREE") 26u else 21u
                expectError(code, name) { p.resolve("alice.btc") }
                p.shutdown()
                p.close()
            }
            listOf(peer, owner).forEach { it.shutdown(); it.close() }
        } finally {
            servers.forEach { it.stop(0) }
        }
    }
}
