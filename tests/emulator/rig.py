"""keyguard's AWS emulator rig: moto's standalone server plus the few things moto lacks.

Run: .venv/bin/python rig.py [--host 127.0.0.1] [--port 0]
It prints one line `RIG_READY port=<port>` on stdout once it listens, then serves until killed.

What it adds, inside the moto process (docs/rig.md says why):

- Call counts per account and action:         GET  /_rig/calls?account=A   POST /_rig/calls/reset?account=A
- Calls per assumed role (the role's name, whatever the account): GET /_rig/calls/by-role; with
  RIG_CALL_LOG_DIR set, each new (role, service:Action) pair is also appended to
  $RIG_CALL_LOG_DIR/rig-<pid>.jsonl, so that the least-privilege test (tests/it/deploy.rs) can read
  what every test binary's code did under keyguard's roles; so is each new partition key a role's
  DynamoDB item call reached ("leading_key", what dynamodb:LeadingKeys limits).
- Key backdating (CreateDate, last use):       POST /_rig/iam/access-key    {"account", "access_key_id",
                                                     "created"?, "last_used"? (ISO or null), "service"?, "region"?}
- Config evaluations: PutEvaluations is stored per (account, region, rule) and answered by
  GetComplianceDetailsByConfigRule, DescribeComplianceByConfigRule, GetComplianceDetailsByResource
  and GetAggregateComplianceDetailsByConfigRule. The rule is named by the ResultToken, which the
  rig reads as `<rule-name>` or `<rule-name>/<anything>` (real tokens are opaque; tests make them).
  A rule exists in an account once evaluations were put for it there (or moto has it from
  PutConfigRule); queries for any other rule answer NoSuchConfigRuleException, as AWS does.
  GET /_rig/config/evaluations?account=A lists what is stored.
- Config conformance packs (moto has none): PutConformancePack creates the template's rules as
  `<name>-conformance-pack-<8 characters>`, DescribeConformancePackCompliance and
  DescribeAggregateComplianceByConfigRules answer their verdicts from the stored evaluations
  (packs.py).
- CloudTrail LookupEvents built from the IAM write calls the server answered (us-east-1 only, as
  AWS records IAM there), with the secret access key removed as CloudTrail does.
- A root access key (moto's credential report never has one): POST /_rig/iam/root-key
  {"account", "created", "last_used"?, "active"?} makes the account's GetCredentialReport show the
  root user's first key so.
- Secrets scheduled for deletion refuse CreateSecret (of the same name), PutResourcePolicy,
  PutSecretValue and GetSecretValue with InvalidRequestException until RestoreSecret, as AWS does
  (moto lets them through, or answers ResourceExistsException).
- S3's ExpectedBucketOwner (moto ignores it): a call whose x-amz-expected-bucket-owner is not the
  bucket's account is denied (403 AccessDenied).
- Sent email read-back (SESv2 SendEmail, SES SendEmail/SendRawEmail): GET /_rig/emails?account=A
- Faults for the next N matching calls: POST /_rig/faults {"account"?, "action", "error",
  "status"?, "count"?, "skip"?, "failed_evaluations"?, "drop_response"?, "hang"?}; "skip" lets
  that many matching calls through first; error "FailedEvaluations" makes PutEvaluations report
  its first `failed_evaluations` items as failed instead. "drop_response": true carries the call
  out and then answers 500 `error` instead of its answer (a response lost on the way: the SDK
  retries). "hang": true holds the call, unexecuted, until POST /_rig/hung/release?account=A (or
  `hang_s`, default 60) and then answers 500 without executing it: a test aborts the caller while
  it waits, which is a process killed at that point. With "resume": true the held call is
  carried out as usual once released instead (a caller paused mid-call, as a process stopped by
  its host). GET /_rig/hung lists the held calls.
- Costs as AWS has them, where moto's grow with the organization (each found with py-spy on a
  benchmark; the answers are moto's): SQS SendMessage(Batch) and ReceiveMessage in O(1) per
  message (moto rebuilds every queue attribute, counting every message, for each one);
  Organizations ListAccounts and ListAccountsForParent in O(page) (moto describes, filters and
  sorts every account on each page); the account of an access key found once (moto scans every
  account's keys, twice a request); a DynamoDB Query of a table's key reads that partition (moto
  sorts the whole table); moto's list of its services read once (it stats its package directory
  under a global lock on every request); a DynamoDB transaction copies only the items it touches
  (moto deep-copies each table); no werkzeug log line per request. These live in moto_fixes.py.
- DynamoDB's writes are atomic as in AWS: conditional writes and transactions run one at a time
  (moto checks a condition and writes in separate steps on the server's threads, and its
  transaction rollback would undo other threads' writes).
- A latency model for benchmarks: POST /_rig/latency {"per_call_ms", "report_ms"}: every AWS call
  waits per_call_ms before it is answered (a modelled round trip; the rig's own API does not), and
  an account's first GenerateCredentialReport starts a generation that answers STARTED for
  report_ms (IAM generating the report), then COMPLETE. {"per_call_ms": 0,
  "report_ms": 0} turns it off; "forget_reports": true forgets which accounts generated one.
"""

