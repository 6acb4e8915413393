"""Least-privilege STS session policies, built as data (never by string templating). Pure.

A session policy can only narrow the role's own permissions; this module makes it as narrow as the caller's
scope and the actions it asked for: objects under ``<bucket>/<scope>*``, listing of the bucket only with an
``oss:Prefix`` condition under the scope, optionally bound to the caller's IP. No ``*`` action ever.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Iterable
from typing import Any

from shared.config import StsSettings
from shared.errors import Forbidden, InvalidParameter

MAX_POLICY_CHARS = 2048

# Caller-facing action names -> OSS actions they grant.
ACTIONS: dict[str, tuple[str, ...]] = {
    "read": ("oss:GetObject",),
    "list": ("oss:ListObjects",),
    "write": ("oss:PutObject", "oss:AbortMultipartUpload", "oss:ListParts"),
}
_ORDER = ("read", "list", "write")

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_SCOPE_FORBIDDEN = re.compile(r"[*?\"\\\x00-\x1f\x7f]")
_SESSION_CHAR_RE = re.compile(r"[^A-Za-z0-9.@_-]")
_SESSION_MAX = 64


def allowed_actions(sts: StsSettings) -> tuple[str, ...]:
    """The actions this deployment lets callers ask for."""
    allowed = ["read"]
    if sts.allow_list:
        allowed.append("list")
    if sts.allow_write:
        allowed.append("write")
    return tuple(allowed)


def choose_actions(requested: Any, sts: StsSettings) -> tuple[str, ...]:
    """Validate the caller's ``actions`` (list or comma string) against the allowed set.

    Nothing asked: read, plus list when allowed (write is granted only when asked for explicitly).
    """
    allowed = allowed_actions(sts)
    if requested is None or requested == "" or requested == []:
        return tuple(a for a in allowed if a != "write")
    if isinstance(requested, str):
        names = [part.strip().lower() for part in requested.split(",")]
    elif isinstance(requested, list) and all(isinstance(part, str) for part in requested):
        names = [part.strip().lower() for part in requested]
    else:
        raise InvalidParameter("actions must be a list or a comma-separated string of read, list, write")
    if not names or any(name not in ACTIONS for name in names):
        raise InvalidParameter("actions accepts read, list, write")
    refused = [name for name in names if name not in allowed]
    if refused:
        raise Forbidden(f"action {refused[0]!r} is not allowed here; allowed: {', '.join(allowed)}")
    return tuple(name for name in _ORDER if name in names)


def _check_inputs(bucket: str, scope: str) -> None:
    if not _BUCKET_RE.match(bucket):
        raise InvalidParameter("bucket name is invalid")
    # Defence in depth: scopes come from auth.py already checked; nothing here may widen a Resource.
    if (not scope or not scope.endswith("/") or scope.startswith("/") or _SCOPE_FORBIDDEN.search(scope)
            or any(segment in (".", "..") for segment in scope.split("/"))):
        raise Forbidden("scope cannot be used in a policy")


def build_policy(bucket: str, scope: str, actions: Iterable[str], source_ip: str | None = None) -> dict[str, Any]:
    """The session policy document for ``actions`` (read/list/write) inside ``bucket/scope``."""
    _check_inputs(bucket, scope)
    chosen = [name for name in _ORDER if name in set(actions)]
    if not chosen:
        raise InvalidParameter("at least one action is required")
    condition: dict[str, Any] = {}
    if source_ip is not None:
        try:
            address = ipaddress.ip_address(source_ip)
        except ValueError:
            raise InvalidParameter("the caller's source IP is not an IP address") from None
        condition["IpAddress"] = {"acs:SourceIp": [str(address)]}
    object_actions = [action for name in chosen if name != "list" for action in ACTIONS[name]]
    statements: list[dict[str, Any]] = []
    if object_actions:
        statement: dict[str, Any] = {"Effect": "Allow", "Action": object_actions,
                                     "Resource": [f"acs:oss:*:*:{bucket}/{scope}*"]}
        if condition:
            statement["Condition"] = condition
        statements.append(statement)
    if "list" in chosen:
        list_condition = {"StringLike": {"oss:Prefix": [f"{scope}*"]}, **condition}
        statements.append({"Effect": "Allow", "Action": list(ACTIONS["list"]),
                           "Resource": [f"acs:oss:*:*:{bucket}"], "Condition": list_condition})
    return {"Version": "1", "Statement": statements}


def serialize(policy: dict[str, Any]) -> str:
    """Compact JSON; refuse (400) a policy over STS's 2048-character limit."""
    text = json.dumps(policy, separators=(",", ":"), ensure_ascii=True)
    if len(text) > MAX_POLICY_CHARS:
        raise InvalidParameter(f"the session policy would be {len(text)} characters, over STS's limit of "
                               f"{MAX_POLICY_CHARS}; use a shorter prefix")
    return text


def session_name(method: str, subject: str) -> str:
    """RoleSessionName for audit: ``<method>-<subject>``, sanitized to ``[A-Za-z0-9.@_-]``, 2-64 characters.

    When sanitizing or truncating changed the name, a short hash of the original keeps names distinct.
    """
    original = f"{method}-{subject}"
    name = _SESSION_CHAR_RE.sub("_", original)
    if name == original and 2 <= len(name) <= _SESSION_MAX:
        return name
    digest = hashlib.sha256(original.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{name[:_SESSION_MAX - len(digest) - 1]}-{digest}"
