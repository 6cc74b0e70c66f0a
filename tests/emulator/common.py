"""The rig's shared state and helpers: what every part of the rig (rig.py, cloudtrail.py) knows
of a request (`Call`), the stores the control API reads back, and the answers' shapes."""

from __future__ import annotations

import json
import os
import re
import threading
import uuid
from collections import defaultdict
from datetime import datetime, timezone
from urllib.parse import parse_qs

DEFAULT_ACCOUNT = "123456789012"


CONFIG_PREFIX = "StarlingDoveService."


CREDENTIAL_RE = re.compile(r"Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/")


lock = threading.RLock()


calls: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))


# assumed role name -> service:Action -> count
calls_by_role: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))


CALL_LOG_DIR = os.environ.get("RIG_CALL_LOG_DIR")


# (account, region, rule) -> resource_id -> evaluation dict
evaluations: dict[tuple[str, str, str], dict[str, dict]] = defaultdict(dict)


trail: dict[str, list[dict]] = defaultdict(list)


emails: dict[str, list[dict]] = defaultdict(list)


faults: list[dict] = []


hung: list[dict] = []


root_keys: dict[str, dict] = {}


latency = {"per_call_ms": 0, "report_ms": 0}


# account -> when its first GenerateCredentialReport started (time.monotonic())
report_started: dict[str, float] = {}


def now() -> datetime:
    return datetime.now(timezone.utc)


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value) -> datetime:
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    text = str(value).replace("Z", "+00:00")
    t = datetime.fromisoformat(text)
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


class Call:
    """What the rig needs to know about one request."""

    def __init__(self, environ: dict, body: bytes):
        self.environ = environ
        self.body = body
        self.method = environ.get("REQUEST_METHOD", "GET")
        self.path = environ.get("PATH_INFO", "/")
        auth = environ.get("HTTP_AUTHORIZATION", "")
        m = CREDENTIAL_RE.search(auth)
        self.access_key = m.group(1) if m else None
        self.region = m.group(2) if m else "us-east-1"
        self.service = m.group(3) if m else "unknown"
        self.target = environ.get("HTTP_X_AMZ_TARGET", "")
        self.form = {}
        ctype = environ.get("CONTENT_TYPE", "")
        if "x-www-form-urlencoded" in ctype:
            self.form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        self.action = (
            self.form.get("Action")
            or query.get("Action")
            or (self.target.split(".")[-1] if self.target else None)
            or rest_action(self.service, self.method, self.path)
        )
        self.account = self._account()

    def _account(self) -> str:
        explicit = self.environ.get("HTTP_X_MOTO_ACCOUNT_ID")
        if explicit:
            return explicit
        if not self.access_key:
            return DEFAULT_ACCOUNT
        from moto.iam.models import get_account_id_from

        return get_account_id_from(self.access_key)

    def json(self) -> dict:
        try:
            return json.loads(self.body or b"{}")
        except ValueError:
            return {}


def rest_action(service: str, method: str, path: str) -> str:
    if service == "ses" and path.startswith("/v2/email/outbound-emails"):
        return "SendEmail"
    if service == "ses" and path.startswith("/v2/email/identities"):
        return {"POST": "CreateEmailIdentity", "GET": "GetEmailIdentity"}.get(method, f"{method}Identity")
    if service == "s3":
        parts = [p for p in path.split("/") if p]
        if method == "GET":
            return "GetObject" if len(parts) > 1 else ("ListObjectsV2" if parts else "ListBuckets")
        return {"PUT": "PutObject" if len(parts) > 1 else "CreateBucket", "DELETE": "DeleteObject", "HEAD": "HeadObject"}.get(method, method)
    return f"{method} {path.split('?')[0][:40]}"


def json_response(start_response, status: int, payload, error_type: str | None = None):
    body = json.dumps(payload, default=str).encode()
    headers = [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body)))]
    if error_type:
        headers.append(("x-amzn-ErrorType", error_type))
    start_response(f"{status} {'OK' if status < 400 else 'Error'}", headers)
    return [body]


def error_response(start_response, call: Call, status: int, code: str, message: str):
    if call.target or call.service == "ses":
        return json_response(start_response, status, {"__type": code, "message": message, "Message": message}, code)
    if call.service == "s3":  # rest-xml: a bare <Error>
        body = f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{uuid.uuid4()}</RequestId></Error>".encode()
        start_response(f"{status} Error", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
        return [body]
    body = (
        f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()
    start_response(f"{status} Error", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
    return [body]


def page(items: list, limit: int, token: str | None, maximum: int = 100):
    limit = min(limit or maximum, maximum)
    start = int(token or 0)
    chunk = items[start : start + limit]
    nxt = str(start + limit) if start + limit < len(items) else None
    return chunk, nxt


def lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]