from __future__ import annotations

import argparse
import os
import base64
import io
import json
import logging
import re
import sys
import threading
import time
from urllib.parse import parse_qs

from moto.moto_server.threaded_moto_server import MotoRequestHandler  # noqa: F401  (import check)
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

from cloudtrail import (IAM_WRITES, assumed_role, deliver, lookup_events, record_iam_event,
                        record_key_call, synthetic_calls)
from common import (CALL_LOG_DIR, CONFIG_PREFIX, Call, calls, calls_by_role, emails, error_response,
                    evaluations, faults, hung, iso, json_response, latency, lock, now, page, parse_time,
                    report_started, root_keys, trail)
import packs
from moto_fixes import (install_atomic_transactions, install_constant_time_queue,
                        install_keyed_queries, install_listed_services,
                        install_paged_account_lists, install_remembered_key_accounts)


def secret_marked_for_deletion(call) -> bool:
    """AWS refuses to change a secret scheduled for deletion until RestoreSecret; moto does not."""
    if call.service != "secretsmanager" or call.action not in ("CreateSecret", "PutResourcePolicy", "PutSecretValue", "GetSecretValue"):
        return False
    from moto.secretsmanager.models import secretsmanager_backends
    try:
        body = json.loads(call.body or b"{}")
        sid = body.get("Name") if call.action == "CreateSecret" else body.get("SecretId")
        store = secretsmanager_backends[call.account][call.region].secrets
        return bool(sid) and sid in store and store[sid].is_deleted()
    except Exception:
        return False


def with_root_key(payload: bytes, key: dict) -> bytes:
    """The GetCredentialReport answer with the root user's first access key as `key` says (moto's
    root row never has one, and no API call can give root a key)."""
    text = payload.decode()
    m = re.search(r"<Content>([^<]*)</Content>", text)
    if not m:
        return payload
    lines = base64.b64decode(m.group(1)).decode().splitlines()
    header = lines[0].split(",")
    # moto's report has no root row at all: the rig writes AWS's.
    row = {h: "N/A" for h in header}
    row.update({
        "user": "<root_account>", "arn": f"arn:aws:iam::{key['account']}:root",
        "user_creation_time": key["created"], "password_enabled": "not_supported",
        "password_last_changed": "not_supported", "password_next_rotation": "not_supported",
        "mfa_active": "true", "access_key_1_active": "true" if key.get("active", True) else "false",
        "access_key_1_last_rotated": key["created"], "access_key_1_last_used_date": key.get("last_used") or "N/A",
        "access_key_1_last_used_region": "us-east-1" if key.get("last_used") else "N/A",
        "access_key_1_last_used_service": "s3" if key.get("last_used") else "N/A",
        "access_key_2_active": "false", "cert_1_active": "false", "cert_2_active": "false",
    })
    root = ",".join(row[h] for h in header)
    lines = [lines[0], root] + [l for l in lines[1:] if not l.startswith("<root_account>,")]
    content = base64.b64encode(("\n".join(lines) + "\n").encode()).decode()
    return (text[: m.start(1)] + content + text[m.end(1):]).encode()
