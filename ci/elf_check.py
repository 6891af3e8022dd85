#!/usr/bin/env python3
"""ELF checks for the packaged native libraries (ci/steps/95-packages.sh, the release workflow).

    elf_check.py [--arch x86_64|aarch64|arm|i386] [--glibc-max 2.28] [--musl] [--page 16384] FILE...

FILE is an ELF file or an archive holding some (.whl, .jar, .aar, .zip, .tgz/.tar.gz: every
member ending in .so or .node is checked). Checks, each only when asked:
  --arch       the ELF machine
  --glibc-max  no GLIBC_x.y symbol version newer than this (manylinux_2_28: 2.28)
  --musl       no dynamic dependency on glibc: no glibc soname in DT_NEEDED (libc.so.6,
               libpthread.so.0, libdl.so.2, libm.so.6, librt.so.1, ld-linux*), no GLIBC_ or
               GCC_ symbol versions, and a program interpreter, if any, that is musl's
  --page       every PT_LOAD segment aligned to at least this many bytes (Android's 16 KB
               page rule: 16384), with offset and address congruent modulo the alignment
Prints one line per file with what it saw; exits 1 if any check fails. Needs pyelftools
(it comes with auditwheel).
"""

from __future__ import annotations

import argparse
import io
import sys
import tarfile
import zipfile

from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection

MACHINES = {"x86_64": "EM_X86_64", "aarch64": "EM_AARCH64", "arm": "EM_ARM", "i386": "EM_386"}
GLIBC_SONAMES = (
    "libc.so.6",
    "libpthread.so.0",
    "libdl.so.2",
    "libm.so.6",
    "librt.so.1",
    "ld-linux",
)


def members(path: str):
    """(name, bytes) of the ELF files in path (itself, or the .so/.node members of an archive)."""
    native = (".so", ".node")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            for n in z.namelist():
                if n.endswith(native) or ".so." in n.rsplit("/", 1)[-1]:
                    yield f"{path}!{n}", z.read(n)
    elif path.endswith((".tgz", ".tar.gz")):
        with tarfile.open(path) as t:
            for m in t.getmembers():
                if m.isfile() and m.name.endswith(native):
                    yield f"{path}!{m.name}", t.extractfile(m).read()
    else:
        with open(path, "rb") as f:
            yield path, f.read()


def version_key(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def check(name: str, data: bytes, a: argparse.Namespace) -> list[str]:
    elf = ELFFile(io.BytesIO(data))
    problems, seen = [], []
    machine = elf["e_machine"]
    seen.append(machine.removeprefix("EM_"))
    if a.arch and machine != MACHINES[a.arch]:
        problems.append(f"machine {machine}, want {MACHINES[a.arch]}")

    needed, versions = [], set()
    for sec in elf.iter_sections():
        if isinstance(sec, DynamicSection):
            needed += [t.needed for t in sec.iter_tags() if t.entry.d_tag == "DT_NEEDED"]
        if isinstance(sec, GNUVerNeedSection):
            for _, auxs in sec.iter_versions():
                versions.update(aux.name for aux in auxs)
    interp = next(
        (s.get_interp_name() for s in elf.iter_segments() if s["p_type"] == "PT_INTERP"), None
    )
    glibc = sorted(
        (v.split("_", 1)[1] for v in versions if v.startswith("GLIBC_") and v[6:7].isdigit()),
        key=version_key,
    )
    seen.append("NEEDED " + (",".join(needed) or "-"))
    if glibc:
        seen.append(f"max GLIBC_{glibc[-1]}")

    if a.glibc_max and glibc and version_key(glibc[-1]) > version_key(a.glibc_max):
        newer = [v for v in glibc if version_key(v) > version_key(a.glibc_max)]
        problems.append(f"needs GLIBC_{', GLIBC_'.join(newer)} (> {a.glibc_max})")
    if a.musl:
        bad = [n for n in needed if n.startswith(GLIBC_SONAMES)]
        if bad:
            problems.append(f"glibc libraries in DT_NEEDED: {bad}")
        gnu = sorted(v for v in versions if v.startswith(("GLIBC_", "GCC_")))
        if gnu:
            problems.append(f"glibc symbol versions: {gnu}")
        if interp and "ld-musl" not in interp:
            problems.append(f"interpreter {interp} is not musl's")
        if interp:
            seen.append(f"interp {interp}")
    if a.page:
        loads = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
        aligns = sorted({s["p_align"] for s in loads})
        seen.append(f"LOAD align {','.join(hex(x) for x in aligns)}")
        for s in loads:
            al = s["p_align"]
            if al < a.page:
                problems.append(f"PT_LOAD at {s['p_vaddr']:#x} aligned {al:#x} < {a.page:#x}")
            elif s["p_offset"] % al != s["p_vaddr"] % al:
                problems.append(
                    f"PT_LOAD at {s['p_vaddr']:#x}: offset {s['p_offset']:#x} != vaddr mod {al:#x}"
                )
    print(f"{'FAIL' if problems else 'ok  '} {name}: {'; '.join(seen)}")
    for p in problems:
        print(f"       {p}")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--arch", choices=sorted(MACHINES))
    ap.add_argument("--glibc-max", metavar="X.Y")
    ap.add_argument("--musl", action="store_true")
    ap.add_argument("--page", type=int, metavar="BYTES")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    failed = checked = 0
    for path in a.files:
        found = False
        for name, data in members(path):
            found = True
            checked += 1
            failed += bool(check(name, data, a))
        if not found:
            print(f"FAIL {path}: no native library inside")
            failed += 1
    print(f"elf_check: {checked} file(s), {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
