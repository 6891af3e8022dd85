// The Kotlin runner of the interop matrix (contract: docs/INTEROP.md).
//
//   Runner listen [--visibility V] [--allow P]… [--alias A] [--invite] [--bootstrap LOC] [--sign-form digest|message]
//                 [--ws | --wss --tls-cert PEM --tls-key PEM]
//                 [--permit RULES] [--grant-owner-mnemonic M] [--relay ADDR] [--v1]
//   Runner dial --target T [--via LOC] [--invite HEX] [--streams N] [--bytes B]
//               [--expect-principal P] [--expect-alias A] [--expect-code C] [--sign-form F]
//               [--tls-root PEM]
//               [--grant-label L --grant-owner-mnemonic M] [--expect-transport T]
//   Runner relay   (serves RELAY-1 on 127.0.0.1:0 for the relay scenario)
//
//   Runner bench-send ADDR TOTAL WRITE [--output-stream]   (benchmark hook, bench/src/bindings.rs)
//   Runner bench-recv [--read|--input-stream|--read-into]  (benchmark hook, its receive rows)
//
// Its wallet signer is Kotlin: a HostSigner (the foreign trait) the core calls back to sign
// the NodeKeyAttestation and AliasCard. It hashes Stacks messages itself and hands the
// 32-byte digest to its key holder; the secp256k1 operation is delegated to a wallet object
// of the binding (no secp256k1 library on the JVM here), as a hardware-wallet bridge would.
// Built with the Kotlin test sources (kotlin/pom.xml); run by ci/interop/runner-kotlin.sh.
package io.snap2p.interop

import io.snap2p.Connection
import io.snap2p.HostSigner
import io.snap2p.Network
import io.snap2p.Peer
import io.snap2p.PeerOptions
import io.snap2p.RelayOptions
import io.snap2p.SignRequest
import io.snap2p.SignatureForm
import io.snap2p.Signer
import io.snap2p.Snap2pException
import io.snap2p.Stream
import io.snap2p.Visibility
import io.snap2p.chunks
import io.snap2p.code
import io.snap2p.inputStream
import io.snap2p.outputStream
import io.snap2p.readInto
import io.snap2p.stacksMessageHash
import io.snap2p.writeAll
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeoutOrNull
import java.security.MessageDigest
import java.util.concurrent.ThreadLocalRandom
import kotlin.system.exitProcess

/** A host-side signer: holds its key (a wallet object standing in for the device). */
class RunnerSigner(private val key: Signer) : HostSigner {
    override suspend fun sign(request: SignRequest): ByteArray {
        val digest = when (request) {
            is SignRequest.Digest -> request.digest
            is SignRequest.Message -> stacksMessageHash(request.text)
        }
        return key.sign(SignRequest.Digest(digest))
    }
}

class Args(private val a: List<String>) {
    val mode: String = a.firstOrNull() ?: ""
    fun value(name: String): String? = a.indexOf(name).takeIf { it >= 0 }?.let { a.getOrNull(it + 1) }
    fun values(name: String): List<String> =
        a.windowed(2).filter { it[0] == name }.map { it[1] }
    fun flag(name: String): Boolean = name in a
}

// ---- JSON lines -------------------------------------------------------------------------

fun jsonString(s: String): String {
    val b = StringBuilder("\"")
    for (c in s) {
        when {
            c == '"' -> b.append("\\\"")
            c == '\\' -> b.append("\\\\")
            c == '\n' -> b.append("\\n")
            c == '\r' -> b.append("\\r")
            c == '\t' -> b.append("\\t")
            c < ' ' -> b.append(String.format("\\u%04x", c.code))
            else -> b.append(c)
        }
    }
    return b.append('"').toString()
}

fun json(v: Any?): String = when (v) {
    null -> "null"
    is String -> jsonString(v)
    is Boolean, is Int, is Long -> v.toString()
    is ULong, is UInt -> v.toString()
    is Map<*, *> -> v.entries.joinToString(",", "{", "}") { (k, x) -> jsonString(k.toString()) + ":" + json(x) }
    is List<*> -> v.joinToString(",", "[", "]") { json(it) }
    else -> jsonString(v.toString())
}

private val out = Any()

fun emit(vararg pairs: Pair<String, Any?>) {
    val line = json(linkedMapOf(*pairs))
    synchronized(out) {
        println(line)
        System.out.flush()
    }
}

