#!/usr/bin/env python3
"""Writes examples/acme/: the evidence folder of a fictional organization, in the exact formats the
AWS CLI exports (see README, "The evidence folder"). Deterministic: running it again gives the same
files. Keys are placed at every stage of keyguard's policy relative to COLLECTED_AT.

    python3 examples/generate.py
"""

import csv
import io
import json
import random
import string
from datetime import datetime, timedelta, timezone
from pathlib import Path

COLLECTED_AT = datetime(2026, 11, 20, 9, 0, 0, tzinfo=timezone.utc)
OUT = Path(__file__).resolve().parent / "acme"
GROUP = "IAMKeyRotationExemptionGroup"
EXPIRY = "keyguard:exemption-expires"
rng = random.Random(20261120)


def ident(prefix: str, n: int) -> str:
    return prefix + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(n))


def t(days_ago: float) -> datetime:
    return (COLLECTED_AT - timedelta(days=days_ago)).replace(microsecond=0)


def cli(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S+00:00")


ACCOUNTS = [
    ("210987654321", "acme-management", "aws-root+management@acme.example", "ACTIVE"),
    ("310987654321", "acme-prod", "aws-root+prod@acme.example", "ACTIVE"),
    ("410987654321", "acme-staging", "aws-root+staging@acme.example", "ACTIVE"),
    ("510987654321", "acme-sandbox", "aws-root+sandbox@acme.example", "ACTIVE"),
    ("610987654321", "acme-legacy", "aws-root+legacy@acme.example", "SUSPENDED"),
]

# (name, path, groups, tags, keys); a key is (age days, last used days ago or None, active, disabled days ago or None)
def stages(team: str, owner: str):
    exempt_until = (COLLECTED_AT + timedelta(days=45)).strftime("%Y-%m-%d")
    expired_on = (COLLECTED_AT - timedelta(days=20)).strftime("%Y-%m-%d")
    o = {"owner-email": owner}
    return [
        (f"{team}-deploy", "/ci/", [], o, [(12, 0.2, True, None)]),                         # fresh, used
        (f"{team}-terraform", "/ci/", [], o, [(80, 0.5, True, None)]),                      # in the warn window
        (f"{team}-backup", "/service/", [], o, [(97, 1, True, None)]),                      # due for rotation, used
        (f"{team}-reporting", "/service/", [], o, [(120, None, True, None)]),               # due but never used
        (f"{team}-metrics", "/service/", [], o, [(70, 52, True, None)]),                    # unused > 45 days
        (f"{team}-sync", "/service/", [], o, [(96, 0.3, True, None), (6, 0.3, True, None)]),   # rotated, in installation grace
        (f"{team}-etl", "/service/", [], o, [(104, 3, True, None), (13, 0.1, True, None)]),    # rotated, past installation grace
        (f"{team}-legacy-app", "/", [], o, [(130, 25, False, 5), (20, 0.2, True, None)]),     # disabled, in recovery grace
        (f"{team}-old-batch", "/", [], o, [(160, 40, False, 14), (30, 0.4, True, None)]),    # disabled, past recovery grace
        (f"{team}-vendor", "/vendors/", [GROUP], {**o, EXPIRY: exempt_until}, [(300, 1, True, None)]),   # exempt
        (f"{team}-vendor-old", "/vendors/", [GROUP], {**o, EXPIRY: expired_on}, [(200, 2, True, None)]), # exemption expired
        (f"{team}-scanner", "/", [GROUP], o, [(40, 1, True, None)]),                         # exempt without expiry
        (f"{team}+ops@acme.example", "/people/", ["developers"], {"owner-email": f"{team}+ops@acme.example"}, []),  # console user, no keys
    ]


HEADER = [
    "user", "arn", "user_creation_time", "password_enabled", "password_last_used", "password_last_changed",
    "password_next_rotation", "mfa_active", "access_key_1_active", "access_key_1_last_rotated",
    "access_key_1_last_used_date", "access_key_1_last_used_region", "access_key_1_last_used_service",
    "access_key_2_active", "access_key_2_last_rotated", "access_key_2_last_used_date",
    "access_key_2_last_used_region", "access_key_2_last_used_service", "cert_1_active", "cert_1_last_rotated",
    "cert_2_active", "cert_2_last_rotated",
]


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def main() -> None:
    accounts = {"Accounts": []}
    for acct, name, email, state in ACCOUNTS:
        accounts["Accounts"].append({
            "Id": acct, "Arn": f"arn:aws:organizations::210987654321:account/o-acme0example/{acct}",
            "Email": email, "Name": name, "Status": state, "State": state,
            "JoinedMethod": "CREATED" if acct != "210987654321" else "INVITED", "JoinedTimestamp": cli(t(900)),
        })
    write(OUT / "accounts.json", json.dumps(accounts, indent=4) + "\n")
    write(OUT / "collected.json", json.dumps({"collected_at": COLLECTED_AT.strftime("%Y-%m-%dT%H:%M:%SZ"), "tool": "examples/generate.py"}, indent=2) + "\n")
    teams = {"210987654321": ("platform", "platform-team@acme.example"), "310987654321": ("payments", "payments-team@acme.example"),
             "410987654321": ("data", "data-eng@acme.example"), "510987654321": ("lab", "lab@acme.example")}
    for acct, (team, owner) in teams.items():
        users, keys_out = [], []
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(HEADER)
        w.writerow(["<root_account>", f"arn:aws:iam::{acct}:root", cli(t(900)), "not_supported", cli(t(30)), "not_supported",
                    "not_supported", "true", "false", "N/A", "N/A", "N/A", "N/A", "false", "N/A", "N/A", "N/A", "N/A",
                    "false", "N/A", "false", "N/A"])
        for name, path, groups, tags, keys in stages(team, owner):
            created = t(400)
            arn = f"arn:aws:iam::{acct}:user{path}{name}"
            tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]
            slots = []
            for age, used, active, disabled in keys:
                key_id = ident("AKIA", 16)
                if disabled is not None:
                    tag_list.append({"Key": f"keyguard:disabled:{key_id}", "Value": cli(t(disabled))})
                slots.append((key_id, t(age), None if used is None else t(used), active))
                keys_out.append({"UserName": name, "AccessKeyId": key_id, "Status": "Active" if active else "Inactive", "CreateDate": cli(t(age))})
            users.append({"Path": path, "UserName": name, "UserId": ident("AIDA", 17), "Arn": arn, "CreateDate": cli(created),
                          "UserPolicyList": [], "GroupList": groups, "AttachedManagedPolicies": [], "Tags": tag_list})
            row = [name, arn, cli(created), "true" if not keys else "false", cli(t(2)) if not keys else "N/A",
                   cli(t(60)) if not keys else "N/A", "N/A", "true" if not keys else "false"]
            for i in range(2):
                if i < len(slots):
                    _, c, u, active = slots[i]
                    row += ["true" if active else "false", cli(c), "N/A" if u is None else cli(u),
                            "N/A" if u is None else "us-east-1", "N/A" if u is None else rng.choice(["s3", "sts", "ecr", "dynamodb"])]
                else:
                    row += ["false", "N/A", "N/A", "N/A", "N/A"]
            row += ["false", "N/A", "false", "N/A"]
            w.writerow(row)
        d = OUT / acct
        write(d / "credential-report.csv", buf.getvalue())
        details = {"UserDetailList": users, "GroupDetailList": [], "RoleDetailList": [], "Policies": []}
        write(d / "account-authorization-details.json", json.dumps(details, indent=4) + "\n")
        write(d / "access-keys.json", json.dumps({"AccessKeyMetadata": keys_out}, indent=4) + "\n")


if __name__ == "__main__":
    main()
