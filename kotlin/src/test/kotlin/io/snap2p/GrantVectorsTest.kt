package io.snap2p

import org.json.JSONArray
import org.json.JSONObject
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.io.File

/**
 * The shared PermissionGrant vectors (core/tests/vectors/grants.json) through decodeGrant,
 * verifyGrant, nodeGrantDecision and Signer.issueGrantWithNonce: the same checks as
 * core/tests/permissions.rs.
 */
class GrantVectorsTest {
    private val v: JSONObject by lazy {
        JSONObject(File("../core/tests/vectors/grants.json").readText())
    }

    private fun JSONObject.objects(key: String): List<JSONObject> {
        val a = getJSONArray(key)
        return (0 until a.length()).map { a.getJSONObject(it) }
    }

    private fun JSONArray.strings(): List<String> = (0 until length()).map { getString(it) }

    private fun form(name: String): SignatureForm = when (name) {
        "digest" -> SignatureForm.DIGEST
        "stacks_message" -> SignatureForm.STACKS_MESSAGE
        else -> throw AssertionError("form $name")
    }

    /** The error name a call fails with, or null when it succeeds. */
    private fun failure(block: () -> Unit): String? = try {
        block()
        null
    } catch (e: Snap2pException.Failure) {
        e.name
    }

    @Test
    fun formatVersionAndCounts() {
        assertEquals(1, v.getInt("format_version"))
        assertEquals(4, v.getJSONArray("grants").length())
        assertTrue(v.getJSONArray("negative").length() >= 10)
        assertTrue(v.getJSONArray("node").length() >= 1)
    }

    @Test
    fun decodedFieldsDerivedBytesAndVerification() {
        for (g in v.objects("grants")) {
            val name = g.getString("name")
            val wire = g.getString("wire_hex").unhex()
            val d = decodeGrant(wire)
            assertEquals(g.getString("id"), d.id, name)
            assertEquals(1uL, d.version, name)
            assertEquals(g.getString("issuer"), d.issuer, name)
            assertEquals(g.getString("holder"), d.holder, name)
            assertEquals(g.getJSONArray("labels").strings(), d.labels, name)
            assertEquals(g.getBoolean("delegable"), d.delegable, name)
            assertEquals(g.getString("parent_hex"), d.parent?.hex() ?: "", name)
            assertEquals(g.getLong("issued_at"), d.issuedAt, name)
            assertEquals(g.getLong("expires_at"), d.expiresAt, name)
            assertEquals(g.getString("nonce_hex"), d.nonce.hex(), name)
            assertEquals(form(g.getString("form")), d.form, name)
            assertEquals(65, d.signature.size, name)
            assertEquals(g.getString("signing_bytes_hex"), d.signingBytes.hex(), name)
            assertEquals(g.getString("message_text"), d.messageText, name)
            assertEquals(g.getString("signed_digest_hex"), d.signedDigest.hex(), name)
            assertEquals(g.getString("wire_hex"), d.wire.hex(), name)

            val parent = verifyGrant(wire, g.getLong("verify_now"))
            if (g.getString("parent_hex").isEmpty()) {
                assertNull(parent, name)
            } else {
                assertEquals(decodeGrant(g.getString("parent_hex").unhex()).id, parent, name)
            }
            assertEquals("ERR_AUTH_EXPIRED", failure { verifyGrant(wire, g.getLong("expires_at") + 100_000) }, name)
        }
    }

    @Test
    fun negativeWireFormsFailWithTheirCode() {
        for (n in v.objects("negative")) {
            val got = failure { verifyGrant(n.getString("wire_hex").unhex(), n.getLong("now")) }
            assertEquals(n.getString("error"), got, n.getString("name"))
        }
        assertEquals("ERR_AUTH_INVALID", failure { decodeGrant(byteArrayOf(0xa0.toByte())) })
    }

    @Test
    fun nodeDecisions() {
        val grants = v.objects("grants").associateBy { it.getString("name") }
        for (n in v.objects("node")) {
            val g = grants.getValue(n.getString("grant"))
            val expected = if (n.isNull("error")) null else n.getString("error")
            var ids: List<String> = emptyList()
            val got = failure {
                ids = nodeGrantDecision(
                    g.getString("wire_hex").unhex(),
                    n.getJSONArray("owners").strings(),
                    n.getJSONArray("revoked").strings(),
                    n.getString("presenter"),
                    n.getLong("now"),
                )
            }
            assertEquals(expected, got, n.getString("name"))
            if (expected == null) assertEquals(g.getString("id"), ids.last(), n.getString("name"))
        }
    }

    @Test
    fun reissuedByteForByte() = runTest {
        for (g in v.objects("grants")) {
            val parentHex = g.getString("parent_hex")
            Signer.fromMnemonicWithForm(
                v.getString("mnemonic"),
                g.getInt("issuer_account").toUInt(),
                Network.MAINNET,
                form(g.getString("form")),
            ).use { w ->
                assertEquals(g.getString("issuer"), w.principal())
                val wire = w.issueGrantWithNonce(
                    g.getString("holder"),
                    g.getJSONArray("labels").strings(),
                    g.getLong("issued_at"),
                    g.getLong("expires_at") - g.getLong("issued_at"),
                    g.getString("nonce_hex").unhex(),
                    g.getBoolean("delegable"),
                    if (parentHex.isEmpty()) null else parentHex.unhex(),
                )
                assertEquals(g.getString("wire_hex"), wire.hex(), g.getString("name"))
            }
        }
    }
}
