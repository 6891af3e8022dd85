"""The shared endpoint-advert vectors (core/tests/vectors/adverts.json, docs/PROTOCOL.md §34)
through ``issue_advert``, ``decode_advert`` and ``verify_advert``: each valid advert re-issued
byte for byte from its inputs, its fields, signing input and signature, verification at the
vector's time; each invalid one refused with its code and reason, as
core/tests/discovery_adverts.rs checks them."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

import snap2p
from snap2p import ErrorCode

VECTORS = pathlib.Path(__file__).resolve().parents[2] / "core" / "tests" / "vectors"
V: dict[str, Any] = json.loads((VECTORS / "adverts.json").read_text())


def _code(name: str) -> ErrorCode:
    code = ErrorCode[name.removeprefix("ERR_")]
    assert snap2p.error_name(code) == name
    return code


def test_format_version_domain_counts() -> None:
    assert V["format_version"] == 1
    assert V["domain"] == "snap2p-endpoint-advert-v1"
    assert len(V["valid"]) >= 3
    assert len(V["invalid"]) >= 10


@pytest.mark.parametrize("a", V["valid"], ids=lambda a: a["name"])
def test_valid_reissued_decoded_verified(a: dict[str, Any]) -> None:
    wire = snap2p.issue_advert(
        bytes.fromhex(a["node_seed"]),
        bytes.fromhex(a["attestation"]),
        locators=a["locators"],
        seq=a["seq"],
        issued_at=a["issued_at"],
        ttl_secs=a["ttl_secs"],
    )
    assert wire.hex() == a["advert"]
    assert len(wire) == a["encoded_len"]
    for d in (
        snap2p.decode_advert(wire),
        snap2p.verify_advert(
            wire, a["verify_at"], node_key=bytes.fromhex(a["node_key"]), principal=a["principal"]
        ),
    ):
        assert d.principal == a["principal"]
        assert d.node_key.hex() == a["node_key"]
        assert d.seq == a["seq"]
        assert d.issued_at == a["issued_at"]
        assert d.expires_at == a["expires_at"]
        assert d.locators == a["locators"]
        assert d.attestation.hex() == a["attestation"]
        assert d.signature.hex() == a["signature"]
        assert d.signing_input.hex() == a["signing_input"]
        assert d.encoded.hex() == a["advert"]
    with pytest.raises(snap2p.Snap2pError) as e:
        snap2p.verify_advert(wire, a["expires_at"] + 100_000)
    assert e.value.code == ErrorCode.AUTH_EXPIRED


@pytest.mark.parametrize("n", V["invalid"], ids=lambda n: n["name"])
def test_invalid_refused_with_code_and_reason(n: dict[str, Any]) -> None:
    key = n.get("expected_node_key")
    with pytest.raises(snap2p.Snap2pError) as e:
        snap2p.verify_advert(
            bytes.fromhex(n["advert"]),
            n["verify_at"],
            node_key=bytes.fromhex(key) if key else None,
            principal=n.get("expected_principal"),
        )
    assert e.value.code == _code(n["error"]), e.value
    assert e.value.message.startswith(n["reason"] + ":"), e.value
