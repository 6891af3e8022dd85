"""Every shared vector file (core/tests/vectors/*.json) against its schema
(core/tests/vectors/schema/<name>.schema.json), as every language's suite checks it, plus
the framing every frame_hex must have. Pure Python: no package build needed."""

import json
import pathlib
import re

import pytest

VECTORS = pathlib.Path(__file__).resolve().parents[2] / "core" / "tests" / "vectors"
SCHEMAS = sorted((VECTORS / "schema").glob("*.schema.json"))


def _type_ok(v, t):
    return {
        "object": lambda: isinstance(v, dict),
        "array": lambda: isinstance(v, list),
        "string": lambda: isinstance(v, str),
        "integer": lambda: isinstance(v, int) and not isinstance(v, bool),
        "boolean": lambda: isinstance(v, bool),
        "null": lambda: v is None,
    }[t]()


def resolve(s, defs=None, depth=0):
    """The schema with every ``{"$ref": "#/$defs/NAME"}`` replaced by that definition of its
    ``$defs`` (dropped); a reference to anything else is an error."""
    if defs is None:
        defs = s.get("$defs", {})
    if depth > 64:
        raise ValueError("$ref nested too deep (a cycle?)")
    if isinstance(s, dict):
        if "$ref" in s:
            ref = s["$ref"]
            if not ref.startswith("#/$defs/") or ref[len("#/$defs/") :] not in defs:
                raise ValueError(f"unresolved $ref {ref}")
            return resolve(defs[ref[len("#/$defs/") :]], defs, depth + 1)
        return {k: resolve(x, defs, depth + 1) for k, x in s.items() if k != "$defs"}
    if isinstance(s, list):
        return [resolve(x, defs, depth + 1) for x in s]
    return s


def validate(v, s, path="$"):
    """The schema subset the vector schemas use; returns a list of problems."""
    errs = []
    if "type" in s:
        types = s["type"] if isinstance(s["type"], list) else [s["type"]]
        if not any(_type_ok(v, t) for t in types):
            return [f"{path}: {v!r:.60} is not {s['type']}"]
    if "enum" in s and v not in s["enum"]:
        errs.append(f"{path}: {v!r:.60} not in {s['enum']}")
    if "pattern" in s and isinstance(v, str) and not re.fullmatch(s["pattern"].strip("^$"), v):
        errs.append(f"{path}: {v!r:.60} does not match {s['pattern']}")
    if isinstance(v, int) and not isinstance(v, bool):
        if "minimum" in s and v < s["minimum"]:
            errs.append(f"{path}: {v} < {s['minimum']}")
        if "maximum" in s and v > s["maximum"]:
            errs.append(f"{path}: {v} > {s['maximum']}")
    if isinstance(v, dict):
        props = s.get("properties", {})
        for k in s.get("required", []):
            if k not in v:
                errs.append(f"{path}: missing {k}")
        for k, x in v.items():
            if k in props:
                errs += validate(x, props[k], f"{path}.{k}")
            elif s.get("additionalProperties") is False:
                errs.append(f"{path}: unexpected key {k}")
            elif isinstance(s.get("additionalProperties"), dict):
                errs += validate(x, s["additionalProperties"], f"{path}.{k}")
    if isinstance(v, list):
        if len(v) < s.get("minItems", 0):
            errs.append(f"{path}: fewer than {s['minItems']} items")
        if "items" in s:
            for i, x in enumerate(v):
                errs += validate(x, s["items"], f"{path}[{i}]")
    return errs


def _varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def test_every_vector_file_has_a_schema():
    files = {p.name for p in VECTORS.glob("*.json")}
    schemas = {p.name.replace(".schema.json", ".json") for p in SCHEMAS}
    assert files == schemas, files ^ schemas


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda p: p.name)
def test_vector_file_matches_its_schema(schema):
    data = json.loads((VECTORS / schema.name.replace(".schema.json", ".json")).read_text())
    problems = validate(data, resolve(json.loads(schema.read_text())))
    assert not problems, "\n".join(problems[:20])


def test_validator_rejects_what_it_should():
    s = json.loads((VECTORS / "schema" / "messages.schema.json").read_text())
    good = json.loads((VECTORS / "messages.json").read_text())
    bad = json.loads(json.dumps(good))
    del bad["messages"][0]["t"]
    bad["messages"][1]["types"]["att"] = "blob"
    bad["messages"][2]["cbor_hex"] = "A3"
    bad["extra"] = 1
    assert len(validate(bad, s)) == 4


def test_validator_follows_defs_refs():
    s = resolve(json.loads((VECTORS / "schema" / "handshake.schema.json").read_text()))
    bad = json.loads((VECTORS / "handshake.json").read_text())
    del bad["stealth_hs2_aes_gcm"]["responder"]["principal"]
    bad["public"]["initiator"]["hello"]["extra"] = 1
    assert validate(bad, s) == [
        "$.public.initiator.hello: unexpected key extra",
        "$.stealth_hs2_aes_gcm.responder: missing principal",
    ]
    with pytest.raises(ValueError, match="unresolved"):
        resolve({"$defs": {}, "items": {"$ref": "#/$defs/nowhere"}})


def test_messages_frames_and_types():
    v = json.loads((VECTORS / "messages.json").read_text())
    for m in v["messages"]:
        cbor = bytes.fromhex(m["cbor_hex"])
        assert bytes.fromhex(m["frame_hex"]) == _varint(len(cbor)) + cbor, m["name"]
        assert set(m["types"]) == set(m["fields"]), m["name"]
        assert "t" not in m["fields"], m["name"]


def test_px1_wire_keys_match_messages():
    v = json.loads((VECTORS / "px1.json").read_text())
    names = {
        "type": "t",
        "principal": "p",
        "max_results": "n",
        "locators": "l",
        "ttl_seconds": "ttl",
    }
    codes = {"PX_RESOLVE_REQ": 1, "PX_RESOLVE_RESP": 2, "PX_PUSH": 3}
    for case in v["valid"] + v["decode_only"]:
        m = dict(case["message"])
        m["type"] = codes[m["type"]]
        assert {names[k]: x for k, x in m.items()} == case["wire"], case["name"]
        if "ttl" in case["wire"]:
            assert case["ttl_stored"] == min(max(case["wire"]["ttl"], 60), 604800)
