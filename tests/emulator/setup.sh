#!/usr/bin/env bash
# Creates tests/emulator/.venv with the rig's Python packages (moto's server).
# Idempotent: does nothing when the installed packages already match requirements.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null; then
  echo "keyguard tests need Python 3.9+ for the AWS emulator rig (set PYTHON=/path/to/python3)" >&2
  exit 1
fi
stamp="$here/.venv/.requirements"
if [ -x "$here/.venv/bin/python" ] && [ -f "$stamp" ] && cmp -s "$stamp" "$here/requirements.txt"; then
  exit 0
fi
"$python" -m venv "$here/.venv"
"$here/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
cp "$here/requirements.txt" "$stamp"
