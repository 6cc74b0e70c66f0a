"""Checks a Security Lake custom source's location as keyguard wrote it, with readers of its own.

    lake_check.py LOCATION   (a folder: the source's location, holding region=…/accountId=…/…)

Prints one JSON object: the objects and rows read, and every problem found. Each Parquet object
is read with pyarrow and checked against what Amazon Security Lake asks of a custom source
(docs/security-lake.md): the path's partitions, zstd, records ordered by time, data pages at most
1 MB uncompressed (each page header read from the file itself), row groups at most 256 MB; its
Arrow schema against OCSF 1.3's Compliance Finding (the schema export ocsf-json-schema ships),
and every record, as JSON, against the JSON Schema of that class with the cloud profile.
"""

import json
import os
import re
import sys
from datetime import datetime, timezone

import jsonschema
import pyarrow as pa
import pyarrow.parquet as pq
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

VERSION = "1.3.0"
PAGE_MAX = 1024 * 1024
KEY_ID = re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b")
ROW_GROUP_MAX = 256 * 1024 * 1024
PATH = re.compile(
    r"^region=([a-z0-9-]+)/accountId=(\d{12})/eventDay=(\d{8})/keyguard-(\d{8})\.parquet$"
)

# --------------------------------------------------------------- OCSF 1.3 types → Parquet's

EXPORT = get_ocsf_schema(version=VERSION)
OBJECTS = EXPORT["objects"]
TYPES = EXPORT["types"]
CLASS = EXPORT["classes"]["compliance_finding"]


def base_type(t):
    """An OCSF scalar type's base (`uuid_t` → `string_t`)."""
    while t in TYPES and TYPES[t].get("type") and TYPES[t]["type"] != t:
        t = TYPES[t]["type"]
    return t


ARROW = {
    "integer_t": pa.int32(),
    "long_t": pa.int64(),
    "timestamp_t": pa.int64(),
    "string_t": pa.string(),
    "json_t": pa.string(),
    "boolean_t": pa.bool_(),
    "float_t": pa.float64(),
}


def schema_problems(arrow_type, attributes, path):
    """What in the Arrow struct `arrow_type` OCSF 1.3 does not have, or types otherwise."""
    out = []
    for field in arrow_type:
        where = f"{path}.{field.name}" if path else field.name
        attr = attributes.get(field.name)
        if attr is None:
            out.append(f"{where}: not an attribute in OCSF {VERSION}")
            continue
        t = field.type
        if attr.get("is_array"):
            if not pa.types.is_list(t):
                out.append(f"{where}: OCSF has an array, the file {t}")
                continue
            t = t.value_type
        if attr["type"] == "object_t":
            if not pa.types.is_struct(t):
                out.append(f"{where}: OCSF has an object, the file {t}")
                continue
            obj = OBJECTS[attr["object_type"]]["attributes"]
            out += schema_problems(t, obj, where)
            continue
        want = ARROW.get(base_type(attr["type"]))
        if want is None or t != want:
            out.append(f"{where}: OCSF {attr['type']} is {want}, the file {t}")
    return out


VALIDATOR = jsonschema.Draft202012Validator(
    OcsfJsonSchemaEmbedded(EXPORT).get_class_schema("compliance_finding", profiles=["cloud"])
)

# --------------------------------------------------------------- page headers (thrift compact)


def varint(buf, i):
    shift = n = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def zigzag(n):
    return (n >> 1) ^ -(n & 1)


def skip(buf, i, t):
    if t in (1, 2):  # a boolean inside a struct is in the field header
        return i
    if t == 3:
        return i + 1
    if t in (4, 5, 6):
        return varint(buf, i)[1]
    if t == 7:
        return i + 8
    if t == 8:
        n, i = varint(buf, i)
        return i + n
    if t in (9, 10):
        head = buf[i]
        i += 1
        n, et = head >> 4, head & 0x0F
        if n == 15:
            n, i = varint(buf, i)
        for _ in range(n):
            i = i + 1 if et in (1, 2) else skip(buf, i, et)
        return i
    if t == 11:
        n, i = varint(buf, i)
        if n:
            kv = buf[i]
            i += 1
            for _ in range(n):
                i = skip(buf, i, kv >> 4)
                i = skip(buf, i, kv & 0x0F)
        return i
    if t == 12:
        return struct(buf, i)[1]
    raise ValueError(f"thrift type {t}")


