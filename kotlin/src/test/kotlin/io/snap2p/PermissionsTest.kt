package io.snap2p

import kotlinx.coroutines.delay
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Test
import java.util.Collections

/**
 * Permissions and PermissionGrants (issue 34, docs/PROTOCOL.md §33) through the uniffi
 * package: rules on a node decide which stream labels a principal may open, and a grant
 * signed by the node's owner admits its holder to exactly its labels. The core decides;
 * these tests check that Kotlin reaches it and sees its codes.
 */
class PermissionsTest {
    /** An echo node owned by [owner]: every permitted stream is echoed back. */
    private suspend fun echoNode(owner: Signer): Pair<Peer, String> {
        val node = Peer.create(PeerOptions(signer = owner))
        val subs = Collections.synchronizedList(mutableListOf<Subscription>())
        subs += node.onConnection(object : ConnectionHandler {
            override suspend fun onConnection(connection: Connection) {
                subs += connection.onStream(object : StreamHandler {
                    override suspend fun onStream(stream: Stream) {
                        stream.writeAndFinish(stream.readToEnd(1uL shl 20))
                    }
                })
            }
        })
        return node to node.listen("127.0.0.1:0")
    }

    /** Opens [label], sends bytes and checks the echo. */
    private suspend fun opens(conn: Connection, label: String) = step("open $label") {
        val data = pattern(4096, seed = label.hashCode().toLong())
        val s = conn.openStream(label)
        s.writeAndFinish(data)
        assertArrayEquals(data, s.readToEnd(1uL shl 20), label)
    }

    /** Opening [label] is refused by the node with 20 ERR_STREAM_REFUSED. */
    private suspend fun refused(conn: Connection, label: String) = step("refused $label") {
        expectError(20u, "ERR_STREAM_REFUSED") {
            val s = conn.openStream(label)
            s.writeAndFinish("x".toByteArray())
            s.readToEnd(1024u)
        }
    }

    @Test
    fun rulesPermitTheirLabelsRefuseTheRestAndChangeAtRunTime() = runTest {
        val owner = Signer.generate(Network.MAINNET)
        val friend = Signer.generate(Network.MAINNET)
        val (node, addr) = echoNode(owner)
        node.setPermissions("${friend.principal()}:files*,chat\n*:catalog")
        val fromFriend = Peer.create(PeerOptions(signer = friend))
        val stranger = Peer.create(PeerOptions())
        val f = fromFriend.dial(addr, expect = node.principal())
        val s = stranger.dial(addr, expect = node.principal())
        opens(f, "files/a")
        opens(f, "chat")
        opens(f, "catalog")
        refused(f, "admin")
        opens(s, "catalog")
        refused(s, "files/a")
        // Rules replaced at run time: the same sessions, the next opens.
        node.setPermissions("*:admin")
        opens(s, "admin")
        refused(f, "files/a")
        node.setPermissions(null) // no rules: every label, as without permissions
        opens(f, "files/a")
        opens(s, "anything")
        expectError(25u, "ERR_INVALID_ARGUMENT") { node.setPermissions("not a rule") }
        listOf(fromFriend, stranger, node).forEach { it.shutdown(); it.close() }
    }

    @Test
    fun grantsAdmitExactlyTheirLabelsInBothFormsUntilTheyExpire() = runTest {
        val device = Signer.generate(Network.MAINNET)
        // The owner's wallet signing readable text (a phone wallet), and signing digests.
        val owners = listOf(
            Signer.fromHost(device.principal(), SignatureForm.STACKS_MESSAGE, KeychainSigner(device)),
            device,
        )
        for (owner in owners) {
            val (node, addr) = echoNode(owner)
            node.setPermissions("*:catalog")
            val holder = Signer.generate(Network.MAINNET)
            val peer = Peer.create(PeerOptions(signer = holder))
            val conn = peer.dial(addr, expect = node.principal())
            refused(conn, "files/a")
            conn.presentGrant(owner.issueGrant(holder.principal(), listOf("files*"), 3600))
            opens(conn, "files/a")
            opens(conn, "catalog")
            refused(conn, "admin")
            // A short grant admits until it expires (no clock-skew grace at stream opens).
            conn.presentGrant(owner.issueGrant(holder.principal(), listOf("orders"), 2))
            opens(conn, "orders")
            delay(3100)
            refused(conn, "orders")
            opens(conn, "files/b")
            listOf(peer, node).forEach { it.shutdown(); it.close() }
        }
    }

    @Test
    fun badGrantsAreRefusedWithTheirCodes() = runTest {
        val owner = Signer.generate(Network.MAINNET)
        val (node, addr) = echoNode(owner)
        node.setPermissions("*:catalog")
        val holder = Signer.generate(Network.MAINNET)
        val peer = Peer.create(PeerOptions(signer = holder))
        val conn = peer.dial(addr, expect = node.principal())

        // Tampered: one byte of the wire form changed.
        val good = owner.issueGrant(holder.principal(), listOf("files"), 3600)
        val tampered = good.copyOf().also { it[it.size - 1] = (it[it.size - 1].toInt() xor 1).toByte() }
        expectError(6u, "ERR_AUTH_INVALID") { conn.presentGrant(tampered) }
        // Signed by a principal that does not own the node.
        val stranger = Signer.generate(Network.MAINNET)
        expectError(4u, "ERR_NOT_ALLOWED") {
            conn.presentGrant(stranger.issueGrant(holder.principal(), listOf("files"), 3600))
        }
        // Unless the node honours that principal's grants too.
        node.addGrantOwner(stranger.principal())
        conn.presentGrant(stranger.issueGrant(holder.principal(), listOf("files"), 3600))
        opens(conn, "files")
        // For another holder.
        expectError(4u, "ERR_NOT_ALLOWED") {
            conn.presentGrant(owner.issueGrant(stranger.principal(), listOf("files"), 3600))
        }
        // Revoked: the holder's grants stop admitting at the next open, and are refused.
        node.revokeGrant(holder.principal())
        refused(conn, "files")
        expectError(4u, "ERR_NOT_ALLOWED") { conn.presentGrant(good) }
        opens(conn, "catalog")
        listOf(peer, node).forEach { it.shutdown(); it.close() }
    }
}
