"""The official SDKs as independent oracles, with their clocks frozen.

oss2 2.19.1 reads `time.time()` (V1 Expires, V1 Date) and `datetime.utcnow()` (V4);
alibabacloud-oss-v2 1.4.1 reads `datetime.datetime.now(tz)` in its signers and presigner.
Both are patched for the duration of one call.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import types
from collections.abc import Iterator, Mapping
from unittest import mock
from urllib.parse import unquote, urlsplit

import alibabacloud_oss_v2 as oss_v2
import alibabacloud_oss_v2.presigner as v2_presigner
import alibabacloud_oss_v2.signer.v1 as v2_signer_v1
import alibabacloud_oss_v2.signer.v4 as v2_signer_v4
import oss2
import oss2.auth

from shared.signing import Credentials, Endpoint

REGION = "cn-hangzhou"


def _frozen_datetime_class(now: dt.datetime) -> type[dt.datetime]:
    class FrozenDatetime(dt.datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[override]
            return now.astimezone(tz) if tz else now.astimezone(dt.timezone.utc).replace(tzinfo=None)

        @classmethod
        def utcnow(cls):  # type: ignore[override]
            return now.astimezone(dt.timezone.utc).replace(tzinfo=None)

    return FrozenDatetime


@contextlib.contextmanager
def frozen_clock(now: dt.datetime) -> Iterator[None]:
    frozen = _frozen_datetime_class(now)
    fake_module = types.SimpleNamespace(datetime=frozen, timezone=dt.timezone, timedelta=dt.timedelta)
    with (
        mock.patch.object(oss2.auth.time, "time", lambda: now.timestamp()),
        mock.patch.object(oss2.auth, "datetime", frozen),
        mock.patch.object(v2_signer_v4, "datetime", fake_module),
        mock.patch.object(v2_signer_v1, "datetime", fake_module),
        mock.patch.object(v2_presigner, "datetime", fake_module),
    ):
        yield


def endpoint_url(endpoint: Endpoint) -> str:
    return f"{endpoint.scheme}://{endpoint.host}"


# ---------------------------------------------------------------------------------------------
# oss2
# ---------------------------------------------------------------------------------------------


def oss2_auth(credentials: Credentials, version: str):
    auth_version = oss2.AUTH_VERSION_4 if version == "v4" else oss2.AUTH_VERSION_1
    if credentials.security_token:
        return oss2.StsAuth(
            credentials.access_key_id,
            credentials.access_key_secret,
            credentials.security_token,
            auth_version=auth_version,
        )
    if version == "v4":
        return oss2.AuthV4(credentials.access_key_id, credentials.access_key_secret)
    return oss2.Auth(credentials.access_key_id, credentials.access_key_secret)


def oss2_bucket(credentials: Credentials, endpoint: Endpoint, bucket: str, version: str) -> oss2.Bucket:
    return oss2.Bucket(
        oss2_auth(credentials, version),
        endpoint_url(endpoint),
        bucket,
        is_cname=endpoint.style == "cname",
        region=REGION,
        # The strict check only refuses keys starting with "?" under V1; it is client-side only.
        is_verify_object_strict=False,
    )


def oss2_sign_url(
    credentials: Credentials,
    endpoint: Endpoint,
    bucket: str,
    key: str,
    *,
    version: str,
    method: str,
    expires: int,
    now: dt.datetime,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> str:
    with frozen_clock(now):
        return oss2_bucket(credentials, endpoint, bucket, version).sign_url(
            method, key, expires, headers=dict(headers or {}), params=dict(params or {}), slash_safe=True
        )


# ---------------------------------------------------------------------------------------------
# alibabacloud-oss-v2
# ---------------------------------------------------------------------------------------------


def v2_client(credentials: Credentials, endpoint: Endpoint, version: str) -> oss_v2.Client:
    cfg = oss_v2.config.load_default()
    cfg.credentials_provider = oss_v2.credentials.StaticCredentialsProvider(
        credentials.access_key_id, credentials.access_key_secret, credentials.security_token
    )
    cfg.region = REGION
    cfg.endpoint = endpoint_url(endpoint)
    cfg.signature_version = version
    cfg.use_cname = endpoint.style == "cname"
    cfg.use_path_style = endpoint.style == "path"
    return oss_v2.Client(cfg)


def v2_presign(
    credentials: Credentials,
    endpoint: Endpoint,
    request: object,
    *,
    version: str,
    expires: int,
    now: dt.datetime,
):
    """Returns alibabacloud-oss-v2's PresignResult (url, signed_headers, expiration)."""
    client = v2_client(credentials, endpoint, version)
    with frozen_clock(now):
        return client.presign(request, expiration=now + dt.timedelta(seconds=expires))


# ---------------------------------------------------------------------------------------------
# URL comparison
# ---------------------------------------------------------------------------------------------


def split_url(url: str) -> tuple[str, str, str, list[tuple[str, str]]]:
    """(scheme://host, raw path, decoded path, sorted decoded query pairs); never decodes `+`."""
    parts = urlsplit(url)
    pairs = []
    if parts.query:
        for pair in parts.query.split("&"):
            name, _, value = pair.partition("=")
            pairs.append((unquote(name), unquote(value)))
    return f"{parts.scheme}://{parts.netloc}", parts.path, unquote(parts.path), sorted(pairs)


def query_value(url: str, name: str) -> str:
    values = [value for key, value in split_url(url)[3] if key == name]
    assert len(values) == 1, (name, values)
    return values[0]
