"""Wallets, the wallet store, and the shared identity vectors (core/tests/vectors)."""

from __future__ import annotations

import json
import pathlib
import shutil

import pytest

import snap2p

VECTORS = pathlib.Path(__file__).resolve().parents[2] / "core" / "tests" / "vectors"


def _load(name: str) -> dict:
    path = VECTORS / name
    if not path.exists():
        pytest.fail(f"missing shared vectors {path}")
    return json.loads(path.read_text())


def test_address_vectors() -> None:
    vectors = _load("identity.json")["addresses"]
    assert vectors
    for v in vectors:
        assert snap2p.c32_address(v["version"], bytes.fromhex(v["hash160"])) == v["address"]
        version, h160 = snap2p.c32_address_decode(v["address"])
        assert (version, h160.hex()) == (v["version"], v["hash160"])


def test_c32_encode_vectors() -> None:
    for v in _load("identity.json")["c32_encode"]:
        assert snap2p.c32_encode(bytes.fromhex(v["hex"])) == v["c32"]


def test_message_hash_vectors() -> None:
    for v in _load("identity.json")["message_hashes"]:
        assert snap2p.stacks_message_hash(v["message"]).hex() == v["hash"]


def test_mnemonic_vectors() -> None:
    vectors = _load("identity.json")["mnemonics"]
    assert vectors
    for v in vectors:
        for acct in v["accounts"]:
            w = snap2p.LocalWallet.from_mnemonic(v["mnemonic"], acct["index"])
            assert w.address == acct["mainnet"]
            assert w.public_key.hex() == acct["public_key"]
            assert snap2p.principal_from_public_key(w.public_key) == "stacks:" + acct["mainnet"]
            t = snap2p.LocalWallet.from_mnemonic(v["mnemonic"], acct["index"], "testnet")
            assert t.address == acct["testnet"] and t.network == "testnet"


def test_alias_normalization_vectors() -> None:
    for v in _load("identity.json")["alias_normalization"]:
        if "output" in v:
            assert snap2p.normalize_alias(v["input"]) == v["output"], v
        else:
            with pytest.raises(snap2p.Snap2pError):
                snap2p.normalize_alias(v["input"])


def test_negative_principal_vectors() -> None:
    negatives = [v for v in _load("identity.json")["negative"] if v["type"] == "principal"]
    assert negatives
    for v in negatives:
        with pytest.raises(snap2p.Snap2pError) as e:
            snap2p.parse_principal(v["input"])
        assert e.value.name == v["error"], v["name"]


def test_parse_principal_forms() -> None:
    w = snap2p.LocalWallet.generate()
    assert snap2p.parse_principal(w.principal) == w.principal
    with pytest.raises(snap2p.Snap2pError):
        snap2p.parse_principal(w.address)  # the canonical form has the stacks: prefix
    with pytest.raises(snap2p.Snap2pError) as e:
        snap2p.LocalWallet.from_mnemonic("not a mnemonic at all")
    assert e.value.code == 25


def test_wallet_store_lifecycle(tmp_path: pathlib.Path) -> None:
    store = snap2p.WalletStore(tmp_path / "wallets", scrypt_log_n=10)
    assert store.list() == []
    info, wallet = store.create("main", "correct horse battery")
    assert info.address == wallet.address and info.name == "main" and len(info.id) == 32
    listed = store.list()
    assert [(w.id, w.name) for w in listed] == [(info.id, "main")]
    assert store.unlock("main", "correct horse battery").principal == wallet.principal
    with pytest.raises(snap2p.Snap2pError) as e:
        store.unlock("main", "wrong password!")
    assert e.value.code == 24 and e.value.name == "ERR_WALLET"
    with pytest.raises(snap2p.Snap2pError) as e:
        store.create("main", "another password")
    assert e.value.code == 24
    with pytest.raises(snap2p.Snap2pError) as e:
        store.create("short", "pw")
    assert e.value.code in (24, 25)
    renamed = store.rename(info.id, "renamed")
    assert renamed.name == "renamed"
    phrase = store.export("renamed", "correct horse battery")
    assert phrase == wallet.mnemonic() and len(phrase.split()) == 24
    info2, restored = store.restore("copy", phrase, "another password", "testnet")
    assert info2.network == "testnet" and restored.address.startswith("ST")
    store.delete("renamed")
    assert [w.name for w in store.list()] == ["copy"]
    with pytest.raises(snap2p.Snap2pError) as e:
        store.unlock("renamed", "correct horse battery")
    assert e.value.code == 24


def test_wallet_store_reads_typescript_format(tmp_path: pathlib.Path) -> None:
    vec = _load("wallet-ts-format.json")
    for w in vec["wallets"]:
        (tmp_path / w["file_name"]).write_text(w["file_text"])
    (tmp_path / "registry.json").write_text(vec["registry_text"])
    store = snap2p.WalletStore(tmp_path)
    first = vec["wallets"][0]
    wallet = store.unlock(first["id"], first["password"])
    assert wallet.address == first["address"]
    assert store.export(first["id"], first["password"]) == first["mnemonic"]
    shutil.rmtree(tmp_path)


async def test_peer_from_store_wallet(tmp_path: pathlib.Path) -> None:
    store = snap2p.WalletStore(tmp_path, scrypt_log_n=10)
    _, wallet = store.create("node", "a long password")
    async with await snap2p.Peer.create(wallet=wallet) as peer:
        assert peer.principal == wallet.principal
        assert len(peer.node_public_key) == 32
