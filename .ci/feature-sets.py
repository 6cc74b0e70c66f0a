#!/usr/bin/env python3
"""Checks that `cargo run` (the README's first command: the root package, normal dependencies) and
`cargo test --workspace` (every package, with dev-dependencies) resolve every dependency with the
same features. If they did not, the test command would compile those dependencies (and everything
above them, often the whole AWS SDK stack) a second time. The fix is a feature pin in the
workspace Cargo.toml (see aws-smithy-http-client there)."""

import re
import subprocess
import sys


def features(*args: str) -> dict[str, set[str]]:
    out = subprocess.run(
        ["cargo", "tree", "--locked", "--prefix", "none", "--no-dedupe", "-f", "{p} [{f}]", *args],
        check=True, capture_output=True, text=True,
    ).stdout
    found: dict[str, set[str]] = {}
    for line in out.splitlines():
        m = re.match(r"(\S+ v\S+)(?: \([^)]*\))?(?: \(\*\))? \[(.*)\]$", line.strip())
        if m:
            found.setdefault(m.group(1), set()).update(f for f in m.group(2).split(",") if f)
    return found


run = features("-p", "keyguard", "-e", "normal,build")
test = features("--workspace", "-e", "normal,build,dev")
differ = [(p, sorted(test[p] - run[p]), sorted(run[p] - test[p])) for p in sorted(run) if p in test and run[p] != test[p]]
for p, more, fewer in differ:
    print(f"{p}: the tests add {more or '-'}, drop {fewer or '-'}", file=sys.stderr)
if differ:
    sys.exit("feature sets differ: the test build would recompile these dependencies")
print(f"one feature set: {len(run)} packages resolve alike for `cargo run` and `cargo test`")
