"""CloudTrail as the rig serves it: an event per IAM write the server answered, and one per call
signed with an IAM user's access key (its source address from `X-Forwarded-For`, its user agent,
its Region, a VPC endpoint from `X-Rig-Vpc-Endpoint`), answered by LookupEvents (EventName,
EventSource, Username, ResourceName or AccessKeyId; per Region as AWS keeps event history) and
delivered on request as an organization trail's log files in S3."""

from __future__ import annotations

import json
import re
import uuid

from common import (Call, error_response, iso, json_response, lock, lower_first, now, page,
                    parse_time, trail)

# IAM calls that CloudTrail records and keyguard reports on.
IAM_WRITES = {
    "CreateAccessKey", "UpdateAccessKey", "DeleteAccessKey", "CreateUser", "DeleteUser",
    "AddUserToGroup", "RemoveUserFromGroup", "CreateGroup", "DeleteGroup", "TagUser", "UntagUser",
    "PutGroupPolicy", "DeleteGroupPolicy", "AttachGroupPolicy", "DetachGroupPolicy",
    "UpdateGroup", "UpdateUser",
}


def assumed_role(call: Call, key: str | None):
    """moto's assumed role whose credentials include access key `key`, if any."""
    if not key:
        return None
    try:
        from moto.sts.models import sts_backends

        return sts_backends[call.account]["aws"].get_assumed_role_from_access_key(key)
    except Exception:  # noqa: BLE001
        return None


# The access keys of IAM users found so far: key id -> the user's identity (CloudTrail's
# userIdentity without the key). A key is looked up in its account's users once.
user_keys: dict[str, dict | None] = {}


def user_identity(account: str, key: str) -> dict | None:
    """CloudTrail's userIdentity of the IAM user whose access key is `key`, if it is one's. Only
    long-term keys (AKIA…) can be; a key found to be nobody's is remembered as such."""
    if not key.startswith("AKIA"):
        return None
    if key in user_keys:
        found = user_keys[key]
        return {"accessKeyId": key, **found} if found else None
    try:
        from moto.iam.models import iam_backends

        backend = iam_backends[account]["aws"]
        for user in backend.users.values():
            if any(k.access_key_id == key for k in user.access_keys):
                found = {"accountId": account, "type": "IAMUser", "arn": user.arn,
                         "principalId": user.id, "userName": user.name}
                with lock:
                    user_keys[key] = found
                return {"accessKeyId": key, **found}
    except Exception:  # noqa: BLE001
        return None
    with lock:
        user_keys[key] = None
    return None


def source_ip(call: Call) -> str:
    """The caller's address as CloudTrail records it: the first of `X-Forwarded-For` (a test
    chooses it), else the connection's."""
    forwarded = call.environ.get("HTTP_X_FORWARDED_FOR", "")
    return forwarded.split(",")[0].strip() or call.environ.get("REMOTE_ADDR") or "127.0.0.1"


def event_of(call: Call, identity: dict, source: str, region: str, params=None, response=None,
             read_only: bool = False, error: str | None = None) -> dict:
    """A CloudTrail record of `call`, made now."""
    event = {
        "eventVersion": "1.08",
        "userIdentity": identity,
        "eventTime": iso(now()),
        "eventSource": source,
        "eventName": call.action,
        "awsRegion": region,
        "sourceIPAddress": source_ip(call),
        "userAgent": call.environ.get("HTTP_USER_AGENT", ""),
        "requestParameters": params,
        "responseElements": response,
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": call.account,
        "eventCategory": "Management",
    }
    endpoint = call.environ.get("HTTP_X_RIG_VPC_ENDPOINT")
    if endpoint:
        event["vpcEndpointId"] = endpoint
    if error:
        event["errorCode"] = error
    return event


# Services CloudTrail records in us-east-1 whatever the caller's Region (global endpoints).
GLOBAL_SERVICES = {"iam", "sts", "organizations"}


