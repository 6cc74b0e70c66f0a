#!/usr/bin/env python3
"""Writes examples/acme/: the evidence folder of a fictional organization, in the exact formats the
AWS CLI exports (see README, "The evidence folder"). Deterministic: running it again gives the same
files. Keys are placed at every stage of keyguard's policy relative to COLLECTED_AT.

Besides the inventory it writes the org trail's log files (cloudtrail/AWSLogs/...: key rotations,
disables and deletes by keyguard's role, exemption-group changes by people, unrelated noise, one
file delivered twice, and the calls two CI users' keys made, for where each key is used) and each account's Config results, except the sandbox account's (so that the
report shows an account that is not evaluated). The Config results are keyguard's own verdicts,
taken from `keyguard audit --json` on the inventory just written, so the release binary must be
built first:

    cargo build --release && python3 examples/generate.py
"""

import csv
import gzip
import hashlib
import subprocess
import io
import json
import os
import random
import string
from datetime import datetime, timedelta, timezone
from pathlib import Path

COLLECTED_AT = datetime(2026, 11, 20, 9, 0, 0, tzinfo=timezone.utc)
OUT = Path(__file__).resolve().parent / "acme"
GROUP = "IAMKeyRotationExemptionGroup"
EXPIRY = "keyguard:exemption-expires"
rng = random.Random(20261120)


trail_rng = random.Random(20261121)  # separate, so the trail does not shift the inventory's ids
late_rng = random.Random(20261122)   # for users added later, for the same reason
usage_rng = random.Random(20261123)  # the calls made with the CI users' keys, for the same reason


def ident(prefix: str, n: int, r: random.Random = rng) -> str:
    return prefix + "".join(r.choice(string.ascii_uppercase + string.digits) for _ in range(n))


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
    ends_soon = (COLLECTED_AT + timedelta(days=20)).strftime("%Y-%m-%d")
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
        (f"{team}-audit-tool", "/vendors/", [GROUP], {**o, EXPIRY: ends_soon}, [(95, 1, True, None)]),  # exemption ends in 20 days
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


ORG = "o-acme0example"
KEYGUARD = "arn:aws:sts::{acct}:assumed-role/keyguard-member/keyguard"
ALICE = "arn:aws:sts::{acct}:assumed-role/AWSReservedSSO_SecurityAdmin_5e1f/alice@acme.example"
BOB = "arn:aws:sts::{acct}:assumed-role/AWSReservedSSO_PlatformAdmin_77c2/bob@acme.example"
NOT_EVALUATED = {"510987654321"}   # no config-compliance.json: the report must say "not evaluated"
STALE = {"410987654321": 4}        # Config last evaluated 4 days before collection


def event(acct: str, when: datetime, name: str, actor: str, params: dict, response=None, source="iam.amazonaws.com") -> dict:
    kind = "AssumedRole" if ":assumed-role/" in actor else "IAMUser"
    return {
        "eventVersion": "1.09",
        "userIdentity": {"type": kind, "arn": actor, "accountId": acct, "accessKeyId": ident("ASIA", 16, trail_rng)},
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.17",
        "requestParameters": params,
        "responseElements": response,
        "requestID": ident("", 32, trail_rng).lower(),
        "eventID": "%08x-%04x-%04x-%04x-%012x" % (trail_rng.getrandbits(32), trail_rng.getrandbits(16), trail_rng.getrandbits(16), trail_rng.getrandbits(16), trail_rng.getrandbits(48)),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": acct,
        "eventCategory": "Management",
    }