fun hex(bytes: ByteArray): String = bytes.joinToString("") { "%02x".format(it) }

// ---- peer -------------------------------------------------------------------------------

suspend fun makePeer(args: Args): Peer {
    val form = if (args.value("--sign-form") == "message") SignatureForm.STACKS_MESSAGE else SignatureForm.DIGEST
    val key = Signer.generate(Network.MAINNET)
    val signer = Signer.fromHost(key.principal(), form, RunnerSigner(key))
    val visibility = when (val v = args.value("--visibility") ?: "public") {
        "public" -> Visibility.PUBLIC
        "private" -> Visibility.PRIVATE
        "stealth" -> Visibility.STEALTH
        else -> throw IllegalArgumentException("visibility $v")
    }
    val alias = args.value("--alias")
    val allow = args.values("--allow")
    val peer = Peer.create(
        PeerOptions(
            visibility = visibility,
            allowlist = allow,
            // As the Rust runner: the allowlist gates private peers (or any given --allow);
            // a stealth listener is invite-only.
            allowlistGate = visibility == Visibility.PRIVATE || allow.isNotEmpty(),
            alias = alias,
            displayName = alias?.let { "$it (kotlin)" },
            signer = signer,
            // wss: the listener's certificate and key, the dialer's extra trusted root.
            tlsCertFile = args.value("--tls-cert"),
            tlsKeyFile = args.value("--tls-key"),
            tlsRootFile = args.value("--tls-root"),
            // relay: `Runner relay` serves RELAY-1 (PROTOCOL.md §32).
            relay = if (args.mode == "relay") RelayOptions() else null,
            // --v1: the handshake of three round trips only (PROTOCOL.md §5.8).
            hs2 = !args.flag("--v1"),
        )
    )
    if (args.mode == "listen") {
        // grant: rules in their text form, and the owner wallet whose grants this node honours.
        args.value("--permit")?.let { peer.setPermissions(it) }
        args.value("--grant-owner-mnemonic")?.let { m ->
            Signer.fromMnemonic(m, 0u, Network.MAINNET).use { peer.addGrantOwner(it.principal()) }
        }
    }
    return peer
}

/** Opens [label], writes a few bytes, reads the answer: 0 when served, else the error code. */
suspend fun probe(conn: Connection, label: String): Long = try {
    val s = conn.openStream(label)
    s.write("probe".toByteArray())
    s.finish()
    s.readToEnd(128u)
    0L
} catch (e: Snap2pException) {
    e.code.toLong()
}

/** Reads a whole stream, answers with the hex SHA-256 of it. */
suspend fun serveStream(stream: Stream) {
    val h = MessageDigest.getInstance("SHA-256")
    var n = 0L
    try {
        stream.chunks().collect { chunk ->
            n += chunk.size
            h.update(chunk)
        }
        val digest = hex(h.digest())
        stream.write(digest.toByteArray())
        stream.finish()
        emit("event" to "stream", "label" to stream.label(), "bytes" to n, "sha256" to digest)
    } catch (e: Snap2pException) {
        System.err.println("stream ${stream.label()}: ${e.message}")
    }
}

fun CoroutineScope.serveConnection(conn: Connection) = launch {
    while (true) {
        val stream = try {
            conn.acceptStream()
        } catch (e: Snap2pException) {
            break
        }
        launch { serveStream(stream) }
    }
}

