"""Webhook delivery: a signed JSON POST with bounded, jittered retries.

Wire format (what a receiver verifies):

    POST <WEBHOOK_URL>
    Content-Type: application/json
    X-Signature-Timestamp: <unix seconds>
    X-Signature: sha256=<hex(hmac_sha256(WEBHOOK_SECRET, "<timestamp>." + body))>
    X-Signature-Key-Id: <key id of the secret that made X-Signature>
    Idempotency-Key: <stable per delivered thing, e.g. sha256(bucket \\n key \\n etag)>

Rotation (WEBHOOK_PREVIOUS_SECRET, WEBHOOK_PREVIOUS_UNTIL): until the configured time, ``X-Signature`` (and its
key id) is made with the previous secret, so a receiver not yet switched keeps verifying exactly as before, and
``X-Signature-Next`` / ``X-Signature-Next-Key-Id`` carry the signature with the new secret for receivers already
switched. After that time only the new secret signs. ``verify_signature`` takes every secret a receiver
accepts and checks the signature whose key id matches (a header without a key id: any of them).

The timestamp is inside the MAC, so a captured request cannot be replayed later with a new time;
receivers reject timestamps outside a tolerance (``verify_signature``). The same Idempotency-Key is
sent on every retry and on every redelivery of the same event, so receivers can deduplicate.

Retries: network errors, 5xx and 429 (honouring a short Retry-After) are retried up to ``retries``
times with full-jitter exponential backoff; other 4xx answers are the receiver refusing the request
and are not retried. When delivery fails, ``WebhookError`` (an UpstreamError) is raised.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import urllib3

from shared.errors import UpstreamError
from shared.links import key_id
from shared.numbers import ascii_int_or_none
from shared.outbound import connection_pool

__all__ = [
    "Delivery",
    "WebhookClient",
    "WebhookError",
    "idempotency_key",
    "sign_payload",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Signature"
KEY_ID_HEADER = "X-Signature-Key-Id"
NEXT_SIGNATURE_HEADER = "X-Signature-Next"
NEXT_KEY_ID_HEADER = "X-Signature-Next-Key-Id"
TIMESTAMP_HEADER = "X-Signature-Timestamp"
_SIGNATURE_PAIRS = ((SIGNATURE_HEADER, KEY_ID_HEADER), (NEXT_SIGNATURE_HEADER, NEXT_KEY_ID_HEADER))
IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_TOLERANCE_SECONDS = 300
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 8.0
RETRY_AFTER_MAX_SECONDS = 30.0


class WebhookError(UpstreamError):
    code = "WebhookFailed"

    def __init__(self, message: str, *, status: int | None = None, attempts: int = 0) -> None:
        super().__init__(message)
        self.http_status = status
        self.attempts = attempts


@dataclass(frozen=True)
class Delivery:
    status: int
    attempts: int


def idempotency_key(bucket: str, key: str, etag: str) -> str:
    """sha256 over bucket, key and ETag joined by newlines (keys cannot contain control characters,
    so the joined form is unambiguous, unlike a bare concatenation)."""
    material = f"{bucket}\n{key}\n{etag.strip(chr(34)).upper()}"
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def sign_payload(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>`` over ``"<timestamp>." + body``."""
    mac = hmac.new(secret.encode("utf-8"), str(timestamp).encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(secrets: str | Iterable[str], headers: Mapping[str, str], body: bytes, *,
                     now: float | None = None, tolerance: int = DEFAULT_TOLERANCE_SECONDS) -> bool:
    """Receiver side: True if a signature made with one of ``secrets`` (one, or the current and the previous
    during a rotation) matches and the timestamp is within ``tolerance``."""
    lower = {name.lower(): value for name, value in headers.items()}
    timestamp = ascii_int_or_none(lower.get(TIMESTAMP_HEADER.lower(), ""), max_digits=12)
    if timestamp is None or abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    by_id = {key_id(secret): secret for secret in ([secrets] if isinstance(secrets, str) else secrets) if secret}
    for signature_header, key_id_header in _SIGNATURE_PAIRS:
        signature = lower.get(signature_header.lower(), "")
        if not signature.startswith("sha256="):
            continue
        named = lower.get(key_id_header.lower())
        candidates = [by_id[named]] if named in by_id else [] if named else list(by_id.values())
        given = signature.encode("utf-8", "replace")
        if any(hmac.compare_digest(sign_payload(secret, timestamp, body).encode(), given) for secret in candidates):
            return True
    return False


class WebhookClient:
    """POSTs signed JSON to one URL. Build once per container; ``deliver`` is thread-safe."""

    def __init__(self, url: str, secret: str, *, previous_secret: str = "", previous_until: datetime | None = None,
                 timeout: float = 5.0, retries: int = 3,
                 backoff_base: float = BACKOFF_BASE_SECONDS, backoff_max: float = BACKOFF_MAX_SECONDS,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time,
                 pool: urllib3.PoolManager | None = None, user_agent: str = "oss-url-functions/1") -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("webhook URL must be http(s)")
        self.url = url
        self._secret = secret
        self._previous_secret = previous_secret
        self._previous_until = previous_until
        self.timeout = urllib3.Timeout(connect=min(timeout, 5.0), read=timeout)
        self.retries = retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._sleep = sleep
        self._clock = clock
        self._pool = pool or connection_pool()
        self.user_agent = user_agent

    @classmethod
    def from_settings(cls, settings: Any, **kwargs: Any) -> WebhookClient | None:
        """The client for WEBHOOK_URL / WEBHOOK_SECRET, or None when no webhook is configured."""
        hook = settings.webhook
        if not hook.url:
            return None
        return cls(hook.url, hook.secret, previous_secret=hook.previous_secret, previous_until=hook.previous_until,
                   timeout=hook.timeout, retries=hook.retries, **kwargs)

    def __repr__(self) -> str:
        return f"WebhookClient(url={self.url!r}, retries={self.retries})"

    def deliver(self, payload: Mapping[str, Any], idempotency: str) -> Delivery:
        """POST ``payload``; return the 2xx status and attempts, or raise WebhookError."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")
        last_problem = "no attempt made"
        last_status: int | None = None
        for attempt in range(1, self.retries + 2):
            headers = {"Content-Type": "application/json", "User-Agent": self.user_agent,
                       IDEMPOTENCY_HEADER: idempotency}
            if self._secret:
                stamp = int(self._clock())  # re-signed per attempt: the timestamp stays fresh
                headers[TIMESTAMP_HEADER] = str(stamp)
                headers.update(self._signature_headers(stamp, body))
            retry_after: float | None = None
            try:
                response = self._pool.request("POST", self.url, body=body, headers=headers, timeout=self.timeout,
                                              retries=False, redirect=False, preload_content=True)
            except (urllib3.exceptions.HTTPError, OSError) as error:
                last_problem, last_status = f"network error ({type(error).__name__})", None
            else:
                status = response.status
                if 200 <= status < 300:
                    return Delivery(status=status, attempts=attempt)
                last_problem, last_status = f"HTTP {status}", status
                if status != 429 and status < 500:
                    raise WebhookError(f"webhook refused the delivery: HTTP {status}", status=status,
                                       attempts=attempt)
                retry_after = _retry_after(response.headers.get("Retry-After"))
            if attempt <= self.retries:
                self._sleep(self._delay(attempt, retry_after))
        raise WebhookError(f"webhook delivery failed after {self.retries + 1} attempts: {last_problem}",
                           status=last_status, attempts=self.retries + 1)

    def _signature_headers(self, stamp: int, body: bytes) -> dict[str, str]:
        current = {SIGNATURE_HEADER: sign_payload(self._secret, stamp, body), KEY_ID_HEADER: key_id(self._secret)}
        rotating = (self._previous_secret and self._previous_until is not None
                    and stamp < self._previous_until.timestamp())
        if not rotating:
            return current
        return {SIGNATURE_HEADER: sign_payload(self._previous_secret, stamp, body),
                KEY_ID_HEADER: key_id(self._previous_secret),
                NEXT_SIGNATURE_HEADER: current[SIGNATURE_HEADER], NEXT_KEY_ID_HEADER: current[KEY_ID_HEADER]}

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, RETRY_AFTER_MAX_SECONDS)
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return random.uniform(0, ceiling)


def _retry_after(value: str | None) -> float | None:
    seconds = ascii_int_or_none(value, max_digits=6)
    return None if seconds is None else float(seconds)