GENERATE_STARTED = (
    b'<GenerateCredentialReportResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
    b"<GenerateCredentialReportResult><State>STARTED</State>"
    b"<Description>No report exists. Starting a new report generation task</Description>"
    b"</GenerateCredentialReportResult><ResponseMetadata><RequestId>rig</RequestId>"
    b"</ResponseMetadata></GenerateCredentialReportResponse>"
)


def take_fault(call: Call) -> dict | None:
    with lock:
        for f in faults:
            if f["action"] != call.action:
                continue
            if f.get("account") and f["account"] != call.account:
                continue
            if f.get("skip", 0) > 0:
                f["skip"] -= 1
                return None
            f["count"] -= 1
            if f["count"] <= 0:
                faults.remove(f)
            return f
    return None


# ---------------------------------------------------------------- Config


def rule_of(token: str) -> str:
    return (token or "").split("/")[0] or "default"


def known_rule(account: str, region: str, rule: str) -> bool:
    if (account, region, rule) in evaluations or rule in packs.rules_of(account, region):
        return True
    try:
        from moto.config.models import config_backends

        return rule in config_backends[account][region].config_rules
    except Exception:  # noqa: BLE001 - moto's backend layout is not an API
        return False


def result_of(rule: str, e: dict) -> dict:
    return {
        "EvaluationResultIdentifier": {
            "EvaluationResultQualifier": {
                "ConfigRuleName": rule,
                "ResourceType": e["ComplianceResourceType"],
                "ResourceId": e["ComplianceResourceId"],
            },
            "OrderingTimestamp": e["OrderingTimestamp"],
        },
        "ComplianceType": e["ComplianceType"],
        "ResultRecordedTime": e["ResultRecordedTime"],
        "ConfigRuleInvokedTime": e["ResultRecordedTime"],
        **({"Annotation": e["Annotation"]} if e.get("Annotation") else {}),
    }


