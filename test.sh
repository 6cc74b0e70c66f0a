#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs the emulator rig's Python packages into
# tests/emulator/.venv (moto's server) and cfn-lint and checkov into deploy/.venv (both in the
# background, beside the Rust build), Debian's chromium (the report's rendering test) and
# cargo-machete (the unused-dependency check) when missing, then checks formatting,
# unused dependencies and clippy, validates the CloudFormation templates (deploy/lint.sh: cfn-lint
# and checkov in deploy/.venv), runs every test, and last the least-privilege test over the calls
# the whole suite made.
#
# It builds what the README's first command builds (the dev profile, in ./target or
# $CARGO_TARGET_DIR), so after `cargo run -- report …` only the test harnesses are compiled.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
target=${CARGO_TARGET_DIR:-$PWD/target}
start=$(date +%s)
step() { echo "== $* ($(( $(date +%s) - start ))s)"; }

# The Python tools (the rig's moto, cfn-lint and checkov) install beside the Rust build: each is
# waited for just before its first use. Their output goes to a log shown if they fail.
mkdir -p "$target/tmp"
step "emulator rig and template checkers: installing in the background (tests/emulator/setup.sh, deploy/lint.sh --install)"
tests/emulator/setup.sh > "$target/tmp/setup-rig.log" 2>&1 & rig_setup=$!
deploy/lint.sh --install > "$target/tmp/setup-lint.log" 2>&1 & lint_setup=$!
waited() { # pid, what, log
  if ! wait "$1"; then
    cat "$3" >&2
    echo "$2 failed (log above)" >&2
    exit 1
  fi
}

if ! command -v chromium >/dev/null 2>&1; then
  step "headless Chromium for the report test: apt-get install chromium"
  sudo_=""; [ "$(id -u)" -ne 0 ] && sudo_="sudo"
  $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
    || { $sudo_ apt-get update -q >/dev/null && $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }
fi

# cargo-machete (crates.io), pinned, installed beside the build so that it needs no global change.
machete_version=0.9.2
machete="$target/tools/bin/cargo-machete"
if ! { [ -x "$machete" ] && "$machete" --version 2>/dev/null | grep -q "$machete_version"; }; then
  step "cargo-machete $machete_version (unused dependencies): cargo install"
  cargo install --quiet --locked --root "$target/tools" cargo-machete --version "$machete_version"
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT

step "rustfmt"
cargo fmt --all --check

step "unused dependencies (cargo-machete)"
"$machete" --with-metadata

step "one feature set for the README's two commands (.ci/feature-sets.py)"
python3 .ci/feature-sets.py

step "clippy (warnings denied)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "emulator rig self-test"
waited "$rig_setup" "tests/emulator/setup.sh" "$target/tmp/setup-rig.log"
tests/emulator/.venv/bin/python tests/emulator/selftest.py | tee -a "$log"

step "templates: cfn-lint and checkov (deploy/lint.sh)"
waited "$lint_setup" "deploy/lint.sh --install" "$target/tmp/setup-lint.log"
deploy/lint.sh

step "tests"
# Every rig logs the (role, action) pairs it serves here; the least-privilege test reads them last.
rm -rf "$target/tmp/rig-calls"
cargo test --workspace --locked --no-fail-fast 2>&1 | tee -a "$log"

step "least privilege: the roles of deploy/ against the calls the suite made"
cargo test --workspace --locked --test it deploy:: -- --ignored 2>&1 | tee -a "$log"

step "done"
# One closing line with the totals (cargo's own last lines are doc-test binaries with 0 tests).
awk '/(^test result:|^rig self-test:)/ { for (i = 2; i <= NF; i++) { if ($i ~ /^passed[;,]?$/) p += $(i-1); if ($i ~ /^failed[;,]?$/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