def struct(buf, i):
    """A thrift compact struct at `i`: its top-level integer fields, and the end."""
    fields, last = {}, 0
    while True:
        head = buf[i]
        i += 1
        if head == 0:
            return fields, i
        delta, t = head >> 4, head & 0x0F
        if delta:
            fid = last + delta
        else:
            raw, i = varint(buf, i)
            fid = zigzag(raw)
        last = fid
        if t in (5, 6):
            raw, i = varint(buf, i)
            fields[fid] = zigzag(raw)
        else:
            i = skip(buf, i, t)


def pages(data, column):
    """(page type, uncompressed size) of every page of a column chunk."""
    start = column.data_page_offset
    if column.has_dictionary_page and column.dictionary_page_offset:
        start = min(start, column.dictionary_page_offset)
    end, i, out = start + column.total_compressed_size, start, []
    while i < end:
        header, i = struct(data, i)
        out.append((header[1], header[2]))
        i += header[3]
    return out


# --------------------------------------------------------------- the objects


def records(table):
    for row in table.to_pylist():
        for r in row.get("resources") or []:
            if isinstance(r.get("data"), str):
                r["data"] = json.loads(r["data"])
        yield prune(row)


def prune(v):
    """A record without the nulls of absent attributes (a column is there for every row)."""
    if isinstance(v, dict):
        return {k: prune(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [prune(x) for x in v]
    return v


def check(location):
    problems, objects, rows, users = [], 0, 0, []
    for dirpath, _, files in sorted(os.walk(location)):
        for name in sorted(files):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, location).replace(os.sep, "/")
            m = PATH.match(rel)
            if not m or m.group(3) != m.group(4):
                problems.append(f"{rel}: not region=…/accountId=…/eventDay=…/keyguard-<day>.parquet")
                continue
            region, account, day = m.group(1), m.group(2), m.group(3)
            objects += 1
            data = open(full, "rb").read()
            f = pq.ParquetFile(full)
            meta = f.metadata
            problems += [f"{rel}: {p}" for p in schema_problems(f.schema_arrow, CLASS["attributes"], "")]
            for g in range(meta.num_row_groups):
                rg = meta.row_group(g)
                compressed = sum(rg.column(c).total_compressed_size for c in range(rg.num_columns))
                if compressed > ROW_GROUP_MAX:
                    problems.append(f"{rel}: row group {g} is {compressed} bytes")
                sort = getattr(rg, "sorting_columns", None)
                if sort is not None and [s.column_index for s in sort][:1] != [0]:
                    problems.append(f"{rel}: row group {g} does not declare its order by time")
                for c in range(rg.num_columns):
                    col = rg.column(c)
                    if col.compression != "ZSTD":
                        problems.append(f"{rel}: {col.path_in_schema} is {col.compression}")
                    for kind, size in pages(data, col):
                        if size > PAGE_MAX:
                            problems.append(f"{rel}: {col.path_in_schema}: a page of {size} bytes")
            table = f.read()
            times = table.column("time").to_pylist()
            if times != sorted(times):
                problems.append(f"{rel}: records not ordered by time")
            for rec in records(table):
                rows += 1
                where = f"{rel}: {rec.get('metadata', {}).get('uid')}"
                users.append(rec["resources"][0]["name"])
                got = (
                    rec["cloud"]["region"],
                    rec["cloud"]["account"]["uid"],
                    datetime.fromtimestamp(rec["time"] / 1000, timezone.utc).strftime("%Y%m%d"),
                )
                if got != (region, account, day):
                    problems.append(f"{where}: record is {got}, its path {(region, account, day)}")
                if rec["resources"][0]["owner"]["account"]["uid"] != account:
                    problems.append(f"{where}: the resource's account is not the partition's")
                for e in VALIDATOR.iter_errors(rec):
                    problems.append(f"{where}: {'/'.join(map(str, e.path))}: {e.message}")
                if KEY_ID.search(json.dumps(rec)):
                    problems.append(f"{where}: an access key id in full")
                if rec.get("metadata", {}).get("version") != VERSION:
                    problems.append(f"{where}: metadata.version is not {VERSION}")
    return {"objects": objects, "rows": rows, "users": sorted(users), "problems": problems}


if __name__ == "__main__":
    print(json.dumps(check(sys.argv[1])))
