"""Keys that cannot get an ordinary link record or a V1 URL are handled, not retried forever."""

import json
import time

from local.up import root_bucket
from shared.link_records import MAX_KEY_BYTES, link_record_key


def test_link_record_key_for_long_keys_is_hashed_and_fits():
    short = link_record_key("_links/", "incoming/a.txt")
    assert short == "_links/incoming/a.txt.json"
    long_key = "incoming/" + "x" * 1010
    record = link_record_key("_links/", long_key)
    assert record.startswith("_links/_long/") and len(record.encode()) <= MAX_KEY_BYTES
    assert record == link_record_key("_links/", long_key)  # deterministic: duplicates find it
    assert record != link_record_key("_links/", long_key + "y")


def _wait_for(gateway, count, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(gateway.invocations) < count:
        time.sleep(0.05)


def test_a_key_too_long_for_a_plain_record_name_gets_a_hashed_record(make_stack):
    stack = make_stack()
    bucket = root_bucket(stack)
    long_key = "incoming/" + "l" * 1006  # the object key fits (1015 bytes), "_links/<key>.json" would not
    bucket.put_object(long_key, b"long key body")
    _wait_for(stack.gateway, 1)
    result = stack.gateway.invocations[0]
    assert result["ok"], result
    record = json.loads(bucket.get_object(link_record_key("_links/", long_key)).read())
    assert record["key"] == long_key


def test_v1_ambiguous_key_is_skipped_not_retried(make_stack):
    stack = make_stack(parameters={"SignatureVersion": "v1"})
    bucket = root_bucket(stack)
    bucket.put_object("incoming/x?uploadId=1", b"tricky")
    _wait_for(stack.gateway, 1)
    time.sleep(0.5)
    assert len(stack.gateway.invocations) == 1  # no retries
    summary = stack.gateway.invocations[0]["result"]
    assert summary["skipped"] == [{"key": "incoming/x?uploadId=1", "reason": "unsignable_key"}]
