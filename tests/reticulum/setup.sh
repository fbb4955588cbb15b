#!/usr/bin/env bash
# Creates a Python venv with the reference Reticulum (rns 1.5.7) for the interop tests.
#
# The venv goes to $RNS_VENV, or target/rns-venv in the workspace. Idempotent and quiet:
# a venv that already has the right rns is left alone. The tests find it the same way and
# fail, naming this script, when it is missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${RNS_VENV:-$root/target/rns-venv}
want=1.5.7
if [ -x "$venv/bin/python" ] && [ -x "$venv/bin/rnsd" ] &&
    [ "$("$venv/bin/python" -c 'import RNS; print(RNS.__version__)' 2>/dev/null)" = "$want" ]; then
    exit 0
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "rns==$want"
"$venv/bin/python" -c 'import RNS' >/dev/null
