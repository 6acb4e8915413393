"""Temporary credentials for a verified caller: least privilege, in the shape the OSS SDKs expect.

``issue(params, identity, ...)`` narrows the caller's scope to the ``prefix`` asked for (never wider), chooses
the actions (``actions``, bounded by STS_ALLOW_LIST / STS_ALLOW_WRITE), the lifetime (``duration``, 900 s to
STS_MAX_DURATION), builds the session policy as data (shared/policy.py) and assumes the vended role with it
(shared/sts.py: cached per identity and scope, one STS call however many requests miss at once). The answer
carries ``AccessKeyId``, ``AccessKeySecret``, ``SecurityToken`` and ``Expiration`` plus where to use them.
"""

from __future__ import annotations

from typing import Any

from shared import logging as log
from shared import policy, sts
from shared.auth import Identity
from shared.config import Settings, StsSettings
from shared.credentials import function_credentials_for
from shared.errors import BadRequest, InvalidParameter
from shared.numbers import parse_ascii_int
from shared.url_options import reach_scheme
from shared.validity import format_utc

PARAMETERS = frozenset({"prefix", "actions", "duration"})


def issue(params: dict[str, Any], identity: Identity, source_ip: str, settings: Settings,
          context: Any) -> dict[str, Any]:
    unknown = sorted(set(params) - PARAMETERS)
    if unknown:
        raise InvalidParameter(f"unknown parameter {unknown[0][:40]!r}; accepted: prefix, actions, duration")
    prefix = params.get("prefix")
    if prefix is not None and not isinstance(prefix, str):
        raise InvalidParameter("prefix must be a string")
    identity = identity.narrow(prefix)
    actions = policy.choose_actions(params.get("actions"), settings.sts)
    duration = requested_duration(params.get("duration"), settings.sts)
    bound_ip = _bound_source_ip(source_ip, settings.sts)
    document = policy.serialize(policy.build_policy(settings.oss.bucket, identity.scope, actions, bound_ip))
    session_name = policy.session_name(identity.method, identity.subject)
    assumed, cached = sts.assume_role_cached(
        settings, function_credentials_for(context, settings), role_arn=settings.sts.role_arn or "",
        session_name=session_name, duration_seconds=duration, policy=document,
        cache_key=(identity.scope, actions, bound_ip))
    credentials = assumed.credentials
    expiration = format_utc(credentials.expiration) if credentials.expiration else None
    log.get_logger().info(
        "token.issued", subject=identity.subject, auth_method=identity.method, session_name=session_name,
        scope=identity.scope, actions=list(actions), duration=duration, source_ip=source_ip,
        cached=cached, access_key_id=credentials.access_key_id, expiration=expiration,
    )
    return {
        "AccessKeyId": credentials.access_key_id,
        "AccessKeySecret": credentials.access_key_secret,
        "SecurityToken": credentials.security_token,
        "Expiration": expiration,
        "Bucket": settings.oss.bucket,
        "Region": settings.oss.region,
        "Endpoint": _endpoint_url(settings),
        "Prefix": identity.scope,
        "Actions": list(actions),
    }


def requested_duration(value: Any, sts_settings: StsSettings) -> int:
    if value is None or value == "":
        return sts_settings.default_duration
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidParameter("duration must be an integer number of seconds")
    if isinstance(value, str):
        try:
            value = parse_ascii_int(value, max_digits=6)
        except ValueError:
            raise InvalidParameter("duration must be an integer number of seconds (digits 0-9)") from None
    if not 900 <= value <= sts_settings.max_duration:
        raise InvalidParameter(f"duration must be from 900 to {sts_settings.max_duration} seconds")
    return value


def _bound_source_ip(source_ip: str, sts_settings: StsSettings) -> str | None:
    """The caller's IP when credentials must be bound to it (acs:SourceIp), else None."""
    if not sts_settings.bind_source_ip:
        return None
    if not source_ip:
        raise BadRequest("the caller's IP address is unknown, and credentials must be bound to it")
    return source_ip


def _endpoint_url(settings: Settings) -> str:
    endpoint = settings.oss.public_endpoint
    scheme = reach_scheme(settings, endpoint)
    return f"{scheme}://{endpoint.host}"