def trail_events(acct: str, team: str, keys: dict, expiry: dict) -> list:
    """The account's followed IAM events of the last five weeks, plus noise."""
    kg, alice, bob = KEYGUARD.format(acct=acct), ALICE.format(acct=acct), BOB.format(acct=acct)
    out = []
    def key_of(user, i):
        return keys[f"{team}-{user}"][i]
    # keyguard's rotations: the new key of -sync (6 days ago) and of -etl (13 days ago)
    for user, i in (("sync", 1), ("etl", 1)):
        kid, created = key_of(user, i)
        out.append(event(acct, created, "CreateAccessKey", kg, {"userName": f"{team}-{user}"},
                         {"accessKey": {"accessKeyId": kid, "status": "Active", "userName": f"{team}-{user}", "createDate": cli(created)}}))
    # keyguard's disables: -legacy-app (5 days ago), -old-batch (14 days ago)
    for user, days in (("legacy-app", 5), ("old-batch", 14)):
        kid, _ = key_of(user, 0)
        out.append(event(acct, t(days), "UpdateAccessKey", kg, {"userName": f"{team}-{user}", "accessKeyId": kid, "status": "Inactive"}))
    # keyguard deleted the previous key of -deploy 2 days ago (that key is gone from the inventory)
    out.append(event(acct, t(2.2), "DeleteAccessKey", kg, {"userName": f"{team}-deploy", "accessKeyId": ident("AKIA", 16, trail_rng)}))
    # a person created -deploy's current key (12 days ago)
    kid, created = key_of("deploy", 0)
    out.append(event(acct, created, "CreateAccessKey", bob, {"userName": f"{team}-deploy"},
                     {"accessKey": {"accessKeyId": kid, "status": "Active", "userName": f"{team}-deploy", "createDate": cli(created)}}))
    # exemptions: -vendor added 4 days ago while its 300-day key was overdue, expiry tagged 2 minutes later
    out.append(event(acct, t(4), "AddUserToGroup", alice, {"groupName": GROUP, "userName": f"{team}-vendor"}))
    out.append(event(acct, t(4) + timedelta(minutes=2), "TagUser", alice,
                     {"userName": f"{team}-vendor", "tags": [{"key": EXPIRY, "value": expiry[f"{team}-vendor"]}]}))
    # -scanner added 10 days ago (the week before) and never given an expiry
    out.append(event(acct, t(10), "AddUserToGroup", bob, {"groupName": GROUP, "userName": f"{team}-scanner"}))
    if acct == "310987654321":
        # payments: one exemption withdrawn, and a key restored by hand
        out.append(event(acct, t(1.5), "RemoveUserFromGroup", alice, {"groupName": GROUP, "userName": f"{team}-metrics"}))
        kid, _ = key_of("legacy-app", 0)
        out.append(event(acct, t(3), "UpdateAccessKey", bob, {"userName": f"{team}-legacy-app", "accessKeyId": kid, "status": "Active"}))
        out.append(event(acct, t(2.9), "UpdateAccessKey", kg, {"userName": f"{team}-legacy-app", "accessKeyId": kid, "status": "Inactive"}))
    # noise the reader must skip
    for d in range(0, 35, 3):
        out.append(event(acct, t(d + 0.5), "GetObject", bob, {"bucketName": "acme-data", "key": "x"}, source="s3.amazonaws.com"))
        out.append(event(acct, t(d + 0.6), "ListUsers", kg, {}))
        out.append(event(acct, t(d + 0.7), "CreateAccessKey", bob, {"userName": "denied-user"}) | {"errorCode": "AccessDenied"})
    return out


def key_call(acct: str, when: datetime, user: str, key_id: str, source: str, name: str, region: str, ip: str, agent: str) -> dict:
    """A call made with an IAM user's long-term key (what "where the key is used" counts); only
    usage_rng is drawn from, so the IAM events keep their ids."""
    return {
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{acct}:user/{user}", "accountId": acct,
                         "accessKeyId": key_id, "userName": user, "principalId": ident("AIDA", 17, usage_rng)},
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": ip,
        "userAgent": agent,
        "requestParameters": None,
        "responseElements": None,
        "requestID": ident("", 32, usage_rng).lower(),
        "eventID": "%08x-%04x-%04x-%04x-%012x" % (usage_rng.getrandbits(32), usage_rng.getrandbits(16), usage_rng.getrandbits(16), usage_rng.getrandbits(16), usage_rng.getrandbits(48)),
        "readOnly": True,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": acct,
        "eventCategory": "Management",
    }