def config_call(call: Call, start_response, fault: dict | None):
    answered = packs.config_call(call, start_response)
    if answered is not None:
        return answered
    action = call.action
    req = call.json()
    acct, region = call.account, call.region
    if action == "PutEvaluations":
        evs = req.get("Evaluations") or []
        if len(evs) > 100:
            return error_response(start_response, call, 400, "ValidationException", "Evaluations has more than 100 items")
        token = req.get("ResultToken")
        if not token:
            return error_response(start_response, call, 400, "InvalidResultTokenException", "ResultToken is empty")
        for e in evs:
            if e.get("ComplianceType") not in ("COMPLIANT", "NON_COMPLIANT", "NOT_APPLICABLE"):
                return error_response(start_response, call, 400, "InvalidParameterValueException", f"ComplianceType {e.get('ComplianceType')} is not allowed")
            if len(e.get("Annotation") or "") > 256:
                return error_response(start_response, call, 400, "ValidationException", "Annotation is longer than 256 characters")
            if "OrderingTimestamp" not in e:
                return error_response(start_response, call, 400, "ValidationException", "OrderingTimestamp is required")
        failed = evs[: fault.get("failed_evaluations", len(evs))] if fault else []
        if req.get("TestMode"):
            return json_response(start_response, 200, {"FailedEvaluations": []})
        rule = rule_of(token)
        with lock:
            store = evaluations[(acct, region, rule)]
            for e in evs[len(failed):]:
                ts = parse_time(e["OrderingTimestamp"])
                old = store.get(e["ComplianceResourceId"])
                if old and parse_time(old["OrderingTimestamp"]) > ts:
                    continue  # Config keeps the newest evaluation of a resource
                store[e["ComplianceResourceId"]] = {
                    "ComplianceResourceType": e["ComplianceResourceType"],
                    "ComplianceResourceId": e["ComplianceResourceId"],
                    "ComplianceType": e["ComplianceType"],
                    "Annotation": e.get("Annotation"),
                    "OrderingTimestamp": ts.timestamp(),
                    "ResultRecordedTime": now().timestamp(),
                }
        return json_response(start_response, 200, {"FailedEvaluations": failed})
    if action == "GetComplianceDetailsByConfigRule":
        rule = req.get("ConfigRuleName", "")
        if not known_rule(acct, region, rule):
            return error_response(start_response, call, 400, "NoSuchConfigRuleException", f"The ConfigRule '{rule}' provided in the request is invalid.")
        if (req.get("Limit") or 0) > 100:
            return error_response(start_response, call, 400, "InvalidLimitException", "Limit must be at most 100")
        types = req.get("ComplianceTypes") or ["COMPLIANT", "NON_COMPLIANT"]
        with lock:
            items = [result_of(rule, e) for _, e in sorted(evaluations.get((acct, region, rule), {}).items()) if e["ComplianceType"] in types]
        chunk, nxt = page(items, req.get("Limit"), req.get("NextToken"))
        return json_response(start_response, 200, {"EvaluationResults": chunk, **({"NextToken": nxt} if nxt else {})})
    if action == "GetComplianceDetailsByResource":
        rid = req.get("ResourceId")
        types = req.get("ComplianceTypes") or ["COMPLIANT", "NON_COMPLIANT"]
        with lock:
            items = [
                result_of(rule, e)
                for (a, r, rule), store in sorted(evaluations.items())
                if a == acct and r == region
                for e in [store.get(rid)]
                if e and e["ComplianceType"] in types
            ]
        return json_response(start_response, 200, {"EvaluationResults": items})
    if action == "DescribeComplianceByConfigRule":
        names = req.get("ConfigRuleNames")
        out = []
        with lock:
            for (a, r, rule), store in sorted(evaluations.items()):
                if a != acct or r != region or (names and rule not in names):
                    continue
                non = sum(1 for e in store.values() if e["ComplianceType"] == "NON_COMPLIANT")
                kind = "NON_COMPLIANT" if non else ("COMPLIANT" if store else "INSUFFICIENT_DATA")
                comp = {"ComplianceType": kind}
                if non:
                    comp["ComplianceContributorCount"] = {"CappedCount": min(non, 100), "CapExceeded": non > 100}
                out.append({"ConfigRuleName": rule, "Compliance": comp})
        return json_response(start_response, 200, {"ComplianceByConfigRules": out})
    if action == "GetAggregateComplianceDetailsByConfigRule":
        rule = req.get("ConfigRuleName", "")
        want_acct, want_region = req.get("AccountId"), req.get("AwsRegion")
        ctype = req.get("ComplianceType")
        with lock:
            items = []
            for (a, r, rname), store in sorted(evaluations.items()):
                if rname != rule or (want_acct and a != want_acct) or (want_region and r != want_region):
                    continue
                for _, e in sorted(store.items()):
                    if ctype and e["ComplianceType"] != ctype:
                        continue
                    res = result_of(rule, e)
                    res["AccountId"], res["AwsRegion"] = a, r
                    items.append(res)
        chunk, nxt = page(items, req.get("Limit"), req.get("NextToken"))
        return json_response(start_response, 200, {"AggregateEvaluationResults": chunk, **({"NextToken": nxt} if nxt else {})})
    return None  # not ours: moto answers


# ---------------------------------------------------------------- CloudTrail