suspend fun listen(args: Args): Int = coroutineScope {
    val peer = makePeer(args)
    // listen() returns the bound "ip:port"; the locator is the listen locator with it.
    val locator = if (args.flag("--wss")) {
        // The full locator of the listener, named as its certificate is (localhost).
        peer.listen("wss://127.0.0.1:0/interop")
        peer.listenLocators().first { it.startsWith("wss://") }
            .replace("wss://127.0.0.1:", "wss://localhost:")
    } else if (args.flag("--ws")) {
        "ws://" + peer.listen("ws://127.0.0.1:0/interop") + "/interop"
    } else {
        peer.listen("127.0.0.1:0")
    }.let { direct ->
        // relay: also reserve on the relay at ADDR; the printed locator is the relayed one.
        args.value("--relay")?.let { r ->
            peer.listen("relay://$r")
            peer.listenLocators().first { it.startsWith("relay://") }
        } ?: direct
    }
    val invite = if (args.flag("--invite")) peer.createInvite(3600L, false).token else null
    val bootstrap = args.value("--bootstrap")?.let { peer.dial(it) }
    emit("event" to "ready", "principal" to peer.principal(), "locator" to locator, "invite" to invite)
    val acceptor = launch {
        while (true) {
            val conn = peer.accept() ?: break
            val stats = conn.stats()
            emit(
                "event" to "connection",
                "principal" to conn.remotePrincipal(),
                "transport" to stats.transport,
                "hs2" to stats.hs2,
                "handshakes_failed" to peer.stats().handshakesFailed.values.sum(),
            )
            serveConnection(conn)
        }
    }
    // Serve until the orchestrator closes our stdin.
    withContext(Dispatchers.IO) {
        val buf = ByteArray(256)
        while (System.`in`.read(buf) >= 0) { /* ignore */ }
    }
    bootstrap?.shutdown(0u, "done")
    withTimeoutOrNull(5_000) { peer.shutdown() }
    acceptor.cancel()
    0
}

// ---- dial -------------------------------------------------------------------------------

suspend fun sendOne(conn: Connection, i: Int, bytes: Long, label: String? = null): Map<String, Any?> {
    val s = conn.openStream(label ?: "interop-$i")
    val h = MessageDigest.getInstance("SHA-256")
    var left = bytes
    val rnd = ThreadLocalRandom.current()
    while (left > 0) {
        val buf = ByteArray(minOf(left, 65536L).toInt())
        rnd.nextBytes(buf)
        h.update(buf)
        s.write(buf)
        left -= buf.size
    }
    s.finish()
    val reply = s.readToEnd(128u)
    val mine = hex(h.digest())
    return linkedMapOf("sha256" to mine, "match" to (String(reply) == mine))
}

suspend fun dial(args: Args): Boolean = coroutineScope {
    val peer = makePeer(args)
    val target = args.value("--target") ?: throw IllegalArgumentException("--target")
    val started = System.nanoTime()
    val via = args.value("--via")?.let { peer.dial(it) }
    val expectCode = args.value("--expect-code")?.toULong()
    val conn = try {
        peer.dial(target, invite = args.value("--invite"))
    } catch (e: Snap2pException) {
        val ok = expectCode == e.code
        emit("event" to "result", "ok" to ok, "code" to e.code, "error" to e.message)
        withTimeoutOrNull(5_000) { peer.shutdown() }
        return@coroutineScope ok
    }
    if (expectCode != null) {
        emit("event" to "result", "ok" to false, "code" to null, "error" to "connected but an error was expected")
        conn.shutdown(0u, "done")
        withTimeoutOrNull(5_000) { peer.shutdown() }
        return@coroutineScope false
    }
    // grant: opening the label must be refused (20); then the owner wallet (account 0 of the
    // mnemonic, as a host-side signer of this runner) grants it to our principal, we present
    // the grant and label the streams with it.
    val grantLabel = args.value("--grant-label")
    var refusedCode: Long? = null
    if (grantLabel != null) {
        refusedCode = probe(conn, grantLabel)
        var error: String? = if (refusedCode == 20L) null else "refusal code $refusedCode (want 20)"
        if (error == null) {
            try {
                val key = Signer.fromMnemonic(args.value("--grant-owner-mnemonic")!!, 0u, Network.MAINNET)
                val owner = Signer.fromHost(key.principal(), SignatureForm.STACKS_MESSAGE, RunnerSigner(key))
                conn.presentGrant(owner.issueGrant(peer.principal(), listOf(grantLabel), 3600))
            } catch (e: Snap2pException) {
                error = "present: ${e.code} ${e.message}"
            }
        }
        if (error != null) {
            emit("event" to "result", "ok" to false, "refused_code" to refusedCode, "error" to error)
            conn.shutdown(0u, "done")
            withTimeoutOrNull(5_000) { peer.shutdown() }
            return@coroutineScope false
        }
    }
    val streams = args.value("--streams")?.toInt() ?: 1
    val bytes = args.value("--bytes")?.toLong() ?: 1024L
    val results = (0 until streams).map { i ->
        async(Dispatchers.Default) {
            try {
                sendOne(conn, i, bytes, grantLabel)
            } catch (e: Exception) {
                linkedMapOf<String, Any?>("error" to (e.message ?: e.toString()))
            }
        }
    }.awaitAll()
    var ok = results.all { it["match"] == true }
    var alias = conn.remoteAlias()?.alias
    args.value("--expect-alias")?.let { expected ->
        // The card follows AUTH_OK; give it a moment to arrive.
        repeat(50) {
            if (alias == expected) return@repeat
            delay(20)
            alias = conn.remoteAlias()?.alias
        }
        ok = ok && alias == expected
    }
    args.value("--expect-principal")?.let { ok = ok && conn.remotePrincipal() == it }
    val stats = conn.stats()
    val transport = stats.transport
    args.value("--expect-transport")?.let { ok = ok && transport == it }
    emit(
        "event" to "result",
        "ok" to ok,
        "principal" to conn.remotePrincipal(),
        "alias" to conn.remoteAlias()?.alias,
        "streams" to results,
        "refused_code" to refusedCode,
        "transport" to transport,
        "hs2" to stats.hs2,
        "ms" to (System.nanoTime() - started) / 1_000_000,
    )
    conn.shutdown(0u, "done")
    withTimeoutOrNull(2_000) { conn.closed() }
    via?.shutdown(0u, "done")
    withTimeoutOrNull(5_000) { peer.shutdown() }
    ok
}

