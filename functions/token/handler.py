"""Token function: POST/GET /sts -> temporary OSS credentials limited to the caller's scope.

The caller is authenticated first (no STS call for an unverified caller), may narrow its grant with
``prefix`` (inside its scope), ``actions`` (read, list, write as allowed) and ``duration`` (seconds), from
the query string or a JSON body. The answer carries exactly the four credential fields the OSS SDKs take
plus where to use them; it is never cached by anyone (``Cache-Control: no-store``).
"""

from __future__ import annotations

from typing import Any

from shared import http, policy, sts
from shared import logging as log
from shared.auth import authenticate
from shared.config import Settings, StsSettings
from shared.credentials import function_credentials_for
from shared.errors import BadRequest, InvalidParameter
from shared.numbers import parse_ascii_int
from shared.validity import format_utc

FUNCTION = "token"
PARAMETERS = frozenset({"prefix", "actions", "duration"})


def _parameters(request: http.Request) -> dict[str, Any]:
    params = request.parameters()
    unknown = sorted(set(params) - PARAMETERS)
    if unknown:
        raise InvalidParameter(f"unknown parameter {unknown[0][:40]!r}; accepted: prefix, actions, duration")
    return params


def _duration(value: Any, sts_settings: StsSettings) -> int:
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


def _endpoint_url(settings: Settings) -> str:
    endpoint = settings.oss.public_endpoint
    scheme = endpoint.scheme or settings.urls.scheme or "https"
    return f"{scheme}://{endpoint.host}"


def initialize(context: Any) -> None:
    """FC initializer hook (optional): load the settings and import the STS SDK before the first request."""
    http.settings_for(FUNCTION)
    sts.preload()


@http.http_handler(FUNCTION, methods=("GET", "POST"), path="/sts")
def handler(request: http.Request, settings: Settings, context: Any) -> http.Response:
    identity = authenticate(request, settings.auth)
    params = _parameters(request)
    prefix = params.get("prefix")
    if prefix is not None and not isinstance(prefix, str):
        raise InvalidParameter("prefix must be a string")
    identity = identity.narrow(prefix)
    actions = policy.choose_actions(params.get("actions"), settings.sts)
    duration = _duration(params.get("duration"), settings.sts)
    source_ip = request.source_ip if settings.sts.bind_source_ip else None
    if settings.sts.bind_source_ip and not source_ip:
        raise BadRequest("the caller's IP address is unknown, and credentials must be bound to it")
    document = policy.serialize(policy.build_policy(settings.oss.bucket, identity.scope, actions, source_ip))
    session_name = policy.session_name(identity.method, identity.subject)
    caller = function_credentials_for(context, settings)
    assumed, cached = sts.assume_role_cached(
        settings, caller, role_arn=settings.sts.role_arn or "", session_name=session_name,
        duration_seconds=duration, policy=document, cache_key=(identity.scope, actions, source_ip))
    credentials = assumed.credentials
    expiration = format_utc(credentials.expiration) if credentials.expiration else None
    log.get_logger().info(
        "credentials issued", subject=identity.subject, auth_method=identity.method, session_name=session_name,
        scope=identity.scope, actions=list(actions), duration=duration, source_ip=request.source_ip,
        cached=cached, access_key_id=credentials.access_key_id, expiration=expiration,
    )
    body = {
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
    return http.json_response(200, body, {"Cache-Control": "no-store", "Pragma": "no-cache"})