def record_key_call(call: Call, ok: bool) -> None:
    """One CloudTrail record of a call signed with an IAM user's access key (IAM writes have
    theirs from record_iam_event)."""
    if not call.access_key or (call.service == "iam" and call.action in IAM_WRITES):
        return
    identity = user_identity(call.account, call.access_key)
    if identity is None:
        return
    region = "us-east-1" if call.service in GLOBAL_SERVICES else call.region
    event = event_of(call, identity, f"{call.service}.amazonaws.com", region,
                     read_only=call.action.startswith(("Get", "List", "Describe")),
                     error=None if ok else "Error")
    with lock:
        trail[call.account].append(event)


def identity_of(call: Call) -> dict:
    key = call.access_key or "AKIAEXAMPLE"
    ident = {"accessKeyId": key, "accountId": call.account}
    role = assumed_role(call, key)
    if role is not None:
        ident.update(type="AssumedRole", arn=role.arn, principalId=f"AROA{key[4:12]}:{role.session_name}")
        return ident
    user = user_identity(call.account, key)
    if user is not None:
        return user
    ident.update(type="Root", arn=f"arn:aws:iam::{call.account}:root", principalId=call.account)
    return ident


def record_iam_event(call: Call, response_body: bytes):
    params = {}
    tags = {}
    tag_keys = []
    for k, v in call.form.items():
        if k in ("Action", "Version"):
            continue
        m = re.match(r"Tags\.member\.(\d+)\.(Key|Value)", k)
        if m:
            tags.setdefault(m.group(1), {})[m.group(2).lower()] = v
            continue
        if k.startswith("TagKeys.member."):
            tag_keys.append(v)
            continue
        params[lower_first(k)] = v
    if tags:
        params["tags"] = [tags[i] for i in sorted(tags, key=int)]
    if tag_keys:
        params["tagKeys"] = tag_keys
    response = None
    if call.action == "CreateAccessKey":
        text = response_body.decode("utf-8", "replace")
        get = lambda tag: (re.search(f"<{tag}>([^<]*)</{tag}>", text) or [None, None])[1]  # noqa: E731
        # CloudTrail never records the secret access key.
        response = {"accessKey": {"accessKeyId": get("AccessKeyId"), "status": get("Status"), "userName": get("UserName"), "createDate": get("CreateDate")}}
    event = event_of(call, identity_of(call), "iam.amazonaws.com", "us-east-1", params, response)
    with lock:
        trail[call.account].append(event)


def lookup_events(call: Call, start_response):
    req = call.json()
    attrs = req.get("LookupAttributes") or []
    if len(attrs) > 1:
        return error_response(start_response, call, 400, "InvalidLookupAttributesException", "only one lookup attribute is allowed")
    if (req.get("MaxResults") or 50) > 50:
        return error_response(start_response, call, 400, "InvalidMaxResultsException", "MaxResults must be at most 50")
    start = parse_time(req["StartTime"]) if req.get("StartTime") else None
    end = parse_time(req["EndTime"]) if req.get("EndTime") else None

    def matches(e: dict) -> bool:
        # Event history is kept per Region: the Region the call was recorded in.
        if e.get("awsRegion", "us-east-1") != call.region:
            return False
        t = parse_time(e["eventTime"])
        if (start and t < start) or (end and t > end):
            return False
        for a in attrs:
            key, value = a.get("AttributeKey"), a.get("AttributeValue")
            if key == "EventName" and e["eventName"] != value:
                return False
            if key == "EventSource" and e["eventSource"] != value:
                return False
            if key == "AccessKeyId" and e["userIdentity"].get("accessKeyId") != value:
                return False
            if key == "ReadOnly" and str(e.get("readOnly", False)).lower() != str(value).lower():
                return False
            if key == "Username" and e["userIdentity"].get("userName", e["userIdentity"].get("arn", "").split("/")[-1]) != value:
                return False
            if key == "ResourceName" and value not in json.dumps(e["requestParameters"]):
                return False
        return True

    with lock:
        found = [e for e in reversed(trail.get(call.account, [])) if matches(e)]  # newest first, as AWS
    chunk, nxt = page(found, req.get("MaxResults") or 50, req.get("NextToken"), 50)
    out = []
    for e in chunk:
        rp = e["requestParameters"] or {}
        resources = [
            {"ResourceType": t, "ResourceName": rp[k]}
            for k, t in (("userName", "AWS::IAM::User"), ("groupName", "AWS::IAM::Group"), ("accessKeyId", "AWS::IAM::AccessKey"))
            if rp.get(k)
        ]
        out.append({
            "EventId": e["eventID"],
            "EventName": e["eventName"],
            "ReadOnly": str(e.get("readOnly", False)).lower(),
            "AccessKeyId": e["userIdentity"].get("accessKeyId"),
            "EventTime": parse_time(e["eventTime"]).timestamp(),
            "EventSource": e["eventSource"],
            "Username": e["userIdentity"].get("userName") or e["userIdentity"].get("arn", "").split("/")[-1],
            "Resources": resources,
            "CloudTrailEvent": json.dumps(e),
        })
    return json_response(start_response, 200, {"Events": out, **({"NextToken": nxt} if nxt else {})})