// ---- benchmark hook ----------------------------------------------------------------------

/**
 * One stream of TOTAL bytes in WRITE-byte writes to the Rust bench listener (bench/), which
 * answers with the CRC-32 of what it read. Prints `RESULT <MiB/s> <1 if the CRC matched>`;
 * the clock runs from opening the stream to the reply, as for every row of that table.
 */
suspend fun benchSend(addr: String, total: Long, size: Int, blocking: Boolean = false): Int {
    val block = ByteArray(size) { ((it * 131 + 7) and 0xff).toByte() }
    val n = total / size
    val crc = java.util.zip.CRC32()
    repeat(n.toInt()) { crc.update(block) }
    val peer = Peer.create(PeerOptions(px1 = false))
    val conn = peer.dial(addr)
    // Untimed warm-up stream: 20,000 small writes let the JIT compile the write path (its
    // C2 tier compiles after ~10,000 calls; the measured stream makes a few thousand), then
    // as much as the timed stream in WRITE-sized writes, as the other senders warm up:
    // small writes never fill the send buffer, so without these the path that waits for
    // credit was still interpreted, and being compiled, in the timed stream. With a quarter
    // of the size, C2 still (re)compiled `writeAll` during the timed stream
    // (-XX:+PrintCompilation), a fifth of a core beside the sealing.
    // `blocking`: the same through the package's blocking java.io.OutputStream, on a
    // thread that may block (Dispatchers.IO), as Java code would write.
    suspend fun send(stream: Stream, chunks: List<Pair<ByteArray, Long>>) {
        if (blocking) {
            withContext(Dispatchers.IO) {
                stream.outputStream().use { out -> chunks.forEach { (b, k) -> repeat(k.toInt()) { out.write(b) } } }
            }
        } else {
            chunks.forEach { (b, k) -> repeat(k.toInt()) { stream.writeAll(b) } }
            stream.finish()
        }
    }
    val warm = conn.openStream("warm-up")
    val small = block.copyOf(minOf(size, 4096))
    send(warm, listOf(small to 20_000L, block to n))
    warm.readToEnd(16u)
    // A second warm-up stream, as long: the first write on a new stream takes the branch of
    // writeAll that takes the stream's native handle, which the code compiled on the first
    // stream never saw. Without this, the timed stream's first write threw that code away
    // (-XX:+PrintCompilation: `FlowsKt::writeAll made not entrant`) and recompiled it while
    // timed, on 2 cores beside the sealing (the JIT threads had 15 % of the sender's `perf`
    // samples, 10 % with the OutputStream, which takes the handle once, outside its loop).
    val warm2 = conn.openStream("warm-up-2")
    send(warm2, listOf(block to n))
    warm2.readToEnd(16u)
    // CPU time of the whole process (every thread: the JVM's, the core's) over the timed stream.
    val os = java.lang.management.ManagementFactory.getOperatingSystemMXBean() as com.sun.management.OperatingSystemMXBean
    val t0 = System.nanoTime()
    val cpu0 = os.processCpuTime
    val s = conn.openStream("bench")
    send(s, listOf(block to n))
    val reply = s.readToEnd(16u)
    val dt = (System.nanoTime() - t0) / 1e9
    val cpu = (os.processCpuTime - cpu0) / 1e9
    val got = reply.fold(0L) { acc, b -> (acc shl 8) or (b.toLong() and 0xff) }
    val ok = reply.size == 4 && got == crc.value
    println("RESULT %.1f %d %.4f".format(java.util.Locale.ROOT, n * size / 1048576.0 / dt, if (ok) 1 else 0, cpu))
    conn.shutdown(0u, "done")
    withTimeoutOrNull(5_000) { peer.shutdown() }
    return if (ok) 0 else 1
}

