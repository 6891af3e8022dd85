"""The type stubs (snap2p/__init__.pyi) match what the module really exports."""

from __future__ import annotations

import ast
import inspect
import pathlib

import snap2p

STUB = pathlib.Path(snap2p.__file__).with_name("__init__.pyi")


def _stub_tree() -> ast.Module:
    assert STUB.exists(), f"{STUB} is not installed"
    return ast.parse(STUB.read_text())


def _public(names: object) -> set[str]:
    return {n for n in names if not n.startswith("_") or n == "__version__"}  # type: ignore[attr-defined]


def test_py_typed_marker_installed() -> None:
    assert STUB.with_name("py.typed").exists()


def test_stub_top_level_names_match_runtime() -> None:
    tree = _stub_tree()
    stub: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            stub.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            stub.add(node.target.id)
        elif isinstance(node, ast.Assign):
            stub.update(t.id for t in node.targets if isinstance(t, ast.Name))
    assert _public(stub) == set(snap2p.__all__)
    assert set(snap2p.__all__) <= set(dir(snap2p))


def test_stub_class_members_match_runtime() -> None:
    for node in _stub_tree().body:
        if not isinstance(node, ast.ClassDef) or node.name == "ErrorCode":
            continue
        stub_members = {
            item.name if not isinstance(item, ast.AnnAssign) else item.target.id  # type: ignore[union-attr]
            for item in node.body
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.AnnAssign))
        }
        cls = getattr(snap2p, node.name)
        runtime = {
            n
            for n, _ in inspect.getmembers(cls)
            if not n.startswith("_") and n not in dir(Exception)
        }
        if node.name == "Snap2pError":
            runtime |= {"code", "name", "message"}  # instance attributes
        assert _public(stub_members) == runtime, node.name


def test_error_code_members_in_stub() -> None:
    for node in _stub_tree().body:
        if isinstance(node, ast.ClassDef) and node.name == "ErrorCode":
            members = {t.target.id for t in node.body if isinstance(t, ast.AnnAssign)}  # type: ignore[union-attr]
            members |= {
                t.targets[0].id
                for t in node.body
                if isinstance(t, ast.Assign)  # type: ignore[union-attr]
            }
            assert members == {c.name for c in snap2p.ErrorCode}
            return
    raise AssertionError("ErrorCode missing from the stub")