def usage_events(acct: str, team: str, keys: dict) -> list:
    """Calls made with the CI users' keys in the last days (management events: CloudTrail records
    no data event, an S3 object read say, unless the trail logs data events), consistent with
    the credential report's last use: -sync's old and new key both in use from its runner (in its installation
    grace), -etl's old key used from a Terraform runner until 3 days ago and its new key since."""
    out = []
    runner, terraform = f"203.0.113.{10 + int(acct[0])}", "198.51.100.23"
    old, _ = keys[f"{team}-sync"][0]
    new, created = keys[f"{team}-sync"][1]
    for h in range(0, 5 * 24, 6):
        out.append(key_call(acct, t(0.3 + h / 24), f"{team}-sync", old, "ecr.amazonaws.com", "GetAuthorizationToken", "us-east-1", runner,
                            "aws-cli/2.15.0 Python/3.11.6 Linux/6.1.0 exe/x86_64.amzn.2023 prompt/off command/ecr.get-login-password"))
    for h in range(0, 24, 8):
        out.append(key_call(acct, t(0.3 + h / 24), f"{team}-sync", new, "ecr.amazonaws.com", "GetAuthorizationToken", "us-east-1", runner,
                            "Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux#6.1 lang/python#3.11.6"))
    old, _ = keys[f"{team}-etl"][0]
    new, _ = keys[f"{team}-etl"][1]
    for d in range(3, 10):
        out.append(key_call(acct, t(d), f"{team}-etl", old, "glue.amazonaws.com", "StartJobRun", "eu-west-1", terraform,
                            "terraform-provider-aws/5.31.0 (+https://registry.terraform.io/providers/hashicorp/aws)"))
    for d in (0.1, 1.1, 2.1):
        out.append(key_call(acct, t(d), f"{team}-etl", new, "glue.amazonaws.com", "StartJobRun", "eu-west-1", terraform,
                            "terraform-provider-aws/5.31.0 (+https://registry.terraform.io/providers/hashicorp/aws)"))
    return out


def write_trail(acct: str, events: list, per: int = 13, r: random.Random = trail_rng) -> None:
    """One file per hour of `events` (`per` = 10: per day); file names drawn from `r`."""
    by_hour = {}
    for e in events:
        by_hour.setdefault(e["eventTime"][:per] + ("T00" if per == 10 else ""), []).append(e)
    for hour, evs in sorted(by_hour.items()):
        when = datetime.strptime(hour, "%Y-%m-%dT%H").replace(tzinfo=timezone.utc)
        region = evs[0]["awsRegion"]
        name = f"{acct}_CloudTrail_{region}_{when.strftime('%Y%m%dT%H%M')}Z_{ident('', 16, r).lower()}.json.gz"
        folder = OUT / "cloudtrail" / "AWSLogs" / ORG / acct / "CloudTrail" / region / when.strftime("%Y/%m/%d")
        folder.mkdir(parents=True, exist_ok=True)
        data = gzip.compress(json.dumps({"Records": evs}).encode(), mtime=0)
        (folder / name).write_bytes(data)
        if any(e["eventName"] == "AddUserToGroup" for e in evs):  # delivered twice: must count once
            (folder / name.replace(".json.gz", "_copy.json.gz")).write_bytes(data)


