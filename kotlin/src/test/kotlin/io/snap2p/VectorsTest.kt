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

/**
 * Every shared vector file (core/tests/vectors/NAME.json) against its schema
 * (core/tests/vectors/schema/NAME.schema.json): the JSON Schema subset those schemas use, as
 * every language's suite checks it.
 */
class VectorSchemaTest {
    private val dir: File by lazy {
        val p = System.getProperty("snap2p.vectors")
        if (p != null) File(p).parentFile else File("../core/tests/vectors")
    }

    private fun read(f: File): Any = org.json.JSONTokener(f.readText()).nextValue()

    /**
     * The schema with every `{"$ref": "#/$defs/NAME"}` replaced by that definition of its
     * `$defs` (dropped); a reference to anything else is an error.
     */
    private fun resolve(s: Any?, defs: JSONObject, depth: Int = 0): Any? {
        check(depth <= 64) { "\$ref nested too deep (a cycle?)" }
        return when (s) {
            is JSONObject -> if (s.has("\$ref")) {
                val ref = s.getString("\$ref")
                val name = ref.removePrefix("#/\$defs/")
                check(name != ref && defs.has(name)) { "unresolved \$ref $ref" }
                resolve(defs.get(name), defs, depth + 1)
            } else {
                JSONObject().also { out ->
                    for (k in s.keySet()) if (k != "\$defs") out.put(k, resolve(s.get(k), defs, depth + 1))
                }
            }
            is org.json.JSONArray -> org.json.JSONArray().also { out ->
                for (i in 0 until s.length()) out.put(resolve(s.get(i), defs, depth + 1))
            }
            else -> s
        }
    }

    /** A schema file, its references resolved. */
    private fun schema(name: String): JSONObject {
        val s = read(File(dir, "schema/$name")) as JSONObject
        return resolve(s, s.optJSONObject("\$defs") ?: JSONObject()) as JSONObject
    }

    private fun norm(v: Any?): Any? = when (v) {
        null, org.json.JSONObject.NULL -> null
        is Int -> v.toLong()
        is Long -> v
        is java.math.BigInteger -> v.toLong()
        else -> v
    }

    private fun typeOk(v: Any?, t: String): Boolean = when (t) {
        "object" -> v is org.json.JSONObject
        "array" -> v is org.json.JSONArray
        "string" -> v is String
        "integer" -> v is Int || v is Long || v is java.math.BigInteger
        "boolean" -> v is Boolean
        "null" -> v == null || v == org.json.JSONObject.NULL
        else -> error("unknown type $t")
    }

    private fun validate(v: Any?, s: org.json.JSONObject, at: String, errs: MutableList<String>) {
        if (s.has("type")) {
            val t = s.get("type")
            val types = if (t is org.json.JSONArray) (0 until t.length()).map { t.getString(it) } else listOf(t as String)
            if (types.none { typeOk(v, it) }) { errs.add("$at: not $t"); return }
        }
        if (s.has("enum")) {
            val e = s.getJSONArray("enum")
            if ((0 until e.length()).none { norm(e.get(it)) == norm(v) }) errs.add("$at: $v not in enum")
        }
        if (s.has("pattern") && v is String && !Regex(s.getString("pattern")).containsMatchIn(v)) {
            errs.add("$at: ${v.take(60)} !~ ${s.getString("pattern")}")
        }
        val n = norm(v)
        if (n is Long) {
            if (s.has("minimum") && n < s.getLong("minimum")) errs.add("$at: below minimum")
            if (s.has("maximum") && n > s.getLong("maximum")) errs.add("$at: above maximum")
        }
        if (v is org.json.JSONObject) {
            val props = s.optJSONObject("properties") ?: org.json.JSONObject()
            val req = s.optJSONArray("required") ?: org.json.JSONArray()
            for (i in 0 until req.length()) if (!v.has(req.getString(i))) errs.add("$at: missing ${req.getString(i)}")
            val ap = s.opt("additionalProperties")
            for (k in v.keySet()) {
                when {
                    props.has(k) -> validate(v.get(k), props.getJSONObject(k), "$at.$k", errs)
                    ap == false -> errs.add("$at: unexpected key $k")
                    ap is org.json.JSONObject -> validate(v.get(k), ap, "$at.$k", errs)
                }
            }
        }
        if (v is org.json.JSONArray) {
            if (s.has("minItems") && v.length() < s.getInt("minItems")) errs.add("$at: too few items")
            val items = s.optJSONObject("items")
            if (items != null) for (i in 0 until v.length()) validate(v.get(i), items, "$at[$i]", errs)
        }
    }

    @Test
    fun everyVectorFileMatchesItsSchema() {
        val files = dir.listFiles { f -> f.name.endsWith(".json") }!!.map { it.name }.sorted()
        val schemas = File(dir, "schema").listFiles()!!.map { it.name.replace(".schema.json", ".json") }.sorted()
        assertEquals(files, schemas)
        for (f in files) {
            val errs = mutableListOf<String>()
            val schema = schema(f.replace(".json", ".schema.json"))
            validate(read(File(dir, f)), schema, "$", errs)
            assertEquals(emptyList<String>(), errs.take(10), f)
        }
        // The validator notices a broken file.
        val bad = read(File(dir, "messages.json")) as org.json.JSONObject
        val msgs = bad.getJSONArray("messages")
        msgs.getJSONObject(0).remove("t")
        msgs.getJSONObject(1).getJSONObject("types").put("att", "blob")
        msgs.getJSONObject(2).put("cbor_hex", "A3")
        bad.put("extra", 1)
        val errs = mutableListOf<String>()
        validate(bad, schema("messages.schema.json"), "$", errs)
        assertEquals(4, errs.size, errs.toString())
    }

    @Test
    fun theValidatorFollowsDefsReferences() {
        val bad = read(File(dir, "handshake.json")) as JSONObject
        bad.getJSONObject("stealth_hs2_aes_gcm").getJSONObject("responder").remove("principal")
        bad.getJSONObject("public").getJSONObject("initiator").getJSONObject("hello").put("extra", 1)
        val errs = mutableListOf<String>()
        validate(bad, schema("handshake.schema.json"), "$", errs)
        assertEquals(
            listOf("$.public.initiator.hello: unexpected key extra", "$.stealth_hs2_aes_gcm.responder: missing principal"),
            errs.sorted(),
        )
        val dangling = JSONObject("{\"items\": {\"\$ref\": \"#/\$defs/nowhere\"}}")
        val e = org.junit.jupiter.api.assertThrows<IllegalStateException> { resolve(dangling, JSONObject()) }
        assertTrue(e.message!!.contains("unresolved"), e.message)
    }

    @Test
    fun messageFramesAreVarintLengthThenCbor() {
        val msgs = (read(File(dir, "messages.json")) as org.json.JSONObject).getJSONArray("messages")
        for (i in 0 until msgs.length()) {
            val m = msgs.getJSONObject(i)
            val cbor = m.getString("cbor_hex")
            var n = cbor.length / 2
            val prefix = StringBuilder()
            do {
                var b = n and 0x7f
                n = n ushr 7
                if (n != 0) b = b or 0x80
                prefix.append(String.format("%02x", b))
            } while (n != 0)
            assertEquals(prefix.toString() + cbor, m.getString("frame_hex"), m.getString("name"))
            assertEquals(m.getJSONObject("types").keySet(), m.getJSONObject("fields").keySet())
        }
    }
}
