package io.snap2p

import kotlinx.coroutines.delay
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import java.nio.file.Path
import java.util.Collections
import java.util.concurrent.atomic.AtomicInteger

/**
 * A signer implemented in Kotlin (as a keychain or hardware-wallet bridge would be): it
 * suspends, keeps its own key material (here a mnemonic wallet standing in for the device),
 * and sees every request the core makes.
 */
class KeychainSigner(private val device: Signer) : HostSigner {
    val calls = AtomicInteger()
    val requests: MutableList<SignRequest> = Collections.synchronizedList(mutableListOf())

    override suspend fun sign(request: SignRequest): ByteArray {
        calls.incrementAndGet()
        requests += request
        delay(5) // an asynchronous device round trip
        return device.sign(request)
    }
}

class HostSignerTest {
    private val mnemonic = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"

    @Test
    fun peerSignedByKotlinSigner() = runTest {
        val device = Signer.fromMnemonic(mnemonic, 0u, Network.MAINNET)
        val host = KeychainSigner(device)
        val signer = Signer.fromHost(device.principal(), SignatureForm.DIGEST, host)
        assertEquals(device.principal(), signer.principal())
        val alice = Peer.create(PeerOptions(signer = signer, alias = "alice"))
        assertEquals(device.principal(), alice.principal())
        assertTrue(host.calls.get() >= 2, "attestation and alias card are signed by the host")
        assertTrue(host.requests.all { it is SignRequest.Digest })

        val bob = Peer.create(PeerOptions())
        val addr = alice.listen("127.0.0.1:0")
        bob.dial(addr).use { conn ->
            assertEquals(device.principal(), conn.remotePrincipal())
            assertEquals("alice", conn.remoteAlias()?.alias)
        }
        listOf(alice, bob).forEach { it.shutdown(); it.close() }
        listOf(signer, device).forEach { it.close() }
    }

    @Test
    fun stacksMessageFormSignsText() = runTest {
        val device = Signer.generate(Network.TESTNET)
        val host = KeychainSigner(device)
        val signer = Signer.fromHost(device.address(), SignatureForm.STACKS_MESSAGE, host)
        val peer = Peer.create(PeerOptions(signer = signer))
        val other = Peer.create(PeerOptions())
        assertTrue(host.requests.isNotEmpty() && host.requests.all { it is SignRequest.Message })
        val addr = peer.listen("127.0.0.1:0")
        other.dial(addr).use { assertEquals(device.principal(), it.remotePrincipal()) }
        listOf(peer, other).forEach { it.shutdown(); it.close() }
    }

    @Test
    fun hostExceptionsBecomeTypedErrors() = runTest {
        val device = Signer.generate(Network.MAINNET)
        // Any Kotlin exception: ERR_WALLET (24), not a panic.
        val declining = Signer.fromHost(device.principal(), SignatureForm.DIGEST, object : HostSigner {
            override suspend fun sign(request: SignRequest): ByteArray = throw IllegalStateException("user declined")
        })
        val e = expectError(24u, "ERR_WALLET") { Peer.create(PeerOptions(signer = declining)) }
        assertTrue(e.reason.contains("user declined"), e.reason)
        // A typed error thrown by the host keeps its code.
        val typed = Signer.fromHost(device.principal(), SignatureForm.DIGEST, object : HostSigner {
            override suspend fun sign(request: SignRequest): ByteArray =
                throw Snap2pException.Failure(13u, "ERR_TIMEOUT", "device asleep")
        })
        expectError(13u, "ERR_TIMEOUT") { Peer.create(PeerOptions(signer = typed)) }
        // A malformed signature: ERR_AUTH_INVALID (6).
        val short = Signer.fromHost(device.principal(), SignatureForm.DIGEST, object : HostSigner {
            override suspend fun sign(request: SignRequest) = ByteArray(10)
        })
        expectError(6u, "ERR_AUTH_INVALID") { Peer.create(PeerOptions(signer = short)) }
        // A bad principal string.
        expectError(25u, "ERR_INVALID_ARGUMENT") {
            Signer.fromHost("stacks:nope", SignatureForm.DIGEST, KeychainSigner(device))
        }
    }

    @Test
    fun signerForAnotherKeyIsRejectedByTheRemote() = runTest {
        val claimed = Signer.generate(Network.MAINNET)
        val actual = Signer.generate(Network.MAINNET)
        val impostor = Signer.fromHost(claimed.principal(), SignatureForm.DIGEST, KeychainSigner(actual))
        val server = Peer.create(PeerOptions())
        val addr = server.listen("127.0.0.1:0")
        try {
            val peer = Peer.create(PeerOptions(signer = impostor))
            val e = try {
                peer.dial(addr).close(); null
            } catch (e: Snap2pException.Failure) {
                e
            }
            assertTrue(e != null && e.code in setOf(3uL, 6uL), "impostor must be refused, got $e")
            peer.shutdown(); peer.close()
        } catch (e: Snap2pException.Failure) {
            // Refusing to issue the attestation locally is as good.
            assertEquals(6uL, e.code)
        }
        server.shutdown(); server.close()
    }

    @Test
    fun walletStore(@TempDir dir: Path) = runTest {
        WalletStore.open(dir.toString()).use { store ->
            val info = store.create("alice", "correct horse battery staple", Network.TESTNET)
            assertTrue(info.address.startsWith("ST"))
            assertEquals(listOf("alice"), store.list().map { it.name })
            expectError(24u, "ERR_WALLET") { store.unlock("alice", "wrong password!!") }
            expectError(24u, "ERR_WALLET") { store.unlock("nobody", "correct horse battery staple") }
            store.unlock("alice", "correct horse battery staple").use { signer ->
                assertEquals(info.address, signer.address())
                val peer = Peer.create(PeerOptions(signer = signer))
                assertEquals("stacks:" + info.address, peer.principal())
                peer.shutdown(); peer.close()
            }
            store.delete(info.id)
            assertTrue(store.list().isEmpty())
        }
    }
}