def role_of(call: Call) -> str | None:
    """The name of the role whose assumed-role credentials signed `call`, if any."""
    role = assumed_role(call, call.access_key)
    if role is None:
        return None
    parts = role.arn.split(":", 5)[-1].split("/")
    return parts[1] if len(parts) > 1 else None


def leading_keys(call: Call) -> list[str]:
    """The partition keys (`pk`) a DynamoDB item call reaches: what `dynamodb:LeadingKeys` sees."""
    if call.service != "dynamodb":
        return []
    req = call.json()
    items = [req]
    if call.action == "TransactWriteItems":
        items = [op for t in req.get("TransactItems") or [] for op in t.values()]
    out = []
    for it in items:
        for part in ("Key", "Item"):
            pk = ((it.get(part) or {}).get("pk") or {}).get("S")
            if pk is not None:
                out.append(pk)
        pk = ((it.get("ExpressionAttributeValues") or {}).get(":pk") or {}).get("S")
        if call.action == "Query" and pk is not None:
            out.append(pk)
    return out


logged_keys: set[tuple[str, str, str]] = set()


def count_role_call(call: Call) -> None:
    role = role_of(call)
    if role is None:
        return
    name = f"{call.service}:{call.action}"
    with lock:
        first = name not in calls_by_role[role]
        calls_by_role[role][name] += 1
        # Each (role, action, partition key) once: the least-privilege test checks the keys of a
        # role limited by dynamodb:LeadingKeys.
        keys = [k for k in leading_keys(call) if (role, name, k) not in logged_keys]
        logged_keys.update((role, name, k) for k in keys)
    if (first or keys) and CALL_LOG_DIR:
        os.makedirs(CALL_LOG_DIR, exist_ok=True)
        lines = [json.dumps({"role": role, "action": name, "account": call.account})] if first else []
        lines += [json.dumps({"role": role, "action": name, "account": call.account, "leading_key": k}) for k in keys]
        with open(os.path.join(CALL_LOG_DIR, f"rig-{os.getpid()}.jsonl"), "a", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))


# ---------------------------------------------------------------- email


def record_email(call: Call):
    if call.form:  # SES v1
        dest = [v for k, v in call.form.items() if k.startswith("Destination.") or k.startswith("Destinations.")]
        item = {"api": "ses", "action": call.action, "from": call.form.get("Source"), "to": dest,
                "subject": call.form.get("Message.Subject.Data"),
                "text": call.form.get("Message.Body.Text.Data"), "html": call.form.get("Message.Body.Html.Data")}
        if call.form.get("RawMessage.Data"):
            item["raw"] = base64.b64decode(call.form["RawMessage.Data"]).decode("utf-8", "replace")
    else:
        req = call.json()
        d = req.get("Destination") or {}
        content = req.get("Content") or {}
        simple = content.get("Simple") or {}
        item = {"api": "sesv2", "action": "SendEmail", "from": req.get("FromEmailAddress"),
                "to": d.get("ToAddresses", []), "cc": d.get("CcAddresses", []), "bcc": d.get("BccAddresses", []),
                "subject": (simple.get("Subject") or {}).get("Data"),
                "text": ((simple.get("Body") or {}).get("Text") or {}).get("Data"),
                "html": ((simple.get("Body") or {}).get("Html") or {}).get("Data")}
        if content.get("Raw"):
            item["raw"] = base64.b64decode(content["Raw"]["Data"]).decode("utf-8", "replace")
    item["time"] = iso(now())
    with lock:
        emails[call.account].append(item)


# ---------------------------------------------------------------- rig control API


