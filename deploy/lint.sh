#!/usr/bin/env bash
# Validates every CloudFormation template of deploy/ and the conformance pack of conformance-packs/ with cfn-lint and scans
# them with checkov, both from PyPI (pinned in requirements-lint.txt, installed into deploy/.venv
# on first use). Exits non-zero on any finding. Suppressions live next to the resource they
# concern (Metadata.checkov.skip), each with its reason. `deploy/lint.sh --install` only makes
# sure the venv is there (test.sh runs it beside the Rust build).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
python=${PYTHON:-python3}
venv="$here/.venv"
stamp="$venv/.requirements"
if ! { [ -x "$venv/bin/checkov" ] && [ -f "$stamp" ] && cmp -s "$stamp" "$here/requirements-lint.txt"; }; then
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements-lint.txt"
  cp "$here/requirements-lint.txt" "$stamp"
fi
if [ "${1:-}" = "--install" ]; then
  exit 0
fi
cd "$root"
templates=(
  deploy/central.yaml
  deploy/member-role.yaml
  deploy/org-list-role.yaml
  deploy/exemption-alarm.yaml
  deploy/notifications.yaml
  deploy/member-guard-scp.yaml
  deploy/security-lake-source.yaml
  conformance-packs/keyguard-access-keys.yaml
)
# The checks are a function of these files alone: when they are byte for byte what last passed,
# say so and stop (a one-line change elsewhere does not pay for the ~40 s of cfn-lint + checkov).
passed="$venv/.passed"
digest=$(cat "${templates[@]}" "$here/requirements-lint.txt" "$0" | sha256sum | cut -d' ' -f1)
if [ -f "$passed" ] && [ "$(cat "$passed")" = "$digest" ]; then
  echo "template checks: unchanged since they last passed (${#templates[@]} templates, sha256 ${digest:0:12})"
  exit 0
fi
echo "cfn-lint $("$venv/bin/cfn-lint" --version | awk '{print $2}'): ${templates[*]}"
"$venv/bin/cfn-lint" "${templates[@]}"
files=()
for t in "${templates[@]}"; do files+=(-f "$t"); done
# --skip-download: no Prisma Cloud API calls (CI has no internet); the checks are built in.
set +e
out=$(BC_SKIP_MAPPING=TRUE "$venv/bin/checkov" --framework cloudformation --skip-download --compact --quiet "${files[@]}" 2>&1)
status=$?
set -e
# checkov warns that it cannot expand Fn::ForEach for its graph checks; it still checks the rest.
printf '%s\n' "$out" | grep -v "Failed to create a new template with enriched resources" || true
if [ "$status" -ne 0 ]; then
  echo "checkov found problems (exit $status)" >&2
  exit "$status"
fi
echo "$digest" > "$passed"
echo "template checks: cfn-lint and checkov passed on ${#templates[@]} templates"
