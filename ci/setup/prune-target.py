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
    workspace's own crates, not their dependencies);
  - a profile's whole directory (`debug`, `release`) once the workspace's settings of that
    profile changed since the directory was last pruned: every artifact in it was built
    with the old settings and none will be reused (on 2026-12-07 the dev profile dropped
    the dependencies' debug info, leaving 22 GB of such artifacts behind). The settings
    are kept in `<profile dir>/.snap2p-profile`; a directory without that file only gets
    one (no removal: it may well have been built with the current settings);
  - a profile's whole directory when, after the above, it still holds more than 12 GB
    besides its incremental state. Dependencies built with older features or settings are
    libraries, not executables, and nothing above tells them from the ones in use: a cache
    stamped after such a change kept them all (the remote cache of 2026-12-07 held 22 GB
    of them). On this project the debug directory holds ~4 GB when it has only what the
    current tree builds (2026-12-07: deps 3.0, examples 0.4, build 0.3), so 12 GB is three
    times that; the next build compiles the profile once from scratch (10-rust's build
    of a fresh machine: ~10 minutes).
Cargo rebuilds anything removed here that it still needs.
"""
import json
import os
import re
import shutil
import sys
import tomllib

# The root Cargo.toml's [profile.*] tables that build into each profile directory.
PROFILE_DIRS = {"debug": ("dev", "test"), "release": ("release", "bench")}

HASHED = re.compile(r"^(?P<name>.+)-[0-9a-f]{16}$")
SUPERSEDED_AFTER = 3600  # seconds
INCREMENTAL_LIMIT = 12 << 30
PROFILE_LIMIT = int(os.environ.get("SNAP2P_PRUNE_PROFILE_LIMIT") or 12 << 30)


def size(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def profile_settings(root):
    with open(os.path.join(root, "Cargo.toml"), "rb") as f:
        profiles = tomllib.load(f).get("profile", {})
    return {
        d: json.dumps({p: profiles.get(p) for p in names}, sort_keys=True)
        for d, names in PROFILE_DIRS.items()
    }


def empty(pdir, stamp=None):
    """Removes everything in a profile directory, keeping (rewriting) its stamp if given."""
    shutil.rmtree(pdir, ignore_errors=True)
    os.makedirs(pdir, exist_ok=True)
    if stamp is not None:
        with open(os.path.join(pdir, ".snap2p-profile"), "w") as f:
            f.write(stamp)


def drop_stale_profiles(target, settings):
    freed = 0
    for pdir_name, want in settings.items():
        pdir = os.path.join(target, pdir_name)
        stamp = os.path.join(pdir, ".snap2p-profile")
        if not os.path.isdir(pdir):
            continue
        try:
            with open(stamp) as f:
                had = f.read()
        except FileNotFoundError:
            had = None
        if had is not None and had != want:
            freed += size(pdir)
            empty(pdir)
            print(f"prune-target: {pdir}: the profile's settings changed, removed", file=sys.stderr)
        with open(stamp, "w") as f:
            f.write(want)
    return freed


def prune(target, settings):
    freed = drop_stale_profiles(target, settings) if settings else 0
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
        inc_size = size(inc) if os.path.isdir(inc) else 0
        if inc_size > INCREMENTAL_LIMIT:
            shutil.rmtree(inc, ignore_errors=True)
            freed += inc_size
            inc_size = 0
        # One walk of the directory per run (setup/rust.sh calls this once per suite).
        total = size(pdir)
        if total - inc_size > PROFILE_LIMIT:
            stamp = None
            keep = os.path.join(pdir, ".snap2p-profile")
            if os.path.isfile(keep):
                with open(keep) as f:
                    stamp = f.read()
            empty(pdir, stamp)
            freed += total
            print(f"prune-target: {pdir}: {(total - inc_size) / (1 << 30):.1f} GiB besides its "
                  f"incremental state (limit {PROFILE_LIMIT / (1 << 30):.1f}), removed", file=sys.stderr)
    if freed > 1 << 30:
        print(f"prune-target: freed {freed / (1 << 30):.1f} GiB in {target}", file=sys.stderr)


if __name__ == "__main__":
    # The workspace's profiles apply to the targets built from its root; the fuzz crate
    # and the browser build are workspaces of their own (their profiles are their own).
    root = os.environ.get("SNAP2P_ROOT")
    settings = profile_settings(root) if root else None
    for t in sys.argv[1:]:
        if os.path.isdir(t):
            own = settings if not os.path.basename(t).startswith(("fuzz-", "target-wasm", "target-browser")) else None
            prune(t, own)
