"""OSS-trigger and timer event parsing, and the key filters on_upload applies."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from shared.events import InvalidEvent, parse_oss_event, parse_timer_event
from shared.export import KeyFilter

ROOT = Path(__file__).resolve().parents[2]


def record(key: str, *, name: str = "ObjectCreated:PutObject", size: int = 5, etag: str = "abc123",
           bucket: str = "demo-bucket", time: str = "2026-11-29T10:00:00.000Z") -> dict[str, Any]:
    return {
        "eventName": name, "eventSource": "acs:oss", "eventTime": time, "eventVersion": "1.0",
        "oss": {"bucket": {"arn": f"acs:oss:cn-hangzhou:1:{bucket}", "name": bucket, "ownerIdentity": "1"},
                "object": {"deltaSize": size, "eTag": etag, "key": key, "size": size},
                "ossSchemaVersion": "1.0", "ruleId": "r"},
        "region": "cn-hangzhou", "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"requestId": "REQ1"}, "userIdentity": {"principalId": "1"},
    }


def test_sample_event_file_parses() -> None:
    event = parse_oss_event((ROOT / "events" / "on_upload.json").read_bytes())
    assert len(event.records) == 1 and not event.invalid
    only = event.records[0]
    assert only.key == "incoming/hello world+1.txt"
    assert only.event_name == "ObjectCreated:PutObject" and only.creates_object
    assert only.event_time == datetime(2026, 11, 29, 10, 0, tzinfo=timezone.utc)
    assert only.etag == "5EB63BBBE01EEED093CB22BB8F5ACDC3"


def test_several_records_with_unicode_space_and_plus_keys_are_kept_verbatim() -> None:
    keys = ["incoming/a b+c.txt", "incoming/\u62a5\u544a 2026.pdf", "incoming/100%.txt", "incoming/x%20y.txt"]
    raw = json.dumps({"events": [record(k) for k in keys]}, ensure_ascii=False).encode("utf-8")
    event = parse_oss_event(raw)
    assert [r.key for r in event.records] == keys
    assert event.records[0].etag == "ABC123"


def test_key_candidates_add_decoded_forms_only_when_they_differ() -> None:
    event = parse_oss_event({"events": [record("incoming/a+b%20c.txt"), record("incoming/plain.txt"),
                                        record("incoming/bad%FF.txt"), record("incoming/100%.txt")]})
    assert event.records[0].key_candidates() == ["incoming/a+b%20c.txt", "incoming/a+b c.txt", "incoming/a b c.txt"]
    assert event.records[1].key_candidates() == ["incoming/plain.txt"]
    # "%FF" is not UTF-8 once decoded: the key was never percent-encoded, keep it alone
    assert event.records[2].key_candidates() == ["incoming/bad%FF.txt"]
    assert event.records[3].key_candidates() == ["incoming/100%.txt"]


@pytest.mark.parametrize("name", ["ObjectCreated:InitiateMultipartUpload", "ObjectCreated:UploadPart",
                                  "ObjectCreated:UploadPartCopy", "ObjectRemoved:DeleteObject"])
def test_multipart_steps_and_removals_do_not_create_objects(name: str) -> None:
    assert not parse_oss_event({"events": [record("incoming/x", name=name)]}).records[0].creates_object


@pytest.mark.parametrize("name", ["ObjectCreated:PutObject", "ObjectCreated:PostObject", "ObjectCreated:CopyObject",
                                  "ObjectCreated:CompleteMultipartUpload", "oss:ObjectCreated:PutObject"])
def test_final_create_events(name: str) -> None:
    assert parse_oss_event({"events": [record("incoming/x", name=name)]}).records[0].creates_object


def test_a_bad_record_does_not_hide_the_good_ones() -> None:
    broken = record("incoming/b")
    del broken["oss"]["object"]["key"]
    late = record("incoming/c")
    late["eventTime"] = "yesterday"
    event = parse_oss_event({"events": [record("incoming/a"), broken, "junk", late, record("incoming/d")]})
    assert [r.key for r in event.records] == ["incoming/a", "incoming/d"]
    assert [index for index, _ in event.invalid] == [1, 2, 3]
    assert "oss.object.key" in event.invalid[0][1]


@pytest.mark.parametrize("raw", [b"not json", b"[]", b'{"records": []}', b'{"events": {}}'])
def test_bad_envelopes_are_invalid_events(raw: bytes) -> None:
    with pytest.raises(InvalidEvent):
        parse_oss_event(raw)


def test_timer_event() -> None:
    event = parse_timer_event((ROOT / "events" / "export.json").read_bytes())
    assert event.trigger_name == "nightly"
    assert event.trigger_time == datetime(2026, 11, 29, 18, 0, tzinfo=timezone.utc)
    assert event.payload_json()["prefixes"] == ["exampledir/"]


@pytest.mark.parametrize("raw, message", [
    ({"triggerTime": "2026-01-01T00:00:00Z", "payload": ""}, "triggerName"),
    ({"triggerName": "t", "triggerTime": "soon"}, "triggerTime"),
    ({"triggerName": "t", "triggerTime": "2026-01-01T00:00:00Z", "payload": 5}, "payload"),
])
def test_bad_timer_events(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidEvent, match=message):
        parse_timer_event(raw)


def test_timer_payload_must_be_a_json_object() -> None:
    event = parse_timer_event({"triggerName": "t", "triggerTime": "2026-01-01T00:00:00Z", "payload": "[1]"})
    with pytest.raises(InvalidEvent, match="JSON object"):
        event.payload_json()
    assert parse_timer_event({"triggerName": "t", "triggerTime": "2026-01-01T00:00:00Z"}).payload_json() == {}


# --- filters --------------------------------------------------------------------------------------------


def test_key_filter_reasons() -> None:
    since = datetime(2026, 1, 1, tzinfo=timezone.utc)
    f = KeyFilter(prefixes=("incoming/", "uploads/"), suffixes=(".jpg", ".png"), min_size=10, max_size=100,
                  modified_since=since, excluded=("_links/", "_exports/"))
    assert f.accepts("incoming/a.jpg", 50, since)
    assert f.reason("other/a.jpg", 50) == "prefix"
    assert f.reason("incoming/a.gif", 50) == "suffix"
    assert f.reason("incoming/a.jpg", 9) == "size"
    assert f.reason("incoming/a.jpg", 101) == "size"
    assert f.reason("incoming/a.jpg", 50, datetime(2025, 12, 31, tzinfo=timezone.utc)) == "modified_since"
    assert f.reason("_links/incoming/a.jpg.json", 50) == "excluded_prefix"


def test_excluded_prefixes_win_even_without_other_filters() -> None:
    f = KeyFilter(excluded=("_links/", "_exports/"))
    assert f.accepts("anything")
    assert not f.accepts("_links/x.json") and not f.accepts("_exports/nightly/a.csv")
    assert f.accepts("_linksx/not-ours")


@pytest.mark.parametrize(("change", "reason"), [
    ({"eventTime": "0001-01-01T00:00:00+01:00"}, "eventTime is not an ISO 8601 time"),  # OverflowError before
    ({"eventTime": "9999-12-31T23:59:59-01:00"}, "eventTime is not an ISO 8601 time"),
    ({"eventTime": "1900-01-01T00:00:00Z"}, "eventTime is outside 1970-9000"),
    ({"eventName": "ObjectCreated:\udc80"}, "record holds a lone surrogate (not Unicode text)"),
    ({"region": ["\ud800"]}, "record holds a lone surrogate (not Unicode text)"),
])
def test_records_that_can_never_succeed_are_listed_as_invalid(change: dict[str, Any], reason: str) -> None:
    event = parse_oss_event(json.dumps({"events": [record("a.txt"), {**record("b.txt"), **change}]}).encode())
    assert [r.key for r in event.records] == ["a.txt"] and event.invalid == [(1, reason)]


def test_sizes_are_ascii_digits_or_invalid() -> None:
    sized = {**record("a.txt"), "oss": {**record("a.txt")["oss"], "object": {"key": "a.txt", "size": "١٢"}}}
    assert parse_oss_event({"events": [sized]}).invalid == [(0, "oss.object.size is not a non-negative integer")]


@pytest.mark.parametrize("raw", [
    {"triggerName": "n\ud800", "triggerTime": "2026-01-01T00:00:00Z"},
    {"triggerName": "n", "triggerTime": "0001-01-01T00:00:00+01:00"},
    {"triggerName": "n", "triggerTime": "2026-01-01T00:00:00Z", "payload": '{"a": "\\udc00"}'},
])
def test_timer_events_that_can_never_succeed_are_invalid_events(raw: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent):
        event = parse_timer_event(json.dumps(raw).encode())
        event.payload_json()
