"""on_upload end to end: emulator upload -> OSS trigger -> gateway -> handler -> link record + webhook."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.gateway import FunctionError
from local.up import Stack, root_bucket, start_stack
from shared.webhook import idempotency_key, verify_signature
from tests.on_upload.receiver import Receiver, webhook_receiver

BUCKET = "demo-bucket"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as hook:
        yield hook


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Stack]:
    env = {"on_upload": {"WEBHOOK_URL": receiver.url, "WEBHOOK_RETRIES": "1", "UPLOAD_MIN_SIZE": "1"}}
    started = start_stack(data_dir=Path(tmp_path_factory.mktemp("upload-stack")), auth="apikey", port=0,
                          oss_port=0, sts_port=0, timers=False, echo_logs=False, env=env, seed=False)
    yield started
    started.stop()


def wait_for(predicate: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def link_record(stack: Stack, key: str) -> dict[str, Any]:
    return json.loads(root_bucket(stack).get_object(f"_links/{key}.json").read())


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def hooks_for(receiver: Receiver, key: str) -> list[Any]:
    return [r for r in receiver.requests if json.loads(r.body).get("key") == key]


def event_for(stack: Stack, key: str, *, name: str = "ObjectCreated:PutObject", etag: str | None = None,
              size: int | None = None, event_key: str | None = None, event_time: str | None = None) -> bytes:
    bucket = root_bucket(stack)
    event_time = event_time or time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    if etag is None or size is None:
        head = bucket.head_object(key)
        etag, size = head.etag.upper(), head.content_length
    return json.dumps({"events": [{
        "eventName": name, "eventSource": "acs:oss", "eventTime": event_time,
        "eventVersion": "1.0", "region": "cn-hangzhou",
        "oss": {"bucket": {"name": BUCKET, "arn": f"acs:oss:cn-hangzhou:1:{BUCKET}", "ownerIdentity": "1"},
                "object": {"key": event_key or key, "eTag": etag, "size": size, "deltaSize": size}},
        "responseElements": {"requestId": "R"},
    }]}, ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize("key", ["incoming/a b+c 报告 2026.txt", "incoming/plain.txt"])
def test_upload_fires_the_trigger_and_the_link_fetches_the_object(stack: Stack, receiver: Receiver, key: str) -> None:
    body = f"content of {key}".encode()
    root_bucket(stack).put_object(key, body, headers={"Content-Type": "text/plain; charset=utf-8"})
    record = wait_for(lambda: _try_record(stack, key))
    assert record["key"] == key and record["size"] == len(body)
    assert record["content_type"] == "text/plain; charset=utf-8"
    assert record["idempotency_key"] == idempotency_key(BUCKET, key, record["etag"])
    assert fetch(record["url"]) == body  # plain HTTP, no SDK: the URL alone grants access
    [hook] = wait_for(lambda: hooks_for(receiver, key))
    assert verify_signature(stack.secrets.webhook_secret, hook.headers, hook.body)
    assert hook.headers["Idempotency-Key"] == record["idempotency_key"]
    assert json.loads(hook.body)["url"] == record["url"]


def _try_record(stack: Stack, key: str) -> dict[str, Any] | None:
    import oss2

    try:
        return link_record(stack, key)
    except oss2.exceptions.NoSuchKey:
        return None


def test_duplicate_events_give_the_same_record_and_idempotency_key(stack: Stack, receiver: Receiver) -> None:
    key = "incoming/dup, \"quoted\" +.bin"
    root_bucket(stack).put_object(key, b"duplicate me")
    first = wait_for(lambda: _try_record(stack, key))
    raw_first = root_bucket(stack).get_object(f"_links/{key}.json").read()
    wait_for(lambda: hooks_for(receiver, key))
    event = event_for(stack, key)
    results = [stack.gateway.invoke("on_upload", event) for _ in range(2)]
    assert all(r["failed"] == [] and len(r["links"]) == 1 for r in results)
    assert root_bucket(stack).get_object(f"_links/{key}.json").read() == raw_first
    hooks = hooks_for(receiver, key)
    assert len(hooks) == 3
    assert {h.headers["Idempotency-Key"] for h in hooks} == {first["idempotency_key"]}
    assert {json.loads(h.body)["url"] for h in hooks} == {first["url"]}


def test_a_fresh_signature_is_deterministic_for_the_same_event(stack: Stack) -> None:
    """Without a stored record (deleted), the same event signs the same URL: signing time = event time."""
    key = "incoming/deterministic.txt"
    bucket = root_bucket(stack)
    bucket.put_object(key, b"same url twice")
    wait_for(lambda: _try_record(stack, key))
    event_time = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 5))
    event = event_for(stack, key, event_time=event_time)
    bucket.delete_object(f"_links/{key}.json")
    stack.gateway.invoke("on_upload", event)
    first = link_record(stack, key)
    bucket.delete_object(f"_links/{key}.json")
    time.sleep(1.1)  # a signature made "now" would differ
    stack.gateway.invoke("on_upload", event)
    assert link_record(stack, key) == first
    assert first["signed_at"] == event_time.replace(".000", "")
    assert fetch(first["url"]) == b"same url twice"


def test_filtered_and_ignored_records_get_nothing(stack: Stack, receiver: Receiver) -> None:
    bucket = root_bucket(stack)
    bucket.put_object("outgoing/not-watched.txt", b"outside the trigger filter")
    bucket.put_object("incoming/empty.txt", b"")  # below UPLOAD_MIN_SIZE=1
    bucket.put_object("other/direct.txt", b"not under UPLOAD_PREFIXES")
    stack.cloud.wait_for_events(10)
    events = [
        ("other/direct.txt", "ObjectCreated:PutObject", "prefix"),
        ("incoming/empty.txt", "ObjectCreated:PutObject", "size"),
        ("incoming/part.bin", "ObjectCreated:InitiateMultipartUpload", "not_a_new_object"),
        ("incoming/part.bin", "ObjectCreated:UploadPart", "not_a_new_object"),
        ("_links/incoming/x.txt.json", "ObjectCreated:PutObject", "own_output"),
        ("_exports/nightly/x.csv", "ObjectCreated:PutObject", "own_output"),
        ("_links%2Fincoming%2Fy.json", "ObjectCreated:PutObject", "own_output"),
    ]
    for key, name, reason in events:
        size = 0 if key == "incoming/empty.txt" else 3
        result = stack.gateway.invoke("on_upload", event_for(stack, key, name=name, etag="AB", size=size))
        assert result["links"] == [] and result["skipped"] == [{"key": key, "reason": reason}], key
    wait_for(lambda: stack.gateway.async_queue.empty())
    time.sleep(0.5)
    listed = [o.key for o in __import__("oss2").ObjectIteratorV2(bucket, prefix="_links/")]
    assert not any(k.endswith(("not-watched.txt.json", "empty.txt.json", "direct.txt.json")) for k in listed)
    assert not any(json.loads(r.body).get("key", "").startswith(("outgoing/", "other/")) for r in receiver.requests)


def test_url_encoded_event_keys_resolve_to_the_stored_object(stack: Stack) -> None:
    key = "incoming/enc oded+key 文件.txt"
    bucket = root_bucket(stack)
    bucket.put_object(key, b"encoded event key")
    wait_for(lambda: _try_record(stack, key))
    from urllib.parse import quote, quote_plus

    for encoded in (quote(key, safe="/"), quote_plus(key, safe="/")):
        result = stack.gateway.invoke("on_upload", event_for(stack, key, event_key=encoded))
        assert [link["key"] for link in result["links"]] == [key], encoded


def test_several_records_one_unreadable_is_skipped_and_the_others_are_delivered(stack: Stack) -> None:
    """An unreadable record can never succeed: failing the invocation for it would have the platform deliver
    the same event forever (issue 10). It is logged and skipped; the good record is delivered."""
    bucket = root_bucket(stack)
    good = "incoming/batch-good.txt"
    bucket.put_object(good, b"good one")
    wait_for(lambda: _try_record(stack, good))
    bucket.delete_object(f"_links/{good}.json")
    events = json.loads(event_for(stack, good))["events"]
    events.append({"eventName": "ObjectCreated:PutObject", "oss": {}})  # unreadable record
    events.append({**events[0], "eventTime": "0001-01-01T00:00:00+01:00"})  # a time before datetime.min in UTC
    result = stack.gateway.invoke("on_upload", json.dumps({"events": events}).encode())
    assert [link["key"] for link in result["links"]] == [good] and result["failed"] == []
    assert [(s["index"], s["reason"]) for s in result["skipped"]] == [(1, "invalid_record"), (2, "invalid_record")]
    assert link_record(stack, good)["key"] == good  # the good record was still delivered


def test_webhook_failure_fails_the_invocation_and_the_gateway_retries(stack: Stack, receiver: Receiver) -> None:
    key = "incoming/webhook-retry.txt"
    before = len(stack.gateway.invocations)
    receiver.statuses_for[key] = [503, 503]  # WEBHOOK_RETRIES=1: two attempts, both fail -> invocation fails
    root_bucket(stack).put_object(key, b"retry me")

    def attempts() -> list[dict[str, Any]] | None:
        mine = [i for i in stack.gateway.invocations[before:] if i["function"].endswith("-on-upload")]
        return mine if any(i["ok"] for i in mine) else None

    runs = wait_for(attempts, timeout=30)
    assert runs[0]["ok"] is False and "webhook" in runs[0]["error"]
    assert runs[-1]["ok"] is True and runs[-1]["attempt"] >= 1
    hooks = hooks_for(receiver, key)
    assert [h.headers["Idempotency-Key"] for h in hooks] == [hooks[0].headers["Idempotency-Key"]] * 3
    assert fetch(link_record(stack, key)["url"]) == b"retry me"


def test_webhook_4xx_is_not_retried_by_the_client(stack: Stack, receiver: Receiver) -> None:
    key = "incoming/webhook-4xx.txt"
    bucket = root_bucket(stack)
    bucket.put_object(key, b"four hundred")
    wait_for(lambda: hooks_for(receiver, key))
    receiver.statuses_for[key] = [400]
    count = len(hooks_for(receiver, key))
    with pytest.raises(FunctionError, match="HTTP 400"):
        stack.gateway.invoke("on_upload", event_for(stack, key))
    assert len(hooks_for(receiver, key)) == count + 1
