#!/usr/bin/env bash
# Python toolchain for the snap2p binding (idempotent): a virtualenv under $SNAP2P_CACHE
# with maturin (wheel builder), pytest + pytest-asyncio + pytest-timeout and ruff, all
# from PyPI. Needs python3 >= 3.9 with the venv module (Debian: python3-venv).
set -euo pipefail
source "$(dirname "$0")/../env.sh"

PY="${SNAP2P_PYTHON:-python3}"
VENV="$SNAP2P_CACHE/venv"
# Bump when the pinned tool versions change, so an old venv is refreshed.
STAMP_WANT="tools-v1"

if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
  echo "python3 >= 3.9 is required (found: $("$PY" --version 2>&1 || echo none))" >&2
  exit 1
fi
if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
  # Debian splits venv/ensurepip out of python3; root can install it.
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq python3-venv
  else
    echo "the python venv module is missing (Debian: apt-get install python3-venv)" >&2
    exit 1
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
if [ "$(cat "$VENV/.snap2p-stamp" 2>/dev/null)" != "$STAMP_WANT" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q \
    'maturin>=1.16,<2' \
    'pytest>=8,<10' \
    'pytest-asyncio>=1.0,<2' \
    'pytest-timeout>=2.3,<3' \
    'ruff>=0.6,<1'
  echo "$STAMP_WANT" > "$VENV/.snap2p-stamp"
fi
"$VENV/bin/python" -m maturin --version