/**
 * A listener written with the package, for the native sender of the receive rows
 * (bench/src/bindings.rs). Prints `ADDR <ip:port>`, then `STREAM <bytes> <CPU seconds of
 * the process over the stream>` for each stream, which it reads to its end with `chunks()`
 * (`--read`: a loop of the generated `read(65536)` instead, for comparison;
 * `--input-stream`: `inputStream()` on `Dispatchers.IO`; `--read-into`: `readInto` into one
 * direct buffer of 1 MiB, reused) (counting
 * only: a checksum would weigh more than the read paths compared) and answers
 * with its length (8 bytes, big endian); serves until its standard input closes.
 */
suspend fun benchRecv(how: String = ""): Int = coroutineScope {
    val peer = Peer.create(PeerOptions(px1 = false))
    println("ADDR ${peer.listen("127.0.0.1:0")}")
    System.out.flush()
    val os = java.lang.management.ManagementFactory.getOperatingSystemMXBean() as com.sun.management.OperatingSystemMXBean
    val acceptor = launch {
        while (true) {
            val conn = peer.accept() ?: break
            launch {
                while (true) {
                    val s = try { conn.acceptStream() } catch (e: Snap2pException) { break }
                    launch {
                        val cpu0 = os.processCpuTime
                        var n = 0L
                        when (how) {
                            "--read" -> while (true) n += (s.read(65536u) ?: break).size
                            "--input-stream" -> withContext(Dispatchers.IO) {
                                val input = s.inputStream()
                                val buf = ByteArray(65536)
                                while (true) n += input.read(buf).takeIf { it >= 0 } ?: break
                            }
                            "--read-into" -> {
                                val buf = java.nio.ByteBuffer.allocateDirect(1 shl 20)
                                while (true) {
                                    buf.clear()
                                    n += s.readInto(buf).takeIf { it >= 0 } ?: break
                                }
                            }
                            else -> s.chunks().collect { n += it.size }
                        }
                        val cpu = (os.processCpuTime - cpu0) / 1e9
                        s.writeAll(java.nio.ByteBuffer.allocate(8).putLong(n).array())
                        s.finish()
                        println("STREAM %d %.4f".format(java.util.Locale.ROOT, n, cpu))
                        System.out.flush()
                    }
                }
            }
        }
    }
    withContext(Dispatchers.IO) {
        val buf = ByteArray(256)
        while (System.`in`.read(buf) >= 0) { /* until closed */ }
    }
    withTimeoutOrNull(5_000) { peer.shutdown() }
    acceptor.cancel()
    0
}

fun main(argv: Array<String>) {
    val args = Args(argv.toList())
    val code = try {
        runBlocking {
            when (args.mode) {
                "listen", "relay" -> listen(args)
                "dial" -> if (dial(args)) 0 else 1
                "bench-send" -> benchSend(argv[1], argv[2].toLong(), argv[3].toInt(), argv.getOrNull(4) == "--output-stream")
                "bench-recv" -> benchRecv(argv.getOrNull(1) ?: "")
                else -> {
                    System.err.println("usage: Runner listen|dial [options] (see docs/INTEROP.md) | bench-send ADDR TOTAL WRITE | bench-recv")
                    2
                }
            }
        }
    } catch (e: Exception) {
        System.err.println("runner: $e")
        e.printStackTrace()
        if (args.mode == "dial") emit("event" to "result", "ok" to false, "code" to null, "error" to e.toString())
        1
    }
    System.out.flush()
    // The native runtime's threads must not keep the JVM alive.
    exitProcess(code)
}
