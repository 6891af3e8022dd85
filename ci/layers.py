#!/usr/bin/env python3
"""Checks what may import what inside core/src (docs/ARCHITECTURE.md, "What may import
what"): a module may use only modules of lower layers, and modules of one layer do not use
each other. Reads `crate::name` paths in code (comments and #[cfg(test)] files left out).
Exit 1 with every offending file and path named.

    python3 ci/layers.py [core/src]
"""
import pathlib
import re
import sys

# Bottom up. A module may use crate::X only if X sits in a lower layer.
LAYERS = [
    ["error", "rate"],
    ["wire", "locator"],
    ["identity"],
    ["secure_channel", "policy"],
    ["session", "transport"],
    ["protocol", "admission", "events"],
    ["px1", "relay"],
    ["discovery"],
    ["peer"],
    ["host", "testing"],
]
# Items of the crate root every layer may use.
ROOT_ITEMS = {"unix_now"}

rank = {m: i for i, layer in enumerate(LAYERS) for m in layer}
root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "core/src")
bad = []
for path in sorted(root.rglob("*.rs")):
    rel = path.relative_to(root)
    module = rel.parts[0].removesuffix(".rs")
    if module == "lib" or path.name == "tests.rs":
        continue
    if module not in rank:
        bad.append(f"{rel}: module '{module}' has no layer in ci/layers.py")
        continue
    code = "\n".join(line.split("//")[0] for line in path.read_text().splitlines())
    for dep in sorted(set(re.findall(r"\bcrate::([a-z_0-9]+)", code))):
        if dep == module or dep in ROOT_ITEMS:
            continue
        if dep not in rank:
            bad.append(f"{rel}: uses crate::{dep}, which has no layer")
        elif rank[dep] >= rank[module]:
            bad.append(f"{rel}: {module} (layer {rank[module]}) uses crate::{dep} (layer {rank[dep]})")
if bad:
    print("\n".join(bad))
    print(f"layers: {len(bad)} violation(s)")
    sys.exit(1)
print(f"layers: ok ({sum(1 for _ in root.rglob('*.rs'))} files)")
