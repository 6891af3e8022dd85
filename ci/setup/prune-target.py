#!/usr/bin/env python3
"""Keeps a cargo target directory from filling the disk (called by ci/setup/rust.sh).

Cargo never removes what it built before: every change of a feature set or a dependency
gives each test binary a new hash, and the old binary stays. On 2026-12-05 the main target
held 193 test executables (24 GB) and 19 GB of incremental state, and the disk filled in
the middle of a run. This removes
  - a test or example executable (`deps/<name>-<hash>`, `examples/<name>-<hash>`) built more
    than an hour before the newest one of the same name: a superseded build (the variants
    one build makes, e.g. the lib tests with and without `pure-rust`, are minutes apart);
  - the incremental state of a profile above 12 GB (the next build recompiles the
    workspace's own crates, not their dependencies).
Cargo rebuilds anything removed here that it still needs.
"""
import os
import re
import shutil
import sys

HASHED = re.compile(r"^(?P<name>.+)-[0-9a-f]{16}$")
SUPERSEDED_AFTER = 3600  # seconds
INCREMENTAL_LIMIT = 12 << 30


def size(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def prune(target):
    freed = 0
    for profile in sorted(os.listdir(target)):
        pdir = os.path.join(target, profile)
        if not os.path.isdir(os.path.join(pdir, "deps")):
            continue
        for sub in ("deps", "examples"):
            d = os.path.join(pdir, sub)
            if not os.path.isdir(d):
                continue
            groups = {}
            for f in os.listdir(d):
                m = HASHED.match(f)
                p = os.path.join(d, f)
                if not m or not os.path.isfile(p) or not os.access(p, os.X_OK):
                    continue
                st = os.stat(p)
                groups.setdefault(m["name"], []).append((st.st_mtime, st.st_size, p))
            for builds in groups.values():
                newest = max(t for t, _, _ in builds)
                for t, n, p in builds:
                    if newest - t > SUPERSEDED_AFTER:
                        os.remove(p)
                        freed += n
        inc = os.path.join(pdir, "incremental")
        if os.path.isdir(inc):
            n = size(inc)
            if n > INCREMENTAL_LIMIT:
                shutil.rmtree(inc, ignore_errors=True)
                freed += n
    if freed > 1 << 30:
        print(f"prune-target: freed {freed / (1 << 30):.1f} GiB in {target}", file=sys.stderr)


if __name__ == "__main__":
    for t in sys.argv[1:]:
        if os.path.isdir(t):
            prune(t)
