"""Self-test of the emulator rig's extensions, with boto3 (installed with moto): backdating, the
Config store and its queries, LookupEvents (without secrets), email read-back, call counts, faults,
the remembered key accounts and the paged account lists, CloudTrail of a user's own key (per
Region, by AccessKeyId, delivered as org-trail files).
Run by ./test.sh; prints `N passed, 0 failed` and exits non-zero on any failure."""

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import botocore.exceptions
from botocore.exceptions import ClientError

here = Path(__file__).resolve().parent
proc = subprocess.Popen([sys.executable, str(here / "rig.py"), "--port", "0", "--exit-with-stdin"],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
line = proc.stdout.readline()
assert line.startswith("RIG_READY port="), line
ep = f"http://127.0.0.1:{line.strip().split('=')[1]}"
passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f"FAILED: {name} {detail}")


def rig(path, body=None):
    req = urllib.request.Request(ep + path, data=None if body is None else json.dumps(body).encode(), method="GET" if body is None else "POST")
    return json.loads(urllib.request.urlopen(req).read())


try:
    base = dict(endpoint_url=ep, region_name="us-east-1", aws_access_key_id="AKIDSELFTEST", aws_secret_access_key="selftest")
    c = boto3.client("sts", **base).assume_role(RoleArn="arn:aws:iam::200000000001:role/self", RoleSessionName="selftest")["Credentials"]
    kw = dict(endpoint_url=ep, region_name="us-east-1", aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"])
    acct = "200000000001"
    iam = boto3.client("iam", **kw)
    iam.create_user(UserName="ci+deploy@x", Path="/ci/")
    iam.create_group(GroupName="IAMKeyRotationExemptionGroup")
    iam.add_user_to_group(GroupName="IAMKeyRotationExemptionGroup", UserName="ci+deploy@x")
    key = iam.create_access_key(UserName="ci+deploy@x")["AccessKey"]
    rig("/_rig/iam/access-key", {"account": acct, "access_key_id": key["AccessKeyId"], "created": "2026-01-01T00:00:00Z", "last_used": "2026-05-01T00:00:00Z"})
    listed = iam.list_access_keys(UserName="ci+deploy@x")["AccessKeyMetadata"][0]
    check("backdated CreateDate", listed["CreateDate"].isoformat().startswith("2026-01-01T00:00:00"), listed)
    used = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])["AccessKeyLastUsed"]
    check("backdated last use", used["LastUsedDate"].isoformat().startswith("2026-05-01"), used)
    while iam.generate_credential_report()["State"] != "COMPLETE":
        time.sleep(0.01)
    row = iam.get_credential_report()["Content"].decode().splitlines()[1]
    check("credential report shows backdating", "2026-01-01T00:00:00+00:00,2026-05-01T00:00:00+00:00" in row, row)

    cfg = boto3.client("config", **kw)
    ev = lambda rid, ctype, ts: {"ComplianceResourceType": "AWS::IAM::User", "ComplianceResourceId": rid, "ComplianceType": ctype, "Annotation": "a", "OrderingTimestamp": ts}  # noqa: E731
    cfg.put_evaluations(Evaluations=[ev(f"u{i:03}", "COMPLIANT", 100) for i in range(100)], ResultToken="kg/1")
    cfg.put_evaluations(Evaluations=[ev("u000", "NON_COMPLIANT", 200), ev("u001", "NON_COMPLIANT", 50)], ResultToken="kg/2")
    try:
        cfg.put_evaluations(Evaluations=[ev(f"x{i}", "COMPLIANT", 1) for i in range(101)], ResultToken="kg/3")
        check("more than 100 evaluations refused", False)
    except ClientError as e:
        check("more than 100 evaluations refused", e.response["Error"]["Code"] == "ValidationException")
    r1 = cfg.get_compliance_details_by_config_rule(ConfigRuleName="kg", Limit=60)
    r2 = cfg.get_compliance_details_by_config_rule(ConfigRuleName="kg", Limit=60, NextToken=r1["NextToken"])
    results = r1["EvaluationResults"] + r2["EvaluationResults"]
    by_id = {r["EvaluationResultIdentifier"]["EvaluationResultQualifier"]["ResourceId"]: r["ComplianceType"] for r in results}
    check("compliance results paged", len(results) == 100 and "NextToken" not in r2, len(results))
    check("newest ordering timestamp wins", by_id["u000"] == "NON_COMPLIANT" and by_id["u001"] == "COMPLIANT", by_id)
    other = boto3.client("config", **base)
    try:
        other.get_compliance_details_by_config_rule(ConfigRuleName="kg")
        check("results are per account", False)
    except ClientError as e:
        check("results are per account", e.response["Error"]["Code"] == "NoSuchConfigRuleException")
    agg = cfg.get_aggregate_compliance_details_by_config_rule(ConfigurationAggregatorName="a", ConfigRuleName="kg", AccountId=acct, AwsRegion="us-east-1")
    check("aggregate query", len(agg["AggregateEvaluationResults"]) == 100)
    # A conformance pack: its rules named as Config names them, their verdicts from the evaluations.
    body = (here.parent.parent / "conformance-packs" / "keyguard-access-keys.yaml").read_text()
    cfg.put_conformance_pack(ConformancePackName="keyguard-access-keys", TemplateBody=body, ConformancePackInputParameters=[
        {"ParameterName": "RuleFunctionArn", "ParameterValue": "arn:aws:lambda:us-east-1:000000000000:function:keyguard-rule-lambda"},
        {"ParameterName": "RemediationRoleArn", "ParameterValue": "arn:aws:iam::000000000000:role/keyguard-member-remediation-request"}])
    listed = cfg.describe_conformance_pack_compliance(ConformancePackName="keyguard-access-keys")["ConformancePackRuleComplianceList"]
    names = sorted(r["ConfigRuleName"].split("-conformance-pack-")[0] for r in listed)
    check("pack rules named as Config names them", names == ["access-keys-rotated", "iam-root-access-key-check", "iam-user-unused-credentials-check", "keyguard-access-keys"]
          and all("-conformance-pack-" in r["ConfigRuleName"] for r in listed), listed)
    ours = next(r["ConfigRuleName"] for r in listed if r["ConfigRuleName"].startswith("keyguard-access-keys"))
    cfg.put_evaluations(Evaluations=[ev("u000", "NON_COMPLIANT", 300)], ResultToken=f"{ours}/1")
    listed = {r["ConfigRuleName"]: r["ComplianceType"] for r in cfg.describe_conformance_pack_compliance(ConformancePackName="keyguard-access-keys")["ConformancePackRuleComplianceList"]}
    check("pack verdicts from the evaluations", listed[ours] == "NON_COMPLIANT" and sorted(listed.values()).count("INSUFFICIENT_DATA") == 3, listed)
    check("a pack's rule is a known rule", len(cfg.get_compliance_details_by_config_rule(ConfigRuleName=ours)["EvaluationResults"]) == 1)
    by_rule = cfg.describe_aggregate_compliance_by_config_rules(ConfigurationAggregatorName="a", Filters={"AccountId": acct, "AwsRegion": "us-east-1"})["AggregateComplianceByConfigRules"]
    check("aggregate rules of an account", {r["ConfigRuleName"] for r in by_rule} >= set(listed) | {"kg"}, by_rule)
    try:
        cfg.describe_conformance_pack_compliance(ConformancePackName="other")
        check("no such pack", False)
    except ClientError as e:
        check("no such pack", e.response["Error"]["Code"] == "NoSuchConformancePackException")

    ct = boto3.client("cloudtrail", **kw)
    events = ct.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateAccessKey"}])["Events"]
    check("LookupEvents records CreateAccessKey", len(events) == 1, events)
    check("LookupEvents holds no secret", key["SecretAccessKey"] not in json.dumps(events, default=str))
    trail = json.loads(events[0]["CloudTrailEvent"])
    check("event names the actor", trail["userIdentity"]["type"] == "AssumedRole" and "self/selftest" in trail["userIdentity"]["arn"], trail["userIdentity"])
    adds = ct.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "AddUserToGroup"}])["Events"]
    check("group change recorded", json.loads(adds[0]["CloudTrailEvent"])["requestParameters"]["groupName"] == "IAMKeyRotationExemptionGroup")

    ses = boto3.client("sesv2", **kw)
    ses.create_email_identity(EmailIdentity="keyguard@x.test")
    ses.send_email(FromEmailAddress="keyguard@x.test", Destination={"ToAddresses": ["o@x.test"]}, Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}})
    mails = rig(f"/_rig/emails?account={acct}")
    check("email read back", len(mails) == 1 and mails[0]["to"] == ["o@x.test"] and mails[0]["subject"] == "s", mails)

    calls = rig(f"/_rig/calls?account={acct}")
    check("calls counted", calls.get("iam:CreateUser") == 1 and calls.get("config:PutEvaluations") == 4, calls)
    by_role = rig("/_rig/calls/by-role")
    check("calls counted per assumed role", by_role.get("self", {}).get("iam:CreateUser") == 1, by_role)
    rig("/_rig/faults", {"account": acct, "action": "ListUsers", "error": "Throttling", "count": 1})
    try:
        boto3.client("iam", **kw, config=boto3.session.Config(retries={"total_max_attempts": 1})).list_users()
        check("fault injected", False, "no error raised")
    except ClientError as e:
        check("fault injected", e.response["Error"]["Code"] == "Throttling", e.response)
    check("fault used up", len(iam.list_users()["Users"]) == 1)
    # The latency model: each call waits; a credential report takes report_ms to generate.
    import time
    rig("/_rig/latency", {"per_call_ms": 50, "report_ms": 300, "forget_reports": True})
    t0 = time.monotonic()
    iam.list_users()
    check("per-call latency", time.monotonic() - t0 >= 0.05, time.monotonic() - t0)
    states = [iam.generate_credential_report()["State"]]
    time.sleep(0.35)
    states += [iam.generate_credential_report()["State"] for _ in range(2)]
    check("report generation takes report_ms", states[0] == "STARTED" and states[-1] == "COMPLETE", states)
    rig("/_rig/latency", {"per_call_ms": 0, "report_ms": 0})
    # A root access key in the credential report (moto's report has no root row).
    rig("/_rig/iam/root-key", {"account": acct, "created": "2025-01-01T00:00:00+00:00", "last_used": "2026-05-01T00:00:00+00:00"})
    while iam.generate_credential_report()["State"] != "COMPLETE":
        time.sleep(0.01)
    rows = iam.get_credential_report()["Content"].decode().splitlines()
    root = [r for r in rows if r.startswith("<root_account>,")]
    check("root key in the report", len(root) == 1 and ",true,true,2025-01-01T00:00:00+00:00,2026-05-01" in root[0], root)
    # A secret scheduled for deletion refuses changes until restored, as in AWS.
    sm = boto3.client("secretsmanager", **kw)
    sm.create_secret(Name="kg-deleted", SecretString="v")
    sm.delete_secret(SecretId="kg-deleted", RecoveryWindowInDays=7)
    codes = []
    for f in (lambda: sm.create_secret(Name="kg-deleted", SecretString="w"), lambda: sm.put_secret_value(SecretId="kg-deleted", SecretString="w")):
        try:
            f()
            codes.append("ok")
        except ClientError as e:
            codes.append(e.response["Error"]["Code"])
    sm.restore_secret(SecretId="kg-deleted")
    sm.put_secret_value(SecretId="kg-deleted", SecretString="w")
    check("deleted secret refuses changes until restored", codes == ["InvalidRequestException"] * 2, codes)
    # A lost answer: the call is carried out, the caller sees a 500.
    one = boto3.client("iam", **kw, config=boto3.session.Config(retries={"total_max_attempts": 1}))
    iam.create_user(UserName="dropped")
    rig("/_rig/faults", {"account": acct, "action": "CreateAccessKey", "error": "InternalFailure", "drop_response": True})
    try:
        one.create_access_key(UserName="dropped")
        check("answer dropped", False, "no error raised")
    except ClientError as e:
        check("answer dropped", e.response["ResponseMetadata"]["HTTPStatusCode"] == 500, e.response)
    check("dropped call carried out", len(iam.list_access_keys(UserName="dropped")["AccessKeyMetadata"]) == 1)
    # A held call: listed while held, answered 500 unexecuted once released; skip lets calls by.
    import threading
    rig("/_rig/faults", {"account": acct, "action": "CreateAccessKey", "error": "Interrupted", "hang": True, "skip": 1})
    one.create_access_key(UserName="dropped")
    result = {}

    def held_call():
        try:
            one.create_access_key(UserName="dropped")
        except ClientError as e:
            result["status"] = e.response["ResponseMetadata"]["HTTPStatusCode"]

    t = threading.Thread(target=held_call)
    t.start()
    for _ in range(200):
        if rig(f"/_rig/hung?account={acct}"):
            break
        time.sleep(0.01)
    check("held call listed", rig(f"/_rig/hung?account={acct}") == [{"account": acct, "action": "CreateAccessKey"}])
    rig(f"/_rig/hung/release?account={acct}", {})
    t.join(5)
    check("held call answered 500 unexecuted", result.get("status") == 500 and len(iam.list_access_keys(UserName="dropped")["AccessKeyMetadata"]) == 2, result)
    rig("/_rig/faults", {"account": acct, "action": "CreateUser", "error": "Interrupted", "hang": True, "resume": True})
    paused = {}
    t = threading.Thread(target=lambda: paused.update(one.create_user(UserName="paused-2")["User"]))
    t.start()
    for _ in range(200):
        if rig(f"/_rig/hung?account={acct}"):
            break
        time.sleep(0.01)
    not_yet = [u["UserName"] for u in iam.list_users()["Users"] if u["UserName"] == "paused-2"]
    rig(f"/_rig/hung/release?account={acct}", {})
    t.join(5)
    check("paused call carried out once released", not not_yet and paused.get("UserName") == "paused-2", (not_yet, paused))
    # The rig remembers which account a key belongs to; a deleted key must not keep its account.
    iam.create_user(UserName="remembered")
    rk = iam.create_access_key(UserName="remembered")["AccessKey"]
    as_key = dict(endpoint_url=ep, region_name="us-east-1", aws_access_key_id=rk["AccessKeyId"], aws_secret_access_key=rk["SecretAccessKey"])
    seen = [boto3.client("sts", **as_key).get_caller_identity()["Account"] for _ in range(2)]
    check("a key acts in its own account, found again", seen == [acct, acct], seen)
    iam.delete_access_key(UserName="remembered", AccessKeyId=rk["AccessKeyId"])
    gone = boto3.client("sts", **as_key).get_caller_identity()["Account"]
    check("a deleted key no longer acts in its account", gone != acct, gone)
    # ListAccounts and ListAccountsForParent page from the rig's index: every account once, in the
    # parent it is in now.
    mc = boto3.client("sts", **base).assume_role(RoleArn="arn:aws:iam::200000000009:role/self", RoleSessionName="selftest")["Credentials"]
    org = boto3.client("organizations", endpoint_url=ep, region_name="us-east-1", aws_access_key_id=mc["AccessKeyId"],
                       aws_secret_access_key=mc["SecretAccessKey"], aws_session_token=mc["SessionToken"])
    org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]
    ou = org.create_organizational_unit(ParentId=root, Name="ou")["OrganizationalUnit"]["Id"]
    made = [org.create_account(AccountName=f"m{i}", Email=f"m{i}@example.com")["CreateAccountStatus"]["AccountId"] for i in range(45)]

    def listed(op, **kw):
        out, token = [], None
        while True:
            page = getattr(org, op)(MaxResults=20, **({"NextToken": token} if token else {}), **kw)
            out += [a["Id"] for a in page["Accounts"]]
            token = page.get("NextToken")
            if not token:
                return out

    for moved in made[::2]:
        org.move_account(AccountId=moved, SourceParentId=root, DestinationParentId=ou)
    in_ou, in_root, everyone = listed("list_accounts_for_parent", ParentId=ou), listed("list_accounts_for_parent", ParentId=root), listed("list_accounts")
    check("accounts listed per parent", in_ou == made[::2] and sorted(in_root + in_ou) == sorted(everyone) and len(everyone) == 46, (len(in_ou), len(in_root), len(everyone)))
    org.move_account(AccountId=made[0], SourceParentId=ou, DestinationParentId=root)
    check("a moved account is listed under its new parent", made[0] not in listed("list_accounts_for_parent", ParentId=ou)
          and made[0] in listed("list_accounts_for_parent", ParentId=root))
    # A Query of the table's key reads that partition only, with moto's conditions and paging.
    ddb = boto3.client("dynamodb", **kw)
    ddb.create_table(TableName="kq", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
    for pk in ("a", "b", "c"):
        for sk in ("x#2", "x#1", "y#1"):
            ddb.put_item(TableName="kq", Item={"pk": {"S": pk}, "sk": {"S": sk}})
    got, start = [], None
    while True:
        page = ddb.query(TableName="kq", KeyConditionExpression="pk = :p AND begins_with(sk, :s)", Limit=1,
                         ExpressionAttributeValues={":p": {"S": "b"}, ":s": {"S": "x#"}}, **({"ExclusiveStartKey": start} if start else {}))
        got += [(i["pk"]["S"], i["sk"]["S"]) for i in page["Items"]]
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    check("a keyed query reads its partition in order, paged", got == [("b", "x#1"), ("b", "x#2")], got)
    none = ddb.query(TableName="kq", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "z"}})
    check("a keyed query of an empty partition", none["Items"] == [] and ddb.scan(TableName="kq")["Count"] == 9, none)
    # Transactions: all or nothing, and conditional writes one at a time.
    def tx(*items):
        try:
            ddb.transact_write_items(TransactItems=list(items))
            return None
        except ClientError as e:
            return [r.get("Code") for r in e.response.get("CancellationReasons", [])]
    key = lambda pk, sk: {"pk": {"S": pk}, "sk": {"S": sk}}  # noqa: E731
    ddb.put_item(TableName="kq", Item={**key("lease", "u"), "body": {"S": "me"}})
    ddb.put_item(TableName="kq", Item={**key("rec", "u"), "v": {"S": "old"}})
    guard = lambda holder: {"ConditionCheck": {"TableName": "kq", "Key": key("lease", "u"), "ConditionExpression": "body = :h",  # noqa: E731
                                               "ExpressionAttributeValues": {":h": {"S": holder}}}}
    put = lambda sk, v: {"Put": {"TableName": "kq", "Item": {**key("rec", sk), "v": {"S": v}}}}  # noqa: E731
    check("a transaction whose guard holds is written", tx(guard("me"), put("u", "new")) is None
          and ddb.get_item(TableName="kq", Key=key("rec", "u"))["Item"]["v"]["S"] == "new")
    reasons = tx(put("u", "stale"), put("w", "fresh"), guard("other"))
    check("a refused transaction writes nothing", reasons == ["None", "None", "ConditionalCheckFailed"]
          and ddb.get_item(TableName="kq", Key=key("rec", "u"))["Item"]["v"]["S"] == "new"
          and "Item" not in ddb.get_item(TableName="kq", Key=key("rec", "w")), reasons)
    ddb.put_item(TableName="kq", Item={**key("n", "n"), "v": {"N": "0"}})
    won = []

    def bump():
        c = boto3.client("dynamodb", **kw)
        for _ in range(15):
            v = c.get_item(TableName="kq", Key=key("n", "n"), ConsistentRead=True)["Item"]["v"]["N"]
            try:
                c.put_item(TableName="kq", Item={**key("n", "n"), "v": {"N": str(int(v) + 1)}}, ConditionExpression="v = :v",
                           ExpressionAttributeValues={":v": {"N": v}})
                won.append(1)
            except ClientError:
                pass
    bumpers = [threading.Thread(target=bump) for _ in range(6)]
    [t.start() for t in bumpers]
    [t.join(60) for t in bumpers]
    final = int(ddb.get_item(TableName="kq", Key=key("n", "n"))["Item"]["v"]["N"])
    check("conditional writes are atomic under concurrency", final == len(won), (final, len(won)))

    # CloudTrail of a user's own key: each call signed with it, with the address and agent it came
    # with, per Region; LookupEvents by AccessKeyId; org-trail files in S3.
    pipeline = iam.create_access_key(UserName="ci+deploy@x")["AccessKey"]

    def as_pipeline(region, ip, agent, endpoint=None):
        client = boto3.client("sts", endpoint_url=ep, region_name=region, aws_access_key_id=pipeline["AccessKeyId"],
                              aws_secret_access_key=pipeline["SecretAccessKey"])
        def headers(request, **_):
            request.headers["X-Forwarded-For"] = ip
            request.headers["User-Agent"] = agent
            if endpoint:
                request.headers["X-Rig-Vpc-Endpoint"] = endpoint
        client.meta.events.register("before-send.sts.*", headers)
        return client

    as_pipeline("us-east-1", "203.0.113.7", "=cmd|' /C calc'!A0 <b>x</b>").get_caller_identity()
    s3 = boto3.client("s3", endpoint_url=ep, region_name="eu-west-1", aws_access_key_id=pipeline["AccessKeyId"],
                      aws_secret_access_key=pipeline["SecretAccessKey"])
    s3.meta.events.register("before-send.s3.*", lambda request, **_: request.headers.__setitem__("X-Forwarded-For", "198.51.100.2"))
    s3.list_buckets()
    by_key = lambda region: ct_in(region).lookup_events(LookupAttributes=[{"AttributeKey": "AccessKeyId", "AttributeValue": pipeline["AccessKeyId"]}])["Events"]  # noqa: E731
    ct_in = lambda region: boto3.client("cloudtrail", **{**kw, "region_name": region})  # noqa: E731
    east = [json.loads(e["CloudTrailEvent"]) for e in by_key("us-east-1")]
    check("a call with a user's key is in CloudTrail with its address and agent",
          len(east) == 1 and east[0]["sourceIPAddress"] == "203.0.113.7" and east[0]["userAgent"].startswith("=cmd")
          and east[0]["userIdentity"]["type"] == "IAMUser" and east[0]["eventSource"] == "sts.amazonaws.com", east)
    west = [json.loads(e["CloudTrailEvent"]) for e in by_key("eu-west-1")]
    check("event history is per Region", len(west) == 1 and west[0]["eventSource"] == "s3.amazonaws.com"
          and west[0]["sourceIPAddress"] == "198.51.100.2", west)
    made = rig("/_rig/trail/calls", {"account": acct, "access_key_id": pipeline["AccessKeyId"], "count": 120, "step_s": 60,
                                     "source_ip": "192.0.2.1", "user_agent": "terraform/1.9", "region": "us-east-1",
                                     "start": "2026-11-30T00:00:00Z", "vpc_endpoint": "vpce-0abc"})
    pages, token = 0, None
    while True:
        page = ct_in("us-east-1").lookup_events(LookupAttributes=[{"AttributeKey": "AccessKeyId", "AttributeValue": pipeline["AccessKeyId"]}],
                                                **({"NextToken": token} if token else {}))
        pages += 1
        token = page.get("NextToken")
        if not token:
            break
    check("synthetic calls are recorded and paged", made["recorded"] == 120 and pages == 3, (made, pages))
    boto3.client("s3", **kw).create_bucket(Bucket="org-trail")
    keys = rig("/_rig/trail/deliver", {"account": acct, "bucket": "org-trail", "org": "o-selftest"})["keys"]
    import gzip
    delivered = [r for k in keys for r in json.loads(gzip.decompress(boto3.client("s3", **kw).get_object(Bucket="org-trail", Key=k)["Body"].read()))["Records"]]
    check("org-trail files in S3 hold every recorded event", any("/CloudTrail/eu-west-1/" in k for k in keys)
          and all(k.startswith(f"AWSLogs/o-selftest/{acct}/CloudTrail/") for k in keys)
          and sum(1 for r in delivered if r.get("vpcEndpointId") == "vpce-0abc") == 120, (keys[:3], len(delivered)))
    s3c = boto3.client("s3", **kw)
    owner = s3c.get_bucket_acl(Bucket="org-trail")["Owner"].get("ID")
    mine = s3c.list_objects_v2(Bucket="org-trail", ExpectedBucketOwner=acct)
    try:
        s3c.list_objects_v2(Bucket="org-trail", ExpectedBucketOwner="999999999999")
        refused = None
    except botocore.exceptions.ClientError as e:
        refused = e.response["Error"]["Code"]
    check("ExpectedBucketOwner: the owner passes, another account is denied",
          mine["KeyCount"] > 0 and refused == "AccessDenied", (owner, refused))
finally:
    proc.kill()
print(f"rig self-test: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