def backdate_key(req: dict) -> dict:
    from moto.iam.models import AccessKeyLastUsed, iam_backends

    backend = iam_backends[req["account"]]["aws"]
    for user in backend.users.values():
        for key in user.access_keys:
            if key.access_key_id == req["access_key_id"]:
                if req.get("created"):
                    key.create_date = parse_time(req["created"]).replace(tzinfo=None)
                if "last_used" in req:
                    lu = req["last_used"]
                    key.last_used = None if lu is None else AccessKeyLastUsed(
                        timestamp=parse_time(lu).replace(tzinfo=None), service=req.get("service", "s3"), region=req.get("region", "us-east-1"))
                # moto lists a user's keys in creation order, as the credential report does.
                user.access_keys.sort(key=lambda k: k.create_date)
                return {"ok": True, "user": user.name}
    raise KeyError(f"no access key {req['access_key_id']} in account {req['account']}")


def rig_api(environ, start_response, body: bytes):
    path = environ["PATH_INFO"]
    method = environ["REQUEST_METHOD"]
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    req = json.loads(body or b"{}") if method == "POST" and body else {}
    account = query.get("account")
    try:
        with lock:
            if path == "/_rig/health":
                out = {"ok": True}
            elif path == "/_rig/calls" and method == "GET":
                out = {a: dict(c) for a, c in calls.items()} if not account else dict(calls.get(account, {}))
            elif path == "/_rig/calls/by-role" and method == "GET":
                out = {r: dict(c) for r, c in calls_by_role.items()}
            elif path == "/_rig/calls/reset":
                if account:
                    calls.pop(account, None)
                else:
                    calls.clear()
                out = {"ok": True}
            elif path == "/_rig/iam/access-key" and method == "POST":
                out = backdate_key(req)
            elif path == "/_rig/config/evaluations":
                out = [
                    {"account": a, "region": r, "rule": rule, **e}
                    for (a, r, rule), store in sorted(evaluations.items())
                    if not account or a == account
                    for e in store.values()
                ]
            elif path == "/_rig/emails":
                out = emails.get(account, []) if account else {a: m for a, m in emails.items()}
            elif path == "/_rig/trail/calls" and method == "POST":
                out = {"recorded": synthetic_calls(req)}
            elif path == "/_rig/trail/deliver" and method == "POST":
                out = {"keys": deliver(req)}
            elif path == "/_rig/trail":
                out = trail.get(account, []) if account else dict(trail)
            elif path == "/_rig/faults/clear":
                faults[:] = [f for f in faults if account and f.get("account") != account]
                out = {"ok": True}
            elif path == "/_rig/iam/root-key" and method == "POST":
                root_keys[req["account"]] = req
                out = {"ok": True}
            elif path == "/_rig/hung" and method == "GET":
                out = [{"account": h["account"], "action": h["action"]} for h in hung if not account or h["account"] == account]
            elif path == "/_rig/hung/release":
                for h in list(hung):
                    if not account or h["account"] == account:
                        h["event"].set()
                out = {"ok": True}
            elif path == "/_rig/latency" and method == "POST":
                latency["per_call_ms"] = int(req.get("per_call_ms", 0))
                latency["report_ms"] = int(req.get("report_ms", 0))
                if req.get("forget_reports"):
                    report_started.clear()
                out = dict(latency)
            elif path == "/_rig/faults" and method == "POST":
                fault = {"count": 1, "status": 400, **req}
                faults.append(fault)
                out = {"ok": True}
            else:
                return json_response(start_response, 404, {"error": f"unknown rig path {method} {path}"})
    except KeyError as e:
        return json_response(start_response, 404, {"error": str(e)})
    return json_response(start_response, 200, out)


def wrong_bucket_owner(call: Call) -> bool:
    """S3's ExpectedBucketOwner, which moto ignores: a call naming an expected owner (the
    x-amz-expected-bucket-owner header) of a bucket owned by another account is denied."""
    expected = call.environ.get("HTTP_X_AMZ_EXPECTED_BUCKET_OWNER")
    if not expected:
        return False
    from moto.s3.models import s3_backends
    bucket = call.path.lstrip("/").split("/")[0]
    owner = s3_backends.bucket_accounts.get(bucket)
    return owner is not None and owner[1] != expected


