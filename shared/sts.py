"""STS AssumeRole with alibabacloud-sts20150401: one client per container, retries, error mapping, a cache.

The SDK is imported on first use only (it costs ~250 ms to import; handlers that never call STS must not
pay for it). Retries use jittered exponential backoff and happen only on throttling, 5xx and network
errors; a 4xx is a misconfiguration (role missing, no permission, bad policy, bad key) and is answered
at once with a 502 whose message says nothing of the cause (the cause goes to the log, masked).
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from shared import logging as log
from shared.config import ConfiguredHost, Settings
from shared.errors import ServiceUnavailable, UpstreamError
from shared.signing import Credentials
from shared.validity import parse_utc

BACKOFF_BASE_SECONDS = 0.2
BACKOFF_CAP_SECONDS = 2.0
RETRY_AFTER_SECONDS = 5  # told to callers when STS throttles or is unreachable
MAX_CLIENTS = 8
CACHE_MAX_ENTRIES = 1024

# Tests replace this to run retries without waiting.
sleep: Callable[[float], None] = time.sleep


@dataclass(frozen=True)
class AssumedRole:
    credentials: Credentials
    assumed_role_arn: str
    request_id: str


class _Retryable(Exception):
    def __init__(self, kind: str, detail: dict[str, Any], retry_after: float | None = None) -> None:
        super().__init__(kind)
        self.kind = kind  # throttled | server | network
        self.detail = detail
        self.retry_after = retry_after


class StsClient:
    """AssumeRole against one endpoint with one set of caller credentials."""

    def __init__(self, *, endpoint: ConfiguredHost, region: str, caller: Credentials, timeout_seconds: int,
                 max_retries: int) -> None:
        from alibabacloud_sts20150401.client import Client
        from alibabacloud_tea_openapi.utils_models import Config

        log.adopt_library_loggers()  # the SDK core adds its own console handler when first imported
        self.endpoint = endpoint
        self.max_retries = max_retries
        self._client = Client(Config(
            access_key_id=caller.access_key_id,
            access_key_secret=caller.access_key_secret,
            security_token=caller.security_token or None,
            endpoint=endpoint.host,
            protocol=endpoint.scheme or "https",
            region_id=region,
            connect_timeout=timeout_seconds * 1000,
            read_timeout=timeout_seconds * 1000,
        ))

    def assume_role(self, role_arn: str, session_name: str, duration_seconds: int,
                    policy: str | None = None) -> AssumedRole:
        attempts = 1 + self.max_retries
        for attempt in range(attempts):
            try:
                return self._assume_once(role_arn, session_name, duration_seconds, policy)
            except _Retryable as failure:
                log.get_logger().warning("sts call failed", kind=failure.kind, attempt=attempt + 1,
                                         attempts=attempts, **failure.detail)
                if attempt + 1 >= attempts:
                    raise _final_error(failure) from None
                sleep(_backoff(attempt, failure.retry_after))
        raise AssertionError("unreachable")  # pragma: no cover

    def _assume_once(self, role_arn: str, session_name: str, duration_seconds: int,
                     policy: str | None) -> AssumedRole:
        import requests
        from alibabacloud_sts20150401 import models
        from alibabacloud_tea_openapi import exceptions
        from darabonba.exceptions import RetryError
        from darabonba.runtime import RuntimeOptions
        from Tea.exceptions import UnretryableException

        request = models.AssumeRoleRequest(role_arn=role_arn, role_session_name=session_name,
                                           duration_seconds=duration_seconds, policy=policy)
        try:
            response = self._client.assume_role_with_options(request, RuntimeOptions())
        except exceptions.AlibabaCloudException as exc:
            detail = {"sts_code": exc.code, "sts_status": exc.status_code, "sts_request_id": exc.request_id,
                      "sts_message": str(getattr(exc, "message", ""))[:300]}
            retry_after = getattr(exc, "retry_after", None)
            if isinstance(exc, exceptions.ThrottlingException) or str(exc.code or "").startswith("Throttling"):
                # The SDK gives x-acs-retry-after in milliseconds.
                usable = isinstance(retry_after, (int, float)) and retry_after > 0
                seconds = float(retry_after) / 1000 if usable else None
                raise _Retryable("throttled", detail, seconds) from None
            if isinstance(exc.status_code, int) and exc.status_code >= 500:
                raise _Retryable("server", detail) from None
            log.get_logger().error("sts refused the request", role_arn=role_arn, **detail)
            raise UpstreamError("the token service is misconfigured; the operator has been told") from None
        except (UnretryableException, requests.RequestException, OSError) as exc:
            # The SDK wraps transport failures (RetryError, requests, OSError) and answers it cannot parse
            # (RuntimeError; e.g. an HTML page from a proxy, whose HTTP status the SDK drops): both retried,
            # the first ends as 503 (unreachable), the second as 502.
            inner = getattr(exc, "inner_exception", None) or exc
            detail = {"error_type": type(inner).__name__, "error": str(inner)[:300]}
            if isinstance(inner, (RetryError, requests.RequestException, OSError)):
                raise _Retryable("network", detail) from None
            raise _Retryable("server", detail) from None
        except Exception as exc:  # an SDK surprise: not retried, not shown to the caller
            log.get_logger().error("sts call failed unexpectedly", error_type=type(exc).__name__,
                                   error=str(exc)[:300])
            raise UpstreamError("the token service failed; retry later") from None
        return _parse(response)


def _parse(response: Any) -> AssumedRole:
    try:
        body = response.body
        raw = body.credentials
        credentials = Credentials(
            access_key_id=raw.access_key_id,
            access_key_secret=raw.access_key_secret,
            security_token=raw.security_token,
            expiration=parse_utc(raw.expiration),
        )
        arn = getattr(body.assumed_role_user, "arn", "") if body.assumed_role_user else ""
        request_id = body.request_id or ""
    except Exception as exc:
        log.get_logger().error("sts answered something unusable", error_type=type(exc).__name__)
        raise UpstreamError("the token service gave an unusable answer") from None
    # Vended credentials are not registered for masking (one per caller would grow the mask list without
    # bound); they are never logged, and log keys such as AccessKeySecret are masked anyway.
    return AssumedRole(credentials=credentials, assumed_role_arn=arn or "", request_id=request_id)


def _backoff(attempt: int, retry_after: float | None) -> float:
    if retry_after:
        return min(retry_after, BACKOFF_CAP_SECONDS * 2)
    # "Full jitter": uniform in [0, base * 2^attempt], capped.
    return random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * (2 ** attempt)))


def _final_error(failure: _Retryable) -> Exception:
    if failure.kind == "throttled":
        seconds = max(1, math.ceil(failure.retry_after or RETRY_AFTER_SECONDS))
        return ServiceUnavailable("the token service is busy; retry later", headers={"Retry-After": str(seconds)})
    if failure.kind == "network":
        return ServiceUnavailable("the token service is unreachable; retry later",
                                  headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    return UpstreamError("the token service failed; retry later")


def preload() -> None:
    """Import the SDK now (from an FC initializer), so the first caller does not wait for it."""
    import alibabacloud_sts20150401.client  # noqa: F401
    import darabonba.runtime  # noqa: F401


# --- one client per container ------------------------------------------------------------------------------

_clients: OrderedDict[Hashable, StsClient] = OrderedDict()
_clients_lock = threading.Lock()


def endpoint_for(settings: Settings) -> ConfiguredHost:
    return settings.sts.endpoint or ConfiguredHost(host=f"sts.{settings.oss.region}.aliyuncs.com", scheme="https")


def client_for(settings: Settings, caller: Credentials) -> StsClient:
    """The cached client for this endpoint and these caller credentials (they rotate: a few are kept)."""
    endpoint = endpoint_for(settings)
    secret_digest = hashlib.sha256(
        f"{caller.access_key_secret}\0{caller.security_token or ''}".encode()).hexdigest()
    key = (endpoint, settings.oss.region, caller.access_key_id, secret_digest, settings.sts.timeout,
           settings.sts.max_retries)
    with _clients_lock:
        client = _clients.get(key)
        if client is not None:
            _clients.move_to_end(key)
            return client
    client = StsClient(endpoint=endpoint, region=settings.oss.region, caller=caller,
                       timeout_seconds=settings.sts.timeout, max_retries=settings.sts.max_retries)
    with _clients_lock:
        _clients[key] = client
        while len(_clients) > MAX_CLIENTS:
            _clients.popitem(last=False)
    return client


# --- vended-credentials cache --------------------------------------------------------------------------------


class CredentialCache:
    """Bounded, thread-safe LRU of vended credentials, reused while enough of their life remains."""

    def __init__(self, max_entries: int = CACHE_MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, AssumedRole] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, min_remaining_seconds: int, now: datetime | None = None) -> AssumedRole | None:
        if min_remaining_seconds <= 0:
            return None
        now = now or datetime.now(timezone.utc)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expiration = entry.credentials.expiration
            if expiration is None or (expiration - now).total_seconds() < min_remaining_seconds:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry

    def put(self, key: Hashable, entry: AssumedRole) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


vended_cache = CredentialCache()


def assume_role_cached(settings: Settings, caller: Credentials, *, role_arn: str, session_name: str,
                       duration_seconds: int, policy: str | None,
                       cache_key: Hashable) -> tuple[AssumedRole, bool]:
    """AssumeRole, or the cached answer for ``cache_key``; returns (result, came_from_cache)."""
    key = (role_arn, session_name, duration_seconds, policy, cache_key)
    cached = vended_cache.get(key, settings.sts.cache_min_remaining)
    if cached is not None:
        return cached, True
    result = client_for(settings, caller).assume_role(role_arn, session_name, duration_seconds, policy)
    if settings.sts.cache_min_remaining > 0:
        vended_cache.put(key, result)
    return result, False


def reset() -> None:
    """Forget clients and cached credentials (tests)."""
    with _clients_lock:
        _clients.clear()
    vended_cache.clear()
