"""Bucket CORS rules: the ?cors XML, preflight answers and headers on actual requests.

A rule is stored as ``{"AllowedOrigin": [...], "AllowedMethod": [...], "AllowedHeader": [...],
"ExposeHeader": [...], "MaxAgeSeconds": int | None}`` (the OSS XML element names).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from typing import Any

from local.oss.errors import OssError
from local.oss.xmlutil import child_text, element, parse_xml

LIST_FIELDS = ("AllowedOrigin", "AllowedMethod", "AllowedHeader", "ExposeHeader")
METHODS = frozenset({"GET", "PUT", "DELETE", "POST", "HEAD"})
MAX_RULES = 10


def normalize_rules(rules: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validate rules given as dicts (config files); single strings are accepted for list fields."""
    normalized: list[dict[str, Any]] = []
    for rule in rules:
        item: dict[str, Any] = {}
        for name in LIST_FIELDS:
            value = rule.get(name, [])
            item[name] = [value] if isinstance(value, str) else [str(v) for v in value]
        max_age = rule.get("MaxAgeSeconds")
        item["MaxAgeSeconds"] = int(max_age) if max_age not in (None, "") else None
        if not item["AllowedOrigin"] or not item["AllowedMethod"]:
            raise ValueError("a CORS rule needs AllowedOrigin and AllowedMethod")
        bad = [m for m in item["AllowedMethod"] if m.upper() not in METHODS]
        if bad:
            raise ValueError(f"unsupported CORS method(s): {', '.join(bad)}")
        item["AllowedMethod"] = [m.upper() for m in item["AllowedMethod"]]
        item["AllowedHeader"] = [h.lower() for h in item["AllowedHeader"]]  # OSS stores them lower-cased
        normalized.append(item)
    if len(normalized) > MAX_RULES:
        raise ValueError(f"at most {MAX_RULES} CORS rules per bucket")
    return normalized


def parse_cors_xml(body: bytes) -> tuple[list[dict[str, Any]], bool]:
    """The rules and ResponseVary of a PutBucketCors body."""
    root = parse_xml(body)
    if root.tag != "CORSConfiguration":
        raise OssError(400, "MalformedXML")
    rules = []
    for node in root.findall("CORSRule"):
        rule: dict[str, Any] = {name: [e.text or "" for e in node.findall(name)] for name in LIST_FIELDS}
        rule["MaxAgeSeconds"] = child_text(node, "MaxAgeSeconds") or None
        rules.append(rule)
    vary = child_text(root, "ResponseVary", "false").strip().lower()
    if vary not in ("true", "false"):
        raise OssError(400, "InvalidArgument", "ResponseVary must be true or false.")
    try:
        return normalize_rules(rules), vary == "true"
    except ValueError as exc:
        raise OssError(400, "InvalidArgument", str(exc)) from None


def cors_xml(rules: Sequence[Mapping[str, Any]], response_vary: bool = False) -> bytes:
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n<CORSConfiguration>']
    for rule in rules:
        out.append("<CORSRule>")
        for name in LIST_FIELDS:
            out.extend(element(name, value) for value in rule.get(name, []))
        if rule.get("MaxAgeSeconds") is not None:
            out.append(element("MaxAgeSeconds", str(rule["MaxAgeSeconds"])))
        out.append("</CORSRule>")
    out.append(f"<ResponseVary>{'true' if response_vary else 'false'}</ResponseVary></CORSConfiguration>")
    return "".join(out).encode()


def _origin_allowed(rule: Mapping[str, Any], origin: str) -> bool:
    return any(fnmatch.fnmatchcase(origin, pattern) for pattern in rule["AllowedOrigin"])


def _headers_allowed(rule: Mapping[str, Any], headers: Sequence[str]) -> bool:
    allowed = [h.lower() for h in rule["AllowedHeader"]]
    return all(any(fnmatch.fnmatchcase(h.lower(), pattern) for pattern in allowed) for h in headers)


def match_rule(rules: Sequence[Mapping[str, Any]], origin: str, method: str,
               request_headers: Sequence[str] = ()) -> Mapping[str, Any] | None:
    for rule in rules:
        if (_origin_allowed(rule, origin) and method.upper() in rule["AllowedMethod"]
                and _headers_allowed(rule, request_headers)):
            return rule
    return None


def preflight_headers(rules: Sequence[Mapping[str, Any]], origin: str | None, method: str | None,
                      requested_headers: str | None) -> dict[str, str]:
    """Headers answering an OPTIONS preflight; raises AccessForbidden (403) when no rule matches."""
    if not origin or not method:
        raise OssError(403, "AccessForbidden", "CORSResponse: Missing Origin or Access-Control-Request-Method.")
    names = [h.strip() for h in (requested_headers or "").split(",") if h.strip()]
    rule = match_rule(rules, origin, method, names)
    if rule is None:
        raise OssError(403, "AccessForbidden")
    headers = {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": ", ".join(rule["AllowedMethod"]),
    }
    if names:
        headers["Access-Control-Allow-Headers"] = ", ".join(names)
    if rule["ExposeHeader"]:
        headers["Access-Control-Expose-Headers"] = ", ".join(rule["ExposeHeader"])
    if rule.get("MaxAgeSeconds") is not None:
        headers["Access-Control-Max-Age"] = str(rule["MaxAgeSeconds"])
    return headers


def vary_headers(response_vary: bool) -> dict[str, str]:
    """PutBucketCors reference: ResponseVary=true returns ``Vary: Origin`` on every answer of the bucket,
    cross-origin or not, matched or not; false (the default) never returns it."""
    return {"Vary": "Origin"} if response_vary else {}


def actual_headers(rules: Sequence[Mapping[str, Any]], origin: str | None, method: str) -> dict[str, str]:
    """CORS headers added to a real response (empty when the origin is not allowed)."""
    if not origin or not rules:
        return {}
    rule = match_rule(rules, origin, method)
    if rule is None:
        return {}
    headers = {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": ", ".join(rule["AllowedMethod"]),
        "Access-Control-Allow-Credentials": "true",
    }
    if rule["ExposeHeader"]:
        headers["Access-Control-Expose-Headers"] = ", ".join(rule["ExposeHeader"])
    if rule.get("MaxAgeSeconds") is not None:
        headers["Access-Control-Max-Age"] = str(rule["MaxAgeSeconds"])
    return headers
