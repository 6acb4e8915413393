"""Webhook client against a real receiver on 127.0.0.1: signature, retries, 4xx, idempotency key."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from shared.webhook import WebhookClient, WebhookError, idempotency_key, sign_payload, verify_signature
from tests.on_upload.receiver import webhook_receiver

SECRET = "test-webhook-secret-0123456789"


def client(url: str, *, retries: int = 3, sleeps: list[float] | None = None, **kwargs: object) -> WebhookClient:
    recorded = sleeps if sleeps is not None else []
    return WebhookClient(url, SECRET, timeout=2, retries=retries, backoff_base=0.01, backoff_max=0.05,
                         sleep=recorded.append, **kwargs)  # type: ignore[arg-type]


def test_delivery_is_signed_and_verifiable_by_the_receiver() -> None:
    with webhook_receiver() as receiver:
        delivery = client(receiver.url, clock=lambda: 1_800_000_000.0).deliver({"key": "a b+c", "n": 1}, "idem-1")
    assert delivery.status == 200 and delivery.attempts == 1
    [request] = receiver.requests
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["idempotency-key"] == "idem-1"
    assert headers["x-signature-timestamp"] == "1800000000"
    # independent recomputation of the MAC, as a receiver would do it
    expected = hmac.new(SECRET.encode(), b"1800000000." + request.body, hashlib.sha256).hexdigest()
    assert headers["x-signature"] == f"sha256={expected}"
    assert json.loads(request.body) == {"key": "a b+c", "n": 1}
    assert verify_signature(SECRET, request.headers, request.body, now=1_800_000_010)
    # tampered body, other secret, stale timestamp: all rejected
    assert not verify_signature(SECRET, request.headers, request.body + b" ", now=1_800_000_010)
    assert not verify_signature("another-secret-0123456789", request.headers, request.body, now=1_800_000_010)
    assert not verify_signature(SECRET, request.headers, request.body, now=1_800_000_000 + 3600)


def test_timestamp_is_covered_by_the_mac() -> None:
    body = b'{"a":1}'
    signature = sign_payload(SECRET, 100, body)
    assert verify_signature(SECRET, {"X-Signature": signature, "X-Signature-Timestamp": "100"}, body, now=100)
    assert not verify_signature(SECRET, {"X-Signature": signature, "X-Signature-Timestamp": "101"}, body, now=100)


def test_5xx_is_retried_with_backoff_then_succeeds() -> None:
    sleeps: list[float] = []
    with webhook_receiver([500, 503]) as receiver:
        delivery = client(receiver.url, sleeps=sleeps).deliver({"x": 1}, "idem")
    assert delivery.attempts == 3 and len(receiver.requests) == 3
    assert len(sleeps) == 2 and all(0 <= s <= 0.05 for s in sleeps)
    # the same idempotency key on every attempt
    assert {r.headers["Idempotency-Key"] for r in receiver.requests} == {"idem"}


def test_429_is_retried_and_retry_after_is_honoured() -> None:
    sleeps: list[float] = []
    with webhook_receiver([429], extra_headers={"Retry-After": "2"}) as receiver:
        delivery = client(receiver.url, sleeps=sleeps).deliver({"x": 1}, "idem")
    assert delivery.attempts == 2 and sleeps == [2.0]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_4xx_is_not_retried(status: int) -> None:
    sleeps: list[float] = []
    with webhook_receiver([status]) as receiver, pytest.raises(WebhookError) as caught:
        client(receiver.url, sleeps=sleeps).deliver({"x": 1}, "idem")
    assert len(receiver.requests) == 1 and sleeps == []
    assert caught.value.http_status == status and caught.value.status == 502


def test_retries_are_bounded() -> None:
    with webhook_receiver([500] * 10) as receiver, pytest.raises(WebhookError, match="after 3 attempts"):
        client(receiver.url, retries=2).deliver({"x": 1}, "idem")
    assert len(receiver.requests) == 3


def test_network_errors_are_retried() -> None:
    with webhook_receiver(drop_connections=2) as receiver:
        delivery = client(receiver.url).deliver({"x": 1}, "idem")
    assert delivery.attempts == 3 and len(receiver.requests) == 3


def test_unreachable_receiver_fails_after_retries() -> None:
    with webhook_receiver() as receiver:
        url = receiver.url
    with pytest.raises(WebhookError, match="network error"):
        client(url, retries=1).deliver({"x": 1}, "idem")


def test_idempotency_key_is_stable_and_distinguishes_inputs() -> None:
    key = idempotency_key("demo-bucket", "incoming/a b+c.txt", "ABC")
    assert key == idempotency_key("demo-bucket", "incoming/a b+c.txt", '"abc"')  # quotes and case normalised
    assert key == hashlib.sha256(b"demo-bucket\nincoming/a b+c.txt\nABC").hexdigest()
    assert key != idempotency_key("demo-bucket", "incoming/a b+c.txt", "ABD")
    assert key != idempotency_key("demo-bucke", "tincoming/a b+c.txt", "ABC")  # no concatenation ambiguity


def test_secret_is_not_in_repr() -> None:
    assert SECRET not in repr(client("http://127.0.0.1:1/hook"))