def config_results() -> None:
    """Each account's Config results: keyguard's own verdicts on the inventory just written."""
    cmd = [os.environ["KEYGUARD_BIN"]] if os.environ.get("KEYGUARD_BIN") else ["cargo", "run", "--release", "-q", "--"]
    out = subprocess.run(
        cmd + ["audit", "--evidence", str(OUT), "--json"],
        check=True, capture_output=True, text=True, cwd=OUT.parent.parent,
    ).stdout
    rows = json.loads(out)
    for acct in sorted({r["account"] for r in rows}):
        if acct in NOT_EVALUATED:
            (OUT / acct / "config-compliance.json").unlink(missing_ok=True)
            (OUT / acct / "conformance-pack-compliance.json").unlink(missing_ok=True)
            continue
        recorded = COLLECTED_AT - timedelta(days=STALE.get(acct, 0), hours=3)
        results = [{
            "EvaluationResultIdentifier": {
                "EvaluationResultQualifier": {"ConfigRuleName": "keyguard-access-keys", "ResourceType": "AWS::IAM::User", "ResourceId": r["user_id"]},
                "OrderingTimestamp": cli(recorded),
            },
            "ComplianceType": r["compliance"],
            "ResultRecordedTime": cli(recorded),
            "ConfigRuleInvokedTime": cli(recorded),
            "Annotation": r["annotation"],
        } for r in rows if r["account"] == acct and r["user_name"] != "<root_account>"]  # Config evaluates IAM users only
        write(OUT / acct / "config-compliance.json", json.dumps({"EvaluationResults": results}, indent=4) + "\n")
        ours = [r for r in rows if r["account"] == acct and r["user_name"] != "<root_account>"]
        pack_results(acct, "NON_COMPLIANT" if any(r["compliance"] == "NON_COMPLIANT" for r in ours) else "COMPLIANT")


def pack_results(acct: str, keyguard: str) -> None:
    """keyguard's conformance pack in the account as Config would report it
    (`aws configservice describe-conformance-pack-compliance`): keyguard's rule as evaluated,
    and the AWS managed companions judged as AWS does, on the credential report (no exemptions,
    no grace): a key over 90 days, a key unused for 45, the root user's key."""
    rows = list(csv.DictReader((OUT / acct / "credential-report.csv").read_text().splitlines()))
    def when(v: str):
        return None if v in ("N/A", "no_information", "") else datetime.fromisoformat(v)
    old = unused = root = False
    for r in rows:
        for n in ("1", "2"):
            if r[f"access_key_{n}_active"] != "true":
                continue
            if r["user"] == "<root_account>":
                root = True
                continue
            rotated = when(r[f"access_key_{n}_last_rotated"])
            used = when(r[f"access_key_{n}_last_used_date"]) or rotated
            old |= bool(rotated and COLLECTED_AT - rotated > timedelta(days=90))
            unused |= bool(used and COLLECTED_AT - used > timedelta(days=45))
    verdict = lambda bad: "NON_COMPLIANT" if bad else "COMPLIANT"  # noqa: E731
    suffix = "-conformance-pack-" + hashlib.sha256(acct.encode()).hexdigest()[:8]
    rules = [("keyguard-access-keys", keyguard), ("access-keys-rotated", verdict(old)),
             ("iam-user-unused-credentials-check", verdict(unused)), ("iam-root-access-key-check", verdict(root))]
    write(OUT / acct / "conformance-pack-compliance.json", json.dumps({
        "ConformancePackName": "keyguard-access-keys",
        "ConformancePackRuleComplianceList": [{"ConfigRuleName": name + suffix, "ComplianceType": c, "Controls": []} for name, c in rules],
    }, indent=4) + "\n")


def slice_of(rel: str) -> str | None:
    """The account whose evidence slice `rel` is in (keyguard_aws::manifest::slice_of)."""
    parts = rel.split("/")
    is_account = lambda p: len(p) == 12 and p.isdigit()  # noqa: E731
    if is_account(parts[0]):
        return parts[0]
    if parts[0] == "cloudtrail":
        return next((p for p in parts[1:] if is_account(p)), None)
    return None


