package io.snap2p

import org.json.JSONObject
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.io.File

/** The shared identity vectors (core/tests/vectors/identity.json), checked through Kotlin. */
class VectorsTest {
    private val vectors: JSONObject by lazy {
        val path = System.getProperty("snap2p.vectors") ?: "../core/tests/vectors/identity.json"
        JSONObject(File(path).readText())
    }

    @Test
    fun addressesRoundTrip() {
        val list = vectors.getJSONArray("addresses")
        assertTrue(list.length() > 0)
        for (i in 0 until list.length()) {
            val v = list.getJSONObject(i)
            val info = parseAddress(v.getString("address"))
            assertEquals(v.getInt("version"), info.version.toInt())
            assertEquals(v.getString("hash160"), info.hash160.hex())
            assertEquals("stacks:" + v.getString("address"), info.principal)
            assertEquals(v.getString("address"), principalFromHash160(info.version, v.getString("hash160").unhex()))
        }
    }

    @Test
    fun messageHashes() {
        val list = vectors.getJSONArray("message_hashes")
        for (i in 0 until list.length()) {
            val v = list.getJSONObject(i)
            assertEquals(v.getString("hash"), stacksMessageHash(v.getString("message")).hex())
        }
    }

    @Test
    fun mnemonicAccounts() {
        val list = vectors.getJSONArray("mnemonics")
        for (i in 0 until list.length()) {
            val v = list.getJSONObject(i)
            val accounts = v.getJSONArray("accounts")
            for (j in 0 until accounts.length()) {
                val a = accounts.getJSONObject(j)
                val index = a.getInt("index").toUInt()
                Signer.fromMnemonic(v.getString("mnemonic"), index, Network.MAINNET).use {
                    assertEquals(a.getString("mainnet"), it.address())
                }
                Signer.fromMnemonic(v.getString("mnemonic"), index, Network.TESTNET).use {
                    assertEquals(a.getString("testnet"), it.address())
                }
            }
        }
    }

    @Test
    fun negativePrincipalsAreTypedErrors() = runTest {
        val list = vectors.getJSONArray("negative")
        var checked = 0
        for (i in 0 until list.length()) {
            val v = list.getJSONObject(i)
            if (v.getString("type") != "principal") continue
            val e = expectError(25u, v.getString("error")) { parsePrincipal(v.getString("input")) }
            assertTrue(e.reason.isNotEmpty())
            checked++
        }
        assertTrue(checked > 0, "no principal vectors")
    }

    @Test
    fun signatureVerifies() = runTest {
        Signer.generate(Network.TESTNET).use { signer ->
            val digest = sha256("hello".toByteArray())
            val sig = signer.sign(SignRequest.Digest(digest))
            assertEquals(65, sig.size)
            assertTrue(verifySignature(digest, sig, signer.principal()))
            assertTrue(!verifySignature(sha256("other".toByteArray()), sig, signer.principal()))
            assertArrayEquals(stacksMessageHash(""), "89da565bd5b575c8d3b4370ce0b5965eb43e51d4434680cfe72c9420f8e790b4".unhex())
            expectError(25u, "ERR_INVALID_ARGUMENT") { signer.sign(SignRequest.Digest(ByteArray(5))) }
        }
    }
}
