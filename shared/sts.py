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
from dataclasses import dataclass, field
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
                log.get_logger().warning("sts.failed", kind=failure.kind, attempt=attempt + 1,
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
                seconds = (float(retry_after) / 1000
                           if isinstance(retry_after, (int, float)) and retry_after > 0 else None)
                raise _Retryable("throttled", detail, seconds) from None
            if isinstance(exc.status_code, int) and exc.status_code >= 500:
                raise _Retryable("server", detail) from None
            log.get_logger().error("sts.refused", role_arn=role_arn, **detail)
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
            log.get_logger().error("sts.unexpected_failure", error_type=type(exc).__name__,
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
        log.get_logger().error("sts.unusable_answer", error_type=type(exc).__name__)
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


@dataclass
class _Flight:
    """One STS call in progress for a cache key; callers that miss meanwhile wait for it (single flight)."""

    done: threading.Event = field(default_factory=threading.Event)
    result: AssumedRole | None = None
    error: BaseException | None = None


def _remaining(entry: AssumedRole, now: datetime) -> float:
    expiration = entry.credentials.expiration
    return -1.0 if expiration is None else (expiration - now).total_seconds()


class CredentialCache:
    """Bounded, thread-safe LRU of vended credentials per identity and scope, with one STS call per key in flight.

    An entry serves any request it can honestly satisfy: a request needing ``need_seconds`` of life is served by
    a session with at least that much left, whatever duration the session was first asked for, and the caller is
    told the session's real expiration."""

    def __init__(self, max_entries: int = CACHE_MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, AssumedRole] = OrderedDict()
        self._flights: dict[Hashable, _Flight] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, need_seconds: float, now: datetime | None = None) -> AssumedRole | None:
        now = now or datetime.now(timezone.utc)
        with self._lock:
            return self._usable(key, need_seconds, now)

    def _usable(self, key: Hashable, need_seconds: float, now: datetime) -> AssumedRole | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        remaining = _remaining(entry, now)
        if remaining < need_seconds:
            if remaining <= 0:
                del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: Hashable, entry: AssumedRole, now: datetime | None = None) -> None:
        """Keep ``entry`` unless the cached session for ``key`` outlives it (it would serve more requests)."""
        now = now or datetime.now(timezone.utc)
        with self._lock:
            current = self._entries.get(key)
            if current is None or _remaining(current, now) <= _remaining(entry, now):
                self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def get_or_fetch(self, key: Hashable, need_seconds: float,
                     fetch: Callable[[], AssumedRole]) -> tuple[AssumedRole, bool]:
        """The cached session for ``key`` if it has ``need_seconds`` left, else ``fetch()`` once for all
        concurrent callers of the key; returns (session, served_without_an_sts_call_of_our_own)."""
        while True:
            with self._lock:
                entry = self._usable(key, need_seconds, datetime.now(timezone.utc))
                if entry is not None:
                    return entry, True
                flight = self._flights.get(key)
                leader = flight is None
                if flight is None:
                    flight = self._flights[key] = _Flight()
            if leader:
                break
            flight.done.wait()
            if flight.error is not None:  # the call everyone waited for failed: so do they (no stampede)
                raise flight.error
            if flight.result is not None and _remaining(flight.result, datetime.now(timezone.utc)) >= need_seconds:
                return flight.result, True
            # it cannot serve this caller (asked for a longer life): try again, as the next leader if need be
        try:
            flight.result = fetch()
            self.put(key, flight.result)
            return flight.result, False
        except BaseException as error:
            flight.error = error
            raise
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


vended_cache = CredentialCache()


def assume_role_cached(settings: Settings, caller: Credentials, *, role_arn: str, session_name: str,
                       duration_seconds: int, policy: str | None,
                       cache_key: Hashable) -> tuple[AssumedRole, bool]:
    """AssumeRole, or a cached session of the same identity and scope; returns (result, came_from_cache).

    The duration is not part of the key: a session serves a request while it has at least
    min(duration, STS_CACHE_SECONDS) left (so a 900 s request is served by a 3600 s session with 900 s left,
    and a long request accepts what STS_CACHE_SECONDS accepts); the answer carries its real expiration.
    STS_CACHE_SECONDS=0 turns caching off."""
    threshold = settings.sts.cache_min_remaining
    if threshold <= 0:
        return client_for(settings, caller).assume_role(role_arn, session_name, duration_seconds, policy), False
    key = (role_arn, session_name, policy, cache_key)
    return vended_cache.get_or_fetch(
        key, min(duration_seconds, threshold),
        lambda: client_for(settings, caller).assume_role(role_arn, session_name, duration_seconds, policy))


def reset() -> None:
    """Forget clients and cached credentials (tests)."""
    with _clients_lock:
        _clients.clear()
    vended_cache.clear()
