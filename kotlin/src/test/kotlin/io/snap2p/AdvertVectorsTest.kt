package io.snap2p

import org.json.JSONObject
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.io.File

/**
 * The shared endpoint-advert vectors (core/tests/vectors/adverts.json, docs/PROTOCOL.md §34)
 * through issueAdvert, decodeAdvert and verifyAdvert: each valid advert re-issued byte for
 * byte from its inputs, its fields, signing input and signature, verification at the
 * vector's time; each invalid one refused with its code and reason (the checks of
 * core/tests/discovery_adverts.rs).
 */
class AdvertVectorsTest {
    private val v: JSONObject by lazy {
        JSONObject(File("../core/tests/vectors/adverts.json").readText())
    }

    private fun JSONObject.objects(key: String): List<JSONObject> {
        val a = getJSONArray(key)
        return (0 until a.length()).map { a.getJSONObject(it) }
    }

    private fun JSONObject.strings(key: String): List<String> {
        val a = getJSONArray(key)
        return (0 until a.length()).map { a.getString(it) }
    }

    @Test
    fun formatVersionDomainAndCounts() {
        assertEquals(1, v.getInt("format_version"))
        assertEquals("snap2p-endpoint-advert-v1", v.getString("domain"))
        assertTrue(v.getJSONArray("valid").length() >= 3)
        assertTrue(v.getJSONArray("invalid").length() >= 10)
    }

    @Test
    fun validAdvertsReissuedDecodedAndVerified() {
        for (a in v.objects("valid")) {
            val name = a.getString("name")
            val wire = issueAdvert(
                a.getString("node_seed").unhex(),
                a.getString("attestation").unhex(),
                a.strings("locators"),
                a.getLong("seq").toULong(),
                a.getLong("issued_at"),
                a.getLong("ttl_secs"),
            )
            assertEquals(a.getString("advert"), wire.hex(), name)
            assertEquals(a.getInt("encoded_len"), wire.size, name)
            val checked = verifyAdvert(wire, a.getLong("verify_at"), a.getString("node_key").unhex(), a.getString("principal"))
            for (d in listOf(decodeAdvert(wire), checked)) {
                assertEquals(a.getString("principal"), d.principal, name)
                assertEquals(a.getString("node_key"), d.nodeKey.hex(), name)
                assertEquals(a.getLong("seq").toULong(), d.seq, name)
                assertEquals(a.getLong("issued_at"), d.issuedAt, name)
                assertEquals(a.getLong("expires_at"), d.expiresAt, name)
                assertEquals(a.strings("locators"), d.locators, name)
                assertEquals(a.getString("attestation"), d.attestation.hex(), name)
                assertEquals(a.getString("signature"), d.signature.hex(), name)
                assertEquals(a.getString("signing_input"), d.signingInput.hex(), name)
                assertEquals(a.getString("advert"), d.encoded.hex(), name)
            }
            val e = runCatching { verifyAdvert(wire, a.getLong("expires_at") + 100_000) }.exceptionOrNull()
            assertEquals("ERR_AUTH_EXPIRED", (e as Snap2pException.Failure).name, name)
        }
    }

    @Test
    fun invalidAdvertsRefusedWithCodeAndReason() {
        for (n in v.objects("invalid")) {
            val name = n.getString("name")
            val e = runCatching {
                verifyAdvert(
                    n.getString("advert").unhex(),
                    n.getLong("verify_at"),
                    n.optString("expected_node_key", "").takeIf { it.isNotEmpty() }?.unhex(),
                    n.optString("expected_principal", "").takeIf { it.isNotEmpty() },
                )
            }.exceptionOrNull()
            val f = e as? Snap2pException.Failure ?: throw AssertionError("$name: $e")
            assertEquals(n.getString("error"), f.name, name)
            assertEquals(errorCodeName(f.code), f.name, name)
            assertTrue(f.reason.startsWith(n.getString("reason") + ":"), "$name: ${f.reason}")
        }
    }
}