def write_manifest() -> None:
    """manifest.json: the SHA-256 of every file of each account's slice (a report uses only the
    slices that match it)."""
    accounts: dict[str, dict[str, str]] = {}
    for path in sorted(OUT.rglob("*")):
        rel = path.relative_to(OUT).as_posix()
        acct = slice_of(rel) if path.is_file() else None
        if acct:
            accounts.setdefault(acct, {})[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    write(OUT / "manifest.json", json.dumps({"version": 1, "accounts": accounts}, indent=2) + "\n")


def main() -> None:
    (OUT / "manifest.json").unlink(missing_ok=True)
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
        key_ids, expiry = {}, {}
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(HEADER)
        # Staging's root user has an access key (CIS 1.4, Security Hub IAM.4): a finding keyguard
        # reports and never acts on.
        root_key = (["true", cli(t(893)), cli(t(18)), "us-east-1", "s3"] if acct == "410987654321"
                    else ["false", "N/A", "N/A", "N/A", "N/A"])
        w.writerow(["<root_account>", f"arn:aws:iam::{acct}:root", cli(t(900)), "not_supported", cli(t(30)), "not_supported",
                    "not_supported", "true", *root_key, "false", "N/A", "N/A", "N/A", "N/A",
                    "false", "N/A", "false", "N/A"])
        for name, path, groups, tags, keys in stages(team, owner):
            r = late_rng if name.endswith("-audit-tool") else rng
            created = t(400)
            arn = f"arn:aws:iam::{acct}:user{path}{name}"
            tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]
            slots = []
            for age, used, active, disabled in keys:
                key_id = ident("AKIA", 16, r)
                if disabled is not None:
                    tag_list.append({"Key": f"keyguard:disabled:{key_id}", "Value": cli(t(disabled))})
                slots.append((key_id, t(age), None if used is None else t(used), active))
                key_ids.setdefault(name, []).append((key_id, t(age)))
                keys_out.append({"UserName": name, "AccessKeyId": key_id, "Status": "Active" if active else "Inactive", "CreateDate": cli(t(age))})
            if EXPIRY in tags:
                expiry[name] = tags[EXPIRY]
            users.append({"Path": path, "UserName": name, "UserId": ident("AIDA", 17, r), "Arn": arn, "CreateDate": cli(created),
                          "UserPolicyList": [], "GroupList": groups, "AttachedManagedPolicies": [], "Tags": tag_list})
            row = [name, arn, cli(created), "true" if not keys else "false", cli(t(2)) if not keys else "N/A",
                   cli(t(60)) if not keys else "N/A", "N/A", "true" if not keys else "false"]
            for i in range(2):
                if i < len(slots):
                    _, c, u, active = slots[i]
                    row += ["true" if active else "false", cli(c), "N/A" if u is None else cli(u),
                            "N/A" if u is None else "us-east-1", "N/A" if u is None else r.choice(["s3", "sts", "ecr", "dynamodb"])]
                else:
                    row += ["false", "N/A", "N/A", "N/A", "N/A"]
            row += ["false", "N/A", "false", "N/A"]
            w.writerow(row)
        d = OUT / acct
        write(d / "credential-report.csv", buf.getvalue())
        details = {"UserDetailList": users, "GroupDetailList": [], "RoleDetailList": [], "Policies": []}
        write(d / "account-authorization-details.json", json.dumps(details, indent=4) + "\n")
        write(d / "access-keys.json", json.dumps({"AccessKeyMetadata": keys_out}, indent=4) + "\n")
        write_trail(acct, trail_events(acct, team, key_ids, expiry))
        # The calls made with the keys, in their own files (by Region and hour), after the IAM
        # events so that those keep their names.
        calls = usage_events(acct, team, key_ids)
        for region in ("us-east-1", "eu-west-1"):
            write_trail(acct, [e for e in calls if e["awsRegion"] == region], per=10, r=usage_rng)
    config_results()
    write_manifest()


if __name__ == "__main__":
    main()
