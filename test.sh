#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs the emulator rig's Python packages into
# tests/emulator/.venv (moto's server, cargo-lambda), then checks formatting and clippy, then runs
# every test against one release build (the Lambda bootstrap tests need release binaries, and one
# profile means the AWS SDK crates compile once).
#
# CARGO_TARGET_DIR defaults to a cache folder outside the clone, so repeated runs are incremental.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/keyguard/target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
start=$(date +%s)
step() { echo "== $* ($(( $(date +%s) - start ))s)"; }

step "emulator rig: tests/emulator/setup.sh"
tests/emulator/setup.sh

step "emulator rig self-test"
tests/emulator/.venv/bin/python tests/emulator/selftest.py

step "rustfmt"
cargo fmt --all --check

step "clippy (warnings denied)"
cargo clippy --release --workspace --all-targets --locked -- -D warnings

step "tests (release)"
cargo test --release --workspace --locked

step "done"
