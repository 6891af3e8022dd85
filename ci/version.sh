#!/usr/bin/env bash
# The one version of every snap2p package: `[workspace.package] version` in the root
# Cargo.toml. Every other manifest either inherits it (the crates; the Python wheel, whose
# pyproject.toml says `dynamic = ["version"]` so maturin takes the crate's) or carries a copy
# that this script writes and checks:
#   node/package.json, node/package-lock.json (root entries), node/npm/*/package.json,
#   kotlin/pom.xml (the project's <version>), kotlin/android/build.gradle.kts (`version =`),
#   swift/Package.swift (`let version =`, the release URL of the binary target),
#   the workspace's `snap2p = { path = "core", version = ... }` dependency.
#
#   ci/version.sh              print the version
#   ci/version.sh check        exit 1 (listing each file) unless every copy agrees
#   ci/version.sh set X.Y.Z    write X.Y.Z everywhere (then run `check`)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
exec python3 - "$root" "$@" <<'PY'
import json, pathlib, re, sys, tomllib

root = pathlib.Path(sys.argv[1])
args = sys.argv[2:]
cargo = root / "Cargo.toml"
version = tomllib.loads(cargo.read_text())["workspace"]["package"]["version"]
SEMVER = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")

# (file, regex with one group around the version) for the non-JSON copies.
TEXT = [
    (cargo, r'^snap2p = \{ path = "core", version = "([^"]+)" \}$'),
    (root / "kotlin/pom.xml", r"^  <version>([^<]+)</version>$"),
    (root / "kotlin/android/build.gradle.kts", r'^version = "([^"]+)"$'),
    (root / "swift/Package.swift", r'^let version = "([^"]+)"$'),
]
NODE = [root / "node/package.json"] + sorted((root / "node/npm").glob("*/package.json"))
LOCK = root / "node/package-lock.json"


def text_copies():
    for path, pattern in TEXT:
        found = re.findall(pattern, path.read_text(), re.M)
        if len(found) != 1:
            sys.exit(f"ci/version.sh: {path.relative_to(root)}: expected one match of {pattern!r}, found {len(found)}")
        yield path, pattern, found[0]


def json_copies():
    for path in NODE:
        yield path, "version", json.loads(path.read_text())["version"]
    lock = json.loads(LOCK.read_text())
    yield LOCK, "version", lock["version"]
    yield LOCK, 'packages[""].version', lock["packages"][""]["version"]


def check():
    bad = []
    for path, _, v in list(text_copies()) + list(json_copies()):
        if v != version:
            bad.append(f"  {path.relative_to(root)}: {v}")
    # Python: the wheel's version is the crate's, which is the workspace's.
    py = tomllib.loads((root / "python/pyproject.toml").read_text())
    if "version" not in py["project"].get("dynamic", []) or "version" in py["project"]:
        bad.append("  python/pyproject.toml: [project] must say dynamic = [\"version\"] (from Cargo)")
    for crate in ["core", "node", "python", "bindings", "examples/cli"]:
        ct = tomllib.loads((root / crate / "Cargo.toml").read_text())
        if ct["package"].get("version") != {"workspace": True}:
            bad.append(f"  {crate}/Cargo.toml: version must be `version.workspace = true`")
    # Every platform package of the npm main package has the main package's version.
    main = json.loads((root / "node/package.json").read_text())
    for path in NODE[1:]:
        pkg = json.loads(path.read_text())
        if not pkg["name"].startswith(main["name"] + "-"):
            bad.append(f"  {path.relative_to(root)}: name {pkg['name']} is not {main['name']}-<platform>")
    if bad:
        print(f"ci/version.sh: these copies differ from the workspace version {version}:")
        print("\n".join(bad))
        sys.exit(1)
    print(f"version {version}: Cargo workspace, node (+{len(NODE) - 1} platform packages, lockfile), "
          "python (dynamic), kotlin pom + android, swift agree")


def set_version(new):
    if not SEMVER.match(new):
        sys.exit(f"ci/version.sh: {new!r} is not a semantic version X.Y.Z[-pre]")
    text = cargo.read_text()
    text = re.sub(r'(\[workspace\.package\]\nversion = ")[^"]+(")', rf"\g<1>{new}\g<2>", text)
    cargo.write_text(text)
    for path, pattern, _ in list(text_copies()):
        text = path.read_text()
        m = re.search(pattern, text, re.M)
        path.write_text(text[: m.start(1)] + new + text[m.end(1):])
    for path in NODE:
        pkg = json.loads(path.read_text())
        pkg["version"] = new
        path.write_text(json.dumps(pkg, indent=2) + "\n")
    lock = json.loads(LOCK.read_text())
    lock["version"] = new
    lock["packages"][""]["version"] = new
    LOCK.write_text(json.dumps(lock, indent=2) + "\n")


if not args:
    print(version)
elif args[0] == "check":
    check()
elif args[0] == "set" and len(args) == 2:
    set_version(args[1])
    print(f"set {args[1]}; Cargo.lock follows on the next cargo build")
else:
    sys.exit(__doc__ or "usage: ci/version.sh [check | set X.Y.Z]")
PY
