#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs the emulator rig's Python packages into
# tests/emulator/.venv (moto's server, cargo-lambda) and Debian's chromium (the report's rendering
# test) when missing, then checks formatting and clippy, validates the CloudFormation templates
# (deploy/lint.sh: cfn-lint and checkov in deploy/.venv), runs every test against one release build
# (the Lambda bootstrap tests need release binaries, and one profile means the AWS SDK crates
# compile once), and last the least-privilege test over the calls the whole suite made.
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

if ! command -v chromium >/dev/null 2>&1; then
  step "headless Chromium for the report test: apt-get install chromium"
  sudo_=""; [ "$(id -u)" -ne 0 ] && sudo_="sudo"
  $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
    || { $sudo_ apt-get update -q >/dev/null && $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT

step "emulator rig self-test"
tests/emulator/.venv/bin/python tests/emulator/selftest.py | tee -a "$log"

step "rustfmt"
cargo fmt --all --check

step "clippy (warnings denied)"
cargo clippy --release --workspace --all-targets --locked -- -D warnings

step "templates: cfn-lint and checkov (deploy/lint.sh)"
deploy/lint.sh

step "tests (release)"
# Every rig logs the (role, action) pairs it serves here; the least-privilege test reads them last.
rm -rf "$CARGO_TARGET_DIR/tmp/rig-calls"
cargo test --release --workspace --locked --no-fail-fast 2>&1 | tee -a "$log"

step "least privilege: the roles of deploy/ against the calls the suite made"
cargo test --release --workspace --locked --test deploy -- --ignored 2>&1 | tee -a "$log"

step "done"
# One closing line with the totals (cargo's own last lines are doc-test binaries with 0 tests).
awk '/(^test result:|^rig self-test:)/ { for (i = 2; i <= NF; i++) { if ($i ~ /^passed[;,]?$/) p += $(i-1); if ($i ~ /^failed[;,]?$/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
