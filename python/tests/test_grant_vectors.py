"""The shared PermissionGrant vectors (core/tests/vectors/grants.json) through
``decode_grant``, ``verify_grant``, ``node_grant_decision`` and
``LocalWallet.issue_grant_with_nonce``: every field, the derived bytes, re-encoding,
verification at the vectors' own ``now``, each negative wire form's error code and each node
decision are the ones the core checks in core/tests/permissions.rs."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

import snap2p
from snap2p import ErrorCode

VECTORS = pathlib.Path(__file__).resolve().parents[2] / "core" / "tests" / "vectors"
V: dict[str, Any] = json.loads((VECTORS / "grants.json").read_text())
FORMS = {"digest": "digest", "stacks_message": "message"}


def _code(name: str | None) -> ErrorCode | None:
    """The package's ErrorCode for a vector's error name (``ERR_AUTH_EXPIRED``)."""
    if name is None:
        return None
    assert name.startswith("ERR_"), name
    code = ErrorCode[name.removeprefix("ERR_")]
    assert snap2p.error_name(code) == name
    return code


def _fails(fn: Any, *args: Any) -> int | None:
    try:
        fn(*args)
    except snap2p.Snap2pError as e:
        return e.code
    return None


def test_format_and_counts() -> None:
    assert V["format_version"] == 1
    assert len(V["grants"]) == 4
    assert len(V["negative"]) >= 10
    assert len(V["node"]) >= 1


@pytest.mark.parametrize("g", V["grants"], ids=lambda g: g["name"])
def test_decoded_fields_and_derived_bytes(g: dict[str, Any]) -> None:
    d = snap2p.decode_grant(bytes.fromhex(g["wire_hex"]))
    assert d.id == g["id"]
    assert d.version == 1
    assert d.issuer == g["issuer"]
    assert d.holder == g["holder"]
    assert d.labels == g["labels"]
    assert d.delegable is g["delegable"]
    assert (d.parent or b"").hex() == g["parent_hex"]
    assert d.parent is None or isinstance(d.parent, bytes)
    assert d.issued_at == g["issued_at"]
    assert d.expires_at == g["expires_at"]
    assert d.nonce.hex() == g["nonce_hex"]
    assert d.form == FORMS[g["form"]]
    assert isinstance(d.signature, bytes) and len(d.signature) == 65
    assert d.signing_bytes.hex() == g["signing_bytes_hex"]
    assert d.message_text == g["message_text"]
    assert d.signed_digest.hex() == g["signed_digest_hex"]
    assert d.wire.hex() == g["wire_hex"]


@pytest.mark.parametrize("g", V["grants"], ids=lambda g: g["name"])
def test_verifies_at_verify_now(g: dict[str, Any]) -> None:
    wire = bytes.fromhex(g["wire_hex"])
    parent = snap2p.verify_grant(wire, g["verify_now"])
    if g["parent_hex"]:
        assert parent == snap2p.decode_grant(bytes.fromhex(g["parent_hex"])).id
    else:
        assert parent is None
    # Long after expiry the same bytes are refused.
    assert _fails(snap2p.verify_grant, wire, g["expires_at"] + 100_000) == ErrorCode.AUTH_EXPIRED


@pytest.mark.parametrize("n", V["negative"], ids=lambda n: n["name"])
def test_negative_wire_forms_fail_with_their_code(n: dict[str, Any]) -> None:
    expected = _code(n["error"])
    assert expected is not None
    assert _fails(snap2p.verify_grant, bytes.fromhex(n["wire_hex"]), n["now"]) == expected


def test_bad_bytes_do_not_decode() -> None:
    for wire in (b"", b"\xa0", b"\xff\x00"):
        assert _fails(snap2p.decode_grant, wire) == ErrorCode.AUTH_INVALID


@pytest.mark.parametrize("n", V["node"], ids=lambda n: n["name"])
def test_node_decisions(n: dict[str, Any]) -> None:
    g = next(g for g in V["grants"] if g["name"] == n["grant"])
    wire = bytes.fromhex(g["wire_hex"])
    args = (wire, n["owners"], n["revoked"], n["presenter"], n["now"])
    assert _fails(snap2p.node_grant_decision, *args) == _code(n["error"])
    if n["error"] is None:
        assert snap2p.node_grant_decision(*args)[-1] == g["id"]


@pytest.mark.parametrize("g", V["grants"], ids=lambda g: g["name"])
async def test_reissued_byte_for_byte(g: dict[str, Any]) -> None:
    w = snap2p.LocalWallet.from_mnemonic(V["mnemonic"], g["issuer_account"])
    assert w.principal == g["issuer"]
    wire = await w.issue_grant_with_nonce(
        g["holder"],
        g["labels"],
        g["issued_at"],
        g["expires_at"] - g["issued_at"],
        bytes.fromhex(g["nonce_hex"]),
        delegable=g["delegable"],
        parent=bytes.fromhex(g["parent_hex"]) if g["parent_hex"] else None,
        form=FORMS[g["form"]],
    )
    assert wire.hex() == g["wire_hex"]
