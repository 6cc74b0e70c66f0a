#!/usr/bin/env bash
# Builds keyguard's three Lambda zips (rule-lambda, remediator, reporter; each a `bootstrap` for
# the provided.al2023 runtime) with cargo-lambda, which links through zig against Amazon Linux
# 2023's older glibc, and collects them with the templates and the conformance pack in dist/.
#
#   deploy/package.sh [--arm64] [--out DIR] [--bucket BUCKET [--prefix keyguard/]]
#
# --arm64 needs the aarch64-unknown-linux-gnu Rust target (rustup target add ...); the default is
# x86_64, which the templates default to (central.yaml's Architecture). With --bucket, the zips
# are uploaded with `aws s3 cp` for central.yaml's ArtifactBucket/ArtifactPrefix, and the
# conformance pack's template beside them (member-role.yaml's TemplateS3Uri).
# cargo-lambda comes from PyPI (deploy/requirements-package.txt, installed into
# deploy/.venv-package on first use).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
arch=--x86-64
out="$root/dist"
bucket=""
prefix="keyguard/"
while [ $# -gt 0 ]; do
  case "$1" in
    --arm64) arch=--arm64 ;;
    --x86-64) arch=--x86-64 ;;
    --out) out=$2; shift ;;
    --bucket) bucket=$2; shift ;;
    --prefix) prefix=$2; shift ;;
    *) echo "unknown option $1 (see the comment at the top of $0)" >&2; exit 2 ;;
  esac
  shift
done
cd "$root"
venv="$root/deploy/.venv-package"
stamp="$venv/.requirements"
if ! { [ -x "$venv/bin/cargo-lambda" ] && [ -f "$stamp" ] && cmp -s "$stamp" "$root/deploy/requirements-package.txt"; }; then
  "${PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/deploy/requirements-package.txt"
  cp "$root/deploy/requirements-package.txt" "$stamp"
fi
export PATH="$venv/bin:$PATH"
target=${CARGO_TARGET_DIR:-$root/target}
# The dist profile (Cargo.toml): fat LTO, one codegen unit, stripped. Only the zips pay for it.
cargo lambda build --profile dist "$arch" --output-format zip -p rule-lambda -p remediator -p reporter
mkdir -p "$out"
for f in rule-lambda remediator reporter; do
  zip="$target/lambda/$f/bootstrap.zip"
  python3 - "$zip" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
if names != ["bootstrap"]:
    sys.exit(f"{sys.argv[1]}: expected one file named bootstrap, found {names}")
PY
  cp "$zip" "$out/$f.zip"
done
cp deploy/central.yaml deploy/member-role.yaml deploy/org-list-role.yaml deploy/exemption-alarm.yaml deploy/notifications.yaml \
  deploy/member-guard-scp.yaml conformance-packs/keyguard-access-keys.yaml "$out/"
echo "packaged in $out (${arch#--}):"
for f in rule-lambda remediator reporter; do
  printf '  %-16s %s bytes\n' "$f.zip" "$(stat -c %s "$out/$f.zip")"
done
if [ -n "$bucket" ]; then
  for f in rule-lambda remediator reporter; do
    aws s3 cp "$out/$f.zip" "s3://$bucket/$prefix$f.zip"
  done
  # member-role.yaml's conformance pack reads its template from here (TemplateS3Uri).
  aws s3 cp "$out/keyguard-access-keys.yaml" "s3://$bucket/${prefix}keyguard-access-keys.yaml"
fi