class Rig:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        if environ.get("PATH_INFO", "").startswith("/_rig/"):
            return rig_api(environ, start_response, body)
        call = Call(environ, body)
        with lock:
            calls[call.account][f"{call.service}:{call.action}"] += 1
        count_role_call(call)
        if latency["per_call_ms"]:
            time.sleep(latency["per_call_ms"] / 1000)
        if latency["report_ms"] and call.action == "GenerateCredentialReport":
            with lock:
                started = report_started.setdefault(call.account, time.monotonic())
            if (time.monotonic() - started) * 1000 < latency["report_ms"]:
                start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(GENERATE_STARTED)))])
                return [GENERATE_STARTED]
            # The modelled generation is over: the report exists. (moto would answer its own
            # STARTED to an account's first call, a second generation the model did not ask for.)
            from moto.iam.models import iam_backends
            iam_backends[call.account]["aws"].generate_report()
        fault = take_fault(call)
        if fault and fault.get("hang"):
            held = {"account": call.account, "action": call.action, "event": threading.Event()}
            with lock:
                hung.append(held)
            held["event"].wait(timeout=fault.get("hang_s", 60))
            with lock:
                if held in hung:
                    hung.remove(held)
            if not fault.get("resume"):
                return error_response(start_response, call, 500, fault["error"], "interrupted by the rig")
            fault = None
        if call.service == "s3" and wrong_bucket_owner(call):
            return error_response(start_response, call, 403, "AccessDenied", "Access Denied")
        if secret_marked_for_deletion(call):
            return error_response(start_response, call, 400, "InvalidRequestException",
                                  "You can't perform this operation on the secret because it was marked for deletion.")
        drop = bool(fault and fault.get("drop_response"))
        # FailedEvaluations is not an error response: PutEvaluations answers it in its body.
        if fault and not drop and fault["error"] != "FailedEvaluations":
            return error_response(start_response, call, fault.get("status", 400), fault["error"], "injected by the rig")
        if call.target.startswith(CONFIG_PREFIX):
            answered = config_call(call, start_response, fault)
            if answered is not None:
                return answered
        # boto3 sends the long target, the AWS SDK for Rust "CloudTrail_20131101.LookupEvents".
        if call.target.endswith("CloudTrail_20131101.LookupEvents"):
            return lookup_events(call, start_response)

        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        chunks = self.app(environ, capture)
        try:
            payload = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        ok = captured["status"].startswith("2")
        if ok and call.service == "iam" and call.action in IAM_WRITES:
            record_iam_event(call, payload)
        record_key_call(call, ok)
        if ok and call.service in ("ses", "email") and call.action in ("SendEmail", "SendRawEmail"):
            record_email(call)
        if ok and call.service == "iam" and call.action == "GetCredentialReport" and call.account in root_keys:
            payload = with_root_key(payload, root_keys[call.account])
        if drop:
            return error_response(start_response, call, 500, fault["error"], "the answer was lost (rig)")
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(payload))))
        start_response(captured["status"], headers)
        return [payload]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--exit-with-stdin", action="store_true", help="exit when stdin closes (the test process ended)")
    args = parser.parse_args()
    install_paged_account_lists()
    install_constant_time_queue()
    install_remembered_key_accounts()
    install_keyed_queries()
    install_atomic_transactions()
    install_listed_services()
    app = DomainDispatcherApplication(create_backend_app)
    # One log line per request is an eighth of the rig's CPU under load (py-spy); errors still show.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(args.host, args.port, Rig(app), threaded=True)
    os.environ.setdefault("MOTO_PORT", str(server.port))
    if args.exit_with_stdin:
        def watch() -> None:
            sys.stdin.read()
            os._exit(0)

        threading.Thread(target=watch, daemon=True).start()
    print(f"RIG_READY port={server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
