"""The link-record rules on their own: when a stored record is handed out again, and what a new one holds."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from shared.link_records import link_record, record_body, reusable_record
from shared.signing import Credentials, Endpoint, Signer
from shared.storage import ObjectInfo

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=timezone.utc)


def stored(etag: str = "ABC123", expires_in: int = 3600, remaining: float = 3000) -> bytes:
    expires_at = (NOW + timedelta(seconds=remaining)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps({"etag": etag, "expires_at": expires_at, "expires_in": expires_in, "url": "u"}).encode()


def test_a_record_of_the_same_version_with_most_of_its_validity_left_is_reused() -> None:
    record = reusable_record(stored(), "abc123", NOW)  # ETags compare without case
    assert record is not None and record["url"] == "u"


@pytest.mark.parametrize(("body", "why"), [
    (stored(etag="OTHER"), "another object version"),
    (stored(remaining=1799), "less than half of its validity left"),
    (stored(remaining=-5), "expired"),
    (b"not json", "unreadable"),
    (b"[1, 2]", "not an object"),
    (json.dumps({"etag": "ABC123", "expires_at": "soon", "expires_in": 3600}).encode(), "a time that is no time"),
    (json.dumps({"etag": "ABC123", "expires_in": 3600}).encode(), "no expiry"),
])
def test_a_record_is_signed_anew_when(body: bytes, why: str) -> None:
    assert reusable_record(body, "ABC123", NOW) is None, why


def test_exactly_half_of_the_validity_left_is_still_reused() -> None:
    assert reusable_record(stored(remaining=1800), "ABC123", NOW) is not None


def test_a_new_record_names_the_object_version_and_its_link() -> None:
    signer = Signer(Credentials("AKID", "secret"), Endpoint.for_region("cn-hangzhou"), "bucket", region="cn-hangzhou")
    presigned = signer.presign("a/b.txt", expires=600, now=NOW)
    info = ObjectInfo(key="a/b.txt", size=5, etag="d41d8cd9", last_modified=NOW,
                      content_type="text/plain")
    record = link_record(bucket="bucket", key="a/b.txt", info=info, presigned=presigned, signature_version="v4",
                         event_name="ObjectCreated:PutObject", event_time=NOW, idempotency_key="k",
                         record_key="_links/a/b.txt.json")
    assert record["etag"] == "D41D8CD9" and record["url"] == presigned.url
    assert record["expires_at"] == "2026-12-01T12:10:00Z" and record["signed_at"] == "2026-12-01T12:00:00Z"
    assert json.loads(record_body(record)) == record
    assert reusable_record(record_body(record), "d41d8cd9", NOW + timedelta(seconds=300)) == record
    assert reusable_record(record_body(record), "d41d8cd9", NOW + timedelta(seconds=301)) is None