def synthetic_calls(req: dict) -> int:
    """`count` CloudTrail records of calls made with `access_key_id` (POST /_rig/trail/calls), one
    every `step_s` seconds from `start`: a window of many calls without making them."""
    from datetime import timedelta

    account, key = req["account"], req["access_key_id"]
    identity = user_identity(account, key) or {"accessKeyId": key, "accountId": account, "type": "IAMUser",
                                               "arn": f"arn:aws:iam::{account}:user/{req.get('user', 'unknown')}"}
    start = parse_time(req["start"]) if req.get("start") else now()
    events = []
    for i in range(int(req.get("count", 1))):
        t = start + timedelta(seconds=i * float(req.get("step_s", 1)))
        event = {
            "eventVersion": "1.08", "userIdentity": identity, "eventTime": iso(t),
            "eventSource": f"{req.get('service', 'ec2')}.amazonaws.com", "eventName": req.get("event_name", "DescribeInstances"),
            "awsRegion": req.get("region", "us-east-1"), "sourceIPAddress": req.get("source_ip", "127.0.0.1"),
            "userAgent": req.get("user_agent", ""), "requestParameters": None, "responseElements": None,
            "requestID": str(uuid.uuid4()), "eventID": str(uuid.uuid4()), "readOnly": True,
            "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": account,
            "eventCategory": "Management",
        }
        if req.get("vpc_endpoint"):
            event["vpcEndpointId"] = req["vpc_endpoint"]
        events.append(event)
    with lock:
        trail[account].extend(events)
        trail[account].sort(key=lambda e: e["eventTime"])
    return len(events)


def deliver(req: dict) -> list[str]:
    """Writes `account`'s recorded events to S3 as an organization trail does (POST
    /_rig/trail/deliver {"account", "bucket", "bucket_account", "org"}): one gzip file of
    {"Records": [...]} per Region and hour, under AWSLogs/<org>/<account>/CloudTrail/<region>/
    YYYY/MM/DD/. Returns the object keys."""
    import gzip
    from collections import defaultdict

    from moto.s3.models import s3_backends

    account, org = req["account"], req.get("org", "o-exampleorg1")
    with lock:
        events = list(trail.get(account, []))
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for e in events:
        t = parse_time(e["eventTime"])
        groups[(e.get("awsRegion", "us-east-1"), t.strftime("%Y%m%dT%H00Z"))].append(e)
    backend = s3_backends[req.get("bucket_account", account)]["aws"]
    keys = []
    for (region, hour), records in sorted(groups.items()):
        day = f"{hour[0:4]}/{hour[4:6]}/{hour[6:8]}"
        key = (f"AWSLogs/{org}/{account}/CloudTrail/{region}/{day}/"
               f"{account}_CloudTrail_{region}_{hour}_{uuid.uuid4().hex[:16]}.json.gz")
        backend.put_object(req["bucket"], key, gzip.compress(json.dumps({"Records": records}).encode()))
        keys.append(key)
    return keys
