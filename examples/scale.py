#!/usr/bin/env python3
"""An evidence folder of N accounts for the report's scale benchmark (docs/performance.md):
the bundled example's production account (examples/acme/310987654321: 15 users at every stage of
the policy) copied N times under new account ids, deterministic (the same N gives the same
bytes), with accounts.json, collected.json and no trail (the report then says so once).

    python3 examples/scale.py 10000 /tmp/evidence-10k
    /usr/bin/time -v target/release/keyguard report --evidence /tmp/evidence-10k --weekly --out /tmp/r

Standard library only."""

import json
import shutil
import sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
source = root / "examples" / "acme"
template_id = "310987654321"


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    n, out = int(sys.argv[1]), Path(sys.argv[2])
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    files = {p.name: p.read_text() for p in (source / template_id).iterdir()}
    template = next(a for a in json.loads((source / "accounts.json").read_text())["Accounts"] if a["Id"] == template_id)
    accounts = []
    for i in range(n):
        acct = f"{600000000000 + i:012d}"
        d = out / acct
        d.mkdir()
        for name, text in files.items():
            (d / name).write_text(text.replace(template_id, acct))
        accounts.append({**template, "Id": acct, "Name": f"bench-{i:05d}",
                         "Email": f"aws-root+bench-{i:05d}@acme.example",
                         "Arn": template["Arn"].replace(template_id, acct)})
    (out / "accounts.json").write_text(json.dumps({"Accounts": accounts}, indent=1))
    shutil.copy(source / "collected.json", out / "collected.json")
    print(f"{out}: {n} accounts × 15 users")


if __name__ == "__main__":
    main()
