#!/usr/bin/env python3
"""Regenerates the committed seed corpus (fuzz/corpus/<target>/) from the test vectors in
core/tests/vectors/*.json. Small files only. Run: python3 fuzz/make_corpus.py"""
import hashlib, json, os

root = os.path.dirname(os.path.abspath(__file__))
vec = os.path.join(root, "..", "core", "tests", "vectors")
corpus = os.path.join(root, "corpus")


def put(target, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


m = json.load(open(os.path.join(vec, "messages.json")))
for msg in m["messages"]:
    cb = bytes.fromhex(msg["cbor_hex"])
    put("message", cb)
    put("cbor", cb)
    put("frame", b"\x00" + bytes.fromhex(msg["frame_hex"]))
    put("frame", b"\x41" + bytes.fromhex(msg["frame_hex"]) * 2)
    put("session_responder", b"\x04" + bytes.fromhex(msg["frame_hex"]))
put("message", b"".join(bytes.fromhex(x["cbor_hex"]) for x in m["messages"][:4]))
for v in [b"\xff\xff\xff\x7f", b"\x80\x80\x80\x80\x01", b"\x81\x00", b"\xff\xff\x03"]:
    put("frame", b"\x01" + v)

ident = json.load(open(os.path.join(vec, "identity.json")))
for a in ident["attestations"]:
    put("attestation", bytes.fromhex(a["wire"]))
for c in ident["alias_cards"]:
    put("alias_card", bytes.fromhex(c["wire"]))
for n in ident["negative"]:
    t = {"attestation": "attestation", "alias_card": "alias_card"}.get(n.get("type"))
    if t and isinstance(n.get("input"), str):
        try:
            put(t, bytes.fromhex(n["input"]))
        except ValueError:
            pass

hs = json.load(open(os.path.join(vec, "handshake.json")))
for kind, mode in (("public", 0x04), ("stealth", 0x05), ("public_hs2", 0x04), ("stealth_hs2_aes_gcm", 0x05)):
    ini = b"".join(bytes.fromhex(f["bytes_hex"]) for f in hs[kind]["flights"] if f["from"] == "initiator")
    put("session_responder", bytes([mode]) + ini)
    put("session_responder", bytes([mode | 0xf0]) + ini[:200])
    first = [bytes.fromhex(f["bytes_hex"]) for f in hs[kind]["flights"] if f["from"] == "initiator"][0]
    put("session_responder", bytes([mode]) + first)
put("session_responder", b"\x07" + bytes(32))
put("session_responder", b"\x04\x20" + bytes(32))

# Structured targets (arbitrary): a few byte strings to start from.
for t in ("session_established", "session_ops"):
    for i in range(4):
        put(t, hashlib.sha256(bytes([i]) * 8).digest() * (i + 1))
