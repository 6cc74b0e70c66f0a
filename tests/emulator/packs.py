"""Config conformance packs, which moto's server lacks (docs/rig.md).

PutConformancePack reads the template (TemplateBody, or TemplateS3Uri from the rig's own S3),
resolves `!Ref`s to its parameters (ConformancePackInputParameters over the template's
defaults), and creates its AWS::Config::ConfigRule resources as rules of the account named as
Config names a pack's rules: `<ConfigRuleName>-conformance-pack-<8 characters>`.
DescribeConformancePackCompliance answers each of the pack's rules' verdict from the evaluations
stored for it (PutEvaluations with a ResultToken naming the rule: tests put the managed rules'
verdicts so, as AWS would evaluate them); NoSuchConformancePackException for another pack.
DescribeAggregateComplianceByConfigRules answers every rule of an account (filters AccountId and
AwsRegion) through any aggregator name, the pack's rules among them.
"""

from __future__ import annotations

import hashlib

import yaml

from common import error_response, evaluations, json_response, lock, page

# (account, region, pack name) -> {"rules": {template name: deployed name}, "params": {...}}
packs: dict[tuple[str, str, str], dict] = {}


class _Loader(yaml.SafeLoader):
    pass


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {"Fn::" + suffix if suffix != "Ref" else "Ref": value}


_Loader.add_multi_constructor("!", _tag)


def _resolve(v, params: dict):
    if isinstance(v, dict):
        if set(v) == {"Ref"}:
            if v["Ref"] not in params:
                raise ValueError(f"!Ref {v['Ref']}: no such parameter")
            return params[v["Ref"]]
        return {k: _resolve(x, params) for k, x in v.items()}
    if isinstance(v, list):
        return [_resolve(x, params) for x in v]
    return v


def rules_of(acct: str, region: str) -> set[str]:
    """The deployed names of every pack rule of the account (known rules, as PutConfigRule's)."""
    with lock:
        return {d for (a, r, _), p in packs.items() if a == acct and r == region for d in p["rules"].values()}


def verdict(acct: str, region: str, rule: str) -> str:
    with lock:
        store = evaluations.get((acct, region, rule), {})
        kinds = [e["ComplianceType"] for e in store.values()]
    if "NON_COMPLIANT" in kinds:
        return "NON_COMPLIANT"
    if "COMPLIANT" in kinds:
        return "COMPLIANT"
    return "INSUFFICIENT_DATA"


def _template(call, req) -> str | None:
    if req.get("TemplateBody"):
        return req["TemplateBody"]
    uri = req.get("TemplateS3Uri") or ""
    if not uri.startswith("s3://"):
        return None
    bucket, _, key = uri[5:].partition("/")
    try:
        from moto.s3.models import s3_backends

        for acct_backends in s3_backends.values():
            b = acct_backends["global"].buckets.get(bucket)
            if b is not None:
                return b.keys[key].value.decode()
    except Exception:  # noqa: BLE001 - moto's backend layout is not an API
        return None
    return None


def config_call(call, start_response):
    action, req = call.action, call.json()
    acct, region = call.account, call.region
    if action == "PutConformancePack":
        name = req.get("ConformancePackName", "")
        body = _template(call, req)
        if not body:
            return error_response(start_response, call, 400, "ValidationException", "TemplateBody or a readable TemplateS3Uri is required")
        if len(body.encode()) > 51200:
            return error_response(start_response, call, 400, "ValidationException", "TemplateBody is longer than 51,200 bytes")
        inputs = req.get("ConformancePackInputParameters") or []
        if len(inputs) > 60:
            return error_response(start_response, call, 400, "ValidationException", "at most 60 ConformancePackInputParameters")
        try:
            t = yaml.load(body, Loader=_Loader)
            params = {k: str(p.get("Default")) for k, p in (t.get("Parameters") or {}).items() if "Default" in p}
            params.update({p["ParameterName"]: p["ParameterValue"] for p in inputs})
            suffix = hashlib.sha256(f"{acct}/{region}/{name}".encode()).hexdigest()[:8]
            rules = {}
            for r in (t.get("Resources") or {}).values():
                if r.get("Type") != "AWS::Config::ConfigRule":
                    continue
                props = _resolve(r.get("Properties") or {}, params)
                rules[props["ConfigRuleName"]] = f"{props['ConfigRuleName']}-conformance-pack-{suffix}"
        except (ValueError, KeyError, yaml.YAMLError) as e:
            return error_response(start_response, call, 400, "ConformancePackTemplateValidationException", str(e))
        with lock:
            packs[(acct, region, name)] = {"rules": rules, "params": params}
        arn = f"arn:aws:config:{region}:{acct}:conformance-pack/{name}/conformance-pack-{suffix}"
        return json_response(start_response, 200, {"ConformancePackArn": arn})
    if action == "DescribeConformancePackCompliance":
        name = req.get("ConformancePackName", "")
        with lock:
            pack = packs.get((acct, region, name))
        if pack is None:
            return error_response(start_response, call, 400, "NoSuchConformancePackException", f"Conformance pack {name} does not exist.")
        items = [{"ConfigRuleName": d, "ComplianceType": verdict(acct, region, d), "Controls": []} for d in sorted(pack["rules"].values())]
        chunk, nxt = page(items, req.get("Limit"), req.get("NextToken"), 1000)
        return json_response(start_response, 200, {"ConformancePackName": name, "ConformancePackRuleComplianceList": chunk, **({"NextToken": nxt} if nxt else {})})
    if action == "DescribeAggregateComplianceByConfigRules":
        f = req.get("Filters") or {}
        want_acct, want_region = f.get("AccountId"), f.get("AwsRegion")
        with lock:
            keys = {(a, r, rule) for (a, r, rule) in evaluations if (not want_acct or a == want_acct) and (not want_region or r == want_region)}
            keys |= {(a, r, d) for (a, r, _), p in packs.items() if (not want_acct or a == want_acct) and (not want_region or r == want_region) for d in p["rules"].values()}
        items = [{"ConfigRuleName": rule, "AccountId": a, "AwsRegion": r, "Compliance": {"ComplianceType": verdict(a, r, rule)}} for (a, r, rule) in sorted(keys)]
        chunk, nxt = page(items, req.get("Limit"), req.get("NextToken"))
        return json_response(start_response, 200, {"AggregateComplianceByConfigRules": chunk, **({"NextToken": nxt} if nxt else {})})
    return None
